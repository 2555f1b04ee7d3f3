//! Answering a thread: every pending ask in one `/resume` call, each
//! checked against the thread right before sending (same ask, same
//! arguments) and routed by `tool_call_id` (position for parent-side
//! asks), the SSE answer read to `[DONE]`, an `error` frame inside the 200
//! treated as the failure it is, and what the run did afterwards read from
//! the stream.

use crate::{auth, present, SurfSense};
use countersign_connector::http::{self, retry_after, status_error};
use countersign_connector::{resolved_elsewhere, ConnectorError, Delivered};
use countersign_model::{Decision, Outcome, Request};
use futures::StreamExt;
use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::time::Duration;

/// Starts the message of a delivery whose fate is unknown; a retry that
/// finds the asks gone then knows they were ours.
const BROKEN_STREAM: &str = "the resume stream broke before its end";

/// The wire decision for one ask.
fn wire_decision(
    request: &Request,
    decision: &Decision,
    key: &str,
) -> Result<Value, ConnectorError> {
    let kind = match decision.outcome {
        Outcome::Approve => "approve",
        Outcome::Deny => "reject",
        Outcome::Edit => "edit",
        Outcome::AlwaysAllow => "approve_always",
        Outcome::Respond => {
            return Err(ConnectorError::Rejected(
                "SurfSense asks take approve, edit, reject or always; not a written answer".into(),
            ))
        }
    };
    let edited = match decision.outcome {
        // Shallow-merged over the original arguments by the server.
        Outcome::Edit => json!({"name": request.action,
                                "args": decision.edited_arguments.clone().unwrap_or_else(|| json!({}))}),
        _ => Value::Null,
    };
    Ok(json!({"type": kind, "edited_action": edited, "tool_call_id": key}))
}

/// What the stream said.
#[derive(Default)]
struct Streamed {
    done: bool,
    /// (errorCode, message) of the first `error` frame.
    error: Option<(String, String)>,
    /// Asks the resumed run paused on again.
    reinterrupts: usize,
    /// Tool calls the resumed run finished.
    tools_ran: usize,
}

async fn read_stream(resp: reqwest::Response) -> Streamed {
    use eventsource_stream::Eventsource;
    let mut out = Streamed::default();
    let mut events = countersign_connector::http::without_bom(resp.bytes_stream()).eventsource();
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("surfsense: resume stream: {e}");
                return out;
            }
        };
        if event.data.trim() == "[DONE]" {
            out.done = true;
            return out;
        }
        let Ok(frame) = serde_json::from_str::<Value>(&event.data) else {
            tracing::warn!(
                "surfsense: skipping a malformed resume frame ({} bytes)",
                event.data.len()
            );
            continue;
        };
        match frame.get("type").and_then(Value::as_str) {
            Some("error") if out.error.is_none() => {
                let text = |k: &str| {
                    frame
                        .get(k)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned()
                };
                // `diagnostic` is raw server text: logged, never shown.
                tracing::debug!("surfsense: resume error diagnostic: {}", text("diagnostic"));
                let message = Some(text("message"))
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| "the resume failed".into());
                out.error = Some((text("errorCode"), message));
            }
            Some("data-interrupt-request") => out.reinterrupts += 1,
            Some("tool-output-available") => out.tools_ran += 1,
            _ => {}
        }
    }
    out
}

/// How long a 409 asks us to wait: `retry-after-ms`, else `Retry-After`.
fn busy_wait(headers: &HeaderMap) -> Duration {
    headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
        .unwrap_or_else(|| retry_after(headers))
        .clamp(Duration::from_millis(500), Duration::from_secs(300))
}

/// How an ask decided in Countersign stands on the thread right before
/// sending.
enum Standing<'a> {
    /// Pending as the reviewer saw it.
    Same,
    /// No longer pending: answered elsewhere, or replaced by a new ask
    /// (a subagent asking again under the same `tool_call_id`).
    Gone,
    /// Pending under the same identity with another tool or arguments.
    Changed(&'a str),
}

