//! The fake SurfSense's state: users and their tokens (HS256 access JWTs,
//! rotating refresh tokens with a grace window, PATs), workspaces, threads
//! with their pending interrupts, and the resume routing rules.

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Tunables of one fake server.
#[derive(Debug, Clone)]
pub struct Config {
    /// `ACCESS_TOKEN_LIFETIME_SECONDS` (3600 in SurfSense's code).
    pub access_lifetime: Duration,
    /// `REFRESH_ROTATION_GRACE_SECONDS` (45).
    pub refresh_grace: Duration,
    /// Start with the doc's fixtures (see [`Seed`]).
    pub seed: bool,
    /// Desktop logins allowed per minute per client IP (5 on the real
    /// server; every test client is 127.0.0.1, so they share it).
    pub logins_per_minute: u32,
    /// v0.0.38 ignores a reject of the doom-loop guard: the run goes on and
    /// makes the repeated call (`surfsense.md`, "Verified against the real
    /// server"). `false` gives the intended behaviour, the turn ending.
    pub doom_loop_reject_ignored: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            access_lifetime: Duration::from_secs(3600),
            refresh_grace: Duration::from_secs(45),
            seed: true,
            logins_per_minute: 5,
            doom_loop_reject_ignored: true,
        }
    }
}

/// Ids of the seeded fixtures.
#[derive(Debug, Clone)]
pub struct Seed {
    pub email: String,
    pub password: String,
    pub user_id: String,
    /// Workspace "Research" (7) and "Ops" (8).
    pub research: i64,
    pub ops: i64,
    /// Research: two parallel stamped asks (KB `rm` and `send_gmail_email`).
    pub drafts_thread: i64,
    /// Research: an MCP ask that offers `approve_always`.
    pub mcp_thread: i64,
    /// Ops: the doom-loop guard (parent-side, `unknown_tool`).
    pub doom_thread: i64,
    /// Ops: `automation_create`, self-stamped.
    pub automation_thread: i64,
    /// Ops: a legacy-shaped value, normalised.
    pub legacy_thread: i64,
    /// Ops: a thread with nothing pending.
    pub idle_thread: i64,
}

/// How one `/resume` call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ResumeOutcome {
    /// The decisions were applied and the stream ran to `[DONE]`.
    Applied,
    /// An `error` frame inside the 200 stream; the pause stays.
    ErrorFrame { code: String, message: String },
    /// The client went away before the end: the run was cancelled and
    /// nothing applied.
    Cancelled,
    /// Refused before streaming (status code).
    Refused(u16),
}

/// One `/resume` call as received.
#[derive(Debug, Clone)]
pub struct ReceivedResume {
    pub thread_id: i64,
    pub body: Value,
    pub outcome: ResumeOutcome,
}

/// What a decision did to one interrupt, per the doc's semantics table.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub thread_id: i64,
    pub interrupt_id: String,
    pub tool_call_id: Option<String>,
    pub action: String,
    /// The decision type sent.
    pub decision: String,
    /// "ran", "rejected", "continued" or "turn_ended".
    pub effect: String,
    /// The arguments the tool ran with (after a shallow merge of an edit).
    pub args: Value,
}

/// One refresh call: the token presented and what came of it.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshCall {
    pub token: String,
    /// "rotated", "grace" (answered with `refresh_token: null`), "revoked"
    /// (late replay: family revoked) or "unknown".
    pub outcome: String,
}

pub(crate) struct Workspace {
    pub id: i64,
    pub name: String,
    pub api_access_enabled: bool,
}

pub(crate) struct Thread {
    pub id: i64,
    pub workspace_id: i64,
    pub title: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub pending: Vec<Value>,
    pub busy: bool,
    pub assistant_message_id: Option<i64>,
}

struct RefreshToken {
    user_id: String,
    family: u64,
    rotated_at: Option<Instant>,
}

