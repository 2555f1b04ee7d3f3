//! The one interface every agent platform implements, and what flows
//! through it.
//!
//! A connector knows one platform's protocol and nothing else: no storage,
//! no retries, no timers. The sync engine drives it: [`Connector::reconcile`]
//! after every (re)connect and on a timer, [`Connector::subscribe`] for the
//! live channel where the platform pushes, [`Connector::deliver`] for
//! decisions from the outbox. Base URL, credentials, clock and HTTP client
//! are given to the connector when it is built.

pub mod http;
pub mod session;

pub use session::{SessionLock, SessionStore};

use async_trait::async_trait;
use countersign_model::{Decision, ObservedActivity, ObservedRequest, Request, Resolution, Status};
use futures::stream::BoxStream;
use std::time::Duration;

/// Why a platform call failed. The engine decides what to do from the
/// variant; the message is for people and never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// Credentials refused. Retrying without new credentials is pointless.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// The platform asked us to slow down.
    #[error("rate limited by the platform; retry in {}s", retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    /// The platform could not be reached or answered "not now" (5xx): try
    /// again later. For a delivery this means *not sent* (the connection
    /// never opened, so the platform never saw the request) or refused for
    /// now; sending it again at the normal back-off is safe.
    #[error("platform unavailable: {0}")]
    Unavailable(String),
    /// The platform refused this one call for good (bad request, not allowed).
    #[error("{0}")]
    Rejected(String),
    /// The platform answered something this connector does not understand.
    #[error("unexpected answer from the platform: {0}")]
    Protocol(String),
    /// *Sent, outcome unknown*: the request left (a timeout or reset after
    /// it was written, a proxy that gave up waiting), so the decision may
    /// or may not have been applied, and the platform may still be working
    /// on it. Sending it again could apply it twice: the engine waits, and
    /// the connector reads the platform's state before any re-send
    /// ([`Decision::unsure_since`] says since when this is so).
    #[error("{0}")]
    Uncertain(String),
}

impl ConnectorError {
    /// The error of a call made *before* a decision was sent (a read of the
    /// platform's state): whatever happened to that read, the decision
    /// itself did not leave, so an uncertain read is "not sent".
    pub fn before_sending(self) -> Self {
        match self {
            ConnectorError::Uncertain(why) => ConnectorError::Unavailable(format!(
                "not sent, the check before sending failed: {why}"
            )),
            other => other,
        }
    }

    /// True when the same call may succeed later without the user acting.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ConnectorError::RateLimited { .. }
                | ConnectorError::Unavailable(_)
                | ConnectorError::Protocol(_)
                | ConnectorError::Uncertain(_)
        )
    }
}

/// Everything pending on the platform right now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub pending: Vec<ObservedRequest>,
    /// The platform capped the list: a request missing from it may still be
    /// pending, unless it is newer than the oldest one listed.
    pub truncated: bool,
    /// Activity the platform only offers by listing.
    pub activity: Vec<ObservedActivity>,
    /// One line about the pass for the account's health line ("watching
    /// 42 threads in 2 workspaces"); `None` leaves the last one standing.
    pub note: Option<String>,
}

/// One thing the live channel reported.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// A new request, or news about one.
    Request(Box<ObservedRequest>),
    /// A request left the pending list.
    Resolved(Resolution),
    Activity(ObservedActivity),
    /// The channel may have lost events; reconcile now.
    Resync,
}

/// The live channel. It ends when the connection drops; an `Err` item is
/// logged and the engine reconnects.
pub type UpdateStream = BoxStream<'static, Result<Update, ConnectorError>>;

/// What the platform did with a decision.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivered {
    /// Taken.
    Confirmed,
    /// Taken, but the platform did not do what the decision says (SurfSense
    /// v0.0.38 runs on after a deny of its doom-loop guard); the text says
    /// what happened, for the reviewer.
    ConfirmedWithNote(String),
    /// Someone or something answered it first; how, if the platform says.
    ResolvedElsewhere(Resolution),
}

/// One agent platform, for one account.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Everything pending now. Called after every (re)connect, and on a
    /// timer, because push channels lose messages.
    async fn reconcile(&self) -> Result<Snapshot, ConnectorError>;

    /// Opens the live channel; `Ok(None)` when the platform has no push,
    /// in which case the engine polls [`Connector::reconcile`].
    async fn subscribe(&self) -> Result<Option<UpdateStream>, ConnectorError>;

    /// How often to reconcile: the poll interval without push, a safety net
    /// with it.
    fn reconcile_interval(&self) -> Duration;

    /// Learns how requests that left the pending list ended. The default
    /// knows nothing more than that they are gone.
    async fn resolve_missing(&self, gone: &[Request]) -> Result<Vec<Resolution>, ConnectorError> {
        Ok(gone
            .iter()
            .map(|r| resolved_elsewhere(&r.remote_id))
            .collect())
    }

    /// Sends one decision. `decision.attempts` counts this attempt, so a
    /// connector can tell a first try from a retry, and
    /// `decision.unsure_since` tells that an earlier attempt was sent with
    /// no answer. Every connector reads the platform's state first and
    /// sends nothing for a request that is no longer pending. A failure
    /// says whether the request left: [`ConnectorError::Unavailable`] (not
    /// sent) or [`ConnectorError::Uncertain`] (sent, outcome unknown).
    async fn deliver(
        &self,
        request: &Request,
        decision: &Decision,
    ) -> Result<Delivered, ConnectorError>;

    /// Sends the decisions of one group (requests sharing
    /// `extra.group`) in one call. Returns one result per item, in order:
    /// usually the same for all, but an ask that was replaced on the
    /// platform ends on its own while the others wait or go. Only
    /// connectors that put requests in groups are asked; the default sends
    /// them one by one.
    async fn deliver_group(
        &self,
        items: &[(Request, Decision)],
    ) -> Vec<Result<Delivered, ConnectorError>> {
        let mut out = Vec::with_capacity(items.len());
        for (request, decision) in items {
            out.push(self.deliver(request, decision).await);
        }
        out
    }

    /// A cheap call that tells whether the platform answers again, made
    /// every few seconds while a decision waits for it. The default is a
    /// full [`Connector::reconcile`]; connectors with a lighter call
    /// override it.
    async fn probe(&self) -> Result<(), ConnectorError> {
        self.reconcile().await.map(|_| ())
    }

    /// Marks an activity item read on the platform, where it can.
    async fn mark_activity_read(&self, _remote_id: &str) -> Result<(), ConnectorError> {
        Ok(())
    }
}

/// A resolution that says only "not pending any more".
pub fn resolved_elsewhere(remote_id: &str) -> Resolution {
    Resolution {
        remote_id: remote_id.to_owned(),
        status: Status::ResolvedElsewhere,
        outcome: None,
        decided_by: None,
        decided_at: None,
    }
}
