//! The LangGraph connector (`shared/protocols/langgraph.md`, langgraph-api
//! 0.16.7): a LangGraph API server (`langgraph dev` or LangGraph Platform),
//! with an optional API key.
//!
//! There is no feed of new interrupts, so [`Connector::reconcile`] pages
//! `POST /threads/search {"status":"interrupted"}` and reads
//! `GET /threads/{id}/state` (the authority on pending interrupts) only for
//! threads that are new or whose `updated_at` moved. Every pending
//! interrupt is a request; a batched HITL interrupt is one request per
//! tool call, grouped so they are answered together. Answers are checked
//! against the interrupt before anything is sent (a wrong one wedges the
//! thread for good), sent keyed by interrupt id, and confirmed from the
//! run and the thread state afterwards: a silent no-op ends as resolved
//! elsewhere.

pub mod present;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use countersign_connector::http::{self, retry_after, status_error, transport};
use countersign_connector::{
    resolved_elsewhere, Connector, ConnectorError, Delivered, Snapshot, UpdateStream,
};
use countersign_model::{Clock, Decision, ObservedRequest, Request, Secret};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Per-account settings, stored in the account's `settings` JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Settings {
    /// Only threads of these graphs (`metadata.graph_id`); all when empty.
    pub graphs: Vec<String>,
    /// The header the API key goes in (`x-api-key` on LangGraph
    /// Platform; deployments with custom auth may use `authorization`).
    pub api_key_header: String,
    pub poll_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            graphs: Vec::new(),
            api_key_header: "x-api-key".into(),
            poll_secs: 10,
        }
    }
}

/// What a LangGraph connector is built from.
pub struct LangGraphConfig {
    pub base_url: String,
    pub api_key: Option<Secret>,
    pub settings: Settings,
    pub http: reqwest::Client,
    pub clock: Arc<dyn Clock>,
    /// How long to wait for a resume run to finish before calling its
    /// outcome uncertain.
    pub run_wait: Duration,
}

struct Seen {
    updated_at: String,
    requests: Vec<ObservedRequest>,
    first_seen: HashMap<String, DateTime<Utc>>,
}

/// A LangGraph API server, for one account.
pub struct LangGraph {
    cfg: LangGraphConfig,
    base: String,
    threads: Mutex<HashMap<String, Seen>>,
}

/// Threads asked for per search page.
const PAGE: usize = 200;
/// Starts the message of a delivery whose run did not finish in time; a
/// retry that finds the interrupt gone then knows it was ours.
const UNFINISHED: &str = "the resume run had not finished";

impl LangGraph {
    pub fn new(cfg: LangGraphConfig) -> Self {
        let base = cfg.base_url.trim_end_matches('/').to_owned();
        Self {
            cfg,
            base,
            threads: Mutex::new(HashMap::new()),
        }
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let rb = self
            .cfg
            .http
            .request(method, format!("{}{path}", self.base));
        match &self.cfg.api_key {
            Some(k) => rb.header(self.cfg.settings.api_key_header.as_str(), k.expose()),
            None => rb,
        }
    }

    /// Sends and reads a JSON answer: `(status, headers, body)`; 401/403
    /// become an auth failure.
    async fn call(
        &self,
        rb: RequestBuilder,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, Value), ConnectorError> {
        let resp = rb.send().await.map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = http::body(resp).await?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if matches!(status.as_u16(), 401 | 403) {
            return Err(ConnectorError::Auth(format!(
                "LangGraph refused the API key: {}",
                detail(&body, &bytes)
            )));
        }
        Ok((status, headers, body))
    }

    async fn ok_json(
        &self,
        rb: RequestBuilder,
        what: &str,
    ) -> Result<(reqwest::header::HeaderMap, Value), ConnectorError> {
        let (status, headers, body) = self.call(rb).await?;
        if !status.is_success() {
            return Err(status_error(
                status,
                &headers,
                format!("{what}: {}", detail(&body, &[])),
            ));
        }
        Ok((headers, body))
    }

