//! The fake's HTTP surface: Molecule's routes, its edge middleware (CORS,
//! rate limit, tenant guard) and auth rules, the `/ws` hub, and the
//! `/__fake/*` control routes.

use super::state::{Frame, ReceivedDecision, Shared};
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::Arc;
use uuid::Uuid;

type AppState = Arc<Shared>;

pub(crate) fn router(shared: AppState) -> Router {
    let api = Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/approvals/pending", get(list_pending))
        .route("/workspaces", get(list_workspaces))
        .route("/workspaces/{id}", get(get_workspace))
        .route("/events", get(list_events))
        .route(
            "/workspaces/{id}/approvals",
            get(workspace_history).post(create_approval),
        )
        .route(
            "/workspaces/{id}/approvals/{approval_id}/decide",
            post(decide),
        )
        .route("/ws", get(socket))
        .route("/workspaces/{id}/events/stream", get(sse_stream))
        .route("/org/tokens", get(list_org_tokens).post(mint_org_token))
        .route("/org/tokens/{id}", delete(revoke_org_token))
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), edge));
    let control = Router::new()
        .route("/__fake/workspaces", post(control_workspace))
        .route("/__fake/approvals", post(control_approval))
        .route("/__fake/decide", post(control_decide))
        .route("/__fake/decisions", get(control_decisions))
        .route(
            "/__fake/drop-sockets",
            post(|State(s): State<AppState>| async move {
                s.kick_sockets();
                StatusCode::NO_CONTENT
            }),
        );
    api.merge(control).with_state(shared)
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "error": message }))).into_response()
}

/// gin's answer to unknown routes and wrong methods alike.
async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [("content-type", "text/plain")],
        "404 page not found",
    )
        .into_response()
}

/// Edge middleware in the real order: stall, CORS, rate limit, injected
/// failures, tenant guard.
async fn edge(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let stall = s.faults().stall;
    if let Some(by) = stall {
        tokio::time::sleep(by).await;
    }
    if let Some(origin) = req.headers().get("origin") {
        let allowed: Vec<String> = if s.config.cors_origins.is_empty() {
            vec![
                "http://localhost:3000".into(),
                "http://localhost:3001".into(),
            ]
        } else {
            s.config.cors_origins.clone()
        };
        if !allowed.iter().any(|a| a.as_bytes() == origin.as_bytes()) {
            return StatusCode::FORBIDDEN.into_response();
        }
    }
    let injected = {
        let mut f = s.faults();
        if f.rate_limit_next > 0 {
            f.rate_limit_next -= 1;
            Some((429, f.retry_after_secs))
        } else if f.fail_next > 0 {
            f.fail_next -= 1;
            Some((f.fail_status, 0))
        } else {
            None
        }
    };
    match injected {
        Some((429, retry)) => {
            let mut resp = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({"error": "rate limit exceeded", "retry_after": retry})),
            )
                .into_response();
            let h = resp.headers_mut();
            h.insert("retry-after", HeaderValue::from(retry));
            h.insert("x-ratelimit-limit", HeaderValue::from(600));
            h.insert("x-ratelimit-remaining", HeaderValue::from(0));
            h.insert("x-ratelimit-reset", HeaderValue::from(retry));
            return resp;
        }
        Some((503, _)) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "platform datastore unavailable — retry shortly", "code": "platform_unavailable"})),
            )
                .into_response()
        }
        Some((status, _)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error(status, "query failed");
        }
        None => {}
    }
    if let Some(org) = &s.config.saas_org_id {
        let ok = req.uri().path() == "/health"
            || req.headers().get("x-molecule-org-id").map(|v| v.as_bytes()) == Some(org.as_bytes());
        if !ok {
            return StatusCode::NOT_FOUND.into_response();
        }
    }
    next.run(req).await
}

/// The token after exactly `Bearer ` (case-sensitive), trimmed.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(|t| t.trim().to_owned())
}

/// AdminAuth, checks in the real order. `Some` is the refusal to send.
fn admin_auth(s: &Shared, headers: &HeaderMap) -> Option<Response> {
    let admin = s.config.admin_token.as_deref();
    if !s.any_workspace_token() && admin.is_none() {
        return None; // fresh-install fail-open
    }
    if s.config.dev_mode && admin.is_none() {
        return None;
    }
    let Some(token) = bearer(headers) else {
        return Some(error(StatusCode::UNAUTHORIZED, "admin auth required"));
    };
    if s.is_org_token(&token) {
        return None;
    }
    match admin {
        Some(admin) if admin == token => None,
        None if s.config.workspace_tokens.values().any(|t| *t == token) => None,
        _ => Some(error(StatusCode::UNAUTHORIZED, "invalid admin auth token")),
    }
}

