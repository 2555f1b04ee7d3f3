//! Native notifications: the freedesktop notification server over one
//! D-Bus connection on Linux (`zbus`), `notify-rust` elsewhere.
//!
//! One notification per new pending request — agent and action, never the
//! argument values, since notifications reach lock screens. The first of a
//! quiet period shows at once; the ones that follow it within 150 ms
//! become one summary. A notification closes when its requests are resolved
//! anywhere; clicking it opens the app on its request.
//!
//! With "decide from notifications" on (off by default: notifications reach
//! lock screens) and a server that shows buttons, a notification for one
//! request that takes a plain approve or deny carries Approve and Deny; a
//! press decides it as the window would, and a short follow-up says what
//! became of it.
//!
//! Showing and closing run on one thread of their own (the D-Bus calls
//! block), over one connection for the app's life (made again if it
//! breaks). Servers send clicks (`ActionInvoked`) and closes
//! (`NotificationClosed`) to the connection that showed a notification;
//! a second thread reads them and maps the server's ids to requests.

use countersign_model::{Activity, AllowedDecision, Outcome, Request};
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
    /// New pending requests; with `true`, decide buttons where allowed.
    Requests(Vec<Request>, bool),
    /// The result of a decision made from a notification.
    Followup(String, String),
    Activity(Vec<Activity>),
    Close(Vec<i64>),
    /// A decision the platform took but did not follow.
    NotAsDecided(Box<Request>, String),
}

/// Notification id → the requests it stands for.
type Shown = Arc<Mutex<HashMap<u32, Vec<i64>>>>;

/// What the notifications' buttons do: open a request (a click on the
/// notification), or decide it (its Approve / Deny buttons).
#[derive(Clone)]
pub struct Handlers {
    pub on_click: Arc<dyn Fn(i64) + Send + Sync>,
    pub on_decide: Arc<dyn Fn(i64, Outcome) + Send + Sync>,
}

#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::Sender<Command>,
}

impl Notifier {
    pub fn start(handlers: Handlers) -> Self {
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("notifications".into())
            .spawn(move || run(rx, handlers));
        if let Err(e) = spawned {
            tracing::warn!("notifications are off: {e}");
        }
        Self { tx }
    }

    /// New pending requests; `actions`: the user allows deciding from
    /// notifications.
    pub fn requests(&self, requests: Vec<Request>, actions: bool) {
        if !requests.is_empty() {
            let _ = self.tx.send(Command::Requests(requests, actions));
        }
    }

