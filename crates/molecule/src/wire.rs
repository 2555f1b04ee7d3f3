//! Molecule AI's wire shapes, turned into Countersign's model. Pure
//! functions over bytes and strings: anything malformed is an `Err` with a
//! reason (logged and skipped by the caller), never a panic.

use chrono::{DateTime, Duration, Utc};
use countersign_connector::Update;
use countersign_model::{
    AllowedDecision, Kind, ObservedActivity, ObservedRequest, Request, Resolution, Status,
};
use serde::Deserialize;
use serde_json::{json, Value};

/// One row of `GET /approvals/pending`.
#[derive(Debug, Deserialize)]
struct PendingRow {
    id: String,
    workspace_id: String,
    #[serde(default)]
    workspace_name: Option<String>,
    action: String,
    #[serde(default)]
    reason: Option<String>,
    created_at: DateTime<Utc>,
}

/// One row of `GET /workspaces/{ws}/approvals`.
#[derive(Debug, Clone, Deserialize)]
pub struct HistoryRow {
    pub id: String,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub task_id: Option<String>,
    pub status: String,
    #[serde(default)]
    pub decided_by: Option<String>,
    #[serde(default)]
    pub decided_at: Option<DateTime<Utc>>,
}

/// The `/ws` envelope.
#[derive(Debug, Deserialize)]
struct Envelope {
    event: String,
    #[serde(default)]
    workspace_id: String,
    timestamp: DateTime<Utc>,
    payload: Value,
}

/// The pending list and a workspace's history, at most this long, with no
/// pagination.
pub const LIST_CAP: usize = 50;

/// An approval or workspace id as Countersign keeps it: lower case. The
/// server echoes ids as the client wrote them in the path (an upper-case
/// UUID stays upper-case) while its own are lower-case, and Postgres
/// compares UUIDs regardless of case; so must we.
pub fn canonical_id(id: &str) -> String {
    id.to_ascii_lowercase()
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[allow(clippy::too_many_arguments)]
fn approval(
    id: &str,
    workspace_id: &str,
    agent: Option<String>,
    action: &str,
    reason: Option<&str>,
    task_id: Option<&str>,
    created_at: DateTime<Utc>,
    expiry: Duration,
    raw: Value,
) -> ObservedRequest {
    let mut arguments = serde_json::Map::new();
    if let Some(task) = non_empty(task_id) {
        arguments.insert("task_id".into(), Value::String(task));
    }
    let workspace_id = canonical_id(workspace_id);
    ObservedRequest {
        remote_id: canonical_id(id),
        route: json!({ "workspace_id": workspace_id }),
        kind: Kind::Approval,
        title: action.to_owned(),
        action: action.to_owned(),
        arguments: Value::Object(arguments),
        description: non_empty(reason),
        agent: agent.or(Some(workspace_id)),
        tier: None,
        created_at,
        // The server denies pending rows older than the expiry at its next
        // list call, without an event: that is the real deadline. A time so
        // far ahead that the sum overflows has none we can name.
        deadline: created_at.checked_add_signed(expiry),
        allowed_decisions: vec![AllowedDecision::Approve, AllowedDecision::Deny],
        link: None,
        extra: Default::default(),
        raw,
    }
}

/// Parses the pending list. A body that is not a JSON array is an error;
/// a malformed row is skipped and reported in the second value.
pub fn parse_pending(
    body: &[u8],
    expiry: Duration,
) -> Result<(Vec<ObservedRequest>, Vec<String>), String> {
    let rows: Vec<Value> = serde_json::from_slice(body)
        .map_err(|e| format!("pending list is not a JSON array: {e}"))?;
    let mut requests = Vec::with_capacity(rows.len());
    let mut skipped = Vec::new();
    for raw in rows {
        match serde_json::from_value::<PendingRow>(raw.clone()) {
            Ok(row) => requests.push(approval(
                &row.id,
                &row.workspace_id,
                non_empty(row.workspace_name.as_deref()),
                &row.action,
                row.reason.as_deref(),
                None,
                row.created_at,
                expiry,
                raw,
            )),
            Err(e) => skipped.push(format!("malformed pending row: {e}")),
        }
    }
    Ok((requests, skipped))
}

/// Parses a workspace's approval history, skipping malformed rows.
pub fn parse_history(body: &[u8]) -> Result<Vec<HistoryRow>, String> {
    let rows: Vec<Value> = serde_json::from_slice(body)
        .map_err(|e| format!("approval history is not a JSON array: {e}"))?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            serde_json::from_value::<HistoryRow>(r)
                .inspect_err(|e| tracing::warn!("molecule: skipping a malformed history row: {e}"))
                .ok()
        })
        .map(|row| HistoryRow {
            id: canonical_id(&row.id),
            ..row
        })
        .collect())
}

