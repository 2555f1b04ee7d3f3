//! LangGraph's pending interrupts in its three formats, and its run
//! lists, against hostile content: never a panic, one request per
//! interrupt (one per action of a batched one), and an interrupt without
//! an id costs only itself.

use chrono::{TimeZone, Utc};
use countersign_fakes::hostile::{broken, json, mangled, odd_string, one_bad_among};
use countersign_langgraph::present::{requests, Format, Place};
use countersign_langgraph::runs::{answered, created_at, fold_page};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::HashMap;

const WORDS: &[&str] = &[
    "id",
    "value",
    "response_schema",
    "action_request",
    "action",
    "args",
    "config",
    "allow_accept",
    "allow_edit",
    "allow_respond",
    "allow_ignore",
    "description",
    "action_requests",
    "actionRequests",
    "review_configs",
    "reviewConfigs",
    "allowed_decisions",
    "allowedDecisions",
    "name",
    "arguments",
    "type",
    "tool_approval",
    "tool_call_id",
    "discriminator",
    "mapping",
    "properties",
    "const",
    "approve",
    "edit",
    "reject",
    "respond",
    "path",
    "command",
    "url",
    "created_at",
    "run_id",
    "status",
    "success",
    "kwargs",
    "command",
    "resume",
];

/// `{action_request, config, description}`, as Agent Inbox sends it.
fn human_interrupt() -> impl Strategy<Value = Value> {
    (odd_string(), json(WORDS), any::<[bool; 4]>(), odd_string()).prop_map(
        |(action, args, flags, description)| {
            json!({"action_request": {"action": action, "args": args},
                   "config": {"allow_accept": flags[0], "allow_edit": flags[1],
                              "allow_respond": flags[2], "allow_ignore": flags[3]},
                   "description": description})
        },
    )
}

/// An interrupt's `value` in one of the formats, any part of it bent.
fn value() -> impl Strategy<Value = Value> {
    let inbox = human_interrupt()
        .prop_flat_map(|h| mangled(h, WORDS))
        .prop_map(|h| json!([h]));
    let bare = human_interrupt().prop_flat_map(|h| mangled(h, WORDS));
    let action = (odd_string(), json(WORDS)).prop_map(|(n, a)| json!({"name": n, "args": a}));
    let config = json(WORDS).prop_map(|d| json!({"allowed_decisions": d}));
    let batched = (
        prop::collection::vec(prop_oneof![3 => action, 1 => json(WORDS)], 0..4),
        prop::collection::vec(config, 0..4),
        any::<bool>(),
    )
        .prop_map(|(actions, configs, camel)| {
            if camel {
                json!({"actionRequests": actions, "reviewConfigs": configs})
            } else {
                json!({"action_requests": actions, "review_configs": configs})
            }
        });
    let per_call = (odd_string(), json(WORDS), odd_string()).prop_map(
        |(n, a, t)| json!({"type": "tool_approval", "name": n, "args": a, "tool_call_id": t}),
    );
    prop_oneof![
        inbox,
        bare,
        batched.prop_flat_map(|b| mangled(b, WORDS)),
        per_call.prop_flat_map(|p| mangled(p, WORDS)),
        json(WORDS)
    ]
}

fn schema() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        json(WORDS).prop_map(|m| json!({"discriminator": {"mapping": m}})),
        json(WORDS).prop_map(|c| json!({"properties": {"type": {"const": c}}})),
        json(WORDS),
    ]
}

fn interrupt() -> impl Strategy<Value = Value> {
    (odd_string(), value(), schema()).prop_map(
        |(id, value, schema)| json!({"id": id, "value": value, "response_schema": schema}),
    )
}

/// How many requests an interrupt with an id makes: one per action of a
/// batched one, else one.
fn expected(interrupt: &Value) -> usize {
    let v = &interrupt["value"];
    match Format::of(v) {
        Format::Batched => v
            .get("action_requests")
            .or_else(|| v.get("actionRequests"))
            .and_then(Value::as_array)
            .map_or(0, Vec::len),
        _ => 1,
    }
}

fn place() -> Place<'static> {
    Place {
        thread_id: "thread-1",
        graph: "agent",
        assistant: "agent",
        first_seen: Utc
            .timestamp_opt(1_800_000_000, 0)
            .single()
            .unwrap_or_default(),
        generation: None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn every_interrupt_with_an_id_is_asked_and_one_without_is_skipped(
        (interrupts, good) in one_bad_among(interrupt(), broken(interrupt(), &["id"], WORDS)),
    ) {
        let mut asked = 0;
        let mut want = 0;
        for i in &interrupts {
            asked += requests(i, &place()).len();
            if i["id"].is_string() {
                want += expected(i);
            }
        }
        prop_assert_eq!(interrupts.len(), good + 1, "one malformed interrupt among the good ones");
        prop_assert_eq!(asked, want, "one request per interrupt, one per action of a batched one; none for the one without an id");
    }

    #[test]
    fn no_run_list_makes_folding_panic(runs in prop::collection::vec(json(WORDS), 0..6), id in odd_string()) {
        let since = Utc.timestamp_opt(0, 0).single().unwrap_or_default();
        let mut found = HashMap::new();
        let _ = fold_page(&runs, since, &[id.as_str(), "0123456789abcdef0123456789abcdef"], &mut found);
        for r in &runs {
            let _ = created_at(r);
            let _ = answered(r, &id);
        }
    }
}
