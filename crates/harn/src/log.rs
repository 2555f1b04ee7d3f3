//! harn's SQLite event log: opening it beside a running harn, reading new
//! rows with one cursor per topic, and appending rows exactly as harn does
//! (ids from `topic_heads`, provenance headers chained per topic).

use crate::provenance::{self, RECORD_HASH_HEADER};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// Why the event log could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("cannot open the harn event log {path}: {source}")]
    Open {
        path: String,
        source: rusqlite::Error,
    },
    #[error("{0} is not a harn event log (no `events` / `topic_heads` tables); only harn's SQLite backend can be read")]
    NotAnEventLog(String),
    #[error(
        "the harn event log has schema version {0}, newer than this Countersign understands (1)"
    )]
    TooNew(i64),
    #[error("harn event log: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// One row of the `events` table. A payload that is not JSON is `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub topic: String,
    pub event_id: i64,
    pub kind: String,
    pub payload: Option<Value>,
    pub headers: Map<String, Value>,
    pub occurred_at_ms: i64,
}

impl Row {
    /// The request id this row is about: header `request_id`, else payload.
    pub fn request_id(&self) -> Option<&str> {
        self.headers
            .get("request_id")
            .and_then(Value::as_str)
            .or_else(|| self.payload.as_ref()?.get("request_id")?.as_str())
    }
}

/// Opens an existing log for reading and writing beside harn: never
/// creates it, never touches `journal_mode` (harn owns both).
pub fn open(path: &Path) -> Result<Connection, LogError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|source| LogError::Open {
        path: path.display().to_string(),
        source,
    })?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let tables: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN ('events', 'topic_heads')",
        [],
        |r| r.get(0),
    )?;
    if tables != 2 {
        return Err(LogError::NotAnEventLog(path.display().to_string()));
    }
    let marker: Option<i64> = conn
        .query_row(
            "SELECT version FROM _harn_sqlite_schema_versions WHERE name = 'event_log'",
            [],
            |r| r.get(0),
        )
        .optional()
        .or_else(|e| match e {
            // 0.7 / 0.8 logs have no marker table.
            rusqlite::Error::SqliteFailure(_, Some(ref m)) if m.contains("no such table") => {
                Ok(None)
            }
            e => Err(e),
        })?;
    if let Some(v) = marker.filter(|v| *v > 1) {
        return Err(LogError::TooNew(v));
    }
    Ok(conn)
}

/// harn's `sanitize_topic_component`.
pub fn sanitize(component: &str) -> String {
    component
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The topic holding a request's waitpoint rows.
pub fn waitpoint_topic(request_id: &str) -> String {
    format!("waitpoint.state.{}", sanitize(request_id))
}

fn row_from(topic: &str, r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let payload = match r.get_ref("payload")? {
        ValueRef::Blob(b) | ValueRef::Text(b) => serde_json::from_slice(b).ok(),
        _ => None,
    };
    let headers: String = r.get("headers")?;
    Ok(Row {
        topic: topic.to_owned(),
        event_id: r.get("event_id")?,
        kind: r.get("kind")?,
        payload,
        headers: serde_json::from_str::<Map<String, Value>>(&headers).unwrap_or_default(),
        occurred_at_ms: r.get("occurred_at_ms")?,
    })
}

/// Every row of one topic after `after`, oldest first.
pub fn rows_after(conn: &Connection, topic: &str, after: i64) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(
        "SELECT event_id, kind, payload, headers, occurred_at_ms FROM events
         WHERE topic = ?1 AND event_id > ?2 ORDER BY event_id",
    )?;
    let rows = stmt.query_map(params![topic, after], |r| row_from(topic, r))?;
    rows.collect()
}

/// The newest row of a topic.
pub fn last_row(conn: &Connection, topic: &str) -> rusqlite::Result<Option<Row>> {
    conn.prepare_cached(
        "SELECT event_id, kind, payload, headers, occurred_at_ms FROM events
         WHERE topic = ?1 ORDER BY event_id DESC LIMIT 1",
    )?
    .query_row([topic], |r| row_from(topic, r))
    .optional()
}

