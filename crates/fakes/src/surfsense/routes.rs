//! The fake SurfSense's HTTP surface (v0.0.38): desktop login, refresh with
//! rotation, workspaces, threads, pending interrupts, turn status, and
//! `/resume` answering with an SSE stream per the doc's framing.

// Handlers return the refusal to send as their error: a big `Err` is the
// point here, and these paths are not hot.
#![allow(clippy::result_large_err)]

use super::state::{card_key, iso, Caller, ReceivedResume, ResumeOutcome, Shared};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use uuid::Uuid;

type AppState = Arc<Shared>;
type Params = Query<HashMap<String, String>>;

pub(crate) fn router(shared: AppState) -> Router {
    Router::new()
        .route("/auth/desktop/login", post(login))
        .route("/auth/register", post(register))
        .route("/auth/jwt/refresh", post(refresh))
        .route("/auth/session", get(session))
        .route("/users/me", get(me))
        .route("/api/v1/workspaces", get(workspaces))
        .route("/api/v1/threads", get(threads))
        .route(
            "/api/v1/threads/{id}/pending-interrupts",
            get(pending_interrupts),
        )
        .route("/api/v1/threads/{id}/turn-status", get(turn_status))
        .route("/api/v1/threads/{id}/resume", post(resume))
        .route("/api/v1/threads/{id}/regenerate", post(regenerate))
        .route("/api/v1/new_chat", post(new_chat))
        .fallback(|| async {
            // Starlette's plain answer for an unknown route: no envelope.
            (StatusCode::NOT_FOUND, Json(json!({"detail": "Not Found"})))
        })
        .layer(middleware::from_fn(request_id))
        .with_state(shared)
}

/// Every response echoes `X-Request-ID`, the client's or a new one.
async fn request_id(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&format!(
                "req_{}",
                &Uuid::new_v4().simple().to_string()[..12]
            ))
            .unwrap_or(HeaderValue::from_static("req"))
        });
    let mut resp = next.run(req).await;
    resp.headers_mut().insert("x-request-id", id);
    resp
}

fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "BAD_REQUEST",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        409 => "CONFLICT",
        422 => "VALIDATION_ERROR",
        429 => "RATE_LIMITED",
        _ => "INTERNAL_ERROR",
    }
}

/// The error envelope of `app/app.py`. `detail` is the string, or a dict
/// kept as-is while `error.code` stays generic.
fn fail(status: StatusCode, detail: Value) -> Response {
    let message = match &detail {
        Value::String(s) => s.clone(),
        other => other
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("Request failed")
            .to_owned(),
    };
    (
        status,
        Json(json!({"error": {"code": code_for(status), "message": message,
            "status": status.as_u16(), "request_id": format!("req_{}", &Uuid::new_v4().simple().to_string()[..12]),
            "timestamp": Utc::now().to_rfc3339(), "report_url": "https://github.com/MODSetter/SurfSense/issues"},
            "detail": detail})),
    )
        .into_response()
}

fn unauthorized() -> Response {
    fail(StatusCode::UNAUTHORIZED, json!("Unauthorized"))
}

fn caller(s: &Shared, headers: &HeaderMap) -> Result<Caller, Response> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    s.user_for(auth).ok_or_else(unauthorized)
}

/// `chats:read` in the thread's workspace, through the PAT gate.
fn workspace_gate(s: &Shared, who: &Caller, workspace_id: i64) -> Result<(), Response> {
    let d = s.data();
    let Some(ws) = d.workspaces.iter().find(|w| w.id == workspace_id) else {
        return Err(fail(StatusCode::NOT_FOUND, json!("Workspace not found")));
    };
    if who.by_pat && !ws.api_access_enabled {
        return Err(fail(
            StatusCode::FORBIDDEN,
            json!("API access is not enabled for this workspace."),
        ));
    }
    Ok(())
}

fn thread_workspace(s: &Shared, id: i64) -> Result<i64, Response> {
    s.data()
        .threads
        .iter()
        .find(|t| t.id == id)
        .map(|t| t.workspace_id)
        .ok_or_else(|| fail(StatusCode::NOT_FOUND, json!("Thread not found")))
}

fn json_body(body: &Bytes) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|e| {
        fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!(format!("Invalid JSON body: {e}")),
        )
    })
}

