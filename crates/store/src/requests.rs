//! Requests: idempotent upserts from connectors, resolutions, and the
//! pending and history queries (with FTS5 search) the CLI and UI read.

use crate::sql::{fts_query, named};
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use countersign_model::{Kind, ObservedRequest, Platform, Request, Resolution};
use rusqlite::types::ToSql;
use rusqlite::{params, OptionalExtension, Row};

/// A request's columns, with the two payload columns given: the full row
/// and the list row differ only there, so they cannot drift apart.
macro_rules! request_columns {
    ($arguments:literal, $raw:literal) => {
        concat!(
            "r.id, r.account_id, a.name AS account, a.platform, r.remote_id, r.route, r.kind, r.title, r.action, ",
            $arguments,
            ", r.description, r.agent, r.tier, r.created_at, r.deadline, r.allowed_decisions, r.link, r.extra, ",
            "r.status, r.outcome, r.decided_by, r.decided_at, r.comment, ",
            $raw,
            ", r.first_seen_at, r.updated_at, r.ended_at, r.snoozed_until, r.hidden"
        )
    };
}

pub(crate) const REQUEST_COLUMNS: &str = request_columns!("r.arguments", "r.raw");

/// [`REQUEST_COLUMNS`] without the two payloads (`arguments`, `raw`), which
/// only a request's detail shows: a list of 10,000 costs what a list shows.
pub(crate) const LIST_COLUMNS: &str = request_columns!("NULL AS arguments", "NULL AS raw");

pub(crate) fn request_from_row(row: &Row<'_>) -> rusqlite::Result<Request> {
    let allowed: serde_json::Value = row.get("allowed_decisions")?;
    Ok(Request {
        id: row.get("id")?,
        account_id: row.get("account_id")?,
        account: row.get("account")?,
        platform: named(row, "platform")?,
        remote_id: row.get("remote_id")?,
        route: row.get("route")?,
        kind: named(row, "kind")?,
        title: row.get("title")?,
        action: row.get("action")?,
        arguments: row.get("arguments")?,
        description: row.get("description")?,
        agent: row.get("agent")?,
        tier: row.get("tier")?,
        created_at: row.get("created_at")?,
        deadline: row.get("deadline")?,
        allowed_decisions: serde_json::from_value(allowed).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
        })?,
        link: row.get("link")?,
        extra: {
            let v: serde_json::Value = row.get("extra")?;
            serde_json::from_value(v).unwrap_or_default()
        },
        status: named(row, "status")?,
        outcome: row.get("outcome")?,
        decided_by: row.get("decided_by")?,
        decided_at: row.get("decided_at")?,
        comment: row.get("comment")?,
        raw: row.get("raw")?,
        first_seen_at: row.get("first_seen_at")?,
        updated_at: row.get("updated_at")?,
        ended_at: row.get("ended_at")?,
        snoozed_until: row.get("snoozed_until")?,
        hidden: row.get("hidden")?,
    })
}

/// What an upsert did.
#[derive(Debug, Clone, PartialEq)]
pub struct Upserted {
    pub request: Request,
    /// First time this (account, remote id) was seen.
    pub created: bool,
    /// Something the platform reported about it changed.
    pub changed: bool,
}

/// Filters for the inbox. Unset fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct PendingQuery {
    pub account: Option<String>,
    pub platform: Option<Platform>,
    pub agent: Option<String>,
    pub kind: Option<Kind>,
    pub search: Option<String>,
    pub limit: Option<u32>,
    /// Snoozed requests: all listed (the default), or only those awake, or
    /// only those still asleep, at a time.
    pub snoozed: Snoozed,
}

/// Which pending requests a list holds, by snooze.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Snoozed {
    #[default]
    Any,
    /// Not snoozed past this time: what the inbox shows.
    AwakeAt(DateTime<Utc>),
    /// Snoozed past this time.
    AsleepAt(DateTime<Utc>),
}

