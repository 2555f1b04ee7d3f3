//! The Clawith connector (`shared/protocols/clawith.md`, release v1.11.3).
//!
//! Clawith has no push channel: the engine polls [`Connector::reconcile`],
//! which reads the pending L3 approvals and the L2 activity (the user's
//! `autonomy_l2` and `approval_resolved` notifications, and for admins the
//! `autonomy_check:*` audit rows of agents they did not create).
//!
//! Login is by password; the 24 h JWT has no refresh, so the connector logs
//! in again shortly before `exp` and once after any 401. A user in several
//! companies picks one with the account's `tenant` setting.
//!
//! **Company binding.** The first successful login resolves the chosen
//! company (id, slug or name; or the user's only company) to its id, checks
//! it is the one asked for, and keeps it ([`Settings::tenant_id`], written
//! back through [`Clawith::on_company_bound`]). Every later login asks for
//! that id and must land in it: after the company is deleted, Clawith logs
//! its member straight into their other company, and syncing that would
//! show another company's approvals. Such a login fails with
//! [`ConnectorError::Auth`] instead, so nothing from the other company is
//! read.
//!
//! **Resolver names.** `resolved_by` is a user id; `GET /api/org/users`
//! (any signed-in user, the active users of the caller's company) names
//! it. The list is read at most every [`NAMES_TTL`] seconds, when an id
//! not in it turns up; an id it does not name is shown as the id.
//!
//! Resolving may run the approved tool inside the HTTP request, so it gets
//! a long timeout and is never retried blindly: after a timeout the
//! connector waits for the pending list to tell what happened.
//!
//! **Identity.** A request's `remote_id` is the approval's own `id`, the
//! primary key of its `approval_requests` row, exactly as
//! `GET /api/enterprise/approvals` gives it (a lower-case UUID), and
//! nothing else. The protocol doc's "Data model" makes that id one ask's:
//! a legacy approval gets a random UUID at every check, so an ask raised
//! again is a new row and a new request; a runtime approval gets a UUIDv5
//! of its Run and `runtime-approval:<action_type>:<tool_call_id>`, and
//! a re-check of that tool call ("Runtime re-check", also after a policy
//! change, since the existing row is looked up before the level) finds the
//! row and writes nothing, so it is the same ask and no new one. In
//! v1.11.3's source (`autonomy_service.py`) a row's `agent_id`,
//! `action_type` and `details` are written once, at insert; resolving
//! changes only `status` and `resolved_*`, and rows are deleted only with
//! their whole company. No id ever names a second ask, so it is a sound
//! identity. (Unchanged since the first release: stored ids need no
//! migration.)
//!
//! Before resolving, `deliver` reads the pending list and looks for the
//! id. Not listed any more (resolved elsewhere, deleted, or out of this
//! account's sight): nothing is sent, and the approved and rejected lists
//! tell how it ended; on a retry an outcome with our user and our verdict
//! is our own earlier attempt. Listed, but with another agent, action
//! type or details than the stored `request.raw` (what the reviewer saw):
//! nothing is sent and the decision is refused, so the reviewer decides
//! again; v1.11.3 cannot do that, the check guards against a release that
//! would. Only then does the resolve go out. Clawith resolves without a
//! row lock (the doc's "Concurrency"), so a resolve from elsewhere in the
//! gap after the check can still apply too; the row it resolves is the
//! one checked.

mod pylit;
pub mod wire;

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use countersign_connector::http::{self, status_error, transport};
use countersign_connector::{
    resolved_elsewhere, Connector, ConnectorError, Delivered, Snapshot, UpdateStream,
};
use countersign_model::{Clock, Decision, Outcome, Request, Resolution, Secret, Status};
use reqwest::{RequestBuilder, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Per-account settings, stored in the account's `settings` JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Settings {
    /// Email, username or phone (`login_identifier`).
    pub login: String,
    /// The company to sign in to, for users in several: id, slug or name.
    pub tenant: Option<String>,
    /// The company's id, learned at the first successful login and kept:
    /// every later login must land in it. Reset when the account's URL,
    /// login or company changes.
    pub tenant_id: Option<String>,
    /// How often to poll while running (Clawith's own UI: 15–30 s).
    pub poll_secs: u64,
    /// How long a resolve may take: approving runs the tool in the request.
    pub resolve_timeout_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            login: String::new(),
            tenant: None,
            tenant_id: None,
            poll_secs: 5,
            resolve_timeout_secs: 180,
        }
    }
}

