//! Terminal and JSON output. Agent-written text is untrusted: control,
//! bidi and invisible characters are shown as `⟨U+…⟩` markers
//! (`countersign_model::text`) so a request can neither rewrite the
//! reviewer's terminal nor read as something else; a request that hides
//! any carries a `[hidden]` mark and a warning line. JSON output keeps the
//! exact text.

use chrono::{DateTime, Utc};
use countersign_inbox::{AccountView, RequestDetail, RequestView, SyncEvent};
use countersign_model::Activity;
use serde::Serialize;
use std::io::{self, Write};

/// Shows control, bidi and invisible characters as `⟨U+…⟩` markers.
pub fn clean(s: &str) -> String {
    countersign_model::text::reveal(s).into_owned()
}

/// One line, at most `max` characters.
fn cell(s: &str, max: usize) -> String {
    countersign_model::text::one_line(s, max)
}

fn json<T: Serialize + ?Sized>(out: &mut impl Write, value: &T) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value).map_err(io::Error::other)?;
    writeln!(out)
}

/// "3m", "2h", "5d": how long ago, or until, a time.
pub fn span(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let secs = (to - from).num_seconds().abs();
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

pub fn requests(
    out: &mut impl Write,
    list: &[RequestView],
    as_json: bool,
    now: DateTime<Utc>,
) -> io::Result<()> {
    if as_json {
        return json(out, list);
    }
    if list.is_empty() {
        return writeln!(out, "nothing here");
    }
    request_header(out)?;
    for r in list {
        request_row(out, r, now)?;
    }
    Ok(())
}

/// Prints a list of requests one row at a time, as they are read, in the
/// same shape as [`requests`] (or as JSON Lines, one object a row).
pub struct RequestRows {
    as_json: bool,
    now: DateTime<Utc>,
    rows: u64,
}

impl RequestRows {
    pub fn new(as_json: bool, now: DateTime<Utc>) -> Self {
        Self {
            as_json,
            now,
            rows: 0,
        }
    }

    pub fn row(&mut self, out: &mut impl Write, r: &RequestView) -> io::Result<()> {
        if self.as_json {
            serde_json::to_writer(&mut *out, r).map_err(io::Error::other)?;
            writeln!(out)?;
        } else {
            if self.rows == 0 {
                request_header(out)?;
            }
            request_row(out, r, self.now)?;
        }
        self.rows += 1;
        Ok(())
    }

    /// Says so when there was nothing (JSON Lines: nothing is no line).
    pub fn finish(&self, out: &mut impl Write) -> io::Result<()> {
        if self.rows == 0 && !self.as_json {
            writeln!(out, "nothing here")?;
        }
        out.flush()
    }
}

fn request_header(out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{:>6}  {:<12} {:<20} {:<36} {:>5}  {:<18}",
        "ID", "ACCOUNT", "AGENT", "ACTION", "AGE", "STATUS / DEADLINE"
    )
}

fn request_row(out: &mut impl Write, r: &RequestView, now: DateTime<Utc>) -> io::Result<()> {
    let state = if r.status.is_pending() {
        match r.deadline {
            Some(d) if d > now => format!("due in {}", span(now, d)),
            Some(_) => "overdue".into(),
            None => "pending".into(),
        }
    } else {
        let mut s = r.status.as_str().replace('_', " ");
        if let Some(by) = &r.decided_by {
            s.push_str(&format!(" by {}", cell(by, 16)));
        }
        if let Some(d) = r.delivery {
            if d != countersign_model::Delivery::Confirmed {
                s.push_str(&format!(" [{d}]"));
            }
        }
        if r.delivery_note.is_some() {
            s.push_str(" [!]");
        }
        s
    };
    let state = if r.hidden.is_some() {
        format!("{state} [hidden]")
    } else {
        state
    };
    writeln!(
        out,
        "{:>6}  {:<12} {:<20} {:<36} {:>5}  {}",
        r.id,
        cell(&r.account, 12),
        cell(r.agent.as_deref().unwrap_or("-"), 20),
        cell(&r.title, 36),
        span(r.created_at, now),
        state
    )
}

/// "1.2 MB": a size for people.
pub fn bytes(n: u64) -> String {
    match n {
        n if n < 1_000 => format!("{n} B"),
        n if n < 1_000_000 => format!("{:.1} kB", n as f64 / 1e3),
        n if n < 1_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        n => format!("{:.1} GB", n as f64 / 1e9),
    }
}

