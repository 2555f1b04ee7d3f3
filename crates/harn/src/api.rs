//! The `harn serve api` source (0.10+): list permission requests, follow
//! the SSE event stream with resume by event id, answer with `respond`.
//!
//! The stream may silently skip events for a lagging subscriber, so every
//! permission event and every reconnect leads to a fresh list.

use crate::hitl::{Entry, HitlKind, HitlState};
use crate::present;
use async_trait::async_trait;
use countersign_connector::http::{body, excerpt, status_error, transport};
use countersign_connector::{
    resolved_elsewhere, Connector, ConnectorError, Delivered, Snapshot, Update, UpdateStream,
};
use countersign_model::{
    AllowedDecision, Kind, ObservedRequest, Outcome, Request, RequestExtra, Resolution, Secret,
    Status,
};
use countersign_model::{Decision, Fact};
use futures::StreamExt;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const PROTOCOL_HEADER: &str = "Harn-Agents-Protocol-Version";
pub const PROTOCOL_VERSION: &str = "agents-protocol-2026-10-11";

/// What an API account needs.
pub struct HarnApiConfig {
    pub base_url: String,
    pub api_key: Option<Secret>,
    /// Send the key as `X-API-Key` rather than `Authorization: Bearer`.
    pub key_header: bool,
    pub reviewer: String,
    pub http: reqwest::Client,
}

/// One `harn serve api` server.
#[derive(Clone)]
pub struct HarnApi {
    inner: Arc<ApiInner>,
}

struct ApiInner {
    config: HarnApiConfig,
    /// For the event stream only: no total timeout, but a read timeout
    /// longer than the server's keep-alive interval.
    stream_http: reqwest::Client,
    last_event_id: Mutex<Option<String>>,
}

impl HarnApi {
    pub fn new(config: HarnApiConfig) -> Self {
        let stream_http = countersign_connector::http::stream_client(Duration::from_secs(90));
        Self {
            inner: Arc::new(ApiInner {
                config,
                stream_http,
                last_event_id: Mutex::new(None),
            }),
        }
    }

    /// The id of the last stream event seen, used to resume.
    pub fn last_event_id(&self) -> Option<String> {
        self.inner
            .last_event_id
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn request(&self, client: &reqwest::Client, method: Method, path: &str) -> RequestBuilder {
        let c = &self.inner.config;
        let mut rb = client
            .request(method, format!("{}{path}", c.base_url))
            .header(PROTOCOL_HEADER, PROTOCOL_VERSION);
        if let Some(key) = &c.api_key {
            rb = if c.key_header {
                rb.header("X-API-Key", key.expose())
            } else {
                rb.bearer_auth(key.expose())
            };
        }
        rb
    }

    async fn send(&self, rb: RequestBuilder) -> Result<(StatusCode, Value), ConnectorError> {
        let resp = rb.send().await.map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = body(resp).await?;
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status.is_success() || status == StatusCode::CONFLICT || status == StatusCode::NOT_FOUND
        {
            return Ok((status, value));
        }
        Err(api_error(status, &headers, &value, &bytes))
    }

    /// Every permission request the server knows, all statuses.
    /// Every listed permission request, or only one task's (the list
    /// filters by `task_id`), following the cursor to the end.
    async fn list(&self, task_id: Option<&str>) -> Result<Vec<Value>, ConnectorError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let mut rb = self
                .request(
                    &self.inner.config.http,
                    Method::GET,
                    "/v1/permission-requests",
                )
                .query(&[("limit", "200")]);
            if let Some(t) = task_id {
                rb = rb.query(&[("task_id", t)]);
            }
            if let Some(c) = &cursor {
                rb = rb.query(&[("cursor", c.as_str())]);
            }
            let (status, page) = self.send(rb).await?;
            if !status.is_success() {
                return Err(ConnectorError::Protocol(format!(
                    "listing permission requests answered HTTP {status}"
                )));
            }
            let data = page
                .get("data")
                .and_then(Value::as_array)
                .ok_or_else(|| ConnectorError::Protocol("permission list without `data`".into()))?;
            out.extend(data.iter().cloned());
            cursor = page
                .get("next_cursor")
                .and_then(Value::as_str)
                .map(str::to_owned);
            if page.get("has_more") != Some(&Value::Bool(true)) || cursor.is_none() {
                break;
            }
        }
        Ok(out)
    }

    /// How the ask `remote_id` ended, from a list of every status; an ask
    /// the server no longer lists (it restarted) was resolved elsewhere,
    /// one it re-registered under the same id was replaced.
    fn resolution_in(&self, items: &[Value], remote_id: &str) -> Resolution {
        match find_ask(items, remote_id) {
            Ask::Listed(item) => self.resolution_of(item, remote_id),
            Ask::Replaced => present::replaced(remote_id),
            Ask::Gone => resolved_elsewhere(remote_id),
        }
    }

    fn resolution_of(&self, item: &Value, remote_id: &str) -> Resolution {
        let status = item.get("status").and_then(Value::as_str).unwrap_or("");
        let by = item
            .pointer("/response/reviewer")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let ours = by.as_deref() == Some(self.inner.config.reviewer.as_str());
        let s = match (status, ours) {
            ("approved", true) => Status::Approved,
            ("denied", true) => Status::Denied,
            _ => Status::ResolvedElsewhere,
        };
        Resolution {
            remote_id: remote_id.to_owned(),
            status: s,
            outcome: Some(status.to_owned()).filter(|s| !s.is_empty()),
            decided_by: by,
            decided_at: item.get("updated_at").and_then(crate::hitl::parse_time),
        }
    }
}

