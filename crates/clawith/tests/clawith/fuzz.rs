//! Clawith's wire types and its Python-literal reader against hostile
//! input: never a panic, and one malformed row in a list costs only that
//! row.

use countersign_clawith::wire::{
    agent_of_link, arguments, audit_activity, changed, detail, notification_activity, request,
    rows, ApprovalRow, AuditRow, NotificationRow,
};
use countersign_fakes::hostile::{broken, garbage, json, odd_string, one_bad_among, rfc3339};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const WORDS: &[&str] = &[
    "id",
    "agent_id",
    "agent_name",
    "action_type",
    "details",
    "status",
    "created_at",
    "resolved_at",
    "resolved_by",
    "type",
    "title",
    "body",
    "link",
    "ref_id",
    "action",
    "args",
    "tool",
    "runtime_scope",
    "level",
    "path",
    "to",
    "recipient",
    "query",
    "target",
    "detail",
    "message",
    "error",
    "pending",
    "L2",
    "L3",
    "autonomy_check:send_email",
    "/agents/0d9e8f7a-6b5c-4d3e-8f21-a0b1c2d3e4f5#approvals",
    "{'path': 'workspace/a.md', 'n': 3}",
];

/// Python's `repr` of a JSON value, as Clawith writes `details.args`.
fn repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let body = s
                .replace('\\', "\\\\")
                .replace('\'', "\\'")
                .replace('\n', "\\n");
            format!("'{body}'")
        }
        Value::Array(a) => format!("[{}]", a.iter().map(repr).collect::<Vec<_>>().join(", ")),
        Value::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("{}: {}", repr(&Value::String(k.clone())), repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Values a Python literal can carry and read back the same: no floats
/// (Python and JSON print them differently).
fn literal() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        odd_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(odd_string(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn approval() -> impl Strategy<Value = Value> {
    (
        (odd_string(), odd_string(), prop::option::of(odd_string())),
        (odd_string(), json(WORDS), odd_string(), rfc3339()),
        prop::option::of(rfc3339()),
    )
        .prop_map(
            |((id, agent, name), (action, details, status, created), resolved)| {
                json!({"id": id, "agent_id": agent, "agent_name": name, "action_type": action,
                       "details": details, "status": status, "created_at": created,
                       "resolved_at": resolved})
            },
        )
}

fn notification() -> impl Strategy<Value = Value> {
    (
        (odd_string(), odd_string(), odd_string()),
        (
            prop::option::of(odd_string()),
            prop::option::of(odd_string()),
        ),
        rfc3339(),
    )
        .prop_map(|((id, kind, title), (body, link), created)| {
            json!({"id": id, "type": kind, "title": title, "body": body, "link": link,
                   "ref_id": id, "created_at": created})
        })
}

fn audit() -> impl Strategy<Value = Value> {
    (odd_string(), odd_string(), json(WORDS), rfc3339()).prop_map(
        |(id, action, details, created)| {
            json!({"id": id, "agent_id": null, "action": format!("autonomy_check:{action}"),
                   "details": details, "created_at": created})
        },
    )
}

fn text(items: &[Value]) -> Vec<u8> {
    serde_json::to_vec(items).expect("a JSON value always serialises")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn one_malformed_approval_costs_only_its_row(
        (items, good) in one_bad_among(approval(), broken(approval(), &["id", "agent_id", "action_type", "status", "created_at"], WORDS)),
    ) {
        let (ok, bad) = rows::<ApprovalRow>(&text(&items), "approval").expect("a JSON array is a list");
        prop_assert_eq!(ok.len(), good, "every well-formed approval is kept");
        prop_assert_eq!(bad.len(), 1, "the malformed one is reported, to be logged");
        for (row, raw) in ok.iter().zip(&items) {
            let r = request(row, "http://127.0.0.1:1", raw.clone());
            let _ = changed(raw, &r.raw);
        }
    }

    #[test]
    fn one_malformed_notification_costs_only_its_row(
        (items, good) in one_bad_among(notification(), broken(notification(), &["id", "type", "title", "created_at"], WORDS)),
    ) {
        let (ok, bad) = rows::<NotificationRow>(&text(&items), "notification").expect("a JSON array is a list");
        prop_assert_eq!(ok.len(), good, "every well-formed notification is kept");
        prop_assert_eq!(bad.len(), 1, "the malformed one is reported, to be logged");
        for n in &ok {
            let agent = n.link.as_deref().and_then(agent_of_link).map(str::to_owned);
            let _ = notification_activity(n, agent, Value::Null);
        }
    }

    #[test]
    fn one_malformed_audit_row_costs_only_its_row(
        (items, good) in one_bad_among(audit(), broken(audit(), &["id", "action", "created_at"], WORDS)),
    ) {
        let (ok, bad) = rows::<AuditRow>(&text(&items), "audit").expect("a JSON array is a list");
        prop_assert_eq!(ok.len(), good, "every well-formed audit row is kept");
        prop_assert_eq!(bad.len(), 1, "the malformed one is reported, to be logged");
        for a in &ok {
            let _ = audit_activity(a, None, Value::Null);
        }
    }

    #[test]
    fn no_body_makes_a_parser_panic(body in garbage(), value in json(WORDS)) {
        let as_text = value.to_string();
        let wrapped = serde_json::to_vec(&json!([value])).expect("serialises");
        for b in [body.as_slice(), as_text.as_bytes(), wrapped.as_slice()] {
            let _ = rows::<ApprovalRow>(b, "approval");
            let _ = rows::<NotificationRow>(b, "notification");
            let _ = rows::<AuditRow>(b, "audit");
            let _ = detail(b);
        }
        let _ = agent_of_link(&as_text);
    }

    #[test]
    fn a_python_literal_reads_back_as_the_value_it_printed(v in literal()) {
        let args = arguments(&json!({"args": repr(&v)}));
        prop_assert_eq!(&args["args"], &v, "an uncut repr is shown as the tree it stands for");
    }

    #[test]
    fn a_cut_or_garbled_literal_never_loses_the_arguments(v in literal(), cut in any::<prop::sample::Index>(), junk in odd_string()) {
        // Clawith cuts `args` at 200 characters, wherever that falls.
        let full = repr(&v);
        let n = full.chars().count();
        let at = cut.index(n.max(1));
        let cut: String = full.chars().take(at.min(200)).collect();
        for s in [cut, format!("{full}{junk}"), junk.clone()] {
            let args = arguments(&json!({"args": s, "tool": junk}));
            prop_assert!(args.get("args").is_some(), "the arguments are never lost, read or not");
        }
    }
}
