//! The event-log source: polls `topic_heads` every ~150 ms, folds new rows
//! into the HITL state, reports what changed, and answers by appending
//! harn's own records.

use crate::answer::{self, Answer, AnswerError, Written};
use crate::hitl::{self, wanted_topic, HitlState};
use crate::log::{self, LogError, Tail};
use crate::present;
use async_trait::async_trait;
use countersign_connector::{
    resolved_elsewhere, Connector, ConnectorError, Delivered, Snapshot, Update, UpdateStream,
};
use countersign_model::{
    Clock, Decision, Kind, ObservedActivity, ObservedRequest, Outcome, Request, Resolution, Status,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What a log account needs.
pub struct HarnLogConfig {
    pub path: PathBuf,
    /// The reviewer name answers are written under; must be on a request's
    /// allow-list when it has one.
    pub reviewer: String,
    pub poll: Duration,
    pub clock: Arc<dyn Clock>,
}

/// A harn project's event log, read and answered in place.
#[derive(Clone)]
pub struct HarnLog {
    inner: Arc<Inner>,
}

struct Inner {
    config: HarnLogConfig,
    state: Mutex<LogState>,
}

#[derive(Default)]
struct LogState {
    conn: Option<rusqlite::Connection>,
    tail: Tail,
    hitl: HitlState,
    /// What was last reported as pending, to report only changes.
    shown: HashMap<String, ObservedRequest>,
    /// Every activity item seen, oldest first.
    activity: Vec<ObservedActivity>,
}

fn unavailable(e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Unavailable(e.to_string())
}

impl LogState {
    /// The open connection, opening the log on first use.
    fn connection(
        &mut self,
        config: &HarnLogConfig,
    ) -> Result<&mut rusqlite::Connection, ConnectorError> {
        if self.conn.is_none() {
            self.conn = Some(log::open(&config.path).map_err(|e| match e {
                LogError::NotAnEventLog(_) | LogError::TooNew(_) => {
                    ConnectorError::Rejected(e.to_string())
                }
                e => unavailable(e),
            })?);
        }
        Ok(self.conn.as_mut().expect("opened above"))
    }

    /// Reads new rows; returns the activity items they held.
    fn refresh(&mut self, config: &HarnLogConfig) -> Result<Vec<ObservedActivity>, ConnectorError> {
        self.connection(config)?;
        let conn = self.conn.as_mut().expect("opened by connection()");
        let rows = match self.tail.read(conn, wanted_topic) {
            Ok(rows) => rows,
            Err(e) => {
                self.conn = None;
                return Err(unavailable(format!("reading the harn event log: {e}")));
            }
        };
        for row in rows {
            self.hitl.apply(row);
        }
        let rows = std::mem::take(&mut self.hitl.new_activity);
        let hitl = &self.hitl;
        let fresh: Vec<ObservedActivity> = rows
            .iter()
            .filter_map(present::activity)
            .map(|mut a| {
                // Trust records name the request id; the inbox knows the
                // ask by its remote id.
                if let Some(entry) = a
                    .request_remote_id
                    .as_deref()
                    .and_then(|id| hitl.entries.get(id))
                {
                    a.request_remote_id = Some(entry.remote_id());
                }
                a
            })
            .collect();
        self.activity.extend(fresh.iter().cloned());
        Ok(fresh)
    }

    fn pending(&self, config: &HarnLogConfig) -> Vec<ObservedRequest> {
        let now = config.clock.now();
        let mut out: Vec<ObservedRequest> = self
            .hitl
            .harn_pending()
            .filter(|e| present::ended(&self.hitl, e, &config.reviewer, now).is_none())
            .map(|e| {
                present::request(
                    &self.hitl,
                    e,
                    &config.reviewer,
                    json!({"source": "event_log", "kind": e.kind.as_str()}),
                    None,
                )
            })
            .collect();
        out.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        out
    }

    /// How the ask `remote_id` ended. An ask harn replaced by asking again
    /// under its request id ended then, whatever became of the new one.
    fn resolution(&self, config: &HarnLogConfig, remote_id: &str) -> Resolution {
        let (id, generation) = hitl::parse_remote_id(remote_id);
        let Some(e) = self.hitl.entries.get(id) else {
            return resolved_elsewhere(remote_id);
        };
        if generation.is_some_and(|g| g != e.generation) {
            return present::replaced(remote_id);
        }
        present::ended(&self.hitl, e, &config.reviewer, config.clock.now())
            .map(|r| Resolution {
                remote_id: remote_id.to_owned(),
                ..r
            })
            .unwrap_or_else(|| resolved_elsewhere(remote_id))
    }

    /// What changed since the last report.
    fn changes(&mut self, config: &HarnLogConfig, fresh: Vec<ObservedActivity>) -> Vec<Update> {
        let pending = self.pending(config);
        let mut updates = Vec::new();
        let mut now_shown = HashMap::with_capacity(pending.len());
        for p in pending {
            if self.shown.get(&p.remote_id) != Some(&p) {
                updates.push(Update::Request(Box::new(p.clone())));
            }
            now_shown.insert(p.remote_id.clone(), p);
        }
        let gone: Vec<String> = self
            .shown
            .keys()
            .filter(|id| !now_shown.contains_key(*id))
            .cloned()
            .collect();
        for id in gone {
            updates.push(Update::Resolved(self.resolution(config, &id)));
        }
        self.shown = now_shown;
        updates.extend(fresh.into_iter().map(Update::Activity));
        updates
    }
}

impl HarnLog {
    pub fn new(config: HarnLogConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                state: Mutex::new(LogState::default()),
            }),
        }
    }

    /// Runs `f` on the state on a blocking thread (SQLite calls block).
    async fn with_state<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut LogState, &HarnLogConfig) -> Result<T, ConnectorError> + Send + 'static,
    ) -> Result<T, ConnectorError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut state = inner.state.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut state, &inner.config)
        })
        .await
        .map_err(|e| unavailable(format!("event-log reader stopped: {e}")))?
    }
}

