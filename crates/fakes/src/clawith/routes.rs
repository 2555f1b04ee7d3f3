//! The fake Clawith's HTTP surface (v1.11.3 behaviour): auth, the two
//! approval lists, both resolve routes, notifications, audit logs, stats,
//! the error envelope with `X-Trace-Id`, and `/__fake/autonomy`.

// Handlers return the refusal to send as their error: a big `Err` is the
// point here, and these paths are not hot.
#![allow(clippy::result_large_err)]

use super::state::{
    deliverable_email, offset_time, z_time, InvitationCode, ReceivedResolve, Shared, User,
};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use chrono::Utc;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

type AppState = Arc<Shared>;
type Params = Query<HashMap<String, String>>;

pub(crate) fn router(shared: AppState) -> Router {
    Router::new()
        .route(
            "/api/health",
            get(|| async { Json(json!({"status": "ok", "version": "1.11.3"})) }),
        )
        .route("/api/auth/login", post(login))
        .route("/api/auth/me", get(me))
        .route("/api/auth/register/init", post(register_init))
        .route("/api/auth/register", post(register))
        .route(
            "/api/enterprise/invitation-codes",
            post(make_invitation_codes),
        )
        .route("/api/tenants/self-create", post(self_create))
        .route("/api/tenants/join", post(join))
        .route("/api/tenants/me", get(my_tenant))
        .route("/api/org/users", get(org_users))
        .route("/api/agents/{agent}", patch(update_agent))
        .route(
            "/api/agents",
            get(|| async { Redirect::temporary("/api/agents/") }),
        )
        .route("/api/agents/", get(agents))
        .route("/api/enterprise/approvals", get(list_approvals))
        .route("/api/enterprise/approvals/{id}/resolve", post(resolve_a))
        .route("/api/agents/{agent}/approvals", get(agent_approvals))
        .route(
            "/api/agents/{agent}/approvals/{id}/resolve",
            post(resolve_b),
        )
        .route("/api/notifications", get(notifications))
        .route("/api/notifications/unread-count", get(unread_count))
        .route("/api/notifications/read-all", post(read_all))
        .route("/api/notifications/{id}/read", post(read_one))
        .route("/api/enterprise/audit-logs", get(audit_logs))
        .route("/api/enterprise/stats", get(stats))
        .route("/__fake/autonomy", post(fake_autonomy))
        .with_state(shared)
}

fn trace_id() -> String {
    Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// The error envelope every non-2xx answer uses.
fn fail(status: StatusCode, detail: &str) -> Response {
    let trace = trace_id();
    let mut resp = (
        status,
        Json(json!({"detail": detail, "error": {
            "code": format!("http_{}", status.as_u16()), "message": detail, "trace_id": trace}})),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&trace) {
        resp.headers_mut().insert("x-trace-id", v);
    }
    resp
}

fn internal() -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"detail": "Internal server error", "error": {
            "code": "internal_error", "message": "Internal server error", "trace_id": trace_id()}})),
    )
        .into_response()
}

/// 422 for a body field pydantic refused.
fn invalid_field(field: &str, kind: &str, msg: &str) -> Response {
    let detail = json!([{"type": kind, "loc": ["body", field], "msg": msg}]);
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"detail": detail,
            "error": {"code": "validation_error", "message": "Request validation failed",
                      "trace_id": trace_id(), "details": detail}})),
    )
        .into_response()
}

fn validation(msg: &str) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"detail": [{"type": "missing", "loc": ["body", "action"], "msg": msg}],
            "error": {"code": "validation_error", "message": "Request validation failed", "trace_id": trace_id()}})),
    )
        .into_response()
}