fn api_error(
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    value: &Value,
    bytes: &[u8],
) -> ConnectorError {
    let code = value
        .pointer("/error/code")
        .and_then(Value::as_str)
        .unwrap_or("");
    let message = value
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| excerpt(bytes));
    match status.as_u16() {
        426 => ConnectorError::Protocol(format!(
            "harn serve api does not speak {PROTOCOL_VERSION} (it supports {}); upgrade harn or Countersign",
            value
                .pointer("/error/details/supported_versions")
                .map(Value::to_string)
                .unwrap_or_else(|| "other versions".into())
        )),
        401 => ConnectorError::Auth(format!("harn serve api refused the API key ({code})")),
        _ => status_error(status, headers, format!("{code} {message}").trim().to_owned()),
    }
}

/// The inbox identity of a listed permission request:
/// `<id>@<created_at>`. `harn serve api` keeps one record per id and
/// re-registering an id (a replayed or re-run request) replaces that record
/// with a new `created_at`, so the pair names one registration — one ask.
/// An item without `created_at` is known by its id alone.
pub fn item_remote_id(item: &Value) -> Option<String> {
    let id = item.get("id")?.as_str()?;
    Some(match item.get("created_at").and_then(Value::as_str) {
        Some(created) => format!("{id}@{created}"),
        None => id.to_owned(),
    })
}

/// A remote id split into the server's id and the registration time; an
/// id without an RFC 3339 `@` suffix (stored before asks carried it) is
/// the id alone.
pub fn parse_remote_id(remote_id: &str) -> (&str, Option<&str>) {
    match remote_id.rsplit_once('@') {
        Some((id, created))
            if chrono::DateTime::parse_from_rfc3339(created).is_ok() && !id.is_empty() =>
        {
            (id, Some(created))
        }
        _ => (remote_id, None),
    }
}

/// Where the ask a remote id names stands in a list of every status.
enum Ask<'a> {
    /// Still this registration (pending or not).
    Listed(&'a Value),
    /// The id was registered again since: another ask.
    Replaced,
    /// Not listed at all.
    Gone,
}

fn find_ask<'a>(items: &'a [Value], remote_id: &str) -> Ask<'a> {
    let (id, created) = parse_remote_id(remote_id);
    let Some(item) = items
        .iter()
        .find(|i| i.get("id").and_then(Value::as_str) == Some(id))
    else {
        return Ask::Gone;
    };
    match created {
        Some(c) if item.get("created_at").and_then(Value::as_str) != Some(c) => Ask::Replaced,
        _ => Ask::Listed(item),
    }
}

/// What a reviewer decides on in a listed item.
fn item_content(item: &Value) -> Value {
    json!({
        "source": item.get("source"),
        "action": item.get("action"),
        "request": item.get("request"),
    })
}