async fn login(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    // The limiter runs before the body is read or the password checked.
    if let Err(wait) = s.login_allowed(peer.ip()) {
        let mut r = fail(
            StatusCode::TOO_MANY_REQUESTS,
            json!("Rate limit exceeded: 5 per 1 minute"),
        );
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            r.headers_mut().insert("retry-after", v);
        }
        return r;
    }
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let field = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("");
    match s.login(field("email"), field("password")) {
        Some(tokens) => Json(tokens).into_response(),
        None => fail(StatusCode::BAD_REQUEST, json!("LOGIN_BAD_CREDENTIALS")),
    }
}

/// Domains the e-mail validator refuses as special-use (RFC 6761).
const RESERVED_DOMAINS: [&str; 6] = ["test", "invalid", "localhost", "local", "onion", "arpa"];

/// `POST /auth/register`: 201 with the new user; 422 for an address the
/// validator refuses (a reserved domain such as `….test`), 400 when taken.
async fn register(State(s): State<AppState>, body: Bytes) -> Response {
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let field = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let (email, password) = (field("email"), field("password"));
    let domain = email.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase());
    let valid = domain.as_deref().is_some_and(|d| {
        d.contains('.')
            && !RESERVED_DOMAINS
                .iter()
                .any(|r| d == *r || d.ends_with(&format!(".{r}")))
    });
    if !valid || password.is_empty() {
        return fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("value is not a valid email address: the domain name is a special-use or reserved name"),
        );
    }
    match s.register(&email, &password) {
        Some(id) => (
            StatusCode::CREATED,
            Json(json!({"id": id, "email": email, "is_active": true, "is_verified": false})),
        )
            .into_response(),
        None => fail(
            StatusCode::BAD_REQUEST,
            json!("REGISTER_USER_ALREADY_EXISTS"),
        ),
    }
}

async fn refresh(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let cookie_mode = headers
        .get("cookie")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("surfsense_refresh="));
    if cookie_mode {
        // The server switches to cookie mode: no tokens in the body.
        return Json(json!({"authenticated": true, "access_expires_at": null})).into_response();
    }
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let token = body
        .get("refresh_token")
        .and_then(Value::as_str)
        .unwrap_or("");
    match s.refresh(token) {
        Some(tokens) => Json(tokens).into_response(),
        None => fail(
            StatusCode::UNAUTHORIZED,
            json!("Invalid or expired refresh token"),
        ),
    }
}

async fn session(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match caller(&s, &headers) {
        Ok(_) => Json(json!({"authenticated": true, "access_expires_at": null})).into_response(),
        Err(r) => r,
    }
}

