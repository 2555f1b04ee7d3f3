//! harn's event-log rows against hostile content: whatever a row's topic,
//! kind, payload and headers hold, folding it in and presenting what is
//! pending never panics, and one malformed row costs only itself.

use chrono::{TimeZone, Utc};
use countersign_fakes::hostile::{json, mangled, object_of, odd_number, odd_string, rfc3339};
use countersign_harn::hitl::{HitlKind, HitlState};
use countersign_harn::log::Row;
use countersign_harn::present;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const WORDS: &[&str] = &[
    "request_id",
    "kind",
    "agent",
    "trace_id",
    "run_id",
    "requested_at",
    "payload",
    "prompt",
    "timeout_ms",
    "approval_request",
    "deadline",
    "reviewers",
    "approvers",
    "quorum",
    "n",
    "approvers_required",
    "reviewer",
    "approved",
    "accepted",
    "reason",
    "record",
    "timed_out_at",
    "status",
    "id",
    "waitpoint_id",
    "metadata",
    "approval_request_id",
    "autonomy.enforcement",
    "entry_hash",
    "action",
    "outcome",
    "autonomy_tier",
    "approver",
    "timestamp",
    "builtin",
    "action_class",
    "principal",
    "capabilities_requested",
    "evidence_refs",
    "undo_metadata",
    "hitl_approval_a_1",
    "hitl_question_q_1",
    "hitl_dual_control_d_1",
    "hitl_escalation_e_1",
    "suggest_approval_request",
    "open",
    "completed",
    "cancelled",
    "dana",
];

const TOPICS: &[&str] = &[
    "hitl.questions",
    "hitl.approvals",
    "hitl.dual_control",
    "hitl.escalations",
    "hitl.responses",
    "waitpoint.state.hitl_approval_a_1",
    "trust_graph",
    "trust.graph",
    "trigger.outbox",
    "tenant.t.trigger.outbox",
    "agent.transcript",
];

const KINDS: &[&str] = &[
    "hitl.question_asked",
    "hitl.approval_requested",
    "hitl.dual_control_requested",
    "hitl.escalation_issued",
    "hitl.response_received",
    "hitl.escalation_accepted",
    "hitl.approval_approved",
    "hitl.dual_control_approved",
    "hitl.approval_denied",
    "hitl.dual_control_denied",
    "hitl.dual_control_executed",
    "hitl.timeout",
    "waitpoint.updated",
    "trust_recorded",
    "dispatch_proposed",
];

/// A request envelope of the right general shape: any field may be of
/// the wrong type, missing, or at the edge of its range.
fn envelope() -> impl Strategy<Value = Value> {
    let payload = (
        odd_number(),
        prop_oneof![rfc3339(), odd_string()],
        odd_number(),
        json(WORDS),
    )
        .prop_map(|(timeout, deadline, quorum, reviewers)| {
            json!({"prompt": "ok?", "timeout_ms": timeout, "deadline": deadline,
                   "approval_request": {"deadline": deadline, "approvers_required": quorum},
                   "quorum": quorum, "n": quorum, "reviewers": reviewers, "approvers": reviewers})
        })
        .prop_flat_map(|p| mangled(p, WORDS));
    (
        prop::sample::select(HitlKind::ALL.as_slice()),
        odd_string(),
        prop_oneof![rfc3339(), odd_string()],
        payload,
    )
        .prop_map(|(kind, id, at, payload)| {
            json!({"request_id": format!("{}{id}", kind.id_prefix()), "kind": kind.as_str(),
                   "agent": id, "trace_id": id, "requested_at": at, "payload": payload})
        })
        .prop_flat_map(|e| prop_oneof![3 => Just(e.clone()), 1 => mangled(e, WORDS)])
}

