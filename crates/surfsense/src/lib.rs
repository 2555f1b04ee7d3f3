//! The SurfSense connector (`shared/protocols/surfsense.md`, release
//! v0.0.38; `pending-interrupts` needs v0.0.36.3 or later).
//!
//! SurfSense has no cross-thread list and no push channel, so
//! [`Connector::reconcile`] walks workspaces → threads → each thread's
//! pending interrupts. A thread is asked again only when its `updatedAt`
//! moved, while it is paused, or in the full sweep every few minutes, so a
//! large account costs a few list calls a poll.
//!
//! Every ask of a thread is in one group: the thread resumes only when all
//! its asks are answered in one `/resume` call, so the inbox holds the
//! decisions until all are made and [`Connector::deliver_group`] sends
//! them together, read to `[DONE]` (closing early cancels the run).
//!
//! **Identity.** An ask is `thread_id:tool_call_id:interrupt_id`
//! (`thread_id:interrupt_id` for a parent-side ask, which has no
//! `tool_call_id`). The protocol reference once named `tool_call_id ??
//! interrupt_id`, but the real server reuses the `tool_call_id`: every ask
//! of one subagent run carries its parent `task` call's id, so a second
//! ask in one task comes with the same `tool_call_id`, a new
//! `interrupt_id` and new arguments (`surfsense.md`, "Verified against the
//! real server"). Keyed by `tool_call_id` alone, a decision on the first
//! ask was delivered to the second. On the wire decisions are still routed
//! by `tool_call_id ?? interrupt_id`, as `/resume` requires.
//!
//! **Before sending**, the thread's pending asks are read again, matched
//! by that identity, never by position: an ask decided but no longer
//! pending (answered elsewhere, or replaced by a new ask) is not sent and
//! ends resolved elsewhere; an ask whose tool or arguments differ from
//! what the reviewer saw is not sent and goes back to the inbox; the rest
//! of the thread is sent only when it is exactly the thread's pending set.
//!
//! **After sending**, the resume stream tells what the run did: a deny of
//! the doom-loop guard that SurfSense ignores (v0.0.38 runs on and makes
//! the repeated call) is confirmed with a note saying so.
//!
//! **Sessions.** With a password, the refresh token (and the access token
//! until it expires) is kept in the [`SessionStore`] given, shared with
//! every other process of the data dir: the server allows 5 logins a
//! minute per IP, so a process signs in only when no stored session can
//! be refreshed, and the session is bound to the password it was made
//! with, so a changed (or wrong) password is always tried.

mod auth;
pub mod present;
mod resume;

pub use auth::Credential;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use countersign_connector::http::{self, status_error, transport};
use countersign_connector::{
    resolved_elsewhere, Connector, ConnectorError, Delivered, SessionStore, Snapshot, UpdateStream,
};
use countersign_model::{Clock, Decision, ObservedRequest, Request, Secret};
use futures::StreamExt;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Per-account settings, stored in the account's `settings` JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Settings {
    /// The login email (unused with a personal access token). `login`
    /// is accepted too, as the CLI and the app name it for every platform.
    #[serde(alias = "login")]
    pub email: String,
    /// How often to look at the thread lists.
    pub poll_secs: u64,
    /// How often every thread is asked, changed or not.
    pub sweep_secs: u64,
    /// The web app's address, for links back to a thread.
    pub web_url: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            email: String::new(),
            poll_secs: 15,
            sweep_secs: 300,
            web_url: None,
        }
    }
}

/// What a SurfSense connector is built from.
pub struct SurfSenseConfig {
    pub base_url: String,
    /// The password, or a personal access token (`ss_pat_…`).
    pub secret: Option<Secret>,
    pub settings: Settings,
    pub http: reqwest::Client,
    pub clock: Arc<dyn Clock>,
    /// Where the login session is kept between processes; `None` keeps it
    /// in memory only.
    pub sessions: Option<Arc<dyn SessionStore>>,
}