/// WorkspaceAuth for `/workspaces/:id/*`. `Some` is the refusal to send.
fn workspace_auth(s: &Shared, headers: &HeaderMap, ws: &str) -> Option<Response> {
    match bearer(headers) {
        Some(token) => {
            let ok = s.config.admin_token.as_deref() == Some(token.as_str())
                || s.is_org_token(&token)
                || s.config.workspace_tokens.get(ws) == Some(&token);
            (!ok).then(|| error(StatusCode::UNAUTHORIZED, "invalid workspace auth token"))
        }
        None if s.config.dev_mode && s.config.admin_token.is_none() => None,
        None => Some(error(
            StatusCode::UNAUTHORIZED,
            "missing workspace auth token",
        )),
    }
}

fn is_uuid(s: &str) -> bool {
    Uuid::parse_str(s).is_ok()
}

async fn list_pending(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = admin_auth(&s, &headers) {
        return r;
    }
    s.expire();
    Json(s.pending()).into_response()
}

async fn list_workspaces(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = admin_auth(&s, &headers) {
        return r;
    }
    Json(s.workspaces()).into_response()
}

async fn get_workspace(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    if !is_uuid(&id) {
        return error(StatusCode::BAD_REQUEST, "invalid workspace ID");
    }
    match s.workspace(&id) {
        Some(w) => Json(w).into_response(),
        None => error(StatusCode::NOT_FOUND, "workspace not found"),
    }
}

async fn list_events(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = admin_auth(&s, &headers) {
        return r;
    }
    Json(s.recent_events()).into_response()
}

async fn workspace_history(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = workspace_auth(&s, &headers, &id) {
        return r;
    }
    if !is_uuid(&id) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "query failed");
    }
    Json(s.workspace_history(&id)).into_response()
}

async fn create_approval(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = workspace_auth(&s, &headers, &id) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(StatusCode::BAD_REQUEST, "invalid request body");
    };
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let action = text("action");
    if action.is_empty() {
        return error(StatusCode::BAD_REQUEST, "invalid request body");
    }
    match s.create_approval(&id, &action, &text("reason"), &text("task_id")) {
        Some(approval_id) => (
            StatusCode::CREATED,
            Json(json!({"approval_id": approval_id, "status": "pending"})),
        )
            .into_response(),
        None => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed to create approval",
        ),
    }
}