async fn me(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let who = match caller(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let d = s.data();
    let email = d
        .users
        .iter()
        .find(|(id, _, _)| *id == who.user_id)
        .map(|(_, e, _)| e.clone())
        .unwrap_or_default();
    Json(json!({"id": who.user_id, "email": email, "is_active": true, "is_verified": true}))
        .into_response()
}

async fn workspaces(State(s): State<AppState>, headers: HeaderMap, q: Params) -> Response {
    let who = match caller(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let num = |k: &str, default: usize| {
        q.get(k)
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(default)
    };
    let (skip, limit) = (num("skip", 0), num("limit", 200));
    let d = s.data();
    let list: Vec<Value> = d
        .workspaces
        .iter()
        .skip(skip)
        .take(limit)
        .map(|w| {
            json!({"id": w.id, "name": w.name, "description": null, "created_at": "2026-05-01T09:00:00Z",
                   "user_id": who.user_id, "citations_enabled": true, "api_access_enabled": w.api_access_enabled,
                   "member_count": 1, "is_owner": true})
        })
        .collect();
    Json(Value::Array(list)).into_response()
}

async fn threads(State(s): State<AppState>, headers: HeaderMap, q: Params) -> Response {
    let who = match caller(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(ws) = q.get("workspace_id").and_then(|v| v.parse::<i64>().ok()) else {
        return fail(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!("workspace_id is required"),
        );
    };
    if let Err(r) = workspace_gate(&s, &who, ws) {
        return r;
    }
    let limit = q.get("limit").and_then(|v| v.parse::<usize>().ok());
    let mut d = s.data();
    d.thread_list_calls += 1;
    let mut list: Vec<&super::state::Thread> =
        d.threads.iter().filter(|t| t.workspace_id == ws).collect();
    list.sort_by_key(|t| std::cmp::Reverse(t.updated_at));
    let items: Vec<Value> = list
        .iter()
        .take(limit.unwrap_or(usize::MAX))
        .map(|t| {
            json!({"id": t.id, "title": t.title, "archived": false, "visibility": "PRIVATE",
                   "created_by_id": t.created_by, "is_own_thread": t.created_by == who.user_id,
                   "createdAt": iso(t.created_at), "updatedAt": iso(t.updated_at)})
        })
        .collect();
    Json(json!({"threads": items, "archived_threads": []})).into_response()
}

async fn pending_interrupts(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let who = match caller(&s, &headers) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Ok(id) = id.parse::<i64>() else {
        return fail(StatusCode::NOT_FOUND, json!("Thread not found"));
    };
    let ws = match thread_workspace(&s, id) {
        Ok(w) => w,
        Err(r) => return r,
    };
    if let Err(r) = workspace_gate(&s, &who, ws) {
        return r;
    }
    let mut d = s.data();
    d.pending_calls += 1;
    let Some(t) = d.thread(id) else {
        return fail(StatusCode::NOT_FOUND, json!("Thread not found"));
    };
    let message = if t.pending.is_empty() {
        Value::Null
    } else {
        t.assistant_message_id
            .map(Value::from)
            .unwrap_or(Value::Null)
    };
    // The checkpoint's pending writes come back in another order than the
    // stream emitted them (seen on the real server): clients must route by
    // id, never by position.
    let mut listed = t.pending.clone();
    listed.reverse();
    Json(json!({"assistant_message_id": message, "pending_interrupts": listed})).into_response()
}

async fn turn_status(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    if let Err(r) = caller(&s, &headers) {
        return r;
    }
    let mut d = s.data();
    let Some(t) = d.thread(id) else {
        return fail(StatusCode::NOT_FOUND, json!("Thread not found"));
    };
    let status = if t.busy { "busy" } else { "idle" };
    Json(json!({"status": status, "active_turn_id": null, "retry_after_ms": null, "retry_after_at": null}))
        .into_response()
}

fn awaiting_approval() -> Response {
    fail(
        StatusCode::CONFLICT,
        json!({"errorCode": "THREAD_AWAITING_APPROVAL",
               "message": "This thread is waiting for approval; resume it first."}),
    )
}

async fn new_chat(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(r) = caller(&s, &headers) {
        return r;
    }
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let id = body.get("chat_id").and_then(Value::as_i64).unwrap_or(0);
    let paused = s.data().thread(id).is_some_and(|t| !t.pending.is_empty());
    if paused {
        return awaiting_approval();
    }
    fail(StatusCode::NOT_FOUND, json!("Thread not found"))
}

async fn regenerate(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Response {
    if let Err(r) = caller(&s, &headers) {
        return r;
    }
    let paused = s.data().thread(id).is_some_and(|t| !t.pending.is_empty());
    if paused {
        return awaiting_approval();
    }
    fail(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!("Nothing to regenerate"),
    )
}

const DECISION_TYPES: [&str; 4] = ["approve", "edit", "reject", "approve_always"];

/// `ResumeRequest` as pydantic reads it: the decisions with extra keys
/// dropped, or the 422 text.
fn parse_resume(body: &Value) -> Result<(i64, Vec<Value>), String> {
    let ws = body
        .get("workspace_id")
        .and_then(Value::as_i64)
        .ok_or("workspace_id: field required")?;
    let list = body
        .get("decisions")
        .and_then(Value::as_array)
        .ok_or("decisions: field required")?;
    let mut out = Vec::with_capacity(list.len());
    for (i, d) in list.iter().enumerate() {
        let kind = d
            .get("type")
            .and_then(Value::as_str)
            .ok_or(format!("decisions.{i}.type: field required"))?;
        if !DECISION_TYPES.contains(&kind) {
            return Err(format!(
                "decisions.{i}.type: Input should be 'approve', 'edit', 'reject' or 'approve_always'"
            ));
        }
        let mut kept = json!({"type": kind, "edited_action": null});
        if let Some(e) = d.get("edited_action").filter(|e| !e.is_null()) {
            if !e.is_object() {
                return Err(format!(
                    "decisions.{i}.edited_action: Input should be an object"
                ));
            }
            kept["edited_action"] = json!({"name": e.get("name").cloned().unwrap_or(Value::Null),
                                           "args": e.get("args").cloned().unwrap_or_else(|| json!({}))});
        }
        if let Some(t) = d.get("tool_call_id").filter(|t| !t.is_null()) {
            if !t.is_string() {
                return Err(format!(
                    "decisions.{i}.tool_call_id: Input should be a valid string"
                ));
            }
            kept["tool_call_id"] = t.clone();
        }
        out.push(kept);
    }
    Ok((ws, out))
}

fn record(s: &Shared, thread_id: i64, body: &Value, outcome: ResumeOutcome) {
    s.data().resumes.push(ReceivedResume {
        thread_id,
        body: body.clone(),
        outcome,
    });
}

async fn resume(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let raw: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let refuse = |status: StatusCode, detail: Value| {
        record(&s, id, &raw, ResumeOutcome::Refused(status.as_u16()));
        fail(status, detail)
    };
    let who = match caller(&s, &headers) {
        Ok(c) => c,
        Err(r) => {
            record(&s, id, &raw, ResumeOutcome::Refused(401));
            return r;
        }
    };
    let ws = match thread_workspace(&s, id) {
        Ok(w) => w,
        Err(_) => return refuse(StatusCode::NOT_FOUND, json!("Thread not found")),
    };
    if let Err(r) = workspace_gate(&s, &who, ws) {
        record(&s, id, &raw, ResumeOutcome::Refused(r.status().as_u16()));
        return r;
    }
    let decisions = match parse_resume(&raw) {
        Ok((_, d)) => d,
        Err(msg) => return refuse(StatusCode::UNPROCESSABLE_ENTITY, json!(msg)),
    };
    let routed = {
        let mut d = s.data();
        let scripted_busy = d.busy_replies.get_mut(&id).is_some_and(|n| {
            let busy = *n > 0;
            *n = n.saturating_sub(1);
            busy
        });
        let Some(t) = d.thread(id) else {
            drop(d);
            return refuse(StatusCode::NOT_FOUND, json!("Thread not found"));
        };
        if t.busy || scripted_busy {
            drop(d);
            record(&s, id, &raw, ResumeOutcome::Refused(409));
            let mut r = fail(
                StatusCode::CONFLICT,
                json!({"errorCode": "THREAD_BUSY", "message": "This thread is busy with another turn."}),
            );
            r.headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            r.headers_mut()
                .insert("retry-after-ms", HeaderValue::from_static("1000"));
            return r;
        }
        t.busy = true;
        let t = d.threads.iter().find(|t| t.id == id).expect("found above");
        d.route(t, &decisions)
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::convert::Infallible>>(1);
    tokio::spawn(stream_resume(s.clone(), id, raw, routed, tx));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    h.insert("connection", HeaderValue::from_static("keep-alive"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

type Tx = mpsc::Sender<Result<Bytes, std::convert::Infallible>>;

fn frame(v: Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

async fn send(tx: &Tx, v: Value) -> bool {
    tx.send(Ok(frame(v))).await.is_ok()
}

/// Writes the resume stream; applies the decisions only if the client is
/// still there after the run's silent gap (a client that goes away
/// cancels the run, as `finally_cleanup.py` does).
async fn stream_resume(
    s: AppState,
    id: i64,
    body: Value,
    routed: Result<Vec<Value>, String>,
    tx: Tx,
) {
    let outcome = run_stream(&s, id, routed, &tx).await;
    if let Some(t) = s.data().thread(id) {
        t.busy = false;
    }
    record(&s, id, &body, outcome);
}

async fn run_stream(
    s: &Shared,
    id: i64,
    routed: Result<Vec<Value>, String>,
    tx: &Tx,
) -> ResumeOutcome {
    let message_id = s.data().new_id();
    let turn = format!("{id}:{}", Utc::now().timestamp_millis());
    let opening = [
        json!({"type": "start", "messageId": format!("msg_{}", &Uuid::new_v4().simple().to_string()[..4])}),
        json!({"type": "data-turn-info", "data": {"chat_turn_id": turn}}),
        json!({"type": "data-turn-status", "data": {"status": "busy"}}),
        json!({"type": "data-assistant-message-id", "data": {"message_id": message_id, "turn_id": turn}}),
    ];
    for f in opening {
        if !send(tx, f).await {
            return ResumeOutcome::Cancelled;
        }
    }
    let injected = s.data().fail_next_resume.take();
    let failure = match (injected, &routed) {
        (Some((code, message)), _) => Some((code, message, "injected failure".to_owned())),
        (None, Err(diag)) => Some((
            "SERVER_ERROR".to_owned(),
            "Something went wrong while resuming the chat. Please try again.".to_owned(),
            diag.clone(),
        )),
        (None, Ok(_)) => None,
    };
    if let Some((code, message, diagnostic)) = failure {
        let closing = [
            json!({"type": "error", "message": message, "errorCode": code, "diagnostic": diagnostic}),
            json!({"type": "data-turn-status", "data": {"status": "idle"}}),
            json!({"type": "finish-step"}),
            json!({"type": "finish"}),
        ];
        for f in closing {
            if !send(tx, f).await {
                return ResumeOutcome::Cancelled;
            }
        }
        let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
        return ResumeOutcome::ErrorFrame { code, message };
    }
    let routed = routed.unwrap_or_default();
    // The run works in silence (no heartbeats), then streams its text. A
    // client gone by then is noticed on these writes.
    let gap = s.data().stream_gap;
    tokio::select! {
        _ = tokio::time::sleep(gap) => {}
        _ = tx.closed() => return ResumeOutcome::Cancelled,
    }
    for (i, piece) in ["Resuming ", "with your ", "decisions."].iter().enumerate() {
        let f = if i == 0 {
            json!({"type": "text-start", "id": "t1"})
        } else {
            json!({"type": "text-delta", "id": "t1", "delta": piece})
        };
        if !send(tx, f).await {
            return ResumeOutcome::Cancelled;
        }
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    if tx.is_closed() {
        return ResumeOutcome::Cancelled;
    }
    let (again, ran) = {
        let mut d = s.data();
        let before = d.applied.len();
        d.apply(id, &routed);
        // The tools the resumed run called: approved asks, and a doom loop
        // that went on (its repeated call runs again).
        let ran: Vec<super::state::Applied> = d.applied[before..]
            .iter()
            .filter(|a| a.effect == "ran" || a.effect == "continued")
            .cloned()
            .collect();
        let again = d.reinterrupt.remove(&id).unwrap_or_default();
        for v in again {
            d.push_interrupt(id, v);
        }
        let again = d.thread(id).map(|t| t.pending.clone()).unwrap_or_default();
        (again, ran)
    };
    let mut closing = vec![json!({"type": "text-end", "id": "t1"})];
    for (i, a) in ran.iter().enumerate() {
        let call = format!("call_run{i}_{}", &Uuid::new_v4().simple().to_string()[..6]);
        closing.push(json!({"type": "tool-input-start", "toolCallId": call, "toolName": a.action}));
        closing.push(json!({"type": "tool-input-available", "toolCallId": call, "toolName": a.action, "input": a.args}));
        closing.push(json!({"type": "tool-output-available", "toolCallId": call, "output": {"status": "ok"}}));
    }
    if !again.is_empty() {
        closing.push(json!({"type": "data-activity-timing", "data": {"status": "paused", "activeDurationMs": 1200}}));
        for v in &again {
            tracing::debug!(
                "fake surfsense: thread {id} pauses again on {}",
                card_key(v)
            );
            closing.push(json!({"type": "data-interrupt-request", "data": v}));
        }
    }
    closing.extend([
        json!({"type": "data-turn-status", "data": {"status": "idle"}}),
        json!({"type": "finish-step"}),
        json!({"type": "finish"}),
    ]);
    for f in closing {
        let _ = send(tx, f).await;
    }
    let _ = tx.send(Ok(Bytes::from_static(b"data: [DONE]\n\n"))).await;
    ResumeOutcome::Applied
}
