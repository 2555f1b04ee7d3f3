//! `harn serve api`'s listed permission requests against hostile content:
//! never a panic, and an item without an id costs only itself.

use countersign_fakes::hostile::{broken, json, mangled, odd_string, one_bad_among, rfc3339};
use countersign_harn::api::{item_remote_id, request_from_item};
use proptest::prelude::*;
use serde_json::{json, Value};

const WORDS: &[&str] = &[
    "id",
    "source",
    "action",
    "request",
    "created_at",
    "session_id",
    "task_id",
    "status",
    "hitl",
    "tool",
    "payload",
    "requested_at",
    "approval_request",
    "trace_id",
    "deadline",
    "reviewers",
    "quorum",
    "timeout_ms",
    "prompt",
    "hitl_approval_a_1",
    "hitl_question_q_1",
];

fn item() -> impl Strategy<Value = Value> {
    (
        (
            prop::sample::select(
                &[
                    "hitl_approval_",
                    "hitl_question_",
                    "hitl_dual_control_",
                    "hitl_escalation_",
                    "perm_",
                ][..],
            ),
            odd_string(),
        ),
        (
            prop::sample::select(&["hitl", "tool", "other"][..]),
            odd_string(),
            json(WORDS),
        ),
        (prop_oneof![rfc3339(), odd_string()], odd_string()),
    )
        .prop_map(
            |((prefix, id), (source, action, request), (created, session))| {
                json!({"id": format!("{prefix}{id}"), "source": source, "action": action,
                   "request": request, "created_at": created, "session_id": session,
                   "task_id": session, "status": "pending"})
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn an_item_without_an_id_costs_only_itself(
        (items, good) in one_bad_among(prop_oneof![item(), item().prop_flat_map(|i| mangled(i, WORDS)).prop_filter("keeps its id", |i| i["id"].is_string())], broken(item(), &["id"], WORDS)),
    ) {
        let requests: Vec<_> = items.iter().filter_map(|i| request_from_item(i, "dana")).collect();
        prop_assert_eq!(requests.len(), good, "every listed item with an id is a request; the one without is skipped");
        for (r, i) in requests.iter().zip(items.iter().filter(|i| i["id"].is_string())) {
            prop_assert_eq!(Some(r.remote_id.clone()), item_remote_id(i), "a request is known by its registration");
        }
    }
}
