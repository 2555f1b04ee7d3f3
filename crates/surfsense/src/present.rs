//! One pending interrupt (the normalised value `pending-interrupts` lists)
//! as an inbox request: tool, arguments, the rule patterns that asked, the
//! kind of card, and only the decisions it allows.

use chrono::{DateTime, Utc};
use countersign_model::{AllowedDecision, Fact, Group, Kind, ObservedRequest, RequestExtra};
use serde_json::{json, Value};

/// Where a pending interrupt lives.
#[derive(Debug, Clone)]
pub struct Place<'a> {
    pub workspace_id: i64,
    pub workspace: &'a str,
    pub thread_id: i64,
    pub thread: &'a str,
}

/// The id `/resume` routes a decision by: `tool_call_id ?? interrupt_id`.
/// Not an identity: every ask of one subagent run carries its parent's
/// `tool_call_id`.
pub fn wire_key(v: &Value) -> Option<&str> {
    v.get("tool_call_id")
        .and_then(Value::as_str)
        .or_else(|| v.get("interrupt_id").and_then(Value::as_str))
}

/// The identity of one ask within its thread: `tool_call_id:interrupt_id`
/// for a stamped ask, `interrupt_id` for a parent-side one. A subagent
/// that asks again in one task sends the same `tool_call_id` with a new
/// `interrupt_id` and new arguments: that is a new ask, never the old one
/// updated (the server verified in `surfsense.md`). A value without an
/// `interrupt_id` (a server older than v0.0.36.3) falls back to its
/// `tool_call_id`.
pub fn ask_id(v: &Value) -> Option<String> {
    let text = |k: &str| v.get(k).and_then(Value::as_str);
    match (text("tool_call_id"), text("interrupt_id")) {
        (Some(call), Some(interrupt)) => Some(format!("{call}:{interrupt}")),
        (None, Some(interrupt)) => Some(interrupt.to_owned()),
        (Some(call), None) => Some(call.to_owned()),
        (None, None) => None,
    }
}