fn answer_for(request: &Request, decision: &Decision) -> Result<Answer, ConnectorError> {
    let reason = decision.comment.clone();
    match (decision.outcome, request.kind) {
        (Outcome::Approve, Kind::Escalation) => Ok(Answer::Accept { reason }),
        (Outcome::Approve, _) => Ok(Answer::Approve { reason }),
        (Outcome::Deny, _) => Ok(Answer::Deny { reason }),
        (Outcome::Respond, _) => {
            let text = decision.response.clone().unwrap_or_default();
            let answer = serde_json::from_str(&text).unwrap_or(Value::String(text));
            Ok(Answer::Value { answer, reason })
        }
        (other, _) => Err(ConnectorError::Rejected(format!(
            "harn has no `{other}` answer; approve, deny or answer instead"
        ))),
    }
}

#[async_trait]
impl Connector for HarnLog {
    async fn reconcile(&self) -> Result<Snapshot, ConnectorError> {
        self.with_state(|s, c| {
            s.refresh(c)?;
            let pending = s.pending(c);
            s.shown = pending
                .iter()
                .map(|p| (p.remote_id.clone(), p.clone()))
                .collect();
            Ok(Snapshot {
                pending,
                truncated: false,
                activity: s.activity.clone(),
                note: None,
            })
        })
        .await
    }

    async fn subscribe(&self) -> Result<Option<UpdateStream>, ConnectorError> {
        // harn has no cross-process push: a quick poll of `topic_heads`
        // (one small query) stands in for one.
        use futures::StreamExt;
        let poll = self.inner.config.poll;
        let stream = futures::stream::unfold(Some(self.clone()), move |this| async move {
            let this = this?;
            tokio::time::sleep(poll).await;
            let batch = this
                .with_state(|s, c| {
                    let fresh = s.refresh(c)?;
                    Ok(s.changes(c, fresh))
                })
                .await;
            match batch {
                Ok(updates) => Some((updates.into_iter().map(Ok).collect::<Vec<_>>(), Some(this))),
                // The engine logs the error and subscribes again.
                Err(e) => Some((vec![Err(e)], None)),
            }
        });
        let flat = stream.flat_map(futures::stream::iter);
        Ok(Some(flat.boxed()))
    }

    fn reconcile_interval(&self) -> Duration {
        Duration::from_secs(30)
    }

    async fn resolve_missing(&self, gone: &[Request]) -> Result<Vec<Resolution>, ConnectorError> {
        let ids: Vec<String> = gone.iter().map(|r| r.remote_id.clone()).collect();
        self.with_state(move |s, c| {
            s.refresh(c)?;
            Ok(ids.iter().map(|id| s.resolution(c, id)).collect())
        })
        .await
    }

    async fn deliver(
        &self,
        request: &Request,
        decision: &Decision,
    ) -> Result<Delivered, ConnectorError> {
        let answer = answer_for(request, decision)?;
        let id = request.remote_id.clone();
        // The envelope as the reviewer saw it: the store keeps it unchanged
        // while a decision on it is on its way.
        let seen = request.raw.clone();
        self.with_state(move |s, c| {
            // Answering re-reads what it needs inside its own transaction;
            // only a connection is needed, not a pass over the whole log.
            let conn = s.connection(c)?;
            let now = c.clock.now();
            let written = answer::answer(conn, &id, &seen, &c.reviewer, &answer, now);
            let expired = |at| Resolution {
                remote_id: id.clone(),
                status: Status::Expired,
                outcome: Some("timed out".into()),
                decided_by: None,
                decided_at: at,
            };
            match written {
                Ok(Written::Resolved | Written::Counted { .. }) => Ok(Delivered::Confirmed),
                Ok(Written::Replaced) => Ok(Delivered::ResolvedElsewhere(present::replaced(&id))),
                Ok(Written::AlreadyClosed { .. }) => {
                    s.refresh(c)?;
                    Ok(Delivered::ResolvedElsewhere(s.resolution(c, &id)))
                }
                Err(AnswerError::TimedOut) => Ok(Delivered::ResolvedElsewhere(expired(None))),
                Err(AnswerError::DeadlinePassed(at)) => {
                    Ok(Delivered::ResolvedElsewhere(expired(Some(at))))
                }
                Err(AnswerError::Sqlite(e)) => {
                    s.conn = None;
                    Err(unavailable(format!("writing to the harn event log: {e}")))
                }
                Err(e) => Err(ConnectorError::Rejected(e.to_string())),
            }
        })
        .await
    }
}
