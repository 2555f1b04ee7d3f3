//! The Molecule AI connector (`shared/protocols/molecule.md`).
//!
//! Pending approvals come from `GET /approvals/pending` (which, as a side
//! effect on the server, denies rows older than ten minutes) and, live, from
//! the canvas-mode WebSocket `/ws`. The socket drops messages silently and
//! has no replay, so the engine reconciles on every connect and every
//! [`Settings::reconcile_secs`]. Decisions go to
//! `POST /workspaces/{approval's own workspace}/approvals/{id}/decide`.
//! REST calls never carry an `Origin` header (an unlisted one gets 403).
//!
//! **Identity.** A request's `remote_id` is the approval's own `id`
//! (`approval_requests.id`, made by `gen_random_uuid()`), in lower case,
//! and nothing else; its workspace id, lower-cased too, is in the route.
//! That id names one ask for good (the protocol doc's "Data model", and
//! the handlers in `approvals.go`): action, reason, task id and context
//! are written only by the create's INSERT, deciding and the ten-minute
//! expiry change only status and `decided_*`, nothing is ever reopened,
//! a purge deletes rows, and a new ask always gets a new random UUID. The
//! id is unique across workspaces, so the workspace is not part of it.
//! Ids are lower-cased because, as "Checked against the real source"
//! says, the server echoes ids as the client wrote them in the path:
//! `APPROVAL_APPROVED`/`DENIED` carry the approval id and workspace id as
//! the deciding client spelled them, `APPROVAL_REQUESTED` the workspace
//! id as the agent spelled it, while the server's own ids (both lists,
//! REQUESTED's `approval_id`) are lower-case; an id echoed in upper case
//! is the same request. (Stored ids came from those lower-case sources,
//! so they need no migration.)
//!
//! Before deciding, `deliver` reads the workspace's history
//! (`GET /workspaces/{ws}/approvals`, which expires nothing). The row no
//! longer pending: nothing is sent, and it ended as history says (expired,
//! or decided elsewhere; on a retry, by our earlier attempt when verdict
//! and `decided_by` are ours). Missing from a history shorter than its
//! 50-row cap: the workspace was purged, nothing is sent, and the ask was
//! withdrawn. Pending, but with another action, reason or task id than
//! the reviewer saw: nothing is sent and the decision is refused, so the
//! reviewer decides again (the server cannot do that; the check guards
//! against a release that would). Only then does the decide go out. It
//! is one conditional UPDATE on id, workspace and `status = 'pending'`,
//! so it never lands on anything but that pending row; a 404 to it means
//! someone came first. Behind 50 newer rows of its workspace the row is
//! out of the history's sight, and that conditional decide is the only
//! check.

mod socket;
pub mod wire;

use async_trait::async_trait;
use chrono::Duration as ChronoDuration;
use countersign_connector::http::{self, excerpt, status_error, transport};
use countersign_connector::{
    resolved_elsewhere, Connector, ConnectorError, Delivered, Snapshot, UpdateStream,
};
use countersign_model::{Clock, Decision, Outcome, Request, Resolution, Secret, Status};
use reqwest::{RequestBuilder, StatusCode};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Per-account settings, stored in the account's `settings` JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Settings {
    /// `Origin` to send on the WebSocket upgrade when the server sets
    /// `CORS_ORIGINS` (then a missing Origin fails with 403).
    pub ws_origin: Option<String>,
    /// SaaS tenants answer a bare 404 without `X-Molecule-Org-Id`.
    pub org_id: Option<String>,
    /// Safety-net reconcile while the socket is up (the canvas uses 10 s).
    pub reconcile_secs: u64,
    /// Server-side auto-expiry of pending rows.
    pub expiry_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            ws_origin: None,
            org_id: None,
            reconcile_secs: 30,
            expiry_secs: 600,
        }
    }
}

/// What a Molecule connector is built from.
#[derive(Debug, Clone)]
pub struct MoleculeConfig {
    pub base_url: String,
    /// Admin or org API token.
    pub token: Option<Secret>,
    /// Sent as `decided_by`.
    pub reviewer: String,
    pub settings: Settings,
    pub http: reqwest::Client,
    pub clock: Arc<dyn Clock>,
}

/// A Molecule AI platform, for one account.
pub struct Molecule {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: MoleculeConfig,
    base: String,
    names: Mutex<HashMap<String, String>>,
    names_fetched: Mutex<Option<Instant>>,
}

impl Molecule {
    pub fn new(cfg: MoleculeConfig) -> Self {
        let base = cfg.base_url.trim_end_matches('/').to_owned();
        Self {
            inner: Arc::new(Inner {
                cfg,
                base,
                names: Mutex::new(HashMap::new()),
                names_fetched: Mutex::new(None),
            }),
        }
    }
}

/// `{"error": "..."}` bodies, or an excerpt of anything else.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
        .unwrap_or_else(|| excerpt(body))
}