/// The caller, or the auth failure to send.
fn caller(s: &Shared, headers: &HeaderMap, allow_inactive: bool) -> Result<User, Response> {
    let Some(value) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        let status = if s.config.legacy_403 {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNAUTHORIZED
        };
        let mut r = fail(status, "Not authenticated");
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        return Err(r);
    };
    let token = value.strip_prefix("Bearer ").unwrap_or("").trim();
    let d = s.data();
    let Some(t) = d.tokens.get(token).filter(|t| t.exp > Utc::now()) else {
        return Err(fail(StatusCode::UNAUTHORIZED, "Invalid or expired token"));
    };
    match d.users.iter().find(|u| u.id == t.user_id) {
        Some(u) if u.is_active || allow_inactive => Ok(u.clone()),
        _ => Err(fail(StatusCode::UNAUTHORIZED, "User not found or inactive")),
    }
}

fn is_admin(u: &User) -> bool {
    u.role == "platform_admin" || u.role == "org_admin"
}

fn user_out(u: &User) -> Value {
    let tenant = (!u.tenant_id.is_empty()).then_some(u.tenant_id.as_str());
    json!({"id": u.id, "identity_id": u.id, "username": u.username, "email": u.email,
           "display_name": u.display_name, "avatar_url": null, "role": u.role,
           "is_platform_admin": false, "tenant_id": tenant, "is_active": u.is_active,
           "created_at": z_time(Utc::now())})
}

fn tenant_out(id: &str, name: &str, slug: &str) -> Value {
    json!({"id": id, "name": name, "slug": slug, "im_provider": "web_only", "timezone": "UTC",
           "is_active": true, "sso_enabled": false, "sso_domain": null,
           "a2a_async_enabled": false, "default_model_id": null, "created_at": z_time(Utc::now())})
}

fn token_response(s: &Shared, user: &User) -> Value {
    let token = s.issue_token(user);
    json!({"access_token": token, "token_type": "bearer", "user": user_out(user),
           "identity": {"id": user.id, "email": user.email, "username": user.username,
                        "is_platform_admin": user.role == "platform_admin"},
           "needs_company_setup": user.tenant_id.is_empty(), "tenant_name": null})
}

/// A registration body checked as pydantic and `email-validator` check
/// it: the body, username, email and password, or the 422 to send.
fn registration(body: &[u8]) -> Result<(Value, String, String, String), Response> {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let (username, email, password) = (text("username"), text("email"), text("password"));
    if !deliverable_email(&email) {
        return Err(invalid_field(
            "email",
            "value_error",
            &format!("value is not a valid email address: {email} cannot be used with email"),
        ));
    }
    if !(6..=128).contains(&password.chars().count()) {
        return Err(invalid_field(
            "password",
            "string_too_short",
            "String should have at least 6 characters",
        ));
    }
    Ok((body, username, email, password))
}

