//! harn connector: HITL approvals, dual control, questions and escalations,
//! read from a harn project's SQLite event log (every harn version) or from
//! `harn serve api` (0.10+), and answered the way harn itself answers.
//!
//! An account whose URL is a `file://` path reads and writes the event log
//! ([`HarnLog`]); an `http(s)://` URL talks to `harn serve api`
//! ([`HarnApi`]). Both present the same requests to the inbox.

pub mod answer;
pub mod api;
pub mod event_log;
pub mod hitl;
pub mod log;
pub mod present;
pub mod provenance;

pub use api::{HarnApi, HarnApiConfig, PROTOCOL_HEADER, PROTOCOL_VERSION};
pub use event_log::{HarnLog, HarnLogConfig};

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Per-account settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// How often to look at the event log, in milliseconds (default 150).
    pub poll_ms: Option<u64>,
    /// `harn serve api`: send the key as `X-API-Key` instead of a bearer token.
    pub api_key_header: bool,
}

/// Where a harn account's requests come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    EventLog(PathBuf),
    Api(String),
}

impl Source {
    /// From an account URL: `file:///…/events.sqlite` or `http(s)://…`.
    pub fn from_url(url: &str) -> Result<Source, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
        match parsed.scheme() {
            "file" => parsed
                .to_file_path()
                .map(Source::EventLog)
                .map_err(|()| format!("`{url}` is not a local file path")),
            "http" | "https" => Ok(Source::Api(url.trim_end_matches('/').to_owned())),
            other => Err(format!(
                "a harn account is an event log path or an http(s) URL of `harn serve api`, not {other}://"
            )),
        }
    }
}

/// Finds the event log a user pointed at: the file itself, a `.harn` state
/// directory, or a project directory holding `.harn/events.sqlite`.
pub fn locate_event_log(path: &Path) -> Result<PathBuf, String> {
    let candidates = if path.is_dir() {
        vec![
            path.join("events.sqlite"),
            path.join(".harn").join("events.sqlite"),
        ]
    } else {
        vec![path.to_path_buf()]
    };
    for c in &candidates {
        if c.is_file() {
            return std::path::absolute(c).map_err(|e| format!("{}: {e}", c.display()));
        }
    }
    Err(format!(
        "no harn event log at {} (looked for {}); run the harn script once so it creates the log, and check HARN_EVENT_LOG_BACKEND is sqlite",
        path.display(),
        candidates.iter().map(|c| c.display().to_string()).collect::<Vec<_>>().join(", ")
    ))
}