fn standing<'a>(request: &Request, pending: &'a [Value]) -> Standing<'a> {
    let Some(now) = pending
        .iter()
        .find(|v| present::ask_id(v).as_deref() == Some(ask_id_of(request).as_str()))
    else {
        return Standing::Gone;
    };
    let (name, args) = present::action_of(now);
    if name != request.action || args != request.arguments {
        return Standing::Changed(if name != request.action {
            "tool"
        } else {
            "arguments"
        });
    }
    Standing::Same
}

/// The identity a stored request was made with (its route keeps the ids).
fn ask_id_of(request: &Request) -> String {
    present::ask_id(&request.route).unwrap_or_default()
}

/// Whether an earlier attempt of this decision may have gone through.
fn maybe_sent_before(decision: &Decision) -> bool {
    decision.unsure_since.is_some()
        || decision
            .error
            .as_deref()
            .is_some_and(|e| e.contains(BROKEN_STREAM))
}

/// Answers a thread. One result per item, in order.
pub(crate) async fn deliver(
    ss: &SurfSense,
    thread_id: i64,
    workspace_id: i64,
    items: &[(Request, Decision)],
) -> Vec<Result<Delivered, ConnectorError>> {
    let all = |r: Result<Delivered, ConnectorError>| vec![r; items.len()];
    // The thread's asks now: the call must answer all of them, exactly
    // the ones the reviewer decided, and nothing else.
    let pending = match ss.pending_of(thread_id).await {
        Ok(p) => p,
        Err(e) => return all(Err(e.before_sending())),
    };
    let standings: Vec<Standing<'_>> = items.iter().map(|(r, _)| standing(r, &pending)).collect();
    let live: HashSet<String> = items
        .iter()
        .zip(&standings)
        .filter(|(_, s)| matches!(s, Standing::Same))
        .map(|((r, _), _)| ask_id_of(r))
        .collect();
    let pending_ids: HashSet<String> = pending.iter().filter_map(present::ask_id).collect();
    let changed = standings.iter().any(|s| matches!(s, Standing::Changed(_)));
    // Sent only when nothing changed and the asks still as decided are
    // exactly the thread's pending set; the others end on their own.
    let sendable = !changed && !live.is_empty() && live == pending_ids;
    let sent = if sendable {
        let live_items: Vec<(Request, Decision)> = items
            .iter()
            .zip(&standings)
            .filter(|(_, s)| matches!(s, Standing::Same))
            .map(|(item, _)| item.clone())
            .collect();
        Some(send(ss, thread_id, workspace_id, &live_items, &pending, &live).await)
    } else {
        None
    };
    let waiting = if changed {
        "not sent: another ask of this thread changed since it was decided"
    } else {
        "not sent yet: the thread has a new ask; this goes with the others once that one is decided"
    };
    items
        .iter()
        .zip(standings)
        .map(|((request, decision), standing)| match standing {
            // Our earlier call went through before its stream broke.
            Standing::Gone if maybe_sent_before(decision) => Ok(Delivered::Confirmed),
            Standing::Gone => Ok(Delivered::ResolvedElsewhere(resolved_elsewhere(
                &request.remote_id,
            ))),
            Standing::Changed(what) => Err(ConnectorError::Rejected(format!(
                "not sent: the ask's {what} changed on SurfSense since you decided; look at it again"
            ))),
            Standing::Same => match &sent {
                Some(result) => result.clone(),
                None => Err(ConnectorError::Unavailable(waiting.into())),
            },
        })
        .collect()
}

