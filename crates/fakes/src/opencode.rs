//! A fake OpenCode server (`shared/protocols/opencode.md`, opencode
//! 1.18.33) following the doc's fake-server contract: per-directory
//! instances with in-memory pending permission requests and allow lists,
//! `GET /permission`, `POST /permission/{id}/reply` (and the deprecated
//! session route) with the same-session cascades, `/event` and
//! `/global/event` SSE with `server.connected` and heartbeats, optional
//! Basic auth on every route, and control routes under `/__fake/`.
//!
//! Request ids are fresh for every ask, as OpenCode's are: a tool call
//! that asks again ([`FakeOpenCode::ask_again`]) gets a new id under the
//! same `callID`. [`FakeOpenCode::reask_same_id`] models the one way
//! 1.18.33 can change an ask under an id already pending (an in-process
//! caller passing its own `id`), for clients that must notice.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};

/// Tunables of one fake server.
#[derive(Debug, Clone)]
pub struct Config {
    /// `OPENCODE_SERVER_PASSWORD`: Basic auth on every route when set.
    pub password: Option<String>,
    /// `OPENCODE_SERVER_USERNAME` (default `opencode`).
    pub username: String,
    /// The server's working directory: the default instance.
    pub cwd: String,
    /// Heartbeat interval (10 s in OpenCode).
    pub heartbeat: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            password: None,
            username: "opencode".into(),
            cwd: "/srv/project".into(),
            heartbeat: Duration::from_secs(10),
        }
    }
}

/// One reply as received (message included: the event never carries it).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedReply {
    pub id: String,
    pub directory: String,
    pub reply: String,
    pub message: Option<String>,
}

#[derive(Default)]
struct Instance {
    /// Insertion order = creation order.
    pending: Vec<Value>,
    allow: Vec<String>,
}

#[derive(Default)]
struct Data {
    instances: HashMap<String, Instance>,
    counter: u64,
    replies: Vec<ReceivedReply>,
    /// The id of every reply posted, answered or not (404 included).
    posted: Vec<String>,
    /// Some earlier 1.x releases: a reply to an unknown id answers 200
    /// `true` and does nothing.
    legacy_unknown_ok: bool,
    aborted: HashSet<String>,
    /// Event types whose frames are not sent (lost events).
    drop_types: HashSet<String>,
    /// Tool parts run without asking (activity), as published.
    heartbeats: bool,
    /// `GET /permission` calls answered.
    lists: u32,
}

struct Shared {
    config: Config,
    data: Mutex<Data>,
    /// (directory or None, event) to every stream.
    bus: broadcast::Sender<(Option<String>, Value)>,
    /// Bumped to close every open stream (restart, dispose, drop).
    generation: watch::Sender<u64>,
    /// Bumped to cut every open stream as a failing network does.
    cut: watch::Sender<u64>,
    /// Event streams open now, and opened since the start.
    streams_open: AtomicUsize,
    streams_opened: AtomicUsize,
}

/// Counts one open event stream for as long as it lives.
struct StreamGuard(Arc<Shared>);

