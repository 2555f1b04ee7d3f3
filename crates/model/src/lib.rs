//! Countersign's domain model: the one normalized shape every platform's
//! approval requests, activity items, decisions and accounts are mapped into.
//!
//! Nothing here talks to a network or a database. Connectors produce
//! [`ObservedRequest`]s and [`ObservedActivity`]; the store turns them into
//! [`Request`]s and [`Activity`] with stable local ids; the user produces
//! [`Decision`]s. Time is always passed in through a [`Clock`].

mod account;
mod clock;
mod decision;
mod request;
pub mod text;

pub use account::{Account, AccountHealth, ConnectionState, NewAccount, Platform, SecretStoreKind};
pub use clock::{Clock, ManualClock, SystemClock};
pub use decision::{Decision, DecisionDraft, Delivery, Outcome};
pub use request::{
    Activity, AllowedDecision, Fact, Group, Kind, ObservedActivity, ObservedRequest, Progress,
    Request, RequestExtra, Resolution, Status,
};

/// A value that was not one of the names a closed set accepts, e.g. an
/// unknown status read back from an older or newer database.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
}

/// Implements `as_str`, `FromStr` and `Display` for a fieldless enum whose
/// names are stored in SQLite and printed by the CLI, so the two never drift.
macro_rules! named_enum {
    ($ty:ident, $what:literal, { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The stable name used in storage, JSON and the CLI.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$variant => $name),+ }
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok($ty::$variant),)+
                    _ => Err($crate::UnknownName { what: $what, value: s.to_owned() }),
                }
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use named_enum;

/// A credential (token, password). Its `Debug` never shows the value and it
/// has no `Serialize`, so it cannot leak into logs, JSON or the database.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the one place that sends it to the platform.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(••••)")
    }
}