pub fn detail(out: &mut impl Write, d: &RequestDetail, as_json: bool) -> io::Result<()> {
    if as_json {
        return json(out, d);
    }
    let r = &d.request;
    let opt = |v: &Option<String>| v.as_deref().map(clean).unwrap_or_else(|| "-".into());
    writeln!(
        out,
        "Request {} on {} ({})",
        r.id,
        clean(&r.account),
        r.platform
    )?;
    if let Some(w) = &r.hidden {
        writeln!(
            out,
            "  WARNING:    this request's text hides something: {w}"
        )?;
    }
    writeln!(out, "  title:      {}", clean(&r.title))?;
    writeln!(out, "  action:     {}", clean(&r.action))?;
    writeln!(out, "  agent:      {}", opt(&r.agent))?;
    writeln!(out, "  reason:     {}", opt(&r.description))?;
    writeln!(out, "  tier:       {}", opt(&r.tier))?;
    writeln!(out, "  kind:       {}", r.kind)?;
    writeln!(out, "  status:     {}", r.status.as_str().replace('_', " "))?;
    if let Some(o) = &r.outcome {
        writeln!(out, "  outcome:    {}", clean(o))?;
    }
    writeln!(out, "  created:    {}", r.created_at.to_rfc3339())?;
    if let Some(dl) = r.deadline {
        writeln!(out, "  deadline:   {}", dl.to_rfc3339())?;
    }
    let allowed: Vec<_> = r.allowed_decisions.iter().map(|a| a.as_str()).collect();
    writeln!(out, "  can:        {}", allowed.join(", "))?;
    writeln!(out, "  remote id:  {}", clean(&r.remote_id))?;
    if let Some(by) = &r.decided_by {
        writeln!(
            out,
            "  decided by: {} at {}",
            clean(by),
            r.decided_at.map(|t| t.to_rfc3339()).unwrap_or_default()
        )?;
    }
    if let Some(c) = &r.comment {
        writeln!(out, "  comment:    {}", clean(c))?;
    }
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).unwrap_or_default();
    writeln!(out, "  arguments:")?;
    for line in pretty(&r.arguments).lines() {
        writeln!(out, "    {}", clean(line))?;
    }
    for dec in &d.decisions {
        writeln!(
            out,
            "  decision {}: {} by {} at {} — {}{}",
            dec.id,
            dec.outcome,
            clean(&dec.decided_by),
            dec.decided_at.to_rfc3339(),
            dec.delivery,
            dec.error
                .as_deref()
                .map(|e| format!(" ({})", clean(e)))
                .unwrap_or_default()
        )?;
        if let Some(note) = &dec.note {
            writeln!(out, "    ! {}", clean(note))?;
        }
    }
    for r in &d.reports {
        writeln!(
            out,
            "  reported {}: {}",
            r.occurred_at.to_rfc3339(),
            clean(&r.title)
        )?;
        if let Some(body) = r.details.get("body").and_then(|b| b.as_str()) {
            for line in body.lines() {
                writeln!(out, "    {}", clean(line))?;
            }
        }
    }
    writeln!(out, "  raw payload:")?;
    for line in pretty(&d.raw).lines() {
        writeln!(out, "    {}", clean(line))?;
    }
    Ok(())
}

pub fn activity(out: &mut impl Write, items: &[Activity], as_json: bool) -> io::Result<()> {
    if as_json {
        return json(out, items);
    }
    if items.is_empty() {
        return writeln!(out, "no activity");
    }
    for a in items {
        writeln!(
            out,
            "{}  {:<12} {:<20} {}",
            a.occurred_at.format("%Y-%m-%d %H:%M:%S"),
            cell(&a.account, 12),
            cell(a.agent.as_deref().unwrap_or("-"), 20),
            cell(&a.title, 100)
        )?;
    }
    Ok(())
}

pub fn accounts(out: &mut impl Write, list: &[AccountView], as_json: bool) -> io::Result<()> {
    if as_json {
        return json(out, list);
    }
    if list.is_empty() {
        return writeln!(out, "no accounts; add one with `countersign account add`");
    }
    for a in list {
        writeln!(
            out,
            "{:<16} {:<9} {:<32} {:>4} pending  {}",
            cell(&a.name, 16),
            a.platform,
            cell(&a.url, 32),
            a.pending,
            cell(&a.health, 80)
        )?;
    }
    Ok(())
}

/// One line per engine event, for `countersign sync`.
pub fn event(out: &mut impl Write, e: &SyncEvent, now: DateTime<Utc>) -> io::Result<()> {
    match e {
        SyncEvent::RequestAdded(r) => writeln!(
            out,
            "+ {} {} {}: {}{}",
            r.id,
            cell(&r.account, 16),
            cell(r.agent.as_deref().unwrap_or("-"), 24),
            cell(&r.title, 80),
            r.deadline
                .filter(|d| *d > now)
                .map(|d| format!(" (due in {})", span(now, d)))
                .unwrap_or_default()
        ),
        SyncEvent::RequestUpdated(r) => writeln!(
            out,
            "~ {} {}: {}",
            r.id,
            cell(&r.account, 16),
            cell(&r.title, 80)
        ),
        SyncEvent::RequestResolved(r) => writeln!(
            out,
            "- {} {}: {}{}{}",
            r.id,
            cell(&r.account, 16),
            r.status.as_str().replace('_', " "),
            r.outcome
                .as_deref()
                .map(|o| format!(" ({})", cell(o, 20)))
                .unwrap_or_default(),
            r.decided_by
                .as_deref()
                .map(|b| format!(" by {}", cell(b, 24)))
                .unwrap_or_default()
        ),
        SyncEvent::Activity(a) => writeln!(
            out,
            "* {} {}: {}",
            cell(&a.account, 16),
            cell(a.agent.as_deref().unwrap_or("-"), 24),
            cell(&a.title, 100)
        ),
        SyncEvent::Decision { decision, request } => writeln!(
            out,
            "= {} {}: {} {}{}",
            request.id,
            cell(&request.account, 16),
            decision.outcome,
            decision.delivery,
            decision
                .error
                .as_deref()
                .or(decision.note.as_deref())
                .map(|e| format!(" ({})", cell(e, 120)))
                .unwrap_or_default()
        ),
        SyncEvent::Health { account, health } => writeln!(
            out,
            "! {}: {}",
            cell(account, 16),
            cell(&health.summary(), 120)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_from_agents_never_reach_the_terminal() {
        let hostile = "rm -rf /\u{1b}]0;owned\u{7}\u{1b}[2J";
        let shown = clean(hostile);
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
            "got {shown:?}"
        );
        assert!(
            shown.contains("rm -rf /"),
            "the visible text stays readable"
        );
    }
}