impl Inner {
    fn expiry(&self) -> ChronoDuration {
        ChronoDuration::seconds(self.cfg.settings.expiry_secs as i64)
    }

    fn authed(&self, builder: RequestBuilder) -> RequestBuilder {
        let mut b = builder;
        if let Some(token) = &self.cfg.token {
            b = b.bearer_auth(token.expose());
        }
        if let Some(org) = &self.cfg.settings.org_id {
            b = b.header("X-Molecule-Org-Id", org);
        }
        b
    }

    /// Sends a request and returns the body of a 2xx answer. Other answers
    /// become errors, with Molecule's special cases explained.
    async fn call(&self, builder: RequestBuilder) -> Result<(StatusCode, Vec<u8>), ConnectorError> {
        let resp = self.authed(builder).send().await.map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = http::body(resp).await?;
        if status.is_success()
            || status == StatusCode::NOT_FOUND && !body.is_empty() && body.starts_with(b"{")
        {
            // A JSON 404 is a real answer the caller interprets.
            return Ok((status, body));
        }
        Err(match status.as_u16() {
            403 if body.is_empty() => ConnectorError::Auth(
                "the server refused this client's Origin; check the server's CORS_ORIGINS".into(),
            ),
            404 if body.is_empty() => ConnectorError::Auth(
                "the server answered a bare 404: a SaaS tenant needs the account's org id".into(),
            ),
            404 => ConnectorError::Protocol(
                "no Molecule AI API at this URL (404 page not found)".into(),
            ),
            _ => status_error(status, &headers, error_message(&body)),
        })
    }

    async fn get(&self, path: &str) -> Result<Vec<u8>, ConnectorError> {
        let (status, body) = self
            .call(self.cfg.http.get(format!("{}{path}", self.base)))
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Err(ConnectorError::Rejected(error_message(&body)));
        }
        Ok(body)
    }

    /// Refreshes workspace names, at most every 10 s (the socket asks on
    /// every unknown workspace).
    async fn refresh_names(&self) {
        {
            let mut last = self.names_fetched.lock().unwrap_or_else(|e| e.into_inner());
            if last.is_some_and(|t| t.elapsed() < Duration::from_secs(10)) {
                return;
            }
            *last = Some(Instant::now());
        }
        match self
            .get("/workspaces")
            .await
            .map(|b| wire::parse_workspaces(&b))
        {
            Ok(Ok(list)) => self
                .names
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(list),
            Ok(Err(why)) => tracing::warn!("molecule: skipping workspace list: {why}"),
            Err(e) => tracing::debug!("molecule: workspace names unavailable: {e}"),
        }
    }

    fn name_of(&self, workspace_id: &str) -> Option<String> {
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(workspace_id)
            .cloned()
    }

    async fn history(&self, workspace_id: &str) -> Result<Vec<wire::HistoryRow>, ConnectorError> {
        if Uuid::parse_str(workspace_id).is_err() {
            return Ok(Vec::new());
        }
        let body = self
            .get(&format!("/workspaces/{workspace_id}/approvals"))
            .await?;
        wire::parse_history(&body).map_err(ConnectorError::Protocol)
    }
}

fn workspace_of(request: &Request) -> Option<&str> {
    request.route.get("workspace_id").and_then(|v| v.as_str())
}

/// The row of `id` in a workspace's history.
fn row_of<'a>(rows: &'a [wire::HistoryRow], id: &str) -> Option<&'a wire::HistoryRow> {
    // History ids are canonical already (`parse_history`).
    let id = wire::canonical_id(id);
    rows.iter().find(|row| row.id == id)
}

/// How a request missing from its workspace's history ended. A history
/// shorter than its cap lists every row of the workspace, so the row was
/// deleted with its workspace (a purge, which sends no event): withdrawn.
/// A full one may just have pushed it out.
fn missing_from(rows: &[wire::HistoryRow], remote_id: &str) -> Resolution {
    if rows.len() < wire::LIST_CAP {
        Resolution {
            status: Status::Cancelled,
            ..resolved_elsewhere(remote_id)
        }
    } else {
        resolved_elsewhere(remote_id)
    }
}

#[async_trait]
impl Connector for Molecule {
    async fn reconcile(&self) -> Result<Snapshot, ConnectorError> {
        let body = self.inner.get("/approvals/pending").await?;
        let (pending, skipped) =
            wire::parse_pending(&body, self.inner.expiry()).map_err(ConnectorError::Protocol)?;
        for why in skipped {
            tracing::warn!("molecule: {why}");
        }
        {
            let mut names = self.inner.names.lock().unwrap_or_else(|e| e.into_inner());
            for r in &pending {
                if let (Some(ws), Some(agent)) = (workspace_of_observed(r), &r.agent) {
                    names.insert(ws.to_owned(), agent.clone());
                }
            }
        }
        Ok(Snapshot {
            truncated: pending.len() >= wire::LIST_CAP,
            pending,
            activity: Vec::new(),
            note: None,
        })
    }

