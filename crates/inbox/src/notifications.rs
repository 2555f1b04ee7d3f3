//! The notification switches the desktop app and the CLI share, kept in
//! `notifications.json` in the data dir: do not disturb (optionally for a
//! while), activity notifications, decide buttons, and quiet hours. The
//! CLI writes the file (`countersign notifications …`); a running app
//! reads it again within a second.
//!
//! Quiet hours are a daily span of local wall-clock time ("22:00-07:00",
//! through midnight when the end is earlier than the start) during which
//! request notifications are held; when it ends, one summary names what
//! is still waiting. A request whose deadline falls inside the quiet span
//! is notified anyway unless `urgent_breaks_through` is off.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

const FILE: &str = "notifications.json";
/// Where the desktop app kept these before the CLI could change them.
const OLD_FILE: &str = "desktop.json";

/// The switches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default)]
#[ts(export)]
pub struct NotificationPrefs {
    /// Do not disturb: no request or activity notifications.
    pub dnd: bool,
    /// When do not disturb ends by itself ("for 1 h"); none: when turned off.
    pub dnd_until: Option<DateTime<Utc>>,
    /// Also notify for L2 activity (actions agents ran and only reported).
    pub notify_activity: bool,
    /// Approve and Deny buttons on request notifications. Off by default:
    /// notifications reach lock screens.
    pub notify_actions: bool,
    /// Daily hours during which request notifications are held.
    pub quiet_hours: Option<QuietHours>,
    /// During quiet hours, a request due before they end is notified anyway.
    pub urgent_breaks_through: bool,
}

impl Default for NotificationPrefs {
    fn default() -> Self {
        Self {
            dnd: false,
            dnd_until: None,
            notify_activity: false,
            notify_actions: false,
            quiet_hours: None,
            urgent_breaks_through: true,
        }
    }
}

impl NotificationPrefs {
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(FILE)
    }

    /// When, and how big, the saved switches were last written (the file
    /// [`load`](Self::load) reads), so a reader polling for changes parses
    /// the file only when it changed.
    pub fn stamp(data_dir: &Path) -> Option<(std::time::SystemTime, u64)> {
        [FILE, OLD_FILE]
            .iter()
            .find_map(|f| std::fs::metadata(data_dir.join(f)).ok())
            .map(|m| (m.modified().unwrap_or(std::time::UNIX_EPOCH), m.len()))
    }

    /// The switches as saved (the defaults if nothing, or nothing readable,
    /// is saved; the desktop app's older file is read if it is all there is).
    pub fn load(data_dir: &Path) -> Self {
        [FILE, OLD_FILE]
            .iter()
            .find_map(|f| std::fs::read(data_dir.join(f)).ok())
            .and_then(|b| match serde_json::from_slice(&b) {
                Ok(p) => Some(p),
                Err(e) => {
                    tracing::warn!("notification settings unreadable, using defaults: {e}");
                    None
                }
            })
            .unwrap_or_default()
    }

    /// Saves them for the app and every CLI (written whole, then renamed
    /// into place, so a reader never sees half a file).
    pub fn save(&self, data_dir: &Path) -> std::io::Result<()> {
        let body = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let tmp = data_dir.join(format!("{FILE}.tmp"));
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(true).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        std::io::Write::write_all(&mut options.open(&tmp)?, &body)?;
        std::fs::rename(&tmp, Self::path(data_dir))
    }

    /// Whether do not disturb holds at `now`.
    pub fn dnd_at(&self, now: DateTime<Utc>) -> bool {
        self.dnd && self.dnd_until.is_none_or(|until| now < until)
    }

    /// Whether a request notification goes out at local time `local`, for
    /// a request due at `deadline` (`now` is the same moment in UTC).
    pub fn notify_request_at(
        &self,
        now: DateTime<Utc>,
        local: NaiveTime,
        deadline: Option<DateTime<Utc>>,
    ) -> bool {
        if self.dnd_at(now) {
            return false;
        }
        let Some(quiet) = self.quiet_hours else {
            return true;
        };
        if !quiet.contains(local) {
            return true;
        }
        self.urgent_breaks_through && deadline.is_some_and(|d| d <= now + quiet.left(local))
    }
}