async fn decide(
    State(s): State<AppState>,
    Path((ws, approval_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let logged_body = serde_json::from_slice::<Value>(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let response = decide_inner(&s, &ws, &approval_id, &headers, &body);
    s.log_decision(ReceivedDecision {
        workspace_id: ws,
        approval_id,
        body: logged_body,
        response_status: response.status().as_u16(),
    });
    response
}

fn decide_inner(
    s: &Shared,
    ws: &str,
    approval_id: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if let Some(r) = workspace_auth(s, headers, ws) {
        return r;
    }
    let Ok(body) = serde_json::from_slice::<Value>(body) else {
        return error(StatusCode::BAD_REQUEST, "invalid request body");
    };
    let Some(decision) = body.get("decision").and_then(Value::as_str) else {
        return error(StatusCode::BAD_REQUEST, "invalid request body");
    };
    if decision != "approved" && decision != "denied" {
        return error(
            StatusCode::BAD_REQUEST,
            "decision must be 'approved' or 'denied'",
        );
    }
    if !is_uuid(approval_id) || !is_uuid(ws) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "failed to update");
    }
    let decided_by = match body.get("decided_by").and_then(Value::as_str) {
        None | Some("") => "human",
        Some(name) => name,
    };
    if s.decide(approval_id, Some(ws), decision, decided_by) {
        Json(json!({"status": decision, "approval_id": approval_id})).into_response()
    } else {
        error(
            StatusCode::NOT_FOUND,
            "approval not found or already decided",
        )
    }
}

async fn socket(
    State(s): State<AppState>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !s.config.cors_origins.is_empty() {
        let origin = headers
            .get("origin")
            .and_then(|v| v.to_str().ok())
            .map(|o| o.trim().to_lowercase());
        let listed = origin.is_some_and(|o| {
            s.config
                .cors_origins
                .iter()
                .any(|c| c.trim().to_lowercase() == o)
        });
        if !listed {
            return StatusCode::FORBIDDEN.into_response();
        }
    }
    let workspace = headers
        .get("x-workspace-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Some(ws) = &workspace {
        if let Some(token) = s.config.workspace_tokens.get(ws) {
            match bearer(&headers) {
                None => return error(StatusCode::UNAUTHORIZED, "missing workspace auth token"),
                Some(t) if &t != token => {
                    return error(StatusCode::UNAUTHORIZED, "invalid workspace auth token")
                }
                Some(_) => {}
            }
        }
    }
    upgrade.on_upgrade(move |socket| serve_socket(s, socket, workspace))
}

/// Pushes every event (canvas mode) or those of one workspace and its
/// parent and children (agent mode). Inbound frames are ignored; the server
/// never pings; a full buffer silently drops messages.
async fn serve_socket(s: AppState, mut socket: WebSocket, workspace: Option<String>) {
    // Subscribed before the socket counts as open: a test that sees it
    // open and then kicks or emits must reach it.
    let mut hub = s.hub.subscribe();
    let mut kick = s.kick.subscribe();
    s.socket_opened();
    let related = |ws: &str| -> bool {
        let Some(me) = &workspace else { return true };
        if me == ws {
            return true;
        }
        let mine = s.workspace(me);
        let theirs = s.workspace(ws);
        mine.and_then(|m| m.parent_id).as_deref() == Some(ws)
            || theirs.and_then(|t| t.parent_id).as_deref() == Some(me.as_str())
    };
    loop {
        tokio::select! {
            frame = hub.recv() => match frame {
                Ok(Frame::Text(text)) => {
                    let ws = serde_json::from_str::<Value>(&text).ok()
                        .and_then(|v| v.get("workspace_id").and_then(Value::as_str).map(str::to_owned));
                    if ws.as_deref().is_some_and(|w| !related(w)) {
                        continue;
                    }
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => break,
            },
            _ = kick.recv() => break, // dropped without a close frame
            inbound = socket.recv() => match inbound {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {} // read and discarded
            },
        }
    }
    s.socket_closed();
}

/// Authenticated push for one workspace: one `: ping` comment, then
/// `data: {type, timestamp (unix ms), data}` frames for that workspace only.
async fn sse_stream(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = workspace_auth(&s, &headers, &id) {
        return r;
    }
    if s.workspace(&id).is_none() {
        return error(StatusCode::NOT_FOUND, "workspace not found");
    }
    let hub = s.hub.subscribe();
    let ping = futures::stream::once(async {
        Ok::<_, std::convert::Infallible>(Event::default().comment("ping"))
    });
    let frames = futures::stream::unfold((hub, id), |(mut hub, id)| async move {
        loop {
            match hub.recv().await {
                Ok(Frame::Text(text)) => {
                    let Ok(env) = serde_json::from_str::<Value>(&text) else {
                        continue;
                    };
                    if env.get("workspace_id").and_then(Value::as_str) != Some(id.as_str()) {
                        continue;
                    }
                    let ms = env
                        .get("timestamp")
                        .and_then(Value::as_str)
                        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.timestamp_millis())
                        .unwrap_or_default();
                    let frame =
                        json!({"type": env["event"], "timestamp": ms, "data": env["payload"]});
                    return Some((Ok(Event::default().data(frame.to_string())), (hub, id)));
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return None,
            }
        }
    });
    Sse::new(futures::StreamExt::chain(ping, frames)).into_response()
}

async fn list_org_tokens(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(r) = admin_auth(&s, &headers) {
        return r;
    }
    let tokens = s.org_tokens();
    Json(json!({"count": tokens.len(), "tokens": tokens})).into_response()
}

async fn mint_org_token(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = admin_auth(&s, &headers) {
        return r;
    }
    let name = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b.get("name").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    if name.chars().count() > 100 {
        return error(
            StatusCode::BAD_REQUEST,
            "name must be at most 100 characters",
        );
    }
    let (minted, token) = s.mint_org_token(&name);
    Json(json!({
        "id": minted.id, "prefix": minted.prefix, "name": minted.name, "auth_token": token,
        "warning": "copy this token now; it will not be shown again",
    }))
    .into_response()
}

async fn revoke_org_token(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = admin_auth(&s, &headers) {
        return r;
    }
    if s.revoke_org_token(&id) {
        Json(json!({"revoked": id})).into_response()
    } else {
        error(StatusCode::NOT_FOUND, "token not found or already revoked")
    }
}

async fn control_workspace(State(s): State<AppState>, body: Bytes) -> Response {
    let body = control_body(&body);
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("workspace");
    let parent = body.get("parent_id").and_then(Value::as_str);
    Json(json!({"id": s.add_workspace(name, parent)})).into_response()
}

async fn control_approval(State(s): State<AppState>, body: Bytes) -> Response {
    let body = control_body(&body);
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let ws = match text("workspace_id") {
        w if !w.is_empty() => w,
        _ => match s.workspaces().first() {
            Some(w) => w.id.clone(),
            None => s.add_workspace("Agent", None),
        },
    };
    match s.create_approval(&ws, &text("action"), &text("reason"), &text("task_id")) {
        Some(id) => Json(json!({"approval_id": id, "workspace_id": ws})).into_response(),
        None => error(StatusCode::BAD_REQUEST, "unknown workspace"),
    }
}

async fn control_decide(State(s): State<AppState>, body: Bytes) -> Response {
    let body = control_body(&body);
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let ok = s.decide(
        &text("approval_id"),
        None,
        &text("decision"),
        &text("decided_by"),
    );
    Json(json!({"decided": ok})).into_response()
}

async fn control_decisions(State(s): State<AppState>) -> Response {
    let list: Vec<Value> = s
        .received_decisions()
        .into_iter()
        .map(|d| {
            json!({"workspace_id": d.workspace_id, "approval_id": d.approval_id,
                   "body": d.body, "response_status": d.response_status})
        })
        .collect();
    Json(list).into_response()
}

/// Control bodies are JSON whatever the Content-Type, so a plain
/// `curl -d '{…}'` (which says form-urlencoded) works.
fn control_body(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or(Value::Null)
}
