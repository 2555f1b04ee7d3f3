//! The activity feed: things agents did and reported, and platform events a
//! reviewer should see. Kept apart from the approval queue.

use crate::sql::named;
use crate::{Result, Store};
use countersign_model::{Activity, ObservedActivity};
use rusqlite::{params, OptionalExtension, Row};

const ACTIVITY_COLUMNS: &str =
    "v.id, v.account_id, a.name AS account, a.platform, v.remote_id, v.event_type,
    v.title, v.agent, v.details, v.occurred_at, v.read, v.raw, v.request_remote_id";

fn activity_from_row(row: &Row<'_>) -> rusqlite::Result<Activity> {
    Ok(Activity {
        id: row.get("id")?,
        account_id: row.get("account_id")?,
        account: row.get("account")?,
        platform: named(row, "platform")?,
        remote_id: row.get("remote_id")?,
        event_type: row.get("event_type")?,
        title: row.get("title")?,
        agent: row.get("agent")?,
        details: row.get("details")?,
        occurred_at: row.get("occurred_at")?,
        read: row.get("read")?,
        raw: row.get("raw")?,
        request_remote_id: row.get("request_remote_id")?,
    })
}

impl Store {
    /// Stores an activity item once; a replay returns `None`.
    pub fn insert_activity(
        &self,
        account_id: i64,
        item: &ObservedActivity,
    ) -> Result<Option<Activity>> {
        let conn = self.conn();
        let inserted = conn.execute(
            "INSERT INTO activity (account_id, remote_id, event_type, title, agent, details, occurred_at, raw,
                request_remote_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(account_id, remote_id) DO NOTHING",
            params![
                account_id,
                item.remote_id,
                item.event_type,
                item.title,
                item.agent,
                item.details,
                item.occurred_at,
                item.raw,
                item.request_remote_id
            ],
        )?;
        if inserted == 0 {
            return Ok(None);
        }
        let id = conn.last_insert_rowid();
        Ok(conn
            .query_row(
                &format!(
                    "SELECT {ACTIVITY_COLUMNS} FROM activity v JOIN accounts a ON a.id = v.account_id WHERE v.id = ?1"
                ),
                [id],
                activity_from_row,
            )
            .optional()?)
    }

    /// The newest activity items first, optionally for one account.
    pub fn activity(&self, account: Option<&str>, limit: u32) -> Result<Vec<Activity>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {ACTIVITY_COLUMNS} FROM activity v JOIN accounts a ON a.id = v.account_id
             WHERE (?1 IS NULL OR a.name = ?1) ORDER BY v.occurred_at DESC, v.id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![account, limit], activity_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What the platform reported about one request, oldest first.
    pub fn activity_for_request(&self, account_id: i64, remote_id: &str) -> Result<Vec<Activity>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {ACTIVITY_COLUMNS} FROM activity v JOIN accounts a ON a.id = v.account_id
             WHERE v.account_id = ?1 AND v.request_remote_id = ?2 ORDER BY v.occurred_at, v.id"
        ))?;
        let rows = stmt.query_map(params![account_id, remote_id], activity_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What the platform reported about each of these requests, keyed by
    /// `(account id, remote id)`, oldest first: one query per account and
    /// 500 requests, for exports.
    pub fn activity_for_requests(
        &self,
        requests: &[(i64, &str)],
    ) -> Result<std::collections::HashMap<(i64, String), Vec<Activity>>> {
        let mut by_account: std::collections::BTreeMap<i64, Vec<&str>> = Default::default();
        for (account, remote) in requests {
            by_account.entry(*account).or_default().push(remote);
        }
        let mut out: std::collections::HashMap<(i64, String), Vec<Activity>> = Default::default();
        let conn = self.conn();
        for (account, remotes) in by_account {
            for chunk in remotes.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(", ");
                let mut stmt = conn.prepare(&format!(
                    "SELECT {ACTIVITY_COLUMNS} FROM activity v
                     JOIN accounts a ON a.id = v.account_id
                     WHERE v.account_id = ? AND v.request_remote_id IN ({marks})
                     ORDER BY v.occurred_at, v.id"
                ))?;
                let mut params: Vec<&dyn rusqlite::ToSql> = vec![&account];
                params.extend(chunk.iter().map(|r| r as &dyn rusqlite::ToSql));
                let rows = stmt.query_map(params.as_slice(), activity_from_row)?;
                for a in rows {
                    let a = a?;
                    let remote = a.request_remote_id.clone().unwrap_or_default();
                    out.entry((account, remote)).or_default().push(a);
                }
            }
        }
        Ok(out)
    }

    pub fn activity_item(&self, id: i64) -> Result<Option<Activity>> {
        Ok(self
            .conn()
            .query_row(
                &format!(
                    "SELECT {ACTIVITY_COLUMNS} FROM activity v JOIN accounts a ON a.id = v.account_id WHERE v.id = ?1"
                ),
                [id],
                activity_from_row,
            )
            .optional()?)
    }

    /// Marks an item read; false when it already was (or is unknown).
    pub fn mark_activity_read(&self, id: i64) -> Result<bool> {
        Ok(self.conn().execute(
            "UPDATE activity SET read = 1 WHERE id = ?1 AND read = 0",
            [id],
        )? > 0)
    }
}
