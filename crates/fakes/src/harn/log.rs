//! The fake's event log: harn's schema and append, provenance on every row,
//! the four HITL producers, harn's response handling, waiters, and the
//! `hitl_pending` algorithm, each as the protocol document describes them.

use super::{approval_payload, harn_time, ApprovalOptions, WaitOutcome};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How replaying the responses ended: approved (last reviewer) or denied
/// (reviewer, reason).
type Verdict = Result<Option<String>, (Option<String>, Option<String>)>;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS topic_heads(topic TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events(topic TEXT NOT NULL, event_id INTEGER NOT NULL, kind TEXT NOT NULL,
    payload BLOB NOT NULL, headers TEXT NOT NULL, occurred_at_ms INTEGER NOT NULL,
    PRIMARY KEY(topic, event_id));
CREATE TABLE IF NOT EXISTS consumers(topic TEXT NOT NULL, consumer_id TEXT NOT NULL, cursor INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL, PRIMARY KEY(topic, consumer_id));
CREATE TABLE IF NOT EXISTS event_idempotency_keys(topic TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
    event_id INTEGER NOT NULL, PRIMARY KEY(topic, key, value));
CREATE TABLE IF NOT EXISTS _harn_sqlite_schema_versions(name TEXT PRIMARY KEY, version INTEGER NOT NULL CHECK(version > 0));
INSERT OR IGNORE INTO _harn_sqlite_schema_versions(name, version) VALUES ('event_log', 1);
";

/// Canonical JSON (keys sorted by bytes at every depth, compact).
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical(&m[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        s => s.to_string(),
    }
}

fn sha(text: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

fn row_hash(
    topic: &str,
    id: i64,
    kind: &str,
    payload: &Value,
    headers: &Map<String, Value>,
    at: i64,
) -> String {
    let mut h = headers.clone();
    h.remove("harn.provenance.record_hash");
    sha(&canonical(
        &json!({"topic": topic, "event_id": id, "kind": kind, "payload": payload,
        "headers": h, "occurred_at_ms": at}),
    ))
}

/// Checks every row's provenance headers in the log; `Err` names the first
/// broken row.
pub fn verify_log(path: &Path) -> Result<usize, String> {
    let conn = Connection::open(path).map_err(|e| e.to_string())?;
    let mut stmt = conn
        .prepare("SELECT topic, event_id, kind, payload, headers, occurred_at_ms FROM events ORDER BY topic, event_id")
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })
        .map_err(|e| e.to_string())?;
    let mut prev: Option<(String, String)> = None;
    let mut n = 0;
    for row in rows {
        let (topic, id, kind, payload, headers, at) = row.map_err(|e| e.to_string())?;
        let Ok(payload) = serde_json::from_slice::<Value>(&payload) else {
            prev = None;
            continue; // injected malformed rows have no valid hash to check
        };
        let headers: Map<String, Value> =
            serde_json::from_str(&headers).map_err(|e| e.to_string())?;
        let stored = headers
            .get("harn.provenance.record_hash")
            .and_then(Value::as_str);
        let computed = row_hash(&topic, id, &kind, &payload, &headers, at);
        if stored != Some(computed.as_str()) {
            return Err(format!(
                "{topic}#{id} ({kind}): record_hash {stored:?} != {computed}"
            ));
        }
        let expected_prev = prev
            .as_ref()
            .filter(|(t, _)| *t == topic)
            .map(|(_, h)| h.as_str());
        let linked = headers
            .get("harn.provenance.prev_hash")
            .and_then(Value::as_str);
        if linked != expected_prev {
            return Err(format!(
                "{topic}#{id} ({kind}): prev_hash {linked:?} != {expected_prev:?}"
            ));
        }
        prev = Some((topic, computed));
        n += 1;
    }
    Ok(n)
}

/// A harn project's event log, written the way harn writes it.
pub struct FakeHarnLog {
    path: PathBuf,
    conn: Mutex<Connection>,
    seq: AtomicU64,
}

