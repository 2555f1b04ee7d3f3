//! The IPC commands. Each is a few lines that delegate to `countersign-inbox`;
//! the argument and result types are exported to TypeScript.

use crate::error::{IpcError, Result};
use crate::prefs::Prefs;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use countersign_inbox::{
    when, AccountInput, AccountView, DecisionInput, HistoryPageView, RequestDetail, RequestRow,
};
use countersign_model::{
    Activity, Delivery, Kind, Outcome, Platform, Secret, SecretStoreKind, Status,
};
use countersign_store::{HistoryCursor, HistoryQuery, PendingQuery, Snoozed};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;
use tauri::{AppHandle, State};

type AppStateRef<'a> = State<'a, Arc<AppState>>;

/// Runs a read that may take a while (a list of 10,000 rows) on tokio's
/// blocking pool: a command that is not `async` runs on the main thread,
/// and would hold up the window and every other command meanwhile.
async fn off_main<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&countersign_inbox::Inbox) -> countersign_inbox::Result<T> + Send + 'static,
) -> Result<T> {
    let inbox = state.inbox.clone();
    tokio::task::spawn_blocking(move || f(&inbox))
        .await
        .map_err(|e| IpcError::internal(format!("the read stopped: {e}")))?
        .map_err(Into::into)
}

/// Inbox filters; unset fields do not filter.
#[derive(Debug, Default, Deserialize, ts_rs::TS)]
#[serde(default)]
#[ts(export, optional_fields)]
pub struct PendingFilter {
    pub account: Option<String>,
    pub platform: Option<Platform>,
    pub agent: Option<String>,
    pub kind: Option<Kind>,
    pub search: Option<String>,
    /// List the snoozed requests instead of the inbox.
    pub snoozed: bool,
}

/// History filters and where the page starts; unset fields do not filter.
#[derive(Debug, Default, Deserialize, ts_rs::TS)]
#[serde(default)]
#[ts(export, optional_fields)]
pub struct HistoryFilter {
    pub status: Option<Status>,
    pub account: Option<String>,
    pub platform: Option<Platform>,
    pub agent: Option<String>,
    pub search: Option<String>,
    /// Ended at or after: RFC 3339, or a date (the start of that UTC day).
    pub since: Option<String>,
    /// Ended before: RFC 3339, or a date (the end of that UTC day).
    pub until: Option<String>,
    /// Rows older than this: the previous page's `next`.
    pub before: Option<String>,
    /// Rows per page (default 200, at most 5,000).
    pub limit: Option<u32>,
}

impl HistoryFilter {
    fn query(self, now: DateTime<Utc>) -> Result<HistoryQuery> {
        let before = self.before.filter(|c| !c.is_empty());
        Ok(HistoryQuery {
            statuses: self.status.into_iter().collect(),
            account: self.account.filter(|a| !a.is_empty()),
            platform: self.platform,
            agent: self.agent.filter(|a| !a.is_empty()),
            search: self.search.filter(|s| !s.trim().is_empty()),
            since: moment("since", self.since, false, now)?,
            until: moment("until", self.until, true, now)?,
            before: before
                .map(|c| c.parse::<HistoryCursor>())
                .transpose()
                .map_err(|e| IpcError::invalid(e.to_string()))?,
            limit: self.limit,
        })
    }
}

/// A date, an RFC 3339 time or a span back from `now` (see
/// [`when::parse`]); as `until`, a date counts whole.
fn moment(
    field: &str,
    value: Option<String>,
    until: bool,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>> {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let w = when::parse(&v).map_err(|e| IpcError::invalid(format!("`{field}`: {e}")))?;
    Ok(Some(if until { w.end(now) } else { w.resolve(now) }))
}

/// One decision applied to one or more requests (bulk triage).
#[derive(Debug, Deserialize, ts_rs::TS)]
#[ts(export, optional_fields)]
pub struct DecideArgs {
    #[ts(type = "number[]")]
    pub ids: Vec<i64>,
    pub outcome: Outcome,
    pub comment: Option<String>,
    pub edited_arguments: Option<Value>,
    pub response: Option<String>,
}

#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct DecideResult {
    #[ts(type = "number")]
    pub id: i64,
    /// Where the decision stands; `None` when it was refused before storing.
    pub delivery: Option<Delivery>,
    /// Why it is queued or failed, or why it was refused.
    pub error: Option<String>,
    /// What the platform did instead, when it took the decision but did
    /// not do what it says.
    pub note: Option<String>,
    /// For a decision not delivered yet: what happens next and when
    /// (the same sentence the CLI prints).
    pub next_step: Option<String>,
}

/// The account form. `id` edits an existing account; `secret` left empty
/// on edit keeps the stored one.
#[derive(Debug, Deserialize, ts_rs::TS)]
#[ts(export, optional_fields)]
pub struct AccountForm {
    #[ts(optional, type = "number")]
    pub id: Option<i64>,
    pub name: String,
    pub platform: Platform,
    pub url: String,
    pub reviewer: Option<String>,
    pub secret: Option<String>,
    pub secret_store: Option<SecretStoreKind>,
    pub settings: Option<Value>,
}

