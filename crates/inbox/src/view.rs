//! The shapes the CLI prints as JSON (and the desktop app sends over IPC):
//! stable field names, no raw payloads in lists, never a secret.

use chrono::{DateTime, Utc};
use countersign_model::{
    Account, AccountHealth, AllowedDecision, ConnectionState, Decision, Delivery, Kind, Platform,
    Request, RequestExtra, Status,
};
use serde::Serialize;
use serde_json::Value;

/// One page of history.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct HistoryPageView {
    pub rows: Vec<RequestView>,
    /// The cursor of the next page (pass it back as `before`); `null` on
    /// the last page.
    pub next: Option<String>,
    /// Ended requests in the whole store (a maintained counter).
    #[ts(type = "number")]
    pub total: i64,
}

/// One request in a list.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct RequestView {
    #[ts(type = "number")]
    pub id: i64,
    pub account: String,
    pub platform: Platform,
    pub remote_id: String,
    pub kind: Kind,
    pub title: String,
    pub action: String,
    pub agent: Option<String>,
    pub description: Option<String>,
    pub tier: Option<String>,
    pub status: Status,
    /// For requests resolved outside Countersign: the platform's outcome.
    pub outcome: Option<String>,
    pub created_at: DateTime<Utc>,
    pub deadline: Option<DateTime<Utc>>,
    pub allowed_decisions: Vec<AllowedDecision>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    pub arguments: Value,
    /// Progress, proposal flag, read-only reason, answer schema, facts.
    pub extra: RequestExtra,
    /// Delivery state of this user's latest decision, if any.
    pub delivery: Option<Delivery>,
    pub delivery_error: Option<String>,
    /// What the platform did instead of what the decision says, when it
    /// did ("SurfSense continued the run despite the deny").
    pub delivery_note: Option<String>,
    /// For requests answered together with others (a SurfSense thread):
    /// how far the group is ("thread “Drafts”: 1 of 2 decided; sent
    /// together once all are").
    pub group_note: Option<String>,
}

impl RequestView {
    pub fn new(r: &Request, latest: Option<&Decision>) -> Self {
        Self {
            id: r.id,
            account: r.account.clone(),
            platform: r.platform,
            remote_id: r.remote_id.clone(),
            kind: r.kind,
            title: r.title.clone(),
            action: r.action.clone(),
            agent: r.agent.clone(),
            description: r.description.clone(),
            tier: r.tier.clone(),
            status: r.status,
            outcome: r.outcome.clone(),
            created_at: r.created_at,
            deadline: r.deadline,
            allowed_decisions: r.allowed_decisions.clone(),
            extra: r.extra.clone(),
            decided_by: r.decided_by.clone(),
            decided_at: r.decided_at,
            comment: r.comment.clone(),
            arguments: r.arguments.clone(),
            delivery: latest.map(|d| d.delivery),
            delivery_error: latest.and_then(|d| d.error.clone()),
            delivery_note: latest.and_then(|d| d.note.clone()),
            group_note: None,
        }
    }
}

/// Everything about one request: the list fields, the platform's raw
/// payload exactly as received, and every decision made on it.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct RequestDetail {
    #[serde(flatten)]
    #[ts(flatten)]
    pub request: RequestView,
    pub link: Option<String>,
    pub raw: Value,
    pub first_seen_at: DateTime<Utc>,
    pub decisions: Vec<Decision>,
    /// What the platform reported about it afterwards (e.g. the tool's result).
    pub reports: Vec<countersign_model::Activity>,
}

/// An account with its health; never its secret.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct AccountView {
    #[ts(type = "number")]
    pub id: i64,
    pub name: String,
    pub platform: Platform,
    pub url: String,
    pub reviewer: String,
    pub secret_store: countersign_model::SecretStoreKind,
    pub settings: Value,
    pub state: Option<ConnectionState>,
    /// One human line: "connected", "auth failed: …", "backing off until …".
    pub health: String,
    pub last_error: Option<String>,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub backoff_until: Option<DateTime<Utc>>,
    pub pending: usize,
}

impl AccountView {
    pub fn new(account: Account, health: Option<AccountHealth>, pending: usize) -> Self {
        Self {
            id: account.id,
            name: account.name,
            platform: account.platform,
            url: account.base_url,
            reviewer: account.reviewer,
            secret_store: account.secret_store,
            settings: account.settings,
            state: health.as_ref().map(|h| h.state),
            health: health
                .as_ref()
                .map(AccountHealth::summary)
                .unwrap_or_else(|| "never synced".into()),
            last_error: health.as_ref().and_then(|h| h.last_error.clone()),
            last_sync_at: health.as_ref().and_then(|h| h.last_sync_at),
            backoff_until: health.as_ref().and_then(|h| h.backoff_until),
            pending,
        }
    }
}