/// Accumulates WHERE clauses and their parameters.
#[derive(Default)]
pub(crate) struct Filter {
    pub(crate) clauses: Vec<String>,
    pub(crate) params: Vec<Box<dyn ToSql>>,
}

impl Filter {
    pub(crate) fn push(&mut self, clause: &str, value: impl ToSql + 'static) {
        self.params.push(Box::new(value));
        self.clauses
            .push(clause.replace('?', &format!("?{}", self.params.len())));
    }

    fn common(
        &mut self,
        account: &Option<String>,
        platform: Option<Platform>,
        agent: &Option<String>,
        search: &Option<String>,
    ) {
        if let Some(account) = account {
            self.push("a.name = ?", account.clone());
        }
        if let Some(platform) = platform {
            self.push("a.platform = ?", platform.as_str());
        }
        if let Some(agent) = agent {
            self.push("r.agent = ?", agent.clone());
        }
        if let Some(q) = search.as_deref().and_then(fts_query) {
            self.push(
                "r.id IN (SELECT rowid FROM requests_fts WHERE requests_fts MATCH ?)",
                q,
            );
        }
    }

    pub(crate) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            "1".to_owned()
        } else {
            self.clauses.join(" AND ")
        }
    }
}

impl Store {
    /// Writes what a connector observed. Keyed by (account, remote id): a
    /// replay updates the row in place and never changes its local status,
    /// so a request the user already decided is not resurrected.
    pub fn upsert_request(
        &self,
        account_id: i64,
        observed: &ObservedRequest,
        now: DateTime<Utc>,
    ) -> Result<Upserted> {
        let mut all = self.upsert_requests(account_id, std::slice::from_ref(observed), now)?;
        all.pop()
            .ok_or_else(|| StoreError::Corrupt("an upsert wrote nothing".into()))
    }

