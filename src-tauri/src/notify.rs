//! Native notifications (`notify-rust`, D-Bus on Linux).
//!
//! One notification per new pending request — agent and action, never the
//! argument values, since notifications reach lock screens. Several at once
//! become one summary. A notification closes when its requests are resolved
//! anywhere; clicking it opens the app on its request.
//!
//! Showing and closing run on one thread of their own (the D-Bus calls
//! block). Servers send a click (`ActionInvoked`) only to the connection that
//! showed the notification, so each shown notification gets a thread waiting
//! on its own handle; closing is a plain `CloseNotification(id)` call.

use countersign_model::{Activity, Request};
use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

/// How many requests one summary names before "and N more".
const SUMMARY_LINES: usize = 4;

enum Command {
    Requests(Vec<Request>),
    Activity(Vec<Activity>),
    Close(Vec<i64>),
    /// A decision the platform took but did not follow.
    NotAsDecided(Box<Request>, String),
}

/// Notification id → the requests it stands for.
type Shown = Arc<Mutex<HashMap<u32, Vec<i64>>>>;

/// What to do when a notification is clicked: open that request.
pub type OnClick = Arc<dyn Fn(i64) + Send + Sync>;

#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::Sender<Command>,
}

impl Notifier {
    pub fn start(on_click: OnClick) -> Self {
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("notifications".into())
            .spawn(move || run(rx, on_click));
        if let Err(e) = spawned {
            tracing::warn!("notifications are off: {e}");
        }
        Self { tx }
    }

    pub fn requests(&self, requests: Vec<Request>) {
        if !requests.is_empty() {
            let _ = self.tx.send(Command::Requests(requests));
        }
    }

    pub fn activity(&self, items: Vec<Activity>) {
        if !items.is_empty() {
            let _ = self.tx.send(Command::Activity(items));
        }
    }

    /// Says that a platform did not do what a decision said ("SurfSense
    /// continued the run despite the deny"): the reviewer believes the
    /// agent stopped, so this is shown even with notifications paused.
    pub fn not_as_decided(&self, request: Request, note: String) {
        let _ = self.tx.send(Command::NotAsDecided(Box::new(request), note));
    }

    pub fn close(&self, request_ids: Vec<i64>) {
        if !request_ids.is_empty() {
            let _ = self.tx.send(Command::Close(request_ids));
        }
    }
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let flat = flat.trim();
    if flat.chars().count() <= max {
        return flat.to_owned();
    }
    let mut out: String = flat.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// "Release Manager: push tag v2.4.0"
fn headline(r: &Request) -> String {
    let who = r.agent.as_deref().unwrap_or(r.account.as_str());
    one_line(&format!("{who}: {}", r.title), 120)
}

fn text_only(s: &str) -> String {
    // Some servers render a subset of HTML in the body; agents' text must
    // not be markup there either.
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn lock(shown: &Shown) -> std::sync::MutexGuard<'_, HashMap<u32, Vec<i64>>> {
    shown.lock().unwrap_or_else(|e| e.into_inner())
}

fn run(rx: mpsc::Receiver<Command>, on_click: OnClick) {
    let shown: Shown = Arc::default();
    let mut bus: Option<zbus::blocking::Connection> = None;
    while let Ok(cmd) = rx.recv() {
        match cmd {
            Command::Requests(requests) => show_requests(&requests, &shown, &on_click),
            Command::Activity(items) => {
                let summary = match items.as_slice() {
                    [a] => one_line(
                        &format!("{}: {}", a.agent.as_deref().unwrap_or(&a.account), a.title),
                        120,
                    ),
                    _ => format!("{} new activity items", items.len()),
                };
                if let Err(e) = notify_rust::Notification::new()
                    .appname("Countersign")
                    .summary(&summary)
                    .body("Reported by an agent; nothing to decide")
                    .show()
                {
                    tracing::warn!("could not show a notification: {e}");
                }
            }
            Command::NotAsDecided(request, note) => {
                if let Err(e) = notify_rust::Notification::new()
                    .appname("Countersign")
                    .summary(&format!("Not as decided: {}", headline(&request)))
                    .body(&text_only(&one_line(&note, 300)))
                    .icon("dialog-warning")
                    .show()
                {
                    tracing::warn!("could not show a notification: {e}");
                }
            }
            Command::Close(resolved) => {
                let done: Vec<u32> = {
                    let mut map = lock(&shown);
                    let mut done = Vec::new();
                    for (id, ids) in map.iter_mut() {
                        ids.retain(|r| !resolved.contains(r));
                        if ids.is_empty() {
                            done.push(*id);
                        }
                    }
                    for id in &done {
                        map.remove(id);
                    }
                    done
                };
                for id in done {
                    close(&mut bus, id);
                }
            }
        }
    }
}

fn show_requests(requests: &[Request], shown: &Shown, on_click: &OnClick) {
    let (summary, body) = if let [r] = requests {
        (
            headline(r),
            format!(
                "Waiting for your decision on {} ({})",
                r.account, r.platform
            ),
        )
    } else {
        let mut lines: Vec<String> = requests.iter().take(SUMMARY_LINES).map(headline).collect();
        if requests.len() > SUMMARY_LINES {
            lines.push(format!("and {} more", requests.len() - SUMMARY_LINES));
        }
        (
            format!("{} new requests waiting", requests.len()),
            lines.join("\n"),
        )
    };
    let ids: Vec<i64> = requests.iter().map(|r| r.id).collect();
    let handle = match notify_rust::Notification::new()
        .appname("Countersign")
        .summary(&summary)
        .body(&text_only(&body))
        .icon("dialog-question")
        .action("default", "Open")
        .show()
    {
        Ok(handle) => handle,
        Err(e) => {
            tracing::warn!("could not show a notification: {e}");
            return;
        }
    };
    let id = handle.id();
    lock(shown).insert(id, ids.clone());
    let (shown, on_click) = (shown.clone(), on_click.clone());
    let waiting = std::thread::Builder::new()
        .name(format!("notification-{id}"))
        .spawn(move || {
            // Returns on a click or when the notification closes.
            handle.wait_for_action(|action| {
                if action == "default" {
                    if let Some(first) = ids.first() {
                        on_click(*first);
                    }
                }
            });
            lock(&shown).remove(&id);
        });
    if let Err(e) = waiting {
        tracing::warn!("clicks on notification {id} will not open it: {e}");
    }
}

/// Closes a notification by id, on a connection of our own.
fn close(bus: &mut Option<zbus::blocking::Connection>, id: u32) {
    if bus.is_none() {
        *bus = zbus::blocking::Connection::session().ok();
    }
    let Some(conn) = bus.as_ref() else { return };
    let closed = conn.call_method(
        Some("org.freedesktop.Notifications"),
        "/org/freedesktop/Notifications",
        Some("org.freedesktop.Notifications"),
        "CloseNotification",
        &(id,),
    );
    if let Err(e) = closed {
        tracing::debug!("could not close notification {id}: {e}");
    }
}
