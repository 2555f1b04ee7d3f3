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
//!
//! **Identity.** An ask is `thread_id:interrupt_id` (`:index` added for
//! each tool call of a batched HITL interrupt), and
//! `thread_id:interrupt_id@run_id` (then `:index`) for a later ask under
//! an interrupt id whose earlier ask that run answered. The protocol
//! reference keys a pending approval by (`thread_id`, interrupt `id`)
//! (`langgraph.md`, "Summary"), and a re-interrupt in a new step does come
//! with a new id. But LangGraph derives the id from the namespace of the
//! task that raised the interrupt (`Interrupt.from_ns`), not from the
//! ask: a node that calls `interrupt()` again after a resume (an approval
//! loop, a second question) asks under the same id, on the same
//! checkpoint, with a new payload or even the same one. Keyed by the id
//! alone, that second ask updated the first in place, and a decision on
//! the first was sent to it. So the run that answered the id is part of
//! the identity: the newest successful run, created after the thread's
//! checkpoint (`/state`'s `created_at`), whose `command.resume` names the
//! id or is a plain value (see [`runs`]). Answers through the newer
//! `/commands` route are not runs, so an ask answered there and asked
//! again with the very same payload would still look like the first.
//!
//! **Before sending**, `/state` and the thread's runs are read again: an
//! ask no longer pending, or whose id a run answered since (the thread
//! moved on to a new ask under it), is not sent and ends resolved
//! elsewhere; an ask still pending but whose tool or arguments differ
//! from what the reviewer saw (a task that ran again recomputes its
//! payload) is not sent and goes back to the inbox.

pub mod present;
pub mod runs;

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
    /// By ask key ([`present::ask_key`]).
    first_seen: HashMap<String, DateTime<Utc>>,
}

/// What `GET /threads/{id}/state` says about a thread's asks.
#[derive(Default)]
struct ThreadState {
    /// The pending interrupts, `{id, value, response_schema?}`.
    interrupts: Vec<Value>,
    /// When the checkpoint they belong to was written; runs from before
    /// it cannot have answered them.
    checkpoint_at: Option<DateTime<Utc>>,
}

impl ThreadState {
    fn interrupt(&self, id: &str) -> Option<&Value> {
        self.interrupts
            .iter()
            .find(|i| i.get("id").and_then(Value::as_str) == Some(id))
    }
}

/// A LangGraph API server, for one account.
pub struct LangGraph {
    cfg: LangGraphConfig,
    base: String,
    threads: Mutex<HashMap<String, Seen>>,
}

