//! `countersign notifications …`: the notification switches the desktop
//! app shares (`notifications.json` in the data dir; a running app picks a
//! change up within a second).

use crate::Failure;
use chrono::{DateTime, Duration, Local, Utc};
use clap::{Subcommand, ValueEnum};
use countersign_inbox::when::{self, When};
use countersign_inbox::{NotificationPrefs, QuietHours};
use std::io::Write;
use std::path::Path;

#[derive(Subcommand)]
pub enum NotificationsCommand {
    /// Print the switches.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Approve and Deny buttons on request notifications. Off by default:
    /// notifications can show on the lock screen, where anyone could press
    /// them.
    Actions { state: OnOff },
    /// Do not disturb: no notifications until turned off, or for a while.
    Dnd {
        state: OnOff,
        /// For this long (30m, 1h, 2d); then notifications come back.
        #[arg(long = "for", value_name = "SPAN", value_parser = parse_span)]
        for_: Option<Duration>,
    },
    /// Daily hours (local time) when request notifications wait, then come
    /// as one summary: a span like 22:00-07:00, or off.
    QuietHours {
        #[arg(value_name = "SPAN|off", value_parser = parse_quiet)]
        span: Quiet,
    },
    /// During quiet hours, notify a request due before they end anyway.
    Urgent { state: OnOff },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

impl OnOff {
    fn on(self) -> bool {
        matches!(self, OnOff::On)
    }
}

/// Quiet hours as given: a span, or off.
#[derive(Clone, Copy)]
pub struct Quiet(Option<QuietHours>);

fn parse_quiet(s: &str) -> Result<Quiet, String> {
    if s.trim().eq_ignore_ascii_case("off") {
        return Ok(Quiet(None));
    }
    s.parse()
        .map(|q| Quiet(Some(q)))
        .map_err(|e| format!("{e}"))
}

fn parse_span(s: &str) -> Result<Duration, String> {
    match when::parse(s) {
        Ok(When::Ago(d)) => Ok(d),
        _ => Err(format!(
            "not a span: `{}` (expected 30m, 1h, 2d)",
            s.chars().take(40).collect::<String>()
        )),
    }
}

pub fn run(
    dir: &Path,
    cmd: NotificationsCommand,
    now: DateTime<Utc>,
    out: &mut impl Write,
) -> Result<u8, Failure> {
    let mut prefs = NotificationPrefs::load(dir);
    match cmd {
        NotificationsCommand::Show { json: true } => {
            serde_json::to_writer_pretty(&mut *out, &prefs)?;
            writeln!(out)?;
            return Ok(0);
        }
        NotificationsCommand::Show { json: false } => {
            print(&prefs, now, out)?;
            return Ok(0);
        }
        NotificationsCommand::Actions { state } => prefs.notify_actions = state.on(),
        NotificationsCommand::Dnd { state, for_ } => {
            if for_.is_some() && !state.on() {
                return Err(Failure::usage("--for goes with `dnd on`"));
            }
            prefs.dnd = state.on();
            prefs.dnd_until = for_.map(|d| now + d);
        }
        NotificationsCommand::QuietHours { span } => prefs.quiet_hours = span.0,
        NotificationsCommand::Urgent { state } => prefs.urgent_breaks_through = state.on(),
    }
    prefs.save(dir)?;
    print(&prefs, now, out)?;
    Ok(0)
}

fn print(p: &NotificationPrefs, now: DateTime<Utc>, out: &mut impl Write) -> std::io::Result<()> {
    let onoff = |b: bool| if b { "on" } else { "off" };
    let dnd = match (p.dnd_at(now), p.dnd_until) {
        (false, _) => "off".to_owned(),
        (true, None) => "on".to_owned(),
        (true, Some(until)) => format!(
            "on until {}",
            until.with_timezone(&Local).format("%Y-%m-%d %H:%M")
        ),
    };
    writeln!(out, "do not disturb  {dnd}")?;
    writeln!(out, "activity        {}", onoff(p.notify_activity))?;
    writeln!(out, "decide buttons  {}", onoff(p.notify_actions))?;
    match p.quiet_hours {
        None => writeln!(out, "quiet hours     off")?,
        Some(q) => writeln!(
            out,
            "quiet hours     {q} local time (urgent requests {})",
            if p.urgent_breaks_through {
                "break through"
            } else {
                "wait too"
            }
        )?,
    }
    Ok(())
}