pub(crate) struct Data {
    pub users: Vec<(String, String, String)>, // (id, email, password)
    pub workspaces: Vec<Workspace>,
    pub threads: Vec<Thread>,
    /// `jti` of every access token still honoured.
    live_access: HashSet<String>,
    refresh: HashMap<String, RefreshToken>,
    revoked_families: HashSet<u64>,
    next_family: u64,
    pub pats: HashMap<String, String>, // token → user id
    next_id: i64,
    pub logins: u32,
    /// When each client IP tried to log in within the last minute.
    pub login_attempts: HashMap<std::net::IpAddr, Vec<Instant>>,
    /// Refused logins (429) so far.
    pub rate_limited_logins: u32,
    pub refreshes: Vec<RefreshCall>,
    pub pending_calls: u32,
    pub thread_list_calls: u32,
    pub resumes: Vec<ReceivedResume>,
    pub applied: Vec<Applied>,
    /// Tools added to an MCP connector's `trusted_tools` by `approve_always`.
    pub trusted_tools: Vec<String>,
    /// The next resume answers with this error frame (code, message).
    pub fail_next_resume: Option<(String, String)>,
    /// The next `n` resumes of a thread get 409 THREAD_BUSY.
    pub busy_replies: HashMap<i64, u32>,
    /// Silence in the middle of a resume stream (the model working).
    pub stream_gap: Duration,
    /// Interrupts a thread raises again right after its next resume.
    pub reinterrupt: HashMap<i64, Vec<Value>>,
    /// See [`Config::doom_loop_reject_ignored`].
    pub doom_loop_reject_ignored: bool,
}

pub(crate) struct Shared {
    pub config: Config,
    key: [u8; 32],
    data: Mutex<Data>,
}

type HmacSha256 = Hmac<Sha256>;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The doc's time format for `createdAt`/`updatedAt`.
pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn hex_id() -> String {
    Uuid::new_v4().simple().to_string()
}

/// A pending value's `tool_call_id ?? interrupt_id`.
pub(crate) fn card_key(v: &Value) -> String {
    v.get("tool_call_id")
        .and_then(Value::as_str)
        .or_else(|| v.get("interrupt_id").and_then(Value::as_str))
        .unwrap_or("")
        .to_owned()
}

fn stamped(v: &Value) -> Option<&str> {
    v.get("tool_call_id").and_then(Value::as_str)
}

/// The legacy value `{type, message?, action:{tool, params}, context}` in
/// the normalised shape, as `_normalize_interrupt_payload` does.
pub(crate) fn normalise(raw: Value) -> Value {
    if raw.get("action_requests").is_some() && raw.get("review_configs").is_some() {
        return raw;
    }
    let action = raw.get("action").cloned().unwrap_or(Value::Null);
    let name = action
        .get("tool")
        .and_then(Value::as_str)
        .unwrap_or("unknown_tool")
        .to_owned();
    let args = action
        .get("params")
        .filter(|p| !p.is_null())
        .cloned()
        .unwrap_or_else(|| json!({}));
    let mut out = json!({
        "action_requests": [{"name": name, "args": args}],
        "review_configs": [{"action_name": name, "allowed_decisions": ["approve", "edit", "reject"]}],
        "interrupt_type": raw.get("type").and_then(Value::as_str).unwrap_or("unknown"),
        "context": raw.get("context").cloned().unwrap_or_else(|| json!({})),
    });
    if let Some(m) = raw.get("message") {
        out["message"] = m.clone();
    }
    if let Some(t) = raw.get("tool_call_id") {
        out["tool_call_id"] = t.clone();
    }
    out
}

/// The fixtures the doc's checklist names, as normalised values.
pub mod fixtures {
    use serde_json::{json, Value};

    /// A knowledge-base `rm` ask from the `knowledge_base` subagent.
    pub fn kb_rm(tool_call_id: &str, path: &str) -> Value {
        json!({
            "action_requests": [{"name": "rm", "args": {"path": path}}],
            "review_configs": [{"action_name": "rm", "allowed_decisions": ["approve", "reject", "edit"]}],
            "interrupt_type": "permission_ask",
            "context": {"patterns": ["rm"], "rules": [{"permission": "rm", "pattern": "*", "action": "ask"}], "always": ["rm"]},
            "tool_call_id": tool_call_id,
        })
    }