impl StreamGuard {
    fn new(s: &Arc<Shared>) -> Self {
        s.streams_open.fetch_add(1, Ordering::SeqCst);
        s.streams_opened.fetch_add(1, Ordering::SeqCst);
        Self(s.clone())
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.streams_open.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Shared {
    fn data(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_id(&self, prefix: &str) -> String {
        let mut d = self.data();
        d.counter += 1;
        let ms = chrono::Utc::now().timestamp_millis() as u64;
        // The low 48 bits, as OpenCode's identifiers keep them.
        let stamp = (ms * 4096 + (d.counter % 4096)) & 0xffff_ffff_ffff;
        let tail: String = uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .chars()
            .take(14)
            .collect();
        format!("{prefix}_{stamp:012x}{tail}")
    }

    fn publish(&self, directory: Option<&str>, kind: &str, properties: Value) {
        if self.data().drop_types.contains(kind) {
            return;
        }
        let event = json!({"id": self.next_id("evt"), "type": kind, "properties": properties});
        let _ = self.bus.send((directory.map(str::to_owned), event));
    }

    /// Asks (or allows silently when the instance's allow list matches).
    fn ask(&self, directory: &str, mut request: Value) -> Option<String> {
        let patterns: Vec<String> = strings(&request["patterns"]);
        {
            let d = self.data();
            let allow = d
                .instances
                .get(directory)
                .map(|i| i.allow.clone())
                .unwrap_or_default();
            if !patterns.is_empty()
                && patterns
                    .iter()
                    .all(|p| allow.iter().any(|a| wildcard(a, p)))
            {
                return None;
            }
        }
        let id = self.next_id("per");
        request["id"] = json!(id);
        self.data()
            .instances
            .entry(directory.to_owned())
            .or_default()
            .pending
            .push(request.clone());
        self.publish(Some(directory), "permission.asked", request);
        Some(id)
    }

    /// Applies a reply with its cascades; `false` when the id is not
    /// pending in that instance.
    fn reply(&self, directory: &str, id: &str, reply: &str, message: Option<String>) -> bool {
        let (replied, session) = {
            let mut d = self.data();
            let Some(inst) = d.instances.get_mut(directory) else {
                return false;
            };
            let Some(pos) = inst.pending.iter().position(|r| r["id"] == id) else {
                return false;
            };
            let req = inst.pending.remove(pos);
            let session = req["sessionID"].as_str().unwrap_or("").to_owned();
            let mut replied = vec![(id.to_owned(), reply.to_owned())];
            match reply {
                "always" => {
                    inst.allow.extend(strings(&req["always"]));
                    let allow = inst.allow.clone();
                    // Same-session requests that now match are released.
                    inst.pending.retain(|r| {
                        let matches = r["sessionID"] == session.as_str()
                            && strings(&r["patterns"])
                                .iter()
                                .all(|p| allow.iter().any(|a| wildcard(a, p)));
                        if matches {
                            replied
                                .push((r["id"].as_str().unwrap_or("").to_owned(), "always".into()));
                        }
                        !matches
                    });
                }
                "reject" => {
                    inst.pending.retain(|r| {
                        let same = r["sessionID"] == session.as_str();
                        if same {
                            replied
                                .push((r["id"].as_str().unwrap_or("").to_owned(), "reject".into()));
                        }
                        !same
                    });
                }
                _ => {}
            }
            d.replies.push(ReceivedReply {
                id: id.to_owned(),
                directory: directory.to_owned(),
                reply: reply.to_owned(),
                message,
            });
            (replied, session)
        };
        for (rid, how) in replied {
            self.publish(
                Some(directory),
                "permission.replied",
                json!({"sessionID": session, "requestID": rid, "reply": how}),
            );
        }
        true
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// OpenCode's anchored wildcard: `*` matches anything; a pattern ending in
/// ` *` also matches the bare command.
fn wildcard(pattern: &str, value: &str) -> bool {
    if let Some(stem) = pattern.strip_suffix(" *") {
        if value == stem {
            return true;
        }
    }
    fn go(p: &[u8], v: &[u8]) -> bool {
        match p.split_first() {
            None => v.is_empty(),
            Some((b'*', rest)) => (0..=v.len()).any(|i| go(rest, &v[i..])),
            Some((c, rest)) => v.first() == Some(c) && go(rest, &v[1..]),
        }
    }
    go(pattern.as_bytes(), value.as_bytes())
}

/// A running fake OpenCode server on `127.0.0.1`.
pub struct FakeOpenCode {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

type AppState = Arc<Shared>;
type Params = Query<HashMap<String, String>>;

impl FakeOpenCode {
    pub async fn start(config: Config) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            data: Mutex::new(Data {
                heartbeats: true,
                ..Default::default()
            }),
            bus: broadcast::channel(1024).0,
            generation: watch::channel(0).0,
            cut: watch::channel(0).0,
            streams_open: AtomicUsize::new(0),
            streams_opened: AtomicUsize::new(0),
        });
        let app = router(shared.clone());
        let task = crate::spawn_server(listener, app, "opencode");
        Ok(Self { addr, shared, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The default instance's directory.
    pub fn cwd(&self) -> String {
        self.shared.config.cwd.clone()
    }

    /// An agent asks, as a `bash` tool call would: returns the request id,
    /// or `None` when the instance's allow list let it through.
    pub fn ask_bash(&self, directory: &str, session: &str, command: &str) -> Option<String> {
        let first = command.split_whitespace().next().unwrap_or(command);
        self.ask(
            directory,
            json!({"sessionID": session, "permission": "bash", "patterns": [command],
                   "metadata": {"command": command}, "always": [format!("{first} *")],
                   "tool": {"messageID": self.shared.next_id("msg"), "callID": format!("call_{}", &uuid::Uuid::new_v4().simple().to_string()[..12])}}),
        )
    }

    /// Any request (without `id`; one is assigned).
    pub fn ask(&self, directory: &str, request: Value) -> Option<String> {
        self.shared.ask(directory, request)
    }

    pub fn pending(&self, directory: &str) -> Vec<Value> {
        self.shared
            .data()
            .instances
            .get(directory)
            .map(|i| i.pending.clone())
            .unwrap_or_default()
    }

    /// How many `GET /permission` lists were answered.
    pub fn list_calls(&self) -> u32 {
        self.shared.data().lists
    }

    pub fn replies(&self) -> Vec<ReceivedReply> {
        self.shared.data().replies.clone()
    }

    /// The request id of every reply posted to either reply route, in
    /// order, whatever the answer (a 404 included): what a client sent,
    /// not only what took effect.
    pub fn reply_posts(&self) -> Vec<String> {
        self.shared.data().posted.clone()
    }

    /// Legacy mode of some earlier 1.x releases: a reply to an unknown id
    /// answers 200 `true` and does nothing.
    pub fn set_legacy_unknown_ok(&self, on: bool) {
        self.shared.data().legacy_unknown_ok = on;
    }

    /// The same tool call asks again after another client (the terminal)
    /// answered `id` with `reply`: a new request with `next`'s
    /// `permission`, `patterns`, `always` and `metadata`, and the first
    /// one's session and `tool` (`messageID`, `callID`), as a `bash` call
    /// asks `external_directory` first and `bash` once that is allowed.
    /// Returns the new id (never `id`: OpenCode gives every ask a fresh
    /// one), or `None` when `id` was not pending or the allow list let
    /// the new ask through.
    pub fn ask_again(&self, directory: &str, id: &str, reply: &str, next: Value) -> Option<String> {
        let first = self
            .pending(directory)
            .into_iter()
            .find(|r| r["id"] == id)?;
        if !self.reply_elsewhere(directory, id, reply) {
            return None;
        }
        let mut next = next;
        next["sessionID"] = first["sessionID"].clone();
        if let Some(tool) = first.get("tool") {
            next["tool"] = tool.clone();
        }
        self.ask(directory, next)
    }

    /// Changes a pending request in place under its id and publishes
    /// `permission.asked` again: what 1.18.33's `Permission.ask` does when
    /// an in-process caller passes an `id` already pending (it overwrites
    /// the entry). No tool and no HTTP route does that; clients apply
    /// `permission.asked` as an upsert by id all the same. `change` holds
    /// the fields to replace (`patterns`, `metadata`…). `false` when `id`
    /// is not pending there.
    pub fn reask_same_id(&self, directory: &str, id: &str, change: Value) -> bool {
        let updated = {
            let mut d = self.shared.data();
            let Some(r) = d
                .instances
                .get_mut(directory)
                .and_then(|i| i.pending.iter_mut().find(|r| r["id"] == id))
            else {
                return false;
            };
            if let (Some(r), Some(change)) = (r.as_object_mut(), change.as_object()) {
                for (k, v) in change {
                    if k != "id" {
                        r.insert(k.clone(), v.clone());
                    }
                }
            }
            r.clone()
        };
        self.shared
            .publish(Some(directory), "permission.asked", updated);
        true
    }

    /// Another client (the terminal UI) answers.
    pub fn reply_elsewhere(&self, directory: &str, id: &str, reply: &str) -> bool {
        let ok = self.shared.reply(directory, id, reply, None);
        // Not the client's: forget it in the record (only if recorded).
        if ok {
            self.shared.data().replies.pop();
        }
        ok
    }

    /// Event types that get lost on the way (`permission.asked`…).
    pub fn drop_events(&self, kind: &str, drop: bool) {
        let mut d = self.shared.data();
        if drop {
            d.drop_types.insert(kind.to_owned());
        } else {
            d.drop_types.remove(kind);
        }
    }

    /// Closes every open event stream (a network drop).
    pub fn drop_streams(&self) {
        self.shared.generation.send_modify(|g| *g += 1);
    }

    /// Cuts every open event stream the way a failing network or a
    /// killed proxy does, rather than the server ending it: the frame in
    /// flight (the next event, when one is queued) goes out only half, then
    /// the connection is aborted without the chunked body's end, so the
    /// client sees a read error. The half-sent event is lost with it.
    pub fn cut_streams(&self) {
        self.shared.cut.send_modify(|g| *g += 1);
    }

    /// Event streams open now.
    pub fn open_streams(&self) -> usize {
        self.shared.streams_open.load(Ordering::SeqCst)
    }

    /// Event streams opened since the start, closed ones included: grows
    /// by one on every reconnect.
    pub fn streams_opened(&self) -> usize {
        self.shared.streams_opened.load(Ordering::SeqCst)
    }

    /// Stops heartbeats (a stalled stream).
    pub fn set_heartbeats(&self, on: bool) {
        self.shared.data().heartbeats = on;
    }

    /// `POST /session/{id}/abort`: the requests stay listed, no event.
    pub fn abort(&self, session: &str) {
        self.shared.data().aborted.insert(session.to_owned());
    }

    /// A restart: every pending request and allow list is lost, streams
    /// close.
    pub fn restart(&self) {
        self.shared.data().instances.clear();
        self.drop_streams();
    }
}

impl Drop for FakeOpenCode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn router(shared: AppState) -> Router {
    Router::new()
        .route(
            "/global/health",
            get(|| async { Json(json!({"healthy": true, "version": "1.18.33"})) }),
        )
        .route("/permission", get(list))
        .route("/permission/{id}/reply", post(reply))
        .route("/session/{sid}/permissions/{pid}", post(reply_deprecated))
        .route("/event", get(instance_events))
        .route("/global/event", get(global_events))
        .route("/__fake/ask", post(fake_ask))
        .route("/__fake/reply-elsewhere", post(fake_reply_elsewhere))
        .route("/__fake/restart", post(fake_restart))
        .layer(middleware::from_fn_with_state(shared.clone(), basic_auth))
        .with_state(shared)
}

/// Basic auth on every route when a password is set; `?auth_token=` too.
async fn basic_auth(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let Some(password) = &s.config.password else {
        return next.run(req).await;
    };
    let expected = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{password}", s.config.username));
    let header_ok = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .is_some_and(|v| v.trim() == expected);
    let query_ok = req.uri().query().is_some_and(|q| {
        q.split('&').any(|kv| {
            kv.strip_prefix("auth_token=").is_some_and(|t| {
                t.replace("%3D", "=")
                    .replace("%2B", "+")
                    .replace("%2F", "/")
                    == expected
            })
        })
    });
    if header_ok || query_ok {
        return next.run(req).await;
    }
    let mut resp = StatusCode::UNAUTHORIZED.into_response();
    resp.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static("Basic realm=\"Secure Area\""),
    );
    resp
}

fn directory(s: &Shared, q: &Params, headers: &HeaderMap) -> String {
    q.get("directory")
        .cloned()
        .or_else(|| {
            headers
                .get("x-opencode-directory")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| s.config.cwd.clone())
}

async fn list(State(s): State<AppState>, q: Params, headers: HeaderMap) -> Response {
    let dir = directory(&s, &q, &headers);
    let mut d = s.data();
    d.lists += 1;
    let pending = d
        .instances
        .get(&dir)
        .map(|i| i.pending.clone())
        .unwrap_or_default();
    Json(Value::Array(pending)).into_response()
}

fn not_found(id: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"_tag": "PermissionNotFoundError", "requestID": id,
                    "message": format!("Permission request not found: {id}")})),
    )
        .into_response()
}

fn bad_request(message: String, kind: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"name": "BadRequest", "data": {"message": message, "kind": kind}})),
    )
        .into_response()
}

