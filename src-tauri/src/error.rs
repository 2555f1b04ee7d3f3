//! The one error that crosses IPC: a small code the UI switches on, and a
//! message for people. Codes are added only when the UI needs to tell
//! cases apart.

use countersign_inbox::InboxError;
use countersign_store::StoreError;
use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
#[ts(export)]
pub enum ErrorCode {
    /// The request or account is gone.
    NotFound,
    /// The input was refused; the message says why.
    Invalid,
    /// Someone else acted first (already decided, name taken).
    Conflict,
    /// No OS keychain; the form can offer the file store.
    NoKeychain,
    Internal,
}

#[derive(Debug, Clone, Serialize, ts_rs::TS)]
#[ts(export)]
pub struct IpcError {
    pub code: ErrorCode,
    pub message: String,
}

impl IpcError {
    /// Refused input; `message` says what was wrong.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::Invalid,
            message: message.into(),
        }
    }

    /// Something went wrong inside the app, not with the input.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: message.into(),
        }
    }
}

impl From<InboxError> for IpcError {
    fn from(e: InboxError) -> Self {
        let code = match &e {
            InboxError::Store(StoreError::NotFound(_)) => ErrorCode::NotFound,
            InboxError::Store(StoreError::Conflict(_)) => ErrorCode::Conflict,
            InboxError::Secret(countersign_inbox::SecretError::NoKeychain(_)) => {
                ErrorCode::NoKeychain
            }
            InboxError::Invalid(_) | InboxError::MissingSecret(_) => ErrorCode::Invalid,
            _ => ErrorCode::Internal,
        };
        if matches!(code, ErrorCode::Internal) {
            tracing::error!("command failed: {e}");
        }
        Self {
            code,
            message: e.to_string(),
        }
    }
}

impl From<StoreError> for IpcError {
    fn from(e: StoreError) -> Self {
        InboxError::from(e).into()
    }
}

pub type Result<T> = std::result::Result<T, IpcError>;
