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
    /// What the tray shows now, for the UI and tests to read back.
    pub tray_text: Mutex<String>,
    pub notifier: Notifier,
}

impl AppState {
    pub fn new(inbox: Arc<Inbox>, prefs: Prefs, notifier: Notifier) -> Self {
        Self {
            inbox,
            running: tokio::sync::Mutex::new(Running::default()),
            prefs: Mutex::new(prefs),
            tray_text: Mutex::new(String::new()),
            notifier,
        }
    }

    pub fn prefs(&self) -> Prefs {
        lock(&self.prefs).clone()
    }

    pub fn set_prefs(&self, prefs: Prefs) -> std::io::Result<()> {
        crate::prefs::save(self.inbox.data_dir(), &prefs)?;
        *lock(&self.prefs) = prefs;
        Ok(())
    }
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
