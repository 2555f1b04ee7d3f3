//! Answering a thread: every pending ask in one `/resume` call, matched by
//! `tool_call_id` (position for parent-side asks), the SSE answer read to
//! `[DONE]`, and an `error` frame inside the 200 treated as the failure it
//! is.

use crate::{auth, SurfSense};
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
}

async fn read_stream(resp: reqwest::Response) -> Streamed {
    use eventsource_stream::Eventsource;
    let mut out = Streamed::default();
    let mut events = resp.bytes_stream().eventsource();
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

pub(crate) async fn deliver(
    ss: &SurfSense,
    thread_id: i64,
    workspace_id: i64,
    items: &[(Request, Decision)],
) -> Result<Delivered, ConnectorError> {
    // The thread's asks now, in pending order: the call must answer all
    // of them, and nothing else.
    let pending = ss.pending_of(thread_id).await?;
    let keys: Vec<String> = pending
        .iter()
        .filter_map(|v| crate::present::card_key(v).map(str::to_owned))
        .collect();
    let ours: HashMap<&str, &(Request, Decision)> = items
        .iter()
        .filter_map(|item| {
            item.0
                .route
                .get("key")
                .and_then(Value::as_str)
                .map(|k| (k, item))
        })
        .collect();
    let pending_set: HashSet<&str> = keys.iter().map(String::as_str).collect();
    let ours_set: HashSet<&str> = ours.keys().copied().collect();
    if pending_set.is_disjoint(&ours_set) {
        let was_ours = items.iter().any(|(_, d)| {
            d.error
                .as_deref()
                .is_some_and(|e| e.contains(BROKEN_STREAM))
        });
        return Ok(if was_ours {
            // Our earlier call went through before its stream broke.
            Delivered::Confirmed
        } else {
            Delivered::ResolvedElsewhere(resolved_elsewhere(&items[0].0.remote_id))
        });
    }
    if pending_set != ours_set {
        return Err(ConnectorError::Unavailable(format!(
            "the thread's pending asks changed since they were decided ({} pending, {} decided); \
             waiting for the inbox to catch up",
            pending_set.len(),
            ours_set.len()
        )));
    }
    let mut decisions = Vec::with_capacity(keys.len());
    for key in &keys {
        let (request, decision) = ours[key.as_str()];
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
    match (streamed.error, streamed.done) {
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
                .filter_map(|v| crate::present::card_key(v).map(str::to_owned))
                .collect();
            if ours_set.iter().any(|k| still.contains(*k)) {
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
        (None, true) => Ok(Delivered::Confirmed),
        (None, false) => Err(ConnectorError::Uncertain(format!(
            "{BROKEN_STREAM}; checking whether SurfSense applied it"
        ))),
    }
}
