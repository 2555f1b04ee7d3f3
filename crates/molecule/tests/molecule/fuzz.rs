//! Molecule's list bodies and WebSocket frames against hostile input:
//! never a panic, and one malformed row or frame costs only itself.

use countersign_connector::Update;
use countersign_fakes::hostile::{
    broken, garbage, json, mangled, odd_string, one_bad_among, rfc3339,
};
use countersign_molecule::wire::{parse_frame, parse_history, parse_pending, parse_workspaces};
use proptest::prelude::*;
use serde_json::{json, Value};

const WORDS: &[&str] = &[
    "event",
    "workspace_id",
    "timestamp",
    "payload",
    "approval_id",
    "action",
    "reason",
    "task_id",
    "decision",
    "decided_by",
    "message",
    "summary",
    "activity_type",
    "error",
    "sample_error",
    "id",
    "name",
    "created_at",
    "status",
    "decided_at",
    "workspace_name",
    "APPROVAL_REQUESTED",
    "APPROVAL_APPROVED",
    "APPROVAL_DENIED",
    "APPROVAL_ESCALATED",
    "AGENT_MESSAGE",
    "ACTIVITY_LOGGED",
    "WORKSPACE_OFFLINE",
    "WORKSPACE_DEGRADED",
    "DELEGATION_FAILED",
    "WORKSPACE_PROVISION_FAILED",
    "auto-expired",
    "pending",
    "approved",
];

const EVENTS: &[&str] = &[
    "APPROVAL_REQUESTED",
    "APPROVAL_APPROVED",
    "APPROVAL_DENIED",
    "APPROVAL_ESCALATED",
    "AGENT_MESSAGE",
    "ACTIVITY_LOGGED",
    "WORKSPACE_OFFLINE",
    "WORKSPACE_AWAITING_AGENT",
    "WORKSPACE_PROVISION_FAILED",
    "WORKSPACE_DEGRADED",
    "DELEGATION_FAILED",
    "WORKSPACE_HEARTBEAT",
];

fn expiry() -> chrono::Duration {
    chrono::Duration::minutes(10)
}

fn names(ws: &str) -> Option<String> {
    ws.len().is_multiple_of(2).then(|| format!("name of {ws}"))
}

/// A non-empty id: the parsers need one to name a request.
fn id() -> impl Strategy<Value = String> {
    odd_string().prop_map(|s| format!("id-{s}"))
}

fn pending_row() -> impl Strategy<Value = Value> {
    (
        (id(), odd_string(), prop::option::of(odd_string())),
        (odd_string(), prop::option::of(odd_string()), rfc3339()),
    )
        .prop_map(|((id, ws, name), (action, reason, created))| {
            json!({"id": id, "workspace_id": ws, "workspace_name": name, "action": action,
                   "reason": reason, "status": "pending", "created_at": created})
        })
}

fn history_row() -> impl Strategy<Value = Value> {
    (
        (id(), prop::option::of(odd_string()), odd_string()),
        (prop::option::of(odd_string()), prop::option::of(rfc3339())),
    )
        .prop_map(|((id, action, status), (by, at))| {
            json!({"id": id, "action": action, "status": status, "decided_by": by, "decided_at": at})
        })
}

fn workspace() -> impl Strategy<Value = Value> {
    (id(), odd_string()).prop_map(|(id, name)| json!({"id": id, "name": name}))
}

/// An envelope of a known event with a payload of the right general
/// shape, any field of which may be missing or wrong.
fn frame() -> impl Strategy<Value = Value> {
    let payload = (id(), odd_string(), odd_string(), odd_string()).prop_map(
        |(approval, action, reason, task)| {
            json!({"approval_id": approval, "action": action, "reason": reason, "task_id": task,
                   "message": reason, "summary": action, "error": task, "decided_by": reason})
        },
    );
    (
        prop::sample::select(EVENTS),
        odd_string(),
        prop_oneof![rfc3339(), odd_string()],
        payload.prop_flat_map(|p| mangled(p, WORDS)),
    )
        .prop_map(|(event, ws, ts, payload)| {
            json!({"event": event, "workspace_id": ws, "timestamp": ts, "payload": payload})
        })
        .prop_flat_map(|f| prop_oneof![3 => Just(f.clone()), 1 => mangled(f, WORDS)])
}

