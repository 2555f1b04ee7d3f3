//! Answering through the event log: the rows harn itself appends, written
//! in one `BEGIN IMMEDIATE` transaction that re-reads the request first, so
//! two reviewers answering at once cannot both finalize it, and an answer
//! reaches only the ask it was given for: inside that transaction the ask
//! pending under the request id must still be the one decided (same event
//! id) with the content the reviewer saw, or nothing is written.

use crate::hitl::{
    ask_content, deadline, parse_remote_id, quorum_rules, tally, HitlKind, Tally, LEGACY_RESPONSES,
};
use crate::log::{self, append, last_row, waitpoint_topic};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};

/// A reviewer's answer, before it is written.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Approve {
        reason: Option<String>,
    },
    Deny {
        reason: Option<String>,
    },
    /// A question's answer, any JSON.
    Value {
        answer: Value,
        reason: Option<String>,
    },
    /// Accept an escalation.
    Accept {
        reason: Option<String>,
    },
}

/// What writing the answer did.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    /// The request is resolved by this answer.
    Resolved,
    /// Counted; more approvals are needed.
    Counted { approvals: usize, required: u64 },
    /// The waitpoint was no longer open: nothing was written.
    AlreadyClosed { status: String, by: Option<String> },
    /// harn asked again under the same request id with other content: the
    /// decided ask is no longer pending, and nothing was written.
    Replaced,
}

/// Why nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("`{0}` is not a harn HITL request id")]
    UnknownId(String),
    #[error("harn has no request `{0}` in this event log")]
    MissingEnvelope(String),
    #[error("this request timed out in harn and can no longer be answered")]
    TimedOut,
    #[error("the request's deadline passed at {0}; harn no longer waits for an answer")]
    DeadlinePassed(DateTime<Utc>),
    #[error("only {allowed} may answer this request; this account answers as {reviewer}")]
    NotAllowed { allowed: String, reviewer: String },
    #[error("a {kind} cannot be answered with {answer}")]
    WrongAnswer {
        kind: &'static str,
        answer: &'static str,
    },
    #[error("harn's request `{0}` changed since you decided; nothing was sent, look at it again")]
    Changed(String),
    #[error("harn has no waitpoint for `{0}`; nothing waits for this answer")]
    MissingWaitpoint(String),
    #[error("harn event log: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn headers(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
        .collect()
}

