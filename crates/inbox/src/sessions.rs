//! Login sessions of connectors ([`SessionStore`]), kept beside the
//! account's secret in its own secret store (`<secret_ref>.session`), with
//! a lock file per account in `<data dir>/locks/` so the desktop app and
//! every CLI process renew one session one at a time. A platform that
//! allows few logins (SurfSense: 5 a minute) then sees one login for any
//! number of commands.

use countersign_connector::session::SessionStoreError;
use countersign_connector::{SessionLock, SessionStore};
use countersign_model::{Account, Secret, SecretStoreKind};
use countersign_secrets::Secrets;
use std::path::{Path, PathBuf};

/// The reference a session is stored under, beside the account's secret.
pub(crate) fn session_ref(secret_ref: &str) -> String {
    format!("{secret_ref}.session")
}

pub(crate) struct AccountSessions {
    secrets: Secrets,
    kind: SecretStoreKind,
    reference: String,
    lock_path: PathBuf,
}

impl AccountSessions {
    pub(crate) fn new(data_dir: &Path, secrets: Secrets, account: &Account) -> Self {
        Self {
            secrets,
            kind: account.secret_store,
            reference: session_ref(&account.secret_ref),
            lock_path: data_dir
                .join("locks")
                .join(format!("{}.session.lock", account.secret_ref)),
        }
    }
}

fn failed(e: impl std::fmt::Display) -> SessionStoreError {
    SessionStoreError(e.to_string())
}

impl SessionStore for AccountSessions {
    fn lock(&self) -> Result<SessionLock, SessionStoreError> {
        if let Some(dir) = self.lock_path.parent() {
            crate::private_dir(dir).map_err(failed)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let file = options.open(&self.lock_path).map_err(failed)?;
        // Held until the returned box drops; the OS releases it if the
        // process dies, so a crash never wedges the next one.
        file.lock().map_err(failed)?;
        Ok(Box::new(file))
    }

    fn load(&self) -> Result<Option<Secret>, SessionStoreError> {
        self.secrets.get(self.kind, &self.reference).map_err(failed)
    }

    fn save(&self, session: &Secret) -> Result<(), SessionStoreError> {
        self.secrets
            .put(self.kind, &self.reference, session)
            .map_err(failed)
    }

    fn clear(&self) -> Result<(), SessionStoreError> {
        self.secrets
            .delete(self.kind, &self.reference)
            .map_err(failed)
    }
}
