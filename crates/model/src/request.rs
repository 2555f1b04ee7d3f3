//! Requests (something an agent waits on) and activity items (something an
//! agent did and only reported), as observed from a platform and as stored.

use crate::{named_enum, Platform};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the agent is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Yes or no on an action the agent wants to take.
    Approval,
    /// A question that wants an answer in words or a form.
    Question,
    /// A non-blocking item: answering it records a decision but the agent
    /// does not wait for it (proposals, reports).
    Activity,
    /// A task handed up to a person or role, to be accepted.
    Escalation,
}
named_enum!(Kind, "kind", {
    Approval => "approval",
    Question => "question",
    Activity => "activity",
    Escalation => "escalation",
});

/// Where a request stands. Only `Pending` is actionable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    /// Approved by this Countersign user (the platform confirmed it or it is
    /// queued; the decision's delivery state says which).
    Approved,
    /// Denied by this Countersign user.
    Denied,
    /// The platform let it time out.
    Expired,
    /// Someone or something else answered it on the platform.
    ResolvedElsewhere,
    /// The agent withdrew it.
    Cancelled,
}
named_enum!(Status, "status", {
    Pending => "pending",
    Approved => "approved",
    Denied => "denied",
    Expired => "expired",
    ResolvedElsewhere => "resolved_elsewhere",
    Cancelled => "cancelled",
});

impl Status {
    pub fn is_pending(self) -> bool {
        self == Status::Pending
    }
}

/// The answers a platform accepts for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum AllowedDecision {
    Approve,
    Deny,
    /// Approve with edited arguments.
    Edit,
    /// Answer with free text (or a form value).
    Respond,
    /// Approve this and matching requests from now on.
    AlwaysAllow,
}
named_enum!(AllowedDecision, "decision", {
    Approve => "approve",
    Deny => "deny",
    Edit => "edit",
    Respond => "respond",
    AlwaysAllow => "always_allow",
});

/// A request exactly as a connector understood it, before it is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedRequest {
    /// The platform's id for it; unique within an account.
    pub remote_id: String,
    /// Whatever else the platform needs to answer it (workspace id, thread
    /// id, interrupt id…), opaque to everything but the connector.
    pub route: Value,
    pub kind: Kind,
    pub title: String,
    /// The action or tool name.
    pub action: String,
    pub arguments: Value,
    pub description: Option<String>,
    pub agent: Option<String>,
    /// The platform's own tier or risk label, kept raw (L3, act_with_approval…).
    pub tier: Option<String>,
    pub created_at: DateTime<Utc>,
    pub deadline: Option<DateTime<Utc>>,
    pub allowed_decisions: Vec<AllowedDecision>,
    /// A link back to the request on the platform, where it has one.
    pub link: Option<String>,
    /// What the platform says beyond the common fields.
    #[serde(default)]
    pub extra: RequestExtra,
    /// The payload exactly as received.
    pub raw: Value,
}

impl ObservedRequest {
    /// What its agent-written text hides, as a warning line (see
    /// [`crate::text::inspect`]); `None` when nothing is hidden.
    pub fn hidden(&self) -> Option<String> {
        crate::text::inspect(
            [
                self.title.as_str(),
                self.action.as_str(),
                self.description.as_deref().unwrap_or(""),
                self.agent.as_deref().unwrap_or(""),
            ],
            Some(&self.arguments),
        )
    }
}

/// What some platforms say about a request beyond the common fields:
/// progress towards a quorum, whether anyone waits on it, why this account
/// may not answer, the shape an answer must have, and named facts to show.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
#[serde(default)]
pub struct RequestExtra {
    /// The platform's own name for this kind of request ("dual control").
    pub label: Option<String>,
    /// Approvals counted so far, for requests that need several reviewers.
    pub progress: Option<Progress>,
    /// Nobody waits on the answer: answering records a decision and
    /// executes nothing.
    pub proposal: bool,
    /// Why this account cannot answer it (e.g. not on its reviewer list).
    /// Set, the request is shown but answering is refused.
    pub read_only: Option<String>,
    /// A JSON schema a response must satisfy.
    pub answer_schema: Option<Value>,
    /// Named facts worth showing (trace id, capabilities, evidence…), in
    /// the platform's order. Values are raw JSON from the agent.
    pub facts: Vec<Fact>,
    /// Requests the platform takes only together, in one call (all pending
    /// asks of a SurfSense thread). A decision on one is held locally until
    /// every request of its group is decided, then all go at once.
    pub group: Option<Group>,
    /// The platform drops a decision's comment (SurfSense keeps no reject
    /// feedback): the comment stays in Countersign's history only.
    pub comment_not_sent: bool,
}