    /// A self-gated Gmail send card.
    pub fn gmail_send(tool_call_id: &str, to: &str, subject: &str) -> Value {
        json!({
            "action_requests": [{"name": "send_gmail_email", "args": {"to": to, "subject": subject,
                "body": "Draft attached.", "cc": null, "bcc": null, "connector_id": 12}}],
            "review_configs": [{"action_name": "send_gmail_email", "allowed_decisions": ["approve", "reject", "edit"]}],
            "interrupt_type": "gmail_email_send",
            "context": {"accounts": [{"email": "kim@example.net"}]},
            "tool_call_id": tool_call_id,
        })
    }

    /// An MCP tool ask from the `mcp_discovery` subagent; offers
    /// `approve_always`.
    pub fn mcp_ask(tool_call_id: &str, tool: &str) -> Value {
        json!({
            "action_requests": [{"name": tool, "args": {"query": "open invoices", "limit": 20}}],
            "review_configs": [{"action_name": tool, "allowed_decisions": ["approve", "reject", "edit", "approve_always"]}],
            "interrupt_type": "permission_ask",
            "context": {"patterns": [tool], "rules": [{"permission": tool, "pattern": "*", "action": "ask"}],
                "always": [tool], "mcp_connector_id": 31, "mcp_server": "linear",
                "tool_description": "Search Linear issues"},
            "tool_call_id": tool_call_id,
        })
    }

    /// The main agent's doom-loop guard: parent-side, `unknown_tool`.
    pub fn doom_loop() -> Value {
        json!({
            "action_requests": [{"name": "unknown_tool", "args": {"query": "weekly report status"}}],
            "review_configs": [{"action_name": "unknown_tool", "allowed_decisions": ["approve", "reject", "edit"]}],
            "interrupt_type": "permission_ask",
            "context": {"permission": "doom_loop", "recent_signatures": ["9f2c1a7be0d34c55", "9f2c1a7be0d34c55", "9f2c1a7be0d34c55"], "threshold": 3},
        })
    }

    /// `create_automation` from the main agent, self-stamped.
    pub fn automation(tool_call_id: &str) -> Value {
        json!({
            "action_requests": [{"name": "create_automation", "args": {"name": "Nightly digest", "schedule": "0 6 * * *"}}],
            "review_configs": [{"action_name": "create_automation", "allowed_decisions": ["approve", "reject", "edit"]}],
            "interrupt_type": "automation_create",
            "context": {"workspace_id": 8},
            "tool_call_id": tool_call_id,
        })
    }

    /// A legacy-shaped value; the server normalises it.
    pub fn legacy(tool_call_id: &str) -> Value {
        json!({
            "type": "mcp_tool_call",
            "message": "Allow the MCP tool `create_ticket`?",
            "action": {"tool": "create_ticket", "params": {"title": "Printer on fire"}},
            "context": {"mcp_server": "jira", "tool_description": "Create a Jira ticket", "mcp_transport": "http", "mcp_connector_id": 40},
            "tool_call_id": tool_call_id,
        })
    }
}