/// `POST /api/auth/register/init`: a new identity without a company.
/// Everyone after the seeded first user starts inactive (`is_active:
/// false`), and stays so after joining when no mail server is set up.
async fn register_init(State(s): State<AppState>, body: Bytes) -> Response {
    let (body, username, email, password) = match registration(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let user = {
        let mut d = s.data();
        if d.users
            .iter()
            .any(|u| u.email == email || u.username == username)
        {
            return fail(
                StatusCode::BAD_REQUEST,
                "Email or username already registered",
            );
        }
        let display = body
            .get("display_name")
            .and_then(Value::as_str)
            .unwrap_or(&username)
            .to_owned();
        let user = User {
            id: Uuid::new_v4().to_string(),
            username,
            email,
            password,
            role: "member".into(),
            tenant_id: String::new(),
            is_active: false,
            display_name: display,
        };
        d.users.push(user.clone());
        user
    };
    let token = s.issue_token(&user);
    (
        StatusCode::CREATED,
        Json(
            json!({"user_id": user.id, "email": user.email, "access_token": token,
                    "message": "Registration successful", "user": user_out(&user),
                    "needs_company_setup": true, "target_tenant_id": null}),
        ),
    )
        .into_response()
}

/// `POST /api/auth/register` with an invitation code: an active member.
async fn register(State(s): State<AppState>, body: Bytes) -> Response {
    let (body, username, email, password) = match registration(&body) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let user = {
        let mut d = s.data();
        let code = body
            .get("invitation_code")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let Some(ic) = d
            .invitation_codes
            .iter_mut()
            .find(|c| c.code == code && c.used < c.max_uses)
        else {
            return fail(StatusCode::BAD_REQUEST, "Invalid invitation code");
        };
        ic.used += 1;
        let tenant = ic.tenant_id.clone();
        let user = User {
            id: Uuid::new_v4().to_string(),
            display_name: body
                .get("display_name")
                .and_then(Value::as_str)
                .unwrap_or(&username)
                .to_owned(),
            username,
            email,
            password,
            role: "member".into(),
            tenant_id: tenant,
            is_active: true,
        };
        d.users.push(user.clone());
        user
    };
    (StatusCode::CREATED, Json(token_response(&s, &user))).into_response()
}

/// `POST /api/enterprise/invitation-codes {"count","max_uses"}` (admin).
async fn make_invitation_codes(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let u = match caller(&s, &headers, false) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if !is_admin(&u) {
        return fail(StatusCode::FORBIDDEN, "Admin access required");
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let count = body.get("count").and_then(Value::as_u64).unwrap_or(1);
    let max_uses = body.get("max_uses").and_then(Value::as_u64).unwrap_or(1) as u32;
    let mut d = s.data();
    let codes: Vec<String> = (0..count)
        .map(|_| Uuid::new_v4().simple().to_string()[..8].to_uppercase())
        .collect();
    for code in &codes {
        d.invitation_codes.push(InvitationCode {
            code: code.clone(),
            tenant_id: u.tenant_id.clone(),
            max_uses,
            used: 0,
        });
    }
    Json(json!({"codes": codes})).into_response()
}

/// `POST /api/tenants/self-create {"name"}`: a new company whose slug has
/// a random suffix; its creator becomes `org_admin`.
async fn self_create(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let u = match caller(&s, &headers, true) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let name = body.get("name").and_then(Value::as_str).unwrap_or("");
    if name.is_empty() || name.chars().count() > 200 {
        return invalid_field(
            "name",
            "string_too_short",
            "String should have at least 1 character",
        );
    }
    let had_company = !u.tenant_id.is_empty();
    let (id, slug) = s.create_company(name);
    let record = s.add_to_company(&u, &id, "org_admin");
    let token = had_company.then(|| s.issue_token(&record));
    (
        StatusCode::CREATED,
        Json(json!({"tenant": tenant_out(&id, name, &slug), "access_token": token})),
    )
        .into_response()
}

/// `POST /api/tenants/join {"invitation_code"}`. An inactive user stays
/// inactive (v1.11.3 copies `is_active`).
async fn join(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let u = match caller(&s, &headers, true) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let code = body
        .get("invitation_code")
        .and_then(Value::as_str)
        .unwrap_or("");
    let (tenant, has_admin, already) = {
        let mut d = s.data();
        let Some(ic) = d.invitation_codes.iter().find(|c| c.code == code).cloned() else {
            return fail(StatusCode::BAD_REQUEST, "Invalid invitation code");
        };
        if ic.used >= ic.max_uses {
            return fail(
                StatusCode::BAD_REQUEST,
                "Invitation code has reached its usage limit",
            );
        }
        let Some(tenant) = d.tenants.iter().find(|t| t.0 == ic.tenant_id).cloned() else {
            return fail(StatusCode::BAD_REQUEST, "Company not found or is disabled");
        };
        let already = d
            .users
            .iter()
            .any(|o| o.email == u.email && o.tenant_id == tenant.0);
        let has_admin = d.users.iter().any(|o| {
            o.tenant_id == tenant.0 && (o.role == "org_admin" || o.role == "platform_admin")
        });
        if !already {
            if let Some(ic) = d.invitation_codes.iter_mut().find(|c| c.code == code) {
                ic.used += 1;
            }
        }
        (tenant, has_admin, already)
    };
    if already {
        return fail(
            StatusCode::BAD_REQUEST,
            "You already belong to this company",
        );
    }
    let role = if has_admin { "member" } else { "org_admin" };
    let had_company = !u.tenant_id.is_empty();
    let record = s.add_to_company(&u, &tenant.0, role);
    let token = had_company.then(|| s.issue_token(&record));
    Json(
        json!({"tenant": tenant_out(&tenant.0, &tenant.1, &tenant.2),
                "role": record.role, "access_token": token}),
    )
    .into_response()
}

/// `GET /api/tenants/me`: the caller's company.
async fn my_tenant(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let u = match caller(&s, &headers, false) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let d = s.data();
    match d.tenants.iter().find(|t| t.0 == u.tenant_id) {
        Some((id, name, slug)) => Json(tenant_out(id, name, slug)).into_response(),
        None => fail(StatusCode::NOT_FOUND, "Tenant not found"),
    }
}

/// `GET /api/org/users`: the active users of the caller's company, as
/// `UserOut` (any signed-in user may ask).
async fn org_users(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let u = match caller(&s, &headers, false) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let mut d = s.data();
    d.org_user_lists += 1;
    let list: Vec<Value> = d
        .users
        .iter()
        .filter(|o| o.tenant_id == u.tenant_id && o.is_active)
        .map(user_out)
        .collect();
    Json(list).into_response()
}

/// `PATCH /api/agents/{id} {"autonomy_policy": {…}}` replaces the whole
/// map: action types left out fall back to their default level (L2 when
/// the key is missing).
async fn update_agent(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(agent): Path<String>,
    body: Bytes,
) -> Response {
    let u = match caller(&s, &headers, false) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if let Err(r) = agent_access(&s, &u, &agent) {
        return r;
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut d = s.data();
    let Some(a) = d.agents.iter_mut().find(|a| a.id == agent) else {
        return fail(StatusCode::NOT_FOUND, "Agent not found");
    };
    if let Some(policy) = body.get("autonomy_policy").filter(|p| p.is_object()) {
        a.autonomy_policy = policy.clone();
    }
    Json(
        json!({"id": a.id, "name": a.name, "creator_id": a.creator_id, "status": "running",
                "autonomy_policy": a.autonomy_policy}),
    )
    .into_response()
}

async fn login(State(s): State<AppState>, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return validation("Field required");
    };
    let ident = body
        .get("login_identifier")
        .and_then(Value::as_str)
        .unwrap_or("");
    let password = body.get("password").and_then(Value::as_str).unwrap_or("");
    let tenant = body.get("tenant_id").and_then(Value::as_str);
    let (matches, tenants) = {
        let mut d = s.data();
        d.logins += 1;
        let matches: Vec<User> = d
            .users
            .iter()
            .filter(|u| (u.email == ident || u.username == ident) && u.password == password)
            .filter(|u| tenant.is_none_or(|t| u.tenant_id == t))
            .cloned()
            .collect();
        (matches, d.tenants.clone())
    };
    match matches.as_slice() {
        [] if tenant.is_some() => fail(
            StatusCode::FORBIDDEN,
            "This account does not belong to the selected organization.",
        ),
        [] => fail(StatusCode::UNAUTHORIZED, "Invalid credentials"),
        [user] => Json(token_response(&s, user)).into_response(),
        many => {
            let list: Vec<Value> = many
                .iter()
                .filter_map(|u| tenants.iter().find(|t| t.0 == u.tenant_id))
                .map(|(id, name, slug)| json!({"tenant_id": id, "tenant_name": name, "tenant_slug": slug, "logo_url": null}))
                .collect();
            Json(
                json!({"requires_tenant_selection": true, "login_identifier": ident,
                        "tenants": list, "pending_token": null}),
            )
            .into_response()
        }
    }
}

async fn me(State(s): State<AppState>, headers: HeaderMap) -> Response {
    match caller(&s, &headers, true) {
        Ok(u) => {
            let mut out = user_out(&u);
            out["is_platform_admin"] = json!(u.role == "platform_admin");
            Json(out).into_response()
        }
        Err(r) => r,
    }
}

async fn agents(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let u = match caller(&s, &headers, false) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let d = s.data();
    let list: Vec<Value> = d
        .agents
        .iter()
        .filter(|a| a.tenant_id == u.tenant_id && !a.deleted)
        .map(|a| {
            json!({"id": a.id, "name": a.name, "creator_id": a.creator_id, "status": "running",
                        "autonomy_policy": a.autonomy_policy})
        })
        .collect();
    Json(list).into_response()
}

fn status_filter(q: &HashMap<String, String>) -> Result<Option<String>, Response> {
    match q.get("status_filter").map(String::as_str) {
        None => Ok(None),
        Some(s @ ("pending" | "approved" | "rejected")) => Ok(Some(s.to_owned())),
        Some(_) => Err(internal()),
    }
}

async fn list_approvals(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let u = match caller(&s, &headers, false) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if s.data().main_head {
        return internal();
    }
    let filter = match status_filter(&q) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let d = s.data();
    let mut rows: Vec<_> = d
        .approvals
        .iter()
        .filter(|a| filter.as_deref().is_none_or(|f| a.status == f))
        .filter_map(|a| d.agents.iter().find(|g| g.id == a.agent_id).map(|g| (a, g)))
        .filter(|(_, g)| g.tenant_id == u.tenant_id)
        .filter(|(_, g)| u.role == "platform_admin" || g.creator_id == u.id)
        .collect();
    // created_at DESC with no tie-breaker: a stable sort keeps ties in
    // insertion order, as Postgres happens to.
    rows.sort_by_key(|(a, _)| std::cmp::Reverse(a.created_at));
    let out: Vec<Value> = rows
        .into_iter()
        .map(|(a, g)| s.approval_json_z(a, Some(g.name.clone())))
        .collect();
    Json(out).into_response()
}

async fn agent_approvals(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(agent): Path<String>,
    Query(q): Params,
) -> Response {
    let u = match caller(&s, &headers, false) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if let Err(r) = agent_access(&s, &u, &agent) {
        return r;
    }
    let filter = match status_filter(&q) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let d = s.data();
    let mut rows: Vec<_> = d
        .approvals
        .iter()
        .filter(|a| a.agent_id == agent && filter.as_deref().is_none_or(|f| a.status == f))
        .collect();
    rows.sort_by_key(|a| std::cmp::Reverse(a.created_at));
    let out: Vec<Value> = rows
        .into_iter()
        .map(|a| json!({"id": a.id, "agent_id": a.agent_id, "action_type": a.action_type, "details": a.details,
            "status": a.status, "created_at": offset_time(a.created_at),
            "resolved_at": a.resolved_at.map(offset_time), "resolved_by": a.resolved_by}))
        .collect();
    Json(out).into_response()
}

fn agent_access(s: &Shared, u: &User, agent: &str) -> Result<(), Response> {
    if Uuid::parse_str(agent).is_err() {
        return Err(validation("Input should be a valid UUID"));
    }
    let d = s.data();
    let Some(a) = d.agents.iter().find(|a| a.id == agent && !a.deleted) else {
        return Err(fail(StatusCode::NOT_FOUND, "Agent not found"));
    };
    if a.tenant_id != u.tenant_id {
        return Err(fail(StatusCode::FORBIDDEN, "No access to this agent"));
    }
    if a.creator_id != u.id && !is_admin(u) {
        return Err(fail(
            StatusCode::FORBIDDEN,
            "Only agent creator or admin can view approvals",
        ));
    }
    Ok(())
}

/// The shared resolve semantics; `Ok` carries the resolved row.
async fn resolve(
    s: &AppState,
    u: &User,
    id: &str,
    action: &str,
) -> Result<super::Approval, Response> {
    let (approval, delay, run_tool) = {
        let d = s.data();
        let Some(a) = d.approvals.iter().find(|a| a.id == id).cloned() else {
            return Err(fail(StatusCode::BAD_REQUEST, "Approval not found"));
        };
        if a.status != "pending" {
            return Err(fail(StatusCode::BAD_REQUEST, "Approval already resolved"));
        }
        let creator = d
            .agents
            .iter()
            .find(|g| g.id == a.agent_id)
            .map(|g| g.creator_id.clone());
        if creator.is_some_and(|c| c != u.id) && u.role != "platform_admin" {
            return Err(fail(
                StatusCode::BAD_REQUEST,
                "Only the agent creator or platform admin can resolve approvals",
            ));
        }
        let legacy_tool =
            a.details.get("tool").is_some() && a.details.get("runtime_scope").is_none();
        (a, d.resolve_delay, legacy_tool && action == "approve")
    };
    let approve = action == "approve";
    let result = if run_tool {
        Some(s.config.result_text.clone())
    } else if approval.details.get("runtime_scope").is_some() {
        Some("Original Agent Run queued to resume".into())
    } else {
        None
    };
    // The tool runs inside the request; the server commits even if the
    // client gave up waiting, so the work happens in a task of its own.
    let (s2, id2, user2) = (s.clone(), id.to_owned(), u.id.clone());
    let commit = tokio::spawn(async move {
        if run_tool && !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        s2.apply_resolve(&id2, &user2, approve, result);
    });
    let _ = commit.await;
    let d = s.data();
    Ok(d.approvals
        .iter()
        .find(|a| a.id == approval.id)
        .cloned()
        .unwrap_or(approval))
}

async fn resolve_a(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    // Logged on arrival: a client that gives up waiting has still sent it.
    let logged = serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null);
    let slot = {
        let mut d = s.data();
        d.received.push(ReceivedResolve {
            approval_id: id.clone(),
            body: logged,
            status: 0,
        });
        d.received.len() - 1
    };
    let resp = resolve_a_inner(&s, &headers, &id, &body).await;
    if let Some(r) = s.data().received.get_mut(slot) {
        r.status = resp.status().as_u16();
    }
    resp
}

async fn resolve_a_inner(s: &AppState, headers: &HeaderMap, id: &str, body: &[u8]) -> Response {
    let u = match caller(s, headers, false) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if Uuid::parse_str(id).is_err() {
        return validation("Input should be a valid UUID");
    }
    let Some(action) = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|b| b.get("action").and_then(Value::as_str).map(str::to_owned))
    else {
        return validation("Field required");
    };
    match resolve(s, &u, id, &action).await {
        Ok(a) => Json(s.approval_json_z(&a, None)).into_response(),
        Err(r) => r,
    }
}