/// A listed permission request as an inbox request.
pub fn request_from_item(item: &Value, reviewer: &str) -> Option<ObservedRequest> {
    let id = item.get("id")?.as_str()?.to_owned();
    let remote_id = item_remote_id(item)?;
    let route = json!({
        "source": "api",
        "session_id": item.get("session_id"),
        "task_id": item.get("task_id"),
    });
    let payload = item.get("request").cloned().unwrap_or(Value::Null);
    let created = item.get("created_at").cloned().unwrap_or(Value::Null);
    match (
        item.get("source").and_then(Value::as_str),
        HitlKind::of_id(&id),
    ) {
        (Some("hitl"), Some(kind)) => {
            let envelope = json!({
                "request_id": id, "kind": kind.as_str(), "agent": "",
                "trace_id": payload.pointer("/approval_request/trace_id").cloned().unwrap_or(Value::Null),
                "requested_at": payload.get("requested_at").cloned().unwrap_or(created),
                "payload": payload,
            });
            let entry = Entry {
                id: id.clone(),
                kind,
                first: envelope.clone(),
                latest: envelope,
                latest_event_id: 0,
                generation: 0,
            };
            let mut r = present::request(&HitlState::default(), &entry, reviewer, route, None);
            r.remote_id = remote_id;
            r.raw = item.clone();
            if let Some(p) = r.extra.progress.as_mut() {
                // The API keeps no count: the first answer closes its record.
                p.approvals = 0;
            }
            Some(r)
        }
        _ => {
            let tool = item
                .get("action")
                .and_then(Value::as_str)
                .unwrap_or("tool")
                .to_owned();
            Some(ObservedRequest {
                remote_id,
                route,
                kind: Kind::Approval,
                title: format!("Run {tool}"),
                action: tool,
                arguments: if payload.is_null() {
                    json!({})
                } else {
                    payload
                },
                description: None,
                agent: None,
                tier: None,
                created_at: crate::hitl::parse_time(&created).unwrap_or_default(),
                deadline: None,
                allowed_decisions: vec![AllowedDecision::Approve, AllowedDecision::Deny],
                link: None,
                extra: RequestExtra {
                    label: Some("tool permission".into()),
                    facts: ["session_id", "task_id"]
                        .iter()
                        .filter_map(|k| {
                            item.get(*k).filter(|v| v.is_string()).map(|v| Fact {
                                name: k.replace("_id", "").to_owned(),
                                value: v.clone(),
                            })
                        })
                        .collect(),
                    ..Default::default()
                },
                raw: item.clone(),
            })
        }
    }
}

#[async_trait]
impl Connector for HarnApi {
    async fn reconcile(&self) -> Result<Snapshot, ConnectorError> {
        let reviewer = self.inner.config.reviewer.clone();
        let pending = self
            .list(None)
            .await?
            .iter()
            .filter(|i| i.get("status").and_then(Value::as_str) == Some("pending"))
            .filter_map(|i| {
                let r = request_from_item(i, &reviewer);
                if r.is_none() {
                    tracing::warn!(
                        "harn: skipping a listed permission request without a string id"
                    );
                }
                r
            })
            .collect();
        Ok(Snapshot {
            pending,
            truncated: false,
            activity: Vec::new(),
            note: None,
        })
    }