    /// [`Store::upsert_request`] for a whole snapshot, in one transaction:
    /// a first sync of thousands of requests is one commit, not thousands.
    pub fn upsert_requests(
        &self,
        account_id: i64,
        observed: &[ObservedRequest],
        now: DateTime<Utc>,
    ) -> Result<Vec<Upserted>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut out = Vec::with_capacity(observed.len());
        for o in observed {
            let (id, created, changed) = write_observed(&tx, account_id, o, now)?;
            let request = tx
                .prepare_cached(&format!(
                    "SELECT {REQUEST_COLUMNS} FROM requests r JOIN accounts a ON a.id = r.account_id WHERE r.id = ?1"
                ))?
                .query_row([id], request_from_row)?;
            out.push(Upserted {
                request,
                created,
                changed,
            });
        }
        tx.commit()?;
        Ok(out)
    }

    /// Records how a request ended on the platform. Returns the updated
    /// request, or `None` when it was already in that state.
    pub fn apply_resolution(
        &self,
        request_id: i64,
        resolution: &Resolution,
        now: DateTime<Utc>,
    ) -> Result<Option<Request>> {
        let changed = self.conn().execute(
            "UPDATE requests SET status = ?2, outcome = ?3, decided_by = COALESCE(?4, decided_by),
                decided_at = COALESCE(?5, decided_at, ?6), updated_at = ?6
             WHERE id = ?1 AND NOT (status IS ?2 AND outcome IS ?3 AND decided_by IS COALESCE(?4, decided_by))",
            params![
                request_id,
                resolution.status.as_str(),
                resolution.outcome,
                resolution.decided_by,
                // A platform's time is untrusted: one in the future (a
                // skewed clock, or year 10000) would sort above everything
                // in history and outlive every prune, so it is capped.
                resolution.decided_at.map(|t| t.min(now)),
                now
            ],
        )?;
        if changed == 0 {
            return Ok(None);
        }
        self.request(request_id).map(Some)
    }

    pub fn request(&self, id: i64) -> Result<Request> {
        self.conn()
            .query_row(
                &format!(
                    "SELECT {REQUEST_COLUMNS} FROM requests r JOIN accounts a ON a.id = r.account_id WHERE r.id = ?1"
                ),
                [id],
                request_from_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("request {id}")))
    }

    pub fn request_by_remote(&self, account_id: i64, remote_id: &str) -> Result<Option<Request>> {
        Ok(self
            .conn()
            .query_row(
                &format!(
                    "SELECT {REQUEST_COLUMNS} FROM requests r JOIN accounts a ON a.id = r.account_id
                     WHERE r.account_id = ?1 AND r.remote_id = ?2"
                ),
                params![account_id, remote_id],
                request_from_row,
            )
            .optional()?)
    }

    /// Pending requests of active accounts, most urgent first: those with a
    /// deadline by deadline, then the rest oldest first.
    pub fn pending(&self, q: &PendingQuery) -> Result<Vec<Request>> {
        self.pending_with(q, REQUEST_COLUMNS)
    }

    /// [`Store::pending`] for a list: each request without its `arguments`
    /// and `raw` payload (both `null`), which only its detail needs.
    pub fn pending_list(&self, q: &PendingQuery) -> Result<Vec<Request>> {
        self.pending_with(q, LIST_COLUMNS)
    }

    fn pending_with(&self, q: &PendingQuery, columns: &str) -> Result<Vec<Request>> {
        let mut f = Filter::default();
        f.clauses.push("r.status = 'pending'".into());
        f.clauses.push("a.removed_at IS NULL".into());
        f.common(&q.account, q.platform, &q.agent, &q.search);
        if let Some(kind) = q.kind {
            f.push("r.kind = ?", kind.as_str());
        }
        match q.snoozed {
            Snoozed::Any => {}
            Snoozed::AwakeAt(t) => f.push("(r.snoozed_until IS NULL OR r.snoozed_until <= ?)", t),
            Snoozed::AsleepAt(t) => f.push("r.snoozed_until > ?", t),
        }
        self.select_requests(
            columns,
            &f,
            "r.deadline IS NULL, r.deadline, r.created_at, r.id",
            q.limit,
        )
    }

    /// The pending requests of one account, for reconciling.
    pub fn pending_for_account(&self, account_id: i64) -> Result<Vec<Request>> {
        let mut f = Filter::default();
        f.clauses.push("r.status = 'pending'".into());
        f.push("r.account_id = ?", account_id);
        self.query_requests(&f, "r.created_at, r.id", None)
    }

    /// The requests of one group still in play: pending ones, and decided
    /// ones whose decision has not reached the platform yet. Oldest first.
    pub fn group_members(&self, account_id: i64, key: &str) -> Result<Vec<Request>> {
        let mut f = Filter::default();
        f.push("r.account_id = ?", account_id);
        f.push("json_extract(r.extra, '$.group.key') = ?", key.to_owned());
        f.clauses.push(
            "(r.status = 'pending' OR EXISTS (SELECT 1 FROM decisions d
                WHERE d.request_id = r.id AND d.delivery IN ('queued', 'sent')))"
                .into(),
        );
        self.query_requests(&f, "r.created_at, r.id", None)
    }

    /// How many requests wait across active accounts.
    pub fn pending_count(&self) -> Result<i64> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM requests r JOIN accounts a ON a.id = r.account_id
             WHERE r.status = 'pending' AND a.removed_at IS NULL",
            [],
            |r| r.get(0),
        )?)
    }

    /// Pending requests per active account, for the account list (without
    /// loading the requests themselves).
    pub fn pending_counts(&self) -> Result<std::collections::HashMap<i64, i64>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT r.account_id, COUNT(*) FROM requests r JOIN accounts a ON a.id = r.account_id
             WHERE r.status = 'pending' AND a.removed_at IS NULL GROUP BY r.account_id",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn query_requests(&self, f: &Filter, order: &str, limit: Option<u32>) -> Result<Vec<Request>> {
        self.select_requests(REQUEST_COLUMNS, f, order, limit)
    }

    fn select_requests(
        &self,
        columns: &str,
        f: &Filter,
        order: &str,
        limit: Option<u32>,
    ) -> Result<Vec<Request>> {
        let limit = limit.map(|l| format!(" LIMIT {l}")).unwrap_or_default();
        let sql = format!(
            "SELECT {columns} FROM requests r JOIN accounts a ON a.id = r.account_id
             WHERE {} ORDER BY {order}{limit}",
            f.sql()
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let params: Vec<&dyn ToSql> = f.params.iter().map(|p| p.as_ref()).collect();
        let rows = stmt.query_map(params.as_slice(), request_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// Inserts or updates one observed request; (id, created, changed).
fn write_observed(
    tx: &rusqlite::Transaction<'_>,
    account_id: i64,
    observed: &ObservedRequest,
    now: DateTime<Utc>,
) -> Result<(i64, bool, bool)> {
    let existing: Option<i64> = tx
        .query_row(
            "SELECT id FROM requests WHERE account_id = ?1 AND remote_id = ?2",
            params![account_id, observed.remote_id],
            |r| r.get(0),
        )
        .optional()?;
    let allowed = serde_json::to_value(&observed.allowed_decisions)
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let extra =
        serde_json::to_value(&observed.extra).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    // What the text hides, worked out once here so a list (which leaves
    // the arguments out) can still warn about it.
    let hidden = observed.hidden();
    let (id, created, changed) = match existing {
        None => {
            tx.execute(
                "INSERT INTO requests (account_id, remote_id, route, kind, title, action, arguments,
                    description, agent, tier, created_at, deadline, allowed_decisions, link, status,
                    raw, first_seen_at, updated_at, extra, hidden)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'pending', ?15, ?16, ?16, ?17, ?18)",
                params![
                    account_id,
                    observed.remote_id,
                    observed.route,
                    observed.kind.as_str(),
                    observed.title,
                    observed.action,
                    observed.arguments,
                    observed.description,
                    observed.agent,
                    observed.tier,
                    observed.created_at,
                    observed.deadline,
                    allowed,
                    observed.link,
                    observed.raw,
                    now,
                    extra,
                    hidden
                ],
            )?;
            (tx.last_insert_rowid(), true, true)
        }
        Some(id) => {
            // The WHERE clause makes an identical replay a no-op, so
            // `changed` tells whether anything new arrived. While a
            // decision on it is on its way the request stays as the
            // reviewer saw it: the connector checks the platform against
            // that version before sending, never against a newer one.
            let changed = tx.execute(
                "UPDATE requests SET route = ?2, kind = ?3, title = ?4, action = ?5, arguments = ?6,
                    description = ?7, agent = ?8, tier = ?9, created_at = ?10, deadline = ?11,
                    allowed_decisions = ?12, link = ?13, raw = ?14, updated_at = ?15, extra = ?16,
                    hidden = ?17
                 WHERE id = ?1 AND NOT (route IS ?2 AND kind IS ?3 AND title IS ?4 AND action IS ?5
                    AND arguments IS ?6 AND description IS ?7 AND agent IS ?8 AND tier IS ?9
                    AND created_at IS ?10 AND deadline IS ?11 AND allowed_decisions IS ?12
                    AND link IS ?13 AND raw IS ?14 AND extra IS ?16)
                 AND NOT EXISTS (SELECT 1 FROM decisions
                    WHERE request_id = ?1 AND delivery IN ('queued', 'sent'))",
                params![
                    id,
                    observed.route,
                    observed.kind.as_str(),
                    observed.title,
                    observed.action,
                    observed.arguments,
                    observed.description,
                    observed.agent,
                    observed.tier,
                    observed.created_at,
                    observed.deadline,
                    allowed,
                    observed.link,
                    observed.raw,
                    now,
                    extra,
                    hidden
                ],
            )? > 0;
            (id, false, changed)
        }
    };
    Ok((id, created, changed))
}
