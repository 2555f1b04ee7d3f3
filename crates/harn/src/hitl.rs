//! harn's human-in-the-loop records, folded row by row into what is pending
//! (harn's own `hitl_pending` algorithm), how each request ended, how many
//! approvals count towards its quorum, and what the Activity view shows.

use crate::log::Row;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

/// The four kinds of HITL request; the id prefix says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HitlKind {
    Question,
    Approval,
    DualControl,
    Escalation,
}

impl HitlKind {
    pub const ALL: [HitlKind; 4] = [
        HitlKind::Question,
        HitlKind::Approval,
        HitlKind::DualControl,
        HitlKind::Escalation,
    ];

    /// From a request id's prefix. Ids are not opaque in harn.
    pub fn of_id(id: &str) -> Option<HitlKind> {
        // `hitl_dual_control_` before anything shorter could match.
        Self::ALL
            .into_iter()
            .find(|k| id.starts_with(k.id_prefix()))
    }

    pub fn id_prefix(self) -> &'static str {
        match self {
            HitlKind::Question => "hitl_question_",
            HitlKind::Approval => "hitl_approval_",
            HitlKind::DualControl => "hitl_dual_control_",
            HitlKind::Escalation => "hitl_escalation_",
        }
    }

    pub fn topic(self) -> &'static str {
        match self {
            HitlKind::Question => "hitl.questions",
            HitlKind::Approval => "hitl.approvals",
            HitlKind::DualControl => "hitl.dual_control",
            HitlKind::Escalation => "hitl.escalations",
        }
    }

    pub fn request_event(self) -> &'static str {
        match self {
            HitlKind::Question => "hitl.question_asked",
            HitlKind::Approval => "hitl.approval_requested",
            HitlKind::DualControl => "hitl.dual_control_requested",
            HitlKind::Escalation => "hitl.escalation_issued",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            HitlKind::Question => "question",
            HitlKind::Approval => "approval",
            HitlKind::DualControl => "dual_control",
            HitlKind::Escalation => "escalation",
        }
    }

    fn of_topic(topic: &str) -> Option<HitlKind> {
        Self::ALL.into_iter().find(|k| k.topic() == topic)
    }

    fn of_request_event(kind: &str) -> Option<HitlKind> {
        Self::ALL.into_iter().find(|k| k.request_event() == kind)
    }
}

/// Legacy topic whose terminal events still count.
pub const LEGACY_RESPONSES: &str = "hitl.responses";

/// Topics the HITL state needs; everything else is skipped unread.
pub fn wanted_topic(topic: &str) -> bool {
    HitlKind::of_topic(topic).is_some()
        || topic == LEGACY_RESPONSES
        || topic.starts_with("waitpoint.state.")
        || topic == "trust_graph"
        || topic == "trust.graph"
        || topic == "trigger.outbox"
        || (topic.starts_with("tenant.") && topic.ends_with(".trigger.outbox"))
}

/// How a request ended, from the HITL topics.
#[derive(Debug, Clone, PartialEq)]
pub enum Terminal {
    Approved {
        record: Value,
    },
    Denied {
        reviewer: Option<String>,
        reason: Option<String>,
    },
    Answered {
        response: Value,
    },
    Accepted {
        response: Value,
    },
    Executed,
    TimedOut {
        at: Option<String>,
    },
}

/// One request id: its first envelope (harn resolves against it), the
/// newest (a replay's, which the inbox shows), and the ask now pending
/// under it.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: String,
    pub kind: HitlKind,
    pub first: Value,
    pub latest: Value,
    pub latest_event_id: i64,
    /// Event id (on the kind's topic) of the request event that began the
    /// ask now pending: the first one, or the latest re-emission whose
    /// content differed from the ask before it. Replays that only move
    /// timestamps keep it.
    pub generation: i64,
}

impl Entry {
    /// The inbox identity of the ask now pending under this id.
    pub fn remote_id(&self) -> String {
        remote_id(&self.id, self.generation)
    }
}

/// `<request id>@<event id of the request event that began the ask>`.
pub fn remote_id(request_id: &str, generation: i64) -> String {
    format!("{request_id}@{generation}")
}

