//! Native notifications (`notify-rust`, D-Bus on Linux).
//!
//! One notification per new pending request — agent and action, never the
//! argument values, since notifications reach lock screens. Several at once
//! become one summary. A notification closes when its requests are resolved
//! anywhere; clicking it opens the app on its request.
//!
//! Showing and closing run on one thread of their own (the D-Bus calls
//! block); clicks are heard by a small D-Bus listener.

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
}

/// Notification id → the requests it stands for.
pub type Shown = Arc<Mutex<HashMap<u32, Vec<i64>>>>;

#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::Sender<Command>,
    shown: Shown,
}

impl Notifier {
    pub fn start() -> Self {
        let (tx, rx) = mpsc::channel();
        let shown: Shown = Arc::default();
        let thread_shown = shown.clone();
        let spawned = std::thread::Builder::new()
            .name("notifications".into())
            .spawn(move || run(rx, thread_shown));
        if let Err(e) = spawned {
            tracing::warn!("notifications are off: {e}");
        }
        Self { tx, shown }
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

    pub fn close(&self, request_ids: Vec<i64>) {
        if !request_ids.is_empty() {
            let _ = self.tx.send(Command::Close(request_ids));
        }
    }

    /// The requests behind a notification id (for clicks).
    pub fn requests_of(&self, notification: u32) -> Option<Vec<i64>> {
        crate::state::lock(&self.shown).get(&notification).cloned()
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

fn run(rx: mpsc::Receiver<Command>, shown: Shown) {
    let mut handles: HashMap<u32, (notify_rust::NotificationHandle, Vec<i64>)> = HashMap::new();
    while let Ok(cmd) = rx.recv() {
        match cmd {
            Command::Requests(requests) => {
                let (summary, body) = if let [r] = requests.as_slice() {
                    (
                        headline(r),
                        format!(
                            "Waiting for your decision on {} ({})",
                            r.account, r.platform
                        ),
                    )
                } else {
                    let mut lines: Vec<String> =
                        requests.iter().take(SUMMARY_LINES).map(headline).collect();
                    if requests.len() > SUMMARY_LINES {
                        lines.push(format!("and {} more", requests.len() - SUMMARY_LINES));
                    }
                    (
                        format!("{} new requests waiting", requests.len()),
                        lines.join("\n"),
                    )
                };
                let ids: Vec<i64> = requests.iter().map(|r| r.id).collect();
                match notify_rust::Notification::new()
                    .appname("Countersign")
                    .summary(&summary)
                    .body(&text_only(&body))
                    .icon("dialog-question")
                    .action("default", "Open")
                    .show()
                {
                    Ok(handle) => {
                        let id = handle.id();
                        crate::state::lock(&shown).insert(id, ids.clone());
                        handles.insert(id, (handle, ids));
                    }
                    Err(e) => tracing::warn!("could not show a notification: {e}"),
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
            Command::Close(resolved) => {
                let mut done = Vec::new();
                for (id, (_, ids)) in handles.iter_mut() {
                    ids.retain(|r| !resolved.contains(r));
                    if ids.is_empty() {
                        done.push(*id);
                    }
                }
                for id in done {
                    if let Some((handle, _)) = handles.remove(&id) {
                        crate::state::lock(&shown).remove(&id);
                        handle.close();
                    }
                }
            }
        }
    }
}

/// Listens for notification clicks and calls `on_click` with the request to
/// open. Ends quietly where there is no session bus.
pub async fn listen_for_clicks(notifier: Notifier, on_click: impl Fn(i64) + Send + 'static) {
    use futures::StreamExt;
    let run = async {
        let conn = zbus::Connection::session().await?;
        let rule = zbus::MatchRule::builder()
            .msg_type(zbus::message::Type::Signal)
            .interface("org.freedesktop.Notifications")?
            .member("ActionInvoked")?
            .build();
        let mut stream = zbus::MessageStream::for_match_rule(rule, &conn, Some(64)).await?;
        while let Some(Ok(msg)) = stream.next().await {
            if let Ok((id, _action)) = msg.body().deserialize::<(u32, String)>() {
                if let Some(first) = notifier
                    .requests_of(id)
                    .and_then(|ids| ids.first().copied())
                {
                    on_click(first);
                }
            }
        }
        Ok::<(), zbus::Error>(())
    };
    if let Err(e) = run.await {
        tracing::info!("notification clicks are not available: {e}");
    }
}
