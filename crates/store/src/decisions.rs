//! Decisions and the outbox. A decision is written (and its request leaves
//! the inbox) before anything is sent; senders then claim it with a lease,
//! so two processes sharing the database never deliver it twice.

use crate::sql::named;
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use countersign_model::{Decision, DecisionDraft, Delivery, Request};
use rusqlite::{params, OptionalExtension, Row};

const DECISION_COLUMNS: &str =
    "id, request_id, outcome, comment, edited_arguments, response, decided_by,
    decided_at, delivery, error, attempts, next_attempt_at, confirmed_at, note, unsure_since";

fn decision_from_row(row: &Row<'_>) -> rusqlite::Result<Decision> {
    Ok(Decision {
        id: row.get("id")?,
        request_id: row.get("request_id")?,
        outcome: named(row, "outcome")?,
        comment: row.get("comment")?,
        edited_arguments: row.get("edited_arguments")?,
        response: row.get("response")?,
        decided_by: row.get("decided_by")?,
        decided_at: row.get("decided_at")?,
        delivery: named(row, "delivery")?,
        error: row.get("error")?,
        attempts: row.get("attempts")?,
        next_attempt_at: row.get("next_attempt_at")?,
        confirmed_at: row.get("confirmed_at")?,
        note: row.get("note")?,
        unsure_since: row.get("unsure_since")?,
    })
}

/// A decision claimed for delivery, with the request it answers.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub decision: Decision,
    pub request: Request,
}

/// What became of a delivery attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum DecisionUpdate {
    /// The platform took it.
    Confirmed,
    /// The platform took it but did something else than it says; the note
    /// tells the reviewer what.
    ConfirmedWithNote(String),
    /// Try again at `at` (platform down, rate limited, auth to be fixed).
    Retry { error: String, at: DateTime<Utc> },
    /// Check again at `at`: the attempt was sent and got no answer, so it
    /// may have been applied (`unsure_since` is set, if not already).
    RetryUnsure { error: String, at: DateTime<Utc> },
    /// The platform refused it for good. With `reopen`, the request goes
    /// back to pending (the user may still decide it differently).
    Failed { error: String, reopen: bool },
}

impl Store {
    /// Stores a decision and takes its request out of the inbox, in one
    /// transaction. Refuses a request that is no longer pending, a decision
    /// the platform does not allow for it, or a second decision in flight.
    pub fn record_decision(&self, draft: &DecisionDraft) -> Result<Decision> {
        let request = self.request(draft.request_id)?;
        if !request.status.is_pending() {
            return Err(StoreError::Conflict(format!(
                "request {} is already {}",
                request.id,
                request.status.as_str().replace('_', " ")
            )));
        }
        if !request.allows(draft.outcome.requires()) {
            return Err(StoreError::Conflict(format!(
                "{} does not allow `{}` for request {}",
                request.platform, draft.outcome, request.id
            )));
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        // Re-checked inside the transaction: another process may have
        // decided it since the read above.
        let updated = tx.execute(
            "UPDATE requests SET status = ?2, decided_by = ?3, decided_at = ?4, comment = ?5,
                outcome = NULL, updated_at = ?4
             WHERE id = ?1 AND status = 'pending'",
            params![
                draft.request_id,
                draft.outcome.resulting_status().as_str(),
                draft.decided_by,
                draft.decided_at,
                draft.comment
            ],
        )?;
        if updated == 0 {
            return Err(StoreError::Conflict(format!(
                "request {} was decided meanwhile",
                draft.request_id
            )));
        }
        tx.execute(
            "INSERT INTO decisions (request_id, outcome, comment, edited_arguments, response, decided_by,
                decided_at, delivery, attempts)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'queued', 0)",
            params![
                draft.request_id,
                draft.outcome.as_str(),
                draft.comment,
                draft.edited_arguments,
                draft.response,
                draft.decided_by,
                draft.decided_at
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        drop(conn);
        self.decision(id)
    }

    pub fn decision(&self, id: i64) -> Result<Decision> {
        self.conn()
            .query_row(
                &format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE id = ?1"),
                [id],
                decision_from_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("decision {id}")))
    }

