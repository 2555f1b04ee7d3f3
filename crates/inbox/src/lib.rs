//! The one front door to Countersign's core, shared by the `countersign` CLI
//! and the desktop app: opens a data dir, manages accounts and their secrets,
//! builds each account's connector, runs the sync engine, and records and
//! delivers decisions.
//!
//! Everything a user can do goes through [`Inbox`], so the CLI and the app
//! behave the same and can run at once on the same data dir.

mod accounts;
mod deciding;
pub mod export;
pub mod notifications;
mod sessions;
mod view;
pub mod when;

pub use accounts::{AccountEdit, AccountInput};
pub use countersign_secrets::SecretError;
pub use countersign_sync::{Engine, OnceReport, SyncEvent};
pub use deciding::{next_step, DecisionInput};
pub use notifications::{NotificationPrefs, QuietHours};
pub use view::{AccountView, HistoryPageView, RequestDetail, RequestRow, RequestView, ROW_TEXT};

use countersign_connector::Connector;
use countersign_model::{Account, Clock, Platform};
use countersign_secrets::Secrets;
use countersign_store::{Store, StoreError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An account's stored settings, as its connector's `Settings`.
fn account_settings<T: serde::de::DeserializeOwned>(account: &Account) -> Result<T> {
    serde_json::from_value(account.settings.clone()).map_err(|e| {
        InboxError::Invalid(format!("account `{}` has bad settings: {e}", account.name))
    })
}

/// Creates a directory (and its parents) only the user may enter (0700,
/// tightened with a warning if it was looser).
pub(crate) use countersign_store::private::dir as private_dir;

/// Environment variable naming the data dir.
pub const DATA_DIR_ENV: &str = "COUNTERSIGN_DATA_DIR";
const DB_FILE: &str = "countersign.sqlite3";

#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("{0}")]
    Invalid(String),
    #[error("the account `{0}` has no stored secret; add it again with its credentials")]
    MissingSecret(String),
    #[error("could not use the data dir {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
}

pub type Result<T, E = InboxError> = std::result::Result<T, E>;

/// Picks the data dir: explicit, else `COUNTERSIGN_DATA_DIR`, else the
/// OS's standard per-user data dir.
pub fn resolve_data_dir(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(dir) = explicit {
        return Ok(dir);
    }
    if let Some(dir) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("dev", "Countersign", "Countersign")
        .map(|d| d.data_dir().to_path_buf())
        .ok_or_else(|| {
            InboxError::Invalid("no home directory to keep data in; pass --data-dir".into())
        })
}

/// Connectors built so far, by account id, with the account they were
/// built for.
type Built = HashMap<i64, (Account, Arc<dyn Connector>)>;

/// An open data dir.
pub struct Inbox {
    data_dir: PathBuf,
    store: Arc<Store>,
    secrets: Secrets,
    clock: Arc<dyn Clock>,
    http: reqwest::Client,
    engine: Engine,
    /// Built connectors, reused while their account is unchanged, so a
    /// decision does not log in again (SurfSense allows 5 logins a minute).
    connectors: std::sync::Mutex<Built>,
}