    async fn subscribe(&self) -> Result<Option<UpdateStream>, ConnectorError> {
        let mut rb = self
            .request(&self.inner.stream_http, Method::GET, "/v1/events/stream")
            .header("Accept", "text/event-stream");
        if let Some(last) = self.last_event_id() {
            rb = rb.header("Last-Event-ID", last);
        }
        let resp = rb.send().await.map_err(transport)?;
        if !resp.status().is_success() {
            let status = resp.status();
            let headers = resp.headers().clone();
            let bytes = body(resp).await?;
            let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Err(api_error(status, &headers, &value, &bytes));
        }
        use eventsource_stream::Eventsource;
        let this = self.clone();
        let events = countersign_connector::http::without_bom(resp.bytes_stream()).eventsource();
        let stream = events
            .map(move |ev| -> Vec<Result<Update, ConnectorError>> {
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(e) => {
                        return vec![Err(ConnectorError::Unavailable(format!(
                            "event stream: {e}"
                        )))]
                    }
                };
                if !ev.id.is_empty() {
                    *this
                        .inner
                        .last_event_id
                        .lock()
                        .unwrap_or_else(|p| p.into_inner()) = Some(ev.id.clone());
                }
                match ev.event.as_str() {
                    "error" => {
                        // `cursor_unavailable`: start over from now, and re-list.
                        tracing::warn!("harn event stream error: {}", excerpt(ev.data.as_bytes()));
                        *this
                            .inner
                            .last_event_id
                            .lock()
                            .unwrap_or_else(|p| p.into_inner()) = None;
                        vec![
                            Ok(Update::Resync),
                            Err(ConnectorError::Unavailable(
                                "the event stream lost its place; reconnecting".into(),
                            )),
                        ]
                    }
                    e if e.starts_with("permission.") || e == "harn.hitl.requested" => {
                        vec![Ok(Update::Resync)]
                    }
                    "session.update" if ev.data.contains("hitl_") => vec![Ok(Update::Resync)],
                    _ => Vec::new(),
                }
            })
            .flat_map(futures::stream::iter);
        Ok(Some(stream.boxed()))
    }

    fn reconcile_interval(&self) -> Duration {
        Duration::from_secs(60)
    }

    async fn resolve_missing(&self, gone: &[Request]) -> Result<Vec<Resolution>, ConnectorError> {
        let items = self.list(None).await?;
        Ok(gone
            .iter()
            .map(|r| self.resolution_in(&items, &r.remote_id))
            .collect())
    }

    async fn deliver(
        &self,
        request: &Request,
        decision: &Decision,
    ) -> Result<Delivered, ConnectorError> {
        let c = &self.inner.config;
        let mut body = json!({"reviewer": c.reviewer});
        match decision.outcome {
            Outcome::Approve => body["approved"] = json!(true),
            Outcome::Deny => body["approved"] = json!(false),
            Outcome::Respond => {
                let text = decision.response.clone().unwrap_or_default();
                body["approved"] = json!(true);
                body["answer"] = serde_json::from_str(&text).unwrap_or(Value::String(text));
            }
            other => {
                return Err(ConnectorError::Rejected(format!(
                    "harn has no `{other}` answer; approve, deny or answer instead"
                )))
            }
        }
        if let Some(reason) = &decision.comment {
            body["reason"] = json!(reason);
        }
        // `respond` goes by id alone, so first make sure the ask listed under
        // it is the one decided, with the content the reviewer saw. (A
        // re-registration between this list and the POST cannot be seen:
        // the server offers no conditional respond.)
        let remote_id = request.remote_id.as_str();
        // Only the request's task is listed: the check costs one task's
        // requests, not harn's whole history.
        let task = request.route.get("task_id").and_then(Value::as_str);
        let listed = self
            .list(task)
            .await
            .map_err(ConnectorError::before_sending)?;
        match find_ask(&listed, remote_id) {
            Ask::Gone => {
                return Ok(Delivered::ResolvedElsewhere(resolved_elsewhere(remote_id)));
            }
            Ask::Replaced => {
                return Ok(Delivered::ResolvedElsewhere(present::replaced(remote_id)));
            }
            Ask::Listed(item) if item.get("status").and_then(Value::as_str) != Some("pending") => {
                return Ok(Delivered::ResolvedElsewhere(
                    self.resolution_of(item, remote_id),
                ));
            }
            Ask::Listed(item) if item_content(item) != item_content(&request.raw) => {
                return Err(ConnectorError::Rejected(format!(
                    "harn's request `{}` changed since you decided; nothing was sent, look at it again",
                    parse_remote_id(remote_id).0
                )));
            }
            Ask::Listed(_) => {}
        }
        let path = format!(
            "/v1/permission-requests/{}/respond",
            url::form_urlencoded::byte_serialize(parse_remote_id(remote_id).0.as_bytes())
                .collect::<String>()
        );
        let (status, value) = self
            .send(self.request(&c.http, Method::POST, &path).json(&body))
            .await?;
        match status {
            s if s.is_success() => Ok(Delivered::Confirmed),
            StatusCode::NOT_FOUND => {
                Ok(Delivered::ResolvedElsewhere(resolved_elsewhere(remote_id)))
            }
            _ => {
                // 409: answered already, in flight, or its task ended.
                let code = value
                    .pointer("/error/code")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if code == "task_terminal" {
                    return Ok(Delivered::ResolvedElsewhere(Resolution {
                        status: Status::Cancelled,
                        outcome: Some("the task ended".into()),
                        ..resolved_elsewhere(remote_id)
                    }));
                }
                let listed = self.list(task).await?;
                Ok(Delivered::ResolvedElsewhere(
                    self.resolution_in(&listed, remote_id),
                ))
            }
        }
    }
}