/// What a Clawith connector is built from.
#[derive(Debug, Clone)]
pub struct ClawithConfig {
    pub base_url: String,
    pub password: Option<Secret>,
    /// The name this account's decisions are recorded under locally.
    pub reviewer: String,
    pub settings: Settings,
    pub http: reqwest::Client,
    pub clock: Arc<dyn Clock>,
}

#[derive(Clone)]
struct Session {
    token: Secret,
    exp: DateTime<Utc>,
    /// When we logged in, by our clock.
    issued: DateTime<Utc>,
    user_id: String,
    role: String,
}

/// Called with the company id an account is bound to, once, at the first
/// successful login (the caller keeps it with the account).
pub type CompanyBound = Arc<dyn Fn(&str) + Send + Sync>;

/// Resolver names from `GET /api/org/users`, and when they were read.
#[derive(Default)]
struct Names {
    by_id: HashMap<String, String>,
    read_at: Option<DateTime<Utc>>,
}

/// A Clawith platform, for one account.
pub struct Clawith {
    cfg: ClawithConfig,
    base: String,
    /// Single flight: concurrent callers wait for one login.
    session: tokio::sync::Mutex<Option<Session>>,
    /// Agent id → (name, creator id).
    agents: Mutex<HashMap<String, (String, String)>>,
    /// The company this account is bound to (see the crate doc).
    bound: Mutex<Option<String>>,
    on_bound: Option<CompanyBound>,
    names: tokio::sync::Mutex<Names>,
}

/// How long the list of the company's users is trusted, in seconds.
pub const NAMES_TTL: i64 = 3600;

/// Log in again this long before the token's `exp`.
const RENEW_BEFORE: i64 = 300;
/// After a timed-out resolve, how long a still-pending approval may just be
/// the tool still running; past this the first attempt surely failed.
const TOOL_RUN_LIMIT: i64 = 600;

const ALREADY_RESOLVED: &str = "Approval already resolved";
const NOT_FOUND: &str = "Approval not found";
const NOT_ALLOWED: &str = "Only the agent creator or platform admin can resolve approvals";

/// `exp` of a JWT, read without verifying (only the server can).
fn jwt_exp(token: &str) -> Option<DateTime<Utc>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    DateTime::from_timestamp(claims.get("exp")?.as_i64()?, 0)
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

impl Clawith {
    pub fn new(cfg: ClawithConfig) -> Self {
        let base = cfg.base_url.trim_end_matches('/').to_owned();
        let bound = cfg.settings.tenant_id.clone().filter(|t| is_uuid(t));
        Self {
            cfg,
            base,
            session: tokio::sync::Mutex::new(None),
            agents: Mutex::new(HashMap::new()),
            bound: Mutex::new(bound),
            on_bound: None,
            names: tokio::sync::Mutex::new(Names::default()),
        }
    }

    /// Tells `f` the company id when the account is bound to it at the
    /// first successful login, so the caller can keep it.
    pub fn on_company_bound(mut self, f: CompanyBound) -> Self {
        self.on_bound = Some(f);
        self
    }

