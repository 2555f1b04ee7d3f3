//! Adding, listing and removing accounts, with their secrets kept in the
//! chosen secret store and never in the database.

use crate::{AccountView, Inbox, InboxError, Result};
use countersign_model::{Account, NewAccount, Platform, Secret, SecretStoreKind};
use serde_json::Value;

/// An account as the user describes it.
#[derive(Debug, Clone)]
pub struct AccountInput {
    pub name: String,
    pub platform: Platform,
    pub base_url: String,
    /// The name decisions are made under; defaults to the OS user name.
    pub reviewer: Option<String>,
    pub secret: Option<Secret>,
    /// Where the secret goes; ignored without a secret.
    pub secret_store: SecretStoreKind,
    pub settings: Value,
}

/// Changes to an existing account, as `countersign account edit` gives
/// them: every field left `None` keeps its value; `settings` are merged
/// key by key into the account's (a `null` value removes the key).
#[derive(Debug, Clone, Default)]
pub struct AccountEdit {
    pub name: Option<String>,
    pub base_url: Option<String>,
    pub reviewer: Option<String>,
    /// A new secret: it replaces the stored one.
    pub secret: Option<Secret>,
    /// Where the secret is kept from now on; it moves there.
    pub secret_store: Option<SecretStoreKind>,
    pub settings: serde_json::Map<String, Value>,
}

fn validate_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(InboxError::Invalid(
            "an account name is 1 to 64 printable characters".into(),
        ));
    }
    Ok(name.to_owned())
}

