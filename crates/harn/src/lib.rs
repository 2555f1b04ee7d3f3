//! harn connector: HITL approvals, dual control, questions and escalations,
//! read from a harn project's SQLite event log (every harn version) or from
//! `harn serve api` (0.10+), and answered the way harn itself answers.
//!
//! An account whose URL is a `file://` path reads and writes the event log
//! ([`HarnLog`]); an `http(s)://` URL talks to `harn serve api`
//! ([`HarnApi`]). Both present the same requests to the inbox.
//!
//! **Identity.** harn reuses request ids: inside a trigger dispatch an id
//! is `hitl_<kind>_<trigger or replayed event id>_<seq>` (`harn.md` §4
//! "Ids"), so a replay, a handler re-run after a resume, or a retried
//! dispatch asks again under the same id — with whatever the re-run
//! computed. harn keeps the one waitpoint of that id (an existing waitpoint
//! is reused, not reopened), appends a new request event, lists the newest
//! envelope and resolves against the first (§1 trap 9, §6, §9 "Replays").
//! An answer to the id therefore releases whatever was asked last. So a
//! request's `remote_id` names the ask, not just the id:
//! * event log: `<request id>@<event id>`, the event id (on the kind's
//!   topic; harn never reuses one) of the request event that began the ask
//!   ([`hitl::remote_id`]). A re-emission whose content ([`hitl::ask_content`]:
//!   kind, agent, payload without the timestamps a replay recomputes) equals
//!   the ask before it is a replay and keeps the identity — one inbox row
//!   (trap 9); one with other content is a new ask under a new `remote_id`,
//!   and the old one leaves the pending list as resolved elsewhere;
//! * `harn serve api`: `<id>@<created_at>` ([`api::item_remote_id`]). The
//!   server keeps one record per id and registering the id again replaces
//!   it with a new `created_at` (§8), so the pair names one registration.
//!
//! Ids stored before this (the request id alone) are still understood; they
//! are matched by content only.
//!
//! **Before sending**, the ask pending under the request id must be the one
//! decided. The event log checks inside the write transaction that writes
//! the answer ([`answer::answer`]): the ask now pending began at the same
//! event id, else nothing is written and the decision ends resolved
//! elsewhere; then, once the request is known to be open, its content must
//! equal the envelope the reviewer saw (`Request::raw`), else nothing is
//! written and the decision is rejected as changed. The API lists first: an
//! ask no longer listed or registered again ends resolved elsewhere, one
//! answered elsewhere with how it ended, one whose content differs is
//! rejected; `respond` goes by id alone, so a re-registration between that
//! list and the POST cannot be caught.
//!
//! harn counts every response to an id towards its quorum, including ones
//! given to an earlier ask under it; such approvals are shown as a fact
//! ("Approved an earlier version") on the new ask.

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