/// An event-log remote id split into harn's request id and the ask's
/// event id. An id without a numeric `@` suffix is one stored before asks
/// carried their event id: the request id alone, no generation.
pub fn parse_remote_id(remote_id: &str) -> (&str, Option<i64>) {
    match remote_id.rsplit_once('@') {
        Some((id, generation)) if HitlKind::of_id(id).is_some() => match generation.parse() {
            Ok(g) => (id, Some(g)),
            Err(_) => (remote_id, None),
        },
        _ => (remote_id, None),
    }
}

/// What a reviewer decides on in a request envelope: its kind, agent and
/// payload, without the timestamps a replay recomputes (`requested_at`,
/// `deadline`, also inside `approval_request`). Two envelopes of one
/// request id with equal content are the same ask asked again.
pub fn ask_content(envelope: &Value) -> Value {
    let mut payload = envelope.get("payload").cloned().unwrap_or(Value::Null);
    if let Some(p) = payload.as_object_mut() {
        p.remove("requested_at");
        p.remove("deadline");
        if let Some(inner) = p.get_mut("approval_request").and_then(Value::as_object_mut) {
            inner.remove("requested_at");
            inner.remove("deadline");
        }
    }
    json!({
        "kind": envelope.get("kind"),
        "agent": envelope.get("agent"),
        "payload": payload,
    })
}

/// Counting approvals as harn's `append_hitl_response_on` does.
#[derive(Debug, Clone, PartialEq)]
pub enum Tally {
    Pending {
        approvers: Vec<String>,
    },
    Approved {
        record: Value,
        /// Reviewer of the response that completed the quorum.
        last: Option<String>,
    },
    Denied {
        reviewer: Option<String>,
        reason: Option<String>,
    },
}

/// What the request needs to resolve: (quorum, allow-list).
pub fn quorum_rules(kind: HitlKind, payload: &Value) -> (u64, Vec<String>) {
    let (q, list) = match kind {
        HitlKind::DualControl => ("n", "approvers"),
        _ => ("quorum", "reviewers"),
    };
    let quorum = payload
        .get(q)
        .and_then(Value::as_u64)
        .or_else(|| payload.get("approvers_required").and_then(Value::as_u64))
        .or_else(|| {
            payload
                .pointer("/approval_request/approvers_required")
                .and_then(Value::as_u64)
        })
        .unwrap_or(1);
    (quorum, strings(payload.get(list)))
}

/// The strings of a JSON array (reviewer lists); anything else is empty.
pub fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Replays responses in order over the first envelope (§5.2 step 5).
pub fn tally(kind: HitlKind, request_id: &str, first: &Value, responses: &[Value]) -> Tally {
    let payload = first.get("payload").unwrap_or(&Value::Null);
    let (quorum, allow) = quorum_rules(kind, payload);
    let mut counted: Vec<(String, String, String)> = Vec::new(); // reviewer, at, signature
    for r in responses {
        let reviewer = r.get("reviewer").and_then(Value::as_str);
        if let Some(rv) = reviewer {
            if !allow.is_empty() && !allow.iter().any(|a| a == rv) {
                continue;
            }
            if counted.iter().any(|(c, _, _)| c == rv) {
                continue;
            }
        }
        if r.get("approved") == Some(&Value::Bool(true)) {
            let at = r
                .get("responded_at")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            // harn takes reason and time from the latest approval.
            let reason = r.get("reason").cloned().unwrap_or(Value::Null);
            let approved_at = json!(at);
            if let Some(rv) = reviewer {
                let sig = r
                    .get("signature")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or_else(|| {
                        crate::provenance::approval_signature(request_id, rv, &at, reason.as_str())
                    });
                counted.push((rv.to_owned(), at, sig));
            }
            if counted.len() as u64 >= quorum {
                let mut reviewers: Vec<&str> = counted.iter().map(|c| c.0.as_str()).collect();
                reviewers.sort_unstable();
                let record = json!({
                    "request_id": request_id,
                    "approved": true,
                    "reviewers": reviewers,
                    "approved_at": approved_at,
                    "reason": reason,
                    "signatures": counted.iter().map(|(r, at, s)| json!({
                        "reviewer": r, "signed_at": at, "signature": s
                    })).collect::<Vec<_>>(),
                });
                return Tally::Approved {
                    record,
                    last: reviewer.map(str::to_owned),
                };
            }
        } else {
            return Tally::Denied {
                reviewer: reviewer.map(str::to_owned),
                reason: r.get("reason").and_then(Value::as_str).map(str::to_owned),
            };
        }
    }
    Tally::Pending {
        approvers: counted.into_iter().map(|c| c.0).collect(),
    }
}