async fn resolve_b(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path((agent, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let u = match caller(&s, &headers, false) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if let Err(r) = agent_access(&s, &u, &agent) {
        return r;
    }
    // A missing action means reject on this route.
    let action = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b.get("action").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "reject".into());
    match resolve(&s, &u, &id, &action).await {
        Ok(a) => Json(
            json!({"id": a.id, "status": a.status, "resolved_at": a.resolved_at.map(offset_time)}),
        )
        .into_response(),
        Err(r) => r,
    }
}

fn category_types(category: Option<&str>) -> Option<&'static [&'static str]> {
    match category {
        Some("tool") => Some(&["autonomy_l2"]),
        Some("approval") => Some(&["approval_pending", "approval_resolved"]),
        Some("social") => Some(&["plaza_comment", "plaza_reply", "mention", "broadcast"]),
        Some("broadcast") => Some(&["broadcast"]),
        _ => None,
    }
}

async fn notifications(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(q): Params,
) -> Response {
    let u = match caller(&s, &headers, false) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if s.data().main_head {
        return internal();
    }
    let limit: i64 = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(50);
    if limit > 200 {
        return validation("Input should be less than or equal to 200");
    }
    if limit < 0 {
        return internal();
    }
    let offset: usize = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    let unread_only = q.get("unread_only").is_some_and(|v| v == "true");
    let types = category_types(q.get("category").map(String::as_str));
    let d = s.data();
    let mut rows: Vec<_> = d
        .notifications
        .iter()
        .filter(|n| n.user_id == u.id)
        .filter(|n| !unread_only || !n.is_read)
        .filter(|n| types.is_none_or(|t| t.contains(&n.kind.as_str())))
        .collect();
    rows.sort_by_key(|n| std::cmp::Reverse(n.created_at));
    let out: Vec<Value> = rows
        .into_iter()
        .skip(offset)
        .take(limit as usize)
        .map(|n| json!({"id": n.id, "type": n.kind, "title": n.title, "body": n.body, "link": n.link,
            "ref_id": n.ref_id, "sender_name": null, "is_read": n.is_read, "created_at": offset_time(n.created_at)}))
        .collect();
    Json(out).into_response()
}

