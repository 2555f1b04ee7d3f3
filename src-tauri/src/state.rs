//! What the shell keeps for the app's lifetime, built once in `setup`.

use crate::notify::Notifier;
use crate::prefs::Prefs;
use countersign_inbox::{Inbox, Running};
use std::sync::{Arc, Mutex, MutexGuard};

pub struct AppState {
    pub inbox: Arc<Inbox>,
    /// The running account tasks; restarted when an account changes.
    pub running: tokio::sync::Mutex<Running>,
    prefs: Mutex<Prefs>,
    /// The switches file's time and size when last read.
    prefs_stamp: Mutex<Option<(std::time::SystemTime, u64)>>,
    /// What the tray shows now, for the UI and tests to read back.
    pub tray_text: Mutex<String>,
    pub notifier: Notifier,
    /// Requests that arrived in quiet hours, notified when they end.
    held: Mutex<Vec<i64>>,
}

impl AppState {
    pub fn new(inbox: Arc<Inbox>, prefs: Prefs, notifier: Notifier) -> Self {
        let stamp = Prefs::stamp(inbox.data_dir());
        Self {
            inbox,
            running: tokio::sync::Mutex::new(Running::default()),
            prefs_stamp: Mutex::new(stamp),
            prefs: Mutex::new(prefs),
            tray_text: Mutex::new(String::new()),
            notifier,
            held: Mutex::new(Vec::new()),
        }
    }

    pub fn prefs(&self) -> Prefs {
        lock(&self.prefs).clone()
    }

    pub fn set_prefs(&self, prefs: Prefs) -> std::io::Result<()> {
        prefs.save(self.inbox.data_dir())?;
        *lock(&self.prefs_stamp) = Prefs::stamp(self.inbox.data_dir());
        *lock(&self.prefs) = prefs;
        Ok(())
    }

    /// Reads the switches again if their file changed (the CLI may have
    /// changed them); true if they changed.
    pub fn reload_prefs(&self) -> bool {
        let stamp = Prefs::stamp(self.inbox.data_dir());
        {
            let mut last = lock(&self.prefs_stamp);
            if *last == stamp {
                return false;
            }
            *last = stamp;
        }
        let fresh = Prefs::load(self.inbox.data_dir());
        let mut prefs = lock(&self.prefs);
        if *prefs == fresh {
            return false;
        }
        *prefs = fresh;
        true
    }

    /// Holds requests for the end of quiet hours.
    pub fn hold(&self, ids: impl IntoIterator<Item = i64>) {
        lock(&self.held).extend(ids);
    }

    /// The requests held so far, handed over once.
    pub fn take_held(&self) -> Vec<i64> {
        std::mem::take(&mut *lock(&self.held))
    }

    pub fn has_held(&self) -> bool {
        !lock(&self.held).is_empty()
    }
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
