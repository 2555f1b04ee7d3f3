//! A fake `harn serve api` (0.10.185, §8 of the harn document): the
//! permission-request list, `respond` with first-respond-closes, the SSE
//! event stream with `event_<16 hex>` ids, `Last-Event-ID` / `after`
//! resume and `cursor_unavailable`, the protocol header (426) and API-key
//! auth (401). Test controls add requests, drop every open stream, and make
//! the live stream lose events (a lagging subscriber).

use super::harn_time;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};

pub const PROTOCOL: &str = "agents-protocol-2026-10-11";

#[derive(Default)]
struct Inner {
    items: Vec<Value>,
    /// (id, name, ApiEvent)
    events: Vec<(String, String, Value)>,
    seq: u64,
    lose_live: usize,
    responses: Vec<Value>,
}

struct Shared {
    api_key: Option<String>,
    inner: Mutex<Inner>,
    live: broadcast::Sender<(String, String, Value)>,
    drop_gen: watch::Sender<u64>,
}

type AppState = Arc<Shared>;

/// A running fake `harn serve api` on 127.0.0.1.
pub struct FakeHarnApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeHarnApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeHarnApi {
    /// Starts the server; with `api_key`, every `/v1/*` call needs it.
    pub async fn start(api_key: Option<&str>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            api_key: api_key.map(str::to_owned),
            inner: Mutex::new(Inner::default()),
            live: broadcast::channel(256).0,
            drop_gen: watch::channel(0).0,
        });
        let app = Router::new()
            .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
            .route(
                "/version",
                get(|| async {
                    Json(json!({"protocol_version": PROTOCOL, "version": "0.10.185"}))
                }),
            )
            .route("/v1/permission-requests", get(list))
            .route("/v1/permission-requests/{id}/respond", post(respond))
            .route("/v1/events/stream", get(stream))
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { addr, shared, task })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A HITL request from a session's task, as `harn.hitl.requested` would
    /// raise it; `request` is the §4 payload. Returns its id.
    ///
    /// An id already listed is registered again as `harn serve api` does
    /// (its permissions are a map by id): the record is replaced in place,
    /// pending again, with a new `created_at` and the new payload — what a
    /// replayed or re-run request under a deterministic id looks like.
    pub fn add_hitl(&self, id: &str, request: Value) -> String {
        let kind = ["question", "dual_control", "approval", "escalation"]
            .into_iter()
            .find(|k| id.starts_with(&format!("hitl_{k}_")))
            .unwrap_or("approval");
        let now = harn_time(Utc::now());
        let item = json!({"id": id, "object": "permission_request", "created_at": now, "updated_at": now,
            "metadata": {}, "session_id": "01a2011f-0000-7000-8000-000000000001", "task_id": format!("task_{id}"),
            "status": "pending", "source": "hitl", "action": kind, "request": request, "response": null});
        {
            let mut inner = self.inner();
            match inner.items.iter_mut().find(|i| i["id"] == id) {
                Some(existing) => *existing = item.clone(),
                None => inner.items.push(item.clone()),
            }
        }
        let task = format!("task_{id}");
        for (name, payload) in [
            (
                "harn.hitl.requested",
                json!({"jsonrpc": "2.0", "method": "harn.hitl.requested", "params": request}),
            ),
            (
                if kind == "question" {
                    "task.input_required"
                } else {
                    "task.auth_required"
                },
                json!({"task_id": task}),
            ),
            ("permission.requested", item.clone()),
            (
                "session.update",
                json!({"type": "hitl_request", "request_id": id}),
            ),
        ] {
            self.emit(name, &task, payload);
        }
        id.to_owned()
    }

    fn emit(&self, name: &str, task: &str, payload: Value) {
        emit(&self.shared, name, task, payload);
    }

    /// Every respond body received, in order.
    pub fn responses(&self) -> Vec<Value> {
        self.inner().responses.clone()
    }

    /// One permission request as listed.
    pub fn item(&self, id: &str) -> Option<Value> {
        self.inner().items.iter().find(|i| i["id"] == id).cloned()
    }

    /// Ends every open event stream (clients must reconnect and resume).
    pub fn drop_streams(&self) {
        self.shared.drop_gen.send_modify(|g| *g += 1);
    }

    /// The next `n` events reach history but not live subscribers, as when
    /// a lagging subscriber silently skips events.
    pub fn lose_live_events(&self, n: usize) {
        self.inner().lose_live = n;
    }

    /// Answers as another channel would (the first answer closes it).
    pub fn answer_elsewhere(&self, id: &str, approved: bool, reviewer: &str) {
        let _ = apply_response(
            &self.shared,
            id,
            json!({"approved": approved, "reviewer": reviewer}),
        );
    }
}

fn emit(shared: &Shared, name: &str, task: &str, payload: Value) {
    let mut inner = shared.inner.lock().unwrap_or_else(|p| p.into_inner());
    inner.seq += 1;
    let id = format!("event_{:016x}", inner.seq * 7919);
    let now = harn_time(Utc::now());
    let ev = json!({"id": id, "object": "event", "created_at": now, "updated_at": now, "metadata": {},
        "resource": {"object": "task", "id": task}, "sequence": inner.seq, "event": name,
        "session_id": "01a2011f-0000-7000-8000-000000000001", "task_id": task, "payload": payload});
    inner.events.push((id.clone(), name.to_owned(), ev.clone()));
    if inner.lose_live > 0 {
        inner.lose_live -= 1;
        return;
    }
    let _ = shared.live.send((id, name.to_owned(), ev));
}

