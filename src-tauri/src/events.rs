//! Carries core changes to the UI, the tray and notifications.
//!
//! New pending requests go to the notifier as each arrives. Engine events
//! are gathered for a short window and sent to the UI as one
//! `inbox-changed` event saying what to re-query (SQLite is the source of
//! truth), so a sync of thousands of requests costs the UI a few reloads,
//! not thousands of messages. Changes made by another process (the CLI) are
//! noticed through SQLite's `data_version`.

use crate::state::AppState;
use countersign_inbox::SyncEvent;
use countersign_model::Delivery;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tauri::{AppHandle, Emitter};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{interval, timeout, Instant};

/// The event the UI listens to.
pub const CHANGED: &str = "inbox-changed";
/// Asks the UI to show one request (a notification was clicked).
pub const OPEN_REQUEST: &str = "open-request";
/// How long to gather events before telling the UI.
const BATCH_WINDOW: Duration = Duration::from_millis(120);

/// What changed; the UI reloads the views that show it.
#[derive(Debug, Clone, Default, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct Changes {
    pub requests: bool,
    pub activity: bool,
    pub accounts: bool,
    /// The notification switches changed (from the CLI).
    pub prefs: bool,
    /// Pending requests now, across all accounts.
    #[ts(type = "number")]
    pub pending: i64,
}

/// Gathers what one event means for the UI, notifications and the tray.
#[derive(Default)]
struct Batch {
    changes: Changes,
    added: Vec<countersign_model::Request>,
    gone: Vec<i64>,
    activity: Vec<countersign_model::Activity>,
    /// Decisions the platform took but did not follow, with what it did.
    not_as_decided: Vec<(countersign_model::Request, String)>,
}

impl Batch {
    fn add(&mut self, event: SyncEvent) {
        match event {
            SyncEvent::RequestAdded(r) => {
                self.changes.requests = true;
                if r.status.is_pending() {
                    self.added.push(r);
                }
            }
            SyncEvent::RequestUpdated(r) | SyncEvent::RequestResolved(r) => {
                self.changes.requests = true;
                if !r.status.is_pending() {
                    self.gone.push(r.id);
                }
            }
            SyncEvent::Decision { request, decision } => {
                self.changes.requests = true;
                if !request.status.is_pending() {
                    self.gone.push(request.id);
                }
                if let Some(note) = decision
                    .note
                    .filter(|_| decision.delivery == Delivery::Confirmed)
                {
                    self.not_as_decided.push((request, note));
                }
            }
            SyncEvent::Activity(a) => {
                self.changes.activity = true;
                self.activity.push(a);
            }
            SyncEvent::Health { .. } => self.changes.accounts = true,
        }
    }
}

pub fn spawn(app: AppHandle, state: Arc<AppState>) {
    tauri::async_runtime::spawn(async move {
        let mut rx = state.inbox.engine().events();
        let mut version = state.inbox.store().data_version().unwrap_or_default();
        let mut external = interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                first = rx.recv() => {
                    let mut batch = Batch::default();
                    match first {
                        Ok(e) => batch.add(e),
                        Err(RecvError::Lagged(_)) => batch.changes = everything(),
                        Err(RecvError::Closed) => break,
                    }
                    notify_now(&state, &mut batch);
                    let until = Instant::now() + BATCH_WINDOW;
                    while let Ok(next) = timeout(until.saturating_duration_since(Instant::now()), rx.recv()).await {
                        match next {
                            Ok(e) => batch.add(e),
                            Err(RecvError::Lagged(_)) => batch.changes = everything(),
                            Err(RecvError::Closed) => break,
                        }
                        notify_now(&state, &mut batch);
                    }
                    deliver(&app, &state, batch);
                }
                _ = external.tick() => {
                    let now = state.inbox.store().data_version().unwrap_or(version);
                    if now != version {
                        version = now;
                        refresh(&app, &state);
                    }
                    // The CLI may have changed the notification switches.
                    if state.reload_prefs() {
                        crate::tray::sync_pause_item(&app, state.prefs().dnd);
                        emit(&app, &state, Changes { prefs: true, ..Default::default() });
                    }
                    release_held(&state);
                    wake_snoozed(&app, &state);
                }
            }
        }
    });
}

fn everything() -> Changes {
    Changes {
        requests: true,
        activity: true,
        accounts: true,
        prefs: true,
        pending: 0,
    }
}

/// New requests go to the notifier as they arrive, not after the UI's
/// batch window: the notifier shows the first at once and coalesces what
/// follows.
fn notify_now(state: &AppState, batch: &mut Batch) {
    if batch.added.is_empty() {
        return;
    }
    let added = std::mem::take(&mut batch.added);
    let prefs = state.prefs();
    let now = state.inbox.clock().now();
    if prefs.dnd_at(now) {
        return;
    }
    let local = now.with_timezone(&chrono::Local).time();
    let (show, held): (Vec<_>, Vec<_>) = added
        .into_iter()
        .partition(|r| prefs.notify_request_at(now, local, r.deadline));
    state.hold(held.into_iter().map(|r| r.id));
    state.notifier.requests(show, prefs.notify_actions);
}

/// Snoozed requests whose time came are back in the inbox and notified
/// again, as if new.
fn wake_snoozed(app: &AppHandle, state: &AppState) {
    let woken = match state.inbox.store().wake_due(state.inbox.clock().now()) {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!("could not wake snoozed requests: {e}");
            return;
        }
    };
    if woken.is_empty() {
        return;
    }
    let mut batch = Batch {
        added: woken,
        ..Default::default()
    };
    notify_now(state, &mut batch);
    refresh(app, state);
}

/// Once quiet hours are over, one notification for what arrived in them
/// and still waits.
fn release_held(state: &AppState) {
    if !state.has_held() {
        return;
    }
    let prefs = state.prefs();
    let now = state.inbox.clock().now();
    if prefs.dnd_at(now) {
        state.take_held();
        return;
    }
    let local = now.with_timezone(&chrono::Local).time();
    if !prefs.notify_request_at(now, local, None) {
        return;
    }
    let waiting: Vec<_> = state
        .take_held()
        .into_iter()
        .filter_map(|id| state.inbox.store().request(id).ok())
        .filter(|r| r.status.is_pending())
        .collect();
    state.notifier.requests(waiting, prefs.notify_actions);
}

fn deliver(app: &AppHandle, state: &AppState, batch: Batch) {
    let prefs = state.prefs();
    state.notifier.close(batch.gone);
    for (request, note) in batch.not_as_decided {
        state.notifier.not_as_decided(request, note);
    }
    if !prefs.dnd_at(state.inbox.clock().now()) && prefs.notify_activity {
        state.notifier.activity(batch.activity);
    }
    emit(app, state, batch.changes);
}

/// Tells the UI to reload everything (after a command, or an outside change).
pub fn refresh(app: &AppHandle, state: &AppState) {
    emit(app, state, everything());
}

fn emit(app: &AppHandle, state: &AppState, mut changes: Changes) {
    changes.pending = state.inbox.store().pending_count().unwrap_or_default();
    let snoozed = state
        .inbox
        .store()
        .snoozed_count(state.inbox.clock().now())
        .unwrap_or_default();
    crate::tray::set_count(app, state, changes.pending, snoozed);
    if let Err(e) = app.emit(CHANGED, changes) {
        tracing::warn!("could not notify the UI: {e}");
    }
}
