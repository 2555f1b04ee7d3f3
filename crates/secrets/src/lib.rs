//! Where account credentials live: the OS keychain (Secret Service on
//! Linux, Keychain on macOS, Credential Manager on Windows), or, only when
//! the user asks for it, a 0600 file in the data dir.
//!
//! The database stores just which store holds an account's secret and a
//! random reference to it, never the secret.

use countersign_model::{Secret, SecretStoreKind};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

const SERVICE: &str = "countersign";
const FILE_NAME: &str = "secrets.json";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "no OS keychain is available ({0}); start a Secret Service (such as gnome-keyring) \
         or pass `--secret-store file` to keep the secret in a 0600 file in the data dir"
    )]
    NoKeychain(String),
    #[error("the OS keychain refused: {0}")]
    Keychain(String),
    #[error("could not use the secrets file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the secrets file {0} is not valid JSON; fix or remove it")]
    Corrupt(PathBuf),
}

/// The secret stores of one data dir.
#[derive(Debug, Clone)]
pub struct Secrets {
    file: PathBuf,
}

impl Secrets {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            file: data_dir.join(FILE_NAME),
        }
    }

    /// The file used by [`SecretStoreKind::File`].
    pub fn file_path(&self) -> &Path {
        &self.file
    }

    /// Stores a secret. Blocking: call it off the async runtime's threads.
    pub fn put(
        &self,
        kind: SecretStoreKind,
        reference: &str,
        secret: &Secret,
    ) -> Result<(), SecretError> {
        match kind {
            SecretStoreKind::Keychain => keychain_entry(reference)?
                .set_password(secret.expose())
                .map_err(keychain_error),
            SecretStoreKind::File => {
                let _held = self.lock_file()?;
                let mut all = self.read_file()?;
                all.insert(reference.to_owned(), secret.expose().to_owned());
                self.write_file(&all)
            }
            SecretStoreKind::None => Ok(()),
        }
    }

    /// Reads a secret; `None` when the store has none under `reference`.
    pub fn get(
        &self,
        kind: SecretStoreKind,
        reference: &str,
    ) -> Result<Option<Secret>, SecretError> {
        match kind {
            SecretStoreKind::Keychain => match keychain_entry(reference)?.get_password() {
                Ok(p) => Ok(Some(Secret::new(p))),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(e) => Err(keychain_error(e)),
            },
            SecretStoreKind::File => Ok(self.read_file()?.remove(reference).map(Secret::new)),
            SecretStoreKind::None => Ok(None),
        }
    }

    /// Deletes a secret; deleting one that is not there is fine.
    pub fn delete(&self, kind: SecretStoreKind, reference: &str) -> Result<(), SecretError> {
        match kind {
            SecretStoreKind::Keychain => match keychain_entry(reference)?.delete_credential() {
                Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
                Err(e) => Err(keychain_error(e)),
            },
            SecretStoreKind::File => {
                let _held = self.lock_file()?;
                let mut all = self.read_file()?;
                if all.remove(reference).is_some() {
                    self.write_file(&all)?;
                }
                Ok(())
            }
            SecretStoreKind::None => Ok(()),
        }
    }

    /// Holds the secrets file's lock for a read-modify-write: the app and
    /// CLI processes both write it (a renewed session, a new account), and
    /// an unguarded write would drop the other's change.
    fn lock_file(&self) -> Result<std::fs::File, SecretError> {
        let path = self.file.with_extension("json.lock");
        let err = |source| SecretError::File {
            path: path.clone(),
            source,
        };
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let f = options.open(&path).map_err(err)?;
        f.lock().map_err(err)?;
        Ok(f)
    }

    fn read_file(&self) -> Result<BTreeMap<String, String>, SecretError> {
        match std::fs::read(&self.file) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|_| SecretError::Corrupt(self.file.clone()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(source) => Err(SecretError::File {
                path: self.file.clone(),
                source,
            }),
        }
    }

    /// Writes via a 0600 temp file and a rename, so a crash never leaves a
    /// half-written or world-readable file.
    fn write_file(&self, all: &BTreeMap<String, String>) -> Result<(), SecretError> {
        let err = |source| SecretError::File {
            path: self.file.clone(),
            source,
        };
        let tmp = self.file.with_extension("json.tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp).map_err(err)?;
        let body = serde_json::to_vec_pretty(all).unwrap_or_default();
        f.write_all(&body).map_err(err)?;
        f.sync_all().map_err(err)?;
        std::fs::rename(&tmp, &self.file).map_err(err)
    }
}

fn keychain_entry(reference: &str) -> Result<keyring::Entry, SecretError> {
    keyring::Entry::new(SERVICE, reference).map_err(|e| match e {
        keyring::Error::NoDefaultStore => SecretError::NoKeychain(
            keyring::Entry::store_status()
                .as_ref()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "no default store".into()),
        ),
        other => keychain_error(other),
    })
}

fn keychain_error(e: keyring::Error) -> SecretError {
    match e {
        keyring::Error::NoStorageAccess(inner) => SecretError::NoKeychain(inner.to_string()),
        keyring::Error::PlatformFailure(inner) => SecretError::NoKeychain(inner.to_string()),
        keyring::Error::NoDefaultStore => SecretError::NoKeychain("no default store".into()),
        other => SecretError::Keychain(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_store_round_trips_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let s = Secrets::new(dir.path());
        s.put(SecretStoreKind::File, "a", &Secret::new("tok-a"))
            .unwrap();
        s.put(SecretStoreKind::File, "b", &Secret::new("tok-b"))
            .unwrap();
        assert_eq!(
            s.get(SecretStoreKind::File, "a").unwrap(),
            Some(Secret::new("tok-a"))
        );
        s.delete(SecretStoreKind::File, "a").unwrap();
        assert_eq!(s.get(SecretStoreKind::File, "a").unwrap(), None);
        assert_eq!(
            s.get(SecretStoreKind::File, "b").unwrap(),
            Some(Secret::new("tok-b"))
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(s.file_path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o777,
                0o600,
                "only the user may read the secrets file"
            );
        }
    }

    #[test]
    fn writers_in_parallel_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let s = Secrets::new(dir.path());
                std::thread::spawn(move || {
                    for j in 0..10 {
                        s.put(
                            SecretStoreKind::File,
                            &format!("k{i}-{j}"),
                            &Secret::new("v"),
                        )
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = Secrets::new(dir.path());
        let missing: Vec<String> = (0..8)
            .flat_map(|i| (0..10).map(move |j| format!("k{i}-{j}")))
            .filter(|k| s.get(SecretStoreKind::File, k).unwrap().is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "the app and the CLI write the file at once (sessions, accounts); lost: {missing:?}"
        );
    }

    #[test]
    fn secrets_never_print() {
        let shown = format!("{:?}", Secret::new("hunter2"));
        assert!(
            !shown.contains("hunter2"),
            "Debug output must hide the value: {shown}"
        );
    }
}
