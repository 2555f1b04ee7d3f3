//! The shapes the CLI prints as JSON (and the desktop app sends over IPC):
//! stable field names, no raw payloads in lists, never a secret.

use chrono::{DateTime, Utc};
use countersign_model::{
    Account, AccountHealth, AllowedDecision, ConnectionState, Decision, Delivery, Kind, Platform,
    Progress, Request, RequestExtra, Status,
};
use serde::Serialize;
use serde_json::Value;

/// One page of history, as the app's list shows it.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct HistoryPageView {
    pub rows: Vec<RequestRow>,
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
    /// When it left `pending`: the time history is ordered by.
    pub ended_at: Option<DateTime<Utc>>,
    /// Out of the inbox until then.
    pub snoozed_until: Option<DateTime<Utc>>,
    /// What its text hides, as a warning line (see `countersign_model::text`).
    pub hidden: Option<String>,
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
            ended_at: r.ended_at,
            snoozed_until: r.snoozed_until,
            hidden: r.hidden.clone(),
            comment: r.comment.clone(),
            arguments: r.arguments.clone(),
            delivery: latest.map(|d| d.delivery),
            delivery_error: latest.and_then(|d| d.error.clone()),
            delivery_note: latest.and_then(|d| d.note.clone()),
            group_note: None,
        }
    }
}

/// Characters of a row's text fields (title, action, comment…) a list row
/// carries; the detail has them whole.
pub const ROW_TEXT: usize = 300;

/// One request as the app's lists show it: the fields a row and the
/// list's filters need, without the payloads (arguments, raw JSON, facts,
/// answer schema) and with long text clipped (a trailing "…" says so), so
/// 10,000 pending rows cross IPC at once. The detail comes with
/// [`RequestDetail`] when a row is opened.
#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct RequestRow {
    #[ts(type = "number")]
    pub id: i64,
    pub account: String,
    pub platform: Platform,
    pub kind: Kind,
    /// The platform's own name for this kind of request ("dual control").
    pub label: Option<String>,
    pub title: String,
    pub action: String,
    pub agent: Option<String>,
    pub status: Status,
    pub outcome: Option<String>,
    pub created_at: DateTime<Utc>,
    pub deadline: Option<DateTime<Utc>>,
    /// When it left `pending`: the time history is ordered by.
    pub ended_at: Option<DateTime<Utc>>,
    /// Out of the inbox until then.
    pub snoozed_until: Option<DateTime<Utc>>,
    /// What its text hides, as a warning line (see `countersign_model::text`).
    pub hidden: Option<String>,
    pub decided_by: Option<String>,
    pub comment: Option<String>,
    pub progress: Option<Progress>,
    pub proposal: bool,
    pub read_only: Option<String>,
    /// The group it is answered with, if any (see `RequestExtra::group`).
    pub group_key: Option<String>,
    pub group_note: Option<String>,
    pub delivery: Option<Delivery>,
    pub delivery_error: Option<String>,
    pub delivery_note: Option<String>,
}

impl From<RequestView> for RequestRow {
    fn from(v: RequestView) -> Self {
        let x = v.extra;
        Self {
            id: v.id,
            account: v.account,
            platform: v.platform,
            kind: v.kind,
            label: x.label.map(clip),
            title: clip(v.title),
            action: clip(v.action),
            agent: v.agent.map(clip),
            status: v.status,
            outcome: v.outcome.map(clip),
            created_at: v.created_at,
            deadline: v.deadline,
            ended_at: v.ended_at,
            snoozed_until: v.snoozed_until,
            hidden: v.hidden,
            decided_by: v.decided_by.map(clip),
            comment: v.comment.map(clip),
            progress: x.progress,
            proposal: x.proposal,
            read_only: x.read_only.map(clip),
            group_key: x.group.map(|g| g.key),
            group_note: v.group_note,
            delivery: v.delivery,
            delivery_error: v.delivery_error.map(clip),
            delivery_note: v.delivery_note.map(clip),
        }
    }
}

/// `s` cut to [`ROW_TEXT`] characters, with "…" when it was longer.
fn clip(s: String) -> String {
    match s.char_indices().nth(ROW_TEXT) {
        None => s,
        Some((at, _)) => {
            let mut cut = s;
            cut.truncate(at);
            cut.push('…');
            cut
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

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_model::{Group, ObservedRequest};
    use serde_json::json;

    fn view(title: &str) -> RequestView {
        let observed = ObservedRequest {
            remote_id: "r1".into(),
            route: json!({}),
            kind: Kind::Approval,
            title: title.into(),
            action: title.into(),
            arguments: json!({"cmd": "x".repeat(50_000)}),
            description: None,
            agent: None,
            tier: None,
            created_at: Utc::now(),
            deadline: None,
            allowed_decisions: vec![AllowedDecision::Approve],
            link: None,
            extra: RequestExtra {
                group: Some(Group {
                    key: "thread:1".into(),
                    label: "thread".into(),
                }),
                ..Default::default()
            },
            raw: json!({"big": "y".repeat(50_000)}),
        };
        RequestView::new(
            &Request::observed_as_pending(&observed, 7, "prod", Platform::Molecule),
            None,
        )
    }

    #[test]
    fn a_row_carries_no_payload_and_clips_long_text() {
        let row = RequestRow::from(view(&"é".repeat(ROW_TEXT + 50)));
        let json = serde_json::to_string(&row).unwrap();
        assert!(
            json.len() < 2_000,
            "a row crosses IPC without arguments or raw payload, whatever their size ({} bytes)",
            json.len()
        );
        assert_eq!(
            row.title.chars().count(),
            ROW_TEXT + 1,
            "a long title is cut at a character boundary and ends with one ellipsis"
        );
        assert!(row.title.ends_with('…'), "the cut is visible, not silent");
        assert_eq!(
            row.group_key.as_deref(),
            Some("thread:1"),
            "the list still knows a request's group, to decide it with its siblings"
        );
    }

    #[test]
    fn a_short_title_is_kept_whole() {
        let row = RequestRow::from(view("deploy web"));
        assert_eq!(
            row.title, "deploy web",
            "only text longer than a row is cut"
        );
    }
}
