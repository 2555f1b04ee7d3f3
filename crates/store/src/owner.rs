//! Who holds a delivery lease, and whether they still live.
//!
//! Each open [`Store`](crate::Store) is an owner: an id written beside the
//! leases it takes, and an OS lock on a file named after that id
//! (`<data dir>/locks/owner-<id>.lock`) held for as long as the store is
//! open. The OS drops the lock when the process dies, however it dies
//! (SIGKILL, power loss), so another process can tell a live sender (the
//! lock is held: its lease is honoured) from a dead one (the lock can be
//! taken: its decisions are delivered again at once, not when the lease
//! runs out). Two live processes still never send one decision twice: a
//! live owner's lease is always honoured.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug)]
pub(crate) struct Owner {
    pub(crate) id: String,
    /// Where the lock files of this store's owners live; `None` for an
    /// in-memory store, which no other process can see.
    dir: Option<PathBuf>,
    /// Held for the store's life; the OS releases it when the process ends.
    _lock: Option<File>,
}

fn lock_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("owner-{id}.lock"))
}

fn new_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos:x}", std::process::id())
}

impl Owner {
    /// A new owner for the store at `db`, its lock taken in `locks/`
    /// beside it.
    pub(crate) fn for_file(db: &Path) -> std::io::Result<Self> {
        let dir = db
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join("locks");
        std::fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let id = new_id();
        let mut options = OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(lock_path(&dir, &id))?;
        file.lock()?;
        Ok(Self {
            id,
            dir: Some(dir),
            _lock: Some(file),
        })
    }

    pub(crate) fn in_memory() -> Self {
        Self {
            id: new_id(),
            dir: None,
            _lock: None,
        }
    }

    /// Whether the owner `id` (another store, maybe in another process)
    /// is still open. Unknown ids count as gone; a lock file left by a
    /// dead owner is removed once seen.
    pub(crate) fn is_alive(&self, id: &str) -> bool {
        if id == self.id {
            return true;
        }
        let Some(dir) = &self.dir else {
            return true;
        };
        // An id is made by `new_id`; anything else never names a file.
        if !id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return false;
        }
        let path = lock_path(dir, id);
        let Ok(file) = OpenOptions::new().write(true).open(&path) else {
            return false;
        };
        match file.try_lock() {
            Ok(()) => {
                let _ = std::fs::remove_file(&path);
                false
            }
            Err(TryLockError::WouldBlock) => true,
            // Cannot tell: honour the lease rather than risk a double send.
            Err(TryLockError::Error(e)) => {
                tracing::warn!("cannot check delivery owner {id}: {e}");
                true
            }
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_file(lock_path(dir, &self.id));
        }
    }
}