async fn unread_count(State(s): State<AppState>, headers: HeaderMap, Query(q): Params) -> Response {
    let u = match caller(&s, &headers, false) {
        Ok(u) => u,
        Err(r) => return r,
    };
    let types = category_types(q.get("category").map(String::as_str));
    let n = s
        .data()
        .notifications
        .iter()
        .filter(|n| {
            n.user_id == u.id && !n.is_read && types.is_none_or(|t| t.contains(&n.kind.as_str()))
        })
        .count();
    Json(json!({"unread_count": n})).into_response()
}

async fn read_one(
    State(s): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let u = match caller(&s, &headers, false) {
        Ok(u) => u,
        Err(r) => return r,
    };
    for n in s.data().notifications.iter_mut() {
        if n.id == id && n.user_id == u.id {
            n.is_read = true;
        }
    }
    Json(json!({"ok": true})).into_response()
}

async fn read_all(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let u = match caller(&s, &headers, false) {
        Ok(u) => u,
        Err(r) => return r,
    };
    for n in s
        .data()
        .notifications
        .iter_mut()
        .filter(|n| n.user_id == u.id)
    {
        n.is_read = true;
    }
    Json(json!({"ok": true})).into_response()
}

async fn audit_logs(State(s): State<AppState>, headers: HeaderMap, Query(q): Params) -> Response {
    let u = match caller(&s, &headers, false) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if !is_admin(&u) {
        return fail(StatusCode::FORBIDDEN, "Admin access required");
    }
    if s.data().main_head {
        return internal();
    }
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(50);
    let d = s.data();
    let mut rows: Vec<_> = d
        .audit
        .iter()
        .filter(|r| {
            q.get("agent_id")
                .is_none_or(|a| r.agent_id.as_deref() == Some(a.as_str()))
        })
        .filter(|r| {
            r.agent_id.as_ref().is_some_and(|a| {
                d.agents
                    .iter()
                    .any(|g| &g.id == a && g.tenant_id == u.tenant_id)
            })
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.created_at));
    let out: Vec<Value> = rows
        .into_iter()
        .take(limit)
        .map(|r| {
            json!({"id": r.id, "user_id": r.user_id, "agent_id": r.agent_id, "action": r.action,
            "details": r.details, "ip_address": null, "created_at": z_time(r.created_at)})
        })
        .collect();
    Json(out).into_response()
}

async fn stats(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let u = match caller(&s, &headers, false) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if !is_admin(&u) {
        return fail(StatusCode::FORBIDDEN, "Admin access required");
    }
    let d = s.data();
    let pending = d.approvals.iter().filter(|a| a.status == "pending").count();
    Json(
        json!({"total_agents": d.agents.len(), "running_agents": d.agents.len(),
                "total_users": d.users.len(), "pending_approvals": pending}),
    )
    .into_response()
}

async fn fake_autonomy(State(s): State<AppState>, body: Bytes) -> Response {
    // JSON whatever the Content-Type, so a plain `curl -d` works.
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let details = body.get("details").cloned().unwrap_or_else(|| json!({}));
    let id = s.autonomy(
        &text("agent_id"),
        &text("action_type"),
        &text("level"),
        details,
    );
    Json(json!({"approval_id": id})).into_response()
}
