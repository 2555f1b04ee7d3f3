//! The fake Clawith's data: users, agents, approvals, notifications and
//! audit rows, issued tokens, and the switches tests flip.

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use uuid::Uuid;

/// Server settings, named after the protocol doc's fake-server contract.
#[derive(Debug, Clone)]
pub struct Config {
    /// JWT lifetime (`JWT_ACCESS_TOKEN_EXPIRE_MINUTES`).
    pub token_lifetime: Duration,
    /// How long approving a legacy approval with a `tool` takes (the tool
    /// runs inside the request).
    pub resolve_delay: Duration,
    /// The tool result reported in the `approval_resolved` notification.
    pub result_text: String,
    /// dana also belongs to a second company: login asks for a tenant.
    pub multi_tenant: bool,
    /// Older FastAPI: a missing `Authorization` header gets 403, not 401.
    pub legacy_403: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            token_lifetime: Duration::from_secs(24 * 3600),
            resolve_delay: Duration::ZERO,
            result_text: "Result: ✅ File deleted: workspace/drafts/q3.md".into(),
            multi_tenant: false,
            legacy_403: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    pub email: String,
    pub password: String,
    pub role: String,
    /// Empty for a user who has not created or joined a company yet.
    pub tenant_id: String,
    pub is_active: bool,
    pub display_name: String,
}

#[derive(Debug, Clone)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub creator_id: String,
    pub tenant_id: String,
    pub deleted: bool,
    /// `action_type → "L1"|"L2"|"L3"`; a missing key means L2.
    pub autonomy_policy: Value,
}

/// v1.11.3's default autonomy policy (`backend/app/models/agent.py`).
pub fn default_policy() -> Value {
    json!({"read_files": "L1", "write_workspace_files": "L2", "send_feishu_message": "L2",
           "send_external_message": "L3", "modify_soul": "L3", "access_business_system_read": "L2",
           "access_business_system_write": "L3", "delete_files": "L3", "create_calendar_event": "L2",
           "financial_operations": "L3"})
}

/// An invitation code made by a company admin.
#[derive(Debug, Clone)]
pub struct InvitationCode {
    pub code: String,
    pub tenant_id: String,
    pub max_uses: u32,
    pub used: u32,
}

/// Whether `email-validator` (which Clawith's registration uses) takes
/// the address: one `@`, a dotted domain, and none of the special-use
/// names it refuses (`.test`, `.localhost`, `.invalid`, …).
pub fn deliverable_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    let domain = domain.to_ascii_lowercase();
    let tld = domain.rsplit('.').next().unwrap_or("");
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !["arpa", "invalid", "local", "localhost", "onion", "test"].contains(&tld)
}