impl Shared {
    pub fn new(config: Config) -> (Self, Seed) {
        let user_id = Uuid::new_v4().to_string();
        let seed = Seed {
            email: "kim@example.net".into(),
            password: "correct horse".into(),
            user_id: user_id.clone(),
            research: 7,
            ops: 8,
            drafts_thread: 318,
            mcp_thread: 319,
            doom_thread: 412,
            automation_thread: 413,
            legacy_thread: 414,
            idle_thread: 415,
        };
        let mut data = Data {
            users: vec![(user_id.clone(), seed.email.clone(), seed.password.clone())],
            workspaces: vec![
                Workspace {
                    id: seed.research,
                    name: "Research".into(),
                    api_access_enabled: true,
                },
                Workspace {
                    id: seed.ops,
                    name: "Ops".into(),
                    api_access_enabled: true,
                },
            ],
            threads: Vec::new(),
            live_access: HashSet::new(),
            refresh: HashMap::new(),
            revoked_families: HashSet::new(),
            next_family: 1,
            pats: HashMap::new(),
            next_id: 1000,
            logins: 0,
            login_attempts: HashMap::new(),
            rate_limited_logins: 0,
            refreshes: Vec::new(),
            pending_calls: 0,
            thread_list_calls: 0,
            resumes: Vec::new(),
            applied: Vec::new(),
            trusted_tools: Vec::new(),
            fail_next_resume: None,
            busy_replies: HashMap::new(),
            stream_gap: Duration::ZERO,
            reinterrupt: HashMap::new(),
            doom_loop_reject_ignored: config.doom_loop_reject_ignored,
        };
        if config.seed {
            use fixtures::*;
            let threads: [(i64, i64, &str, Vec<Value>); 6] = [
                (
                    seed.drafts_thread,
                    seed.research,
                    "Clean up drafts",
                    vec![
                        kb_rm("call_Qm81xv", "/documents/archive/2025-notes.md"),
                        gmail_send("call_Hd20pe", "ops@example.net", "Q3 plan"),
                    ],
                ),
                (
                    seed.mcp_thread,
                    seed.research,
                    "Linear triage",
                    vec![mcp_ask("call_Lx02aa", "linear_search_issues")],
                ),
                (
                    seed.doom_thread,
                    seed.ops,
                    "Weekly report",
                    vec![doom_loop()],
                ),
                (
                    seed.automation_thread,
                    seed.ops,
                    "Morning digest",
                    vec![automation("call_Au77qz")],
                ),
                (
                    seed.legacy_thread,
                    seed.ops,
                    "Ticket bot",
                    vec![legacy("call_Lg19kk")],
                ),
                (seed.idle_thread, seed.ops, "Idle chat", Vec::new()),
            ];
            for (id, ws, title, pending) in threads {
                let at = Utc::now();
                data.threads.push(Thread {
                    id,
                    workspace_id: ws,
                    title: title.into(),
                    created_by: user_id.clone(),
                    created_at: at,
                    updated_at: at,
                    pending: Vec::new(),
                    busy: false,
                    assistant_message_id: None,
                });
                for v in pending {
                    data.push_interrupt(id, v);
                }
            }
        }
        let mut key = [0u8; 32];
        key[..16].copy_from_slice(Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(Uuid::new_v4().as_bytes());
        (
            Self {
                config,
                key,
                data: Mutex::new(data),
            },
            seed,
        )
    }

    pub fn data(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An HS256 JWT with `sub/aud/iat/exp`.
    pub fn issue_access(&self, user_id: &str) -> (String, i64) {
        let now = Utc::now().timestamp();
        let exp = now + self.config.access_lifetime.as_secs() as i64;
        let jti = hex_id();
        self.data().live_access.insert(jti.clone());
        let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = b64(
            json!({"sub": user_id, "aud": ["fastapi-users:auth"], "iat": now, "exp": exp,
            "jti": jti})
            .to_string()
            .as_bytes(),
        );
        let signing = format!("{header}.{claims}");
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("any key length");
        mac.update(signing.as_bytes());
        let sig = b64(&mac.finalize().into_bytes());
        (format!("{signing}.{sig}"), exp)
    }

    /// The user a credential belongs to: a PAT (`ss_pat_…`, `Bearer`
    /// optional) or a valid, unexpired, unrevoked JWT.
    pub fn user_for(&self, authorization: Option<&str>) -> Option<Caller> {
        let value = authorization?.trim();
        let bare = value.strip_prefix("Bearer ").unwrap_or(value).trim();
        if bare.starts_with("ss_pat_") {
            return self.data().pats.get(bare).map(|u| Caller {
                user_id: u.clone(),
                by_pat: true,
            });
        }
        let token = value.strip_prefix("Bearer ")?.trim();
        let mut parts = token.split('.');
        let (h, c, sig) = (parts.next()?, parts.next()?, parts.next()?);
        let mut mac = HmacSha256::new_from_slice(&self.key).ok()?;
        mac.update(format!("{h}.{c}").as_bytes());
        let expected = b64(&mac.finalize().into_bytes());
        if expected != sig {
            return None;
        }
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()?,
        )
        .ok()?;
        if claims.get("exp")?.as_i64()? <= Utc::now().timestamp() {
            return None;
        }
        let jti = claims.get("jti")?.as_str()?;
        if !self.data().live_access.contains(jti) {
            return None;
        }
        Some(Caller {
            user_id: claims.get("sub")?.as_str()?.to_owned(),
            by_pat: false,
        })
    }

    /// The login rate limit (slowapi's `5/minute` per IP, counted before
    /// the credentials are looked at): `Err(seconds to wait)` when this
    /// attempt is over the limit.
    pub fn login_allowed(&self, ip: std::net::IpAddr) -> Result<(), u64> {
        let limit = self.config.logins_per_minute as usize;
        let window = Duration::from_secs(60);
        let mut d = self.data();
        let attempts = d.login_attempts.entry(ip).or_default();
        attempts.retain(|at| at.elapsed() < window);
        if attempts.len() >= limit {
            let oldest = attempts.first().copied().unwrap_or_else(Instant::now);
            let wait = window.saturating_sub(oldest.elapsed()).as_secs().max(1);
            d.rate_limited_logins += 1;
            return Err(wait);
        }
        attempts.push(Instant::now());
        Ok(())
    }

    /// Adds a user; `None` when the e-mail is taken. (The real server also
    /// creates the user a "My Workspace"; this fake shares its workspaces
    /// among users, so it does not.)
    pub fn register(&self, email: &str, password: &str) -> Option<String> {
        let mut d = self.data();
        if d.users
            .iter()
            .any(|(_, e, _)| e.eq_ignore_ascii_case(email))
        {
            return None;
        }
        let id = Uuid::new_v4().to_string();
        d.users
            .push((id.clone(), email.to_owned(), password.to_owned()));
        Some(id)
    }

    /// Desktop login: the tokens, or `None` for bad credentials.
    pub fn login(&self, email: &str, password: &str) -> Option<Value> {
        let user = {
            let mut d = self.data();
            d.logins += 1;
            d.users
                .iter()
                .find(|(_, e, p)| e.eq_ignore_ascii_case(email) && p == password)
                .map(|(id, _, _)| id.clone())?
        };
        let family = {
            let mut d = self.data();
            d.next_family += 1;
            d.next_family
        };
        Some(self.token_answer(&user, family, true))
    }

    fn token_answer(&self, user_id: &str, family: u64, with_refresh: bool) -> Value {
        let (access, exp) = self.issue_access(user_id);
        let refresh = with_refresh.then(|| format!("rt_{}", hex_id()));
        if let Some(r) = &refresh {
            self.data().refresh.insert(
                r.clone(),
                RefreshToken {
                    user_id: user_id.to_owned(),
                    family,
                    rotated_at: None,
                },
            );
        }
        json!({"access_token": access, "refresh_token": refresh, "token_type": "bearer",
               "access_expires_at": exp})
    }

    /// `POST /auth/jwt/refresh`: rotation, the grace window, family revoke.
    pub fn refresh(&self, token: &str) -> Option<Value> {
        let grace = self.config.refresh_grace;
        let (user, family, outcome) = {
            let mut d = self.data();
            let known = d
                .refresh
                .get(token)
                .map(|t| (t.user_id.clone(), t.family, t.rotated_at));
            let (outcome, result) = match known {
                None => ("unknown", None),
                Some((_, family, _)) if d.revoked_families.contains(&family) => ("revoked", None),
                Some((user, family, None)) => {
                    if let Some(t) = d.refresh.get_mut(token) {
                        t.rotated_at = Some(Instant::now());
                    }
                    ("rotated", Some((user, family, true)))
                }
                Some((user, family, Some(at))) if at.elapsed() <= grace => {
                    ("grace", Some((user, family, false)))
                }
                Some((_, family, Some(_))) => {
                    d.revoked_families.insert(family);
                    ("revoked", None)
                }
            };
            d.refreshes.push(RefreshCall {
                token: token.to_owned(),
                outcome: outcome.into(),
            });
            result?
        };
        Some(self.token_answer(&user, family, outcome))
    }

    /// Every issued access token stops working (as after its `exp`).
    pub fn expire_access_tokens(&self) {
        self.data().live_access.clear();
    }
}

/// Who called, and how.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
    pub by_pat: bool,
}