/// What is known about one thread between passes.
#[derive(Debug, Clone, Default)]
struct Watched {
    workspace_id: i64,
    updated_at: String,
    /// Asked since its last change; `false` asks again next pass.
    checked: bool,
    pending: Vec<ObservedRequest>,
    /// When each ask was first seen, by [`present::ask_id`].
    first_seen: HashMap<String, DateTime<Utc>>,
}

#[derive(Default)]
struct Watch {
    threads: HashMap<i64, Watched>,
    last_sweep: Option<DateTime<Utc>>,
}

/// A SurfSense server, for one account.
pub struct SurfSense {
    base: String,
    settings: Settings,
    http: reqwest::Client,
    /// For `/resume`: no total timeout (a resumed run may work for
    /// minutes in silence), only a long read timeout.
    stream_http: reqwest::Client,
    clock: Arc<dyn Clock>,
    auth: auth::Auth,
    watch: Mutex<Watch>,
}

/// How many threads are asked at once.
const CONCURRENCY: usize = 4;
/// The workspace list's page size (the server's maximum).
const PAGE: usize = 200;

impl SurfSense {
    pub fn new(cfg: SurfSenseConfig) -> Self {
        let base = cfg.base_url.trim_end_matches('/').to_owned();
        let credential = cfg
            .secret
            .map(|s| Credential::from_secret(&cfg.settings.email, s));
        let stream_http = countersign_connector::http::stream_client(Duration::from_secs(600));
        Self {
            auth: auth::Auth::new(
                base.clone(),
                credential,
                cfg.http.clone(),
                cfg.clock.clone(),
                cfg.sessions,
            ),
            base,
            settings: cfg.settings,
            http: cfg.http,
            stream_http,
            clock: cfg.clock,
            watch: Mutex::new(Watch::default()),
        }
    }

    fn watch(&self) -> std::sync::MutexGuard<'_, Watch> {
        self.watch.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends an authenticated request; after a 401 renews the token once
    /// and sends again. Returns any other answer as it is.
    async fn send(
        &self,
        build: impl Fn(&str) -> RequestBuilder,
    ) -> Result<Response, ConnectorError> {
        let mut header = self.auth.header().await?;
        for attempt in 0..2 {
            let resp = build(header.expose()).send().await.map_err(transport)?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            if attempt == 0 {
                tracing::info!("surfsense: access token refused; renewing it");
                header = self.auth.after_refusal(&header).await?;
            }
        }
        Err(ConnectorError::Auth(
            "SurfSense refused a freshly issued token".into(),
        ))
    }

