//! Countersign's local history: every account, request, decision and
//! activity item, in one SQLite file that the CLI and the desktop app share.
//!
//! The store is the source of truth for what a user sees: a request is
//! written here before anything shows it, and a decision is written here
//! before it is sent. Upserts are keyed by (account, remote id), so replays
//! and reconnects never duplicate. Undelivered decisions form the outbox.
//!
//! WAL mode and a busy timeout let several processes (the CLI and the app)
//! use the same file at once.

mod accounts;
mod activity;
mod decisions;
mod history;
pub mod migrations;
mod owner;
pub mod private;
mod prune;
mod requests;
mod snooze;
mod sql;

pub use decisions::{Claimed, DecisionUpdate};
pub use history::{BadCursor, HistoryCursor, HistoryPage, HistoryQuery, DEFAULT_PAGE, MAX_PAGE};
pub use prune::{Prune, Pruned};
pub use requests::{PendingQuery, Snoozed, Upserted};

use rusqlite::Connection;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("could not migrate the database: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("the database holds a value this version does not understand: {0}")]
    Corrupt(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("could not take this process's delivery lock: {0}")]
    Owner(std::io::Error),
    #[error("could not make the database {path} private to you: {source}")]
    Private {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A handle on the database. Cheap to share behind an `Arc`; calls are
/// serialized on one connection, and each is a short transaction.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
    /// This store as the holder of delivery leases (see [`owner`]).
    owner: owner::Owner,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    /// The file and its `-wal`/`-shm` are 0600 (tightened if looser).
    pub fn open(path: &Path) -> Result<Self> {
        let private = |source| StoreError::Private {
            path: path.to_path_buf(),
            source,
        };
        private::store_files(path).map_err(private)?;
        let owner = owner::Owner::for_file(path).map_err(StoreError::Owner)?;
        let store = Self::setup(Connection::open(path)?, owner)?;
        private::store_companions(path).map_err(private)?;
        Ok(store)
    }

    /// A private in-memory database, for tests.
    pub fn open_in_memory() -> Result<Self> {
        Self::setup(Connection::open_in_memory()?, owner::Owner::in_memory())
    }

    fn setup(mut conn: Connection, owner: owner::Owner) -> Result<Self> {
        conn.busy_timeout(Duration::from_secs(10))?;
        // Space freed by `prune` goes back to the file system; this takes
        // effect on a new database (an older one is converted by `prune`).
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        // WAL lets the CLI read while the app writes; NORMAL is durable
        // across application crashes, which is what "nothing lost" needs.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrations::migrations().to_latest(&mut conn)?;
        Ok(Self {
            conn: Mutex::new(conn),
            owner,
        })
    }

    /// Changes whenever another connection (the CLI, say) commits to the
    /// database; cheap to poll.
    pub fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn()
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave a half-done write:
        // every multi-statement write runs in a transaction.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}