/// Reads what is new since the last call, one cursor per topic, in one read
/// transaction so a request and its waitpoint come from the same snapshot.
#[derive(Debug, Default)]
pub struct Tail {
    cursors: HashMap<String, i64>,
}

impl Tail {
    /// New rows of the topics `wanted` selects, grouped by topic.
    pub fn read(
        &mut self,
        conn: &mut Connection,
        wanted: impl Fn(&str) -> bool,
    ) -> rusqlite::Result<Vec<Row>> {
        let tx = conn.transaction()?;
        let heads: Vec<(String, i64)> = tx
            .prepare_cached("SELECT topic, last_id FROM topic_heads")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::new();
        for (topic, last) in heads {
            let cursor = self.cursors.get(&topic).copied().unwrap_or(0);
            if last <= cursor || !wanted(&topic) {
                continue;
            }
            let rows = rows_after(&tx, &topic, cursor)?;
            // Compaction may have deleted rows up to `last`: never re-read.
            self.cursors.insert(topic, last);
            out.extend(rows);
        }
        tx.commit()?;
        Ok(out)
    }
}

/// Appends one row as harn does: the next id from `topic_heads`, then the
/// provenance headers chained to the topic's previous row.
pub fn append(
    tx: &Transaction<'_>,
    topic: &str,
    kind: &str,
    payload: &Value,
    mut headers: Map<String, Value>,
    occurred_at_ms: i64,
) -> rusqlite::Result<i64> {
    tx.execute(
        "INSERT OR IGNORE INTO topic_heads(topic, last_id) VALUES (?1, 0)",
        [topic],
    )?;
    tx.execute(
        "UPDATE topic_heads SET last_id = last_id + 1 WHERE topic = ?1",
        [topic],
    )?;
    let event_id: i64 = tx.query_row(
        "SELECT last_id FROM topic_heads WHERE topic = ?1",
        [topic],
        |r| r.get(0),
    )?;
    let prev = tx
        .prepare_cached(
            "SELECT event_id, kind, payload, headers, occurred_at_ms FROM events
             WHERE topic = ?1 AND event_id < ?2 ORDER BY event_id DESC LIMIT 1",
        )?
        .query_row(params![topic, event_id], |r| row_from(topic, r))
        .optional()?;
    let prev_hash = prev.map(|p| {
        match p
            .headers
            .get(RECORD_HASH_HEADER)
            .and_then(Value::as_str)
            .filter(|h| !h.trim().is_empty())
        {
            Some(h) => h.to_owned(),
            None => provenance::record_hash(
                topic,
                p.event_id,
                &p.kind,
                p.payload.as_ref().unwrap_or(&Value::Null),
                &p.headers,
                p.occurred_at_ms,
            ),
        }
    });
    provenance::seal(
        topic,
        event_id,
        kind,
        payload,
        &mut headers,
        occurred_at_ms,
        prev_hash.as_deref(),
    );
    let bytes = serde_json::to_vec(payload).unwrap_or_else(|_| b"null".to_vec());
    let headers = Value::Object(headers).to_string();
    tx.execute(
        "INSERT INTO events(topic, event_id, kind, payload, headers, occurred_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![topic, event_id, kind, bytes, headers, occurred_at_ms],
    )?;
    Ok(event_id)
}

/// Checks every row's `record_hash` and `prev_hash` in a topic; returns the
/// first broken event id. For tests and diagnostics.
pub fn verify_topic(conn: &Connection, topic: &str) -> rusqlite::Result<Result<usize, i64>> {
    let mut prev: Option<String> = None;
    let rows = rows_after(conn, topic, 0)?;
    for row in &rows {
        let stored = row.headers.get(RECORD_HASH_HEADER).and_then(Value::as_str);
        let computed = provenance::record_hash(
            topic,
            row.event_id,
            &row.kind,
            row.payload.as_ref().unwrap_or(&Value::Null),
            &row.headers,
            row.occurred_at_ms,
        );
        let linked = row
            .headers
            .get(provenance::PREV_HASH_HEADER)
            .and_then(Value::as_str)
            .map(str::to_owned);
        if stored != Some(computed.as_str()) || linked != prev {
            return Ok(Err(row.event_id));
        }
        prev = Some(computed);
    }
    Ok(Ok(rows.len()))
}
