//! Pending LangGraph interrupts as inbox requests, in the three payload
//! formats (Agent Inbox `HumanInterrupt`, the HITL middleware's batched
//! `action_requests`, its per-call `tool_approval` with a
//! `response_schema`), and the answers each format takes.

use chrono::{DateTime, Utc};
use countersign_model::{
    AllowedDecision, Decision, Fact, Group, Kind, ObservedRequest, Outcome, RequestExtra,
};
use serde_json::{json, Value};

/// How an interrupt's `value` is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A list of one `HumanInterrupt` (the normal form).
    AgentInbox,
    /// A bare `HumanInterrupt`.
    AgentInboxBare,
    /// `{action_requests, review_configs}`: one decision per action.
    Batched,
    /// `{type: "tool_approval", …}` with a `response_schema`.
    PerCall,
    Unknown,
}

impl Format {
    pub fn of(value: &Value) -> Format {
        if value
            .as_array()
            .is_some_and(|a| !a.is_empty() && a.iter().all(|i| i.get("action_request").is_some()))
        {
            Format::AgentInbox
        } else if value.get("action_request").is_some() {
            Format::AgentInboxBare
        } else if field(value, "action_requests", "actionRequests").is_some() {
            Format::Batched
        } else if value.get("type").and_then(Value::as_str) == Some("tool_approval") {
            Format::PerCall
        } else {
            Format::Unknown
        }
    }

    fn name(self) -> &'static str {
        match self {
            Format::AgentInbox | Format::AgentInboxBare => "Agent Inbox",
            Format::Batched => "tool approval (batched)",
            Format::PerCall => "tool approval",
            Format::Unknown => "interrupt",
        }
    }
}

/// A key in snake_case or the JS agents' camelCase.
fn field<'a>(v: &'a Value, snake: &str, camel: &str) -> Option<&'a Value> {
    v.get(snake).or_else(|| v.get(camel))
}

/// Where an interrupt lives, and which ask under its id it is.
pub struct Place<'a> {
    pub thread_id: &'a str,
    pub graph: &'a str,
    /// What to send as `assistant_id`: the thread's assistant UUID, else
    /// its graph.
    pub assistant: &'a str,
    pub first_seen: DateTime<Utc>,
    /// The run that answered the ask before this one under the same
    /// interrupt id; `None` for the first ask under it.
    pub generation: Option<&'a str>,
}

/// An ask's key within its thread: the interrupt id, followed by
/// `@run_id` when an earlier ask under that id was answered by that run.
pub fn ask_key(interrupt_id: &str, generation: Option<&str>) -> String {
    match generation {
        Some(run) => format!("{interrupt_id}@{run}"),
        None => interrupt_id.to_owned(),
    }
}