/// The first part of the ask that differs between the request as the
/// reviewer saw it and its row now (action, reason, task id; the task id
/// only where the reviewer saw one, as the pending list leaves it out),
/// or `None` when it is the same ask.
pub fn changed(seen: &Request, row: &HistoryRow) -> Option<&'static str> {
    // A row without the field says nothing about it (the server always
    // sends it; a release that did not must not refuse every decision).
    if row.action.as_deref().is_some_and(|a| a != seen.action) {
        return Some("action");
    }
    if non_empty(row.reason.as_deref()) != seen.description {
        return Some("reason");
    }
    let task = seen.arguments.get("task_id").and_then(Value::as_str);
    if task.is_some() && non_empty(row.task_id.as_deref()).as_deref() != task {
        return Some("task id");
    }
    None
}

/// Workspace id → name, from `GET /workspaces`.
pub fn parse_workspaces(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let rows: Vec<Value> = serde_json::from_slice(body)
        .map_err(|e| format!("workspace list is not a JSON array: {e}"))?;
    Ok(rows
        .iter()
        .filter_map(|w| {
            let pair = (|| {
                Some((
                    canonical_id(w.get("id")?.as_str()?),
                    w.get("name")?.as_str()?.to_owned(),
                ))
            })();
            if pair.is_none() {
                tracing::warn!("molecule: skipping a workspace without a string id and name");
            }
            pair
        })
        .collect())
}

/// How a history row ended, in model terms; `None` while still pending.
pub fn resolution_from_history(row: &HistoryRow) -> Option<Resolution> {
    let status = match (row.status.as_str(), row.decided_by.as_deref()) {
        ("pending", _) => return None,
        (_, Some("auto-expired")) => Status::Expired,
        _ => Status::ResolvedElsewhere,
    };
    Some(Resolution {
        remote_id: row.id.clone(),
        status,
        outcome: Some(row.status.clone()),
        decided_by: row.decided_by.clone(),
        decided_at: row.decided_at,
    })
}

fn field<'a>(payload: &'a Value, key: &str) -> Option<&'a str> {
    payload.get(key).and_then(Value::as_str)
}

fn shorten(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max).collect();
    out.push('…');
    out
}

