//! History: every ended request (decided, expired, resolved elsewhere,
//! cancelled), newest first by when it ended, paged by a cursor and
//! streamed so nothing here grows with the size of the store.
//!
//! Order is `(ended_at DESC, id DESC)`, served by the `requests_history*`
//! indexes (migration 6), so a page costs a page at any depth: the cursor
//! is the `(ended_at, id)` of the last row seen, never an offset. A
//! request that ends during a walk gets an `ended_at` after the walk's
//! position and is not met again. Search goes through FTS5: a rare word's
//! hits are few and are sorted alone; a common word's are dense, so the
//! history index is walked and each row checked against them, which fills
//! a page after reading about a page.

use crate::requests::{request_from_row, Filter, LIST_COLUMNS, REQUEST_COLUMNS};
use crate::sql::fts_query;
use crate::{Result, Store};
use chrono::{DateTime, SecondsFormat, Utc};
use countersign_model::{Platform, Request, Status};
use rusqlite::types::ToSql;
use std::collections::HashMap;
use std::fmt;
use std::ops::ControlFlow;
use std::str::FromStr;

/// Rows a page holds when the query sets no limit.
pub const DEFAULT_PAGE: u32 = 200;
/// The most rows one page may hold.
pub const MAX_PAGE: u32 = 5_000;
/// A search with at most this many hits sorts its hits; above it, the
/// history index is walked (hits are then at least this dense).
const SPARSE_HITS: i64 = 20_000;

/// Where a page starts: just after (older than) the row it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryCursor {
    pub ended_at: DateTime<Utc>,
    pub id: i64,
}

/// Why a cursor string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a history cursor: `{0}` (expected what a page printed as its next cursor, like 2026-12-07T09:50:10.008876Z_1234)")]
pub struct BadCursor(pub String);

impl fmt::Display for HistoryCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}_{}",
            self.ended_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            self.id
        )
    }
}

impl FromStr for HistoryCursor {
    type Err = BadCursor;
    fn from_str(s: &str) -> std::result::Result<Self, BadCursor> {
        let bad = || BadCursor(s.chars().take(80).collect());
        let (at, id) = s.rsplit_once('_').ok_or_else(bad)?;
        // RFC 3339, or for a year outside 0000-9999 (a platform's clock
        // can say anything) chrono's signed form, which `Display` prints.
        let ended_at = match DateTime::parse_from_rfc3339(at) {
            Ok(t) => t.with_timezone(&Utc),
            Err(_) => at.parse::<DateTime<Utc>>().map_err(|_| bad())?,
        };
        let id = id.parse::<i64>().map_err(|_| bad())?;
        if id < 0 {
            return Err(bad());
        }
        Ok(Self { ended_at, id })
    }
}

/// Filters for history. Unset fields do not filter; with no statuses,
/// every ended request.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub statuses: Vec<Status>,
    pub account: Option<String>,
    pub platform: Option<Platform>,
    pub agent: Option<String>,
    pub search: Option<String>,
    /// Ended at or after.
    pub since: Option<DateTime<Utc>>,
    /// Ended before.
    pub until: Option<DateTime<Utc>>,
    /// Only rows older than this one (the previous page's `next`).
    pub before: Option<HistoryCursor>,
    /// Rows wanted: per page for [`Store::history_page`] (default
    /// [`DEFAULT_PAGE`], at most [`MAX_PAGE`]), in all for
    /// [`Store::for_each_history`] (default: every row).
    pub limit: Option<u32>,
}

/// One page of history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    pub rows: Vec<Request>,
    /// Where the next page starts; `None` when this one is the last.
    pub next: Option<HistoryCursor>,
}

impl Store {
    /// One page of ended requests, newest first.
    pub fn history_page(&self, q: &HistoryQuery) -> Result<HistoryPage> {
        self.history_page_with(q, REQUEST_COLUMNS)
    }

    /// [`Store::history_page`] for a list: each request without its
    /// `arguments` and `raw` payload (both `null`).
    pub fn history_list_page(&self, q: &HistoryQuery) -> Result<HistoryPage> {
        self.history_page_with(q, LIST_COLUMNS)
    }