#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct AppStatus {
    #[ts(type = "number")]
    pub pending: i64,
    /// The tray's tooltip as it stands.
    pub tray: String,
    pub data_dir: String,
    /// Bytes the store takes on disk.
    #[ts(type = "number")]
    pub store_bytes: u64,
}

/// What the About section shows.
#[derive(Debug, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct About {
    /// The workspace version (the same `countersign --version` prints).
    pub version: String,
    pub data_dir: String,
    /// Bytes the store takes on disk.
    #[ts(type = "number")]
    pub store_bytes: u64,
    /// Whether the app starts (hidden, in the tray) when the user logs in.
    pub open_at_login: bool,
}

#[tauri::command]
pub async fn pending(state: AppStateRef<'_>, filter: PendingFilter) -> Result<Vec<RequestRow>> {
    let q = PendingQuery {
        account: filter.account,
        platform: filter.platform,
        agent: filter.agent,
        kind: filter.kind,
        search: filter.search,
        limit: None,
        snoozed: if filter.snoozed {
            Snoozed::AsleepAt(state.inbox.clock().now())
        } else {
            Snoozed::AwakeAt(state.inbox.clock().now())
        },
    };
    off_main(&state, move |inbox| inbox.pending_rows(&q)).await
}

#[tauri::command]
pub async fn detail(state: AppStateRef<'_>, id: i64) -> Result<RequestDetail> {
    off_main(&state, move |inbox| inbox.detail(id)).await
}

#[tauri::command]
pub async fn decide(
    app: AppHandle,
    state: AppStateRef<'_>,
    args: DecideArgs,
) -> Result<Vec<DecideResult>> {
    let inbox = state.inbox.clone();
    let runs = args.ids.iter().map(|&id| {
        let input = DecisionInput {
            request_id: id,
            outcome: args.outcome,
            comment: args.comment.clone(),
            edited_arguments: args.edited_arguments.clone(),
            response: args.response.clone(),
        };
        let inbox = inbox.clone();
        async move {
            match inbox.decide(input).await {
                Ok(d) => DecideResult {
                    id,
                    delivery: Some(d.delivery),
                    next_step: inbox.next_step(&d),
                    error: d.error,
                    note: d.note,
                },
                Err(e) => DecideResult {
                    id,
                    delivery: None,
                    error: Some(IpcError::from(e).message),
                    note: None,
                    next_step: None,
                },
            }
        }
    });
    let results = futures::future::join_all(runs).await;
    // Decided here: its notification has nothing left to ask, whatever
    // became of the delivery.
    state.notifier.close(
        results
            .iter()
            .filter(|r| r.delivery.is_some())
            .map(|r| r.id)
            .collect(),
    );
    crate::events::refresh(&app, &state);
    Ok(results)
}

/// Takes a pending request out of the inbox until `until` (earlier if
/// its deadline is near); returns when it comes back.
#[tauri::command]
pub fn snooze(
    app: AppHandle,
    state: AppStateRef<'_>,
    id: i64,
    until: DateTime<Utc>,
) -> Result<DateTime<Utc>> {
    let back = state.inbox.snooze(id, until)?;
    state.notifier.close(vec![id]);
    crate::events::refresh(&app, &state);
    Ok(back)
}

/// A press on a notification's Approve or Deny: decided exactly as from
/// the window (same checks, store and outbox), then a follow-up
/// notification says what became of it. Does nothing harmful for a
/// request that is gone or already decided: the follow-up says so.
pub async fn decide_from_notification(
    app: &AppHandle,
    state: &AppState,
    id: i64,
    outcome: Outcome,
) {
    let title = state
        .inbox
        .store()
        .request(id)
        .map(|r| r.title)
        .unwrap_or_else(|_| format!("request {id}"));
    let verb = if outcome == Outcome::Deny {
        "Denied"
    } else {
        "Approved"
    };
    let input = DecisionInput {
        request_id: id,
        outcome,
        comment: None,
        edited_arguments: None,
        response: None,
    };
    let summary = match state.inbox.decide(input).await {
        Ok(d) => match d.delivery {
            Delivery::Confirmed => format!("{verb} · delivered"),
            Delivery::Failed => format!("Refused: {}", d.error.unwrap_or_default()),
            _ => format!(
                "{verb} · queued: {}",
                d.error.unwrap_or_else(|| "platform unreachable".into())
            ),
        },
        Err(e) => format!("Not decided: {}", IpcError::from(e).message),
    };
    state.notifier.close(vec![id]);
    state.notifier.followup(summary, title);
    crate::events::refresh(app, state);
}