/// When a request stops being answerable, if it has a deadline.
pub fn deadline(kind: HitlKind, envelope: &Value) -> Option<DateTime<Utc>> {
    let payload = envelope.get("payload")?;
    match kind {
        HitlKind::Question => {
            let asked = parse_time(envelope.get("requested_at")?)?;
            let ms = payload.get("timeout_ms")?.as_i64()?;
            // A timeout beyond chrono's range is no deadline we can name.
            asked.checked_add_signed(Duration::try_milliseconds(ms)?)
        }
        HitlKind::Approval | HitlKind::DualControl => payload
            .pointer("/approval_request/deadline")
            .and_then(parse_time)
            .or_else(|| payload.get("deadline").and_then(parse_time)),
        HitlKind::Escalation => None,
    }
}

pub fn parse_time(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Everything the HITL topics, waitpoints and activity topics said so far.
#[derive(Debug, Default)]
pub struct HitlState {
    pub entries: HashMap<String, Entry>,
    /// `hitl.response_received` / `hitl.escalation_accepted` payloads, per id, in order.
    pub responses: HashMap<String, Vec<Value>>,
    /// The event id of each of those responses when it is on the kind's
    /// own topic (comparable with [`Entry::generation`]), else `None`.
    pub response_events: HashMap<String, Vec<Option<i64>>>,
    pub terminals: HashMap<String, Terminal>,
    /// The newest `waitpoint.state` payload per waitpoint id.
    pub waitpoints: HashMap<String, Value>,
    /// Ids a trust record marks as non-blocking proposals.
    pub proposals: HashSet<String>,
    /// Activity rows not yet handed out.
    pub new_activity: Vec<Row>,
    trust_seen: HashSet<String>,
    /// Rows skipped because their payload was not JSON.
    pub malformed: u64,
}

impl HitlState {
    /// Folds one row in.
    pub fn apply(&mut self, row: Row) {
        let Some(payload) = row.payload.clone() else {
            self.malformed += 1;
            tracing::warn!(
                topic = %row.topic, event_id = row.event_id,
                "skipping a harn event-log row whose payload is not JSON"
            );
            return;
        };
        if let Some(kind) = HitlKind::of_topic(&row.topic) {
            self.apply_hitl(Some(kind), &row, payload);
        } else if row.topic == LEGACY_RESPONSES {
            self.apply_hitl(None, &row, payload);
        } else if row.topic.starts_with("waitpoint.state.") {
            let id = row
                .headers
                .get("waitpoint_id")
                .and_then(Value::as_str)
                .or_else(|| payload.get("id").and_then(Value::as_str))
                .map(str::to_owned);
            if let Some(id) = id {
                self.waitpoints.insert(id, payload);
            }
        } else if row.kind == "trust_recorded" {
            let hash = payload
                .get("entry_hash")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{}#{}", row.topic, row.event_id));
            if !self.trust_seen.insert(hash) {
                return;
            }
            let meta = payload.get("metadata");
            let enforcement = meta
                .and_then(|m| m.get("autonomy.enforcement"))
                .and_then(Value::as_str);
            if let Some(id) = meta
                .and_then(|m| m.get("approval_request_id"))
                .and_then(Value::as_str)
            {
                if matches!(
                    enforcement,
                    Some("suggest_approval_request" | "needs_human_denied")
                ) {
                    self.proposals.insert(id.to_owned());
                }
            }
            self.new_activity.push(row);
        } else if row.kind == "dispatch_proposed" {
            self.new_activity.push(row);
        }
    }

    fn apply_hitl(&mut self, topic_kind: Option<HitlKind>, row: &Row, payload: Value) {
        if let Some(kind) = HitlKind::of_request_event(&row.kind) {
            let Some(id) = payload.get("request_id").and_then(Value::as_str) else {
                tracing::warn!(event_id = row.event_id, "harn request without a request_id");
                return;
            };
            let id = id.to_owned();
            self.entries
                .entry(id.clone())
                .and_modify(|e| {
                    // harn keeps one waitpoint per id and lists the newest
                    // envelope; a re-emission with other content (a re-run
                    // handler asking something else under its deterministic
                    // id) is a new ask, not the one a reviewer may have seen.
                    if ask_content(&e.latest) != ask_content(&payload) {
                        e.generation = row.event_id;
                    }
                    e.latest = payload.clone();
                    e.latest_event_id = row.event_id;
                })
                .or_insert(Entry {
                    id,
                    kind,
                    first: payload.clone(),
                    latest: payload,
                    latest_event_id: row.event_id,
                    generation: row.event_id,
                });
            return;
        }
        let Some(id) = row.request_id().map(str::to_owned) else {
            return;
        };
        let Some(kind) = topic_kind.or_else(|| HitlKind::of_id(&id)) else {
            return;
        };
        let terminal = match row.kind.as_str() {
            "hitl.response_received" | "hitl.escalation_accepted" => {
                self.responses
                    .entry(id.clone())
                    .or_default()
                    .push(payload.clone());
                self.response_events
                    .entry(id.clone())
                    .or_default()
                    .push(topic_kind.map(|_| row.event_id));
                match kind {
                    HitlKind::Question => Some(Terminal::Answered { response: payload }),
                    HitlKind::Escalation
                        if row.kind == "hitl.escalation_accepted"
                            || payload.get("accepted") == Some(&Value::Bool(true)) =>
                    {
                        Some(Terminal::Accepted { response: payload })
                    }
                    HitlKind::Approval | HitlKind::DualControl
                        if payload.get("approved") == Some(&Value::Bool(false)) =>
                    {
                        Some(Terminal::Denied {
                            reviewer: str_of(&payload, "reviewer"),
                            reason: str_of(&payload, "reason"),
                        })
                    }
                    _ => None,
                }
            }
            "hitl.approval_approved" | "hitl.dual_control_approved" => Some(Terminal::Approved {
                record: payload.get("record").cloned().unwrap_or(Value::Null),
            }),
            "hitl.approval_denied" | "hitl.dual_control_denied" => Some(Terminal::Denied {
                reviewer: str_of(&payload, "reviewer"),
                reason: str_of(&payload, "reason"),
            }),
            "hitl.dual_control_executed" => Some(Terminal::Executed),
            "hitl.timeout" => Some(Terminal::TimedOut {
                at: str_of(&payload, "timed_out_at"),
            }),
            _ => None,
        };
        if let Some(t) = terminal {
            // Sticky, and the first terminal event is how it ended; an
            // explicit outcome event refines a denial-by-response.
            match self.terminals.get(&id) {
                None => {
                    self.terminals.insert(id, t);
                }
                Some(Terminal::Denied { .. }) if matches!(t, Terminal::Denied { .. }) => {
                    self.terminals.insert(id, t);
                }
                Some(Terminal::Approved { .. }) if t == Terminal::Executed => {}
                Some(_) => {}
            }
        }
    }

    /// The waitpoint's status, when one was written.
    pub fn waitpoint_status(&self, id: &str) -> Option<&str> {
        self.waitpoints.get(id)?.get("status")?.as_str()
    }

    /// Reviewers whose approval counts towards `e`'s quorum although they
    /// gave it before the ask now pending began: harn tallies every
    /// response to the request id, whatever envelope it answered.
    pub fn earlier_approvers(&self, e: &Entry, counted: &[String]) -> Vec<String> {
        let responses = self.responses.get(&e.id).map(Vec::as_slice).unwrap_or(&[]);
        let events = self
            .response_events
            .get(&e.id)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        counted
            .iter()
            .filter(|name| {
                // The counted response is the reviewer's first one.
                responses
                    .iter()
                    .zip(events)
                    .find(|(r, _)| r.get("reviewer").and_then(Value::as_str) == Some(name.as_str()))
                    .is_some_and(|(_, at)| at.is_some_and(|at| at < e.generation))
            })
            .cloned()
            .collect()
    }

    /// harn's pending set (§6): requests without a terminal event.
    pub fn harn_pending(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .values()
            .filter(|e| !self.terminals.contains_key(&e.id))
    }
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}
