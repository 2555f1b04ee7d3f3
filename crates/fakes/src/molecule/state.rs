//! The fake's data: workspaces, approval rows, recorded events, the
//! broadcast hub, and the failure switches tests flip.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::broadcast;
use uuid::Uuid;

/// Server settings, named as in the protocol doc's fake-server contract.
#[derive(Debug, Clone)]
pub struct Config {
    /// `ADMIN_TOKEN`; `None` is the legacy / fail-open setup.
    pub admin_token: Option<String>,
    pub org_tokens: Vec<String>,
    /// Workspace id → that workspace's token.
    pub workspace_tokens: HashMap<String, String>,
    /// `MOLECULE_ENV=development` with no admin token: everything open.
    pub dev_mode: bool,
    /// `CORS_ORIGINS`; empty means unset.
    pub cors_origins: Vec<String>,
    /// Pending rows older than this are denied by the next pending list.
    pub expiry: Duration,
    /// `MOLECULE_ORG_ID`: requests without `X-Molecule-Org-Id` get a bare 404.
    pub saas_org_id: Option<String>,
}

impl Config {
    /// A server protected by an admin token, otherwise defaults.
    pub fn with_admin_token(token: &str) -> Self {
        Self {
            admin_token: Some(token.to_owned()),
            ..Self::default()
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            admin_token: None,
            org_tokens: Vec::new(),
            workspace_tokens: HashMap::new(),
            dev_mode: false,
            cors_origins: Vec::new(),
            expiry: Duration::from_secs(600),
            saas_org_id: None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub parent_id: Option<String>,
    pub status: String,
}

/// One `approval_requests` row.
#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    pub id: String,
    pub workspace_id: String,
    pub task_id: String,
    pub action: String,
    pub reason: Option<String>,
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A decide call as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedDecision {
    pub workspace_id: String,
    pub approval_id: String,
    /// The body as sent (JSON), or `Value::String` of the raw text.
    pub body: Value,
    pub response_status: u16,
}

#[derive(Debug, Default)]
pub(crate) struct Faults {
    pub drop_ws: bool,
    /// Drop every Nth broadcast message (0: none).
    pub drop_every: u32,
    pub sent: u32,
    pub fail_next: u32,
    pub fail_status: u16,
    pub rate_limit_next: u32,
    pub retry_after_secs: u64,
    pub stall: Option<Duration>,
    pub second_instance: bool,
}

/// A minted org API token (`org_api_tokens`).
#[derive(Debug, Clone, Serialize)]
pub struct OrgToken {
    pub id: String,
    pub prefix: String,
    pub name: String,
    #[serde(skip)]
    pub token: String,
    pub created_at: String,
}

#[derive(Default)]
struct Data {
    org_tokens: Vec<OrgToken>,
    workspaces: Vec<Workspace>,
    approvals: Vec<Approval>,
    /// `structure_events`, newest last.
    events: Vec<Value>,
    received: Vec<ReceivedDecision>,
}

#[derive(Debug, Clone)]
pub(crate) enum Frame {
    Text(String),
}

pub(crate) struct Shared {
    pub config: Config,
    data: Mutex<Data>,
    faults: Mutex<Faults>,
    /// 256 like the real per-client buffer: a lagging client loses messages.
    pub hub: broadcast::Sender<Frame>,
    pub kick: broadcast::Sender<()>,
    sockets: AtomicUsize,
    /// Every socket ever opened, so a test can tell a reconnect happened.
    sockets_opened: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Ids are UUID columns: Postgres matches them whatever the case the path
/// spelled them in, while responses and events echo the path string as
/// sent (the doc's "Checked against the real source").
fn same_id(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// RFC 3339 as Molecule's REST layer writes it: up to microseconds, `Z`.
pub(crate) fn rest_time(t: DateTime<Utc>) -> String {
    let s = t.to_rfc3339_opts(SecondsFormat::Micros, true);
    // Go trims trailing zeros of the fraction.
    let (head, frac) = s.trim_end_matches('Z').split_once('.').unwrap_or((&s, ""));
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        format!("{}Z", head.trim_end_matches('Z'))
    } else {
        format!("{head}.{frac}Z")
    }
}

impl Shared {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            data: Mutex::new(Data::default()),
            faults: Mutex::new(Faults::default()),
            hub: broadcast::channel(256).0,
            kick: broadcast::channel(4).0,
            sockets: AtomicUsize::new(0),
            sockets_opened: AtomicUsize::new(0),
        }
    }

    pub fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    pub fn add_workspace(&self, name: &str, parent: Option<&str>) -> String {
        let id = Uuid::new_v4().to_string();
        lock(&self.data).workspaces.push(Workspace {
            id: id.clone(),
            name: name.to_owned(),
            parent_id: parent.map(str::to_owned),
            status: "online".into(),
        });
        id
    }

    pub fn workspaces(&self) -> Vec<Workspace> {
        lock(&self.data).workspaces.clone()
    }

    pub fn workspace(&self, id: &str) -> Option<Workspace> {
        lock(&self.data)
            .workspaces
            .iter()
            .find(|w| same_id(&w.id, id))
            .cloned()
    }

    /// Inserts the row and emits its events before returning, as the real
    /// handler does. `None` for an unknown workspace (the real 500). The
    /// row keeps the database's spelling of the workspace id; the events
    /// carry `workspace_id` as the path spelled it.
    pub fn create_approval(
        &self,
        workspace_id: &str,
        action: &str,
        reason: &str,
        task_id: &str,
    ) -> Option<String> {
        let ws = self.workspace(workspace_id)?;
        let id = Uuid::new_v4().to_string();
        lock(&self.data).approvals.push(Approval {
            id: id.clone(),
            workspace_id: ws.id.clone(),
            task_id: task_id.to_owned(),
            action: action.to_owned(),
            reason: Some(reason.to_owned()),
            status: "pending".into(),
            decided_by: None,
            decided_at: None,
            created_at: Utc::now(),
        });
        self.record(
            "APPROVAL_REQUESTED",
            workspace_id,
            json!({"approval_id": id, "action": action, "reason": reason, "task_id": task_id}),
        );
        if let Some(parent) = ws.parent_id {
            self.record(
                "APPROVAL_ESCALATED",
                &parent,
                json!({"approval_id": id, "from_workspace_id": workspace_id, "action": action, "reason": reason}),
            );
        }
        Some(id)
    }

    /// The atomic conditional update: first writer wins. With `workspace`,
    /// the approval must belong to it (the REST path), and the event echoes
    /// both ids as the path spelled them.
    pub fn decide(
        &self,
        approval_id: &str,
        workspace: Option<&str>,
        decision: &str,
        decided_by: &str,
    ) -> bool {
        let ws = {
            let mut data = lock(&self.data);
            let Some(row) = data.approvals.iter_mut().find(|a| {
                same_id(&a.id, approval_id)
                    && a.status == "pending"
                    && workspace.is_none_or(|w| same_id(w, &a.workspace_id))
            }) else {
                return false;
            };
            row.status = decision.to_owned();
            row.decided_by = Some(decided_by.to_owned());
            row.decided_at = Some(Utc::now());
            workspace.map_or_else(|| row.workspace_id.clone(), str::to_owned)
        };
        let event = if decision == "approved" {
            "APPROVAL_APPROVED"
        } else {
            "APPROVAL_DENIED"
        };
        let payload =
            json!({"approval_id": approval_id, "decision": decision, "decided_by": decided_by});
        if workspace.is_some() && self.faults().second_instance {
            // Another instance handled the REST call: recorded, not broadcast here.
            self.store_event(event, &ws, payload);
        } else {
            self.record(event, &ws, payload);
        }
        true
    }

    pub fn backdate(&self, approval_id: &str, age: Duration) {
        if let Some(a) = lock(&self.data)
            .approvals
            .iter_mut()
            .find(|a| same_id(&a.id, approval_id))
        {
            a.created_at = Utc::now() - chrono::Duration::from_std(age).unwrap_or_default();
        }
    }

    /// The side effect of `GET /approvals/pending`: expire old rows, silently.
    pub fn expire(&self) {
        let cutoff =
            Utc::now() - chrono::Duration::from_std(self.config.expiry).unwrap_or_default();
        for a in lock(&self.data).approvals.iter_mut() {
            if a.status == "pending" && a.created_at < cutoff {
                a.status = "denied".into();
                a.decided_by = Some("auto-expired".into());
                a.decided_at = Some(Utc::now());
            }
        }
    }

    /// Pending rows, newest first, at most 50, with workspace names.
    pub fn pending(&self) -> Vec<Value> {
        let data = lock(&self.data);
        let mut rows: Vec<&Approval> = data
            .approvals
            .iter()
            .filter(|a| a.status == "pending")
            .collect();
        rows.sort_by_key(|a| std::cmp::Reverse(a.created_at));
        rows.into_iter()
            .take(50)
            .map(|a| {
                let name = data
                    .workspaces
                    .iter()
                    .find(|w| w.id == a.workspace_id)
                    .map(|w| w.name.clone());
                json!({
                    "id": a.id, "workspace_id": a.workspace_id, "workspace_name": name,
                    "action": a.action, "reason": a.reason, "status": a.status,
                    "created_at": rest_time(a.created_at),
                })
            })
            .collect()
    }

    /// One workspace's approvals in all statuses, newest first, at most 50.
    pub fn workspace_history(&self, workspace_id: &str) -> Vec<Value> {
        let data = lock(&self.data);
        let mut rows: Vec<&Approval> = data
            .approvals
            .iter()
            .filter(|a| same_id(&a.workspace_id, workspace_id))
            .collect();
        rows.sort_by_key(|a| std::cmp::Reverse(a.created_at));
        rows.into_iter()
            .take(50)
            .map(|a| {
                json!({
                    "id": a.id, "task_id": a.task_id, "action": a.action, "reason": a.reason,
                    "status": a.status, "decided_by": a.decided_by,
                    "decided_at": a.decided_at.map(rest_time),
                    "created_at": rest_time(a.created_at),
                })
            })
            .collect()
    }

    pub fn approval(&self, id: &str) -> Option<Approval> {
        lock(&self.data)
            .approvals
            .iter()
            .find(|a| same_id(&a.id, id))
            .cloned()
    }

    /// `DELETE /workspaces/:id?purge=true`: hard-deletes the workspace, its
    /// descendants and all their approval rows, pending ones included,
    /// with no approval event. False for an unknown workspace.
    pub fn purge_workspace(&self, id: &str) -> bool {
        let mut data = lock(&self.data);
        let Some(root) = data.workspaces.iter().find(|w| same_id(&w.id, id)) else {
            return false;
        };
        let mut doomed = vec![root.id.clone()];
        let mut i = 0;
        while i < doomed.len() {
            let parent = doomed[i].clone();
            doomed.extend(
                data.workspaces
                    .iter()
                    .filter(|w| w.parent_id.as_deref().is_some_and(|p| same_id(p, &parent)))
                    .map(|w| w.id.clone()),
            );
            i += 1;
        }
        let gone = |ws: &str| doomed.iter().any(|d| same_id(d, ws));
        data.approvals.retain(|a| !gone(&a.workspace_id));
        data.workspaces.retain(|w| !gone(&w.id));
        true
    }

    pub fn log_decision(&self, received: ReceivedDecision) {
        lock(&self.data).received.push(received);
    }

    pub fn received_decisions(&self) -> Vec<ReceivedDecision> {
        lock(&self.data).received.clone()
    }

    pub fn recent_events(&self) -> Vec<Value> {
        lock(&self.data)
            .events
            .iter()
            .rev()
            .take(100)
            .cloned()
            .collect()
    }

    /// A recorded (R) event: stored, then broadcast.
    fn record(&self, event: &str, workspace_id: &str, payload: Value) {
        self.store_event(event, workspace_id, payload.clone());
        self.emit(event, workspace_id, payload);
    }

    fn store_event(&self, event: &str, workspace_id: &str, payload: Value) {
        let mut data = lock(&self.data);
        let id = data.events.len() + 1;
        data.events.push(json!({
            "id": id.to_string(), "event_type": event, "workspace_id": workspace_id,
            "payload": payload, "created_at": rest_time(Utc::now()),
        }));
    }

    /// Broadcasts an envelope to every canvas-mode socket.
    pub fn emit(&self, event: &str, workspace_id: &str, payload: Value) {
        let envelope = json!({
            "event": event, "workspace_id": workspace_id,
            "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true),
            "payload": payload,
        });
        self.send_raw(envelope.to_string());
    }

    pub fn send_raw(&self, text: String) {
        {
            let mut f = self.faults();
            if f.drop_ws {
                return;
            }
            f.sent = f.sent.wrapping_add(1);
            if f.drop_every > 0 && f.sent.is_multiple_of(f.drop_every) {
                return;
            }
        }
        let _ = self.hub.send(Frame::Text(text));
    }

    /// Whether `token` is a live org token (configured or minted).
    pub fn is_org_token(&self, token: &str) -> bool {
        self.config.org_tokens.iter().any(|t| t == token)
            || lock(&self.data).org_tokens.iter().any(|t| t.token == token)
    }

    /// Mints an org token: 32 random bytes, base64url without padding.
    pub fn mint_org_token(&self, name: &str) -> (OrgToken, String) {
        use base64::Engine as _;
        let bytes: Vec<u8> = (0..2).flat_map(|_| *Uuid::new_v4().as_bytes()).collect();
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let minted = OrgToken {
            id: Uuid::new_v4().to_string(),
            prefix: token[..8].to_owned(),
            name: name.to_owned(),
            token: token.clone(),
            created_at: rest_time(Utc::now()),
        };
        lock(&self.data).org_tokens.push(minted.clone());
        (minted, token)
    }

    pub fn org_tokens(&self) -> Vec<OrgToken> {
        lock(&self.data).org_tokens.clone()
    }

    pub fn revoke_org_token(&self, id: &str) -> bool {
        let mut data = lock(&self.data);
        let before = data.org_tokens.len();
        data.org_tokens.retain(|t| t.id != id);
        data.org_tokens.len() != before
    }

    pub fn kick_sockets(&self) {
        let _ = self.kick.send(());
    }

    pub fn socket_opened(&self) {
        self.sockets.fetch_add(1, Ordering::SeqCst);
        self.sockets_opened.fetch_add(1, Ordering::SeqCst);
    }

    pub fn socket_closed(&self) {
        self.sockets.fetch_sub(1, Ordering::SeqCst);
    }

    pub fn socket_count(&self) -> usize {
        self.sockets.load(Ordering::SeqCst)
    }

    pub fn sockets_opened(&self) -> usize {
        self.sockets_opened.load(Ordering::SeqCst)
    }

    /// Whether any workspace has a live token (the fresh-install check).
    pub fn any_workspace_token(&self) -> bool {
        !self.config.workspace_tokens.is_empty()
    }
}