/// The tool and arguments an ask would run, as a reviewer sees them.
pub fn action_of(v: &Value) -> (String, Value) {
    let action = v.pointer("/action_requests/0");
    let name = action
        .and_then(|a| a.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("unknown_tool")
        .to_owned();
    let args = match action.and_then(|a| a.get("args")) {
        None | Some(Value::Null) => json!({}),
        Some(a) => a.clone(),
    };
    (name, args)
}

/// Whether an ask is the doom-loop guard ("the agent repeated a call").
pub fn is_doom_loop(v: &Value) -> bool {
    v.pointer("/context/permission").and_then(Value::as_str) == Some("doom_loop")
}

/// The group every ask of a thread belongs to: the thread resumes only
/// when all its asks are answered in one call.
pub fn thread_group(thread_id: i64, title: &str) -> Group {
    Group {
        key: format!("thread:{thread_id}"),
        label: format!("thread “{title}”"),
    }
}

/// `remote_id` of an ask: its thread and [`ask_id`].
pub fn remote_id(thread_id: i64, ask_id: &str) -> String {
    format!("{thread_id}:{ask_id}")
}

/// Self-gated connector cards (Gmail, calendar, drive, automations…), as
/// opposed to the permission middleware's asks.
fn is_self_gated(kind: &str) -> bool {
    !matches!(kind, "permission_ask" | "mcp_tool_call" | "unknown")
}

/// The card's name in words.
fn label(kind: &str, v: &Value) -> String {
    if is_doom_loop(v) {
        return "doom-loop guard".into();
    }
    let named = match kind {
        "permission_ask" if v.pointer("/context/mcp_server").is_some() => "MCP tool ask",
        "permission_ask" => "permission ask",
        "mcp_tool_call" => "MCP tool call",
        "gmail_email_send" => "Gmail: send email",
        "gmail_email_trash" => "Gmail: trash email",
        "google_calendar_event_update" => "Calendar: update event",
        "google_calendar_event_deletion" => "Calendar: delete event",
        "google_drive_file_trash" => "Google Drive: trash file",
        "dropbox_file_trash" => "Dropbox: trash file",
        "onedrive_file_trash" => "OneDrive: trash file",
        "automation_create" => "create automation",
        other => return other.replace('_', " "),
    };
    named.into()
}

/// The argument worth putting in the title, if any.
fn headline(args: &Value) -> Option<String> {
    ["path", "to", "subject", "title", "name", "query", "file_id"]
        .iter()
        .find_map(|k| args.get(k).and_then(Value::as_str))
        .map(|s| {
            let one_line: String = s
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            if one_line.chars().count() > 80 {
                format!("{}…", one_line.chars().take(79).collect::<String>())
            } else {
                one_line
            }
        })
}

fn decision_of(word: &str) -> Option<AllowedDecision> {
    Some(match word {
        "approve" => AllowedDecision::Approve,
        "reject" => AllowedDecision::Deny,
        "edit" => AllowedDecision::Edit,
        "approve_always" => AllowedDecision::AlwaysAllow,
        _ => return None,
    })
}

/// The decisions to offer: those the card lists, minus the ones SurfSense
/// would not honour as they read (a doom-loop "edit" ignores the
/// arguments; `approve_always` on a self-gated card is a reject).
fn allowed(v: &Value, kind: &str) -> Vec<AllowedDecision> {
    let listed = v
        .pointer("/review_configs/0/allowed_decisions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out: Vec<AllowedDecision> = Vec::new();
    for d in listed
        .iter()
        .filter_map(Value::as_str)
        .filter_map(decision_of)
    {
        let dropped = match d {
            AllowedDecision::Edit => is_doom_loop(v),
            AllowedDecision::AlwaysAllow => is_doom_loop(v) || is_self_gated(kind),
            _ => false,
        };
        if !dropped && !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

fn facts(v: &Value, place: &Place<'_>, kind: &str) -> Vec<Fact> {
    let mut out = vec![
        Fact {
            name: "workspace".into(),
            value: json!(format!("{} ({})", place.workspace, place.workspace_id)),
        },
        Fact {
            name: "thread".into(),
            value: json!(format!("{} ({})", place.thread, place.thread_id)),
        },
    ];
    let ctx = v.get("context").cloned().unwrap_or(Value::Null);
    let mut add = |name: &str, value: Option<&Value>| {
        if let Some(value) = value.filter(|x| !x.is_null()) {
            out.push(Fact {
                name: name.into(),
                value: value.clone(),
            });
        }
    };
    if is_doom_loop(v) {
        add("repeated calls", ctx.get("threshold"));
        add("recent signatures", ctx.get("recent_signatures"));
    } else {
        add("rule patterns", ctx.get("patterns"));
        add("rules", ctx.get("rules"));
        add("always allows", ctx.get("always"));
        add("MCP server", ctx.get("mcp_server"));
        add("MCP connector", ctx.get("mcp_connector_id"));
        add("accounts", ctx.get("accounts"));
    }
    add("card", Some(&json!(kind)));
    add("tool call id", v.get("tool_call_id"));
    add("interrupt id", v.get("interrupt_id"));
    out
}

/// One pending interrupt as a request. `None` for a value without a key
/// (a server older than v0.0.36.3), which is logged by the caller.
pub fn request(
    v: &Value,
    place: &Place<'_>,
    first_seen: DateTime<Utc>,
    web_url: Option<&str>,
) -> Option<ObservedRequest> {
    let key = wire_key(v)?;
    let id = ask_id(v)?;
    let kind = v
        .get("interrupt_type")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let action = v
        .pointer("/action_requests/0")
        .cloned()
        .unwrap_or(Value::Null);
    let (name, args) = action_of(v);
    let title = if is_doom_loop(v) {
        let n = v
            .pointer("/context/threshold")
            .and_then(Value::as_u64)
            .unwrap_or(3);
        format!("The agent repeated the same call {n} times: continue anyway?")
    } else {
        match headline(&args) {
            Some(h) => format!("{name} {h}"),
            None => name.clone(),
        }
    };
    let description = v
        .get("message")
        .or_else(|| action.get("description"))
        .or_else(|| v.pointer("/context/tool_description"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    Some(ObservedRequest {
        remote_id: remote_id(place.thread_id, &id),
        route: json!({
            "workspace_id": place.workspace_id,
            "thread_id": place.thread_id,
            "key": key,
            "tool_call_id": v.get("tool_call_id"),
            "interrupt_id": v.get("interrupt_id"),
        }),
        kind: Kind::Approval,
        title,
        action: name,
        arguments: args,
        description,
        agent: Some(format!("{} › {}", place.workspace, place.thread)),
        tier: Some(kind.to_owned()),
        created_at: first_seen,
        deadline: None,
        allowed_decisions: allowed(v, kind),
        link: web_url.map(|w| {
            format!(
                "{}/dashboard/{}/new-chat/{}",
                w.trim_end_matches('/'),
                place.workspace_id,
                place.thread_id
            )
        }),
        extra: RequestExtra {
            label: Some(label(kind, v)),
            facts: facts(v, place, kind),
            group: Some(thread_group(place.thread_id, place.thread)),
            comment_not_sent: true,
            ..Default::default()
        },
        raw: v.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place() -> Place<'static> {
        Place {
            workspace_id: 7,
            workspace: "Research",
            thread_id: 318,
            thread: "Clean up drafts",
        }
    }

    #[test]
    fn a_doom_loop_offers_continue_and_stop_only() {
        let v = json!({
            "action_requests": [{"name": "unknown_tool", "args": {"q": 1}}],
            "review_configs": [{"action_name": "unknown_tool", "allowed_decisions": ["approve", "reject", "edit"]}],
            "interrupt_type": "permission_ask",
            "context": {"permission": "doom_loop", "recent_signatures": ["a"], "threshold": 3},
            "interrupt_id": "abc"});
        let r = request(&v, &place(), Utc::now(), None).expect("keyed by interrupt_id");
        assert_eq!(
            r.allowed_decisions,
            vec![AllowedDecision::Approve, AllowedDecision::Deny],
            "SurfSense ignores a doom-loop edit's arguments, so editing is not offered"
        );
        assert_eq!(
            r.remote_id, "318:abc",
            "parent-side asks are keyed by interrupt_id"
        );
        assert_eq!(r.extra.label.as_deref(), Some("doom-loop guard"));
    }

    #[test]
    fn approve_always_is_never_offered_on_a_self_gated_card() {
        let v = json!({
            "action_requests": [{"name": "send_gmail_email", "args": {"to": "a@b.c"}}],
            "review_configs": [{"action_name": "send_gmail_email", "allowed_decisions": ["approve", "approve_always", "reject"]}],
            "interrupt_type": "gmail_email_send", "context": {}, "tool_call_id": "call_1", "interrupt_id": "x"});
        let r = request(&v, &place(), Utc::now(), None).expect("keyed");
        assert!(
            !r.allowed_decisions.contains(&AllowedDecision::AlwaysAllow),
            "a self-gated card treats approve_always as a reject"
        );
        assert_eq!(
            r.remote_id, "318:call_1:x",
            "a stamped ask is known by its tool_call_id and its interrupt_id"
        );
        assert_eq!(r.title, "send_gmail_email a@b.c");
    }

    #[test]
    fn a_second_ask_under_the_same_tool_call_id_is_another_request() {
        let ask = |interrupt: &str, path: &str| {
            json!({
                "action_requests": [{"name": "rm", "args": {"path": path}}],
                "review_configs": [{"action_name": "rm", "allowed_decisions": ["approve", "reject"]}],
                "interrupt_type": "permission_ask", "context": {},
                "tool_call_id": "call_task", "interrupt_id": interrupt})
        };
        let first = request(&ask("i1", "/a.md"), &place(), Utc::now(), None).expect("keyed");
        let second = request(&ask("i2", "/b.md"), &place(), Utc::now(), None).expect("keyed");
        assert_ne!(
            first.remote_id, second.remote_id,
            "a subagent asks again under its task's tool_call_id; a decision on the first ask \
             must never reach the second"
        );
        assert_eq!(
            (first.route["key"].clone(), second.route["key"].clone()),
            (json!("call_task"), json!("call_task")),
            "both are still answered by tool_call_id on the wire"
        );
    }

    #[test]
    fn a_value_without_any_key_is_skipped() {
        let v = json!({"action_requests": [{"name": "rm", "args": {}}], "review_configs": []});
        assert!(request(&v, &place(), Utc::now(), None).is_none());
    }
}
