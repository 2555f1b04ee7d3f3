//! The OpenCode connector (`shared/protocols/opencode.md`, opencode
//! 1.18.33): an `opencode serve` server, optionally behind Basic auth.
//!
//! Pending permission requests live in memory per directory instance. The
//! connector follows `/global/event` (all instances), remembers every
//! directory it sees, lists `GET /permission` for each on every reconcile
//! (the engine reconciles after each `server.connected`: a new one may mean
//! the server restarted and lost its requests), and replies with the
//! request's directory. A stream silent for 30 s (heartbeats come every
//! 10 s) is dropped and reconnected.
//!
//! **Identity.** A request's `remote_id` is the permission request's own
//! id, `per_…`, exactly as `GET /permission` and `permission.asked` give
//! it, and nothing else. The protocol doc's "Listing pending requests"
//! makes that id the id of one ask: `per_` + 12 hex digits of time and a
//! counter + 14 random characters, so a new ask never gets an old id. A
//! restart loses pending requests and their ids answer 404 ("Memory
//! only"); asks made after it get later ids. The server makes the id for
//! every ask itself (in opencode's source a tool's `ask` takes no id), so
//! one tool call that asks twice (`external_directory`, then `bash`)
//! makes two requests under the same `tool.callID`: the call id is not an
//! ask's identity. The directory is left out: the id does not depend on
//! the instance, and the server's own instance is listed both with and
//! without `?directory=`, which must stay one request. (Unchanged since
//! the first release, so stored ids need no migration.)
//!
//! Before replying, `deliver` lists `GET /permission` of the request's
//! instance and looks for its id. Not listed any more (answered
//! elsewhere, cascaded, lost in a restart, or followed by a new ask of
//! the same tool call): nothing is sent and the request ended elsewhere;
//! this also covers releases that answer 200 `true` to unknown ids.
//! Listed, but with another session, permission, patterns, `always`,
//! metadata or tool call than the reviewer saw (the doc applies
//! `permission.asked` as an upsert by id): nothing is sent and the
//! decision is refused, so the reviewer decides again. Only then does the
//! reply go out; a 404 to it still means resolved elsewhere. What the
//! reviewer saw is the stored `request.raw`. OpenCode has no conditional
//! reply, so a change between the list and the reply goes unseen; an ask
//! made anew in that gap has a new id, and the reply to the old id
//! answers 404.

/// Public so the property tests can reach the permission parser; the
/// connector is the only caller in the product.
pub mod present;

use async_trait::async_trait;
use base64::Engine as _;
use countersign_connector::http::{self, status_error, transport};
use countersign_connector::{
    resolved_elsewhere, Connector, ConnectorError, Delivered, Snapshot, Update, UpdateStream,
};
use countersign_model::{Decision, Outcome, Request, Resolution, Secret, Status};
use futures::StreamExt;
use reqwest::{RequestBuilder, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Per-account settings, stored in the account's `settings` JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Settings {
    /// The Basic auth user (`OPENCODE_SERVER_USERNAME`), `opencode` unless
    /// the server sets another. `login` is accepted too.
    #[serde(alias = "login")]
    pub username: String,
    /// Project directories to list besides the server's own and those
    /// seen on the event stream.
    pub directories: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            username: "opencode".into(),
            directories: Vec::new(),
        }
    }
}

/// What an OpenCode connector is built from.
pub struct OpenCodeConfig {
    pub base_url: String,
    pub password: Option<Secret>,
    pub settings: Settings,
    /// The name this account's decisions are recorded under.
    pub reviewer: String,
    pub http: reqwest::Client,
}

/// Silence after which the event stream counts as dead.
const STREAM_SILENCE: Duration = Duration::from_secs(30);

/// An OpenCode server, for one account.
#[derive(Clone)]
pub struct OpenCode {
    inner: Arc<Inner>,
}

struct Inner {
    base: String,
    auth: Option<Secret>,
    reviewer: String,
    http: reqwest::Client,
    stream_http: reqwest::Client,
    /// Directories seen on the stream or in settings (`None` = the
    /// server's own, listed without `?directory=`).
    directories: Mutex<BTreeSet<String>>,
    /// Requests we are replying to, with our reply: the
    /// `permission.replied` that follows is ours, not someone else's.
    ours: Mutex<HashMap<String, String>>,
}

