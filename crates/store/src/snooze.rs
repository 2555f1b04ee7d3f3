//! Snoozing: a pending request leaves the inbox list until a time, then
//! comes back (and is notified again). Kept in SQLite, so a snooze
//! outlives a restart; a request due by a deadline is never snoozed past
//! a few minutes before it.

use crate::requests::{request_from_row, REQUEST_COLUMNS};
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use countersign_model::Request;
use rusqlite::params;

/// How long before its deadline a snoozed request comes back at the latest.
pub(crate) const BEFORE_DEADLINE: Duration = Duration::minutes(5);

impl Store {
    /// Snoozes pending request `id` until `until` (earlier if its deadline
    /// comes first: [`BEFORE_DEADLINE`] before it). Returns when it comes
    /// back.
    pub fn snooze(
        &self,
        id: i64,
        until: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>> {
        let r = self.request(id)?;
        if !r.status.is_pending() {
            return Err(StoreError::Conflict(format!(
                "request {id} is no longer pending ({}); nothing to snooze",
                r.status.as_str()
            )));
        }
        let until = match r.deadline {
            Some(d) if until > d - BEFORE_DEADLINE => d - BEFORE_DEADLINE,
            _ => until,
        };
        if until <= now {
            return Err(StoreError::Conflict(format!(
                "request {id} is due too soon to snooze (its deadline is {})",
                r.deadline.map(|d| d.to_rfc3339()).unwrap_or_default()
            )));
        }
        self.conn().execute(
            "UPDATE requests SET snoozed_until = ?2 WHERE id = ?1",
            params![id, until],
        )?;
        Ok(until)
    }

    /// Brings request `id` back to the inbox now.
    pub fn unsnooze(&self, id: i64) -> Result<()> {
        self.conn().execute(
            "UPDATE requests SET snoozed_until = NULL WHERE id = ?1",
            [id],
        )?;
        Ok(())
    }

    /// The snoozed requests whose time has come, woken (their snooze
    /// cleared) and returned once; ended ones are cleared silently.
    pub fn wake_due(&self, now: DateTime<Utc>) -> Result<Vec<Request>> {
        let mut conn = self.conn();
        // Asked every second: a read on the snooze index first, so the
        // common case (nothing due) takes no write lock.
        let due: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM requests WHERE snoozed_until IS NOT NULL
                AND (snoozed_until <= ?1 OR status != 'pending'))",
            )?
            .query_row([now], |r| r.get(0))?;
        if !due {
            return Ok(Vec::new());
        }
        let tx = conn.transaction()?;
        let woken: Vec<Request> = {
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {REQUEST_COLUMNS} FROM requests r JOIN accounts a ON a.id = r.account_id
                 WHERE r.snoozed_until IS NOT NULL AND r.snoozed_until <= ?1
                 AND r.status = 'pending' AND a.removed_at IS NULL"
            ))?;
            let rows = stmt.query_map([now], request_from_row)?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        tx.execute(
            "UPDATE requests SET snoozed_until = NULL
             WHERE snoozed_until IS NOT NULL AND (snoozed_until <= ?1 OR status != 'pending')",
            [now],
        )?;
        tx.commit()?;
        Ok(woken
            .into_iter()
            .map(|mut r| {
                r.snoozed_until = None;
                r
            })
            .collect())
    }

    /// Pending requests snoozed past `now` (for the tray: "2 snoozed").
    pub fn snoozed_count(&self, now: DateTime<Utc>) -> Result<i64> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM requests r JOIN accounts a ON a.id = r.account_id
             WHERE r.snoozed_until > ?1 AND r.status = 'pending' AND a.removed_at IS NULL",
            [now],
            |r| r.get(0),
        )?)
    }
}