    fn history_page_with(&self, q: &HistoryQuery, columns: &str) -> Result<HistoryPage> {
        let limit = q.limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        let keys = self.history_keys(q, limit)?;
        let next = (keys.len() == limit as usize)
            .then(|| keys.last().copied())
            .flatten();
        let ids: Vec<i64> = keys.iter().map(|k| k.id).collect();
        let rows = self.requests_by_id(&ids, columns)?;
        Ok(HistoryPage { rows, next })
    }

    /// The first `q.limit` (default: all) ended requests, newest first, as
    /// one list. For what fits a screen; stream anything larger with
    /// [`Store::for_each_history`].
    pub fn history(&self, q: &HistoryQuery) -> Result<Vec<Request>> {
        let mut out = Vec::new();
        self.for_each_history(q, |r| {
            out.push(r);
            ControlFlow::Continue(())
        })?;
        Ok(out)
    }

    /// Calls `f` with each page of the ended requests `q` selects, newest
    /// first: memory stays at one page whatever the store holds, and no
    /// transaction is held between pages. Stops when `f` breaks. Returns
    /// where the walk would go on when it stopped at `q.limit` (more rows
    /// may follow), else `None`.
    pub fn for_each_history_page(
        &self,
        q: &HistoryQuery,
        mut f: impl FnMut(Vec<Request>) -> ControlFlow<()>,
    ) -> Result<Option<HistoryCursor>> {
        const WALK_PAGE: u32 = 500;
        let mut left = q.limit;
        let mut page = q.clone();
        loop {
            if left == Some(0) {
                return Ok(None);
            }
            page.limit = Some(left.map_or(WALK_PAGE, |l| l.min(WALK_PAGE)));
            let HistoryPage { rows, next } = self.history_page(&page)?;
            left = left.map(|l| l - rows.len() as u32);
            if f(rows).is_break() {
                return Ok(None);
            }
            match next {
                Some(c) if left == Some(0) => return Ok(Some(c)),
                Some(c) => page.before = Some(c),
                None => return Ok(None),
            }
        }
    }

    /// [`Store::for_each_history_page`], a row at a time.
    pub fn for_each_history(
        &self,
        q: &HistoryQuery,
        mut f: impl FnMut(Request) -> ControlFlow<()>,
    ) -> Result<Option<HistoryCursor>> {
        self.for_each_history_page(q, |rows| {
            for r in rows {
                f(r)?;
            }
            ControlFlow::Continue(())
        })
    }

    /// How many ended requests the store holds (a counter the store keeps,
    /// not a count: cheap at any size).
    pub fn history_total(&self) -> Result<i64> {
        Ok(self
            .conn()
            .query_row("SELECT n FROM history_count", [], |r| r.get(0))?)
    }

