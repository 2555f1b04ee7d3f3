//! Native notifications (`notify-rust`, D-Bus on Linux).
//!
//! One notification per new pending request — agent and action, never the
//! argument values, since notifications reach lock screens. The first of a
//! quiet period shows at once; the ones that follow it within 150 ms
//! become one summary. A notification closes when its requests are resolved
//! anywhere; clicking it opens the app on its request.
//!
//! Showing and closing run on one thread of their own (the D-Bus calls
//! block). Servers send a click (`ActionInvoked`) only to the connection that
//! showed the notification, so each shown notification gets a thread waiting
//! on its own handle; closing is a plain `CloseNotification(id)` call.

use countersign_model::{Activity, Request};
use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How many requests one summary names before "and N more".
const SUMMARY_LINES: usize = 4;
/// After a notification, new requests are held this long and then shown
/// as one summary; the first of a quiet period is shown at once.
const COALESCE: Duration = Duration::from_millis(150);

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

/// New requests as they come, shown on the leading edge: the first after
/// a quiet [`COALESCE`] at once, the ones that follow it within that time
/// held and shown together when it ends.
struct Coalescer<T> {
    last_shown: Option<Instant>,
    held: Vec<T>,
}

impl<T> Default for Coalescer<T> {
    fn default() -> Self {
        Self {
            last_shown: None,
            held: Vec::new(),
        }
    }
}

impl<T> Coalescer<T> {
    /// What to show now, if anything.
    fn add(&mut self, requests: Vec<T>, now: Instant) -> Option<Vec<T>> {
        let quiet = self
            .last_shown
            .is_none_or(|at| now.duration_since(at) >= COALESCE);
        if quiet && self.held.is_empty() {
            self.last_shown = Some(now);
            return Some(requests);
        }
        self.held.extend(requests);
        None
    }

    /// When the held requests are due.
    fn due(&self) -> Option<Instant> {
        (!self.held.is_empty())
            .then(|| self.last_shown.map(|at| at + COALESCE))
            .flatten()
    }

    /// The held requests, if their time has come.
    fn flush(&mut self, now: Instant) -> Option<Vec<T>> {
        if self.due().is_some_and(|at| at <= now) {
            self.last_shown = Some(now);
            return Some(std::mem::take(&mut self.held));
        }
        None
    }

    /// Forgets held requests that were resolved meanwhile.
    fn drop_where(&mut self, gone: impl Fn(&T) -> bool) {
        self.held.retain(|r| !gone(r));
    }
}

fn run(rx: mpsc::Receiver<Command>, on_click: OnClick) {
    let shown: Shown = Arc::default();
    let mut bus: Option<zbus::blocking::Connection> = None;
    let mut coalescer = Coalescer::<Request>::default();
    loop {
        let cmd = match coalescer.due() {
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(cmd) => Some(cmd),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(cmd) => Some(cmd),
                Err(_) => break,
            },
        };
        if let Some(requests) = coalescer.flush(Instant::now()) {
            show_requests(&requests, &shown, &on_click);
        }
        let Some(cmd) = cmd else { continue };
        match cmd {
            Command::Requests(requests) => {
                if let Some(now) = coalescer.add(requests, Instant::now()) {
                    show_requests(&now, &shown, &on_click);
                }
            }
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
                coalescer.drop_where(|r| resolved.contains(&r.id));
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
    if requests.is_empty() {
        return;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_request_of_a_quiet_period_shows_at_once_the_rest_together() {
        let mut c = Coalescer::default();
        let t = Instant::now();
        assert_eq!(
            c.add(vec![1], t),
            Some(vec![1]),
            "a lone request is shown at once, not after a batch window"
        );
        assert_eq!(c.add(vec![2], t + Duration::from_millis(10)), None);
        assert_eq!(c.add(vec![3, 4], t + Duration::from_millis(20)), None);
        assert_eq!(
            c.flush(t + Duration::from_millis(100)),
            None,
            "what follows is held until the window ends"
        );
        c.drop_where(|r| *r == 3);
        assert_eq!(
            c.flush(t + COALESCE),
            Some(vec![2, 4]),
            "then shown as one summary, without what was resolved meanwhile"
        );
        assert_eq!(
            c.add(vec![5], t + COALESCE + Duration::from_millis(10)),
            None,
            "a summary was just shown: the next waits its window too"
        );
        assert_eq!(
            c.flush(t + COALESCE * 2 + Duration::from_millis(10)),
            Some(vec![5])
        );
        assert_eq!(
            c.add(vec![6], t + COALESCE * 5),
            Some(vec![6]),
            "after a quiet period, at once again"
        );
    }
}
