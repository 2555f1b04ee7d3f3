//! A fake LangGraph API server (`shared/protocols/langgraph.md`,
//! langgraph-api 0.16.7) following the doc's fake-server contract:
//! assistants, threads with pending interrupts in the three payload
//! formats, `threads/search` with its odd pagination, `/state` as the
//! authority, background runs that resume by interrupt id, and the
//! failure semantics (silent no-ops, wedged threads, plain resume with
//! several pending).
//!
//! Interrupt ids behave as LangGraph derives them: from the namespace of
//! the task that raised the interrupt, not from the ask. Each thread has a
//! checkpoint that moves only when a step completes; a node that calls
//! `interrupt()` again after a resume asks under the *same* id on the same
//! checkpoint ([`FakeLangGraph::ask_again_after_resume`]), and a task that
//! runs again raises its interrupt again under the same id, perhaps with a
//! recomputed payload ([`FakeLangGraph::reraise`]). Every run is listed by
//! `GET /threads/{id}/runs` with the resume it carried, including runs of
//! other clients ([`FakeLangGraph::answer_elsewhere`]).

// Handlers return the refusal to send as their error: a big `Err` is the
// point here, and these paths are not hot.
#![allow(clippy::result_large_err)]

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpListener;
use uuid::Uuid;

/// Tunables of one fake server.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Require this `x-api-key` (hosted LangGraph Platform).
    pub api_key: Option<String>,
    /// How long a run stays `pending`/`running` before it finishes.
    pub run_delay: Duration,
}

/// The payload formats of the doc's "Payload formats" section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    AgentInbox,
    AgentInboxBare,
    Batched,
    PerCall,
}

/// One resume as received by `POST /threads/{id}/runs`.
#[derive(Debug, Clone)]
pub struct ReceivedRun {
    pub run_id: String,
    pub thread_id: String,
    pub assistant_id: String,
    pub resume: Value,
    /// `success` or `error` once finished.
    pub status: String,
}

#[derive(Debug, Clone)]
struct Pending {
    task_id: String,
    id: String,
    value: Value,
    response_schema: Option<Value>,
}

#[derive(Debug, Clone)]
struct Thread {
    id: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    metadata: Value,
    status: String,
    values: Value,
    pending: Vec<Pending>,
    error: Option<Value>,
    /// A bad answer checkpointed for an interrupt: replayed on every resume.
    wedged: Option<String>,
    /// `thread.interrupts` shows `{}` although `/state` has them.
    stale: bool,
    /// The checkpoint the pending interrupts belong to: it moves when a
    /// step completes, not when a resume runs a task again.
    checkpoint_id: String,
    checkpoint_at: DateTime<Utc>,
}

impl Thread {
    /// A step completed: the thread is at a new checkpoint, where new
    /// tasks (and so new interrupt ids) start.
    fn next_checkpoint(&mut self) {
        self.checkpoint_id = Uuid::new_v4().to_string();
        self.checkpoint_at = later_than(self.checkpoint_at);
    }
}

#[derive(Debug, Clone)]
struct Run {
    run_id: String,
    thread_id: String,
    assistant_id: String,
    status: String,
    kwargs: Value,
    multitask_strategy: Value,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    /// Its entry in `received`, for runs that came over HTTP.
    received: Option<usize>,
}

#[derive(Default)]
struct Data {
    threads: Vec<Thread>,
    runs: Vec<Run>,
    received: Vec<ReceivedRun>,
    state_calls: u32,
    /// Interrupts a thread raises again after its next successful resume.
    reinterrupt: HashMap<String, Vec<(Value, Option<Value>)>>,
    /// The ask a thread's node makes next, in the same task, after its
    /// next successful resume.
    ask_again: HashMap<String, (Value, Option<Value>)>,
}

struct Shared {
    config: Config,
    data: Mutex<Data>,
}