fn requested() -> impl Strategy<Value = Value> {
    (id(), odd_string(), odd_string(), rfc3339()).prop_map(|(approval, ws, action, ts)| {
        json!({"event": "APPROVAL_REQUESTED", "workspace_id": ws, "timestamp": ts,
               "payload": {"approval_id": approval, "action": format!("do {action}")}})
    })
}

fn body(items: &[Value]) -> Vec<u8> {
    serde_json::to_vec(items).expect("a JSON value always serialises")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn one_malformed_pending_row_costs_only_its_row(
        (items, good) in one_bad_among(pending_row(), broken(pending_row(), &["id", "workspace_id", "action", "created_at"], WORDS)),
    ) {
        let (requests, skipped) = parse_pending(&body(&items), expiry()).expect("a JSON array is a list");
        prop_assert_eq!(requests.len(), good, "every well-formed pending row is kept");
        prop_assert_eq!(skipped.len(), 1, "the malformed one is reported, to be logged");
    }

    #[test]
    fn one_malformed_history_row_costs_only_its_row(
        (items, good) in one_bad_among(history_row(), broken(history_row(), &["id", "status"], WORDS)),
    ) {
        let rows = parse_history(&body(&items)).expect("a JSON array is a history");
        prop_assert_eq!(rows.len(), good, "every well-formed history row is kept");
    }

    #[test]
    fn one_malformed_workspace_costs_only_its_entry(
        (items, good) in one_bad_among(workspace(), broken(workspace(), &["id", "name"], WORDS)),
    ) {
        let names = parse_workspaces(&body(&items)).expect("a JSON array is a workspace list");
        prop_assert_eq!(names.len(), good, "every well-formed workspace keeps its name");
    }

    #[test]
    fn a_malformed_frame_costs_only_itself(
        good in prop::collection::vec(requested(), 0..4),
        noise in prop::collection::vec(prop_oneof![frame(), json(WORDS)], 0..4),
        raw in garbage(),
    ) {
        // A socket's frames are parsed one by one: garbage between good
        // frames drops no request.
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let mut texts: Vec<String> = noise.iter().map(Value::to_string).collect();
        texts.push(raw);
        texts.extend(good.iter().map(Value::to_string));
        let mut requests = 0;
        for t in &texts {
            if let Ok(Some(Update::Request(_))) = parse_frame(t, &names, expiry()) {
                requests += 1;
            }
        }
        prop_assert!(requests >= good.len(), "every well-formed APPROVAL_REQUESTED is a request");
    }

    #[test]
    fn no_body_makes_a_parser_panic(bytes in garbage(), value in json(WORDS)) {
        let as_text = value.to_string();
        let wrapped = body(&[value]);
        for b in [bytes.as_slice(), as_text.as_bytes(), wrapped.as_slice()] {
            let _ = parse_pending(b, expiry());
            let _ = parse_history(b);
            let _ = parse_workspaces(b);
            let _ = parse_frame(&String::from_utf8_lossy(b), &names, expiry());
        }
    }
}

/// Found by `a_malformed_frame_costs_only_itself`: a time at the end of
/// chrono's range plus the expiry overflowed and panicked the socket task.
#[test]
fn a_request_at_the_end_of_time_has_no_deadline_and_no_panic() {
    let frame = json!({"event": "APPROVAL_REQUESTED", "workspace_id": "w",
        "timestamp": "+262142-12-31T23:59:59Z",
        "payload": {"approval_id": "a", "action": "push"}})
    .to_string();
    let Ok(Some(Update::Request(r))) = parse_frame(&frame, &names, expiry()) else {
        panic!("a well-formed APPROVAL_REQUESTED is a request, whatever its time");
    };
    assert_eq!(
        r.deadline, None,
        "no deadline can be named past the end of representable time"
    );
    let row = br#"[{"id":"a","workspace_id":"w","action":"push","created_at":"+262142-12-31T23:59:59Z"}]"#;
    let (requests, _) = parse_pending(row, expiry()).expect("a JSON array is a list");
    assert_eq!(
        requests.len(),
        1,
        "the pending row is kept, without a deadline"
    );
    assert_eq!(
        requests[0].deadline, None,
        "the sum overflowed: no deadline"
    );
}