/// One `approval_requests` row.
#[derive(Debug, Clone)]
pub struct Approval {
    pub id: String,
    pub agent_id: String,
    pub action_type: String,
    pub details: Value,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Notification {
    pub id: String,
    pub user_id: String,
    pub kind: String,
    pub title: String,
    pub body: String,
    pub link: Option<String>,
    pub ref_id: Option<String>,
    pub is_read: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct AuditLog {
    pub id: String,
    pub user_id: Option<String>,
    pub agent_id: Option<String>,
    pub action: String,
    pub details: Value,
    pub created_at: DateTime<Utc>,
}

/// A resolve call as received, including refused ones.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedResolve {
    pub approval_id: String,
    pub body: Value,
    /// The answer's status; 0 while (or if never) answered.
    pub status: u16,
}

pub(crate) struct Token {
    pub user_id: String,
    pub exp: DateTime<Utc>,
}

#[derive(Default)]
pub(crate) struct Data {
    pub tenants: Vec<(String, String, String)>, // id, name, slug
    pub users: Vec<User>,
    pub agents: Vec<Agent>,
    pub approvals: Vec<Approval>,
    pub notifications: Vec<Notification>,
    pub audit: Vec<AuditLog>,
    pub tokens: HashMap<String, Token>,
    pub received: Vec<ReceivedResolve>,
    pub logins: u32,
    pub invitation_codes: Vec<InvitationCode>,
    /// How many `GET /api/org/users` calls arrived.
    pub org_user_lists: u32,
    pub main_head: bool,
    pub resolve_delay: Duration,
}

pub(crate) struct Shared {
    pub config: Config,
    data: Mutex<Data>,
}

/// Pydantic style: `…Z`, microseconds only when non-zero.
pub(crate) fn z_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Hand-built dicts: `…+00:00`.
pub(crate) fn offset_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// A runtime approval's identity: its Run and tool call, as v1.11.3's
/// `_runtime_approval_identity` reads them (a UUID `run_id` and a
/// non-empty `tool_call_id`); `None` for legacy details.
fn runtime_identity(details: &Value) -> Option<(Uuid, String)> {
    let scope = details.get("runtime_scope")?;
    let run = Uuid::parse_str(scope.get("run_id")?.as_str()?).ok()?;
    let call = scope
        .get("tool_call_id")?
        .as_str()
        .filter(|c| !c.is_empty())?;
    Some((run, call.to_owned()))
}

/// Names the ids the seed created, for tests.
#[derive(Debug, Clone)]
pub struct Seed {
    pub tenant_id: String,
    pub dana_id: String,
    pub eli_id: String,
    pub archivist_id: String,
    /// The two seeded pending approvals: legacy, then runtime details.
    pub approvals: [String; 2],
}

impl Shared {
    pub fn new(config: Config) -> (Self, Seed) {
        let mut d = Data {
            resolve_delay: config.resolve_delay,
            ..Data::default()
        };
        let tenant = Uuid::new_v4().to_string();
        d.tenants
            .push((tenant.clone(), "Default".into(), "default".into()));
        let dana = Uuid::new_v4().to_string();
        let eli = Uuid::new_v4().to_string();
        d.users.push(User {
            id: dana.clone(),
            username: "dana".into(),
            email: "dana@example.org".into(),
            password: "hunter22".into(),
            role: "platform_admin".into(),
            tenant_id: tenant.clone(),
            is_active: true,
            display_name: "Dana".into(),
        });
        d.users.push(User {
            id: eli.clone(),
            username: "eli".into(),
            email: "eli@example.org".into(),
            password: "elipass1".into(),
            role: "member".into(),
            tenant_id: tenant.clone(),
            is_active: true,
            display_name: "Eli Navarro".into(),
        });
        if config.multi_tenant {
            let acme = Uuid::new_v4().to_string();
            d.tenants
                .push((acme.clone(), "Acme Corp".into(), "acme".into()));
            d.users.push(User {
                id: Uuid::new_v4().to_string(),
                username: "dana".into(),
                email: "dana@example.org".into(),
                password: "hunter22".into(),
                role: "member".into(),
                tenant_id: acme,
                is_active: true,
                display_name: "Dana".into(),
            });
        }
        let archivist = Uuid::new_v4().to_string();
        d.agents.push(Agent {
            id: archivist.clone(),
            name: "Archivist".into(),
            creator_id: dana.clone(),
            tenant_id: tenant.clone(),
            deleted: false,
            autonomy_policy: default_policy(),
        });
        let shared = Self {
            config,
            data: Mutex::new(d),
        };
        let legacy = shared
            .autonomy(
                &archivist,
                "delete_files",
                "L3",
                json!({"tool": "delete_file", "args": "{'path': 'workspace/drafts/q3.md'}", "requested_by": dana}),
            )
            .expect("seed approval");
        let runtime = shared
            .autonomy(
                &archivist,
                "delete_files",
                "L3",
                json!({"tool": "delete_file", "args": {"path": "workspace/old/notes.md"}, "requested_by": dana,
                       "runtime_scope": {"tenant_id": tenant, "run_id": Uuid::new_v4().to_string(),
                       "session_id": Uuid::new_v4().to_string(), "workspace_scope": "agent",
                       "tool_call_id": "call_x1", "approval_correlation_id": "approval:…"}}),
            )
            .expect("seed approval");
        shared.autonomy(
            &archivist,
            "write_workspace_files",
            "L2",
            json!({"tool": "write_file", "args": "{'path': 'workspace/notes/todo.md', 'content': 'ship it'}", "requested_by": dana}),
        );
        let seed = Seed {
            tenant_id: tenant,
            dana_id: dana,
            eli_id: eli,
            archivist_id: archivist,
            approvals: [legacy, runtime],
        };
        (shared, seed)
    }

