//! Accounts (one platform endpoint plus credentials) and their live health.

use crate::named_enum;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The agent platforms Countersign speaks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Molecule,
    Clawith,
    Harn,
    Surfsense,
    Langgraph,
    Opencode,
}
named_enum!(Platform, "platform", {
    Molecule => "molecule",
    Clawith => "clawith",
    Harn => "harn",
    Surfsense => "surfsense",
    Langgraph => "langgraph",
    Opencode => "opencode",
});

/// Where an account's secret lives. Never the secret itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum SecretStoreKind {
    /// The OS keychain (Secret Service, Keychain, Credential Manager).
    Keychain,
    /// A 0600 file in the data dir, chosen explicitly where no keychain runs.
    File,
    /// The account needs no secret.
    None,
}
named_enum!(SecretStoreKind, "secret store", { Keychain => "keychain", File => "file", None => "none" });

/// An account as the user describes it when adding it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAccount {
    pub name: String,
    pub platform: Platform,
    pub base_url: String,
    /// The name this user decides under (sent as `decided_by` where the
    /// platform takes one).
    pub reviewer: String,
    pub secret_store: SecretStoreKind,
    /// Platform-specific settings (tenant, WebSocket origin, poll interval…).
    pub settings: Value,
}

/// A stored account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct Account {
    #[ts(type = "number")]
    pub id: i64,
    pub name: String,
    pub platform: Platform,
    pub base_url: String,
    pub reviewer: String,
    pub secret_store: SecretStoreKind,
    /// Key of the secret in its store; random, so renames never orphan it.
    pub secret_ref: String,
    pub settings: Value,
    pub created_at: DateTime<Utc>,
}

/// The state of an account's connection, as the sync engine last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    Connecting,
    /// Subscribed to the platform's push channel.
    Connected,
    /// No push channel (or it is down): reading the pending list on a timer.
    Polling,
    /// Waiting before the next attempt; see `backoff_until`.
    BackingOff,
    /// The platform refused the credentials; no retry until they change or
    /// the user asks.
    AuthFailed,
    Stopped,
}
named_enum!(ConnectionState, "connection state", {
    Connecting => "connecting",
    Connected => "connected",
    Polling => "polling",
    BackingOff => "backing_off",
    AuthFailed => "auth_failed",
    Stopped => "stopped",
});

/// Per-account health, shown next to the account everywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct AccountHealth {
    #[ts(type = "number")]
    pub account_id: i64,
    pub state: ConnectionState,
    pub backoff_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    /// What the connector said about its last pass ("watching 42 threads in
    /// 2 workspaces, 3 paused"), kept until it says something else.
    #[serde(default)]
    pub note: Option<String>,
}

impl AccountHealth {
    /// One human line: "connected", "backing off until 14:02:11 (…)", …
    pub fn summary(&self) -> String {
        let mut line = match (self.state, self.backoff_until) {
            (ConnectionState::BackingOff, Some(until)) => {
                format!("backing off until {}", until.format("%H:%M:%S UTC"))
            }
            (ConnectionState::AuthFailed, _) => "auth failed".to_owned(),
            (ConnectionState::Stopped, _) => match self.last_sync_at {
                Some(at) => format!(
                    "not running; last synced {}",
                    at.format("%Y-%m-%d %H:%M:%S UTC")
                ),
                None => "not running".to_owned(),
            },
            (state, _) => state.as_str().replace('_', " "),
        };
        if let Some(err) = &self.last_error {
            line.push_str(": ");
            line.push_str(err);
        }
        if let Some(note) = &self.note {
            line.push_str(" · ");
            line.push_str(note);
        }
        line
    }
}