    /// The company this account is bound to, once known.
    pub fn bound_company(&self) -> Option<String> {
        self.bound.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The refusal for a login that did not land in the bound company.
    fn company_gone(&self) -> ConnectorError {
        let name = self
            .cfg
            .settings
            .tenant
            .clone()
            .or_else(|| self.bound_company())
            .unwrap_or_default();
        ConnectorError::Auth(format!(
            "company {name} no longer exists or you are no longer a member; Countersign signs this \
             account in to no other company (set another with `countersign account edit --tenant`)"
        ))
    }

    fn now(&self) -> DateTime<Utc> {
        self.cfg.clock.now()
    }

    /// A valid session: the cached one, or a fresh login when there is none,
    /// it expires soon, or `force`.
    async fn session(&self, force: bool) -> Result<Session, ConnectorError> {
        let mut slot = self.session.lock().await;
        if let Some(s) = slot.as_ref() {
            let fresh = self.now() - s.issued < ChronoDuration::seconds(60);
            // A token just issued is used even if `exp` looks close: our clock
            // may run ahead of the server's, and re-logging in would loop.
            if !force && (fresh || s.exp - self.now() > ChronoDuration::seconds(RENEW_BEFORE)) {
                return Ok(s.clone());
            }
        }
        *slot = None;
        let s = self.login().await?;
        *slot = Some(s.clone());
        Ok(s)
    }

    async fn login(&self) -> Result<Session, ConnectorError> {
        let password =
            self.cfg.password.as_ref().ok_or_else(|| {
                ConnectorError::Auth("no password stored for this account".into())
            })?;
        let bound = self.bound_company();
        let wanted = self.cfg.settings.tenant.as_deref().map(str::trim);
        let ask = bound
            .clone()
            .or_else(|| wanted.filter(|t| is_uuid(t)).map(str::to_lowercase));
        let first = match self.login_as(password, ask.as_deref()).await {
            Err(ConnectorError::Auth(why))
                if ask.is_some()
                    && why.contains("does not belong to the selected organization") =>
            {
                return Err(self.company_gone())
            }
            other => other?,
        };
        let (answer, picked) = if first
            .get("requires_tenant_selection")
            .and_then(Value::as_bool)
            == Some(true)
        {
            let id = self.pick_tenant(&first, bound.as_deref(), wanted)?;
            (self.login_as(password, Some(&id)).await?, true)
        } else {
            (first, false)
        };
        let session = self.session_from(&answer)?;
        let landed = answer
            .pointer("/user/tenant_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase();
        if let Some(b) = bound {
            if landed != b {
                tracing::warn!("clawith: login landed in company {landed}, not the account's {b}");
                return Err(self.company_gone());
            }
            return Ok(session);
        }
        // The first successful login: is this the company asked for?
        if let Some(w) = wanted.filter(|_| !picked) {
            let matches = if is_uuid(w) {
                landed == w.to_lowercase()
            } else {
                self.company_is(&session, w).await
            };
            if !matches {
                return Err(self.company_gone());
            }
        }
        if is_uuid(&landed) {
            *self.bound.lock().unwrap_or_else(|e| e.into_inner()) = Some(landed.clone());
            if let Some(f) = &self.on_bound {
                f(&landed);
            }
        }
        Ok(session)
    }

    /// The company to log in to from a `requires_tenant_selection` answer:
    /// the bound one, else the one named by the settings, else the only one.
    fn pick_tenant(
        &self,
        answer: &Value,
        bound: Option<&str>,
        wanted: Option<&str>,
    ) -> Result<String, ConnectorError> {
        let tenants: Vec<&Value> = answer
            .get("tenants")
            .and_then(Value::as_array)
            .map(|t| t.iter().collect())
            .unwrap_or_default();
        let field = |t: &Value, k: &str| t.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        if let Some(b) = bound {
            return tenants
                .iter()
                .find(|t| field(t, "tenant_id").to_lowercase() == b)
                .map(|t| field(t, "tenant_id"))
                .ok_or_else(|| self.company_gone());
        }
        let chosen = match wanted.map(str::to_lowercase) {
            Some(w) => tenants.iter().find(|t| {
                [
                    field(t, "tenant_id"),
                    field(t, "tenant_slug"),
                    field(t, "tenant_name"),
                ]
                .iter()
                .any(|v| v.to_lowercase() == w)
            }),
            None if tenants.len() == 1 => tenants.first(),
            None => None,
        };
        if let Some(chosen) = chosen {
            return Ok(field(chosen, "tenant_id"));
        }
        if wanted.is_some() {
            return Err(self.company_gone());
        }
        let names: Vec<String> = tenants
            .iter()
            .map(|t| format!("{} ({})", field(t, "tenant_name"), field(t, "tenant_slug")))
            .collect();
        Err(ConnectorError::Auth(format!(
            "this user belongs to several companies; set the account's tenant to one of: {}",
            names.join(", ")
        )))
    }

    /// Whether the company a plain login landed in has this name or slug
    /// (`GET /api/tenants/me`). A server that cannot tell is believed: the
    /// binding then still guards every later login.
    async fn company_is(&self, session: &Session, wanted: &str) -> bool {
        let url = format!("{}/api/tenants/me", self.base);
        let answer = self
            .cfg
            .http
            .get(&url)
            .bearer_auth(session.token.expose())
            .send()
            .await;
        let me: Option<Value> = match answer {
            Ok(r) if r.status().is_success() => http::body(r)
                .await
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok()),
            _ => None,
        };
        let Some(me) = me else {
            tracing::info!("clawith: could not read the company's name; trusting the login");
            return true;
        };
        let w = wanted.to_lowercase();
        ["name", "slug"].iter().any(|k| {
            me.get(*k)
                .and_then(Value::as_str)
                .is_some_and(|v| v.to_lowercase() == w)
        })
    }

    async fn login_as(
        &self,
        password: &Secret,
        tenant: Option<&str>,
    ) -> Result<Value, ConnectorError> {
        let body = json!({
            "login_identifier": self.cfg.settings.login,
            "password": password.expose(),
            "tenant_id": tenant,
        });
        let resp = self
            .cfg
            .http
            .post(format!("{}/api/auth/login", self.base))
            .json(&body)
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = http::body(resp).await?;
        match status.as_u16() {
            200 => serde_json::from_slice(&bytes)
                .map_err(|e| ConnectorError::Protocol(format!("login answer: {e}"))),
            401 => Err(ConnectorError::Auth(format!(
                "wrong login or password ({})",
                wire::detail(&bytes)
            ))),
            403 | 404 => Err(ConnectorError::Auth(wire::detail(&bytes))),
            _ => Err(status_error(status, &headers, wire::detail(&bytes))),
        }
    }

    fn session_from(&self, answer: &Value) -> Result<Session, ConnectorError> {
        let token = answer
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| ConnectorError::Protocol("login answer without access_token".into()))?;
        let user = answer.get("user").cloned().unwrap_or(Value::Null);
        Ok(Session {
            exp: jwt_exp(token).unwrap_or_else(|| self.now() + ChronoDuration::hours(24)),
            issued: self.now(),
            token: Secret::new(token),
            user_id: user
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            role: user
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        })
    }