fn row() -> impl Strategy<Value = Row> {
    (
        (
            prop::sample::select(TOPICS),
            prop::sample::select(KINDS),
            any::<i64>(),
        ),
        prop::option::of(prop_oneof![envelope(), json(WORDS)]),
        object_of(
            WORDS,
            prop_oneof![odd_string().prop_map(Value::String), odd_number()],
        ),
        any::<i64>(),
    )
        .prop_map(|((topic, kind, event_id), payload, headers, at)| Row {
            topic: topic.into(),
            event_id,
            kind: kind.into(),
            payload,
            headers: match headers {
                Value::Object(m) => m,
                _ => Map::new(),
            },
            occurred_at_ms: at,
        })
}

/// Everything the connector does with a folded state: what is pending,
/// how each ask ended, and the activity rows.
fn present_all(state: &HitlState) -> (usize, usize) {
    let now = Utc
        .timestamp_opt(1_800_000_000, 0)
        .single()
        .unwrap_or_default();
    let mut pending = 0;
    for e in state.harn_pending() {
        let _ = present::ended(state, e, "dana", now);
        let _ = present::request(state, e, "dana", Value::Null, None);
        pending += 1;
    }
    let activity = state
        .new_activity
        .iter()
        .filter_map(present::activity)
        .count();
    (pending, activity)
}

/// A well-formed approval request on its own topic.
fn approval_row(n: usize, event_id: i64) -> Row {
    Row {
        topic: "hitl.approvals".into(),
        event_id,
        kind: "hitl.approval_requested".into(),
        payload: Some(
            json!({"request_id": format!("hitl_approval_t_{n}"), "kind": "approval",
            "agent": "a", "requested_at": "2026-05-01T10:00:00Z",
            "payload": {"prompt": "ok?", "reviewers": ["dana"]}}),
        ),
        headers: Map::new(),
        occurred_at_ms: 0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn no_row_makes_folding_or_presenting_panic(rows in prop::collection::vec(row(), 0..5)) {
        let mut state = HitlState::default();
        for r in rows {
            state.apply(r);
        }
        let _ = present_all(&state);
    }

    #[test]
    fn one_malformed_row_costs_only_itself(
        good in 0usize..6,
        bad in prop_oneof![
            Just(None),
            json(WORDS).prop_filter("a request needs a string id", |v| !v["request_id"].is_string()).prop_map(Some),
        ],
        at in any::<prop::sample::Index>(),
    ) {
        let mut rows: Vec<Row> = (0..good).map(|n| approval_row(n, n as i64 + 1)).collect();
        let mut broken = approval_row(99, 99);
        broken.payload = bad;
        rows.insert(at.index(good + 1), broken);
        let mut state = HitlState::default();
        for r in rows {
            state.apply(r);
        }
        let (pending, _) = present_all(&state);
        prop_assert_eq!(pending, good, "every well-formed request is pending; the malformed one is skipped");
    }
}

/// Found by `no_row_makes_folding_or_presenting_panic`: a question whose
/// `timeout_ms` reaches past the end of chrono's range (or below its
/// start) panicked while working out its deadline.
#[test]
fn a_question_timing_out_past_the_end_of_time_is_pending_without_a_deadline() {
    for timeout in [
        json!(8_210_266_876_800_000i64),
        json!(i64::MIN),
        json!(i64::MAX),
    ] {
        let mut state = HitlState::default();
        state.apply(Row {
            topic: "hitl.questions".into(),
            event_id: 1,
            kind: "hitl.question_asked".into(),
            payload: Some(
                json!({"request_id": "hitl_question_q_1", "kind": "question",
                "agent": "a", "requested_at": "1970-01-01T00:00:00+00:00",
                "payload": {"prompt": "why?", "timeout_ms": timeout}}),
            ),
            headers: Map::new(),
            occurred_at_ms: 0,
        });
        let e = state
            .harn_pending()
            .next()
            .expect("the question is pending");
        let r = present::request(&state, e, "dana", Value::Null, None);
        assert_eq!(
            r.deadline, None,
            "a timeout of {timeout} ms names no representable deadline"
        );
    }
}
