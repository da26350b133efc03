//! [`Cadence`]: a validated cron expression in a time zone and its next occurrences, with
//! Krake's daylight-saving rules; time zone names; the errors a timing can have.

use crate::text::edit_distance;
use crate::time::Timestamp;
use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::str::FromStr;

/// Why a schedule's timing was refused. Each names the problem; nothing is changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The cron expression does not parse.
    #[error(
        "`{expr}` is not a valid cron expression ({reason}); write 5 fields `minute hour day-of-month month day-of-week`, e.g. `0 9 * * 1-5`"
    )]
    InvalidCron {
        /// The expression as given.
        expr: String,
        /// What the cron parser said.
        reason: String,
    },
    /// The time zone is unknown.
    #[error("`{name}` is not a time zone I know; use an IANA name such as Europe/Berlin, America/New_York or UTC{}", suggestion.as_ref().map(|s| format!(" (did you mean {s}?)")).unwrap_or_default())]
    UnknownTimeZone {
        /// The name as given.
        name: String,
        /// The closest known name, if one is close.
        suggestion: Option<String>,
    },
    /// The expression is valid but never fires.
    #[error("`{0}` never runs")]
    NeverRuns(String),
    /// The phrasing was not understood.
    #[error("{0}")]
    NotUnderstood(String),
}

/// Parses an IANA time zone name, ignoring case (`europe/berlin`, `UTC`).
pub fn parse_timezone(name: &str) -> Result<Tz, ScheduleError> {
    let name = name.trim();
    if let Ok(tz) = Tz::from_str(name) {
        return Ok(tz);
    }
    if let Some(tz) = chrono_tz::TZ_VARIANTS
        .iter()
        .find(|t| t.name().eq_ignore_ascii_case(name))
    {
        return Ok(*tz);
    }
    let lower = name.to_lowercase();
    let suggestion = (name.chars().count() <= 40)
        .then(|| {
            chrono_tz::TZ_VARIANTS
                .iter()
                .map(|t| (t.name(), edit_distance(&lower, &t.name().to_lowercase())))
                .filter(|(_, d)| *d <= 3)
                .min_by_key(|(_, d)| *d)
                .map(|(n, _)| n.to_owned())
        })
        .flatten();
    Err(ScheduleError::UnknownTimeZone {
        name: name.chars().take(60).collect(),
        suggestion,
    })
}

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Rewrites a standard day-of-week field (0–7, 0 and 7 = Sunday, or names) into the cron
/// crate's numbering (names), so `1-5` means Monday to Friday as in every other cron.
fn normalise_dow(field: &str) -> Result<String, String> {
    let name = |n: &str| -> Result<String, String> {
        match n.parse::<usize>() {
            Ok(i) if i <= 7 => Ok(DAY_NAMES[i % 7].to_owned()),
            Ok(i) => Err(format!("day of week {i} is out of range 0-7")),
            Err(_) => Ok(n.to_uppercase()),
        }
    };
    let mut parts = Vec::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (item, None),
        };
        let step_s = step.map(|s| format!("/{s}")).unwrap_or_default();
        match range.split_once('-') {
            Some((a, b)) => {
                let a2 = name(a)?;
                if b == "7" && a != "0" && a != "7" {
                    // `5-7` is Friday to Sunday: Sunday is first in the crate's week.
                    parts.push(format!("{a2}-SAT{step_s}"));
                    if step.is_none() {
                        parts.push("SUN".to_owned());
                    }
                } else {
                    parts.push(format!("{a2}-{}{step_s}", name(b)?));
                }
            }
            None if range == "*" || range == "?" => parts.push(format!("{range}{step_s}")),
            None => parts.push(format!("{}{step_s}", name(range)?)),
        }
    }
    Ok(parts.join(","))
}

/// Turns a 5-, 6- or 7-field cron expression into the cron crate's 6/7-field form with named
/// days of the week.
fn normalise_cron(expr: &str) -> Result<String, ScheduleError> {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let invalid = |reason: String| ScheduleError::InvalidCron {
        expr: expr.chars().take(100).collect(),
        reason,
    };
    let mut full: Vec<String> = match fields.len() {
        5 => std::iter::once("0")
            .chain(fields.iter().copied())
            .map(str::to_owned)
            .collect(),
        6 | 7 => fields.iter().map(|s| (*s).to_owned()).collect(),
        n => {
            return Err(invalid(format!(
                "it has {n} fields; a cron expression has 5 (or 6 with seconds first)"
            )));
        }
    };
    full[5] = normalise_dow(&full[5]).map_err(invalid)?;
    Ok(full.join(" "))
}

/// A validated cron expression in a time zone.
#[derive(Debug, Clone)]
pub struct Cadence {
    expr: String,
    tz: Tz,
    schedule: cron::Schedule,
    every_hour: bool,
}

impl PartialEq for Cadence {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr && self.tz == other.tz
    }
}

