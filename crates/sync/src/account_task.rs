//! The long-running task of one account: connect, reconcile, follow the
//! live channel, deliver decisions, back off on failure.

use crate::{Engine, SyncError};
use countersign_connector::{Connector, ConnectorError, UpdateStream};
use countersign_model::{Account, ConnectionState};
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::time::{interval, sleep, MissedTickBehavior};

/// How often to poll while the push channel is refused.
const FALLBACK_POLL: Duration = Duration::from_secs(10);
/// How often to try the refused push channel again.
const RESUBSCRIBE_EVERY: Duration = Duration::from_secs(60);

/// Why a connected session ended.
enum Ended {
    Stopped,
    /// `connected`: it got as far as a full reconcile before failing.
    Failed {
        err: SyncError,
        connected: bool,
    },
}

fn failed(err: impl Into<SyncError>) -> Ended {
    Ended::Failed {
        err: err.into(),
        connected: false,
    }
}

pub(crate) async fn run(
    engine: Engine,
    account: Account,
    connector: Arc<dyn Connector>,
    wake: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut failures: u32 = 0;
    loop {
        if *stop.borrow() {
            break;
        }
        engine.set_health(&account, ConnectionState::Connecting, None, None);
        let err = match session(&engine, &account, connector.as_ref(), &wake, &mut stop).await {
            Ended::Stopped => break,
            Ended::Failed { err, connected } => {
                // A session that got as far as a reconcile resets the count,
                // so a drop after hours of work reconnects at once.
                if connected {
                    failures = 0;
                }
                err
            }
        };
        let wait = match &err {
            SyncError::Connector(ConnectorError::Auth(_)) => engine.shared.options.auth_retry,
            SyncError::Connector(ConnectorError::RateLimited { retry_after }) => *retry_after,
            _ => engine.shared.options.backoff.delay(failures),
        };
        failures = failures.saturating_add(1);
        let until = engine.now() + chrono::Duration::from_std(wait).unwrap_or_default();
        engine.report_failure(&account, &err, Some(until));
        // A refused login or a rate limit is waited out; an unreachable
        // platform is watched while a decision waits for it.
        let watch = !matches!(
            err,
            SyncError::Connector(ConnectorError::Auth(_) | ConnectorError::RateLimited { .. })
        );
        match wait_out(
            &engine,
            &account,
            connector.as_ref(),
            wait,
            watch,
            &wake,
            &mut stop,
        )
        .await
        {
            Waited::Stopped => break,
            Waited::Woken => failures = 0,
            Waited::Elapsed => {}
        }
    }
    engine.set_health(&account, ConnectionState::Stopped, None, None);
}

enum Waited {
    Elapsed,
    /// Asked to retry now, or the platform answered again.
    Woken,
    Stopped,
}

/// Sleeps out a backoff. With `watch`, while a decision of this account
/// waits, checks every [`crate::Options::waiting_check`] whether the
/// platform answers again (a cheap [`Connector::probe`]) and ends the wait
/// as soon as it does, so a queued decision lands within seconds of the
/// platform's return instead of after a backoff of up to a minute.
async fn wait_out(
    engine: &Engine,
    account: &Account,
    connector: &dyn Connector,
    wait: Duration,
    watch: bool,
    wake: &Notify,
    stop: &mut watch::Receiver<bool>,
) -> Waited {
    let deadline = tokio::time::Instant::now() + wait;
    let check = engine
        .shared
        .options
        .waiting_check
        .max(Duration::from_millis(10));
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Waited::Elapsed;
        }
        // A decision may be made while this wait runs (in the app, or by
        // the CLI in another process), so look every step.
        let step = if watch { left.min(check) } else { left };
        tokio::select! {
            _ = sleep(step) => {
                if watch && step < left && engine.has_waiting(account) && connector.probe().await.is_ok() {
                    tracing::info!(account = %account.name, "the platform answers again; delivering what waits");
                    return Waited::Woken;
                }
            }
            _ = wake.notified() => return Waited::Woken,
            _ = stop.changed() => return Waited::Stopped,
        }
    }
}

/// One connected session. Returns only on stop or failure.
async fn session(
    engine: &Engine,
    account: &Account,
    connector: &dyn Connector,
    wake: &Notify,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    // Subscribe first, then reconcile: whatever happens in between arrives
    // on the channel, so nothing falls in the gap. A refused channel is not
    // fatal while the pending list answers: poll instead and say why.
    let (mut live, mut push_error): (Option<UpdateStream>, Option<ConnectorError>) =
        match connector.subscribe().await {
            Ok(s) => (s, None),
            Err(e) => (None, Some(e)),
        };
    if let Err(e) = engine.reconcile(account, connector).await {
        return failed(e);
    }
    let lost = |err: SyncError| Ended::Failed {
        err,
        connected: true,
    };
    let report = |live: bool, push_error: &Option<ConnectorError>| {
        let (state, note) = match (live, push_error) {
            (true, _) => (ConnectionState::Connected, None),
            (false, None) => (ConnectionState::Polling, None),
            (false, Some(e)) => (
                ConnectionState::Polling,
                Some(format!("live updates unavailable, polling instead: {e}")),
            ),
        };
        engine.write_health(account, state, None, note, Some(engine.now()));
    };
    report(live.is_some(), &push_error);
    engine.deliver_due(account, connector, None, true).await;

    let poll_every = if push_error.is_some() {
        connector.reconcile_interval().min(FALLBACK_POLL)
    } else {
        connector.reconcile_interval()
    };
    let mut reconcile_timer = interval(poll_every);
    reconcile_timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    reconcile_timer.reset();
    let mut outbox_timer = interval(engine.shared.options.outbox_every);
    outbox_timer.set_missed_tick_behavior(MissedTickBehavior::Delay);
    outbox_timer.reset();
    let mut resubscribe_timer = interval(RESUBSCRIBE_EVERY);
    resubscribe_timer.reset();

    loop {
        let next = async {
            match live.as_mut() {
                Some(s) => s.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            item = next => match item {
                Some(Ok(update)) => match engine.apply_update(account, update) {
                    Ok(false) => {}
                    Ok(true) => {
                        if let Err(e) = engine.reconcile(account, connector).await {
                            return lost(e);
                        }
                    }
                    Err(e) => tracing::error!(account = %account.name, "could not store an update: {e}"),
                },
                Some(Err(e)) => return lost(e.into()),
                None => {
                    return lost(SyncError::Connector(ConnectorError::Unavailable(
                        "the live connection closed".into(),
                    )))
                }
            },
            _ = reconcile_timer.tick() => {
                match engine.reconcile(account, connector).await {
                    Ok(_) => report(live.is_some(), &push_error),
                    // A pushed channel still works while a poll hiccups:
                    // only a refused login or a polling-only account ends here.
                    Err(e @ SyncError::Connector(ConnectorError::Auth(_))) => return lost(e),
                    Err(e) if live.is_none() => return lost(e),
                    Err(e) => tracing::warn!(account = %account.name, "reconcile failed: {e}"),
                }
            }
            _ = resubscribe_timer.tick(), if push_error.is_some() => {
                if let Ok(stream) = connector.subscribe().await {
                    live = stream;
                    push_error = None;
                    if let Err(e) = engine.reconcile(account, connector).await {
                        return lost(e);
                    }
                    report(live.is_some(), &push_error);
                }
            }
            _ = outbox_timer.tick() => {
                engine.deliver_due(account, connector, None, false).await;
            }
            _ = wake.notified() => {
                engine.deliver_due(account, connector, None, true).await;
            }
            _ = stop.changed() => return Ended::Stopped,
        }
    }
}