    pub fn data(&self) -> MutexGuard<'_, Data> {
        self.data.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Issues a JWT-shaped token: a real header and payload (`sub`, `role`,
    /// `exp`), and a random signature the fake remembers.
    pub fn issue_token(&self, user: &User) -> String {
        let exp =
            Utc::now() + chrono::Duration::from_std(self.config.token_lifetime).unwrap_or_default();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = b64
            .encode(json!({"sub": user.id, "role": user.role, "exp": exp.timestamp()}).to_string());
        let signature = b64.encode(Uuid::new_v4().as_bytes());
        let token = format!("{header}.{payload}.{signature}");
        self.data().tokens.insert(
            token.clone(),
            Token {
                user_id: user.id.clone(),
                exp,
            },
        );
        token
    }

    /// A company made with `POST /api/tenants/self-create`: the slug is
    /// the name's with a random suffix (`Globex` → `globex-37e9ed`).
    pub fn create_company(&self, name: &str) -> (String, String) {
        let id = Uuid::new_v4().to_string();
        let mut base: String = name
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        base = base
            .split('-')
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        if base.is_empty() {
            base = "company".into();
        }
        let suffix = &Uuid::new_v4().simple().to_string()[..6];
        let slug = format!("{base}-{suffix}");
        self.data()
            .tenants
            .push((id.clone(), name.to_owned(), slug.clone()));
        (id, slug)
    }

    /// Puts `user` (a user record) into `tenant_id` with `role`: a user
    /// without a company gets it; one with a company gets a second user
    /// record for the same identity, as v1.11.3 does. `is_active` is
    /// carried over unchanged. Returns the user record now in the company.
    pub fn add_to_company(&self, user: &User, tenant_id: &str, role: &str) -> User {
        let mut d = self.data();
        if user.tenant_id.is_empty() {
            let u = d
                .users
                .iter_mut()
                .find(|u| u.id == user.id)
                .expect("the user exists");
            u.tenant_id = tenant_id.to_owned();
            if u.role == "member" {
                u.role = role.to_owned();
            }
            return u.clone();
        }
        let record = User {
            id: Uuid::new_v4().to_string(),
            tenant_id: tenant_id.to_owned(),
            role: role.to_owned(),
            ..user.clone()
        };
        d.users.push(record.clone());
        record
    }

    /// Deletes a company with everything in it: its user records, agents
    /// and their approvals, notifications and audit rows.
    pub fn delete_company(&self, tenant_id: &str) {
        let mut d = self.data();
        d.tenants.retain(|t| t.0 != tenant_id);
        let users: Vec<String> = d
            .users
            .iter()
            .filter(|u| u.tenant_id == tenant_id)
            .map(|u| u.id.clone())
            .collect();
        let agents: Vec<String> = d
            .agents
            .iter()
            .filter(|a| a.tenant_id == tenant_id)
            .map(|a| a.id.clone())
            .collect();
        d.users.retain(|u| u.tenant_id != tenant_id);
        d.agents.retain(|a| a.tenant_id != tenant_id);
        d.approvals.retain(|a| !agents.contains(&a.agent_id));
        d.notifications.retain(|n| !users.contains(&n.user_id));
        d.audit
            .retain(|a| !a.agent_id.as_ref().is_some_and(|id| agents.contains(id)));
        d.tokens.retain(|_, t| !users.contains(&t.user_id));
        d.invitation_codes.retain(|c| c.tenant_id != tenant_id);
    }

    /// The rows one autonomy check writes, all with one `created_at`.
    /// Returns the approval id for L3.
    pub fn autonomy(
        &self,
        agent_id: &str,
        action_type: &str,
        level: &str,
        details: Value,
    ) -> Option<String> {
        self.autonomy_at(agent_id, action_type, level, details, Utc::now())
    }

    /// [`Self::autonomy`] at a given time. A runtime check (details with a
    /// `runtime_scope` naming a Run and a tool call) whose approval exists
    /// already writes nothing and returns that approval, whatever the level
    /// and the details now: v1.11.3 looks the row up before the policy.
    /// (The real id is a UUIDv5 of the Run and
    /// `runtime-approval:<action_type>:<tool_call_id>`; the fake finds the
    /// row by those instead, which clients cannot tell apart.)
    pub fn autonomy_at(
        &self,
        agent_id: &str,
        action_type: &str,
        level: &str,
        details: Value,
        now: DateTime<Utc>,
    ) -> Option<String> {
        let mut d = self.data();
        let agent = d.agents.iter().find(|a| a.id == agent_id)?.clone();
        let identity = runtime_identity(&details);
        if let Some(key) = &identity {
            if let Some(existing) = d.approvals.iter().find(|a| {
                a.action_type == action_type && runtime_identity(&a.details).as_ref() == Some(key)
            }) {
                // Another agent under the same identity: v1.11.3 raises
                // ValueError and the check fails without writing.
                return (existing.agent_id == agent.id).then(|| existing.id.clone());
            }
        }
        // No level given: the agent's policy decides, a missing key is L2.
        let from_policy = agent
            .autonomy_policy
            .get(action_type)
            .and_then(Value::as_str)
            .unwrap_or("L2")
            .to_owned();
        let level = if level.is_empty() {
            from_policy.as_str()
        } else {
            level
        };
        let mut audit_details = details.clone();
        if let Some(obj) = audit_details.as_object_mut() {
            obj.insert("level".into(), json!(level));
        }
        d.audit.push(AuditLog {
            id: Uuid::new_v4().to_string(),
            user_id: None,
            agent_id: Some(agent.id.clone()),
            action: format!("autonomy_check:{action_type}"),
            details: audit_details,
            created_at: now,
        });
        let body: String = details.to_string().chars().take(200).collect();
        match level {
            "L2" => {
                d.notifications.push(Notification {
                    id: Uuid::new_v4().to_string(),
                    user_id: agent.creator_id.clone(),
                    kind: "autonomy_l2".into(),
                    title: format!("[{}] executed: {action_type}", agent.name),
                    body,
                    link: Some(format!("/agents/{}#activityLog", agent.id)),
                    ref_id: None,
                    is_read: false,
                    created_at: now,
                });
                None
            }
            "L3" => {
                let id = Uuid::new_v4().to_string();
                let mut details = details;
                if identity.is_some() {
                    details["runtime_scope"]["approval_correlation_id"] =
                        json!(format!("approval:{id}"));
                }
                d.approvals.push(Approval {
                    id: id.clone(),
                    agent_id: agent.id.clone(),
                    action_type: action_type.into(),
                    details,
                    status: "pending".into(),
                    created_at: now,
                    resolved_at: None,
                    resolved_by: None,
                });
                d.notifications.push(Notification {
                    id: Uuid::new_v4().to_string(),
                    user_id: agent.creator_id.clone(),
                    kind: "approval_pending".into(),
                    title: format!("[{}] requests approval: {action_type}", agent.name),
                    body,
                    link: Some(format!("/agents/{}#approvals", agent.id)),
                    ref_id: Some(id.clone()),
                    is_read: false,
                    created_at: now,
                });
                Some(id)
            }
            _ => None,
        }
    }

    /// Applies a resolution and its side effects (audit row, notifications,
    /// all with one `created_at`).
    pub fn apply_resolve(
        &self,
        approval_id: &str,
        user_id: &str,
        approve: bool,
        result: Option<String>,
    ) {
        let now = Utc::now();
        let mut d = self.data();
        let Some(a) = d.approvals.iter_mut().find(|a| a.id == approval_id) else {
            return;
        };
        a.status = if approve { "approved" } else { "rejected" }.into();
        a.resolved_at = Some(now);
        a.resolved_by = Some(user_id.to_owned());
        let a = a.clone();
        let agent = d.agents.iter().find(|x| x.id == a.agent_id).cloned();
        d.audit.push(AuditLog {
            id: Uuid::new_v4().to_string(),
            user_id: Some(user_id.to_owned()),
            agent_id: Some(a.agent_id.clone()),
            action: if approve {
                "approval_approved"
            } else {
                "approval_rejected"
            }
            .into(),
            details: json!({"approval_id": a.id, "action_type": a.action_type}),
            created_at: now,
        });
        if let Some(agent) = agent {
            let verdict = if approve { "approved" } else { "rejected" };
            let body = result.unwrap_or_else(|| a.details.to_string().chars().take(200).collect());
            let mut recipients = vec![(agent.creator_id.clone(), "#approvals")];
            if let Some(r) = a.details.get("requested_by").and_then(Value::as_str) {
                if Uuid::parse_str(r).is_ok() && r != agent.creator_id {
                    recipients.push((r.to_owned(), "#activityLog"));
                }
            }
            for (user, anchor) in recipients {
                d.notifications.push(Notification {
                    id: Uuid::new_v4().to_string(),
                    user_id: user,
                    kind: "approval_resolved".into(),
                    title: format!("[{}] {} — {verdict}", agent.name, a.action_type),
                    body: body.clone(),
                    link: Some(format!("/agents/{}{anchor}", agent.id)),
                    ref_id: Some(a.id.clone()),
                    is_read: false,
                    created_at: now,
                });
            }
        }
    }

    pub fn approval_json_z(&self, a: &Approval, agent_name: Option<String>) -> Value {
        json!({
            "id": a.id, "agent_id": a.agent_id, "agent_name": agent_name, "action_type": a.action_type,
            "details": a.details, "status": a.status, "created_at": z_time(a.created_at),
            "resolved_at": a.resolved_at.map(z_time), "resolved_by": a.resolved_by,
        })
    }
}
