//! Where a connector keeps a platform's login session between processes.
//!
//! Some platforms allow few logins (SurfSense: 5 a minute per IP), so a
//! connector must not log in on every start of a CLI command. It keeps the
//! session (a refresh token, or an access token until it expires) in a
//! [`SessionStore`] the caller gives it: the inbox backs it with the
//! account's secret store and a lock file in the data dir, so the desktop
//! app and every CLI process share one session, and a rotating refresh
//! token is renewed by one process at a time.
//!
//! Every method blocks (a keychain call, a file lock): call them off the
//! async runtime's threads.

use countersign_model::Secret;
use std::sync::{Arc, Condvar, Mutex};

/// Why the session store could not be used. The session is then only kept
/// in memory; the connector still works, it just logs in more often.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the session store failed: {0}")]
pub struct SessionStoreError(pub String);

/// Held while one process reads, renews and writes the session; other
/// processes wait in [`SessionStore::lock`]. Dropping it releases the lock.
pub type SessionLock = Box<dyn Send>;

/// A place for one account's session, shared by every process of a data dir.
pub trait SessionStore: Send + Sync {
    /// Waits until no other holder has the session, then holds it.
    fn lock(&self) -> Result<SessionLock, SessionStoreError>;
    /// The stored session, as the connector wrote it.
    fn load(&self) -> Result<Option<Secret>, SessionStoreError>;
    fn save(&self, session: &Secret) -> Result<(), SessionStoreError>;
    fn clear(&self) -> Result<(), SessionStoreError>;
}

/// A session store in memory, for tests: clones share it, as two processes
/// share a data dir.
#[derive(Clone, Default)]
pub struct MemorySessionStore {
    value: Arc<Mutex<Option<Secret>>>,
    held: Arc<(Mutex<bool>, Condvar)>,
}

struct MemoryLock(Arc<(Mutex<bool>, Condvar)>);

impl Drop for MemoryLock {
    fn drop(&mut self) {
        let (held, released) = &*self.0;
        *held.lock().unwrap_or_else(|e| e.into_inner()) = false;
        released.notify_one();
    }
}

impl MemorySessionStore {
    /// What is stored now.
    pub fn current(&self) -> Option<Secret> {
        self.value.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl SessionStore for MemorySessionStore {
    fn lock(&self) -> Result<SessionLock, SessionStoreError> {
        let (held, released) = &*self.held;
        let mut h = held.lock().unwrap_or_else(|e| e.into_inner());
        while *h {
            h = released.wait(h).unwrap_or_else(|e| e.into_inner());
        }
        *h = true;
        Ok(Box::new(MemoryLock(self.held.clone())))
    }

    fn load(&self) -> Result<Option<Secret>, SessionStoreError> {
        Ok(self.current())
    }

    fn save(&self, session: &Secret) -> Result<(), SessionStoreError> {
        *self.value.lock().unwrap_or_else(|e| e.into_inner()) = Some(session.clone());
        Ok(())
    }

    fn clear(&self) -> Result<(), SessionStoreError> {
        *self.value.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_for_the_first() {
        let store = MemorySessionStore::default();
        let first = store.lock().unwrap();
        let other = store.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _second = other.lock().unwrap();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(100))
                .is_err(),
            "the session is renewed by one holder at a time"
        );
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("released, the waiter gets it");
        waiter.join().unwrap();
    }
}