    /// Calls `f` with every request, pending or ended, oldest first (by
    /// local id, the order they were first seen), a page at a time.
    pub fn for_each_request(&self, mut f: impl FnMut(Request) -> ControlFlow<()>) -> Result<()> {
        let mut after = 0i64;
        loop {
            let ids: Vec<i64> = {
                let conn = self.conn();
                let mut stmt = conn.prepare_cached(
                    "SELECT id FROM requests WHERE id > ?1 ORDER BY id LIMIT 500",
                )?;
                let rows = stmt.query_map([after], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let Some(&last) = ids.last() else {
                return Ok(());
            };
            after = last;
            for r in self.requests_by_id(&ids, REQUEST_COLUMNS)? {
                if f(r).is_break() {
                    return Ok(());
                }
            }
        }
    }

    /// The `(ended_at, id)` of one page, in history order.
    fn history_keys(&self, q: &HistoryQuery, limit: u32) -> Result<Vec<HistoryCursor>> {
        let mut f = Filter::default();
        f.clauses.push("r.ended_at IS NOT NULL".into());
        if !q.statuses.is_empty() {
            let names: Vec<String> = q
                .statuses
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            f.clauses
                .push(format!("r.status IN ({})", names.join(", ")));
        }
        if q.account.is_some() || q.platform.is_some() {
            // Resolved to ids first, so one account is an equality the
            // per-account history index serves in order.
            let ids = self.account_ids(q.account.as_deref(), q.platform)?;
            match ids.as_slice() {
                [] => return Ok(Vec::new()),
                [one] => f.push("r.account_id = ?", *one),
                many => {
                    let list: Vec<String> = many.iter().map(i64::to_string).collect();
                    f.clauses
                        .push(format!("r.account_id IN ({})", list.join(", ")));
                }
            }
        }
        if let Some(agent) = &q.agent {
            f.push("r.agent = ?", agent.clone());
        }
        if let Some(since) = q.since {
            f.push("r.ended_at >= ?", since);
        }
        if let Some(until) = q.until {
            f.push("r.ended_at < ?", until);
        }
        if let Some(c) = q.before {
            f.params.push(Box::new(c.ended_at));
            f.params.push(Box::new(c.id));
            let n = f.params.len();
            f.clauses
                .push(format!("(r.ended_at, r.id) < (?{}, ?{n})", n - 1));
        }
        let search = q.search.as_deref().and_then(fts_query);
        let from = match &search {
            None => "requests r".to_owned(),
            Some(m) => {
                // Hits of the whole words come first: they are a subset of
                // the prefix query's and are counted as they stream, while a
                // prefix term gathers all its hits before the first, so a
                // common word is known dense without that.
                let count = |m: &str| -> Result<i64> {
                    Ok(self.conn().query_row(
                        "SELECT COUNT(*) FROM (SELECT 1 FROM requests_fts WHERE requests_fts MATCH ?1 LIMIT ?2)",
                        rusqlite::params![m, SPARSE_HITS + 1],
                        |r| r.get(0),
                    )?)
                };
                let mut hits = count(&m.replace("\"*", "\""))?;
                if hits <= SPARSE_HITS {
                    hits = count(m)?;
                }
                f.push("requests_fts MATCH ?", m.clone());
                let matched = f.clauses.pop().expect("just pushed");
                if hits <= SPARSE_HITS {
                    // Few hits: look each up by id, then sort those alone.
                    f.clauses.push(format!(
                        "r.id IN (SELECT rowid FROM requests_fts WHERE {matched})"
                    ));
                    "requests r NOT INDEXED".to_owned()
                } else {
                    // Many: walk history in order, checking each row
                    // (`+` keeps the planner from driving by the hits).
                    f.clauses.push(format!(
                        "+r.id IN (SELECT rowid FROM requests_fts WHERE {matched})"
                    ));
                    "requests r".to_owned()
                }
            }
        };
        let sql = format!(
            "SELECT r.ended_at, r.id FROM {from} WHERE {} ORDER BY r.ended_at DESC, r.id DESC LIMIT {limit}",
            f.sql()
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql)?;
        let params: Vec<&dyn ToSql> = f.params.iter().map(|p| p.as_ref()).collect();
        let rows = stmt.query_map(params.as_slice(), |r| {
            Ok(HistoryCursor {
                ended_at: r.get(0)?,
                id: r.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn account_ids(&self, name: Option<&str>, platform: Option<Platform>) -> Result<Vec<i64>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id FROM accounts WHERE (?1 IS NULL OR name = ?1) AND (?2 IS NULL OR platform = ?2) ORDER BY id",
        )?;
        let rows = stmt.query_map(rusqlite::params![name, platform.map(|p| p.as_str())], |r| {
            r.get(0)
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Full rows for `ids`, in that order.
    fn requests_by_id(&self, ids: &[i64], columns: &str) -> Result<Vec<Request>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        let sql = format!(
            "SELECT {columns} FROM requests r JOIN accounts a ON a.id = r.account_id
             WHERE r.id IN ({})",
            list.join(", ")
        );
        let conn = self.conn();
        let mut stmt = conn.prepare(&sql)?;
        let mut by_id: HashMap<i64, Request> = stmt
            .query_map([], request_from_row)?
            .map(|r| r.map(|r| (r.id, r)))
            .collect::<rusqlite::Result<_>>()?;
        Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
    }
}
