//! harn's HITL records in Countersign's shape: requests with their kind,
//! progress, proposal flag and allow-list, how ended ones ended, and the
//! activity feed from proposals and trust records.

use crate::hitl::{deadline, parse_time, tally, Entry, HitlKind, HitlState, Tally, Terminal};
use crate::log::Row;
use chrono::{DateTime, TimeZone, Utc};
use countersign_model::{
    AllowedDecision, Fact, Kind, ObservedActivity, ObservedRequest, Progress, RequestExtra,
    Resolution, Status,
};
use serde_json::{json, Value};

/// Why an entry is not answerable, or `None` while it is.
pub fn ended(
    state: &HitlState,
    e: &Entry,
    reviewer: &str,
    now: DateTime<Utc>,
) -> Option<Resolution> {
    let res = |status, outcome: Option<String>, by: Option<String>, at: Option<DateTime<Utc>>| {
        Some(Resolution {
            remote_id: e.remote_id(),
            status,
            outcome,
            decided_by: by,
            decided_at: at,
        })
    };
    let ours = |by: &Option<String>| by.as_deref() == Some(reviewer);
    match state.terminals.get(&e.id) {
        Some(Terminal::Approved { record }) => {
            let reviewers = crate::hitl::strings(record.get("reviewers"));
            let status = if reviewers.iter().any(|r| r == reviewer) {
                Status::Approved
            } else {
                Status::ResolvedElsewhere
            };
            let by = (!reviewers.is_empty()).then(|| reviewers.join(", "));
            let at = record.get("approved_at").and_then(parse_time);
            return res(status, Some("approved".into()), by, at);
        }
        Some(Terminal::Denied {
            reviewer: by,
            reason,
        }) => {
            let status = if ours(by) {
                Status::Denied
            } else {
                Status::ResolvedElsewhere
            };
            let outcome = match reason {
                Some(r) if !r.is_empty() => format!("denied: {r}"),
                _ => "denied".into(),
            };
            return res(status, Some(outcome), by.clone(), None);
        }
        Some(Terminal::Answered { response }) | Some(Terminal::Accepted { response }) => {
            let by = response
                .get("reviewer")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let status = if ours(&by) {
                Status::Approved
            } else {
                Status::ResolvedElsewhere
            };
            let word = if e.kind == HitlKind::Escalation {
                "accepted"
            } else {
                "answered"
            };
            let at = response.get("responded_at").and_then(parse_time);
            return res(status, Some(word.into()), by, at);
        }
        Some(Terminal::Executed) => {
            return res(
                Status::ResolvedElsewhere,
                Some("approved and executed".into()),
                None,
                None,
            )
        }
        Some(Terminal::TimedOut { at }) => {
            let at = at.as_ref().and_then(|a| parse_time(&json!(a)));
            return res(Status::Expired, Some("timed out".into()), None, at);
        }
        None => {}
    }
    if let Some(wp) = state.waitpoints.get(&e.id) {
        match wp.get("status").and_then(Value::as_str) {
            Some("open") | None => {}
            Some(status) => {
                let reason = wp.get("reason").and_then(Value::as_str);
                if reason == Some("upstream_cancelled") {
                    return res(
                        Status::Cancelled,
                        Some("cancelled by the agent".into()),
                        None,
                        None,
                    );
                }
                let by = wp
                    .get("completed_by")
                    .or_else(|| wp.get("cancelled_by"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let status_word = if status == "completed" {
                    "completed"
                } else {
                    "cancelled"
                };
                let s = if ours(&by) {
                    if status == "completed" {
                        Status::Approved
                    } else {
                        Status::Denied
                    }
                } else {
                    Status::ResolvedElsewhere
                };
                return res(s, Some(status_word.into()), by, None);
            }
        }
    }
    if deadline(e.kind, &e.first).is_some_and(|d| d <= now) {
        return res(
            Status::Expired,
            Some("deadline passed".into()),
            None,
            deadline(e.kind, &e.first),
        );
    }
    None
}

/// How an ask ended that harn replaced by asking again under the same
/// request id with other content: nothing was sent for it.
pub fn replaced(remote_id: &str) -> Resolution {
    Resolution {
        outcome: Some("asked again under the same id with other content".into()),
        ..countersign_connector::resolved_elsewhere(remote_id)
    }
}

/// A request is a proposal when nobody waits on its answer.
pub fn is_proposal(state: &HitlState, e: &Entry) -> bool {
    let action = e
        .latest
        .pointer("/payload/action")
        .and_then(Value::as_str)
        .unwrap_or("");
    state.proposals.contains(&e.id)
        || action.ends_with("#needs-human")
        || action.starts_with("approve autonomous dispatch")
}

fn fact(facts: &mut Vec<Fact>, name: &str, value: Option<&Value>) {
    if let Some(v) = value {
        let empty = v.is_null()
            || v.as_str().is_some_and(str::is_empty)
            || v.as_array().is_some_and(Vec::is_empty);
        if !empty {
            facts.push(Fact {
                name: name.into(),
                value: v.clone(),
            });
        }
    }
}

fn nonempty(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// A pending entry as an inbox request.
pub fn request(
    state: &HitlState,
    e: &Entry,
    reviewer: &str,
    route: Value,
    link: Option<String>,
) -> ObservedRequest {
    let env = &e.latest;
    let p = env.get("payload").cloned().unwrap_or(Value::Null);
    let created_at = env
        .get("requested_at")
        .and_then(parse_time)
        .unwrap_or_else(|| Utc.timestamp_opt(0, 0).single().unwrap_or_default());
    let agent = nonempty(env.get("agent")).or_else(|| nonempty(p.get("principal")));
    let mut facts = Vec::new();
    fact(&mut facts, "Trace", env.get("trace_id"));
    fact(&mut facts, "Run", env.get("run_id"));
    let proposal = is_proposal(state, e);
    let mut extra = RequestExtra {
        proposal,
        ..Default::default()
    };
    let mut tier = None;
    let (kind, title, action, arguments, description, allowed) = match e.kind {
        HitlKind::Approval | HitlKind::DualControl => {
            let action = p
                .get("action")
                .and_then(Value::as_str)
                .unwrap_or("approval")
                .to_owned();
            fact(&mut facts, "Principal", p.get("principal"));
            let (quorum, allow) = crate::hitl::quorum_rules(e.kind, &e.first["payload"]);
            if !allow.is_empty() {
                fact(
                    &mut facts,
                    if e.kind == HitlKind::DualControl {
                        "Approvers"
                    } else {
                        "Reviewers"
                    },
                    Some(&json!(allow)),
                );
            }
            fact(
                &mut facts,
                "Capabilities requested",
                p.get("capabilities_requested"),
            );
            fact(&mut facts, "Evidence", p.get("evidence_refs"));
            fact(&mut facts, "Undo", p.get("undo_metadata"));
            if e.kind == HitlKind::Approval {
                fact(&mut facts, "Detail", p.get("detail"));
            }
            let responses = state.responses.get(&e.id).map(Vec::as_slice).unwrap_or(&[]);
            let approvers = match tally(e.kind, &e.id, &e.first, responses) {
                Tally::Pending { approvers } => approvers,
                _ => Vec::new(),
            };
            let earlier = state.earlier_approvers(e, &approvers);
            fact(
                &mut facts,
                "Approved an earlier version",
                Some(&json!(earlier)),
            );
            if quorum > 1 || e.kind == HitlKind::DualControl {
                extra.progress = Some(Progress {
                    approvals: approvers.len() as u32,
                    required: quorum as u32,
                    approvers: approvers.clone(),
                });
            }
            if let Some(class) = p.pointer("/detail/action_class").and_then(Value::as_str) {
                fact(&mut facts, "Action class", Some(&json!(class)));
                tier = Some(
                    if proposal {
                        "suggest"
                    } else {
                        "act_with_approval"
                    }
                    .to_owned(),
                );
            }
            if action.ends_with("#needs-human") {
                tier = Some("needs-human".into());
            } else if proposal && tier.is_none() {
                tier = Some("suggest".into());
            }
            let (title, label) = if e.kind == HitlKind::DualControl {
                let m = p.get("m").and_then(Value::as_u64).unwrap_or(quorum);
                (
                    format!("Dual control: {action} ({quorum} of {m})"),
                    "dual control",
                )
            } else {
                (action.clone(), "approval")
            };
            extra.label = Some(label.into());
            if !allow.is_empty() && !allow.iter().any(|a| a == reviewer) {
                extra.read_only = Some(format!(
                    "Only {} may answer this; this account answers as {reviewer}.",
                    allow.join(", ")
                ));
            } else if earlier.iter().any(|a| a == reviewer) {
                extra.read_only = Some(format!(
                    "{reviewer} approved an earlier version of this request; harn still counts that approval and takes no second answer from {reviewer}."
                ));
            } else if approvers.iter().any(|a| a == reviewer) {
                extra.read_only = Some(format!(
                    "{reviewer} has approved; waiting for other reviewers."
                ));
            }
            let args = p.get("args").cloned().unwrap_or(Value::Null);
            (
                Kind::Approval,
                title,
                action,
                args,
                None,
                vec![AllowedDecision::Approve, AllowedDecision::Deny],
            )
        }
        HitlKind::Question => {
            let prompt = p
                .get("prompt")
                .and_then(Value::as_str)
                .unwrap_or("Question")
                .to_owned();
            fact(&mut facts, "Default answer", p.get("default"));
            extra.label = Some("question".into());
            extra.answer_schema = p.get("schema").filter(|s| !s.is_null()).cloned();
            let mut args = serde_json::Map::new();
            for k in ["schema", "default"] {
                if let Some(v) = p.get(k).filter(|v| !v.is_null()) {
                    args.insert(k.into(), v.clone());
                }
            }
            (
                Kind::Question,
                prompt.clone(),
                "ask_user".to_owned(),
                Value::Object(args),
                // A long prompt is cut in the list; show it whole below.
                (prompt.chars().count() > 100).then_some(prompt),
                vec![AllowedDecision::Respond],
            )
        }
        HitlKind::Escalation => {
            let role = p.get("role").and_then(Value::as_str).unwrap_or("someone");
            extra.label = Some("escalation".into());
            fact(&mut facts, "Role", p.get("role"));
            (
                Kind::Escalation,
                format!("Escalation to {role}"),
                "escalate_to".to_owned(),
                p.get("capability_policy").cloned().unwrap_or(Value::Null),
                nonempty(p.get("reason")),
                vec![AllowedDecision::Approve],
            )
        }
    };
    extra.facts = facts;
    let allowed_decisions = if extra.read_only.is_some() {
        Vec::new()
    } else {
        allowed
    };
    ObservedRequest {
        remote_id: e.remote_id(),
        route,
        kind,
        title,
        action,
        // The store (and the UI) want an object; harn sends null for none.
        arguments: if arguments.is_null() {
            json!({})
        } else {
            arguments
        },
        description,
        agent,
        tier,
        created_at,
        deadline: deadline(e.kind, &e.first),
        allowed_decisions,
        link,
        extra,
        raw: env.clone(),
    }
}

fn ms_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// An activity row (proposal or trust record) as an Activity item.
pub fn activity(row: &Row) -> Option<ObservedActivity> {
    let p = row.payload.as_ref()?;
    let s = |k: &str| p.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    let occurred_at = p
        .get("timestamp")
        .and_then(parse_time)
        .unwrap_or_else(|| ms_time(row.occurred_at_ms));
    if row.kind == "trust_recorded" {
        let action = s("action").unwrap_or("action");
        let outcome = s("outcome").unwrap_or("recorded");
        let tier = s("autonomy_tier").unwrap_or("unknown tier");
        let approver = s("approver")
            .map(|a| format!(", approved by {a}"))
            .unwrap_or_default();
        Some(ObservedActivity {
            remote_id: s("entry_hash")
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{}#{}", row.topic, row.event_id)),
            event_type: "trust_recorded".into(),
            title: format!("{action}: {outcome} ({tier}{approver})"),
            agent: s("agent").map(str::to_owned),
            details: p.clone(),
            occurred_at,
            raw: p.clone(),
            request_remote_id: p
                .pointer("/metadata/approval_request_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    } else {
        let what = s("builtin").or(s("action_class")).unwrap_or("an action");
        let class = s("action_class")
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        let tier = s("autonomy_tier").unwrap_or("shadow");
        let trigger = s("action").map(|a| format!(" on {a}")).unwrap_or_default();
        Some(ObservedActivity {
            remote_id: format!("{}#{}", row.topic, row.event_id),
            event_type: "dispatch_proposed".into(),
            title: format!("Proposed {what}{class}{trigger}, not run ({tier} tier)"),
            agent: s("agent").map(str::to_owned),
            details: p.clone(),
            occurred_at,
            raw: p.clone(),
            request_remote_id: None,
        })
    }
}