fn err(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// The protocol header (checked first), then the API key.
fn gate(s: &Shared, headers: &HeaderMap) -> Option<Response> {
    let versions: Vec<_> = headers
        .get_all("harn-agents-protocol-version")
        .iter()
        .collect();
    if versions.len() != 1 || versions[0] != PROTOCOL {
        return Some(
            (StatusCode::UPGRADE_REQUIRED, Json(json!({"error": {"code": "unsupported_protocol_version",
                "message": "send Harn-Agents-Protocol-Version", "details": {"supported_versions": [PROTOCOL]}}})))
                .into_response(),
        );
    }
    let key = s.api_key.as_deref()?;
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let x = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    if bearer == Some(key) || x == Some(key) {
        None
    } else {
        Some(err(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "missing or invalid API key",
        ))
    }
}

async fn list(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = gate(&s, &headers) {
        return r;
    }
    let inner = s.inner.lock().unwrap_or_else(|p| p.into_inner());
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(50)
        .clamp(1, 200);
    let start: usize = q.get("cursor").and_then(|c| c.parse().ok()).unwrap_or(0);
    // `?task_id=` / `?session_id=` narrow the list, as harn's do.
    let wanted = |i: &&Value| {
        ["task_id", "session_id"]
            .iter()
            .all(|k| q.get(*k).is_none_or(|v| i[*k] == v.as_str()))
    };
    let matching: Vec<&Value> = inner.items.iter().filter(wanted).collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(limit)
        .map(|v| (*v).clone())
        .collect();
    let more = start + page.len() < matching.len();
    Json(json!({"object": "list", "data": page, "has_more": more,
        "next_cursor": if more { Some((start + limit).to_string()) } else { None }}))
    .into_response()
}

fn apply_response(s: &Shared, id: &str, body: Value) -> Result<Value, Box<Response>> {
    let item = {
        let mut inner = s.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.responses.push(body.clone());
        let Some(item) = inner.items.iter_mut().find(|i| i["id"] == id) else {
            return Err(Box::new(err(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such permission request",
            )));
        };
        if item["status"] != "pending" {
            return Err(Box::new(err(
                StatusCode::CONFLICT,
                "permission_not_pending",
                "permission request is not pending",
            )));
        }
        let approved = body
            .get("approved")
            .and_then(Value::as_bool)
            .unwrap_or_else(|| {
                matches!(
                    body.get("outcome").and_then(Value::as_str),
                    Some("approved" | "approve" | "selected")
                )
            });
        item["status"] = json!(if approved { "approved" } else { "denied" });
        item["updated_at"] = json!(harn_time(Utc::now()));
        let mut response = body.clone();
        if response.get("reviewer").is_none() {
            response["reviewer"] = json!("api");
        }
        item["response"] = response;
        item.clone()
    };
    let task = item["task_id"].as_str().unwrap_or_default().to_owned();
    for (name, payload) in [
        ("task.resumed", json!({"task_id": task})),
        ("permission.responded", item.clone()),
        (
            "session.update",
            json!({"type": "hitl_resolved", "request_id": id, "outcome": "answered"}),
        ),
    ] {
        emit(s, name, &task, payload);
    }
    Ok(item)
}

async fn respond(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: String,
) -> Response {
    if let Some(r) = gate(&s, &headers) {
        return r;
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return err(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            "request body is not JSON",
        );
    };
    match apply_response(&s, &id, body) {
        Ok(item) => Json(item).into_response(),
        Err(r) => *r,
    }
}

async fn stream(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Some(r) = gate(&s, &headers) {
        return r;
    }
    let cursor = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| q.get("after").or_else(|| q.get("cursor")).cloned());
    let live = s.live.subscribe();
    let history: Vec<(String, String, Value)> = {
        let inner = s.inner.lock().unwrap_or_else(|p| p.into_inner());
        match &cursor {
            None => inner.events.clone(),
            Some(c) => match inner.events.iter().position(|e| e.0 == *c) {
                Some(i) => inner.events[i + 1..].to_vec(),
                None => {
                    let frame = Event::default().event("error").data(
                        json!({"error": {"code": "cursor_unavailable", "message": format!("unknown cursor {c}")}}).to_string(),
                    );
                    let one =
                        futures::stream::once(
                            async move { Ok::<_, std::convert::Infallible>(frame) },
                        );
                    return Sse::new(one).into_response();
                }
            },
        }
    };
    let last_history = history.last().map(|e| e.0.clone());
    let frame = |(id, name, ev): (String, String, Value)| {
        Ok::<_, std::convert::Infallible>(Event::default().id(id).event(name).data(ev.to_string()))
    };
    let past = futures::stream::iter(history.into_iter().map(frame));
    let dropped = s.drop_gen.subscribe();
    let future = futures::stream::unfold(
        (live, dropped, last_history),
        move |(mut live, mut dropped, mut seen)| async move {
            loop {
                tokio::select! {
                    _ = dropped.changed() => return None,
                    got = live.recv() => match got {
                        Ok(ev) => {
                            // Skip what history already sent.
                            if let Some(last) = &seen {
                                if ev.0 <= *last { continue; }
                                seen = None;
                            }
                            return Some((frame(ev), (live, dropped, seen)));
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return None,
                    },
                }
            }
        },
    );
    Sse::new(futures::StreamExt::chain(past, future))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(5)))
        .into_response()
}