fn words(list: Option<&Value>, map: fn(&str) -> Option<AllowedDecision>) -> Vec<AllowedDecision> {
    let mut out = Vec::new();
    for d in list
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(map)
    {
        if !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

fn hitl_word(w: &str) -> Option<AllowedDecision> {
    Some(match w {
        "approve" => AllowedDecision::Approve,
        "edit" => AllowedDecision::Edit,
        "reject" => AllowedDecision::Deny,
        "respond" => AllowedDecision::Respond,
        _ => return None,
    })
}

/// The decisions a per-call `response_schema` allows: the discriminator's
/// mapping keys, or the single plain schema's `type` const.
fn per_call_allowed(schema: Option<&Value>) -> Vec<AllowedDecision> {
    let Some(schema) = schema else {
        return Vec::new();
    };
    if let Some(map) = schema
        .pointer("/discriminator/mapping")
        .and_then(Value::as_object)
    {
        let keys: Vec<Value> = map.keys().map(|k| json!(k)).collect();
        return words(Some(&Value::Array(keys)), hitl_word);
    }
    schema
        .pointer("/properties/type/const")
        .and_then(Value::as_str)
        .and_then(hitl_word)
        .into_iter()
        .collect()
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// Every request one pending interrupt `{id, value, response_schema?}`
/// makes: one, or one per action of a batched interrupt.
pub fn requests(interrupt: &Value, place: &Place<'_>) -> Vec<ObservedRequest> {
    let Some(iid) = interrupt.get("id").and_then(Value::as_str) else {
        tracing::warn!(
            "langgraph: skipping an interrupt without a string id on thread {}",
            place.thread_id
        );
        return Vec::new();
    };
    let value = interrupt.get("value").cloned().unwrap_or(Value::Null);
    let schema = interrupt.get("response_schema").filter(|s| !s.is_null());
    let format = Format::of(&value);
    let key = ask_key(iid, place.generation);
    let mut base_facts = vec![
        Fact {
            name: "graph".into(),
            value: json!(place.graph),
        },
        Fact {
            name: "thread".into(),
            value: json!(place.thread_id),
        },
        Fact {
            name: "interrupt id".into(),
            value: json!(iid),
        },
        Fact {
            name: "format".into(),
            value: json!(format.name()),
        },
    ];
    if let Some(run) = place.generation {
        base_facts.push(Fact {
            name: "asked again after run".into(),
            value: json!(run),
        });
    }
    let agent = Some(format!(
        "{} · thread {}",
        place.graph,
        short(place.thread_id)
    ));
    let route = |index: Option<usize>, count: usize| {
        json!({"thread_id": place.thread_id, "interrupt_id": iid, "generation": place.generation,
               "assistant_id": place.assistant,
               "index": index, "count": count})
    };
    let make = |remote_id: String,
                action: String,
                args: Value,
                description: Option<String>,
                allowed: Vec<AllowedDecision>,
                extra: RequestExtra,
                route: Value| {
        let title = match headline(&args) {
            Some(h) => format!("{action} {h}"),
            None => action.clone(),
        };
        ObservedRequest {
            remote_id,
            route,
            kind: Kind::Approval,
            title,
            action,
            arguments: if args.is_null() { json!({}) } else { args },
            description,
            agent: agent.clone(),
            tier: None,
            created_at: place.first_seen,
            deadline: None,
            allowed_decisions: allowed,
            link: None,
            extra,
            raw: interrupt.clone(),
        }
    };
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    match format {
        Format::AgentInbox | Format::AgentInboxBare => {
            let item = if format == Format::AgentInbox { &value[0] } else { &value };
            let config = &item["config"];
            let flag = |k: &str| config.get(k).and_then(Value::as_bool) == Some(true);
            let mut allowed = Vec::new();
            for (k, d) in [
                ("allow_accept", AllowedDecision::Approve),
                ("allow_edit", AllowedDecision::Edit),
                ("allow_respond", AllowedDecision::Respond),
                ("allow_ignore", AllowedDecision::Deny),
            ] {
                if flag(k) {
                    allowed.push(d);
                }
            }
            let action = text(item.pointer("/action_request/action")).unwrap_or_else(|| "action".into());
            vec![make(
                format!("{}:{key}", place.thread_id),
                action,
                item.pointer("/action_request/args").cloned().unwrap_or(Value::Null),
                text(item.get("description")),
                allowed,
                RequestExtra { label: Some(format.name().into()), facts: base_facts, ..Default::default() },
                route(None, 1),
            )]
        }
        Format::Batched => {
            let actions = field(&value, "action_requests", "actionRequests")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let configs = field(&value, "review_configs", "reviewConfigs")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let n = actions.len();
            actions
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let config = configs.get(i).cloned().unwrap_or(Value::Null);
                    let allowed = words(field(&config, "allowed_decisions", "allowedDecisions"), hitl_word);
                    let mut facts = base_facts.clone();
                    if n > 1 {
                        facts.push(Fact { name: "tool call".into(), value: json!(format!("{} of {n}", i + 1)) });
                    }
                    let group = (n > 1).then(|| Group {
                        key: format!("interrupt:{key}"),
                        label: format!("interrupt with {n} tool calls"),
                    });
                    make(
                        format!("{}:{key}:{i}", place.thread_id),
                        text(a.get("name")).unwrap_or_else(|| "tool".into()),
                        a.get("args").or_else(|| a.get("arguments")).cloned().unwrap_or(Value::Null),
                        text(a.get("description")).or_else(|| text(config.get("description"))),
                        allowed,
                        RequestExtra { label: Some(format.name().into()), facts, group, ..Default::default() },
                        route(Some(i), n),
                    )
                })
                .collect()
        }
        Format::PerCall => {
            let mut facts = base_facts;
            if let Some(t) = value.get("tool_call_id") {
                facts.push(Fact { name: "tool call id".into(), value: t.clone() });
            }
            vec![make(
                format!("{}:{key}", place.thread_id),
                text(value.get("name")).unwrap_or_else(|| "tool".into()),
                value.get("args").cloned().unwrap_or(Value::Null),
                text(value.get("description")),
                per_call_allowed(schema),
                RequestExtra { label: Some(format.name().into()), facts, ..Default::default() },
                route(None, 1),
            )]
        }
        Format::Unknown => vec![make(
            format!("{}:{key}", place.thread_id),
            "interrupt".into(),
            value.clone(),
            None,
            Vec::new(),
            RequestExtra {
                label: Some("interrupt".into()),
                facts: base_facts,
                read_only: Some(
                    "the graph's payload is not a format Countersign knows (shown as raw JSON); answer it where the graph expects"
                        .into(),
                ),
                ..Default::default()
            },
            route(None, 1),
        )],
    }
}

fn headline(args: &Value) -> Option<String> {
    ["path", "to", "query", "command", "url", "title", "name"]
        .iter()
        .find_map(|k| args.get(k).and_then(Value::as_str))
        .map(|s| {
            s.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .take(80)
                .collect()
        })
}

/// The HITL middleware's `Decision` for one action.
fn hitl_decision(action: &str, d: &Decision) -> Result<Value, String> {
    Ok(match d.outcome {
        Outcome::Approve => json!({"type": "approve"}),
        Outcome::Edit => {
            let args = d.edited_arguments.clone().unwrap_or(Value::Null);
            if !args.is_object() {
                return Err("edited arguments must be a JSON object".into());
            }
            json!({"type": "edit", "edited_action": {"name": action, "args": args}})
        }
        Outcome::Deny => match &d.comment {
            Some(c) => json!({"type": "reject", "message": c}),
            None => json!({"type": "reject"}),
        },
        Outcome::Respond => {
            json!({"type": "respond", "message": d.response.clone().unwrap_or_default()})
        }
        Outcome::AlwaysAllow => return Err("LangGraph has no always-allow".into()),
    })
}

/// The resume value for one interrupt, from the decisions on its
/// request(s) (`(action index, action name, decision)`), checked against
/// the interrupt as it stands now. A wrong answer wedges a LangGraph
/// thread for good, so anything doubtful is refused here.
pub fn answer(
    interrupt: &Value,
    decided: &[(Option<usize>, &str, &Decision)],
) -> Result<Value, String> {
    let value = interrupt.get("value").cloned().unwrap_or(Value::Null);
    let format = Format::of(&value);
    match format {
        Format::AgentInbox | Format::AgentInboxBare => {
            let [(_, action, d)] = decided else {
                return Err("an Agent Inbox interrupt takes exactly one answer".into());
            };
            let item = if format == Format::AgentInbox {
                &value[0]
            } else {
                &value
            };
            let (kind, flag, args) = match d.outcome {
                Outcome::Approve => ("accept", "allow_accept", Value::Null),
                Outcome::Deny => ("ignore", "allow_ignore", Value::Null),
                Outcome::Respond => (
                    "response",
                    "allow_respond",
                    json!(d.response.clone().unwrap_or_default()),
                ),
                Outcome::Edit => {
                    let args = d.edited_arguments.clone().unwrap_or(Value::Null);
                    if !args.is_object() {
                        return Err("edited arguments must be a JSON object".into());
                    }
                    (
                        "edit",
                        "allow_edit",
                        json!({"action": action, "args": args}),
                    )
                }
                Outcome::AlwaysAllow => return Err("LangGraph has no always-allow".into()),
            };
            if item
                .pointer(&format!("/config/{flag}"))
                .and_then(Value::as_bool)
                != Some(true)
            {
                return Err(format!("this interrupt does not allow `{kind}`"));
            }
            let one = json!({"type": kind, "args": args});
            Ok(if format == Format::AgentInbox {
                json!([one])
            } else {
                one
            })
        }
        Format::Batched => {
            let actions = field(&value, "action_requests", "actionRequests")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let configs = field(&value, "review_configs", "reviewConfigs")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if decided.len() != actions.len() {
                return Err(format!(
                    "this interrupt needs one decision for each of its {} tool calls, got {}",
                    actions.len(),
                    decided.len()
                ));
            }
            let mut out = vec![Value::Null; actions.len()];
            for (index, action, d) in decided {
                let i = index
                    .filter(|i| *i < actions.len())
                    .ok_or("a decision names no tool call of this interrupt")?;
                let allowed = words(
                    configs
                        .get(i)
                        .and_then(|c| field(c, "allowed_decisions", "allowedDecisions")),
                    hitl_word,
                );
                if !allowed.contains(&d.outcome.requires()) {
                    return Err(format!(
                        "tool call {} does not allow `{}`",
                        i + 1,
                        d.outcome
                    ));
                }
                out[i] = hitl_decision(action, d)?;
            }
            if out.iter().any(Value::is_null) {
                return Err("two decisions for one tool call".into());
            }
            Ok(json!({"decisions": out}))
        }
        Format::PerCall => {
            let [(_, action, d)] = decided else {
                return Err("a per-call interrupt takes exactly one decision".into());
            };
            let answer = hitl_decision(action, d)?;
            let schema = interrupt
                .get("response_schema")
                .ok_or("the interrupt has no response_schema to check the answer against")?;
            let validator = jsonschema::validator_for(schema).map_err(|e| {
                format!("the interrupt's response_schema is not valid JSON Schema: {e}")
            })?;
            if let Some(err) = validator.iter_errors(&answer).next() {
                return Err(format!(
                    "the answer does not match the interrupt's response_schema: {err}"
                ));
            }
            Ok(answer)
        }
        Format::Unknown => Err("the interrupt's payload is not a format Countersign knows".into()),
    }
}