impl Data {
    pub fn new_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn thread(&mut self, id: i64) -> Option<&mut Thread> {
        self.threads.iter_mut().find(|t| t.id == id)
    }

    /// Adds a pending interrupt (normalised, with a fresh `interrupt_id`)
    /// and bumps the thread's `updated_at`, as the paused turn's assistant
    /// message does. Returns its card key.
    pub fn push_interrupt(&mut self, thread_id: i64, raw: Value) -> Option<String> {
        let message_id = self.new_id();
        let t = self.thread(thread_id)?;
        let mut v = normalise(raw);
        if v.get("interrupt_id").is_none() {
            v["interrupt_id"] = Value::String(hex_id());
        }
        let key = card_key(&v);
        t.pending.push(v);
        t.updated_at = bump(t.updated_at);
        t.assistant_message_id = Some(message_id);
        Some(key)
    }

    /// A subagent asks a second time in one task, as the real server does:
    /// its pending ask under `tool_call_id` is answered (by another client,
    /// with `decision`), and a new ask comes with the **same**
    /// `tool_call_id`, a new `interrupt_id` and `value`'s action. Returns
    /// the new `interrupt_id`.
    pub fn ask_again(
        &mut self,
        thread_id: i64,
        tool_call_id: &str,
        decision: &str,
        mut value: Value,
    ) -> Option<String> {
        let t = self.thread(thread_id)?;
        let at = t
            .pending
            .iter()
            .position(|v| stamped(v) == Some(tool_call_id))?;
        let others = t.pending.len();
        // Answer every ask of the thread (the server takes them together),
        // this one with `decision`, the rest approved.
        let routed: Vec<Value> = (0..others)
            .map(|i| json!({"type": if i == at { decision } else { "approve" }}))
            .collect();
        self.apply(thread_id, &routed);
        value["tool_call_id"] = json!(tool_call_id);
        value["interrupt_id"] = json!(hex_id());
        let interrupt = value["interrupt_id"].as_str().map(str::to_owned);
        self.push_interrupt(thread_id, value);
        interrupt
    }