/// Writes `answer` from `reviewer` to the ask `remote_id` names
/// (`<request id>@<event id>`, see [`crate::hitl::remote_id`]), as of
/// `now`. `seen` is the request envelope the reviewer decided on.
pub fn answer(
    conn: &mut rusqlite::Connection,
    remote_id: &str,
    seen: &Value,
    reviewer: &str,
    answer: &Answer,
    now: DateTime<Utc>,
) -> Result<Written, AnswerError> {
    let (id, decided_generation) = parse_remote_id(remote_id);
    let kind = HitlKind::of_id(id).ok_or_else(|| AnswerError::UnknownId(id.into()))?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;

    // 1. Re-read everything about the request inside the write lock.
    let mut first: Option<Value> = None;
    // The ask pending now: (event id it began at, newest envelope), folded
    // as `HitlState` folds request events.
    let mut pending: Option<(i64, Value)> = None;
    let mut responses = Vec::new();
    let mut timed_out = false;
    // The legacy topic's rows come after the kind's own: its event ids
    // are another sequence, and only responses and outcomes live there.
    let own = log::rows_after(&tx, kind.topic(), 0)?;
    let legacy = log::rows_after(&tx, LEGACY_RESPONSES, 0)?;
    for (on_own_topic, row) in own
        .iter()
        .map(|r| (true, r))
        .chain(legacy.iter().map(|r| (false, r)))
        .filter(|(_, r)| r.request_id() == Some(id))
    {
        let Some(payload) = &row.payload else {
            continue;
        };
        match row.kind.as_str() {
            k if k == kind.request_event() && on_own_topic => {
                first.get_or_insert_with(|| payload.clone());
                pending = match pending.take() {
                    Some((generation, latest)) if ask_content(&latest) == ask_content(payload) => {
                        Some((generation, payload.clone()))
                    }
                    _ => Some((row.event_id, payload.clone())),
                };
            }
            "hitl.response_received" | "hitl.escalation_accepted" => {
                responses.push(payload.clone())
            }
            "hitl.timeout" => timed_out = true,
            _ => {}
        }
    }
    let first = first.ok_or_else(|| AnswerError::MissingEnvelope(id.into()))?;
    let (generation, latest) = pending.ok_or_else(|| AnswerError::MissingEnvelope(id.into()))?;
    if decided_generation.is_some_and(|g| g != generation) {
        return Ok(Written::Replaced);
    }
    let wp_topic = waitpoint_topic(id);
    let waitpoint = last_row(&tx, &wp_topic)?
        .and_then(|r| r.payload)
        .ok_or_else(|| AnswerError::MissingWaitpoint(id.into()))?;
    if timed_out {
        return Err(AnswerError::TimedOut);
    }
    if let Some(d) = deadline(kind, &first).filter(|d| *d <= now) {
        return Err(AnswerError::DeadlinePassed(d));
    }
    let (_, allow) = quorum_rules(kind, &first["payload"]);
    if !allow.is_empty() && !allow.iter().any(|a| a == reviewer) {
        return Err(AnswerError::NotAllowed {
            allowed: allow.join(", "),
            reviewer: reviewer.into(),
        });
    }
    let status = waitpoint
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("open");
    if status != "open" {
        return Ok(Written::AlreadyClosed {
            status: status.to_owned(),
            by: waitpoint
                .get("completed_by")
                .or_else(|| waitpoint.get("cancelled_by"))
                .and_then(Value::as_str)
                .map(str::to_owned),
        });
    }
    // Same ask by event id; the content check also covers ids stored
    // without one, and anything the reviewer's copy says differently.
    if ask_content(&latest) != ask_content(seen) {
        return Err(AnswerError::Changed(id.into()));
    }

    // 2. The response, as HitlHostResponse with null fields omitted.
    let responded_at = ts(now);
    let mut response = Map::new();
    response.insert("request_id".into(), json!(id));
    response.insert("reviewer".into(), json!(reviewer));
    response.insert("responded_at".into(), json!(responded_at));
    let (reason, event) = match (kind, answer) {
        (HitlKind::Approval | HitlKind::DualControl, Answer::Approve { reason }) => {
            response.insert("approved".into(), json!(true));
            (reason, "hitl.response_received")
        }
        (HitlKind::Approval | HitlKind::DualControl, Answer::Deny { reason }) => {
            response.insert("approved".into(), json!(false));
            (reason, "hitl.response_received")
        }
        (HitlKind::Question, Answer::Value { answer, reason }) => {
            response.insert("approved".into(), json!(true));
            response.insert("answer".into(), answer.clone());
            (reason, "hitl.response_received")
        }
        (HitlKind::Escalation, Answer::Accept { reason }) => {
            response.insert("approved".into(), json!(true));
            response.insert("accepted".into(), json!(true));
            (reason, "hitl.escalation_accepted")
        }
        (kind, a) => {
            return Err(AnswerError::WrongAnswer {
                kind: kind.as_str(),
                answer: match a {
                    Answer::Approve { .. } => "an approval",
                    Answer::Deny { .. } => "a denial",
                    Answer::Value { .. } => "an answer value",
                    Answer::Accept { .. } => "an acceptance",
                },
            })
        }
    };
    if let Some(r) = reason {
        response.insert("reason".into(), json!(r));
    }
    let response = Value::Object(response);
    let now_ms = now.timestamp_millis();
    append(
        &tx,
        kind.topic(),
        event,
        &response,
        headers(&[("request_id", id)]),
        now_ms,
    )?;
    responses.push(response.clone());

    // 3. Finalize when this answer resolves the request.
    let trace_id = first
        .get("trace_id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let mut wp = waitpoint.as_object().cloned().unwrap_or_default();
    let outcome = match kind {
        HitlKind::Question => {
            wp.insert("value".into(), response["answer"].clone());
            complete(&mut wp, reviewer, &responded_at, response.get("reason"));
            Written::Resolved
        }
        HitlKind::Escalation => {
            let value = json!({"accepted": true, "reviewer": reviewer,
                "reason": response.get("reason").cloned().unwrap_or(Value::Null),
                "responded_at": responded_at});
            wp.insert("value".into(), value);
            complete(&mut wp, reviewer, &responded_at, response.get("reason"));
            Written::Resolved
        }
        HitlKind::Approval | HitlKind::DualControl => {
            let prefix = if kind == HitlKind::DualControl {
                "hitl.dual_control"
            } else {
                "hitl.approval"
            };
            let h = headers(&[("request_id", id), ("trace_id", &trace_id)]);
            match tally(kind, id, &first, &responses) {
                Tally::Pending { approvers } => {
                    tx.commit()?;
                    let (quorum, _) = quorum_rules(kind, &first["payload"]);
                    return Ok(Written::Counted {
                        approvals: approvers.len(),
                        required: quorum,
                    });
                }
                Tally::Approved { record, last } => {
                    append(
                        &tx,
                        kind.topic(),
                        &format!("{prefix}_approved"),
                        &json!({"request_id": id, "record": record}),
                        h,
                        now_ms,
                    )?;
                    wp.insert("value".into(), record.clone());
                    complete(
                        &mut wp,
                        last.as_deref().unwrap_or(reviewer),
                        &responded_at,
                        record.get("reason"),
                    );
                    Written::Resolved
                }
                Tally::Denied {
                    reviewer: by,
                    reason,
                } => {
                    append(
                        &tx,
                        kind.topic(),
                        &format!("{prefix}_denied"),
                        &json!({"request_id": id, "reviewer": by, "reason": reason}),
                        h,
                        now_ms,
                    )?;
                    wp.insert("status".into(), json!("cancelled"));
                    wp.insert("cancelled_at".into(), json!(responded_at));
                    wp.insert("cancelled_by".into(), json!(by));
                    wp.insert("reason".into(), json!(reason));
                    Written::Resolved
                }
            }
        }
    };
    append(
        &tx,
        &wp_topic,
        "waitpoint.state",
        &Value::Object(wp),
        headers(&[("waitpoint_id", id)]),
        now_ms,
    )?;
    append(
        &tx,
        "waitpoint.resumes",
        "waitpoint.resume",
        &json!({"waitpoint_id": id, "requested_at": responded_at, "reason": "waitpoint_changed"}),
        Map::new(),
        now_ms,
    )?;
    tx.commit()?;
    Ok(outcome)
}

fn complete(wp: &mut Map<String, Value>, by: &str, at: &str, reason: Option<&Value>) {
    wp.insert("status".into(), json!("completed"));
    wp.insert("completed_at".into(), json!(at));
    wp.insert("completed_by".into(), json!(by));
    wp.insert("reason".into(), reason.cloned().unwrap_or(Value::Null));
}