/// Checks the URL and returns it without a trailing slash.
fn validate_url(raw: &str) -> Result<String> {
    let url = url::Url::parse(raw.trim())
        .map_err(|e| InboxError::Invalid(format!("`{raw}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(InboxError::Invalid(format!(
            "the URL must start with http:// or https://, not {}://",
            url.scheme()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(InboxError::Invalid(
            "credentials do not belong in the URL; pass them with --secret-env".into(),
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// An account's URL. harn accounts may instead name their event log: a
/// path (or `file://` URL) to the log, its `.harn` directory or the project.
fn validate_account_url(platform: Platform, raw: &str) -> Result<String> {
    if platform == Platform::Harn {
        let raw = raw.trim();
        let path = match raw.strip_prefix("file://") {
            Some(_) => url::Url::parse(raw)
                .ok()
                .and_then(|u| u.to_file_path().ok())
                .ok_or_else(|| InboxError::Invalid(format!("`{raw}` is not a local file URL")))?,
            None if !raw.contains("://") => std::path::PathBuf::from(raw),
            None => return validate_url(raw),
        };
        let log = countersign_harn::locate_event_log(&path).map_err(InboxError::Invalid)?;
        return url::Url::from_file_path(&log)
            .map(|u| u.to_string())
            .map_err(|()| {
                InboxError::Invalid(format!("{} is not an absolute path", log.display()))
            });
    }
    validate_url(raw)
}

/// Settings as a platform's `Settings` type, or a message naming the platform.
fn parse_settings<T: serde::de::DeserializeOwned>(
    platform: Platform,
    settings: &Value,
) -> Result<T> {
    serde_json::from_value(settings.clone())
        .map_err(|e| InboxError::Invalid(format!("bad {platform} settings: {e}")))
}

fn validate_settings(platform: Platform, settings: &Value) -> Result<()> {
    match platform {
        Platform::Harn => {
            parse_settings::<countersign_harn::Settings>(platform, settings).map(drop)
        }
        Platform::Molecule => {
            parse_settings::<countersign_molecule::Settings>(platform, settings).map(drop)
        }
        Platform::Clawith => {
            let s: countersign_clawith::Settings = parse_settings(platform, settings)?;
            if s.login.trim().is_empty() {
                return Err(InboxError::Invalid(
                    "a Clawith account needs the username or email to log in with (--username)"
                        .into(),
                ));
            }
            Ok(())
        }
        Platform::Langgraph => {
            parse_settings::<countersign_langgraph::Settings>(platform, settings).map(drop)
        }
        Platform::Opencode => {
            parse_settings::<countersign_opencode::Settings>(platform, settings).map(drop)
        }
        Platform::Surfsense => {
            parse_settings::<countersign_surfsense::Settings>(platform, settings).map(drop)
        }
    }
}

/// A SurfSense account signs in with email and password, or with a
/// personal access token (`ss_pat_…`) and no email.
fn check_surfsense_secret(settings: &Value, secret: Option<&Secret>) -> Result<()> {
    let Some(secret) = secret else {
        return Err(InboxError::Invalid(
            "a SurfSense account needs its password (--secret-env) or a personal access token (--token-env)".into(),
        ));
    };
    let email = parse_settings::<countersign_surfsense::Settings>(Platform::Surfsense, settings)
        .map(|s| s.email)
        .unwrap_or_default();
    if !secret.expose().starts_with("ss_pat_") && email.trim().is_empty() {
        return Err(InboxError::Invalid(
            "a SurfSense password needs the email to log in with (--username); \
             a personal access token starts with ss_pat_"
                .into(),
        ));
    }
    Ok(())
}

/// A Clawith account's company binding (`tenant_id`, learned at its first
/// login) survives an edit that keeps the server, the login and the
/// company; changing any of them binds again at the next login. Whatever
/// the edit sends for `tenant_id` is ignored: only a login sets it.
fn keep_company_binding(account: &Account, base_url: &str, settings: &mut Value) {
    let text = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(|s| s.trim().to_lowercase())
            .filter(|s| !s.is_empty())
    };
    let old = &account.settings;
    let same = account.base_url == base_url
        && text(old, "login") == text(settings, "login")
        && text(old, "tenant") == text(settings, "tenant");
    let Some(map) = settings.as_object_mut() else {
        return;
    };
    match old.get("tenant_id").filter(|_| same) {
        Some(id) => map.insert("tenant_id".into(), id.clone()),
        None => map.remove("tenant_id"),
    };
}

fn default_reviewer() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "countersign".into())
}

impl Inbox {
    /// Adds an account: the secret goes to its store first, then the
    /// account row; if the row cannot be written the secret is removed.
    pub async fn add_account(&self, input: AccountInput) -> Result<Account> {
        let name = validate_name(&input.name)?;
        let base_url = validate_account_url(input.platform, &input.base_url)?;
        validate_settings(input.platform, &input.settings)?;
        let mut input = input;
        if input.platform == Platform::Clawith {
            // Only a login binds an account to its company.
            if let Some(map) = input.settings.as_object_mut() {
                map.remove("tenant_id");
            }
        }
        let login = input
            .settings
            .get("login")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let reviewer = input
            .reviewer
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
            .or(login.filter(|l| !l.trim().is_empty()))
            .unwrap_or_else(default_reviewer);
        let store_kind = match &input.secret {
            Some(_) => input.secret_store,
            None => SecretStoreKind::None,
        };
        if let Some(secret) = &input.secret {
            if secret.expose().is_empty() {
                return Err(InboxError::Invalid("the secret is empty".into()));
            }
        }
        if input.platform == Platform::Surfsense {
            check_surfsense_secret(&input.settings, input.secret.as_ref())?;
        }
        if input.platform == Platform::Clawith && input.secret.is_none() {
            return Err(InboxError::Invalid(
                "a Clawith account needs its password (--secret-env)".into(),
            ));
        }
        if self.store.account_by_name(&name).is_ok() {
            return Err(InboxError::Invalid(format!(
                "an account named `{name}` already exists"
            )));
        }
        let reference = uuid::Uuid::new_v4().to_string();
        if let Some(secret) = input.secret.clone() {
            let r = reference.clone();
            self.blocking_secret(move |s| s.put(store_kind, &r, &secret))
                .await?;
        }
        let new = NewAccount {
            name,
            platform: input.platform,
            base_url,
            reviewer,
            secret_store: store_kind,
            settings: input.settings,
        };
        match self.store.add_account(&new, &reference, self.clock.now()) {
            Ok(account) => Ok(account),
            Err(e) => {
                let r = reference.clone();
                let _ = self
                    .blocking_secret(move |s| s.delete(store_kind, &r))
                    .await;
                Err(e.into())
            }
        }
    }

    /// Changes an account's name, URL, reviewer and settings, and its secret
    /// when a new one is given (kept under the same reference).
    pub async fn update_account(&self, id: i64, input: AccountInput) -> Result<Account> {
        let mut account = self.store.account(id)?;
        if input.platform != account.platform {
            return Err(InboxError::Invalid(
                "an account's platform cannot change; add a new account".into(),
            ));
        }
        account.name = validate_name(&input.name)?;
        let base_url = validate_account_url(account.platform, &input.base_url)?;
        validate_settings(account.platform, &input.settings)?;
        let mut settings = input.settings;
        if account.platform == Platform::Clawith {
            keep_company_binding(&account, &base_url, &mut settings);
        }
        account.base_url = base_url;
        account.settings = settings;
        if let Some(r) = input
            .reviewer
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
        {
            account.reviewer = r;
        }
        if let Some(secret) = input.secret.filter(|s| !s.expose().is_empty()) {
            let kind = match account.secret_store {
                SecretStoreKind::None => input.secret_store,
                kind => kind,
            };
            let reference = account.secret_ref.clone();
            self.blocking_secret(move |s| s.put(kind, &reference, &secret))
                .await?;
            account.secret_store = kind;
        }
        if let Ok(other) = self.store.account_by_name(&account.name) {
            if other.id != id {
                return Err(InboxError::Invalid(format!(
                    "an account named `{}` already exists",
                    account.name
                )));
            }
        }
        self.store.update_account(&account)?;
        self.forget_connector(id);
        Ok(self.store.account(id)?)
    }

    /// Edits an account in place through [`Inbox::update_account`] (the
    /// path the desktop app uses): same id, so its requests, decisions and
    /// activity stay with it. A new secret replaces the stored one; a new
    /// secret store gets the secret (the new one, or the stored one) and
    /// the old store's copy is deleted.
    pub async fn edit_account(&self, name: &str, edit: AccountEdit) -> Result<Account> {
        let account = self.store.account_by_name(name)?;
        let mut settings = match &account.settings {
            Value::Object(map) => map.clone(),
            _ => serde_json::Map::new(),
        };
        for (k, v) in edit.settings {
            match v {
                Value::Null => settings.remove(&k),
                v => settings.insert(k, v),
            };
        }
        let moving = edit.secret_store.filter(|k| {
            *k != account.secret_store && account.secret_store != SecretStoreKind::None
        });
        let input = AccountInput {
            name: edit.name.unwrap_or_else(|| account.name.clone()),
            platform: account.platform,
            base_url: edit.base_url.unwrap_or_else(|| account.base_url.clone()),
            reviewer: edit.reviewer,
            // A secret that moves is written to its new store below.
            secret: if moving.is_some() {
                None
            } else {
                edit.secret.clone()
            },
            secret_store: edit.secret_store.unwrap_or(account.secret_store),
            settings: Value::Object(settings),
        };
        if let Some(secret) = &edit.secret {
            if secret.expose().is_empty() {
                return Err(InboxError::Invalid("the secret is empty".into()));
            }
        }
        let mut updated = self.update_account(account.id, input).await?;
        if let Some(to) = moving {
            let (from, reference) = (account.secret_store, account.secret_ref.clone());
            let secret = match edit.secret {
                Some(s) => Some(s),
                None => {
                    let r = reference.clone();
                    self.blocking_secret(move |s| s.get(from, &r)).await?
                }
            };
            let Some(secret) = secret else {
                return Err(InboxError::MissingSecret(updated.name));
            };
            let r = reference.clone();
            self.blocking_secret(move |s| s.put(to, &r, &secret))
                .await?;
            updated.secret_store = to;
            self.store.update_account(&updated)?;
            let r = reference.clone();
            if let Err(e) = self.blocking_secret(move |s| s.delete(from, &r)).await {
                tracing::warn!(account = %updated.name, "could not delete the secret's old copy: {e}");
            }
            self.forget_connector(updated.id);
            updated = self.store.account(updated.id)?;
        }
        Ok(updated)
    }

    /// Removes an account and its secret. Its history stays.
    pub async fn remove_account(&self, name: &str) -> Result<Account> {
        let account = self.store.remove_account(name, self.clock.now())?;
        self.forget_connector(account.id);
        let (kind, reference) = (account.secret_store, account.secret_ref.clone());
        if let Err(e) = self
            .blocking_secret(move |s| {
                s.delete(kind, &crate::sessions::session_ref(&reference))?;
                s.delete(kind, &reference)
            })
            .await
        {
            tracing::warn!(account = %account.name, "could not delete the account's secret: {e}");
        }
        Ok(account)
    }

    /// Accounts with their last known health and pending count.
    pub fn accounts(&self) -> Result<Vec<AccountView>> {
        let counts = self.store.pending_counts()?;
        self.store
            .accounts()?
            .into_iter()
            .map(|account| {
                let health = self.store.health(account.id)?;
                let count = counts.get(&account.id).copied().unwrap_or(0) as usize;
                Ok(AccountView::new(account, health, count))
            })
            .collect()
    }

    async fn blocking_secret<T: Send + 'static>(
        &self,
        f: impl FnOnce(&countersign_secrets::Secrets) -> Result<T, countersign_secrets::SecretError>
            + Send
            + 'static,
    ) -> Result<T> {
        let secrets = self.secrets.clone();
        tokio::task::spawn_blocking(move || f(&secrets))
            .await
            .map_err(|e| InboxError::Invalid(format!("secret store task failed: {e}")))?
            .map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_never_carry_credentials() {
        assert_eq!(
            validate_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(validate_url("ftp://x").is_err());
        assert!(validate_url("not a url").is_err());
        assert!(
            validate_url("https://admin:hunter2@molecule.example").is_err(),
            "a password in the URL would end up in the database"
        );
    }

    #[test]
    fn an_edit_keeps_the_company_binding_only_while_server_login_and_company_stay() {
        let account = Account {
            id: 1,
            name: "acme".into(),
            platform: Platform::Clawith,
            base_url: "http://127.0.0.1:1".into(),
            reviewer: "dana".into(),
            secret_store: SecretStoreKind::File,
            secret_ref: "r".into(),
            settings: serde_json::json!({"login": "dana@globex.com", "tenant": "Globex",
                                         "tenant_id": "c2d3e4f5-0000-4000-8000-000000000001"}),
            created_at: chrono::Utc::now(),
        };
        let edited = |url: &str, settings: Value| {
            let mut s = settings;
            keep_company_binding(&account, url, &mut s);
            s.get("tenant_id").cloned()
        };
        let url = "http://127.0.0.1:1";
        assert_eq!(
            edited(
                url,
                serde_json::json!({"login": "dana@globex.com", "tenant": "globex", "poll_secs": 9})
            ),
            Some(serde_json::json!("c2d3e4f5-0000-4000-8000-000000000001")),
            "the app's form sends no tenant_id; an edit of something else keeps the binding"
        );
        assert_eq!(
            edited(
                url,
                serde_json::json!({"login": "dana@globex.com", "tenant": "Initech",
                                           "tenant_id": "c2d3e4f5-0000-4000-8000-000000000001"})
            ),
            None,
            "another company is bound at the next login, whatever the form echoed back"
        );
        assert_eq!(
            edited(
                "http://127.0.0.1:2",
                serde_json::json!({"login": "dana@globex.com", "tenant": "Globex"})
            ),
            None,
            "another server has other company ids"
        );
        assert_eq!(
            edited(
                url,
                serde_json::json!({"login": "eli@globex.com", "tenant": "Globex"})
            ),
            None,
            "another login binds again"
        );
    }

    #[test]
    fn names_are_printable_and_bounded() {
        assert!(validate_name(" prod ").is_ok());
        assert!(validate_name("").is_err());
        assert!(
            validate_name("a\u{1b}[31m").is_err(),
            "escape codes would garble terminals"
        );
        assert!(validate_name(&"x".repeat(65)).is_err());
    }
}
