//! A reviewer's decision and its journey to the platform.

use crate::named_enum;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the reviewer decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Approve,
    Deny,
    /// Approve with `edited_arguments`.
    Edit,
    /// Answer with `response`.
    Respond,
    AlwaysAllow,
}
named_enum!(Outcome, "outcome", {
    Approve => "approve",
    Deny => "deny",
    Edit => "edit",
    Respond => "respond",
    AlwaysAllow => "always_allow",
});

impl Outcome {
    /// The request status this outcome leads to once the platform takes it.
    pub fn resulting_status(self) -> crate::Status {
        match self {
            Outcome::Deny => crate::Status::Denied,
            _ => crate::Status::Approved,
        }
    }

    /// The permission this outcome needs from the request.
    pub fn requires(self) -> crate::AllowedDecision {
        use crate::AllowedDecision as A;
        match self {
            Outcome::Approve => A::Approve,
            Outcome::Deny => A::Deny,
            Outcome::Edit => A::Edit,
            Outcome::Respond => A::Respond,
            Outcome::AlwaysAllow => A::AlwaysAllow,
        }
    }
}

/// Where a decision is on its way to the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Written locally, not yet handed to the platform (or to be retried).
    Queued,
    /// Handed to the platform; no answer yet. A sender that dies here leaves
    /// the decision to be re-read after its lease runs out.
    Sent,
    /// The platform accepted it.
    Confirmed,
    /// The platform refused it for good; `error` says why.
    Failed,
}
named_enum!(Delivery, "delivery", {
    Queued => "queued",
    Sent => "sent",
    Confirmed => "confirmed",
    Failed => "failed",
});

/// A decision as the reviewer makes it, before it is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct DecisionDraft {
    #[ts(type = "number")]
    pub request_id: i64,
    pub outcome: Outcome,
    pub comment: Option<String>,
    pub edited_arguments: Option<Value>,
    pub response: Option<String>,
    pub decided_by: String,
    pub decided_at: DateTime<Utc>,
}

/// A stored decision: the draft plus its delivery state. Doubles as the
/// outbox entry until it is confirmed or failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct Decision {
    #[ts(type = "number")]
    pub id: i64,
    #[ts(type = "number")]
    pub request_id: i64,
    pub outcome: Outcome,
    pub comment: Option<String>,
    pub edited_arguments: Option<Value>,
    pub response: Option<String>,
    pub decided_by: String,
    pub decided_at: DateTime<Utc>,
    pub delivery: Delivery,
    pub error: Option<String>,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub confirmed_at: Option<DateTime<Utc>>,
    /// What the platform did beyond taking the decision, when that is not
    /// what the decision says ("SurfSense continued the run despite the
    /// deny"). Shown wherever the decision is.
    #[serde(default)]
    pub note: Option<String>,
    /// Since when an attempt of this decision was sent with no answer (a
    /// timeout or reset after the request left): it may have been applied
    /// and may still be running, so it is not sent again before the
    /// platform's state says how it ended. `None` while every failed
    /// attempt is known not to have been taken (e.g. connection refused).
    #[serde(default)]
    pub unsure_since: Option<DateTime<Utc>>,
}