impl Cadence {
    /// Parses a cron expression (5 fields `min hour dom month dow`, or 6/7 with seconds first
    /// and an optional year; days of week 0–7 with 0 and 7 Sunday, or names) in `tz`.
    pub fn new(expr: &str, tz: Tz) -> Result<Self, ScheduleError> {
        let normal = normalise_cron(expr.trim())?;
        let schedule =
            cron::Schedule::from_str(&normal).map_err(|e| ScheduleError::InvalidCron {
                expr: expr.chars().take(100).collect(),
                reason: e.to_string(),
            })?;
        use cron::TimeUnitSpec;
        let every_hour = schedule.hours().is_all();
        let c = Self {
            expr: normal,
            tz,
            schedule,
            every_hour,
        };
        // Refuse expressions that never fire (`0 0 30 2 *`).
        if c.next_after(Timestamp::from_millis(0)).is_none() {
            return Err(ScheduleError::NeverRuns(expr.chars().take(100).collect()));
        }
        Ok(c)
    }

    /// The normalised expression (6 or 7 fields, named days), as stored.
    pub fn expression(&self) -> &str {
        &self.expr
    }

    /// The time zone.
    pub fn timezone(&self) -> Tz {
        self.tz
    }

    /// The first occurrence strictly after `after`.
    ///
    /// Daylight-saving rules: a schedule at fixed hours whose local time does not exist on a
    /// spring-forward day (02:30 in Berlin) runs once at the end of the gap (03:00 local); one
    /// whose local time happens twice on a fall-back day runs once, at the first. Schedules
    /// that run every hour follow real time (both 02:30s run; the skipped hour does not).
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let after_utc = DateTime::<Utc>::from_timestamp_millis(after.as_millis())?;
        let local = after_utc.with_timezone(&self.tz).naive_local();
        // Walk local wall-clock candidates (evaluated on a zone without DST), starting early
        // enough to cover a fold, and keep the earliest instant after `after`.
        let start = local - chrono::Duration::hours(3);
        let mut best: Option<(i64, NaiveDateTime)> = None;
        for (i, cand) in self
            .schedule
            .after(&Utc.from_utc_datetime(&start))
            .enumerate()
        {
            let naive = cand.naive_utc();
            if let Some((_, found_at)) = best
                && naive > found_at + chrono::Duration::hours(3)
            {
                break;
            }
            if i > 20_000 {
                break;
            }
            for instant in self.instants(naive) {
                if instant > after.as_millis() && best.is_none_or(|(b, _)| instant < b) {
                    best = Some((instant, naive));
                }
            }
        }
        best.map(|(ms, _)| Timestamp::from_millis(ms))
    }

    /// The instants (epoch millis) a local wall-clock time stands for under the DST rules.
    fn instants(&self, naive: NaiveDateTime) -> Vec<i64> {
        match self.tz.from_local_datetime(&naive) {
            LocalResult::Single(t) => vec![t.timestamp_millis()],
            LocalResult::Ambiguous(early, late) if self.every_hour => {
                vec![early.timestamp_millis(), late.timestamp_millis()]
            }
            LocalResult::Ambiguous(early, _) => vec![early.timestamp_millis()],
            LocalResult::None if self.every_hour => Vec::new(),
            LocalResult::None => {
                // The first valid local minute after the gap.
                let mut t = naive;
                for _ in 0..240 {
                    t += chrono::Duration::minutes(1);
                    if let Some(x) = self.tz.from_local_datetime(&t).earliest() {
                        return vec![x.timestamp_millis()];
                    }
                }
                Vec::new()
            }
        }
    }

    /// Occurrences in `(from, to]`, at most `cap` of them counted.
    pub fn count_between(&self, from: Timestamp, to: Timestamp, cap: usize) -> usize {
        let mut n = 0;
        let mut t = from;
        while n < cap {
            match self.next_after(t) {
                Some(x) if x <= to => {
                    n += 1;
                    t = x;
                }
                _ => break,
            }
        }
        n
    }
}

