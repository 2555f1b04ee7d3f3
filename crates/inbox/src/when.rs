//! Points in time as a reviewer types them: a date, an RFC 3339 time, or a
//! span back from now (`7d`). A span is resolved against the inbox's clock
//! only when the command runs, so parsing never reads the clock. Shared
//! by the CLI's flags and the app's history filter.

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};

/// A time given on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    At(DateTime<Utc>),
    /// A whole UTC day.
    Day(NaiveDate),
    /// This long before now.
    Ago(Duration),
}

/// The longest span accepted (so `now - span` never overflows).
const MAX_DAYS: i64 = 100 * 366;

impl When {
    /// The moment meant; a day is its start.
    pub fn resolve(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            When::At(t) => t,
            When::Day(d) => d.and_time(NaiveTime::MIN).and_utc(),
            When::Ago(d) => now - d,
        }
    }

    /// The end of what is meant, for an inclusive "to": a day is its end.
    pub fn end(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            When::Day(d) => When::Day(d).resolve(now) + Duration::days(1),
            other => other.resolve(now),
        }
    }
}

/// `2026-12-01` (midnight UTC), `2026-12-01T09:30:00Z`, or `30s`, `30m`,
/// `12h`, `7d`, `2w` back from now.
pub fn parse(s: &str) -> Result<When, String> {
    let s = s.trim();
    let bad = || {
        format!(
            "not a date or a span: `{}` (expected 2026-12-01, 2026-12-01T09:30:00Z, or a span back from now like 7d, 12h, 30m)",
            s.chars().take(60).collect::<String>()
        )
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(When::At(t.with_timezone(&Utc)));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(When::Day(d));
    }
    let unit_at = s
        .len()
        .checked_sub(1)
        .filter(|_| s.is_ascii())
        .ok_or_else(bad)?;
    let (n, unit) = s.split_at(unit_at);
    let n: i64 = n.parse().ok().filter(|n| *n >= 0).ok_or_else(bad)?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(bad()),
    };
    let total = n
        .checked_mul(secs)
        .filter(|t| *t <= MAX_DAYS * 86_400)
        .ok_or_else(|| format!("`{s}` is too long ago (at most 100 years)"))?;
    Ok(When::Ago(Duration::seconds(total)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn dates_times_and_spans_parse_and_junk_does_not() {
        let now = Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
        let at = |s: &str| parse(s).unwrap().resolve(now);
        assert_eq!(
            at("2026-12-01"),
            Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            at("2026-12-01T09:30:00+01:00"),
            Utc.with_ymd_and_hms(2026, 12, 1, 8, 30, 0).unwrap()
        );
        assert_eq!(
            parse("2026-12-01").unwrap().end(now),
            Utc.with_ymd_and_hms(2026, 12, 2, 0, 0, 0).unwrap(),
            "an inclusive `to` day ends at the next midnight"
        );
        assert_eq!(at("7d"), now - Duration::days(7));
        assert_eq!(at("12h"), now - Duration::hours(12));
        assert_eq!(at("30m"), now - Duration::minutes(30));
        for junk in [
            "",
            "d",
            "7",
            "7y",
            "-3d",
            "2026-13-01",
            "yesterday",
            "9999999999999999w",
            "7é",
        ] {
            assert!(parse(junk).is_err(), "`{junk}` is refused, not misread");
        }
    }
}