impl Inbox {
    /// Opens (creating if needed) the data dir and its database. The dir is
    /// 0700 and the database files 0600, whatever the umask; looser ones
    /// are tightened, with a warning.
    pub fn open(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Self> {
        private_dir(data_dir).map_err(|source| InboxError::DataDir {
            path: data_dir.to_path_buf(),
            source,
        })?;
        let store = Arc::new(Store::open(&data_dir.join(DB_FILE))?);
        let engine = Engine::new(store.clone(), clock.clone(), Default::default());
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            store,
            secrets: Secrets::new(data_dir),
            clock,
            http: countersign_connector::http::client(),
            engine,
            connectors: Default::default(),
        })
    }

    /// Like [`Inbox::open`], with engine tunables (tests use short delays).
    pub fn open_with(
        data_dir: &Path,
        clock: Arc<dyn Clock>,
        options: countersign_sync::Options,
    ) -> Result<Self> {
        let mut inbox = Self::open(data_dir, clock)?;
        inbox.engine = Engine::new(inbox.store.clone(), inbox.clock.clone(), options);
        Ok(inbox)
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Bytes the store's database takes on disk (its pages, free ones
    /// included, as `prune` reports what it freed).
    pub fn store_size(&self) -> Result<u64> {
        Ok(self.store.store_size()?)
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// One reconcile and outbox pass over every account, concurrently. An
    /// account whose connector cannot be built is reported, not skipped.
    pub async fn sync_once(&self) -> Result<Vec<OnceReport>> {
        let mut ready = Vec::new();
        let mut broken = Vec::new();
        for account in self.store.accounts()? {
            match self.connector_for(&account).await {
                Ok(c) => ready.push((account, c)),
                Err(e) => broken.push(OnceReport {
                    account: account.name.clone(),
                    result: Err(countersign_sync::SyncError::Connector(
                        countersign_connector::ConnectorError::Auth(e.to_string()),
                    )),
                    delivered: Vec::new(),
                }),
            }
        }
        let mut reports = self.engine.sync_once(ready).await;
        reports.extend(broken);
        reports.sort_by(|a, b| a.account.cmp(&b.account));
        Ok(reports)
    }

    /// Starts a task per account; they run until [`Running::stop`].
    pub async fn run(&self) -> Result<Running> {
        let mut running = Running::default();
        for account in self.store.accounts()? {
            self.start_account(&mut running, account).await;
        }
        Ok(running)
    }

    /// Starts (or restarts) one account's task.
    pub async fn start_account(&self, running: &mut Running, account: Account) {
        if let Some(old) = running.handles.remove(&account.id) {
            old.stop().await;
        }
        match self.connector_for(&account).await {
            Ok(connector) => {
                let handle = self.engine.spawn(account.clone(), connector);
                running.handles.insert(account.id, handle);
            }
            Err(e) => tracing::warn!(account = %account.name, "cannot start: {e}"),
        }
    }
}

/// The running account tasks.
#[derive(Default)]
pub struct Running {
    handles: HashMap<i64, countersign_sync::AccountHandle>,
}

impl Running {
    /// Asks one account to retry now (skipping backoff or an auth wait).
    pub fn retry(&self, account_id: i64) -> bool {
        self.handles
            .get(&account_id)
            .map(|h| h.retry_now())
            .is_some()
    }

    pub async fn stop_account(&mut self, account_id: i64) {
        if let Some(h) = self.handles.remove(&account_id) {
            h.stop().await;
        }
    }

    pub async fn stop(self) {
        for h in self.handles.into_values() {
            h.stop().await;
        }
    }
}

impl Inbox {
    /// The connector for an account: the one built before while the
    /// account is unchanged, else a new one.
    pub async fn connector_for(&self, account: &Account) -> Result<Arc<dyn Connector>> {
        if let Some((seen, c)) = self.cached_connectors().get(&account.id) {
            if seen == account {
                return Ok(c.clone());
            }
        }
        let built = self.build_connector(account).await?;
        self.cached_connectors()
            .insert(account.id, (account.clone(), built.clone()));
        Ok(built)
    }

    fn cached_connectors(&self) -> std::sync::MutexGuard<'_, Built> {
        self.connectors.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Drops the cached connector (its account or secret changed).
    pub(crate) fn forget_connector(&self, account_id: i64) {
        self.cached_connectors().remove(&account_id);
    }

    /// Builds the connector for an account, reading its secret.
    async fn build_connector(&self, account: &Account) -> Result<Arc<dyn Connector>> {
        let secret = {
            let secrets = self.secrets.clone();
            let (kind, reference) = (account.secret_store, account.secret_ref.clone());
            tokio::task::spawn_blocking(move || secrets.get(kind, &reference))
                .await
                .map_err(|e| InboxError::Invalid(format!("secret lookup failed: {e}")))??
        };
        match account.platform {
            Platform::Molecule => {
                let settings: countersign_molecule::Settings = account_settings(account)?;
                if secret.is_none()
                    && account.secret_store != countersign_model::SecretStoreKind::None
                {
                    return Err(InboxError::MissingSecret(account.name.clone()));
                }
                Ok(Arc::new(countersign_molecule::Molecule::new(
                    countersign_molecule::MoleculeConfig {
                        base_url: account.base_url.clone(),
                        token: secret,
                        reviewer: account.reviewer.clone(),
                        settings,
                        http: self.http.clone(),
                        clock: self.clock.clone(),
                    },
                )))
            }
            Platform::Clawith => {
                let settings: countersign_clawith::Settings = account_settings(account)?;
                if secret.is_none() {
                    return Err(InboxError::MissingSecret(account.name.clone()));
                }
                // The company id learned at the first login is kept with the
                // account, so every later login (any process) must land in it.
                let (store, id, name) = (self.store.clone(), account.id, account.name.clone());
                let keep: countersign_clawith::CompanyBound = Arc::new(move |tenant: &str| {
                    match store.set_account_setting(id, "tenant_id", tenant) {
                        Ok(()) => {
                            tracing::info!(account = %name, "bound to Clawith company {tenant}")
                        }
                        Err(e) => {
                            tracing::warn!(account = %name, "could not keep the company id: {e}")
                        }
                    }
                });
                Ok(Arc::new(
                    countersign_clawith::Clawith::new(countersign_clawith::ClawithConfig {
                        base_url: account.base_url.clone(),
                        password: secret,
                        reviewer: account.reviewer.clone(),
                        settings,
                        http: self.http.clone(),
                        clock: self.clock.clone(),
                    })
                    .on_company_bound(keep),
                ))
            }
            Platform::Harn => {
                let settings: countersign_harn::Settings = account_settings(account)?;
                match countersign_harn::Source::from_url(&account.base_url)
                    .map_err(InboxError::Invalid)?
                {
                    countersign_harn::Source::EventLog(path) => Ok(Arc::new(
                        countersign_harn::HarnLog::new(countersign_harn::HarnLogConfig {
                            path,
                            reviewer: account.reviewer.clone(),
                            poll: std::time::Duration::from_millis(
                                settings.poll_ms.unwrap_or(150).clamp(50, 60_000),
                            ),
                            clock: self.clock.clone(),
                        }),
                    )),
                    countersign_harn::Source::Api(base_url) => Ok(Arc::new(
                        countersign_harn::HarnApi::new(countersign_harn::HarnApiConfig {
                            base_url,
                            api_key: secret,
                            key_header: settings.api_key_header,
                            reviewer: account.reviewer.clone(),
                            http: self.http.clone(),
                        }),
                    )),
                }
            }
            Platform::Surfsense => {
                let settings: countersign_surfsense::Settings = account_settings(account)?;
                if secret.is_none() {
                    return Err(InboxError::MissingSecret(account.name.clone()));
                }
                Ok(Arc::new(countersign_surfsense::SurfSense::new(
                    countersign_surfsense::SurfSenseConfig {
                        base_url: account.base_url.clone(),
                        secret,
                        settings,
                        http: self.http.clone(),
                        clock: self.clock.clone(),
                        sessions: Some(Arc::new(sessions::AccountSessions::new(
                            &self.data_dir,
                            self.secrets.clone(),
                            account,
                        ))),
                    },
                )))
            }
            Platform::Langgraph => {
                let settings: countersign_langgraph::Settings = account_settings(account)?;
                Ok(Arc::new(countersign_langgraph::LangGraph::new(
                    countersign_langgraph::LangGraphConfig {
                        base_url: account.base_url.clone(),
                        api_key: secret,
                        settings,
                        http: self.http.clone(),
                        clock: self.clock.clone(),
                        run_wait: std::time::Duration::from_secs(20),
                    },
                )))
            }
            Platform::Opencode => {
                let settings: countersign_opencode::Settings = account_settings(account)?;
                Ok(Arc::new(countersign_opencode::OpenCode::new(
                    countersign_opencode::OpenCodeConfig {
                        base_url: account.base_url.clone(),
                        password: secret,
                        settings,
                        reviewer: account.reviewer.clone(),
                        http: self.http.clone(),
                    },
                )))
            }
        }
    }

    /// Marks an activity item read here and, where the platform can, there.
    pub async fn mark_activity_read(&self, id: i64) -> Result<bool> {
        let Some(item) = self.store.activity_item(id)? else {
            return Ok(false);
        };
        let changed = self.store.mark_activity_read(id)?;
        if changed {
            let account = self.store.account(item.account_id)?;
            match self.connector_for(&account).await {
                Ok(c) => {
                    if let Err(e) = c.mark_activity_read(&item.remote_id).await {
                        tracing::info!(account = %account.name, "could not mark read on the platform: {e}");
                    }
                }
                Err(e) => {
                    tracing::info!(account = %account.name, "could not mark read on the platform: {e}")
                }
            }
        }
        Ok(changed)
    }
}