    /// GETs JSON. A plain `{"detail":"Not Found"}` (no error envelope)
    /// means the route does not exist on this server version.
    async fn get_json(&self, path: &str) -> Result<Value, ConnectorError> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .send(|auth| self.http.get(&url).header("authorization", auth))
            .await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = http::body(resp).await?;
        if status.is_success() {
            return serde_json::from_slice(&body)
                .map_err(|e| ConnectorError::Protocol(format!("{path}: {e}")));
        }
        if status == StatusCode::NOT_FOUND && is_plain_not_found(&body) {
            return Err(ConnectorError::Protocol(format!(
                "this SurfSense server has no {}; Countersign needs v0.0.36.3 or later",
                path.split('?').next().unwrap_or(path)
            )));
        }
        Err(match status.as_u16() {
            403 | 404 => ConnectorError::Rejected(auth::detail(&body)),
            _ => status_error(status, &headers, auth::detail(&body)),
        })
    }

    async fn workspaces(&self) -> Result<Vec<(i64, String)>, ConnectorError> {
        let mut out = Vec::new();
        for page in 0.. {
            let list = self
                .get_json(&format!(
                    "/api/v1/workspaces?skip={}&limit={PAGE}&owned_only=false",
                    page * PAGE
                ))
                .await?;
            let items = list.as_array().cloned().unwrap_or_default();
            for w in &items {
                match (
                    w.get("id").and_then(Value::as_i64),
                    w.get("name").and_then(Value::as_str),
                ) {
                    (Some(id), name) => out.push((id, name.unwrap_or("workspace").to_owned())),
                    _ => tracing::warn!("surfsense: skipping a workspace without an id"),
                }
            }
            if items.len() < PAGE {
                break;
            }
        }
        Ok(out)
    }

    /// A workspace's threads (archived included): (id, title, updatedAt).
    async fn threads(
        &self,
        workspace_id: i64,
    ) -> Result<Vec<(i64, String, String)>, ConnectorError> {
        let v = self
            .get_json(&format!("/api/v1/threads?workspace_id={workspace_id}"))
            .await?;
        let mut out = Vec::new();
        for list in ["threads", "archived_threads"] {
            for t in v.get(list).and_then(Value::as_array).into_iter().flatten() {
                let Some(id) = t.get("id").and_then(Value::as_i64) else {
                    tracing::warn!("surfsense: skipping a thread without an id");
                    continue;
                };
                let text = |k: &str| t.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                let title = Some(text("title"))
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| format!("thread {id}"));
                out.push((id, title, text("updatedAt")));
            }
        }
        Ok(out)
    }

    /// One thread's pending interrupts, in pending order.
    async fn pending_of(&self, thread_id: i64) -> Result<Vec<Value>, ConnectorError> {
        let v = self
            .get_json(&format!("/api/v1/threads/{thread_id}/pending-interrupts"))
            .await?;
        Ok(v.get("pending_interrupts")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// Asks a thread to be looked at on the next pass (after a resume,
    /// which may pause it again at once).
    fn mark_dirty(&self, thread_id: i64) {
        if let Some(w) = self.watch().threads.get_mut(&thread_id) {
            w.checked = false;
        }
    }
}

fn is_plain_not_found(body: &[u8]) -> bool {
    serde_json::from_slice::<Value>(body).ok().is_some_and(|v| {
        v.get("error").is_none() && v.get("detail").and_then(Value::as_str) == Some("Not Found")
    })
}

#[async_trait]
impl Connector for SurfSense {
    async fn reconcile(&self) -> Result<Snapshot, ConnectorError> {
        let now = self.clock.now();
        let sweep = {
            let w = self.watch();
            w.last_sweep.is_none_or(|at| {
                now - at >= chrono::Duration::seconds(self.settings.sweep_secs as i64)
            })
        };
        let workspaces = self.workspaces().await?;
        let mut listed: Vec<(i64, String, i64, String, String)> = Vec::new();
        let mut problems = Vec::new();
        for (ws, ws_name) in &workspaces {
            match self.threads(*ws).await {
                Ok(threads) => listed.extend(
                    threads
                        .into_iter()
                        .map(|(id, title, updated)| (*ws, ws_name.clone(), id, title, updated)),
                ),
                // One refused workspace (the PAT gate, a lost membership)
                // must not hide the others.
                Err(ConnectorError::Rejected(why)) => problems.push(format!("{ws_name}: {why}")),
                Err(e) => return Err(e),
            }
        }
        let to_check: Vec<(i64, String, i64, String, String)> = {
            let w = self.watch();
            listed
                .iter()
                .filter(|(_, _, id, _, updated)| {
                    sweep
                        || w.threads.get(id).is_none_or(|t| {
                            !t.checked || t.updated_at != *updated || !t.pending.is_empty()
                        })
                })
                .cloned()
                .collect()
        };
        let results: Vec<_> = futures::stream::iter(to_check)
            .map(|(ws, ws_name, id, title, updated)| async move {
                let result = self.pending_of(id).await;
                (ws, ws_name, id, title, updated, result)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;

        let mut w = self.watch();
        let present: HashSet<i64> = listed.iter().map(|t| t.2).collect();
        w.threads.retain(|id, _| present.contains(id));
        for (ws, ws_name, id, title, updated, result) in results {
            let entry = w.threads.entry(id).or_default();
            entry.workspace_id = ws;
            let values = match result {
                Ok(v) => v,
                Err(e @ ConnectorError::Auth(_)) => return Err(e),
                Err(ConnectorError::Rejected(why)) if why == "Thread not found" => {
                    w.threads.remove(&id);
                    continue;
                }
                Err(e) => {
                    // Keep what we knew; ask again next pass.
                    tracing::warn!("surfsense: thread {id}: {e}");
                    entry.checked = false;
                    problems.push(format!("thread {id}: {e}"));
                    continue;
                }
            };
            let place = present::Place {
                workspace_id: ws,
                workspace: &ws_name,
                thread_id: id,
                thread: &title,
            };
            let mut pending = Vec::new();
            let mut first_seen = HashMap::new();
            for v in &values {
                let Some(key) = present::ask_id(v) else {
                    tracing::warn!("surfsense: thread {id}: skipping an interrupt without tool_call_id or interrupt_id");
                    continue;
                };
                let seen = entry.first_seen.get(&key).copied().unwrap_or(now);
                first_seen.insert(key, seen);
                if let Some(r) = present::request(v, &place, seen, self.settings.web_url.as_deref())
                {
                    pending.push(r);
                }
            }
            entry.pending = pending;
            entry.first_seen = first_seen;
            entry.updated_at = updated;
            entry.checked = true;
        }
        if sweep {
            w.last_sweep = Some(now);
        }
        let paused = w.threads.values().filter(|t| !t.pending.is_empty()).count();
        let mut note = format!(
            "watching {} threads in {} workspaces, {paused} paused",
            w.threads.len(),
            workspaces.len()
        );
        if !problems.is_empty() {
            note.push_str(&format!("; skipped {}", problems.join("; ")));
        }
        let mut pending: Vec<ObservedRequest> =
            w.threads.values().flat_map(|t| t.pending.clone()).collect();
        pending.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.remote_id.cmp(&b.remote_id))
        });
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
        Duration::from_secs(self.settings.poll_secs.clamp(5, 600))
    }

    async fn deliver(
        &self,
        request: &Request,
        decision: &Decision,
    ) -> Result<Delivered, ConnectorError> {
        self.deliver_group(&[(request.clone(), decision.clone())])
            .await
            .pop()
            .unwrap_or(Err(ConnectorError::Protocol("nothing was sent".into())))
    }

    async fn deliver_group(
        &self,
        items: &[(Request, Decision)],
    ) -> Vec<Result<Delivered, ConnectorError>> {
        let Some((first, _)) = items.first() else {
            return Vec::new();
        };
        let all = |r: Result<Delivered, ConnectorError>| vec![r; items.len()];
        let route = |r: &Request, k: &str| r.route.get(k).and_then(Value::as_i64);
        let (Some(thread_id), Some(workspace_id)) =
            (route(first, "thread_id"), route(first, "workspace_id"))
        else {
            return all(Err(ConnectorError::Rejected(
                "this request has no thread to resume".into(),
            )));
        };
        if items
            .iter()
            .any(|(r, _)| route(r, "thread_id") != Some(thread_id))
        {
            return all(Err(ConnectorError::Rejected(
                "decisions of different threads cannot be sent together".into(),
            )));
        }
        let results = resume::deliver(self, thread_id, workspace_id, items).await;
        self.mark_dirty(thread_id);
        results
            .into_iter()
            .zip(items)
            .map(|(result, (request, _))| match result {
                Err(ConnectorError::Rejected(why)) if why == "Thread not found" => Ok(
                    Delivered::ResolvedElsewhere(resolved_elsewhere(&request.remote_id)),
                ),
                other => other,
            })
            .collect()
    }

    /// `GET /auth/session`: one cheap authenticated call.
    async fn probe(&self) -> Result<(), ConnectorError> {
        self.get_json("/auth/session").await.map(|_| ())
    }
}