    /// Every decision made on a request, oldest first.
    pub fn decisions_for(&self, request_id: i64) -> Result<Vec<Decision>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {DECISION_COLUMNS} FROM decisions WHERE request_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map([request_id], decision_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every decision made on each of these requests (those with one),
    /// oldest first, in one query per 500 requests: for exports, which
    /// would otherwise ask once per row.
    pub fn decisions_for_requests(
        &self,
        request_ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, Vec<Decision>>> {
        let mut out: std::collections::HashMap<i64, Vec<Decision>> = Default::default();
        let conn = self.conn();
        for chunk in request_ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut stmt = conn.prepare(&format!(
                "SELECT {DECISION_COLUMNS} FROM decisions WHERE request_id IN ({marks}) ORDER BY id"
            ))?;
            let rows = stmt.query_map(rusqlite::params_from_iter(chunk), decision_from_row)?;
            for d in rows {
                let d = d?;
                out.entry(d.request_id).or_default().push(d);
            }
        }
        Ok(out)
    }

    /// The latest decision of each of these requests (those with one), in
    /// one query.
    pub fn latest_decisions(
        &self,
        request_ids: &[i64],
    ) -> Result<std::collections::HashMap<i64, Decision>> {
        let mut out = std::collections::HashMap::new();
        let conn = self.conn();
        // SQLite's default bound-parameter limit is 32766; stay well below.
        for chunk in request_ids.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let mut stmt = conn.prepare(&format!(
                "SELECT {DECISION_COLUMNS} FROM decisions WHERE id IN (
                    SELECT MAX(id) FROM decisions WHERE request_id IN ({marks}) GROUP BY request_id)"
            ))?;
            let rows = stmt.query_map(rusqlite::params_from_iter(chunk), decision_from_row)?;
            for d in rows {
                let d = d?;
                out.insert(d.request_id, d);
            }
        }
        Ok(out)
    }

    /// The decision on this request that is still on its way, if any.
    pub fn open_decision_for(&self, request_id: i64) -> Result<Option<Decision>> {
        Ok(self
            .conn()
            .query_row(
                &format!(
                    "SELECT {DECISION_COLUMNS} FROM decisions
                     WHERE request_id = ?1 AND delivery IN ('queued', 'sent') ORDER BY id DESC LIMIT 1"
                ),
                [request_id],
                decision_from_row,
            )
            .optional()?)
    }

    /// Whether any decision on this account's requests is still on its way
    /// (queued or being sent). Reads the outbox index only.
    pub fn has_open_decisions(&self, account_id: i64) -> Result<bool> {
        Ok(self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM decisions d JOIN requests r ON r.id = d.request_id
                WHERE d.delivery IN ('queued', 'sent') AND r.account_id = ?1)",
            [account_id],
            |r| r.get(0),
        )?)
    }

    /// Decisions not yet confirmed or failed, oldest first.
    pub fn outbox(&self) -> Result<Vec<Decision>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {DECISION_COLUMNS} FROM decisions WHERE delivery IN ('queued', 'sent') ORDER BY id"
        ))?;
        let rows = stmt.query_map([], decision_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Atomically takes the decisions due for delivery on one account (or
    /// just `only` and the rest of its group when given). A decision on a
    /// request of a group waits while any request of that group is still
    /// pending. Due are: queued ones whose retry time has come (any
    /// queued one with `retry_all`, e.g. right after the platform came
    /// back), and sent ones whose sender's lease ran out. Each claimed
    /// decision is marked sent with a lease of `lease` and its attempt
    /// count bumped.
    pub fn claim_due(
        &self,
        account_id: i64,
        only: Option<i64>,
        now: DateTime<Utc>,
        lease: Duration,
        retry_all: bool,
    ) -> Result<Vec<Claimed>> {
        let dead = self.dead_lease_owners(account_id, now)?;
        let ids: Vec<i64> = {
            let conn = self.conn();
            let mut stmt = conn.prepare(
                "UPDATE decisions SET delivery = 'sent', lease_until = ?2, lease_owner = ?6,
                    attempts = attempts + 1
                 WHERE id IN (
                    SELECT d.id FROM decisions d JOIN requests r ON r.id = d.request_id
                    JOIN accounts a ON a.id = r.account_id
                    WHERE r.account_id = ?1 AND a.removed_at IS NULL
                    AND (?4 IS NULL OR d.id = ?4 OR json_extract(r.extra, '$.group.key') =
                        (SELECT json_extract(r2.extra, '$.group.key') FROM decisions d2
                         JOIN requests r2 ON r2.id = d2.request_id
                         WHERE d2.id = ?4 AND r2.account_id = ?1))
                    AND (
                        (d.delivery = 'queued' AND (?5 OR d.next_attempt_at IS NULL OR d.next_attempt_at <= ?3))
                        OR (d.delivery = 'sent' AND (d.lease_until < ?3
                            OR d.lease_owner IN (SELECT value FROM json_each(?7)))))
                    -- a group goes only once none of its requests waits for a decision
                    AND NOT EXISTS (SELECT 1 FROM requests o
                        WHERE o.account_id = r.account_id AND o.status = 'pending'
                        AND json_extract(o.extra, '$.group.key') = json_extract(r.extra, '$.group.key')))
                 RETURNING id",
            )?;
            let rows = stmt.query_map(
                params![
                    account_id,
                    now + lease,
                    now,
                    only,
                    retry_all,
                    self.owner.id,
                    serde_json::Value::from(dead),
                ],
                |r| r.get(0),
            )?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            let decision = self.decision(id)?;
            let request = self.request(decision.request_id)?;
            claimed.push(Claimed { decision, request });
        }
        claimed.sort_by_key(|c| c.decision.id);
        Ok(claimed)
    }

    /// Holders of unexpired leases on this account's decisions whose store
    /// is no longer open anywhere (their process died).
    fn dead_lease_owners(&self, account_id: i64, now: DateTime<Utc>) -> Result<Vec<String>> {
        let owners: Vec<String> = {
            let conn = self.conn();
            let mut stmt = conn.prepare_cached(
                "SELECT DISTINCT d.lease_owner FROM decisions d JOIN requests r ON r.id = d.request_id
                 WHERE r.account_id = ?1 AND d.delivery = 'sent' AND d.lease_until >= ?2
                 AND d.lease_owner IS NOT NULL",
            )?;
            let rows = stmt.query_map(params![account_id, now], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        Ok(owners
            .into_iter()
            .filter(|o| {
                let alive = self.owner.is_alive(o);
                if !alive {
                    tracing::info!(owner = %o, "a sender died while delivering; its decisions go again now");
                }
                !alive
            })
            .collect())
    }

    /// Records the result of a delivery attempt.
    pub fn update_decision(
        &self,
        id: i64,
        update: &DecisionUpdate,
        now: DateTime<Utc>,
    ) -> Result<Decision> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        match update {
            DecisionUpdate::Confirmed | DecisionUpdate::ConfirmedWithNote(_) => {
                let note = match update {
                    DecisionUpdate::ConfirmedWithNote(n) => Some(n.as_str()),
                    _ => None,
                };
                tx.execute(
                    "UPDATE decisions SET delivery = ?2, confirmed_at = ?3, error = NULL,
                        lease_until = NULL, next_attempt_at = NULL, note = ?4 WHERE id = ?1",
                    params![id, Delivery::Confirmed.as_str(), now, note],
                )?;
            }
            DecisionUpdate::Retry { error, at } => {
                tx.execute(
                    "UPDATE decisions SET delivery = ?2, error = ?3, next_attempt_at = ?4,
                        lease_until = NULL WHERE id = ?1",
                    params![id, Delivery::Queued.as_str(), error, at],
                )?;
            }
            DecisionUpdate::RetryUnsure { error, at } => {
                tx.execute(
                    "UPDATE decisions SET delivery = ?2, error = ?3, next_attempt_at = ?4,
                        lease_until = NULL, unsure_since = COALESCE(unsure_since, ?5) WHERE id = ?1",
                    params![id, Delivery::Queued.as_str(), error, at, now],
                )?;
            }
            DecisionUpdate::Failed { error, reopen } => {
                tx.execute(
                    "UPDATE decisions SET delivery = ?2, error = ?3, lease_until = NULL,
                        next_attempt_at = NULL WHERE id = ?1",
                    params![id, Delivery::Failed.as_str(), error],
                )?;
                if *reopen {
                    tx.execute(
                        "UPDATE requests SET status = 'pending', decided_by = NULL, decided_at = NULL,
                            updated_at = ?2
                         WHERE id = (SELECT request_id FROM decisions WHERE id = ?1)",
                        params![id, now],
                    )?;
                }
            }
        }
        tx.commit()?;
        drop(conn);
        self.decision(id)
    }
}
