//! Accounts and their last known health.

use crate::sql::named;
use crate::{Result, Store, StoreError};
use chrono::{DateTime, Utc};
use countersign_model::{Account, AccountHealth, NewAccount};
use rusqlite::{params, OptionalExtension, Row};

const ACCOUNT_COLUMNS: &str =
    "id, name, platform, base_url, reviewer, secret_store, secret_ref, settings, created_at";

fn account_from_row(row: &Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: row.get("id")?,
        name: row.get("name")?,
        platform: named(row, "platform")?,
        base_url: row.get("base_url")?,
        reviewer: row.get("reviewer")?,
        secret_store: named(row, "secret_store")?,
        secret_ref: row.get("secret_ref")?,
        settings: row.get("settings")?,
        created_at: row.get("created_at")?,
    })
}

impl Store {
    /// Adds an account. Names are unique among accounts not removed.
    pub fn add_account(
        &self,
        new: &NewAccount,
        secret_ref: &str,
        now: DateTime<Utc>,
    ) -> Result<Account> {
        let conn = self.conn();
        let inserted = conn.execute(
            "INSERT INTO accounts (name, platform, base_url, reviewer, secret_store, secret_ref, settings, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                new.name,
                new.platform.as_str(),
                new.base_url,
                new.reviewer,
                new.secret_store.as_str(),
                secret_ref,
                new.settings,
                now
            ],
        );
        match inserted {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                return Err(StoreError::Conflict(format!(
                    "an account named `{}` already exists",
                    new.name
                )))
            }
            other => other?,
        };
        let id = conn.last_insert_rowid();
        drop(conn);
        self.account(id)
    }

    /// Replaces an account's editable fields (everything but id and secret ref).
    pub fn update_account(&self, account: &Account) -> Result<()> {
        let changed = self.conn().execute(
            "UPDATE accounts SET name = ?2, base_url = ?3, reviewer = ?4, secret_store = ?5, settings = ?6
             WHERE id = ?1 AND removed_at IS NULL",
            params![
                account.id,
                account.name,
                account.base_url,
                account.reviewer,
                account.secret_store.as_str(),
                account.settings
            ],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("account {}", account.id)));
        }
        Ok(())
    }

    /// Sets one key of an account's settings in place (a value the
    /// connector learned, such as the company a Clawith account is bound
    /// to), without a read-modify-write race with an edit.
    pub fn set_account_setting(&self, id: i64, key: &str, value: &str) -> Result<()> {
        let changed = self.conn().execute(
            "UPDATE accounts SET settings = json_set(COALESCE(settings, '{}'), '$.' || ?2, ?3)
             WHERE id = ?1 AND removed_at IS NULL",
            params![id, key, value],
        )?;
        if changed == 0 {
            return Err(StoreError::NotFound(format!("account {id}")));
        }
        Ok(())
    }

    pub fn account(&self, id: i64) -> Result<Account> {
        self.conn()
            .query_row(
                &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ?1"),
                [id],
                account_from_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("account {id}")))
    }

    /// The active account with this name.
    pub fn account_by_name(&self, name: &str) -> Result<Account> {
        self.conn()
            .query_row(
                &format!(
                    "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = ?1 AND removed_at IS NULL"
                ),
                [name],
                account_from_row,
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(format!("account `{name}`")))
    }

    /// Active accounts, by name.
    pub fn accounts(&self) -> Result<Vec<Account>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE removed_at IS NULL ORDER BY name"
        ))?;
        let rows = stmt.query_map([], account_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Retires an account: it stops syncing and leaves the account list, but
    /// its requests and decisions stay in history. Returns the retired account.
    pub fn remove_account(&self, name: &str, now: DateTime<Utc>) -> Result<Account> {
        let account = self.account_by_name(name)?;
        self.conn().execute(
            "UPDATE accounts SET removed_at = ?2 WHERE id = ?1",
            params![account.id, now],
        )?;
        Ok(account)
    }

    pub fn set_health(&self, health: &AccountHealth) -> Result<()> {
        self.conn().execute(
            "INSERT INTO account_health (account_id, state, backoff_until, last_error, last_sync_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(account_id) DO UPDATE SET state = excluded.state,
                backoff_until = excluded.backoff_until, last_error = excluded.last_error,
                last_sync_at = COALESCE(excluded.last_sync_at, account_health.last_sync_at),
                updated_at = excluded.updated_at",
            params![
                health.account_id,
                health.state.as_str(),
                health.backoff_until,
                health.last_error,
                health.last_sync_at,
                health.updated_at
            ],
        )?;
        Ok(())
    }

    /// Records what the connector said about its last pass; it stays on the
    /// health line until replaced.
    pub fn set_health_note(&self, account_id: i64, note: &str) -> Result<bool> {
        let changed = self.conn().execute(
            "UPDATE account_health SET note = ?2 WHERE account_id = ?1 AND note IS NOT ?2",
            params![account_id, note],
        )?;
        Ok(changed > 0)
    }

    pub fn health(&self, account_id: i64) -> Result<Option<AccountHealth>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT account_id, state, backoff_until, last_error, last_sync_at, updated_at, note
                 FROM account_health WHERE account_id = ?1",
                [account_id],
                |row| {
                    Ok(AccountHealth {
                        account_id: row.get("account_id")?,
                        state: named(row, "state")?,
                        backoff_until: row.get("backoff_until")?,
                        last_error: row.get("last_error")?,
                        last_sync_at: row.get("last_sync_at")?,
                        updated_at: row.get("updated_at")?,
                        note: row.get("note")?,
                    })
                },
            )
            .optional()?)
    }
}
