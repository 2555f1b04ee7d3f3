//! The sync engine: keeps the local store in step with every account's
//! platform and carries decisions from the outbox to the platforms.
//!
//! One task per account ([`Engine::spawn`]): subscribe to the live channel,
//! reconcile (after every connect and on a timer), apply live updates as
//! they come, deliver due decisions, and on any failure back off with
//! jittered exponential delays. Requests are written to the store before an
//! event announces them. Health is written to the store and announced, so
//! the CLI and the app both see it. A failing account never touches another
//! account's task.
//!
//! [`Engine::sync_once`] does one reconcile and one outbox pass per account,
//! concurrently, for `countersign sync --once`.

mod account_task;
mod backoff;
mod reconcile;

pub use backoff::Backoff;

use chrono::{DateTime, Utc};
use countersign_connector::{Connector, ConnectorError, Delivered};
use countersign_model::{
    Account, AccountHealth, Activity, Clock, ConnectionState, Decision, Delivery, Outcome, Request,
    Resolution,
};
use countersign_store::{DecisionUpdate, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch, Notify};

/// What changed, for whoever shows it. The store already holds it when the
/// event is sent, so a consumer that falls behind can simply re-query.
// A decision event carries the request too; events are few, short-lived
// and matched on by every consumer, so boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum SyncEvent {
    RequestAdded(Request),
    RequestUpdated(Request),
    /// Left the pending list: decided here, elsewhere, expired, cancelled.
    RequestResolved(Request),
    Activity(Activity),
    Decision {
        decision: Decision,
        request: Request,
    },
    Health {
        account: String,
        health: AccountHealth,
    },
}