    /// A short note on what became of a decision made from a notification.
    pub fn followup(&self, summary: String, body: String) {
        let _ = self.tx.send(Command::Followup(summary, body));
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

/// `s` on one line, hidden characters shown as markers, at most `max`.
fn one_line(s: &str, max: usize) -> String {
    countersign_model::text::one_line(s.trim(), max)
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

fn run(rx: mpsc::Receiver<Command>, handlers: Handlers) {
    let mut bus = Bus::new(handlers);
    let mut coalescer = Coalescer::<Request>::default();
    // Whether the next requests' notifications may carry decide buttons.
    let mut with_actions = false;
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
            show_requests(&mut bus, &requests, with_actions);
        }
        let Some(cmd) = cmd else { continue };
        match cmd {
            Command::Requests(requests, actions) => {
                with_actions = actions;
                if let Some(now) = coalescer.add(requests, Instant::now()) {
                    show_requests(&mut bus, &now, with_actions);
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
                bus.notify(&Note {
                    summary,
                    body: "Reported by an agent; nothing to decide".into(),
                    icon: "dialog-information",
                    actions: Vec::new(),
                    requests: Vec::new(),
                });
            }
            Command::NotAsDecided(request, note) => {
                bus.notify(&Note {
                    summary: format!("Not as decided: {}", headline(&request)),
                    body: text_only(&one_line(&note, 300)),
                    icon: "dialog-warning",
                    actions: Vec::new(),
                    requests: Vec::new(),
                });
            }
            Command::Followup(summary, body) => {
                bus.notify(&Note {
                    summary: one_line(&summary, 120),
                    body: text_only(&one_line(&body, 300)),
                    icon: "dialog-information",
                    actions: Vec::new(),
                    requests: Vec::new(),
                });
            }
            Command::Close(resolved) => {
                coalescer.drop_where(|r| resolved.contains(&r.id));
                let done: Vec<u32> = {
                    let mut map = lock(&bus.shown);
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
                    bus.close(id);
                }
            }
        }
    }
}

/// Whether a request can be answered by a button on its notification: a
/// plain approve or deny, with nothing to type, choose or edit, and this
/// account allowed to answer it.
fn decidable_from_notification(r: &Request) -> bool {
    r.status.is_pending()
        && r.allows(AllowedDecision::Approve)
        && r.allows(AllowedDecision::Deny)
        && r.extra.answer_schema.is_none()
        && r.extra.read_only.is_none()
        && !r.extra.proposal
        && r.extra.group.is_none()
        // Hidden characters: open it and read it first.
        && r.hidden.is_none()
}

fn show_requests(bus: &mut Bus, requests: &[Request], with_actions: bool) {
    if requests.is_empty() {
        return;
    }
    let (summary, body) = if let [r] = requests {
        let warning = if r.hidden.is_some() {
            "\n⚠ Its text hides characters: open it before deciding."
        } else {
            ""
        };
        (
            headline(r),
            format!(
                "Waiting for your decision on {} ({}){warning}",
                one_line(&r.account, 60),
                r.platform
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
    let mut actions = vec![("default", "Open")];
    // Decide buttons only on a notification for one request, and only if
    // the server shows buttons at all.
    if let [r] = requests {
        if with_actions && decidable_from_notification(r) && bus.has_actions() {
            actions.push(("approve", "Approve"));
            actions.push(("deny", "Deny"));
        }
    }
    bus.notify(&Note {
        summary,
        body: text_only(&body),
        icon: "dialog-question",
        actions,
        requests: requests.iter().map(|r| r.id).collect(),
    });
}

/// One notification to show.
struct Note {
    summary: String,
    body: String,
    icon: &'static str,
    /// (key, label); `default` is a click on the notification itself.
    actions: Vec<(&'static str, &'static str)>,
    /// The requests it stands for (none: nothing to open or decide).
    requests: Vec<i64>,
}

const DEST: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";

/// The one session-bus connection notifications go over, kept for the
/// app's life and made again if it breaks. Servers send `ActionInvoked`
/// and `NotificationClosed` to the connection that showed a notification,
/// so one connection shows them all and one thread reads its signals.
struct Bus {
    conn: Option<zbus::blocking::Connection>,
    /// Notification id (the server's) → the requests it stands for.
    shown: Shown,
    handlers: Handlers,
    /// Whether the server shows action buttons (asked once per connection).
    actions: Option<bool>,
}

impl Bus {
    fn new(handlers: Handlers) -> Self {
        Self {
            conn: None,
            shown: Arc::default(),
            handlers,
            actions: None,
        }
    }

    fn connection(&mut self) -> Option<zbus::blocking::Connection> {
        if self.conn.is_none() {
            match zbus::blocking::Connection::session() {
                Ok(conn) => {
                    listen(&conn, self.shown.clone(), self.handlers.clone());
                    self.conn = Some(conn);
                    self.actions = None;
                }
                Err(e) => {
                    tracing::warn!("no notification bus: {e}");
                    return None;
                }
            }
        }
        self.conn.clone()
    }

    fn has_actions(&mut self) -> bool {
        if let Some(known) = self.actions {
            return known;
        }
        let Some(conn) = self.connection() else {
            return false;
        };
        let caps: Vec<String> = conn
            .call_method(Some(DEST), PATH, Some(DEST), "GetCapabilities", &())
            .ok()
            .and_then(|m| m.body().deserialize().ok())
            .unwrap_or_default();
        let has = caps.iter().any(|c| c == "actions");
        self.actions = Some(has);
        has
    }

    /// Shows `note`; a broken connection is made again and the call tried
    /// once more.
    fn notify(&mut self, note: &Note) {
        for attempt in 0..2 {
            let Some(conn) = self.connection() else {
                // No session bus (macOS, Windows): the platform's own
                // notifications, without buttons.
                if let Err(e) = notify_rust::Notification::new()
                    .appname("Countersign")
                    .summary(&note.summary)
                    .body(&note.body)
                    .show()
                {
                    tracing::warn!("could not show a notification: {e}");
                }
                return;
            };
            let actions: Vec<&str> = note.actions.iter().flat_map(|(k, l)| [*k, *l]).collect();
            let hints: HashMap<&str, zbus::zvariant::Value<'_>> = HashMap::new();
            let sent = conn.call_method(
                Some(DEST),
                PATH,
                Some(DEST),
                "Notify",
                &(
                    "Countersign",
                    0u32,
                    note.icon,
                    note.summary.as_str(),
                    note.body.as_str(),
                    actions,
                    hints,
                    -1i32,
                ),
            );
            match sent.and_then(|m| m.body().deserialize::<u32>()) {
                Ok(id) => {
                    if !note.requests.is_empty() {
                        lock(&self.shown).insert(id, note.requests.clone());
                    }
                    return;
                }
                Err(e) if attempt == 0 && is_disconnect(&e) => {
                    tracing::info!("notification bus lost ({e}); connecting again");
                    self.conn = None;
                }
                Err(e) => {
                    tracing::warn!("could not show a notification: {e}");
                    return;
                }
            }
        }
    }

    fn close(&mut self, id: u32) {
        let Some(conn) = self.connection() else {
            return;
        };
        if let Err(e) = conn.call_method(Some(DEST), PATH, Some(DEST), "CloseNotification", &(id,))
        {
            tracing::debug!("could not close notification {id}: {e}");
        }
    }
}

/// The unique bus name of the notification server now.
fn server_name(conn: &zbus::blocking::Connection) -> Option<String> {
    let bus = zbus::blocking::fdo::DBusProxy::new(conn).ok()?;
    let name = zbus::names::BusName::try_from(DEST).ok()?;
    bus.get_name_owner(name).ok().map(|n| n.to_string())
}

fn is_disconnect(e: &zbus::Error) -> bool {
    matches!(e, zbus::Error::InputOutput(_) | zbus::Error::Handshake(_))
}

/// Reads clicks and closes for our notifications, until the connection
/// ends.
fn listen(conn: &zbus::blocking::Connection, shown: Shown, handlers: Handlers) {
    let rule = zbus::MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface(DEST)
        .and_then(|b| b.path(PATH))
        .map(|b| b.build());
    let messages = match rule
        .and_then(|rule| zbus::blocking::MessageIterator::for_match_rule(rule, conn, Some(256)))
    {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("clicks on notifications will not be seen: {e}");
            return;
        }
    };
    let conn = conn.clone();
    let spawned = std::thread::Builder::new()
        .name("notification-signals".into())
        .spawn(move || {
            let mut server: Option<String> = None;
            for msg in messages {
                let Ok(msg) = msg else { break };
                let header = msg.header();
                // Only the notification server may press our buttons: any
                // program on the session bus can send these signals.
                let sender = header.sender().map(|s| s.to_string());
                if sender.is_none() || sender != server {
                    server = server_name(&conn);
                    if sender.is_none() || sender != server {
                        tracing::warn!(
                            ?sender,
                            "ignored a notification signal not sent by the notification server"
                        );
                        continue;
                    }
                }
                match header.member().map(|m| m.as_str()) {
                    Some("ActionInvoked") => {
                        let Ok((id, key)) = msg.body().deserialize::<(u32, String)>() else {
                            continue;
                        };
                        let ids = lock(&shown).get(&id).cloned();
                        let Some(ids) = ids else { continue };
                        match key.as_str() {
                            "approve" | "deny" => {
                                lock(&shown).remove(&id);
                                let outcome = if key == "approve" {
                                    Outcome::Approve
                                } else {
                                    Outcome::Deny
                                };
                                if let [one] = ids.as_slice() {
                                    (handlers.on_decide)(*one, outcome);
                                }
                            }
                            _ => {
                                if let Some(first) = ids.first() {
                                    (handlers.on_click)(*first);
                                }
                            }
                        }
                    }
                    Some("NotificationClosed") => {
                        if let Ok((id, _reason)) = msg.body().deserialize::<(u32, u32)>() {
                            lock(&shown).remove(&id);
                        }
                    }
                    _ => {}
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("clicks on notifications will not be seen: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_model::{Kind, ObservedRequest, Platform};
    use serde_json::json;

    fn request(allowed: Vec<AllowedDecision>) -> Request {
        let o = ObservedRequest {
            remote_id: "r".into(),
            route: json!({}),
            kind: Kind::Approval,
            title: "push tag".into(),
            action: "push tag".into(),
            arguments: json!({}),
            description: None,
            agent: None,
            tier: None,
            created_at: chrono::Utc::now(),
            deadline: None,
            allowed_decisions: allowed,
            link: None,
            extra: Default::default(),
            raw: json!({}),
        };
        Request::observed_as_pending(&o, 1, "prod", Platform::Molecule)
    }

    #[test]
    fn only_a_plain_approve_or_deny_gets_buttons() {
        use AllowedDecision::*;
        assert!(
            decidable_from_notification(&request(vec![Approve, Deny])),
            "a plain approval can be decided from its notification"
        );
        let mut question = request(vec![Approve, Deny, Respond]);
        question.extra.answer_schema = Some(json!({"type": "string"}));
        assert!(
            !decidable_from_notification(&question),
            "a request that needs an answer typed cannot be"
        );
        let mut not_ours = request(vec![Approve, Deny]);
        not_ours.extra.read_only = Some("not on the reviewer list".into());
        assert!(
            !decidable_from_notification(&not_ours),
            "nor one this account may not answer"
        );
        assert!(
            !decidable_from_notification(&request(vec![Approve])),
            "nor one without both a plain approve and deny"
        );
        let mut hiding = request(vec![Approve, Deny]);
        hiding.hidden = Some("hidden characters: ⟨U+202E⟩".into());
        assert!(
            !decidable_from_notification(&hiding),
            "nor one whose text hides characters: it must be opened and read first"
        );
        assert_eq!(
            one_line("push \u{202E}gat", 120),
            "push ⟨U+202E⟩gat",
            "a notification shows the override, never obeys it"
        );
    }

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
