//! A fake harn (`shared/protocols/harn.md`, harn-cli 0.10.185): a writer of
//! a harn-format SQLite event log that behaves like harn's HITL layer —
//! request envelopes and waitpoints, waiters polling every 100 ms, harn's
//! own (non-transactional) response handling, replays, non-blocking
//! proposals and trust records — and a fake `harn serve api` ([`api`]).
//!
//! It is written from the protocol document, independently of the
//! connector, so the connector's tests check one against the other.

pub mod api;
mod log;

pub use log::{verify_log, FakeHarnLog};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};
use std::time::Duration;

/// RFC 3339 UTC with nanoseconds, as harn writes `requested_at`.
pub fn harn_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// Options of `request_approval`.
#[derive(Debug, Clone)]
pub struct ApprovalOptions {
    pub args: Option<Value>,
    pub detail: Option<Value>,
    pub reviewers: Vec<String>,
    pub quorum: Option<u64>,
    pub deadline: Option<Duration>,
    pub capabilities: Vec<String>,
    pub principal: String,
    /// Binding id inside a trigger dispatch, `""` outside.
    pub agent: String,
    pub evidence: Vec<Value>,
    pub undo: Value,
}

impl Default for ApprovalOptions {
    fn default() -> Self {
        Self {
            args: None,
            detail: None,
            reviewers: Vec::new(),
            quorum: Some(1),
            deadline: Some(Duration::from_secs(24 * 3600)),
            capabilities: Vec::new(),
            principal: String::new(),
            agent: String::new(),
            evidence: Vec::new(),
            undo: Value::Null,
        }
    }
}

/// What a waiting script got back (§5.4).
#[derive(Debug, Clone, PartialEq)]
pub enum WaitOutcome {
    /// Approval record, answer value, or escalation acceptance.
    Completed(Value),
    /// `ApprovalDeniedError`.
    Denied {
        reviewer: Option<String>,
        reason: Option<String>,
    },
    /// `HumanCancelledError`.
    Cancelled,
    /// `HumanTimeoutError`; `hitl.timeout` was written.
    TimedOut,
}

/// The payload of an approval request (§4), both nested and flat fields.
pub fn approval_payload(id: &str, action: &str, o: &ApprovalOptions, now: DateTime<Utc>) -> Value {
    let requested_at = harn_time(now);
    let deadline = o
        .deadline
        .map(|d| harn_time(now + chrono::Duration::from_std(d).unwrap_or_default()));
    let args = o
        .args
        .clone()
        .or_else(|| o.detail.clone())
        .unwrap_or(Value::Null);
    let quorum = o.quorum.unwrap_or(1);
    let mut inner = json!({
        "action": action, "approvers_required": quorum, "args": args,
        "capabilities_requested": o.capabilities, "evidence_refs": o.evidence, "id": id,
        "principal": o.principal, "requested_at": requested_at, "undo_metadata": o.undo,
    });
    if let Some(d) = &deadline {
        inner["deadline"] = json!(d);
    }
    let mut p = json!({
        "action": action, "approval_request": inner, "approvers_required": quorum, "args": args,
        "capabilities_requested": o.capabilities, "deadline": deadline,
        "deadline_ms": o.deadline.map(|d| d.as_millis() as u64),
        "detail": o.detail, "evidence_refs": o.evidence, "id": id, "principal": o.principal,
        "requested_at": requested_at, "reviewers": o.reviewers, "undo_metadata": o.undo,
    });
    match o.quorum {
        Some(q) => p["quorum"] = json!(q),
        None => {
            p.as_object_mut().map(|m| m.remove("quorum"));
        }
    }
    p
}
