//! SurfSense's pending interrupts against hostile content: never a panic,
//! and a value without a key (a server older than v0.0.36.3) costs only
//! itself. The resume stream is read by the same SSE reader the OpenCode
//! fuzz module drives.

use chrono::{TimeZone, Utc};
use countersign_fakes::hostile::{broken, json, mangled, odd_string, one_bad_among};
use countersign_surfsense::present::{action_of, ask_id, is_doom_loop, request, wire_key, Place};
use proptest::prelude::*;
use serde_json::{json, Value};

const WORDS: &[&str] = &[
    "tool_call_id",
    "interrupt_id",
    "interrupt_type",
    "action_requests",
    "name",
    "args",
    "description",
    "review_configs",
    "allowed_decisions",
    "context",
    "permission",
    "doom_loop",
    "threshold",
    "recent_signatures",
    "patterns",
    "rules",
    "always",
    "mcp_server",
    "mcp_connector_id",
    "accounts",
    "tool_description",
    "message",
    "permission_ask",
    "mcp_tool_call",
    "gmail_email_send",
    "approve",
    "reject",
    "edit",
    "approve_always",
    "path",
    "to",
    "subject",
    "title",
    "query",
    "file_id",
];

fn interrupt() -> impl Strategy<Value = Value> {
    (
        (
            odd_string(),
            odd_string(),
            prop::sample::select(
                &[
                    "permission_ask",
                    "mcp_tool_call",
                    "gmail_email_send",
                    "unknown",
                    "automation_create",
                ][..],
            ),
        ),
        (odd_string(), json(WORDS), json(WORDS)),
        (json(WORDS), any::<bool>()),
    )
        .prop_map(
            |((call, interrupt, kind), (name, args, decisions), (context, doom))| {
                let context = if doom {
                    json!({"permission": "doom_loop", "threshold": context})
                } else {
                    context
                };
                json!({"tool_call_id": call, "interrupt_id": interrupt, "interrupt_type": kind,
                   "action_requests": [{"name": name, "args": args}],
                   "review_configs": [{"allowed_decisions": decisions}], "context": context})
            },
        )
        .prop_flat_map(|v| prop_oneof![Just(v.clone()), mangled(v, WORDS)])
}

fn place() -> Place<'static> {
    Place {
        workspace_id: 1,
        workspace: "Research",
        thread_id: 7,
        thread: "q3 \u{202E}report",
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn a_value_without_a_key_costs_only_itself(
        (items, _) in one_bad_among(interrupt(), broken(interrupt(), &["tool_call_id"], WORDS).prop_map(|mut v| {
            // Neither key: the one thing that makes an ask unanswerable.
            if let Some(o) = v.as_object_mut() {
                o.remove("interrupt_id");
            }
            v
        })),
    ) {
        let seen = Utc.timestamp_opt(1_800_000_000, 0).single().unwrap_or_default();
        let keyed = items.iter().filter(|v| wire_key(v).is_some()).count();
        let requests: Vec<_> = items.iter().filter_map(|v| request(v, &place(), seen, Some("http://127.0.0.1:1/"))).collect();
        prop_assert_eq!(requests.len(), keyed, "every value with a key is a request");
        prop_assert_eq!(keyed + 1, items.len(), "the value without one is skipped, and only it");
        for (r, v) in requests.iter().zip(items.iter().filter(|v| wire_key(v).is_some())) {
            prop_assert_eq!(Some(r.remote_id.clone()), ask_id(v).map(|id| format!("7:{id}")), "a request is known by its ask");
            let _ = (action_of(v), is_doom_loop(v));
        }
    }

    #[test]
    fn no_value_makes_presenting_panic(v in json(WORDS)) {
        let seen = Utc.timestamp_opt(0, 0).single().unwrap_or_default();
        let _ = request(&v, &place(), seen, None);
        let _ = (wire_key(&v), ask_id(&v), action_of(&v), is_doom_loop(&v));
    }
}