/// A script blocked on one request: polls the waitpoint every 100 ms.
pub struct Waiter {
    rx: mpsc::Receiver<(WaitOutcome, Instant)>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Waiter {
    /// The outcome and when the waiter saw it, if it returns within `timeout`.
    pub fn result(&self, timeout: Duration) -> Option<(WaitOutcome, Instant)> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Kills the script: the request stays pending with nobody waiting.
    pub fn kill(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn open(path: &Path) -> Connection {
    let conn = Connection::open(path).expect("open fake harn log");
    conn.busy_timeout(Duration::from_secs(5))
        .expect("busy timeout");
    conn
}

/// harn's append: its own `BEGIN IMMEDIATE` transaction per row.
fn append(
    conn: &mut Connection,
    topic: &str,
    kind: &str,
    payload: &Value,
    headers: Map<String, Value>,
) -> i64 {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .expect("begin");
    let id = append_in(&tx, topic, kind, payload, headers);
    tx.commit().expect("commit");
    id
}

fn append_in(
    tx: &rusqlite::Transaction<'_>,
    topic: &str,
    kind: &str,
    payload: &Value,
    mut headers: Map<String, Value>,
) -> i64 {
    tx.execute(
        "INSERT OR IGNORE INTO topic_heads(topic, last_id) VALUES (?1, 0)",
        [topic],
    )
    .expect("head");
    tx.execute(
        "UPDATE topic_heads SET last_id = last_id + 1 WHERE topic = ?1",
        [topic],
    )
    .expect("bump");
    let id: i64 = tx
        .query_row(
            "SELECT last_id FROM topic_heads WHERE topic = ?1",
            [topic],
            |r| r.get(0),
        )
        .expect("id");
    let prev: Option<String> = tx
        .query_row(
            "SELECT headers FROM events WHERE topic = ?1 AND event_id < ?2 ORDER BY event_id DESC LIMIT 1",
            params![topic, id],
            |r| r.get(0),
        )
        .optional()
        .expect("prev");
    let at = Utc::now().timestamp_millis();
    headers.insert(
        "harn.provenance.schema".into(),
        json!("harn-eventlog-provenance-v1"),
    );
    if let Some(prev) = prev
        .and_then(|h| serde_json::from_str::<Map<String, Value>>(&h).ok())
        .and_then(|h| {
            h.get("harn.provenance.record_hash")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    {
        headers.insert("harn.provenance.prev_hash".into(), json!(prev));
    }
    let hash = row_hash(topic, id, kind, payload, &headers, at);
    headers.insert("harn.provenance.record_hash".into(), json!(hash));
    tx.execute(
        "INSERT INTO events(topic, event_id, kind, payload, headers, occurred_at_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![topic, id, kind, serde_json::to_vec(payload).expect("json"), Value::Object(headers).to_string(), at],
    )
    .expect("insert");
    id
}

fn hdr(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs.iter().map(|(k, v)| ((*k).into(), json!(v))).collect()
}

fn rows(conn: &Connection, topic: &str) -> Vec<(i64, String, Value, Map<String, Value>)> {
    let mut stmt = conn
        .prepare("SELECT event_id, kind, payload, headers FROM events WHERE topic = ?1 ORDER BY event_id")
        .expect("prepare");
    stmt.query_map([topic], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Vec<u8>>(2)?,
            r.get::<_, String>(3)?,
        ))
    })
    .expect("query")
    .filter_map(Result::ok)
    .filter_map(|(id, kind, p, h)| {
        Some((
            id,
            kind,
            serde_json::from_slice(&p).ok()?,
            serde_json::from_str(&h).unwrap_or_default(),
        ))
    })
    .collect()
}

fn request_id_of(payload: &Value, headers: &Map<String, Value>) -> Option<String> {
    headers
        .get("request_id")
        .and_then(Value::as_str)
        .or_else(|| payload.get("request_id").and_then(Value::as_str))
        .map(str::to_owned)
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn last_waitpoint(conn: &Connection, id: &str) -> Option<Value> {
    rows(conn, &format!("waitpoint.state.{}", sanitize(id)))
        .pop()
        .map(|r| r.2)
}

/// (topic, request event, id prefix) per kind.
const KINDS: [(&str, &str, &str, &str); 4] = [
    (
        "question",
        "hitl.questions",
        "hitl.question_asked",
        "hitl_question_",
    ),
    (
        "approval",
        "hitl.approvals",
        "hitl.approval_requested",
        "hitl_approval_",
    ),
    (
        "dual_control",
        "hitl.dual_control",
        "hitl.dual_control_requested",
        "hitl_dual_control_",
    ),
    (
        "escalation",
        "hitl.escalations",
        "hitl.escalation_issued",
        "hitl_escalation_",
    ),
];

fn kind_of(id: &str) -> Option<(&'static str, &'static str, &'static str, &'static str)> {
    KINDS.into_iter().find(|k| id.starts_with(k.3))
}

impl FakeHarnLog {
    /// Creates `<dir>/.harn/events.sqlite` as `harn run` does.
    pub fn create(dir: &Path) -> FakeHarnLog {
        let state = dir.join(".harn");
        std::fs::create_dir_all(&state).expect("state dir");
        let path = state.join("events.sqlite");
        let conn = open(&path);
        conn.execute_batch(SCHEMA).expect("schema");
        FakeHarnLog {
            path,
            conn: Mutex::new(conn),
            seq: AtomicU64::new(1),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one row the way harn does.
    pub fn append(
        &self,
        topic: &str,
        kind: &str,
        payload: &Value,
        headers: Map<String, Value>,
    ) -> i64 {
        append(&mut self.conn(), topic, kind, payload, headers)
    }

    fn new_id(&self, prefix: &str) -> String {
        // UUIDv7-shaped enough: the prefix is what harn relies on.
        format!(
            "{prefix}{}-{:04}",
            uuid::Uuid::new_v4(),
            self.seq.fetch_add(1, Ordering::SeqCst)
        )
    }

    /// Waitpoint first, then the request event, in separate transactions.
    fn issue(&self, kind: &str, id: &str, agent: &str, payload: Value) -> String {
        let (_, topic, event, _) = KINDS.into_iter().find(|k| k.0 == kind).expect("kind");
        let now = Utc::now();
        let trace = format!("trace_{}", uuid::Uuid::new_v4());
        let envelope = json!({"request_id": id, "kind": kind, "agent": agent, "trace_id": trace,
            "requested_at": harn_time(now), "payload": payload});
        let waitpoint = json!({"id": id, "status": "open", "created_at": harn_time(now),
            "metadata": {"kind": kind, "agent": agent, "trace_id": trace, "requested_at": harn_time(now), "payload": payload}});
        self.append(
            &format!("waitpoint.state.{}", sanitize(id)),
            "waitpoint.state",
            &waitpoint,
            hdr(&[("waitpoint_id", id)]),
        );
        self.append(
            topic,
            event,
            &envelope,
            hdr(&[("request_id", id), ("trace_id", &trace)]),
        );
        id.to_owned()
    }

    /// `request_approval(action, options)`.
    pub fn request_approval(&self, action: &str, o: &ApprovalOptions) -> String {
        let id = self.new_id("hitl_approval_");
        let payload = approval_payload(&id, action, o, Utc::now());
        self.issue("approval", &id, &o.agent, payload)
    }

    /// `dual_control(n, m, closure, approvers)`.
    pub fn dual_control(&self, n: u64, m: u64, action: &str, approvers: &[&str]) -> String {
        let id = self.new_id("hitl_dual_control_");
        let o = ApprovalOptions {
            args: Some(json!({"n": n, "m": m, "approvers": approvers})),
            quorum: Some(n),
            ..Default::default()
        };
        let mut p = approval_payload(&id, action, &o, Utc::now());
        let m_ = p.as_object_mut().expect("object");
        for k in ["quorum", "reviewers", "detail"] {
            m_.remove(k);
        }
        m_.insert("n".into(), json!(n));
        m_.insert("m".into(), json!(m));
        m_.insert("approvers".into(), json!(approvers));
        self.issue("dual_control", &id, "", p)
    }

    /// `ask_user(prompt, {schema, default, timeout})`.
    pub fn ask_user(
        &self,
        prompt: &str,
        schema: Option<Value>,
        default: Option<Value>,
        timeout: Duration,
    ) -> String {
        let id = self.new_id("hitl_question_");
        let p = json!({"prompt": prompt, "schema": schema, "default": default, "timeout_ms": timeout.as_millis() as u64});
        self.issue("question", &id, "", p)
    }

    /// `escalate_to(role, reason)`.
    pub fn escalate_to(&self, role: &str, reason: &str) -> String {
        let id = self.new_id("hitl_escalation_");
        let p = json!({"role": role, "reason": reason, "capability_policy": {"workspace_roots": ["/srv/app"], "side_effect_level": "read_only"}});
        self.issue("escalation", &id, "", p)
    }

    /// An orchestrator replay: the same request id appended again with a
    /// new `requested_at`. A replay re-runs the builtin, which recomputes
    /// the payload's `requested_at` and `deadline` too (also inside
    /// `approval_request`); everything else is as before.
    pub fn replay(&self, id: &str) -> i64 {
        self.reissue(id, |_| {})
    }

    /// The same request id asked again with other content, as when a
    /// replayed or re-run handler (dispatch ids are deterministic,
    /// `hitl_<kind>_<event id>_<seq>`) computes different arguments: `edit`
    /// changes the newest envelope's payload. Like harn, it reuses the
    /// existing waitpoint (whatever its state) and appends a new request
    /// event with fresh timestamps. Returns that event's id.
    pub fn reissue(&self, id: &str, edit: impl FnOnce(&mut Value)) -> i64 {
        let (_, topic, event, _) = kind_of(id).expect("hitl id");
        let conn = self.conn();
        let mut env = rows(&conn, topic)
            .into_iter()
            .rfind(|r| r.1 == event && request_id_of(&r.2, &r.3).as_deref() == Some(id))
            .expect("request to ask again")
            .2;
        drop(conn);
        let now = Utc::now();
        env["requested_at"] = json!(harn_time(now));
        let payload = &mut env["payload"];
        if payload.get("requested_at").is_some() {
            payload["requested_at"] = json!(harn_time(now));
        }
        let deadline = payload
            .get("deadline_ms")
            .and_then(Value::as_u64)
            .filter(|_| payload.get("deadline").is_some_and(|d| !d.is_null()))
            .map(|ms| harn_time(now + chrono::Duration::milliseconds(ms as i64)));
        if let Some(d) = &deadline {
            payload["deadline"] = json!(d);
        }
        if let Some(inner) = payload.get_mut("approval_request") {
            inner["requested_at"] = json!(harn_time(now));
            if let Some(d) = &deadline {
                if inner.get("deadline").is_some() {
                    inner["deadline"] = json!(d);
                }
            }
        }
        edit(payload);
        let trace = env["trace_id"].as_str().unwrap_or_default().to_owned();
        self.append(
            topic,
            event,
            &env,
            hdr(&[("request_id", id), ("trace_id", &trace)]),
        )
    }

    /// A suggest-tier side effect: a non-blocking approval request (no
    /// waitpoint, nobody waits), its trust record, and the outbox proposal.
    pub fn suggest(&self, agent: &str, builtin: &str, class: &str, args: Value) -> String {
        let id = self.new_id("hitl_approval_");
        let detail = json!({"builtin": builtin, "action_class": class, "args": args});
        let o = ApprovalOptions {
            args: Some(detail.clone()),
            detail: Some(detail),
            principal: agent.into(),
            agent: agent.into(),
            ..Default::default()
        };
        let payload = approval_payload(&id, class, &o, Utc::now());
        let trace = format!("trace_{}", uuid::Uuid::new_v4());
        let envelope = json!({"request_id": id, "kind": "approval", "agent": agent, "trace_id": trace,
            "requested_at": harn_time(Utc::now()), "payload": payload});
        self.append(
            "hitl.approvals",
            "hitl.approval_requested",
            &envelope,
            hdr(&[("request_id", &id), ("trace_id", &trace)]),
        );
        self.trust_record(
            agent,
            class,
            "suggest",
            "success",
            Some(&id),
            "suggest_approval_request",
        );
        self.append(
            "trigger.outbox",
            "dispatch_proposed",
            &json!({"agent": agent, "action": "github.issue.opened", "builtin": builtin, "action_class": class,
                "args": args, "trace_id": trace, "replay_of_event_id": null, "autonomy_tier": "suggest", "proposal": true}),
            hdr(&[("trace_id", &trace), ("agent", agent), ("autonomy_tier", "suggest")]),
        );
        id
    }

    /// A `trust_recorded` row on each of the four trust topics, chained.
    pub fn trust_record(
        &self,
        agent: &str,
        action: &str,
        tier: &str,
        outcome: &str,
        request: Option<&str>,
        enforcement: &str,
    ) {
        let conn = self.conn();
        let chain = rows(&conn, "trust_graph");
        drop(conn);
        let previous = chain
            .last()
            .and_then(|r| r.2.get("entry_hash").cloned())
            .unwrap_or(Value::Null);
        let mut metadata = json!({"autonomy.enforcement": enforcement});
        if let Some(r) = request {
            metadata["approval_request_id"] = json!(r);
        }
        let mut record = json!({"schema": "opentrustgraph/v0.1", "record_id": uuid::Uuid::new_v4().to_string(),
            "agent": agent, "action": action, "approver": null, "outcome": outcome, "trace_id": format!("trace_{}", uuid::Uuid::new_v4()),
            "autonomy_tier": tier, "timestamp": harn_time(Utc::now()), "cost_usd": null, "chain_index": chain.len() + 1,
            "previous_hash": previous, "metadata": metadata});
        let hash = sha(&canonical(&record));
        record["entry_hash"] = json!(hash);
        let h = hdr(&[
            ("agent", agent),
            ("autonomy_tier", tier),
            ("outcome", outcome),
            ("entry_hash", &hash),
        ]);
        for topic in [
            "trust_graph".to_owned(),
            "trust.graph".to_owned(),
            format!("trust_graph.{agent}"),
            format!("trust.graph.{agent}"),
        ] {
            self.append(&topic, "trust_recorded", &record, h.clone());
        }
    }

    /// Writes a row whose payload is not JSON (harn's reads of the topic
    /// then fail; a client must skip it).
    pub fn inject_malformed(&self, topic: &str) {
        let conn = self.conn();
        conn.execute(
            "INSERT OR IGNORE INTO topic_heads(topic, last_id) VALUES (?1, 0)",
            [topic],
        )
        .expect("head");
        conn.execute(
            "UPDATE topic_heads SET last_id = last_id + 1 WHERE topic = ?1",
            [topic],
        )
        .expect("bump");
        let id: i64 = conn
            .query_row(
                "SELECT last_id FROM topic_heads WHERE topic = ?1",
                [topic],
                |r| r.get(0),
            )
            .expect("id");
        conn.execute(
            "INSERT INTO events(topic, event_id, kind, payload, headers, occurred_at_ms) VALUES (?1, ?2, 'hitl.approval_requested', X'7B6E6F74206A736F6E', '{}', ?3)",
            params![topic, id, Utc::now().timestamp_millis()],
        )
        .expect("insert malformed");
    }

    /// harn's `append_hitl_response_on` (§5.2), step by step and
    /// non-transactionally, quirks included.
    pub fn respond(&self, mut response: Value) -> Result<(), String> {
        let id = response
            .get("request_id")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or("response without request_id")?;
        let (kind, topic, event, _) =
            kind_of(&id).ok_or_else(|| format!("unknown HITL request id '{id}'"))?;
        if response.get("responded_at").is_none() {
            response["responded_at"] = json!(harn_time(Utc::now()));
        }
        let ev = if kind == "escalation" {
            "hitl.escalation_accepted"
        } else {
            "hitl.response_received"
        };
        self.append(topic, ev, &response, hdr(&[("request_id", &id)]));
        let conn = self.conn();
        let wp = last_waitpoint(&conn, &id);
        drop(conn);
        let Some(wp) = wp else { return Ok(()) };
        if wp["status"] != "open" {
            return Ok(());
        }
        let reviewer = response
            .get("reviewer")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let now = harn_time(Utc::now());
        let complete = |value: Value, by: Option<&str>, reason: Value| {
            let mut w = wp.clone();
            w["status"] = json!("completed");
            w["completed_at"] = json!(now);
            w["completed_by"] = json!(by);
            w["value"] = value;
            w["reason"] = reason;
            w
        };
        let next = match kind {
            "question" => Some(complete(
                response.get("answer").cloned().unwrap_or(Value::Null),
                reviewer.as_deref(),
                response.get("reason").cloned().unwrap_or(Value::Null),
            )),
            "escalation" if response.get("accepted") == Some(&json!(true)) => Some(complete(
                json!({"accepted": true, "reviewer": reviewer, "reason": response.get("reason"), "responded_at": response["responded_at"]}),
                reviewer.as_deref(),
                response.get("reason").cloned().unwrap_or(Value::Null),
            )),
            "escalation" => None,
            _ => {
                let conn = self.conn();
                let all = rows(&conn, topic);
                drop(conn);
                let first = all
                    .iter()
                    .find(|r| {
                        r.1 == event && request_id_of(&r.2, &r.3).as_deref() == Some(id.as_str())
                    })
                    .map(|r| r.2.clone())
                    .ok_or_else(|| format!("missing HITL request envelope for '{id}'"))?;
                let p = &first["payload"];
                let (qk, lk) = if kind == "dual_control" {
                    ("n", "approvers")
                } else {
                    ("quorum", "reviewers")
                };
                let quorum = p
                    .get(qk)
                    .and_then(Value::as_u64)
                    .or_else(|| p.get("approvers_required").and_then(Value::as_u64))
                    .or_else(|| {
                        p.pointer("/approval_request/approvers_required")
                            .and_then(Value::as_u64)
                    })
                    .unwrap_or(1);
                let allow: Vec<String> = p
                    .get(lk)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                let mut counted: Vec<(String, String)> = Vec::new();
                let (mut reason, mut at) = (Value::Null, Value::Null);
                let mut result: Option<Verdict> = None;
                for r in all.iter().filter(|r| {
                    r.1 == "hitl.response_received"
                        && request_id_of(&r.2, &r.3).as_deref() == Some(id.as_str())
                }) {
                    let resp = &r.2;
                    let rv = resp.get("reviewer").and_then(Value::as_str);
                    if let Some(rv) = rv {
                        if (!allow.is_empty() && !allow.iter().any(|a| a == rv))
                            || counted.iter().any(|c| c.0 == rv)
                        {
                            continue;
                        }
                    }
                    if resp.get("approved") == Some(&json!(true)) {
                        reason = resp.get("reason").cloned().unwrap_or(Value::Null);
                        at = resp.get("responded_at").cloned().unwrap_or(Value::Null);
                        if let Some(rv) = rv {
                            counted
                                .push((rv.to_owned(), at.as_str().unwrap_or_default().to_owned()));
                        }
                        if counted.len() as u64 >= quorum {
                            result = Some(Ok(rv.map(str::to_owned)));
                            break;
                        }
                    } else {
                        result = Some(Err((
                            rv.map(str::to_owned),
                            resp.get("reason")
                                .and_then(Value::as_str)
                                .map(str::to_owned),
                        )));
                        break;
                    }
                }
                let prefix = if kind == "dual_control" {
                    "hitl.dual_control"
                } else {
                    "hitl.approval"
                };
                let trace = first["trace_id"].as_str().unwrap_or_default().to_owned();
                match result {
                    None => None,
                    Some(Ok(last)) => {
                        let mut reviewers: Vec<String> =
                            counted.iter().map(|c| c.0.clone()).collect();
                        reviewers.sort();
                        let sigs: Vec<Value> = counted.iter().map(|(r, at)| json!({"reviewer": r, "signed_at": at,
                            "signature": sha(&format!("harn-hitl-approval-v1\nrequest_id:{id}\nreviewer:{r}\nsigned_at:{at}\napproved:true\nreason:{}\n", reason.as_str().unwrap_or("")))})).collect();
                        let record = json!({"request_id": id, "approved": true, "reviewers": reviewers, "approved_at": at, "reason": reason, "signatures": sigs});
                        self.append(
                            topic,
                            &format!("{prefix}_approved"),
                            &json!({"request_id": id, "record": record}),
                            hdr(&[("request_id", &id), ("trace_id", &trace)]),
                        );
                        Some(complete(record.clone(), last.as_deref(), reason.clone()))
                    }
                    Some(Err((by, why))) => {
                        self.append(
                            topic,
                            &format!("{prefix}_denied"),
                            &json!({"request_id": id, "reviewer": by, "reason": why}),
                            hdr(&[("request_id", &id), ("trace_id", &trace)]),
                        );
                        let mut w = wp.clone();
                        w["status"] = json!("cancelled");
                        w["cancelled_at"] = json!(now);
                        w["cancelled_by"] = json!(by);
                        w["reason"] = json!(why);
                        Some(w)
                    }
                }
            }
        };
        if let Some(w) = next {
            self.append(
                &format!("waitpoint.state.{}", sanitize(&id)),
                "waitpoint.state",
                &w,
                hdr(&[("waitpoint_id", &id)]),
            );
            self.append(
                "waitpoint.resumes",
                "waitpoint.resume",
                &json!({"waitpoint_id": id, "requested_at": now, "reason": "waitpoint_changed"}),
                Map::new(),
            );
        }
        Ok(())
    }

    /// Cancels a request from upstream (the dispatch was cancelled).
    pub fn cancel_upstream(&self, id: &str) {
        let conn = self.conn();
        let mut wp = last_waitpoint(&conn, id).expect("waitpoint");
        drop(conn);
        wp["status"] = json!("cancelled");
        wp["cancelled_at"] = json!(harn_time(Utc::now()));
        wp["reason"] = json!("upstream_cancelled");
        self.append(
            &format!("waitpoint.state.{}", sanitize(id)),
            "waitpoint.state",
            &wp,
            hdr(&[("waitpoint_id", id)]),
        );
    }

    /// Starts a script blocked on `id`, as `harn run` does: it polls the
    /// waitpoint every 100 ms and writes `hitl.timeout` once on deadline.
    pub fn wait(&self, id: &str) -> Waiter {
        let (tx, rx) = mpsc::channel();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (path, id, stop2) = (self.path.clone(), id.to_owned(), stop.clone());
        std::thread::spawn(move || {
            let mut conn = open(&path);
            let (kind, topic, event, _) = kind_of(&id).expect("hitl id");
            let first = rows(&conn, topic)
                .into_iter()
                .find(|r| r.1 == event && request_id_of(&r.2, &r.3).as_deref() == Some(id.as_str()))
                .map(|r| r.2);
            let deadline: Option<DateTime<Utc>> = first.as_ref().and_then(|f| {
                let p = &f["payload"];
                let parse = |v: &Value| {
                    v.as_str()
                        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                        .map(|t| t.with_timezone(&Utc))
                };
                match kind {
                    "question" => parse(&f["requested_at"]).map(|t| {
                        t + chrono::Duration::milliseconds(p["timeout_ms"].as_i64().unwrap_or(0))
                    }),
                    "escalation" => None,
                    _ => p.pointer("/approval_request/deadline").and_then(parse),
                }
            });
            while !stop2.load(Ordering::SeqCst) {
                if let Some(wp) = last_waitpoint(&conn, &id) {
                    let outcome = match wp["status"].as_str() {
                        Some("completed") => Some(WaitOutcome::Completed(wp["value"].clone())),
                        Some("cancelled") if wp["reason"] == "upstream_cancelled" => {
                            Some(WaitOutcome::Cancelled)
                        }
                        Some("cancelled") => Some(WaitOutcome::Denied {
                            reviewer: wp["cancelled_by"].as_str().map(str::to_owned),
                            reason: wp["reason"].as_str().map(str::to_owned),
                        }),
                        _ => None,
                    };
                    if let Some(o) = outcome {
                        let _ = tx.send((o, Instant::now()));
                        return;
                    }
                }
                if deadline.is_some_and(|d| d <= Utc::now()) {
                    append(
                        &mut conn,
                        topic,
                        "hitl.timeout",
                        &json!({"request_id": id, "kind": kind, "trace_id": first.as_ref().map(|f| f["trace_id"].clone()), "timed_out_at": harn_time(Utc::now())}),
                        hdr(&[("request_id", &id)]),
                    );
                    let _ = tx.send((WaitOutcome::TimedOut, Instant::now()));
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Waiter { rx, stop }
    }

    /// harn's `hitl_pending({})` (§6): ids of unresolved requests, newest first.
    pub fn hitl_pending(&self) -> Vec<String> {
        let conn = self.conn();
        let mut requests: Vec<(String, String, i64)> = Vec::new();
        let mut resolved = std::collections::HashSet::new();
        for (kind, topic, event, _) in KINDS {
            for (eid, k, p, h) in rows(&conn, topic)
                .into_iter()
                .chain(rows(&conn, "hitl.responses"))
            {
                let Some(id) = request_id_of(&p, &h) else {
                    continue;
                };
                if k == event {
                    requests.retain(|r| r.0 != id);
                    requests.push((
                        id,
                        p["requested_at"].as_str().unwrap_or_default().to_owned(),
                        eid,
                    ));
                    continue;
                }
                if kind_of(&id).map(|k| k.0) != Some(kind) {
                    continue;
                }
                let terminal = match (kind, k.as_str()) {
                    (_, "hitl.timeout") => true,
                    ("question", "hitl.response_received") => true,
                    ("approval" | "dual_control", "hitl.response_received") => {
                        p.get("approved") == Some(&json!(false))
                    }
                    ("approval", "hitl.approval_approved" | "hitl.approval_denied") => true,
                    (
                        "dual_control",
                        "hitl.dual_control_approved"
                        | "hitl.dual_control_denied"
                        | "hitl.dual_control_executed",
                    ) => true,
                    ("escalation", "hitl.escalation_accepted") => true,
                    ("escalation", "hitl.response_received") => {
                        p.get("accepted") == Some(&json!(true))
                    }
                    _ => false,
                };
                if terminal {
                    resolved.insert(id);
                }
            }
        }
        requests.retain(|r| !resolved.contains(&r.0));
        requests.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)));
        requests.into_iter().map(|r| r.0).collect()
    }

    /// Every row of a topic: (event id, kind, payload).
    pub fn rows(&self, topic: &str) -> Vec<(i64, String, Value)> {
        rows(&self.conn(), topic)
            .into_iter()
            .map(|r| (r.0, r.1, r.2))
            .collect()
    }
}