    /// The exact routing rules of `resume_routing.py`: the decision for
    /// each pending value, in pending order, or the error text.
    pub fn route(&self, thread: &Thread, decisions: &[Value]) -> Result<Vec<Value>, String> {
        let pending = &thread.pending;
        let total = pending.len();
        let all_ids = decisions
            .iter()
            .all(|d| d.get("tool_call_id").and_then(Value::as_str).is_some());
        if pending.is_empty() {
            return Err(if all_ids && !decisions.is_empty() {
                "Decision routing mismatch: nothing is pending".into()
            } else {
                format!(
                    "Decision count mismatch: expected 0 decisions, got {}",
                    decisions.len()
                )
            });
        }
        let parent = pending.iter().filter(|v| stamped(v).is_none()).count();
        if parent > 0 && parent < total {
            return Err("mixed HITL routing is unsupported".into());
        }
        let by_position = || {
            if decisions.len() == total {
                Ok(decisions.to_vec())
            } else {
                Err(format!(
                    "Decision count mismatch: expected {total} decisions, got {}",
                    decisions.len()
                ))
            }
        };
        if parent > 0 || !all_ids {
            return by_position();
        }
        let mut out = Vec::with_capacity(total);
        let wanted: HashSet<&str> = pending.iter().filter_map(|v| stamped(v)).collect();
        let given: HashSet<&str> = decisions
            .iter()
            .filter_map(|d| d.get("tool_call_id").and_then(Value::as_str))
            .collect();
        if wanted != given {
            return Err(format!(
                "Decision routing mismatch: pending tool_call_ids {:?}, got {:?}",
                sorted(&wanted),
                sorted(&given)
            ));
        }
        for v in pending {
            let id = stamped(v).unwrap_or("");
            let group: Vec<&Value> = decisions
                .iter()
                .filter(|d| d.get("tool_call_id").and_then(Value::as_str) == Some(id))
                .collect();
            if group.len() != 1 {
                return Err(format!(
                    "Decision routing mismatch: {} decisions for tool_call_id {id}, expected 1",
                    group.len()
                ));
            }
            out.push(group[0].clone());
        }
        Ok(out)
    }