/// Tunables; the defaults suit a desktop.
#[derive(Debug, Clone)]
pub struct Options {
    pub backoff: Backoff,
    /// How long a refused account waits before trying its credentials again
    /// (unless the user asks sooner).
    pub auth_retry: Duration,
    /// How long a sender owns a decision it marked sent.
    pub lease: Duration,
    /// How often a running account looks for due decisions.
    pub outbox_every: Duration,
    /// How long to wait before checking on a decision whose outcome is
    /// uncertain (the platform did not answer in time).
    pub uncertain_retry: Duration,
    /// While a decision waits for an account that is backing off, how
    /// often to check (with [`Connector::probe`]) whether its platform
    /// answers again, so the decision lands within this long of its return
    /// rather than after the whole backoff.
    pub waiting_check: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            backoff: Backoff::default(),
            auth_retry: Duration::from_secs(300),
            lease: Duration::from_secs(120),
            outbox_every: Duration::from_secs(5),
            uncertain_retry: Duration::from_secs(15),
            waiting_check: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Connector(#[from] ConnectorError),
}

/// The engine; cheap to clone.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

struct Shared {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    options: Options,
    events: broadcast::Sender<SyncEvent>,
}

/// Outcome of one `sync --once` pass for one account.
#[derive(Debug)]
pub struct OnceReport {
    pub account: String,
    pub result: Result<reconcile::Reconciled, SyncError>,
    pub delivered: Vec<Decision>,
}

pub use reconcile::Reconciled;

/// Controls one running account task.
pub struct AccountHandle {
    pub account_id: i64,
    wake: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl AccountHandle {
    /// Skip any backoff or auth wait and try now; also delivers due decisions.
    pub fn retry_now(&self) {
        self.wake.notify_one();
    }

    /// Stops the task (its connection closes with it).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl Engine {
    pub fn new(store: Arc<Store>, clock: Arc<dyn Clock>, options: Options) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                clock,
                options,
                events: broadcast::channel(4096).0,
            }),
        }
    }

    /// Events from now on.
    pub fn events(&self) -> broadcast::Receiver<SyncEvent> {
        self.shared.events.subscribe()
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.shared.store
    }

    /// Starts the long-running task for one account.
    pub fn spawn(&self, account: Account, connector: Arc<dyn Connector>) -> AccountHandle {
        let wake = Arc::new(Notify::new());
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(account_task::run(
            self.clone(),
            account.clone(),
            connector,
            wake.clone(),
            stop_rx,
        ));
        AccountHandle {
            account_id: account.id,
            wake,
            stop,
            task,
        }
    }

    /// One reconcile and one outbox pass per account, all at once.
    pub async fn sync_once(&self, accounts: Vec<(Account, Arc<dyn Connector>)>) -> Vec<OnceReport> {
        let passes = accounts.into_iter().map(|(account, connector)| async move {
            self.set_health(&account, ConnectionState::Connecting, None, None);
            let result = self.reconcile(&account, connector.as_ref()).await;
            let delivered = match &result {
                Ok(_) => {
                    self.deliver_due(&account, connector.as_ref(), None, true)
                        .await
                }
                Err(_) => Vec::new(),
            };
            match &result {
                Ok(_) => {
                    self.set_health(&account, ConnectionState::Polling, None, Some(self.now()))
                }
                Err(e) => self.report_failure(&account, e, None),
            }
            OnceReport {
                account: account.name.clone(),
                result,
                delivered,
            }
        });
        futures::future::join_all(passes).await
    }

    /// Delivers one just-recorded decision now, if no other process got to
    /// it first. Returns the decision as it stands afterwards.
    pub async fn deliver_decision(
        &self,
        account: &Account,
        connector: &dyn Connector,
        decision_id: i64,
    ) -> Result<Decision, SyncError> {
        self.deliver_due(account, connector, Some(decision_id), true)
            .await;
        Ok(self.shared.store.decision(decision_id)?)
    }

    fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    fn emit(&self, event: SyncEvent) {
        // No receiver is fine: the store holds everything.
        let _ = self.shared.events.send(event);
    }

    fn set_health(
        &self,
        account: &Account,
        state: ConnectionState,
        backoff_until: Option<DateTime<Utc>>,
        synced_at: Option<DateTime<Utc>>,
    ) {
        self.write_health(account, state, backoff_until, None, synced_at);
    }

    fn write_health(
        &self,
        account: &Account,
        state: ConnectionState,
        backoff_until: Option<DateTime<Utc>>,
        last_error: Option<String>,
        synced_at: Option<DateTime<Utc>>,
    ) {
        let health = AccountHealth {
            account_id: account.id,
            state,
            backoff_until,
            last_error,
            last_sync_at: synced_at,
            updated_at: self.now(),
            note: None,
        };
        let before = self.shared.store.health(account.id).ok().flatten();
        if let Err(e) = self.shared.store.set_health(&health) {
            tracing::warn!(account = %account.name, "could not record health: {e}");
        }
        // Announce changes only: a periodic reconcile that finds all well
        // refreshes the sync time without a line in every log and UI.
        let same = before.is_some_and(|b| {
            b.state == health.state
                && b.last_error == health.last_error
                && b.backoff_until == health.backoff_until
        });
        if same {
            return;
        }
        let health = self
            .shared
            .store
            .health(account.id)
            .ok()
            .flatten()
            .unwrap_or(health);
        self.emit(SyncEvent::Health {
            account: account.name.clone(),
            health,
        });
    }

    /// Records a failed pass in the account's health line.
    fn report_failure(&self, account: &Account, err: &SyncError, until: Option<DateTime<Utc>>) {
        let state = match err {
            SyncError::Connector(ConnectorError::Auth(_)) => ConnectionState::AuthFailed,
            _ if until.is_some() => ConnectionState::BackingOff,
            _ => ConnectionState::Stopped,
        };
        tracing::warn!(account = %account.name, "sync failed: {err}");
        self.write_health(account, state, until, Some(err.to_string()), None);
    }

    /// Applies "this request left the pending list" from any source.
    fn apply_resolution(&self, account: &Account, res: &Resolution) -> Result<(), StoreError> {
        let store = &self.shared.store;
        let Some(request) = store.request_by_remote(account.id, &res.remote_id)? else {
            return Ok(()); // never seen it; nothing to update
        };
        let now = self.now();
        if let Some(open) = store.open_decision_for(request.id)? {
            // Our own reply may announce itself before its sender records
            // the answer: a resolution that names nobody leaves a decision
            // being sent to its sender (a dead sender's lease runs out and
            // the retry learns the outcome).
            if open.delivery == Delivery::Sent && res.decided_by.is_none() {
                return Ok(());
            }
            let ours = res.decided_by.as_deref() == Some(account.reviewer.as_str())
                && res.outcome.as_deref().map(outcome_matches(open.outcome)) == Some(true);
            if ours {
                let decision = store.update_decision(open.id, &DecisionUpdate::Confirmed, now)?;
                self.emit(SyncEvent::Decision {
                    decision,
                    request: store.request(request.id)?,
                });
                return Ok(());
            }
            let decision = store.update_decision(
                open.id,
                &DecisionUpdate::Failed {
                    error: "the request was resolved elsewhere before this decision arrived".into(),
                    reopen: false,
                },
                now,
            )?;
            let request = store
                .apply_resolution(request.id, res, now)?
                .unwrap_or(request);
            self.emit(SyncEvent::Decision { decision, request });
            return Ok(());
        }
        if request.status.is_pending() {
            if let Some(updated) = store.apply_resolution(request.id, res, now)? {
                self.emit(SyncEvent::RequestResolved(updated));
            }
        }
        Ok(())
    }

    /// Claims and delivers due decisions of one account (or just `only`).
    /// With `retry_all`, decisions waiting for a later retry go now too (the
    /// platform was just reached).
    /// Delivers due decisions; when one found its request gone from the
    /// platform (answered elsewhere, or replaced by a new ask), reconciles
    /// at once so whatever replaced it shows up now, not at the next poll.
    async fn deliver_due(
        &self,
        account: &Account,
        connector: &dyn Connector,
        only: Option<i64>,
        retry_all: bool,
    ) -> Vec<Decision> {
        let (decisions, stale) = self.deliver_pass(account, connector, only, retry_all).await;
        if stale {
            if let Err(e) = self.reconcile(account, connector).await {
                tracing::warn!(account = %account.name, "could not catch up after a request left: {e}");
            }
        }
        decisions
    }

    /// True while a decision on this account waits to be delivered.
    pub(crate) fn has_waiting(&self, account: &Account) -> bool {
        self.shared
            .store
            .has_open_decisions(account.id)
            .unwrap_or(false)
    }

    /// One pass over the outbox: the decisions as they stand afterwards,
    /// and whether any found its request gone from the platform.
    async fn deliver_pass(
        &self,
        account: &Account,
        connector: &dyn Connector,
        only: Option<i64>,
        retry_all: bool,
    ) -> (Vec<Decision>, bool) {
        let store = &self.shared.store;
        let claimed = match store.claim_due(
            account.id,
            only,
            self.now(),
            chrono::Duration::from_std(self.shared.options.lease).unwrap_or_default(),
            retry_all,
        ) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(account = %account.name, "could not read the outbox: {e}");
                return (Vec::new(), false);
            }
        };
        let mut out = Vec::new();
        let mut stale = false;
        let gone = |results: &[Result<Delivered, ConnectorError>]| {
            results
                .iter()
                .any(|r| matches!(r, Ok(Delivered::ResolvedElsewhere(_))))
        };
        let mut groups: Vec<(String, Vec<(Request, Decision)>)> = Vec::new();
        for c in claimed {
            let Some(group) = &c.request.extra.group else {
                let results = vec![connector.deliver(&c.request, &c.decision).await];
                stale |= gone(&results);
                self.record_each(account, &[(c.request, c.decision)], results, &mut out);
                continue;
            };
            match groups.iter_mut().find(|(key, _)| key == &group.key) {
                Some((_, items)) => items.push((c.request, c.decision)),
                None => groups.push((group.key.clone(), vec![(c.request, c.decision)])),
            }
        }
        for (key, items) in groups {
            // Every request of the group still in play must be in this
            // batch; a member whose decision another sender holds makes the
            // platform refuse a partial answer, so wait for it instead.
            let members = match store.group_members(account.id, &key) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(account = %account.name, "could not read a group: {e}");
                    continue;
                }
            };
            let complete = members
                .iter()
                .all(|m| items.iter().any(|(r, _)| r.id == m.id));
            let results = if complete {
                connector.deliver_group(&items).await
            } else {
                Vec::new()
            };
            stale |= gone(&results);
            self.record_each(account, &items, results, &mut out);
        }
        (out, stale)
    }

    /// Records one result per item; an item the connector gave no result
    /// for (a short list) waits for the next pass.
    fn record_each(
        &self,
        account: &Account,
        items: &[(Request, Decision)],
        results: Vec<Result<Delivered, ConnectorError>>,
        out: &mut Vec<Decision>,
    ) {
        let mut results = results.into_iter();
        for (request, decision) in items {
            let result = results.next().unwrap_or_else(|| {
                Err(ConnectorError::Unavailable(
                    "another decision of this group is still on its way".into(),
                ))
            });
            match self.record_delivery(account, request, decision, result) {
                Ok(d) => out.push(d),
                Err(e) => {
                    tracing::error!(account = %account.name, "could not record a delivery: {e}")
                }
            }
        }
    }

    fn record_delivery(
        &self,
        account: &Account,
        request: &Request,
        decision: &Decision,
        result: Result<Delivered, ConnectorError>,
    ) -> Result<Decision, StoreError> {
        let store = &self.shared.store;
        let now = self.now();
        let update = match &result {
            Ok(Delivered::Confirmed) => DecisionUpdate::Confirmed,
            Ok(Delivered::ConfirmedWithNote(note)) => {
                DecisionUpdate::ConfirmedWithNote(note.clone())
            }
            Ok(Delivered::ResolvedElsewhere(_)) => DecisionUpdate::Failed {
                error: "already resolved elsewhere".into(),
                reopen: false,
            },
            // Refused for good: the request goes back to the inbox so the
            // user sees why and can decide again.
            Err(ConnectorError::Rejected(msg)) => DecisionUpdate::Failed {
                error: msg.clone(),
                reopen: true,
            },
            Err(ConnectorError::Uncertain(msg)) => DecisionUpdate::RetryUnsure {
                error: msg.clone(),
                at: now
                    + chrono::Duration::from_std(self.shared.options.uncertain_retry)
                        .unwrap_or_default(),
            },
            Err(e) => {
                let wait = match e {
                    ConnectorError::RateLimited { retry_after } => *retry_after,
                    ConnectorError::Auth(_) => self.shared.options.auth_retry,
                    _ => self
                        .shared
                        .options
                        .backoff
                        .delay(decision.attempts.saturating_sub(1)),
                };
                DecisionUpdate::Retry {
                    error: e.to_string(),
                    at: now + chrono::Duration::from_std(wait).unwrap_or_default(),
                }
            }
        };
        let decision = store.update_decision(decision.id, &update, now)?;
        if let Ok(Delivered::ResolvedElsewhere(res)) = &result {
            store.apply_resolution(request.id, res, now)?;
        }
        if decision.delivery != Delivery::Confirmed {
            tracing::info!(account = %account.name, request = request.id,
                "decision {} is {}: {}", decision.id, decision.delivery,
                decision.error.as_deref().unwrap_or(""));
        }
        self.emit(SyncEvent::Decision {
            decision: decision.clone(),
            request: store.request(request.id)?,
        });
        Ok(decision)
    }
}

/// Whether a platform's outcome word ("approved", "denied", "approve"…)
/// is the same verdict as our decision.
fn outcome_matches(ours: Outcome) -> impl Fn(&str) -> bool {
    move |theirs: &str| {
        let approved = matches!(
            theirs.to_ascii_lowercase().as_str(),
            "approved" | "approve" | "accept" | "accepted" | "once" | "always"
        );
        approved == (ours != Outcome::Deny)
    }
}