/// A daily span of local time; `start` included, `end` not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
#[ts(export)]
pub struct QuietHours {
    #[ts(type = "string")]
    pub start: NaiveTime,
    #[ts(type = "string")]
    pub end: NaiveTime,
}

/// Why a quiet-hours spec was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not quiet hours: `{0}` (expected a span like 22:00-07:00, or off)")]
pub struct BadQuietHours(pub String);

impl FromStr for QuietHours {
    type Err = BadQuietHours;
    fn from_str(s: &str) -> Result<Self, BadQuietHours> {
        let bad = || BadQuietHours(s.chars().take(40).collect());
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| bad());
        let (start, end) = (time(a)?, time(b)?);
        if start == end {
            return Err(bad());
        }
        Ok(Self { start, end })
    }
}

impl fmt::Display for QuietHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}

impl QuietHours {
    /// Whether local time `t` is inside.
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.start < self.end {
            self.start <= t && t < self.end
        } else {
            t >= self.start || t < self.end
        }
    }

    /// How long from `t` (inside) until the span ends.
    pub fn left(&self, t: NaiveTime) -> Duration {
        let d = self.end.signed_duration_since(t);
        if d < Duration::zero() {
            d + Duration::days(1)
        } else {
            d
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    #[test]
    fn quiet_hours_run_through_midnight() {
        let q: QuietHours = "22:00-07:00".parse().unwrap();
        assert!(
            q.contains(at(23, 30)) && q.contains(at(3, 0)),
            "night is quiet"
        );
        assert!(
            !q.contains(at(7, 0)) && !q.contains(at(12, 0)),
            "day is not"
        );
        assert_eq!(
            q.left(at(23, 0)),
            Duration::hours(8),
            "ends at seven next morning"
        );
        assert_eq!(q.to_string(), "22:00-07:00", "printed as it is written");
    }

    #[test]
    fn a_bad_spec_is_refused_with_what_was_expected() {
        for bad in ["", "22:00", "25:00-07:00", "22:00-22:00", "ten-seven"] {
            let e = bad.parse::<QuietHours>().unwrap_err().to_string();
            assert!(e.contains("22:00-07:00"), "the error shows the form: {e}");
        }
    }

    #[test]
    fn urgent_requests_break_through_quiet_hours_and_dnd_ends_by_itself() {
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 23, 0, 0).unwrap();
        let p = NotificationPrefs {
            quiet_hours: Some("22:00-07:00".parse().unwrap()),
            ..Default::default()
        };
        assert!(!p.notify_request_at(now, at(23, 0), None), "held at night");
        assert!(
            p.notify_request_at(now, at(23, 0), Some(now + Duration::hours(2))),
            "due before morning: notified anyway"
        );
        assert!(
            !p.notify_request_at(now, at(23, 0), Some(now + Duration::hours(9))),
            "due after the quiet hours: held"
        );
        let strict = NotificationPrefs {
            urgent_breaks_through: false,
            ..p.clone()
        };
        assert!(
            !strict.notify_request_at(now, at(23, 0), Some(now + Duration::hours(2))),
            "unless break-through is off"
        );
        let dnd = NotificationPrefs {
            dnd: true,
            dnd_until: Some(now + Duration::hours(1)),
            ..Default::default()
        };
        assert!(dnd.dnd_at(now), "paused for the hour");
        assert!(!dnd.dnd_at(now + Duration::hours(1)), "and not after it");
    }

    #[test]
    fn saved_switches_are_read_back_and_the_old_file_still_counts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(OLD_FILE), r#"{"dnd": true}"#).unwrap();
        assert!(
            NotificationPrefs::load(dir.path()).dnd,
            "the desktop app's earlier file is honoured"
        );
        let p = NotificationPrefs {
            notify_actions: true,
            quiet_hours: Some("22:00-07:00".parse().unwrap()),
            ..Default::default()
        };
        p.save(dir.path()).unwrap();
        assert_eq!(
            NotificationPrefs::load(dir.path()),
            p,
            "what is saved is read back"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(NotificationPrefs::path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "the user's own file");
        }
    }
}