    /// Applies routed decisions with the per-kind semantics.
    pub fn apply(&mut self, thread_id: i64, routed: &[Value]) {
        let Some(t) = self.thread(thread_id) else {
            return;
        };
        let pending = std::mem::take(&mut t.pending);
        t.updated_at = bump(t.updated_at);
        let mut applied = Vec::new();
        let mut trusted = Vec::new();
        for (v, d) in pending.iter().zip(routed) {
            let kind = v
                .get("interrupt_type")
                .and_then(Value::as_str)
                .unwrap_or("");
            let action = &v["action_requests"][0];
            let name = action
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let args = action.get("args").cloned().unwrap_or_else(|| json!({}));
            let decision = d
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let doom = v["context"].get("permission").and_then(Value::as_str) == Some("doom_loop");
            let self_gated = kind != "permission_ask" && kind != "mcp_tool_call";
            let merged = || {
                let mut merged = args.clone();
                if let (Some(m), Some(edit)) = (
                    merged.as_object_mut(),
                    d["edited_action"].get("args").and_then(Value::as_object),
                ) {
                    for (k, val) in edit {
                        if !(self_gated && val.is_null()) {
                            m.insert(k.clone(), val.clone());
                        }
                    }
                }
                merged
            };
            let reject_ignored = self.doom_loop_reject_ignored;
            let (effect, ran_with) = match (decision.as_str(), doom, self_gated) {
                (_, true, _)
                    if (decision.contains("reject") || decision.contains("cancel"))
                        && !reject_ignored =>
                {
                    ("turn_ended", args.clone())
                }
                (_, true, _) => ("continued", args.clone()),
                ("approve", _, _) => ("ran", args.clone()),
                ("edit", _, _) => ("ran", merged()),
                ("approve_always", _, true) => ("rejected", args.clone()),
                ("approve_always", _, false) => {
                    if v["context"].get("mcp_connector_id").is_some() {
                        trusted.push(name.clone());
                    }
                    ("ran", args.clone())
                }
                _ => ("rejected", args.clone()),
            };
            applied.push(Applied {
                thread_id,
                interrupt_id: v
                    .get("interrupt_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                tool_call_id: stamped(v).map(str::to_owned),
                action: name,
                decision,
                effect: effect.into(),
                args: ran_with,
            });
        }
        self.applied.extend(applied);
        self.trusted_tools.extend(trusted);
    }
}

fn sorted<'a>(set: &HashSet<&'a str>) -> Vec<&'a str> {
    let mut v: Vec<&str> = set.iter().copied().collect();
    v.sort_unstable();
    v
}

/// A strictly later `updated_at`, so every bump is visible to a poller.
fn bump(before: DateTime<Utc>) -> DateTime<Utc> {
    let now = Utc::now();
    if now > before {
        now
    } else {
        before + chrono::Duration::microseconds(1)
    }
}
