//! Retention: dropping old history on purpose, so a store can be kept
//! small. Never touches a pending request or one whose decision has not
//! reached its platform, and gives the space back to the file system.

use crate::{Result, Store};
use chrono::{DateTime, Utc};
use rusqlite::params;

/// What to drop: requests that ended before `before`; with
/// `keep_decisions`, only their raw payloads (the request, its decisions
/// and what was shown stay).
#[derive(Debug, Clone, Copy)]
pub struct Prune {
    pub before: DateTime<Utc>,
    pub keep_decisions: bool,
}

/// What a prune did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Requests deleted with their decisions.
    pub requests: u64,
    /// Requests whose raw payload was dropped.
    pub payloads: u64,
    /// Bytes the database file shrank by.
    pub freed_bytes: u64,
}

/// Rows per transaction, so the app and CLI are never blocked for long.
const BATCH: i64 = 5_000;

/// Ended before the cutoff, with no decision still on its way.
const PRUNABLE: &str = "ended_at IS NOT NULL AND ended_at < ?1 AND status != 'pending'
    AND NOT EXISTS (SELECT 1 FROM decisions d WHERE d.request_id = requests.id
        AND d.delivery IN ('queued', 'sent'))";

impl Store {
    /// How many requests `p` would affect, without changing anything.
    pub fn prune_count(&self, p: &Prune) -> Result<u64> {
        let extra = if p.keep_decisions {
            " AND json_extract(raw, '$.pruned') IS NULL"
        } else {
            ""
        };
        Ok(self.conn().query_row(
            &format!("SELECT COUNT(*) FROM requests WHERE {PRUNABLE}{extra}"),
            params![p.before],
            |r| r.get::<_, i64>(0),
        )? as u64)
    }

    /// Drops what `p` names, in batches, then reclaims the space.
    pub fn prune(&self, p: &Prune, now: DateTime<Utc>) -> Result<Pruned> {
        let size_before = self.store_size()?;
        let mut out = Pruned::default();
        loop {
            let mut conn = self.conn();
            let tx = conn.transaction()?;
            let n = if p.keep_decisions {
                tx.execute(
                    &format!(
                        "UPDATE requests SET raw = json_object('pruned', ?2) WHERE id IN (
                            SELECT id FROM requests WHERE {PRUNABLE}
                                AND json_extract(raw, '$.pruned') IS NULL LIMIT ?3)"
                    ),
                    params![p.before, now, BATCH],
                )?
            } else {
                tx.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS prune_batch (id INTEGER PRIMARY KEY)",
                    [],
                )?;
                tx.execute("DELETE FROM prune_batch", [])?;
                tx.execute(
                    &format!(
                        "INSERT INTO prune_batch SELECT id FROM requests WHERE {PRUNABLE} LIMIT ?2"
                    ),
                    params![p.before, BATCH],
                )?;
                tx.execute(
                    "DELETE FROM decisions WHERE request_id IN (SELECT id FROM prune_batch)",
                    [],
                )?;
                tx.execute(
                    "DELETE FROM requests WHERE id IN (SELECT id FROM prune_batch)",
                    [],
                )?
            } as u64;
            tx.commit()?;
            if p.keep_decisions {
                out.payloads += n;
            } else {
                out.requests += n;
            }
            if n < BATCH as u64 {
                break;
            }
        }
        self.reclaim()?;
        out.freed_bytes = size_before.saturating_sub(self.store_size()?);
        Ok(out)
    }

    /// Gives free pages back to the file system. A store made before
    /// incremental vacuum was switched on is rewritten once to switch it on.
    fn reclaim(&self) -> Result<()> {
        let conn = self.conn();
        let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
        if mode != 2 {
            conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
            conn.execute_batch("VACUUM")?;
        } else {
            conn.execute_batch("PRAGMA incremental_vacuum")?;
        }
        // Fold the write-ahead log back so the file sizes tell the truth.
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        Ok(())
    }

    /// Bytes the database file holds.
    pub fn store_size(&self) -> Result<u64> {
        let conn = self.conn();
        let pages: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        Ok((pages * size) as u64)
    }
}