    /// Sends an authenticated request; after a 401 logs in again once and
    /// retries. Returns status and body of any non-auth answer.
    async fn call(
        &self,
        build: impl Fn(&str) -> RequestBuilder,
    ) -> Result<(StatusCode, Vec<u8>), ConnectorError> {
        let mut session = self.session(false).await?;
        for attempt in 0..2 {
            let resp = build(session.token.expose())
                .send()
                .await
                .map_err(transport)?;
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = http::body(resp).await?;
            if status == StatusCode::UNAUTHORIZED
                || (status == StatusCode::FORBIDDEN && wire::detail(&body) == "Not authenticated")
            {
                if attempt == 0 {
                    tracing::info!(
                        "clawith: token refused ({}); logging in again",
                        wire::detail(&body)
                    );
                    session = self.session(true).await?;
                    continue;
                }
                return Err(ConnectorError::Auth(wire::detail(&body)));
            }
            if status.is_success() || status == StatusCode::BAD_REQUEST {
                return Ok((status, body));
            }
            return Err(status_error(status, &headers, wire::detail(&body)));
        }
        unreachable_auth()
    }

    async fn get(&self, path: &str) -> Result<Vec<u8>, ConnectorError> {
        let url = format!("{}{path}", self.base);
        let (status, body) = self
            .call(|t| self.cfg.http.get(&url).bearer_auth(t))
            .await?;
        if !status.is_success() {
            return Err(ConnectorError::Rejected(wire::detail(&body)));
        }
        Ok(body)
    }

    async fn approvals(
        &self,
        status: &str,
    ) -> Result<Vec<(wire::ApprovalRow, Value)>, ConnectorError> {
        let body = self
            .get(&format!("/api/enterprise/approvals?status_filter={status}"))
            .await?;
        let raw: Vec<Value> = serde_json::from_slice(&body)
            .map_err(|e| ConnectorError::Protocol(format!("approval list: {e}")))?;
        let mut out = Vec::with_capacity(raw.len());
        for v in raw {
            match serde_json::from_value::<wire::ApprovalRow>(v.clone()) {
                Ok(row) => out.push((row, v)),
                Err(e) => tracing::warn!("clawith: skipping a malformed approval: {e}"),
            }
        }
        Ok(out)
    }