async fn send(
    ss: &SurfSense,
    thread_id: i64,
    workspace_id: i64,
    items: &[(Request, Decision)],
    pending: &[Value],
    ours: &HashSet<String>,
) -> Result<Delivered, ConnectorError> {
    let by_id: HashMap<String, &(Request, Decision)> = items
        .iter()
        .map(|item| (ask_id_of(&item.0), item))
        .collect();
    // In the thread's pending order, each matched by its identity.
    let mut decisions = Vec::with_capacity(pending.len());
    for v in pending {
        let (Some(id), Some(key)) = (present::ask_id(v), present::wire_key(v)) else {
            continue;
        };
        let Some((request, decision)) = by_id.get(&id) else {
            continue;
        };
        decisions.push(wire_decision(request, decision, key)?);
    }
    let body = json!({
        "workspace_id": workspace_id,
        "decisions": decisions,
        "filesystem_mode": "cloud",
        "client_platform": "desktop",
    });
    let url = format!("{}/api/v1/threads/{thread_id}/resume", ss.base);
    let resp = ss
        .send(|auth| {
            ss.stream_http
                .post(&url)
                .header("authorization", auth)
                .header("accept", "text/event-stream")
                .json(&body)
        })
        .await?;
    let status = resp.status();
    if !status.is_success() {
        let headers = resp.headers().clone();
        let bytes = http::body(resp).await?;
        let why = auth::detail(&bytes);
        return Err(match status.as_u16() {
            409 => ConnectorError::RateLimited {
                retry_after: busy_wait(&headers),
            },
            403 | 404 | 422 => ConnectorError::Rejected(why),
            _ => status_error(status, &headers, why),
        });
    }
    // Read to the end: closing the stream early cancels the resumed run.
    let streamed = read_stream(resp).await;
    if streamed.reinterrupts > 0 {
        tracing::info!(
            "surfsense: thread {thread_id} paused again on {} asks",
            streamed.reinterrupts
        );
    }
    match (streamed.error.clone(), streamed.done) {
        (Some((code, _)), _) if matches!(code.as_str(), "THREAD_BUSY" | "TURN_CANCELLING") => {
            Err(ConnectorError::RateLimited {
                retry_after: Duration::from_secs(2),
            })
        }
        (Some((code, message)), _) => {
            // The error may concern the run after our decisions took; the
            // thread's pending list tells.
            let still: HashSet<String> = ss
                .pending_of(thread_id)
                .await?
                .iter()
                .filter_map(present::ask_id)
                .collect();
            if ours.iter().any(|k| still.contains(k)) {
                let code = if code.is_empty() {
                    String::new()
                } else {
                    format!(" ({code})")
                };
                Err(ConnectorError::Rejected(format!(
                    "SurfSense did not take the decisions: {message}{code}"
                )))
            } else {
                tracing::warn!("surfsense: thread {thread_id} resumed, then failed: {message}");
                Ok(Delivered::Confirmed)
            }
        }
        (None, true) => Ok(outcome(items, &streamed)),
        (None, false) => Err(ConnectorError::Uncertain(format!(
            "{BROKEN_STREAM}; checking whether SurfSense applied it"
        ))),
    }
}

/// What a finished resume did. A deny on the doom-loop guard must end the
/// turn; SurfSense v0.0.38 ignores it and makes the repeated call, which
/// the stream shows as tools running (or the thread pausing again). Only
/// a batch with nothing approved is judged, so no approved tool's run is
/// taken for it.
fn outcome(items: &[(Request, Decision)], streamed: &Streamed) -> Delivered {
    let doom_deny = items
        .iter()
        .any(|(r, d)| d.outcome == Outcome::Deny && present::is_doom_loop(&r.raw));
    let nothing_approved = items.iter().all(|(_, d)| d.outcome == Outcome::Deny);
    let went_on = streamed.tools_ran > 0 || streamed.reinterrupts > 0;
    if doom_deny && nothing_approved && went_on {
        let what = match streamed.tools_ran {
            0 => "and paused on a new ask".to_owned(),
            1 => "and made 1 more tool call".to_owned(),
            n => format!("and made {n} more tool calls"),
        };
        return Delivered::ConfirmedWithNote(format!(
            "SurfSense continued the run despite the deny {what}"
        ));
    }
    Delivered::Confirmed
}