/// Parses one WebSocket text frame. `Ok(None)` for events a reviewer does
/// not need (heartbeats, task counters…). `names` maps a workspace id to its
/// name where known.
pub fn parse_frame(
    text: &str,
    names: &dyn Fn(&str) -> Option<String>,
    expiry: Duration,
) -> Result<Option<Update>, String> {
    let envelope: Envelope =
        serde_json::from_str(text).map_err(|e| format!("not a Molecule event envelope: {e}"))?;
    let raw: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let p = &envelope.payload;
    if !p.is_object() {
        return Err(format!(
            "{} event with a non-object payload",
            envelope.event
        ));
    }
    let ws = canonical_id(&envelope.workspace_id);
    let ws = ws.as_str();
    let need = |key: &str| {
        field(p, key)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| format!("{} event without `{key}`", envelope.event))
    };
    let activity = |title: String| {
        Ok(Some(Update::Activity(ObservedActivity {
            // No id in the envelope; the nanosecond timestamp makes one, so a
            // replayed frame dedupes.
            remote_id: format!(
                "{}:{ws}:{}",
                envelope.event,
                envelope.timestamp.to_rfc3339()
            ),
            event_type: envelope.event.clone(),
            title,
            agent: names(ws).or_else(|| non_empty(Some(ws))),
            details: p.clone(),
            occurred_at: envelope.timestamp,
            raw: raw.clone(),
            request_remote_id: field(p, "approval_id").map(canonical_id),
        })))
    };
    match envelope.event.as_str() {
        "APPROVAL_REQUESTED" => Ok(Some(Update::Request(Box::new(approval(
            need("approval_id")?,
            ws,
            names(ws),
            need("action")?,
            field(p, "reason"),
            field(p, "task_id"),
            envelope.timestamp,
            expiry,
            raw.clone(),
        ))))),
        "APPROVAL_APPROVED" | "APPROVAL_DENIED" => {
            let decision = if envelope.event == "APPROVAL_APPROVED" {
                "approved"
            } else {
                "denied"
            };
            Ok(Some(Update::Resolved(Resolution {
                remote_id: canonical_id(need("approval_id")?),
                status: Status::ResolvedElsewhere,
                outcome: Some(field(p, "decision").unwrap_or(decision).to_owned()),
                decided_by: non_empty(field(p, "decided_by")),
                decided_at: Some(envelope.timestamp),
            })))
        }
        // Arrives under the parent workspace; the row itself stays pending
        // and is answered with its own workspace id, so this is news only.
        "APPROVAL_ESCALATED" => activity(format!(
            "Approval escalated from a sub-workspace: {}",
            shorten(need("action")?, 120)
        )),
        "AGENT_MESSAGE" => activity(format!(
            "Message: {}",
            shorten(field(p, "message").unwrap_or(""), 160)
        )),
        "ACTIVITY_LOGGED" => activity(shorten(
            field(p, "summary")
                .or_else(|| field(p, "activity_type"))
                .unwrap_or("Activity logged"),
            160,
        )),
        "WORKSPACE_OFFLINE" => activity("Workspace went offline".into()),
        "WORKSPACE_AWAITING_AGENT" => activity("Workspace is waiting for its agent".into()),
        "WORKSPACE_PROVISION_FAILED" => activity(format!(
            "Workspace failed to start: {}",
            shorten(field(p, "error").unwrap_or("unknown error"), 160)
        )),
        "WORKSPACE_DEGRADED" => activity(format!(
            "Workspace degraded: {}",
            shorten(field(p, "sample_error").unwrap_or("errors rising"), 160)
        )),
        "DELEGATION_FAILED" => activity(format!(
            "Delegation failed: {}",
            shorten(field(p, "error").unwrap_or("unknown error"), 160)
        )),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn requested_event_becomes_a_request_answerable_with_its_own_workspace() {
        let frame = r#"{"event":"APPROVAL_REQUESTED","workspace_id":"7a6b5c4d-3e2f-4a1b-9c8d-e7f6a5b4c3d2",
            "timestamp":"2026-04-27T14:02:11.408150231Z",
            "payload":{"approval_id":"0d9e8f7a-6b5c-4d3e-8f21-a0b1c2d3e4f5","action":"push tag v2.4.0","reason":"CI green","task_id":"task-311"}}"#;
        let Ok(Some(Update::Request(r))) = parse_frame(frame, &none, Duration::minutes(10)) else {
            panic!("a well-formed APPROVAL_REQUESTED must become a request");
        };
        assert_eq!(r.remote_id, "0d9e8f7a-6b5c-4d3e-8f21-a0b1c2d3e4f5");
        assert_eq!(
            r.route["workspace_id"], "7a6b5c4d-3e2f-4a1b-9c8d-e7f6a5b4c3d2",
            "decide must use the approval's own workspace"
        );
        assert_eq!(r.arguments["task_id"], "task-311");
        assert_eq!(
            r.deadline,
            Some(r.created_at + Duration::minutes(10)),
            "Molecule auto-denies after ten minutes, so that is the deadline"
        );
    }

    #[test]
    fn auto_expired_history_rows_are_expired_not_resolved_elsewhere() {
        let rows = parse_history(
            br#"[{"id":"a","status":"denied","decided_by":"auto-expired","decided_at":"2026-04-27T14:15:00.5Z"},
                 {"id":"b","status":"approved","decided_by":"bob","decided_at":null},
                 {"id":"c","status":"pending","decided_by":null}]"#,
        )
        .unwrap();
        let r: Vec<_> = rows.iter().map(resolution_from_history).collect();
        assert_eq!(r[0].as_ref().unwrap().status, Status::Expired);
        assert_eq!(r[1].as_ref().unwrap().status, Status::ResolvedElsewhere);
        assert_eq!(r[1].as_ref().unwrap().decided_by.as_deref(), Some("bob"));
        assert!(r[2].is_none(), "a pending row has not ended");
    }

    #[test]
    fn malformed_rows_are_skipped_not_fatal() {
        let (ok, skipped) = parse_pending(
            br#"[{"id":"a","workspace_id":"w","action":"x","reason":null,"status":"pending","created_at":"2026-04-27T14:02:11.40815Z"},
                 {"id":7}, "junk"]"#,
            Duration::minutes(10),
        )
        .unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(
            skipped.len(),
            2,
            "each bad row is reported so it can be logged"
        );
        assert!(parse_pending(b"{\"error\":\"x\"}", Duration::minutes(10)).is_err());
    }

    #[test]
    fn unknown_and_malformed_frames_are_errors_or_ignored() {
        let d = Duration::minutes(10);
        assert!(parse_frame("not json", &none, d).is_err());
        assert!(parse_frame(r#"{"event":"APPROVAL_REQUESTED","workspace_id":"w","timestamp":"2026-04-27T14:02:11Z","payload":{}}"#, &none, d).is_err());
        assert!(parse_frame(r#"{"event":"APPROVAL_REQUESTED","workspace_id":"w","timestamp":"2026-04-27T14:02:11Z","payload":[1]}"#, &none, d).is_err());
        assert_eq!(
            parse_frame(
                r#"{"event":"WORKSPACE_HEARTBEAT","workspace_id":"w","timestamp":"2026-04-27T14:02:11Z","payload":{}}"#,
                &none,
                d
            ),
            Ok(None)
        );
    }
}
