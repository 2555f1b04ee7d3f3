//! Clawith's wire shapes turned into Countersign's model. Pure functions:
//! anything malformed is an `Err` (logged and skipped by the caller).

use crate::pylit;
use chrono::{DateTime, FixedOffset, Utc};
use countersign_model::{AllowedDecision, Kind, ObservedActivity, ObservedRequest};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// Both datetime forms Clawith writes (`…Z` and `…+00:00`, with or without
/// microseconds) are RFC 3339.
fn time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    let s = String::deserialize(d)?;
    DateTime::<FixedOffset>::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(serde::de::Error::custom)
}

fn opt_time<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => DateTime::<FixedOffset>::parse_from_rfc3339(&s)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(serde::de::Error::custom),
    }
}

/// A row of `GET /api/enterprise/approvals`.
#[derive(Debug, Clone, Deserialize)]
pub struct ApprovalRow {
    pub id: String,
    pub agent_id: String,
    #[serde(default)]
    pub agent_name: Option<String>,
    pub action_type: String,
    #[serde(default)]
    pub details: Value,
    pub status: String,
    #[serde(deserialize_with = "time")]
    pub created_at: DateTime<Utc>,
    #[serde(default, deserialize_with = "opt_time")]
    pub resolved_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub resolved_by: Option<String>,
}

/// A row of `GET /api/notifications`.
#[derive(Debug, Clone, Deserialize)]
pub struct NotificationRow {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub link: Option<String>,
    #[serde(default)]
    pub ref_id: Option<String>,
    #[serde(deserialize_with = "time")]
    pub created_at: DateTime<Utc>,
}

/// A row of `GET /api/enterprise/audit-logs`.
#[derive(Debug, Clone, Deserialize)]
pub struct AuditRow {
    pub id: String,
    #[serde(default)]
    pub agent_id: Option<String>,
    pub action: String,
    #[serde(default)]
    pub details: Value,
    #[serde(deserialize_with = "time")]
    pub created_at: DateTime<Utc>,
}

/// Parses a JSON array, keeping the rows that fit `T` and reporting the rest.
pub fn rows<T: for<'de> Deserialize<'de>>(
    body: &[u8],
    what: &str,
) -> Result<(Vec<T>, Vec<String>), String> {
    let raw: Vec<Value> =
        serde_json::from_slice(body).map_err(|e| format!("{what} is not a JSON array: {e}"))?;
    let mut ok = Vec::with_capacity(raw.len());
    let mut bad = Vec::new();
    for v in raw {
        match serde_json::from_value(v) {
            Ok(r) => ok.push(r),
            Err(e) => bad.push(format!("malformed {what} row: {e}")),
        }
    }
    Ok((ok, bad))
}

/// `details` as readable arguments: the legacy `args` repr string becomes
/// JSON when it parses (it is cut at 200 characters, so it may not);
/// anything that is not an object is kept as it came.
pub fn arguments(details: &Value) -> Value {
    let Some(obj) = details.as_object() else {
        return details.clone();
    };
    let mut out: Map<String, Value> = obj.clone();
    if let Some(Value::String(s)) = obj.get("args") {
        if let Some(parsed) = pylit::parse(s) {
            out.insert("args".into(), parsed);
        }
    }
    Value::Object(out)
}

fn summary(action_type: &str, args: &Value, details: &Value) -> String {
    let tool = details
        .get("tool")
        .and_then(Value::as_str)
        .unwrap_or(action_type);
    let target = ["path", "to", "recipient", "query", "target"]
        .iter()
        .find_map(|k| {
            args.get("args")
                .and_then(|a| a.get(*k))
                .and_then(Value::as_str)
        });
    match target {
        Some(t) => format!("{tool} {t}"),
        None => tool.to_owned(),
    }
}

/// A pending approval as a request.
pub fn request(row: &ApprovalRow, base: &str, raw: Value) -> ObservedRequest {
    let args = arguments(&row.details);
    let runtime = row.details.get("runtime_scope").is_some();
    ObservedRequest {
        remote_id: row.id.clone(),
        route: json!({ "agent_id": row.agent_id }),
        kind: Kind::Approval,
        title: summary(&row.action_type, &args, &row.details),
        action: row.action_type.clone(),
        arguments: args,
        description: Some(if runtime {
            "The agent's run is paused until you decide; rejecting stops it.".into()
        } else {
            "The agent went on without this action; approving runs the tool now, which can take a while.".into()
        }),
        agent: row
            .agent_name
            .clone()
            .or_else(|| Some(row.agent_id.clone())),
        tier: Some("L3".into()),
        created_at: row.created_at,
        deadline: None,
        allowed_decisions: vec![AllowedDecision::Approve, AllowedDecision::Deny],
        link: Some(format!("{base}/agents/{}#approvals", row.agent_id)),
        // `ApprovalAction` has only `action` (the doc's "Comments").
        extra: countersign_model::RequestExtra {
            comment_not_sent: true,
            ..Default::default()
        },
        raw,
    }
}

/// The fields of an approval row that make up the ask: who asks, for
/// what, with which arguments.
const ASK: [&str; 3] = ["agent_id", "action_type", "details"];

/// The first field of the ask that differs between the row as the
/// reviewer saw it and as it is pending now (an absent field counts as
/// `null`), or `None` when it is the same ask.
pub fn changed(seen: &Value, now: &Value) -> Option<&'static str> {
    let field = |v: &Value, k: &str| v.get(k).cloned().unwrap_or(Value::Null);
    ASK.into_iter().find(|k| field(seen, k) != field(now, k))
}

/// The agent id in a notification link (`/agents/<uuid>#…`).
pub fn agent_of_link(link: &str) -> Option<&str> {
    let rest = link.strip_prefix("/agents/")?;
    let id = rest.split(['#', '/', '?']).next()?;
    (id.len() == 36).then_some(id)
}

/// An `autonomy_l2` or `approval_resolved` notification as activity.
pub fn notification_activity(
    n: &NotificationRow,
    agent: Option<String>,
    raw: Value,
) -> ObservedActivity {
    ObservedActivity {
        remote_id: format!("notification:{}", n.id),
        event_type: n.kind.clone(),
        title: n.title.clone(),
        agent,
        details: json!({ "body": n.body, "link": n.link, "approval_id": n.ref_id }),
        occurred_at: n.created_at,
        raw,
        request_remote_id: n.ref_id.clone(),
    }
}

/// An L2 `autonomy_check:*` audit row as activity (admins see these for
/// agents they did not create, where no notification reaches them).
pub fn audit_activity(a: &AuditRow, agent: Option<String>, raw: Value) -> Option<ObservedActivity> {
    let action_type = a.action.strip_prefix("autonomy_check:")?;
    if a.details.get("level").and_then(Value::as_str) != Some("L2") {
        return None;
    }
    Some(ObservedActivity {
        remote_id: format!("audit:{}", a.id),
        event_type: "autonomy_l2".into(),
        title: format!(
            "[{}] executed: {action_type}",
            agent.as_deref().unwrap_or("agent")
        ),
        agent,
        details: arguments(&a.details),
        occurred_at: a.created_at,
        raw,
        request_remote_id: None,
    })
}

/// `detail` of Clawith's error envelope (a string, or a dict's `message`).
pub fn detail(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match v.get("detail") {
        Some(Value::String(s)) => s.clone(),
        Some(d) => d
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| d.to_string()),
        None => v
            .get("error")
            .and_then(|e| e.get("message"))
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| countersign_connector::http::excerpt(body)),
    }
}