async fn reply(
    State(s): State<AppState>,
    Path(id): Path<String>,
    q: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.data().posted.push(id.clone());
    if !id.starts_with("per") {
        return bad_request(format!("Expected a permission id, got {id:?}"), "Params");
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let Some(obj) = body.as_object() else {
        return bad_request("Expected an object".into(), "Payload");
    };
    if obj.keys().any(|k| k != "reply" && k != "message") {
        return bad_request("Unexpected keys".into(), "Payload");
    }
    let how = obj.get("reply").and_then(Value::as_str).unwrap_or("");
    if !matches!(how, "once" | "always" | "reject") {
        return bad_request(
            format!("Expected \"once\" | \"always\" | \"reject\", got {how:?}"),
            "Payload",
        );
    }
    let message = obj
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let dir = directory(&s, &q, &headers);
    if s.reply(&dir, &id, how, message) || s.data().legacy_unknown_ok {
        Json(json!(true)).into_response()
    } else {
        not_found(&id)
    }
}

async fn reply_deprecated(
    State(s): State<AppState>,
    Path((_sid, pid)): Path<(String, String)>,
    q: Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    s.data().posted.push(pid.clone());
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let how = body.get("response").and_then(Value::as_str).unwrap_or("");
    if !matches!(how, "once" | "always" | "reject") {
        return bad_request(format!("bad response {how:?}"), "Payload");
    }
    let dir = directory(&s, &q, &headers);
    if s.reply(&dir, &pid, how, None) || s.data().legacy_unknown_ok {
        Json(json!(true)).into_response()
    } else {
        not_found(&pid)
    }
}

/// `data:` frames: `server.connected` first, heartbeats, then bus events
/// (filtered to one instance, or wrapped for the global stream), until
/// the stream is dropped by a control.
fn events(s: AppState, only: Option<String>) -> Response {
    let mut bus = s.bus.subscribe();
    let mut generation = s.generation.subscribe();
    let start = *generation.borrow_and_update();
    let mut cut = s.cut.subscribe();
    cut.borrow_and_update();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let global = only.is_none();
    let guard = StreamGuard::new(&s);
    tokio::spawn(async move {
        let _guard = guard;
        let frame = |v: Value| Ok(Bytes::from(format!("data: {v}\n\n")));
        // A bus event as this stream shows it; None when it is not for it.
        let shown = |dir: Option<String>, event: Value| match (&only, dir) {
            (Some(want), Some(d)) if *want == d => Some(event),
            (Some(_), _) => None,
            (None, Some(d)) => Some(json!({"directory": d, "project": "global", "payload": event})),
            (None, None) => Some(json!({"payload": event})),
        };
        let connected =
            json!({"id": s.next_id("evt"), "type": "server.connected", "properties": {}});
        let first = if global {
            json!({"payload": connected})
        } else {
            connected
        };
        if tx.send(frame(first)).await.is_err() {
            return;
        }
        let mut beat = tokio::time::interval(s.config.heartbeat);
        beat.reset();
        loop {
            tokio::select! {
                _ = beat.tick() => {
                    if !s.data().heartbeats {
                        continue;
                    }
                    let hb = json!({"id": s.next_id("evt"), "type": "server.heartbeat", "properties": {}});
                    let hb = if global { json!({"payload": hb}) } else { hb };
                    if tx.send(frame(hb)).await.is_err() {
                        return;
                    }
                }
                item = bus.recv() => {
                    let (dir, event) = match item {
                        Ok(x) => x,
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return,
                    };
                    let Some(out) = shown(dir, event) else { continue };
                    if tx.send(frame(out)).await.is_err() {
                        return;
                    }
                }
                _ = generation.changed() => {
                    if *generation.borrow() != start {
                        return;
                    }
                }
                _ = cut.changed() => {
                    // Half of the event in flight, if one is queued, then
                    // an aborted connection.
                    if let Some(out) = bus.try_recv().ok().and_then(|(dir, event)| shown(dir, event)) {
                        let text = Bytes::from(format!("data: {out}\n\n"));
                        let _ = tx.send(Ok(text.slice(..text.len() / 2))).await;
                    }
                    let _ = tx
                        .send(Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            "connection cut",
                        )))
                        .await;
                    return;
                }
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    resp.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    resp
}

async fn instance_events(State(s): State<AppState>, q: Params, headers: HeaderMap) -> Response {
    let dir = directory(&s, &q, &headers);
    events(s, Some(dir))
}

async fn global_events(State(s): State<AppState>) -> Response {
    events(s, None)
}

async fn fake_ask(State(s): State<AppState>, body: Bytes) -> Response {
    let mut body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let dir = body
        .get("directory")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| s.config.cwd.clone());
    if let Some(o) = body.as_object_mut() {
        o.remove("directory");
    }
    Json(json!({"id": s.ask(&dir, body)})).into_response()
}

async fn fake_reply_elsewhere(State(s): State<AppState>, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let id = body["id"].as_str().unwrap_or("");
    let how = body["reply"].as_str().unwrap_or("once");
    let dir = body["directory"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| s.config.cwd.clone());
    let ok = s.reply(&dir, id, how, None);
    Json(json!(ok)).into_response()
}

async fn fake_restart(State(s): State<AppState>) -> Response {
    s.data().instances.clear();
    s.generation.send_modify(|g| *g += 1);
    Json(json!(true)).into_response()
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn wildcards_are_anchored_and_a_trailing_star_takes_the_bare_command() {
        assert!(wildcard("echo *", "echo hello"));
        assert!(wildcard("echo *", "echo"));
        assert!(!wildcard("echo *", "xecho hello"));
        assert!(wildcard("git status *", "git status"));
        assert!(!wildcard("rm", "rm -rf /"));
    }
}