    async fn subscribe(&self) -> Result<Option<UpdateStream>, ConnectorError> {
        self.inner.refresh_names().await;
        socket::open(self.inner.clone()).await.map(Some)
    }

    fn reconcile_interval(&self) -> Duration {
        Duration::from_secs(self.inner.cfg.settings.reconcile_secs.max(1))
    }

    async fn resolve_missing(&self, gone: &[Request]) -> Result<Vec<Resolution>, ConnectorError> {
        let mut by_workspace: BTreeMap<&str, Vec<&Request>> = BTreeMap::new();
        for r in gone {
            by_workspace
                .entry(workspace_of(r).unwrap_or(""))
                .or_default()
                .push(r);
        }
        let mut out = Vec::with_capacity(gone.len());
        for (ws, requests) in by_workspace {
            if Uuid::parse_str(ws).is_err() {
                // No history to ask (and a purge cannot be told apart).
                out.extend(requests.iter().map(|r| resolved_elsewhere(&r.remote_id)));
                continue;
            }
            let rows = self.inner.history(ws).await?;
            for r in requests {
                match row_of(&rows, &r.remote_id).map(wire::resolution_from_history) {
                    Some(Some(res)) => out.push(res),
                    // Still pending after all (a capped list): leave it be.
                    Some(None) => {}
                    None => out.push(missing_from(&rows, &r.remote_id)),
                }
            }
        }
        Ok(out)
    }

    async fn deliver(
        &self,
        request: &Request,
        decision: &Decision,
    ) -> Result<Delivered, ConnectorError> {
        let verdict = match decision.outcome {
            Outcome::Approve => "approved",
            Outcome::Deny => "denied",
            other => {
                return Err(ConnectorError::Rejected(format!(
                    "Molecule AI only takes approve or deny, not {other}"
                )))
            }
        };
        // Sent in lower case, as the doc advises (routes stored before ids
        // were canonical may hold the case an agent wrote).
        let ws = wire::canonical_id(workspace_of(request).unwrap_or_default());
        let ws = ws.as_str();
        let id = wire::canonical_id(&request.remote_id);
        // Non-UUIDs reach Postgres and come back as 500s: refuse them here.
        if Uuid::parse_str(ws).is_err() || Uuid::parse_str(&id).is_err() {
            return Err(ConnectorError::Rejected(
                "the request's workspace or approval id is not a UUID".into(),
            ));
        }
        let retry = decision.attempts > 1;
        // Ended elsewhere, or by an earlier attempt of ours whose answer
        // was lost (only a retry can have one).
        let ended = |row: &wire::HistoryRow| {
            if retry
                && row.status == verdict
                && row.decided_by.as_deref() == Some(&self.inner.cfg.reviewer)
            {
                return Delivered::Confirmed;
            }
            Delivered::ResolvedElsewhere(
                wire::resolution_from_history(row)
                    .unwrap_or_else(|| resolved_elsewhere(&request.remote_id)),
            )
        };
        // The ask still pending must be the one decided (see the crate
        // doc's "Identity"); otherwise nothing is sent.
        let rows = self
            .inner
            .history(ws)
            .await
            .map_err(ConnectorError::before_sending)?;
        match row_of(&rows, &request.remote_id) {
            Some(row) if row.status != "pending" => return Ok(ended(row)),
            Some(row) => {
                if let Some(part) = wire::changed(request, row) {
                    return Err(ConnectorError::Rejected(format!(
                        "Molecule AI's approval {} changed since you decided (its {part} is not \
                         what you saw); nothing was sent, decide again",
                        request.remote_id
                    )));
                }
            }
            None if rows.len() < wire::LIST_CAP => {
                return Ok(Delivered::ResolvedElsewhere(missing_from(
                    &rows,
                    &request.remote_id,
                )))
            }
            // Out of the history's sight: the conditional decide is the check.
            None => {}
        }
        let url = format!("{}/workspaces/{ws}/approvals/{id}/decide", self.inner.base);
        let body =
            serde_json::json!({ "decision": verdict, "decided_by": self.inner.cfg.reviewer });
        let (status, resp) = self
            .inner
            .call(self.inner.cfg.http.post(url).json(&body))
            .await?;
        if status.is_success() {
            return Ok(Delivered::Confirmed);
        }
        // 404: decided or expired since the check (the conditional update
        // changed nothing). History tells which, and whether an earlier
        // attempt of ours is what decided it.
        tracing::info!("molecule: decide answered 404: {}", error_message(&resp));
        let rows = self.inner.history(ws).await.unwrap_or_default();
        Ok(match row_of(&rows, &request.remote_id) {
            Some(row) => ended(row),
            None => Delivered::ResolvedElsewhere(resolved_elsewhere(&request.remote_id)),
        })
    }
}

fn workspace_of_observed(r: &countersign_model::ObservedRequest) -> Option<&str> {
    r.route.get("workspace_id").and_then(|v| v.as_str())
}