    /// Every interrupted thread: `(thread_id, updated_at, graph, assistant)`.
    async fn interrupted(&self) -> Result<Vec<(String, String, String, String)>, ConnectorError> {
        let filters: Vec<Value> = if self.cfg.settings.graphs.is_empty() {
            vec![json!({})]
        } else {
            self.cfg
                .settings
                .graphs
                .iter()
                .map(|g| json!({"graph_id": g}))
                .collect()
        };
        let mut out: Vec<(String, String, String, String)> = Vec::new();
        for metadata in filters {
            let mut offset = 0;
            loop {
                let body = json!({"status": "interrupted", "limit": PAGE, "offset": offset,
                    "sort_by": "created_at", "sort_order": "asc", "metadata": metadata,
                    "select": ["thread_id", "status", "updated_at", "metadata"]});
                let (headers, list) = self
                    .ok_json(
                        self.request(Method::POST, "/threads/search").json(&body),
                        "thread search",
                    )
                    .await?;
                let items = list.as_array().cloned().unwrap_or_default();
                for t in &items {
                    let text = |p: &str| {
                        t.pointer(p)
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned()
                    };
                    let id = text("/thread_id");
                    if id.is_empty() {
                        continue;
                    }
                    let graph = text("/metadata/graph_id");
                    let assistant = Some(text("/metadata/assistant_id"))
                        .filter(|a| !a.is_empty())
                        .unwrap_or_else(|| graph.clone());
                    if !out.iter().any(|(known, ..)| *known == id) {
                        out.push((id, text("/updated_at"), graph, assistant));
                    }
                }
                let next = headers
                    .get("x-pagination-next")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<usize>().ok());
                match next {
                    Some(n) if n > offset && !items.is_empty() => offset = n,
                    _ => break,
                }
            }
        }
        Ok(out)
    }

    /// The thread's pending interrupts, from `/state` (authoritative);
    /// `None` when the thread is gone.
    async fn pending_of(&self, thread_id: &str) -> Result<Option<Vec<Value>>, ConnectorError> {
        let (status, headers, body) = self
            .call(self.request(Method::GET, &format!("/threads/{thread_id}/state")))
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(status_error(status, &headers, detail(&body, &[])));
        }
        Ok(Some(
            body.get("interrupts")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        ))
    }

    async fn errored(&self) -> Option<u64> {
        let (_, n) = self
            .ok_json(
                self.request(Method::POST, "/threads/count")
                    .json(&json!({"status": "error"})),
                "count",
            )
            .await
            .ok()?;
        n.as_u64()
    }

    /// Waits for a run to leave `pending`/`running`; its final status.
    async fn run_status(
        &self,
        thread_id: &str,
        run_id: &str,
    ) -> Result<Option<String>, ConnectorError> {
        let deadline = tokio::time::Instant::now() + self.cfg.run_wait;
        loop {
            let (_, run) = self
                .ok_json(
                    self.request(Method::GET, &format!("/threads/{thread_id}/runs/{run_id}")),
                    "run",
                )
                .await?;
            let status = run
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            if !matches!(status.as_str(), "pending" | "running" | "") {
                return Ok(Some(status));
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
}

fn detail(body: &Value, bytes: &[u8]) -> String {
    body.get("detail")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| http::excerpt(bytes))
}

#[async_trait]
impl Connector for LangGraph {
    async fn reconcile(&self) -> Result<Snapshot, ConnectorError> {
        let listed = self.interrupted().await?;
        let now = self.cfg.clock.now();
        let mut fresh: HashMap<String, Seen> = HashMap::new();
        for (id, updated, graph, assistant) in &listed {
            let known = self
                .threads
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(id);
            let earlier = match known {
                Some(seen) if seen.updated_at == *updated => {
                    fresh.insert(id.clone(), seen);
                    continue;
                }
                Some(seen) => seen.first_seen,
                None => HashMap::new(),
            };
            let Some(interrupts) = self.pending_of(id).await? else {
                continue;
            };
            let mut first_seen = HashMap::new();
            let mut requests = Vec::new();
            for i in &interrupts {
                let iid = i.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
                let at = earlier.get(&iid).copied().unwrap_or(now);
                let seen = *first_seen.entry(iid).or_insert(at);
                requests.extend(present::requests(
                    i,
                    &present::Place {
                        thread_id: id,
                        graph: if graph.is_empty() { "graph" } else { graph },
                        assistant,
                        first_seen: seen,
                    },
                ));
            }
            fresh.insert(
                id.clone(),
                Seen {
                    updated_at: updated.clone(),
                    requests,
                    first_seen,
                },
            );
        }
        let pending: Vec<ObservedRequest> =
            fresh.values().flat_map(|s| s.requests.clone()).collect();
        let mut note = format!("{} interrupted threads", listed.len());
        if let Some(n) = self.errored().await.filter(|n| *n > 0) {
            note.push_str(&format!(", {n} in error"));
        }
        *self.threads.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(Snapshot {
            pending,
            truncated: false,
            activity: Vec::new(),
            note: Some(note),
        })
    }

    async fn subscribe(&self) -> Result<Option<UpdateStream>, ConnectorError> {
        Ok(None)
    }

    fn reconcile_interval(&self) -> Duration {
        Duration::from_secs(self.cfg.settings.poll_secs.clamp(2, 600))
    }

    async fn deliver(
        &self,
        request: &Request,
        decision: &Decision,
    ) -> Result<Delivered, ConnectorError> {
        self.deliver_interrupt(&[(request.clone(), decision.clone())])
            .await
    }

    async fn deliver_group(
        &self,
        items: &[(Request, Decision)],
    ) -> Vec<Result<Delivered, ConnectorError>> {
        // One interrupt, one resume: the result stands for every item.
        let result = self.deliver_interrupt(items).await;
        vec![result; items.len()]
    }
}

impl LangGraph {
    /// Answers one interrupt (every action of a batched HITL interrupt at
    /// once) and learns how the resumed run ended.
    async fn deliver_interrupt(
        &self,
        items: &[(Request, Decision)],
    ) -> Result<Delivered, ConnectorError> {
        let Some((first, _)) = items.first() else {
            return Ok(Delivered::Confirmed);
        };
        let text = |r: &Request, k: &str| {
            r.route
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let (thread, iid, assistant) = (
            text(first, "thread_id"),
            text(first, "interrupt_id"),
            text(first, "assistant_id"),
        );
        if items
            .iter()
            .any(|(r, _)| text(r, "interrupt_id") != iid || text(r, "thread_id") != thread)
        {
            return Err(ConnectorError::Rejected(
                "decisions of different interrupts cannot be sent together".into(),
            ));
        }
        // Re-check right before sending: resuming an interrupt that is no
        // longer pending "succeeds" and does nothing.
        let pending = self.pending_of(&thread).await?.unwrap_or_default();
        let Some(live) = pending
            .iter()
            .find(|i| i.get("id").and_then(Value::as_str) == Some(iid.as_str()))
        else {
            let was_ours = items
                .iter()
                .any(|(_, d)| d.error.as_deref().is_some_and(|e| e.contains(UNFINISHED)));
            return Ok(if was_ours {
                Delivered::Confirmed
            } else {
                Delivered::ResolvedElsewhere(resolved_elsewhere(&first.remote_id))
            });
        };
        let decided: Vec<(Option<usize>, &str, &Decision)> = items
            .iter()
            .map(|(r, d)| {
                (
                    r.route
                        .get("index")
                        .and_then(Value::as_u64)
                        .map(|i| i as usize),
                    r.action.as_str(),
                    d,
                )
            })
            .collect();
        let value = present::answer(live, &decided).map_err(|why| {
            ConnectorError::Rejected(format!("not sent, it would wedge the thread: {why}"))
        })?;
        // Keyed by interrupt id: required with several pending, safe with one.
        let body = json!({"assistant_id": assistant, "command": {"resume": {iid.clone(): value}},
                          "multitask_strategy": "reject"});
        let (status, headers, run) = self
            .call(
                self.request(Method::POST, &format!("/threads/{thread}/runs"))
                    .json(&body),
            )
            .await?;
        match status.as_u16() {
            200..=299 => {}
            404 => {
                return Ok(Delivered::ResolvedElsewhere(resolved_elsewhere(
                    &first.remote_id,
                )))
            }
            409 => {
                return Err(ConnectorError::RateLimited {
                    retry_after: if headers.contains_key(reqwest::header::RETRY_AFTER) {
                        retry_after(&headers)
                    } else {
                        Duration::from_secs(2)
                    },
                })
            }
            422 => return Err(ConnectorError::Rejected(detail(&run, &[]))),
            _ => return Err(status_error(status, &headers, detail(&run, &[]))),
        }
        let run_id = run
            .get("run_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        match self.run_status(&thread, &run_id).await? {
            None => Err(ConnectorError::Uncertain(format!(
                "{UNFINISHED}; checking the thread again later"
            ))),
            Some(s) if s == "success" => {
                let still = self.pending_of(&thread).await?.unwrap_or_default();
                if still
                    .iter()
                    .any(|i| i.get("id").and_then(Value::as_str) == Some(iid.as_str()))
                {
                    Err(ConnectorError::Rejected(
                        "LangGraph ran the resume but the interrupt is still pending".into(),
                    ))
                } else {
                    Ok(Delivered::Confirmed)
                }
            }
            Some(s) => {
                let (_, t) = self
                    .ok_json(
                        self.request(Method::GET, &format!("/threads/{thread}")),
                        "thread",
                    )
                    .await?;
                let why = t
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("no reason given");
                Err(ConnectorError::Rejected(format!(
                    "the resume run ended {s}: {why}"
                )))
            }
        }
    }
}