    /// Refreshes agent names and creators (used for notifications).
    async fn refresh_agents(&self) {
        let Ok(body) = self.get("/api/agents/").await else {
            return;
        };
        let Ok(list) = serde_json::from_slice::<Vec<Value>>(&body) else {
            return;
        };
        let mut agents = self.agents.lock().unwrap_or_else(|e| e.into_inner());
        for a in list {
            let text = |k: &str| a.get(k).and_then(Value::as_str).map(str::to_owned);
            if let (Some(id), Some(name)) = (text("id"), text("name")) {
                agents.insert(id, (name, text("creator_id").unwrap_or_default()));
            }
        }
    }

    fn agent(&self, id: &str) -> Option<(String, String)> {
        self.agents
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    async fn activity(&self, session: &Session) -> Vec<countersign_model::ObservedActivity> {
        let mut out = Vec::new();
        match self
            .get("/api/notifications?limit=50")
            .await
            .map(|b| wire::rows::<wire::NotificationRow>(&b, "notification"))
        {
            Ok(Ok((rows, bad))) => {
                bad.iter().for_each(|b| tracing::warn!("clawith: {b}"));
                for n in rows
                    .iter()
                    .filter(|n| n.kind == "autonomy_l2" || n.kind == "approval_resolved")
                {
                    let agent = n
                        .link
                        .as_deref()
                        .and_then(wire::agent_of_link)
                        .and_then(|id| self.agent(id).map(|a| a.0))
                        .or_else(|| {
                            n.title
                                .strip_prefix('[')
                                .and_then(|t| t.split("] ").next())
                                .map(str::to_owned)
                        });
                    let raw = serde_json::to_value(NotificationRaw::from(n)).unwrap_or(Value::Null);
                    out.push(wire::notification_activity(n, agent, raw));
                }
            }
            Ok(Err(why)) => tracing::warn!("clawith: {why}"),
            Err(e) => tracing::debug!("clawith: notifications unavailable: {e}"),
        }
        if session.role == "platform_admin" || session.role == "org_admin" {
            if let Ok(Ok((rows, _))) = self
                .get("/api/enterprise/audit-logs?limit=50")
                .await
                .map(|b| wire::rows::<wire::AuditRow>(&b, "audit log"))
            {
                for a in rows {
                    let agent = a.agent_id.as_deref().and_then(|id| self.agent(id));
                    // The creator already has the notification of this event.
                    if agent
                        .as_ref()
                        .is_some_and(|(_, creator)| *creator == session.user_id)
                    {
                        continue;
                    }
                    let raw = json!({"id": a.id, "action": a.action, "details": a.details});
                    if let Some(item) = wire::audit_activity(&a, agent.map(|a| a.0), raw) {
                        out.push(item);
                    }
                }
            }
        }
        out
    }

    /// The name of a user of this company, from `GET /api/org/users`: the
    /// cached list, read again only when it is older than [`NAMES_TTL`]
    /// and does not know the id.
    async fn name_of(&self, user_id: &str) -> Option<String> {
        let mut names = self.names.lock().await;
        let stale = names
            .read_at
            .is_none_or(|at| self.now() - at > ChronoDuration::seconds(NAMES_TTL));
        if !names.by_id.contains_key(user_id) && stale {
            names.read_at = Some(self.now());
            match self.get("/api/org/users").await {
                Ok(body) => {
                    let list: Vec<Value> = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|v| match v {
                            Value::Array(a) => Some(a),
                            Value::Object(mut o) => ["users", "items"]
                                .iter()
                                .find_map(|k| o.remove(*k))
                                .and_then(|v| v.as_array().cloned()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    names.by_id.clear();
                    for u in list {
                        let text = |k: &str| {
                            u.get(k)
                                .and_then(Value::as_str)
                                .map(str::trim)
                                .filter(|v| !v.is_empty())
                                .map(str::to_owned)
                        };
                        let name = text("display_name")
                            .or_else(|| text("username"))
                            .or_else(|| text("email"));
                        if let (Some(id), Some(name)) = (text("id"), name) {
                            names.by_id.insert(id.to_lowercase(), name);
                        }
                    }
                }
                Err(e) => tracing::info!("clawith: could not read the company's users: {e}"),
            }
        }
        names.by_id.get(&user_id.to_lowercase()).cloned()
    }

    /// How `ids` ended, from the approved and rejected lists.
    async fn outcomes(&self, ids: &[&str]) -> Result<Vec<Resolution>, ConnectorError> {
        let me = self.session(false).await?.user_id;
        let mut found = HashMap::new();
        for status in ["approved", "rejected"] {
            for (row, _) in self.approvals(status).await? {
                if ids.contains(&row.id.as_str()) {
                    found.insert(row.id.clone(), row);
                }
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(row) = found.get(*id) else {
                out.push(resolved_elsewhere(id));
                continue;
            };
            // Our own user id is shown (and matched) as our reviewer name; a
            // colleague by name where Clawith tells it, else by id. A
            // colleague's name never poses as ours.
            let decided_by = match row.resolved_by.as_deref() {
                None => None,
                Some(by) if by == me => Some(self.cfg.reviewer.clone()),
                Some(by) => Some(match self.name_of(by).await {
                    Some(name) if name != self.cfg.reviewer => name,
                    Some(name) => format!("{name} (user {by})"),
                    None => format!("user {by}"),
                }),
            };
            out.push(Resolution {
                remote_id: row.id.clone(),
                status: Status::ResolvedElsewhere,
                outcome: Some(row.status.clone()),
                decided_by,
                decided_at: row.resolved_at,
            });
        }
        Ok(out)
    }

    /// How an approval that is no longer pending ended. With `retry`, an
    /// outcome by our user with our verdict is an earlier attempt of ours
    /// whose answer was lost; on a first attempt nothing of ours was sent,
    /// so it is never ours.
    async fn ended(
        &self,
        request: &Request,
        verdict: &str,
        retry: bool,
    ) -> Result<Delivered, ConnectorError> {
        let res = self
            .outcomes(&[request.remote_id.as_str()])
            .await?
            .pop()
            .unwrap_or_else(|| resolved_elsewhere(&request.remote_id));
        let ours = retry
            && res.decided_by.as_deref() == Some(self.cfg.reviewer.as_str())
            && res.outcome.as_deref()
                == Some(if verdict == "approve" {
                    "approved"
                } else {
                    "rejected"
                });
        Ok(if ours {
            Delivered::Confirmed
        } else {
            Delivered::ResolvedElsewhere(res)
        })
    }
}

fn unreachable_auth<T>() -> Result<T, ConnectorError> {
    Err(ConnectorError::Auth(
        "refused after logging in again".into(),
    ))
}

/// A notification as received, for the activity item's raw payload.
#[derive(Serialize)]
struct NotificationRaw<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    body: Option<&'a str>,
    link: Option<&'a str>,
    ref_id: Option<&'a str>,
    created_at: String,
}

impl<'a> From<&'a wire::NotificationRow> for NotificationRaw<'a> {
    fn from(n: &'a wire::NotificationRow) -> Self {
        Self {
            id: &n.id,
            kind: &n.kind,
            title: &n.title,
            body: n.body.as_deref(),
            link: n.link.as_deref(),
            ref_id: n.ref_id.as_deref(),
            created_at: n.created_at.to_rfc3339(),
        }
    }
}

#[async_trait]
impl Connector for Clawith {
    async fn reconcile(&self) -> Result<Snapshot, ConnectorError> {
        let session = self.session(false).await?;
        let rows = self.approvals("pending").await?;
        if rows.iter().any(|(r, _)| self.agent(&r.agent_id).is_none())
            || self.agents.lock().map(|a| a.is_empty()).unwrap_or(true)
        {
            self.refresh_agents().await;
        }
        // Rows of one transaction share `created_at`; each id is its own
        // request, so ties lose nothing.
        let pending = rows
            .iter()
            .map(|(row, raw)| wire::request(row, &self.base, raw.clone()))
            .collect();
        Ok(Snapshot {
            pending,
            truncated: false,
            activity: self.activity(&session).await,
            note: None,
        })
    }

    async fn subscribe(&self) -> Result<Option<UpdateStream>, ConnectorError> {
        Ok(None) // Clawith pushes nothing: the engine polls.
    }

    fn reconcile_interval(&self) -> Duration {
        Duration::from_secs(self.cfg.settings.poll_secs.max(1))
    }

    async fn resolve_missing(&self, gone: &[Request]) -> Result<Vec<Resolution>, ConnectorError> {
        let ids: Vec<&str> = gone.iter().map(|r| r.remote_id.as_str()).collect();
        self.outcomes(&ids).await
    }

    async fn deliver(
        &self,
        request: &Request,
        decision: &Decision,
    ) -> Result<Delivered, ConnectorError> {
        let verdict = match decision.outcome {
            Outcome::Approve => "approve",
            Outcome::Deny => "reject",
            other => {
                return Err(ConnectorError::Rejected(format!(
                    "Clawith only takes approve or reject, not {other}"
                )))
            }
        };
        if !is_uuid(&request.remote_id) {
            return Err(ConnectorError::Rejected(
                "the approval id is not a UUID".into(),
            ));
        }
        let retry = decision.attempts > 1;
        // The ask still pending must be the one decided (see the crate
        // doc's "Identity"); otherwise nothing is sent.
        let pending = self
            .approvals("pending")
            .await
            .map_err(ConnectorError::before_sending)?;
        let Some((_, now)) = pending.iter().find(|(r, _)| r.id == request.remote_id) else {
            return self.ended(request, verdict, retry).await;
        };
        if let Some(field) = wire::changed(&request.raw, now) {
            return Err(ConnectorError::Rejected(format!(
                "Clawith's approval {} changed since you decided (its {field} is not what you saw); \
                 nothing was sent, decide again",
                request.remote_id
            )));
        }
        // An earlier attempt that was sent and got no answer may still be
        // running the tool on Clawith: never send twice before knowing. One
        // that never connected was never received, so nothing runs and it
        // goes again now (the doc's "Connection refused is not maybe
        // running").
        if let Some(since) = decision.unsure_since.filter(|_| retry) {
            let until = since + ChronoDuration::seconds(TOOL_RUN_LIMIT);
            if self.now() < until {
                return Err(ConnectorError::Uncertain(format!(
                    "sent at {} with no answer and still pending on Clawith: the tool may still be running, \
                     so it is not sent again before {} unless Clawith shows how it ended first",
                    since.format("%H:%M:%S UTC"),
                    until.format("%H:%M:%S UTC")
                )));
            }
        }
        let url = format!(
            "{}/api/enterprise/approvals/{}/resolve",
            self.base, request.remote_id
        );
        let timeout = Duration::from_secs(self.cfg.settings.resolve_timeout_secs.max(1));
        let sent = self
            .call(|t| {
                self.cfg
                    .http
                    .post(&url)
                    .bearer_auth(t)
                    .timeout(timeout)
                    .json(&json!({ "action": verdict }))
            })
            .await;
        let (status, body) = match sent {
            Ok(answer) => answer,
            Err(ConnectorError::Uncertain(why)) => {
                return Err(ConnectorError::Uncertain(format!(
                    "Clawith got the decision but gave no answer within {} s ({why}); approving runs the tool, \
                     which may still be going, so Countersign reads the pending list to learn the outcome \
                     instead of sending again",
                    timeout.as_secs()
                )))
            }
            // A proxy in front of Clawith (nginx in its docker-compose) gave
            // up waiting while the backend may still run the tool.
            Err(ConnectorError::Unavailable(why))
                if why.starts_with("HTTP 502") || why.starts_with("HTTP 504") =>
            {
                return Err(ConnectorError::Uncertain(format!(
                    "the proxy in front of Clawith gave up waiting ({why}); the tool may still be running, \
                     so Countersign reads the pending list to learn the outcome instead of sending again"
                )))
            }
            Err(e) => return Err(e),
        };
        if status.is_success() {
            return Ok(Delivered::Confirmed);
        }
        match wire::detail(&body).as_str() {
            // Resolved between the check and the resolve: by someone else,
            // or on a retry perhaps by our earlier attempt finishing.
            ALREADY_RESOLVED => self.ended(request, verdict, retry).await,
            NOT_FOUND => Ok(Delivered::ResolvedElsewhere(resolved_elsewhere(&request.remote_id))),
            NOT_ALLOWED => Err(ConnectorError::Rejected(
                "not allowed: only the agent's creator or a platform admin can resolve this approval".into(),
            )),
            other => Err(ConnectorError::Rejected(format!("Clawith refused: {other}"))),
        }
    }

    async fn mark_activity_read(&self, remote_id: &str) -> Result<(), ConnectorError> {
        let Some(id) = remote_id.strip_prefix("notification:") else {
            return Ok(()); // audit rows have no read state
        };
        let url = format!("{}/api/notifications/{id}/read", self.base);
        self.call(|t| self.cfg.http.post(&url).bearer_auth(t))
            .await
            .map(drop)
    }
}