/// A set of requests answered together; see [`RequestExtra::group`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct Group {
    /// Unique within the account ("thread:318").
    pub key: String,
    /// What to call it in the UI ("thread “Clean up drafts”").
    pub label: String,
}

impl RequestExtra {
    pub fn is_empty(&self) -> bool {
        self == &RequestExtra::default()
    }
}

/// "k of n approved".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct Progress {
    pub approvals: u32,
    pub required: u32,
    /// Who approved so far.
    pub approvers: Vec<String>,
}

/// One named value from the platform, shown as text or a JSON tree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct Fact {
    pub name: String,
    pub value: Value,
}

/// How a request left the pending list, as the platform tells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resolution {
    pub remote_id: String,
    /// `Expired`, `ResolvedElsewhere` or `Cancelled` for outcomes decided
    /// outside Countersign; `Approved`/`Denied` only when the platform
    /// credits this account's reviewer with the decision.
    pub status: Status,
    /// What the platform says happened, in its words ("approved", "denied").
    pub outcome: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
}

/// A stored request: what was observed plus local bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct Request {
    /// Stable local id, the one the CLI and the UI use.
    #[ts(type = "number")]
    pub id: i64,
    #[ts(type = "number")]
    pub account_id: i64,
    pub account: String,
    pub platform: Platform,
    pub remote_id: String,
    pub route: Value,
    pub kind: Kind,
    pub title: String,
    pub action: String,
    pub arguments: Value,
    pub description: Option<String>,
    pub agent: Option<String>,
    pub tier: Option<String>,
    pub created_at: DateTime<Utc>,
    pub deadline: Option<DateTime<Utc>>,
    pub allowed_decisions: Vec<AllowedDecision>,
    pub link: Option<String>,
    pub extra: RequestExtra,
    pub status: Status,
    /// For requests resolved outside Countersign: the platform's outcome.
    pub outcome: Option<String>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub comment: Option<String>,
    pub raw: Value,
    pub first_seen_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When it left `pending` (decided, expired, resolved elsewhere,
    /// cancelled): the time history is ordered by. `None` while pending.
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    /// Out of the inbox list until then (snoozed by the reviewer).
    #[serde(default)]
    pub snoozed_until: Option<DateTime<Utc>>,
    /// What its text hides (hidden characters, mixed-script words), as a
    /// warning line; `None` when nothing is hidden.
    #[serde(default)]
    pub hidden: Option<String>,
}

impl Request {
    /// What the store makes of a newly observed request: pending, first
    /// seen when it was created. For connectors' tests, which need a stored
    /// request without a store.
    pub fn observed_as_pending(
        o: &ObservedRequest,
        id: i64,
        account: &str,
        platform: Platform,
    ) -> Request {
        Request {
            id,
            account_id: 1,
            account: account.to_owned(),
            platform,
            remote_id: o.remote_id.clone(),
            route: o.route.clone(),
            kind: o.kind,
            title: o.title.clone(),
            action: o.action.clone(),
            arguments: o.arguments.clone(),
            description: o.description.clone(),
            agent: o.agent.clone(),
            tier: o.tier.clone(),
            created_at: o.created_at,
            deadline: o.deadline,
            allowed_decisions: o.allowed_decisions.clone(),
            link: o.link.clone(),
            extra: o.extra.clone(),
            status: Status::Pending,
            outcome: None,
            decided_by: None,
            decided_at: None,
            comment: None,
            raw: o.raw.clone(),
            first_seen_at: o.created_at,
            updated_at: o.created_at,
            ended_at: None,
            snoozed_until: None,
            hidden: o.hidden(),
        }
    }

    pub fn allows(&self, decision: AllowedDecision) -> bool {
        self.allowed_decisions.contains(&decision)
    }
}

/// Something an agent did, or a platform event a reviewer cares about, as a
/// connector understood it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObservedActivity {
    /// Unique within an account; connectors derive one from the event's
    /// content when the platform gives none, so replays dedupe.
    pub remote_id: String,
    pub event_type: String,
    pub title: String,
    pub agent: Option<String>,
    pub details: Value,
    pub occurred_at: DateTime<Utc>,
    pub raw: Value,
    /// The request this item reports on (a tool's result, an escalation),
    /// by the platform's id.
    pub request_remote_id: Option<String>,
}

/// A stored activity item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct Activity {
    #[ts(type = "number")]
    pub id: i64,
    #[ts(type = "number")]
    pub account_id: i64,
    pub account: String,
    pub platform: Platform,
    pub remote_id: String,
    pub event_type: String,
    pub title: String,
    pub agent: Option<String>,
    pub details: Value,
    pub occurred_at: DateTime<Utc>,
    pub read: bool,
    pub raw: Value,
    pub request_remote_id: Option<String>,
}