/// One page of history, newest first; pass `next` back as `before` for
/// the page after it.
#[tauri::command]
pub async fn history_page(
    state: AppStateRef<'_>,
    filter: HistoryFilter,
) -> Result<HistoryPageView> {
    let q = filter.query(state.inbox.clock().now())?;
    off_main(&state, move |inbox| inbox.history_page(&q)).await
}

#[tauri::command]
pub fn activity(state: AppStateRef<'_>, limit: Option<u32>) -> Result<Vec<Activity>> {
    Ok(state.inbox.store().activity(None, limit.unwrap_or(500))?)
}

#[tauri::command]
pub async fn mark_activity_read(state: AppStateRef<'_>, id: i64) -> Result<bool> {
    Ok(state.inbox.mark_activity_read(id).await?)
}

#[tauri::command]
pub fn accounts(state: AppStateRef<'_>) -> Result<Vec<AccountView>> {
    Ok(state.inbox.accounts()?)
}

#[tauri::command]
pub async fn save_account(
    app: AppHandle,
    state: AppStateRef<'_>,
    form: AccountForm,
) -> Result<AccountView> {
    let input = AccountInput {
        name: form.name,
        platform: form.platform,
        base_url: form.url,
        reviewer: form.reviewer,
        secret: form.secret.filter(|s| !s.is_empty()).map(Secret::new),
        secret_store: form.secret_store.unwrap_or(SecretStoreKind::Keychain),
        settings: form
            .settings
            .unwrap_or_else(|| Value::Object(Default::default())),
    };
    let account = match form.id {
        Some(id) => state.inbox.update_account(id, input).await?,
        None => state.inbox.add_account(input).await?,
    };
    state
        .inbox
        .start_account(&mut *state.running.lock().await, account.clone())
        .await;
    crate::events::refresh(&app, &state);
    let view = state
        .inbox
        .accounts()?
        .into_iter()
        .find(|a| a.id == account.id);
    view.ok_or_else(|| IpcError::from(countersign_store::StoreError::NotFound("account".into())))
}

#[tauri::command]
pub async fn remove_account(app: AppHandle, state: AppStateRef<'_>, name: String) -> Result<()> {
    let account = state.inbox.store().account_by_name(&name)?;
    state.running.lock().await.stop_account(account.id).await;
    state.inbox.remove_account(&name).await?;
    crate::events::refresh(&app, &state);
    Ok(())
}

#[tauri::command]
pub async fn retry_account(state: AppStateRef<'_>, id: i64) -> Result<bool> {
    Ok(state.running.lock().await.retry(id))
}

#[tauri::command]
pub fn prefs(state: AppStateRef<'_>) -> Prefs {
    state.prefs()
}

#[tauri::command]
pub fn set_prefs(app: AppHandle, state: AppStateRef<'_>, prefs: Prefs) -> Result<Prefs> {
    state.set_prefs(prefs).map_err(|e| IpcError {
        code: crate::error::ErrorCode::Internal,
        message: e.to_string(),
    })?;
    crate::tray::sync_pause_item(&app, state.prefs().dnd);
    Ok(state.prefs())
}

#[tauri::command]
pub fn status(state: AppStateRef<'_>) -> Result<AppStatus> {
    Ok(AppStatus {
        pending: state.inbox.store().pending_count()?,
        tray: crate::state::lock(&state.tray_text).clone(),
        data_dir: state.inbox.data_dir().display().to_string(),
        store_bytes: state.inbox.store_size()?,
    })
}

#[tauri::command]
pub fn about(app: AppHandle, state: AppStateRef<'_>) -> Result<About> {
    Ok(About {
        version: app.package_info().version.to_string(),
        data_dir: state.inbox.data_dir().display().to_string(),
        store_bytes: state.inbox.store_size()?,
        open_at_login: crate::autostart::is_on(&app).map_err(IpcError::internal)?,
    })
}

/// Turns "Open at login" on or off; returns the state it is in afterwards.
#[tauri::command]
pub fn set_open_at_login(app: AppHandle, on: bool) -> Result<bool> {
    crate::autostart::set(&app, on)
        .map_err(|e| IpcError::internal(format!("could not change the login item: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_filter_refuses_a_bad_cursor_or_date_and_takes_a_to_date_as_its_end() {
        let now = chrono::Utc::now();
        let bad = HistoryFilter {
            before: Some("yesterday".into()),
            ..Default::default()
        };
        let e = bad.query(now).unwrap_err();
        assert!(
            matches!(e.code, crate::error::ErrorCode::Invalid) && e.message.contains("yesterday"),
            "a bad cursor is refused input that names it: {e:?}"
        );
        let bad = HistoryFilter {
            since: Some("last week".into()),
            ..Default::default()
        };
        assert!(bad.query(now).is_err(), "a bad date is refused");
        let q = HistoryFilter {
            until: Some("2026-03-01".into()),
            ..Default::default()
        }
        .query(now)
        .unwrap();
        assert_eq!(
            q.until.unwrap().to_rfc3339(),
            "2026-03-02T00:00:00+00:00",
            "a `to` date includes its whole day"
        );
    }
}