impl Shared {
    fn data(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The default assistant's UUID of a graph: deterministic per name.
pub fn assistant_id(graph: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(graph.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn hex32() -> String {
    Uuid::new_v4().simple().to_string()
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}

/// Now, but strictly after `t` as the wire shows it (microseconds), so
/// what happens next never looks simultaneous with what came before.
fn later_than(t: DateTime<Utc>) -> DateTime<Utc> {
    Utc::now().max(t + chrono::Duration::microseconds(1))
}

/// Example payloads of each format.
pub mod payloads {
    use serde_json::{json, Value};

    /// Agent Inbox `HumanInterrupt` (list form).
    pub fn agent_inbox(
        action: &str,
        args: Value,
        accept: bool,
        edit: bool,
        respond: bool,
        ignore: bool,
    ) -> Value {
        json!([{"action_request": {"action": action, "args": args},
                "config": {"allow_accept": accept, "allow_edit": edit, "allow_respond": respond, "allow_ignore": ignore},
                "description": format!("Please review `{action}`")}])
    }

    /// HITL middleware, batched: `(name, args, allowed)` per action.
    pub fn batched(actions: &[(&str, Value, &[&str])]) -> Value {
        let requests: Vec<Value> = actions
            .iter()
            .map(|(n, a, _)| json!({"name": n, "args": a, "description": format!("Tool execution requires approval\n\nTool: {n}")}))
            .collect();
        let configs: Vec<Value> = actions
            .iter()
            .map(|(n, _, allowed)| json!({"action_name": n, "allowed_decisions": allowed}))
            .collect();
        json!({"action_requests": requests, "review_configs": configs})
    }

    /// HITL middleware, per call: the value and its `response_schema`.
    pub fn per_call(name: &str, args: Value, allowed: &[&str]) -> (Value, Value) {
        let mut defs = serde_json::Map::new();
        let mut mapping = serde_json::Map::new();
        for a in allowed {
            let def = match *a {
                "approve" => {
                    json!({"type": "object", "properties": {"type": {"const": "approve"}}, "required": ["type"]})
                }
                "reject" => {
                    json!({"type": "object", "required": ["type"], "properties": {"type": {"const": "reject"}, "message": {"type": "string"}}})
                }
                "respond" => {
                    json!({"type": "object", "required": ["type", "message"], "properties": {"type": {"const": "respond"}, "message": {"type": "string"}}})
                }
                _ => {
                    json!({"type": "object", "required": ["type", "edited_action"], "properties": {"type": {"const": "edit"},
                    "edited_action": {"type": "object", "required": ["name", "args"], "properties": {"name": {"const": name}, "args": {"type": "object"}}}}})
                }
            };
            let key = format!("{}Decision", capitalise(a));
            mapping.insert((*a).to_owned(), json!(format!("#/$defs/{key}")));
            defs.insert(key, def);
        }
        let refs: Vec<Value> = mapping.values().map(|r| json!({"$ref": r})).collect();
        let schema = json!({"oneOf": refs, "discriminator": {"propertyName": "type", "mapping": mapping}, "$defs": defs});
        let value = json!({"type": "tool_approval", "tool_call_id": format!("call_{}", &super::hex32()[..8]),
                           "name": name, "args": args, "description": format!("Tool execution requires approval\n\nTool: {name}")});
        (value, schema)
    }

    fn capitalise(s: &str) -> String {
        let mut c = s.chars();
        c.next()
            .map(|f| f.to_uppercase().chain(c).collect())
            .unwrap_or_default()
    }
}

/// A running fake LangGraph server on `127.0.0.1`.
pub struct FakeLangGraph {
    addr: std::net::SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeLangGraph {
    pub async fn start(config: Config) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config,
            data: Mutex::new(Data::default()),
        });
        let app = router(shared.clone());
        let task = crate::spawn_server(listener, app, "langgraph");
        Ok(Self { addr, shared, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A thread of `graph` that ran and stopped at these interrupts
    /// (`(value, response_schema)` each, one task per interrupt). Returns
    /// the thread id and the interrupt ids.
    pub fn interrupted(
        &self,
        graph: &str,
        interrupts: Vec<(Value, Option<Value>)>,
    ) -> (String, Vec<String>) {
        let now = Utc::now();
        let id = Uuid::new_v4().to_string();
        let pending: Vec<Pending> = interrupts
            .into_iter()
            .map(|(value, response_schema)| Pending {
                task_id: Uuid::new_v4().to_string(),
                id: hex32(),
                value,
                response_schema,
            })
            .collect();
        let ids = pending.iter().map(|p| p.id.clone()).collect();
        self.shared.data().threads.push(Thread {
            id: id.clone(),
            created_at: now,
            updated_at: now,
            metadata: json!({"graph_id": graph, "assistant_id": assistant_id(graph)}),
            status: "interrupted".into(),
            values: json!({"messages": []}),
            pending,
            error: None,
            wedged: None,
            stale: false,
            checkpoint_id: Uuid::new_v4().to_string(),
            checkpoint_at: now,
        });
        (id, ids)
    }

    /// A thread that never ran (no `interrupts`, no `error` keys).
    pub fn idle_thread(&self) -> String {
        let now = Utc::now();
        let id = Uuid::new_v4().to_string();
        self.shared.data().threads.push(Thread {
            id: id.clone(),
            created_at: now,
            updated_at: now,
            metadata: json!({}),
            status: "idle".into(),
            values: Value::Null,
            pending: Vec::new(),
            error: None,
            wedged: None,
            stale: false,
            checkpoint_id: Uuid::new_v4().to_string(),
            checkpoint_at: now,
        });
        id
    }

    /// Answers a thread's interrupts elsewhere (Agent Inbox in a browser):
    /// the thread goes idle.
    pub fn resolve_elsewhere(&self, thread_id: &str) {
        if let Some(t) = self
            .shared
            .data()
            .threads
            .iter_mut()
            .find(|t| t.id == thread_id)
        {
            t.pending.clear();
            t.status = "idle".into();
            t.updated_at = Utc::now();
        }
    }

    /// `thread.interrupts` goes stale (`{}`) while `/state` stays right.
    pub fn make_stale(&self, thread_id: &str) {
        if let Some(t) = self
            .shared
            .data()
            .threads
            .iter_mut()
            .find(|t| t.id == thread_id)
        {
            t.stale = true;
        }
    }

    /// The thread pauses again after its next successful resume.
    pub fn reinterrupt_after_resume(
        &self,
        thread_id: &str,
        interrupts: Vec<(Value, Option<Value>)>,
    ) {
        self.shared
            .data()
            .reinterrupt
            .insert(thread_id.to_owned(), interrupts);
    }

    /// After its next successful resume, the node that raised the answered
    /// interrupt calls `interrupt()` once more, with this payload. As in
    /// LangGraph, the new ask has the answered one's id (derived from the
    /// task's namespace, which a resume does not change) and the thread
    /// stays on its checkpoint.
    pub fn ask_again_after_resume(
        &self,
        thread_id: &str,
        value: Value,
        response_schema: Option<Value>,
    ) {
        self.shared
            .data()
            .ask_again
            .insert(thread_id.to_owned(), (value, response_schema));
    }

    /// Another client (Agent Inbox in a browser, a script) resumes the
    /// thread with `resume`, as `POST /threads/{id}/runs` would. The run
    /// finishes at once and is listed by `GET /threads/{id}/runs`, but it
    /// is not in [`FakeLangGraph::runs`], which holds what was received
    /// over HTTP. Returns the run id; `None` for an unknown thread.
    pub fn answer_elsewhere(&self, thread_id: &str, resume: Value) -> Option<String> {
        let run_id = {
            let mut d = self.shared.data();
            let graph = d
                .threads
                .iter()
                .find(|t| t.id == thread_id)?
                .metadata
                .get("graph_id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            start_run(
                &mut d,
                thread_id,
                &assistant_id(&graph),
                json!({"command": {"resume": resume}}),
                json!("enqueue"),
                false,
            )
        };
        finish_run(&self.shared, &run_id);
        Some(run_id)
    }

    /// The task of a pending interrupt ran again (as it does when another
    /// interrupt of its thread is answered) and raised it again with this
    /// payload: same id, same checkpoint, nothing answered.
    pub fn reraise(&self, thread_id: &str, interrupt_id: &str, value: Value) {
        let mut d = self.shared.data();
        if let Some(t) = d.threads.iter_mut().find(|t| t.id == thread_id) {
            if let Some(p) = t.pending.iter_mut().find(|p| p.id == interrupt_id) {
                p.value = value;
                t.updated_at = later_than(t.updated_at);
            }
        }
    }

    /// Calls to `GET /threads/{id}/state` so far.
    pub fn state_calls(&self) -> u32 {
        self.shared.data().state_calls
    }

    pub fn runs(&self) -> Vec<ReceivedRun> {
        self.shared.data().received.clone()
    }

    /// `(status, pending interrupt ids)` of a thread.
    pub fn thread(&self, thread_id: &str) -> Option<(String, Vec<String>)> {
        self.shared
            .data()
            .threads
            .iter()
            .find(|t| t.id == thread_id)
            .map(|t| {
                (
                    t.status.clone(),
                    t.pending.iter().map(|p| p.id.clone()).collect(),
                )
            })
    }

    /// What the graph recorded as answers (in `values.answers`).
    pub fn answers(&self, thread_id: &str) -> Vec<Value> {
        self.shared
            .data()
            .threads
            .iter()
            .find(|t| t.id == thread_id)
            .and_then(|t| t.values.get("answers").and_then(Value::as_array).cloned())
            .unwrap_or_default()
    }
}

impl Drop for FakeLangGraph {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type AppState = Arc<Shared>;

fn router(shared: AppState) -> Router {
    Router::new()
        .route("/ok", get(|| async { Json(json!({"ok": true})) }))
        .route(
            "/info",
            get(|| async { Json(json!({"version": "0.16.7", "flags": {}})) }),
        )
        .route("/assistants/search", post(assistants))
        .route("/threads/search", post(search))
        .route("/threads/count", post(count))
        .route("/threads/{id}", get(thread))
        .route("/threads/{id}/state", get(state))
        .route("/threads/{id}/runs", post(create_run).get(list_runs))
        .route("/threads/{id}/runs/{rid}", get(get_run))
        .with_state(shared)
}

fn detail(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({"detail": text}))).into_response()
}

fn gate(s: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let Some(key) = &s.config.api_key else {
        return Ok(());
    };
    match headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        Some(k) if k == key => Ok(()),
        Some(_) => Err(detail(StatusCode::FORBIDDEN, "Invalid API key")),
        None => Err(detail(StatusCode::UNAUTHORIZED, "Missing API key")),
    }
}

fn interrupt_json(p: &Pending) -> Value {
    let mut v = json!({"id": p.id, "value": p.value});
    if let Some(s) = &p.response_schema {
        v["response_schema"] = s.clone();
    }
    v
}

fn thread_json(t: &Thread) -> Value {
    let mut v = json!({"thread_id": t.id, "created_at": iso(t.created_at), "updated_at": iso(t.updated_at),
        "state_updated_at": iso(t.updated_at), "metadata": t.metadata, "config": {}, "status": t.status, "values": t.values});
    // A never-run thread has neither key.
    if t.metadata.get("graph_id").is_some() {
        let mut by_task = Map::new();
        if !t.stale {
            for p in &t.pending {
                by_task.insert(p.task_id.clone(), json!([interrupt_json(p)]));
            }
        }
        v["interrupts"] = Value::Object(by_task);
        if let Some(e) = &t.error {
            v["error"] = e.clone();
        }
    }
    v
}

async fn assistants(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(r) = gate(&s, &headers) {
        return r;
    }
    let mut graphs: Vec<String> = s
        .data()
        .threads
        .iter()
        .filter_map(|t| {
            t.metadata
                .get("graph_id")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    graphs.sort();
    graphs.dedup();
    let list: Vec<Value> = graphs
        .iter()
        .map(|g| json!({"assistant_id": assistant_id(g), "graph_id": g, "name": g}))
        .collect();
    Json(Value::Array(list)).into_response()
}

fn contains(hay: &Value, needle: &Value) -> bool {
    match (hay, needle) {
        (Value::Object(h), Value::Object(n)) => n
            .iter()
            .all(|(k, v)| h.get(k).is_some_and(|hv| contains(hv, v))),
        (h, n) => h == n,
    }
}

fn matching(s: &Shared, body: &Value) -> Result<Vec<Thread>, Response> {
    let status = body.get("status").and_then(Value::as_str);
    if let Some(st) = status {
        if !["idle", "busy", "interrupted", "error"].contains(&st) {
            return Err(detail(StatusCode::UNPROCESSABLE_ENTITY, "Invalid status"));
        }
    }
    let meta = body.get("metadata").cloned().unwrap_or(json!({}));
    Ok(s.data()
        .threads
        .iter()
        .filter(|t| status.is_none_or(|st| t.status == st))
        .filter(|t| contains(&t.metadata, &meta))
        .cloned()
        .collect())
}

async fn search(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = gate(&s, &headers) {
        return r;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
    let mut list = match matching(&s, &body) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let limit = body.get("limit").and_then(Value::as_u64).unwrap_or(10);
    if !(1..=1000).contains(&limit) {
        return detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit must be between 1 and 1000",
        );
    }
    let offset = body.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
    let asc = body.get("sort_order").and_then(Value::as_str) == Some("asc");
    match body
        .get("sort_by")
        .and_then(Value::as_str)
        .unwrap_or("created_at")
    {
        "updated_at" | "state_updated_at" => list.sort_by_key(|t| t.updated_at),
        "thread_id" => list.sort_by(|a, b| a.id.cmp(&b.id)),
        _ => list.sort_by_key(|t| t.created_at),
    }
    if !asc {
        list.reverse();
    }
    let total = list.len();
    let page: Vec<Value> = list
        .iter()
        .skip(offset)
        .take(limit as usize)
        .map(|t| {
            let full = thread_json(t);
            match body.get("select").and_then(Value::as_array) {
                Some(fields) => {
                    let mut out = Map::new();
                    for f in fields.iter().filter_map(Value::as_str) {
                        if let Some(v) = full.get(f) {
                            out.insert(f.to_owned(), v.clone());
                        }
                    }
                    Value::Object(out)
                }
                None => full,
            }
        })
        .collect();
    let returned = page.len();
    let mut resp = Json(Value::Array(page)).into_response();
    let more = offset + returned < total;
    // While more pages exist, "total" is offset + returned + 1.
    let shown = if more { offset + returned + 1 } else { total };
    if let Ok(v) = HeaderValue::from_str(&shown.to_string()) {
        resp.headers_mut().insert("x-pagination-total", v);
    }
    if more {
        if let Ok(v) = HeaderValue::from_str(&(offset + returned).to_string()) {
            resp.headers_mut().insert("x-pagination-next", v);
        }
    }
    resp
}

async fn count(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = gate(&s, &headers) {
        return r;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
    match matching(&s, &body) {
        Ok(l) => Json(json!(l.len())).into_response(),
        Err(r) => r,
    }
}

async fn thread(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = gate(&s, &headers) {
        return r;
    }
    match s.data().threads.iter().find(|t| t.id == id) {
        Some(t) => Json(thread_json(t)).into_response(),
        None => detail(
            StatusCode::NOT_FOUND,
            &format!("Thread with ID {id} not found"),
        ),
    }
}

async fn state(State(s): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = gate(&s, &headers) {
        return r;
    }
    let mut d = s.data();
    d.state_calls += 1;
    let Some(t) = d.threads.iter().find(|t| t.id == id) else {
        return detail(
            StatusCode::NOT_FOUND,
            &format!("Thread with ID {id} not found"),
        );
    };
    let tasks: Vec<Value> = t
        .pending
        .iter()
        .map(|p| json!({"id": p.task_id, "name": "review", "error": null, "interrupts": [interrupt_json(p)], "checkpoint": null, "state": null}))
        .collect();
    let next: Vec<&str> = if t.pending.is_empty() {
        vec![]
    } else {
        vec!["review"]
    };
    Json(json!({"values": t.values, "next": next, "tasks": tasks,
        "checkpoint": {"thread_id": t.id, "checkpoint_ns": "", "checkpoint_id": t.checkpoint_id},
        "metadata": t.metadata, "created_at": iso(t.checkpoint_at),
        "interrupts": t.pending.iter().map(interrupt_json).collect::<Vec<_>>()}))
    .into_response()
}

/// The wedge rules: `Err(message)` when the graph would raise on this
/// answer to this interrupt.
fn check_answer(p: &Pending, answer: &Value) -> Result<(), String> {
    let v = &p.value;
    let inbox = v
        .as_array()
        .and_then(|a| a.first())
        .filter(|i| i.get("action_request").is_some())
        .or_else(|| v.get("action_request").map(|_| v));
    if let Some(item) = inbox {
        let one = if v.is_array() {
            match answer.as_array() {
                Some(a) if a.len() == 1 => &a[0],
                _ => return Err("ValueError: expected a list of one HumanResponse".into()),
            }
        } else {
            answer
        };
        let kind = one.get("type").and_then(Value::as_str).unwrap_or("");
        let flag = match kind {
            "accept" => "allow_accept",
            "edit" => "allow_edit",
            "response" => "allow_respond",
            "ignore" => "allow_ignore",
            _ => return Err(format!("ValueError: unknown response type {kind:?}")),
        };
        if item["config"].get(flag).and_then(Value::as_bool) != Some(true) {
            return Err(format!("ValueError: {kind} is not allowed"));
        }
        return match kind {
            "edit" if !(one["args"]["action"].is_string() && one["args"]["args"].is_object()) => {
                Err("ValueError: edit args must be {action, args}".into())
            }
            "response" if !one["args"].is_string() => {
                Err("ValueError: response args must be a string".into())
            }
            _ => Ok(()),
        };
    }
    if let Some(requests) = v.get("action_requests").and_then(Value::as_array) {
        let Some(decisions) = answer.get("decisions").and_then(Value::as_array) else {
            return Err("ValueError: expected {\"decisions\": [...]}".into());
        };
        if decisions.len() != requests.len() {
            return Err(format!(
                "ValueError: Number of human decisions ({}) does not match number of hanging tool calls ({})",
                decisions.len(),
                requests.len()
            ));
        }
        for (i, d) in decisions.iter().enumerate() {
            let kind = d.get("type").and_then(Value::as_str).unwrap_or("");
            let allowed = v["review_configs"][i]["allowed_decisions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !allowed.iter().any(|a| a == kind) {
                return Err(format!("ValueError: Unexpected human decision: {kind}"));
            }
            if kind == "edit" && !d["edited_action"]["args"].is_object() {
                return Err("ValueError: edited_action.args must be an object".into());
            }
            if kind == "respond" && !d["message"].is_string() {
                return Err("ValueError: respond needs a message".into());
            }
        }
        return Ok(());
    }
    if v.get("type").and_then(Value::as_str) == Some("tool_approval") {
        let kind = answer.get("type").and_then(Value::as_str).unwrap_or("");
        let mapping = p
            .response_schema
            .as_ref()
            .and_then(|s| s.pointer("/discriminator/mapping"))
            .and_then(Value::as_object);
        if !mapping.is_some_and(|m| m.contains_key(kind)) {
            return Err(format!(
                "ValidationError: {kind:?} does not match the response schema"
            ));
        }
        return Ok(());
    }
    Ok(())
}

async fn create_run(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = gate(&s, &headers) {
        return r;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
    let Some(assistant) = body
        .get("assistant_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return detail(
            StatusCode::UNPROCESSABLE_ENTITY,
            "\"assistant_id\" is a required property",
        );
    };
    let strategy = body
        .get("multitask_strategy")
        .cloned()
        .unwrap_or(json!("enqueue"));
    let run_id = {
        let mut d = s.data();
        let Some(t) = d.threads.iter_mut().find(|t| t.id == id) else {
            return detail(StatusCode::NOT_FOUND, "Thread or assistant not found.");
        };
        let graph = t
            .metadata
            .get("graph_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        if assistant != graph && assistant != assistant_id(&graph) {
            return detail(
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("Invalid assistant: '{assistant}'. Must be either:\n- A valid assistant UUID, or\n- One of the registered graphs: {graph}"),
            );
        }
        if t.status == "busy" && strategy == "reject" {
            return detail(StatusCode::CONFLICT, "Thread is already running a task. Wait for it to finish or choose a different multitask strategy.");
        }
        let kwargs = json!({"input": body.get("input").cloned().unwrap_or(Value::Null),
                            "command": body.get("command").cloned().unwrap_or(Value::Null)});
        start_run(&mut d, &id, &assistant, kwargs, strategy.clone(), true)
    };
    let delay = s.config.run_delay;
    let shared = s.clone();
    let rid = run_id.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        finish_run(&shared, &rid);
    });
    let mut resp = Json(
        json!({"run_id": run_id, "thread_id": id, "assistant_id": assistant, "status": "pending",
        "multitask_strategy": strategy,
        "kwargs": {"command": {"resume": body.pointer("/command/resume")}}}),
    )
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/threads/{id}/runs/{run_id}")) {
        resp.headers_mut().insert("content-location", v);
    }
    resp
}

/// Records a new run of a thread (busy until it finishes); its id.
/// `over_http` puts it in what [`FakeLangGraph::runs`] returns.
fn start_run(
    d: &mut Data,
    thread_id: &str,
    assistant: &str,
    kwargs: Value,
    multitask_strategy: Value,
    over_http: bool,
) -> String {
    let run_id = Uuid::new_v4().to_string();
    let mut created_at = Utc::now();
    if let Some(t) = d.threads.iter_mut().find(|t| t.id == thread_id) {
        // A run always starts after the checkpoint it resumes.
        created_at = later_than(t.checkpoint_at);
        t.status = "busy".into();
    }
    let received = over_http.then(|| {
        d.received.push(ReceivedRun {
            run_id: run_id.clone(),
            thread_id: thread_id.to_owned(),
            assistant_id: assistant.to_owned(),
            resume: kwargs
                .pointer("/command/resume")
                .cloned()
                .unwrap_or(Value::Null),
            status: "pending".into(),
        });
        d.received.len() - 1
    });
    d.runs.push(Run {
        run_id: run_id.clone(),
        thread_id: thread_id.to_owned(),
        assistant_id: assistant.to_owned(),
        status: "pending".into(),
        kwargs,
        multitask_strategy,
        created_at,
        updated_at: created_at,
        received,
    });
    run_id
}

/// The resume semantics of the doc.
fn finish_run(s: &Shared, run_id: &str) {
    let mut d = s.data();
    let Some(run) = d.runs.iter().find(|r| r.run_id == run_id).cloned() else {
        return;
    };
    let thread_id = run.thread_id.as_str();
    let resume = run
        .kwargs
        .pointer("/command/resume")
        .cloned()
        .unwrap_or(Value::Null);
    let again = d.reinterrupt.get(thread_id).cloned();
    let ask_again = d.ask_again.get(thread_id).cloned();
    let Some(t) = d.threads.iter_mut().find(|t| t.id == thread_id) else {
        return;
    };
    // The first interrupt this run answered, if any.
    let outcome: Result<Option<Pending>, String> = (|| {
        if t.pending.is_empty() {
            return Ok(None); // silent no-op
        }
        if let Some(bad) = &t.wedged {
            return Err(bad.clone());
        }
        let by_id = resume.as_object().filter(|m| {
            m.keys()
                .all(|k| k.len() == 32 && k.chars().all(|c| c.is_ascii_hexdigit()))
        });
        let answers: Vec<(String, Value)> = match by_id {
            Some(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            None if t.pending.len() > 1 => {
                return Err("RuntimeError: When there are multiple pending interrupts, you must specify the interrupt id when resuming.".into())
            }
            None => vec![(t.pending[0].id.clone(), resume.clone())],
        };
        let mut first = None;
        for (id, answer) in answers {
            let Some(pos) = t.pending.iter().position(|p| p.id == id) else {
                continue; // unknown id: raised again, still pending
            };
            if let Err(e) = check_answer(&t.pending[pos], &answer) {
                let per_call = t.pending[pos].value.get("type").and_then(Value::as_str)
                    == Some("tool_approval");
                if !per_call {
                    t.wedged = Some(e.clone());
                }
                return Err(e);
            }
            let p = t.pending.remove(pos);
            let answers = t
                .values
                .as_object_mut()
                .map(|o| o.entry("answers").or_insert(json!([])));
            if let Some(Value::Array(list)) = answers {
                list.push(json!({"interrupt_id": p.id, "resume": answer}));
            } else {
                t.values = json!({"answers": [{"interrupt_id": p.id, "resume": answer}]});
            }
            first.get_or_insert(p);
        }
        Ok(first)
    })();
    t.updated_at = later_than(t.updated_at);
    let (mut used_again, mut used_ask_again) = (false, false);
    let status = match outcome {
        Ok(answered) => {
            if let Some(answered) = answered {
                match &ask_again {
                    // The node asks again in the same task: same
                    // namespace, so the same id, on the same checkpoint.
                    Some((value, schema)) => {
                        t.pending.push(Pending {
                            task_id: answered.task_id,
                            id: answered.id,
                            value: value.clone(),
                            response_schema: schema.clone(),
                        });
                        used_ask_again = true;
                    }
                    None => {
                        if t.pending.is_empty() {
                            t.next_checkpoint();
                        }
                        for (value, schema) in again.iter().flatten() {
                            t.pending.push(Pending {
                                task_id: Uuid::new_v4().to_string(),
                                id: hex32(),
                                value: value.clone(),
                                response_schema: schema.clone(),
                            });
                            used_again = true;
                        }
                    }
                }
            }
            t.status = if t.pending.is_empty() {
                "idle".into()
            } else {
                "interrupted".into()
            };
            t.error = None;
            "success"
        }
        Err(e) => {
            t.status = "error".into();
            let (kind, message) = e.split_once(": ").unwrap_or(("Error", &e));
            t.error = Some(json!({"error": kind, "message": message}));
            "error"
        }
    };
    if used_again {
        d.reinterrupt.remove(thread_id);
    }
    if used_ask_again {
        d.ask_again.remove(thread_id);
    }
    let mut received = None;
    if let Some(r) = d.runs.iter_mut().find(|r| r.run_id == run_id) {
        r.status = status.into();
        r.updated_at = later_than(r.created_at);
        received = r.received;
    }
    if let Some(r) = received.and_then(|i| d.received.get_mut(i)) {
        r.status = status.into();
    }
}

fn run_json(r: &Run) -> Value {
    json!({"run_id": r.run_id, "thread_id": r.thread_id, "assistant_id": r.assistant_id,
           "created_at": iso(r.created_at), "updated_at": iso(r.updated_at), "status": r.status,
           "metadata": {}, "kwargs": r.kwargs, "multitask_strategy": r.multitask_strategy})
}

async fn get_run(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((tid, rid)): Path<(String, String)>,
) -> Response {
    if let Err(r) = gate(&s, &headers) {
        return r;
    }
    match s
        .data()
        .runs
        .iter()
        .find(|r| r.run_id == rid && r.thread_id == tid)
    {
        Some(r) => Json(run_json(r)).into_response(),
        None => detail(StatusCode::NOT_FOUND, "Run not found"),
    }
}

/// `GET /threads/{id}/runs?limit=&offset=`: newest first, `limit`
/// defaulting to 10.
async fn list_runs(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = gate(&s, &headers) {
        return r;
    }
    let number = |k: &str, default: usize| {
        q.get(k)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let (limit, offset) = (number("limit", 10), number("offset", 0));
    let d = s.data();
    if !d.threads.iter().any(|t| t.id == id) {
        return detail(
            StatusCode::NOT_FOUND,
            &format!("Thread with ID {id} not found"),
        );
    }
    let mut runs: Vec<&Run> = d.runs.iter().filter(|r| r.thread_id == id).collect();
    runs.sort_by_key(|r| std::cmp::Reverse(r.created_at));
    let page: Vec<Value> = runs
        .into_iter()
        .skip(offset)
        .take(limit)
        .map(run_json)
        .collect();
    Json(Value::Array(page)).into_response()
}