/// Threads asked for per search page.
const PAGE: usize = 200;
/// Runs asked for per page of a thread's runs, and at most this many
/// pages: runs since one checkpoint are few (one per answer).
const RUN_PAGE: usize = 100;
const RUN_PAGES: usize = 10;
/// Starts the message of a delivery whose run did not finish in time,
/// followed by ` (run <id>)`; a retry that finds the interrupt gone, or
/// answered by that run, then knows it was ours.
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
    async fn state_of(&self, thread_id: &str) -> Result<Option<ThreadState>, ConnectorError> {
        let (status, headers, body) = self
            .call(self.request(Method::GET, &format!("/threads/{thread_id}/state")))
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(status_error(status, &headers, detail(&body, &[])));
        }
        Ok(Some(ThreadState {
            interrupts: body
                .get("interrupts")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            checkpoint_at: runs::created_at(&body),
        }))
    }

    /// For each of `ids` pending on the thread, the run that answered the
    /// ask before the pending one under that id (absent for a first ask).
    /// Without a checkpoint time there is no telling which runs matter,
    /// and every ask counts as a first one.
    async fn generations(
        &self,
        thread_id: &str,
        state: &ThreadState,
        ids: &[&str],
    ) -> Result<HashMap<String, String>, ConnectorError> {
        let Some(since) = state.checkpoint_at.filter(|_| !ids.is_empty()) else {
            return Ok(HashMap::new());
        };
        let mut found = HashMap::new();
        let mut offset = 0;
        for _ in 0..RUN_PAGES {
            let path = format!("/threads/{thread_id}/runs?limit={RUN_PAGE}&offset={offset}");
            let (status, headers, body) = self.call(self.request(Method::GET, &path)).await?;
            if status == StatusCode::NOT_FOUND {
                break;
            }
            if !status.is_success() {
                return Err(status_error(
                    status,
                    &headers,
                    format!("runs: {}", detail(&body, &[])),
                ));
            }
            let page = body.as_array().cloned().unwrap_or_default();
            // Newest first: once a page reaches the checkpoint, the rest
            // is older still.
            if runs::fold_page(&page, since, ids, &mut found) || page.len() < RUN_PAGE {
                break;
            }
            offset += page.len();
        }
        Ok(found.into_iter().map(|(id, (_, run))| (id, run)).collect())
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
            let Some(state) = self.state_of(id).await? else {
                continue;
            };
            let ids: Vec<&str> = state
                .interrupts
                .iter()
                .filter_map(|i| i.get("id").and_then(Value::as_str))
                .collect();
            let generations = self.generations(id, &state, &ids).await?;
            let mut first_seen = HashMap::new();
            let mut requests = Vec::new();
            for i in &state.interrupts {
                let iid = i.get("id").and_then(Value::as_str).unwrap_or("");
                let generation = generations.get(iid).map(String::as_str);
                let key = present::ask_key(iid, generation);
                let at = earlier.get(&key).copied().unwrap_or(now);
                let seen = *first_seen.entry(key).or_insert(at);
                requests.extend(present::requests(
                    i,
                    &present::Place {
                        thread_id: id,
                        graph: if graph.is_empty() { "graph" } else { graph },
                        assistant,
                        first_seen: seen,
                        generation,
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
        let generation_of = |r: &Request| {
            r.route
                .get("generation")
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let (thread, iid, assistant) = (
            text(first, "thread_id"),
            text(first, "interrupt_id"),
            text(first, "assistant_id"),
        );
        let generation = generation_of(first);
        if items.iter().any(|(r, _)| {
            text(r, "interrupt_id") != iid
                || text(r, "thread_id") != thread
                || generation_of(r) != generation
        }) {
            return Err(ConnectorError::Rejected(
                "decisions of different interrupts cannot be sent together".into(),
            ));
        }
        let resolved = || Delivered::ResolvedElsewhere(resolved_elsewhere(&first.remote_id));
        // Our own earlier attempt, if its run did not finish in time.
        // An earlier attempt that may have landed: one whose run had not
        // finished, or one sent with no answer at all (run unknown).
        let earlier: Option<String> = items
            .iter()
            .find_map(|(_, d)| unfinished_run(d).or_else(|| d.unsure_since.map(|_| String::new())));
        // Re-check right before sending: resuming an interrupt that is no
        // longer pending "succeeds" and does nothing.
        let state = self
            .state_of(&thread)
            .await
            .map_err(ConnectorError::before_sending)?
            .unwrap_or_default();
        let Some(live) = state.interrupt(&iid) else {
            return Ok(if earlier.is_some() {
                Delivered::Confirmed
            } else {
                resolved()
            });
        };
        // The id may stand for a later ask now: a run answered the one
        // decided, and the node asked again under the same id.
        let now = self
            .generations(&thread, &state, &[iid.as_str()])
            .await
            .map_err(ConnectorError::before_sending)?
            .remove(&iid);
        if now != generation {
            return Ok(match (&now, &earlier) {
                (Some(run), Some(ours)) if run == ours => Delivered::Confirmed,
                _ => resolved(),
            });
        }
        // The same ask: still as the reviewer saw it?
        let asks = present::requests(
            live,
            &present::Place {
                thread_id: &thread,
                graph: "",
                assistant: &assistant,
                first_seen: self.cfg.clock.now(),
                generation: generation.as_deref(),
            },
        );
        // A batched interrupt with another number of tool calls is not the
        // one decided, whichever of its calls still match.
        let same_calls = first
            .route
            .get("count")
            .and_then(Value::as_u64)
            .is_none_or(|n| n == asks.len() as u64);
        for (r, _) in items {
            let what = match asks.iter().find(|a| a.remote_id == r.remote_id) {
                Some(a) if same_calls && a.action != r.action => Some("tool"),
                Some(a) if same_calls && a.arguments != r.arguments => Some("arguments"),
                Some(_) if same_calls => None,
                _ => Some("tool calls"),
            };
            if let Some(what) = what {
                return Err(ConnectorError::Rejected(format!(
                    "not sent: the interrupt's {what} changed on LangGraph since you decided; look at it again"
                )));
            }
        }
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
            404 => return Ok(resolved()),
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
                "{UNFINISHED} (run {run_id}); checking the thread again later"
            ))),
            Some(s) if s == "success" => {
                let after = self.state_of(&thread).await?.unwrap_or_default();
                if after.interrupt(&iid).is_none() {
                    return Ok(Delivered::Confirmed);
                }
                // Pending again under the same id: a new ask if our run
                // answered the one decided.
                let answered_by = self
                    .generations(&thread, &after, &[iid.as_str()])
                    .await?
                    .remove(&iid);
                if answered_by.as_deref() == Some(run_id.as_str()) {
                    Ok(Delivered::Confirmed)
                } else {
                    Err(ConnectorError::Rejected(
                        "LangGraph ran the resume but the interrupt is still pending".into(),
                    ))
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

/// The run of an earlier attempt of this decision that had not finished
/// (`""` when its message predates naming the run).
fn unfinished_run(d: &Decision) -> Option<String> {
    let error = d.error.as_deref()?;
    let rest = &error[error.find(UNFINISHED)? + UNFINISHED.len()..];
    Some(
        rest.strip_prefix(" (run ")
            .and_then(|r| r.split_once(')'))
            .map(|(id, _)| id.to_owned())
            .unwrap_or_default(),
    )
}