impl OpenCode {
    pub fn new(cfg: OpenCodeConfig) -> Self {
        let auth = cfg.password.map(|p| {
            Secret::new(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    cfg.settings.username,
                    p.expose()
                ))
            ))
        });
        let stream_http = countersign_connector::http::stream_client(STREAM_SILENCE);
        let directories = cfg.settings.directories.iter().cloned().collect();
        Self {
            inner: Arc::new(Inner {
                base: cfg.base_url.trim_end_matches('/').to_owned(),
                auth,
                reviewer: cfg.reviewer,
                http: cfg.http,
                stream_http,
                directories: Mutex::new(directories),
                ours: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn authed(&self, rb: RequestBuilder) -> RequestBuilder {
        match &self.inner.auth {
            Some(a) => rb.header("authorization", a.expose()),
            None => rb,
        }
    }

    fn url(&self, path: &str, directory: Option<&str>) -> Result<reqwest::Url, ConnectorError> {
        let mut url = reqwest::Url::parse(&format!("{}{path}", self.inner.base))
            .map_err(|e| ConnectorError::Rejected(format!("bad server URL: {e}")))?;
        if let Some(d) = directory {
            url.query_pairs_mut().append_pair("directory", d);
        }
        Ok(url)
    }

    fn remember(&self, directory: &str) {
        self.inner
            .directories
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(directory.to_owned());
    }

    fn ours(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.inner.ours.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn list(&self, directory: Option<&str>) -> Result<Vec<Value>, ConnectorError> {
        let resp = self
            .authed(self.inner.http.get(self.url("/permission", directory)?))
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = http::body(resp).await?;
        if status == StatusCode::UNAUTHORIZED {
            return Err(ConnectorError::Auth(
                "OpenCode refused the password (Basic auth)".into(),
            ));
        }
        if !status.is_success() {
            return Err(status_error(status, &headers, http::excerpt(&body)));
        }
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ConnectorError::Protocol(format!("permission list: {e}")))?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// One stream frame as updates. Unknown types and malformed frames
    /// yield nothing.
    fn frame(&self, data: &str) -> Vec<Update> {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            tracing::warn!(
                "opencode: skipping a malformed event ({} bytes)",
                data.len()
            );
            return Vec::new();
        };
        let directory = v.get("directory").and_then(Value::as_str);
        let event = v.get("payload").unwrap_or(&v);
        let props = event.get("properties").cloned().unwrap_or(Value::Null);
        match event.get("type").and_then(Value::as_str) {
            Some("server.connected") | Some("server.instance.disposed") => vec![Update::Resync],
            Some("permission.asked") => {
                if let Some(d) = directory {
                    self.remember(d);
                }
                match present::request(&props, directory) {
                    Some(r) => vec![Update::Request(Box::new(r))],
                    None => {
                        tracing::warn!(
                            "opencode: skipping a permission request without id or session"
                        );
                        Vec::new()
                    }
                }
            }
            Some("permission.replied") => {
                let Some(id) = props.get("requestID").and_then(Value::as_str) else {
                    return Vec::new();
                };
                let reply = props
                    .get("reply")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                let mine = self.ours().remove(id);
                vec![Update::Resolved(match mine {
                    Some(how) => Resolution {
                        remote_id: id.to_owned(),
                        status: if how == "reject" {
                            Status::Denied
                        } else {
                            Status::Approved
                        },
                        outcome: Some(how),
                        decided_by: Some(self.inner.reviewer.clone()),
                        decided_at: None,
                    },
                    None => Resolution {
                        outcome: reply,
                        ..resolved_elsewhere(id)
                    },
                })]
            }
            _ => Vec::new(),
        }
    }
}

/// OpenCode's reply word for a decision.
fn reply_word(outcome: Outcome) -> Result<&'static str, ConnectorError> {
    Ok(match outcome {
        Outcome::Approve => "once",
        Outcome::AlwaysAllow => "always",
        Outcome::Deny => "reject",
        Outcome::Edit | Outcome::Respond => {
            return Err(ConnectorError::Rejected(
                "OpenCode takes once, always or reject (with an optional message)".into(),
            ))
        }
    })
}

#[async_trait]
impl Connector for OpenCode {
    async fn reconcile(&self) -> Result<Snapshot, ConnectorError> {
        let dirs: Vec<String> = self
            .inner
            .directories
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect();
        let mut pending = Vec::new();
        let mut seen = BTreeSet::new();
        // The server's own instance first, then every directory known.
        for dir in std::iter::once(None).chain(dirs.iter().map(|d| Some(d.as_str()))) {
            for v in self.list(dir).await? {
                let Some(r) = present::request(&v, dir) else {
                    tracing::warn!("opencode: skipping a listed request without id or session");
                    continue;
                };
                if seen.insert(r.remote_id.clone()) {
                    pending.push(r);
                }
            }
        }
        pending.sort_by(|a, b| a.remote_id.cmp(&b.remote_id));
        let instances = dirs.len() + 1;
        Ok(Snapshot {
            pending,
            truncated: false,
            activity: Vec::new(),
            note: Some(format!(
                "{instances} project {}",
                if instances == 1 {
                    "instance"
                } else {
                    "instances"
                }
            )),
        })
    }

    async fn subscribe(&self) -> Result<Option<UpdateStream>, ConnectorError> {
        use eventsource_stream::Eventsource;
        let resp = self
            .authed(self.inner.stream_http.get(self.url("/global/event", None)?))
            .header("accept", "text/event-stream")
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED {
            return Err(ConnectorError::Auth(
                "OpenCode refused the password (Basic auth)".into(),
            ));
        }
        if !status.is_success() {
            let headers = resp.headers().clone();
            let body = http::body(resp).await?;
            return Err(status_error(status, &headers, http::excerpt(&body)));
        }
        let me = self.clone();
        let stream = countersign_connector::http::without_bom(resp.bytes_stream())
            .eventsource()
            .flat_map(move |item| {
                let out: Vec<Result<Update, ConnectorError>> = match item {
                    Ok(ev) => me.frame(&ev.data).into_iter().map(Ok).collect(),
                    Err(e) => vec![Err(ConnectorError::Unavailable(format!(
                        "event stream: {e}"
                    )))],
                };
                futures::stream::iter(out)
            });
        Ok(Some(Box::pin(stream)))
    }

    fn reconcile_interval(&self) -> Duration {
        Duration::from_secs(60)
    }

    async fn deliver(
        &self,
        request: &Request,
        decision: &Decision,
    ) -> Result<Delivered, ConnectorError> {
        let how = reply_word(decision.outcome)?;
        let directory = request.route.get("directory").and_then(Value::as_str);
        let mut body = json!({"reply": how});
        // A message only means something with reject: the agent continues
        // with it as feedback (without one, it stops).
        if let (Outcome::Deny, Some(c)) = (decision.outcome, decision.comment.as_deref()) {
            body["message"] = json!(c);
        }
        let id = request.remote_id.clone();
        // The ask still pending must be the one decided (see the crate
        // doc's "Identity"); otherwise nothing is sent.
        let listed = self
            .list(directory)
            .await
            .map_err(ConnectorError::before_sending)?;
        let Some(current) = listed
            .iter()
            .find(|v| v.get("id").and_then(Value::as_str) == Some(id.as_str()))
        else {
            return Ok(Delivered::ResolvedElsewhere(resolved_elsewhere(&id)));
        };
        if let Some(field) = present::changed(&request.raw, current) {
            let now: String = current
                .get(field)
                .unwrap_or(&Value::Null)
                .to_string()
                .chars()
                .take(200)
                .collect();
            return Err(ConnectorError::Rejected(format!(
                "OpenCode's permission request {id} changed since you decided \
                 (its {field} is now {now}); nothing was sent, decide again"
            )));
        }
        self.ours().insert(id.clone(), how.to_owned());
        let url = self.url(&format!("/permission/{id}/reply"), directory)?;
        let sent = self
            .authed(self.inner.http.post(url))
            .json(&body)
            .send()
            .await;
        let result = match sent {
            Err(e) => Err(transport(e)),
            Ok(resp) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                let bytes = http::body(resp).await?;
                match status.as_u16() {
                    200 => Ok(Delivered::Confirmed),
                    // Answered elsewhere (the terminal), cascaded, or lost
                    // in a restart: never retried.
                    404 => Ok(Delivered::ResolvedElsewhere(resolved_elsewhere(&id))),
                    401 => Err(ConnectorError::Auth(
                        "OpenCode refused the password (Basic auth)".into(),
                    )),
                    400 => Err(ConnectorError::Rejected(format!(
                        "OpenCode refused the reply: {}",
                        http::excerpt(&bytes)
                    ))),
                    _ => Err(status_error(status, &headers, http::excerpt(&bytes))),
                }
            }
        };
        if !matches!(result, Ok(Delivered::Confirmed)) {
            self.ours().remove(&id);
        }
        result
    }
}