/// Renders an instant in a time zone: `Mon 2026-11-30 09:00 CET`.
pub fn local_time(t: Timestamp, tz: Tz) -> String {
    match DateTime::<Utc>::from_timestamp_millis(t.as_millis()) {
        Some(d) => d
            .with_timezone(&tz)
            .format("%a %Y-%m-%d %H:%M %Z")
            .to_string(),
        None => t.to_utc_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::parse_when;

    fn ts(s: &str) -> Timestamp {
        let d = DateTime::parse_from_rfc3339(s).unwrap();
        Timestamp::from_millis(d.timestamp_millis())
    }

    fn utc(t: Timestamp) -> String {
        DateTime::<Utc>::from_timestamp_millis(t.as_millis())
            .unwrap()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    }

    fn berlin(expr: &str) -> Cadence {
        Cadence::new(expr, chrono_tz::Europe::Berlin).unwrap()
    }

    #[test]
    fn weekly_in_berlin_across_both_dst_changes() {
        let c = berlin("0 9 * * 1");
        // Winter (CET, UTC+1) to summer (CEST, UTC+2): Monday 2026-03-30 follows the change.
        let a = c.next_after(ts("2026-03-23T07:59:00Z")).unwrap();
        assert_eq!(utc(a), "2026-03-23T08:00:00Z");
        let b = c.next_after(a).unwrap();
        assert_eq!(utc(b), "2026-03-30T07:00:00Z");
        // Autumn: back to CET on 2026-10-25.
        let c2 = c.next_after(ts("2026-10-20T00:00:00Z")).unwrap();
        assert_eq!(utc(c2), "2026-10-26T08:00:00Z");
    }

    #[test]
    fn spring_gap_runs_once_at_gap_end() {
        // 02:30 does not exist in Berlin on 2026-03-29.
        let c = berlin("30 2 * * *");
        let a = c.next_after(ts("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(utc(a), "2026-03-29T01:00:00Z", "03:00 CEST");
        let b = c.next_after(a).unwrap();
        assert_eq!(utc(b), "2026-03-30T00:30:00Z", "02:30 CEST next day");
        // Two schedules inside the gap on the same day collapse to one run.
        let c = berlin("0,30 2 * * *");
        let a = c.next_after(ts("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(utc(a), "2026-03-29T01:00:00Z");
        assert_eq!(utc(c.next_after(a).unwrap()), "2026-03-30T00:00:00Z");
    }

    #[test]
    fn autumn_fold_runs_fixed_times_once_and_hourly_twice() {
        // 02:30 happens twice in Berlin on 2026-10-25 (00:30Z CEST and 01:30Z CET).
        let c = berlin("30 2 * * *");
        let a = c.next_after(ts("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!(utc(a), "2026-10-25T00:30:00Z");
        let b = c.next_after(a).unwrap();
        assert_eq!(utc(b), "2026-10-26T01:30:00Z", "once on the fold day");
        let h = berlin("30 * * * *");
        let mut t = ts("2026-10-24T23:00:00Z");
        let mut seen = Vec::new();
        for _ in 0..4 {
            t = h.next_after(t).unwrap();
            seen.push(utc(t));
        }
        assert_eq!(
            seen,
            [
                "2026-10-24T23:30:00Z",
                "2026-10-25T00:30:00Z",
                "2026-10-25T01:30:00Z",
                "2026-10-25T02:30:00Z"
            ],
            "hourly follows real time through the fold"
        );
        // Spring: the hourly schedule has one hour fewer.
        let mut t = ts("2026-03-29T00:00:00Z");
        t = h.next_after(t).unwrap();
        assert_eq!(utc(t), "2026-03-29T00:30:00Z");
        t = h.next_after(t).unwrap();
        assert_eq!(utc(t), "2026-03-29T01:30:00Z", "03:30 CEST");
    }

    #[test]
    fn standard_day_of_week_numbers() {
        let c = Cadence::new("0 9 * * 1-5", Tz::UTC).unwrap();
        // 2026-11-28 is a Saturday: next is Monday the 30th.
        assert_eq!(
            utc(c.next_after(ts("2026-11-28T00:00:00Z")).unwrap()),
            "2026-11-30T09:00:00Z"
        );
        let sun = Cadence::new("0 9 * * 0", Tz::UTC).unwrap();
        assert_eq!(
            utc(sun.next_after(ts("2026-11-28T00:00:00Z")).unwrap()),
            "2026-11-29T09:00:00Z"
        );
        let sun7 = Cadence::new("0 9 * * 7", Tz::UTC).unwrap();
        assert_eq!(sun7.expression(), "0 0 9 * * SUN");
        let fri_sun = Cadence::new("0 9 * * 5-7", Tz::UTC).unwrap();
        assert_eq!(
            utc(fri_sun.next_after(ts("2026-11-29T10:00:00Z")).unwrap()),
            "2026-12-04T09:00:00Z"
        );
    }

    #[test]
    fn bad_cron_and_zones_name_the_problem() {
        let e = Cadence::new("0 25 * * *", Tz::UTC).unwrap_err().to_string();
        assert!(e.contains("`0 25 * * *`"), "{e}");
        let e = Cadence::new("every so often", Tz::UTC)
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 fields"), "{e}");
        let e = Cadence::new("0 0 30 2 *", Tz::UTC).unwrap_err().to_string();
        assert!(e.contains("never runs"), "{e}");
        let e = parse_timezone("Europe/Berln").unwrap_err().to_string();
        assert!(
            e.contains("Europe/Berln") && e.contains("Europe/Berlin"),
            "{e}"
        );
        assert_eq!(
            parse_timezone("europe/berlin"),
            Ok(chrono_tz::Europe::Berlin)
        );
        let e = parse_when("every monday 09:00 Mars/Olympus").unwrap_err();
        assert!(matches!(e, ScheduleError::UnknownTimeZone { .. }), "{e}");
        let e = parse_when("cron 0 9 * * 8").unwrap_err().to_string();
        assert!(e.contains("out of range"), "{e}");
    }

    #[test]
    fn counts_missed_occurrences() {
        let c = Cadence::new("0 9 * * *", Tz::UTC).unwrap();
        let from = ts("2026-11-20T09:00:00Z");
        assert_eq!(c.count_between(from, ts("2026-11-23T12:00:00Z"), 100), 3);
        assert_eq!(c.count_between(from, ts("2026-11-23T12:00:00Z"), 2), 2);
    }
}
