//! Schedules: recurring tasks for agents, written as cron expressions or natural phrasings
//! ("every monday 09:00 Europe/Berlin", "every weekday at 8"), evaluated in a time zone.
//!
//! - [`Cadence`]: a validated cron expression in a time zone and its next occurrences,
//!   with Krake's daylight-saving rules (see [`Cadence::next_after`]).
//! - [`parse_when`]: natural phrasings and raw cron to a [`WhenSpec`].
//! - [`ScheduleCommand`] and [`parse_schedule_command`]: the `/schedule` family of commands.
//! - [`ScheduleRepo`]: the storage port; claiming an occurrence is a compare-and-set on the
//!   schedule's `next_run_at`, so with several `krake serve` processes exactly one runs it.

use crate::inbox::{NewThread, ThreadId};
use crate::ports::RepoError;
use crate::time::Timestamp;
use crate::workspace::{Workspace, WorkspaceSlug};
use async_trait::async_trait;
use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::fmt;
use std::str::FromStr;

/// A schedule's short numeric id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScheduleId(pub i64);

impl fmt::Display for ScheduleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

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

/// When a schedule runs, as parsed from chat or config: a cron expression, the time zone if
/// one was named, and a description for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhenSpec {
    /// The cron expression (normalised).
    pub cron: String,
    /// The time zone, if named; otherwise the configured default applies.
    pub tz: Option<Tz>,
    /// "every Monday at 09:00".
    pub description: String,
}

impl WhenSpec {
    /// The cadence in `tz` unless the spec names its own.
    pub fn cadence(&self, default_tz: Tz) -> Result<Cadence, ScheduleError> {
        Cadence::new(&self.cron, self.tz.unwrap_or(default_tz))
    }
}

const WEEKDAYS: [(&str, &str, &str); 7] = [
    ("monday", "MON", "Monday"),
    ("tuesday", "TUE", "Tuesday"),
    ("wednesday", "WED", "Wednesday"),
    ("thursday", "THU", "Thursday"),
    ("friday", "FRI", "Friday"),
    ("saturday", "SAT", "Saturday"),
    ("sunday", "SUN", "Sunday"),
];

fn weekday(word: &str) -> Option<(&'static str, &'static str)> {
    let w = word.trim_end_matches([',', 's']);
    if w.len() < 3 {
        return None;
    }
    WEEKDAYS
        .iter()
        .find(|(full, _, _)| full.starts_with(w) && (w.len() >= 3))
        .map(|(_, code, name)| (*code, *name))
}

/// Reads a time of day: `9`, `09:00`, `9:30`, `9am`, `7:30pm`, `noon`, `midnight`.
fn time_of_day(word: &str, next: Option<&str>) -> Option<((u32, u32), bool)> {
    let w = word.trim_end_matches([',', '.']);
    match w {
        "noon" | "midday" => return Some(((12, 0), false)),
        "midnight" => return Some(((0, 0), false)),
        _ => {}
    }
    let (w, mut meridiem) = if let Some(x) = w.strip_suffix("am") {
        (x, Some(false))
    } else if let Some(x) = w.strip_suffix("pm") {
        (x, Some(true))
    } else {
        (w, None)
    };
    let mut used_next = false;
    if meridiem.is_none() {
        match next.map(|n| n.trim_end_matches([',', '.'])) {
            Some("am") => {
                meridiem = Some(false);
                used_next = true;
            }
            Some("pm") => {
                meridiem = Some(true);
                used_next = true;
            }
            _ => {}
        }
    }
    let (h, m) = match w.split_once([':', '.', 'h']) {
        Some((h, m)) => (h, if m.is_empty() { "0" } else { m }),
        None => (w, "0"),
    };
    if h.is_empty() || h.len() > 2 || m.len() > 2 {
        return None;
    }
    if !h.bytes().all(|b| b.is_ascii_digit()) || !m.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    if m > 59 {
        return None;
    }
    match meridiem {
        Some(pm) => {
            if !(1..=12).contains(&h) {
                return None;
            }
            h %= 12;
            if pm {
                h += 12;
            }
        }
        None if h > 23 => return None,
        None => {}
    }
    Some(((h, m), used_next))
}

fn looks_like_tz(word: &str) -> bool {
    word.contains('/') || ["utc", "gmt", "z"].contains(&word.to_lowercase().as_str())
}

/// Parses when a schedule runs: a natural phrasing or `cron <expression>`, each with an
/// optional IANA time zone at the end.
///
/// Phrasings: `every day at 7:30`, `daily at 9`, `every weekday at 8`, `every weekend at 10`,
/// `every monday 09:00`, `every mon and thu at 17:00`, `every hour`, `hourly at :15`,
/// `every 15 minutes`, `every 2 hours`, `every month on the 1st at 9`,
/// `cron 0 9 * * 1-5 Europe/Berlin`.
pub fn parse_when(text: &str) -> Result<WhenSpec, ScheduleError> {
    let raw: Vec<&str> = text.split_whitespace().collect();
    let mut words: Vec<String> = raw.iter().map(|w| w.to_lowercase()).collect();
    let mut tz = None;
    let mut tz_name = String::new();
    if let Some(last) = raw.last()
        && looks_like_tz(last)
        && words.len() > 1
    {
        tz = Some(parse_timezone(last)?);
        tz_name = (*last).to_owned();
        words.pop();
    }
    let _ = tz_name;
    let not_understood = || {
        ScheduleError::NotUnderstood(format!(
            "I did not understand when to run `{}`; try `every monday 09:00 Europe/Berlin`, `every weekday at 8`, `every 15 minutes` or `cron 0 9 * * 1-5`",
            text.chars().take(80).collect::<String>()
        ))
    };
    if words.is_empty() {
        return Err(not_understood());
    }
    if words[0] == "cron" {
        let n = words.len();
        let expr = raw[1..n].join(" ");
        let c = Cadence::new(&expr, tz.unwrap_or(Tz::UTC))?;
        return Ok(WhenSpec {
            cron: c.expression().to_owned(),
            tz,
            description: format!("cron `{expr}`"),
        });
    }
    let mut i = 0;
    if matches!(words[0].as_str(), "every" | "each" | "on") {
        i = 1;
    }
    let rest: Vec<&str> = words[i..].iter().map(String::as_str).collect();
    let at_time = |ws: &[&str]| -> Result<Option<(u32, u32)>, ScheduleError> {
        let ws: Vec<&str> = ws
            .iter()
            .copied()
            .filter(|w| !["at", "@", "o'clock", "oclock"].contains(w))
            .collect();
        match ws.as_slice() {
            [] => Ok(None),
            [t] => time_of_day(t, None)
                .map(|(t, _)| Some(t))
                .ok_or_else(not_understood),
            [t, n] => match time_of_day(t, Some(n)) {
                Some((t, true)) => Ok(Some(t)),
                _ => Err(not_understood()),
            },
            _ => Err(not_understood()),
        }
    };
    let hm = |t: Option<(u32, u32)>| t.unwrap_or((9, 0));
    let fmt_hm = |(h, m): (u32, u32)| format!("{h:02}:{m:02}");
    let (cron, description) = match rest.first().copied() {
        Some("minute") => ("0 * * * * *".to_owned(), "every minute".to_owned()),
        Some("hour") | Some("hourly") => {
            let mut minute = 0;
            let tail = &rest[1..];
            let tail: Vec<&str> = tail
                .iter()
                .copied()
                .filter(|w| !["at", "past", "minute", "on"].contains(w))
                .collect();
            if let [m] = tail.as_slice() {
                let m = m.trim_start_matches(':');
                minute = m
                    .parse::<u32>()
                    .ok()
                    .filter(|m| *m < 60)
                    .ok_or_else(not_understood)?;
            } else if !tail.is_empty() {
                return Err(not_understood());
            }
            (
                format!("0 {minute} * * * *"),
                format!("every hour at minute {minute:02}"),
            )
        }
        Some(n) if n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty() => {
            let k: u32 = n.parse().map_err(|_| not_understood())?;
            match rest.get(1).copied() {
                Some("minute" | "minutes" | "min" | "mins") if rest.len() == 2 => {
                    if k == 0 || k > 59 || 60 % k != 0 {
                        return Err(ScheduleError::NotUnderstood(format!(
                            "every {k} minutes does not divide an hour evenly; use 1, 2, 3, 4, 5, 6, 10, 12, 15, 20 or 30, or a cron expression"
                        )));
                    }
                    (format!("0 */{k} * * * *"), format!("every {k} minutes"))
                }
                Some("hour" | "hours") if rest.len() == 2 => {
                    if k == 0 || k > 23 || 24 % k != 0 {
                        return Err(ScheduleError::NotUnderstood(format!(
                            "every {k} hours does not divide a day evenly; use 1, 2, 3, 4, 6, 8 or 12, or a cron expression"
                        )));
                    }
                    (format!("0 0 */{k} * * *"), format!("every {k} hours"))
                }
                _ => return Err(not_understood()),
            }
        }
        Some("day" | "daily" | "morning" | "evening" | "night") => {
            let t = hm(at_time(&rest[1..])?);
            (
                format!("0 {} {} * * *", t.1, t.0),
                format!("every day at {}", fmt_hm(t)),
            )
        }
        Some("weekday" | "weekdays" | "workday" | "workdays") => {
            let t = hm(at_time(&rest[1..])?);
            (
                format!("0 {} {} * * MON-FRI", t.1, t.0),
                format!("every weekday (Mon–Fri) at {}", fmt_hm(t)),
            )
        }
        Some("weekend" | "weekends") => {
            let t = hm(at_time(&rest[1..])?);
            (
                format!("0 {} {} * * SAT,SUN", t.1, t.0),
                format!("every weekend day at {}", fmt_hm(t)),
            )
        }
        Some("week" | "weekly") => {
            // "every week on friday at 17:00"
            let tail: Vec<&str> = rest[1..].iter().copied().filter(|w| *w != "on").collect();
            let Some((code, name)) = tail.first().and_then(|w| weekday(w)) else {
                return Err(not_understood());
            };
            let t = hm(at_time(&tail[1..])?);
            (
                format!("0 {} {} * * {code}", t.1, t.0),
                format!("every {name} at {}", fmt_hm(t)),
            )
        }
        Some("month" | "monthly") => {
            // "every month on the 1st at 9"
            let tail: Vec<&str> = rest[1..]
                .iter()
                .copied()
                .filter(|w| !["on", "the", "day"].contains(w))
                .collect();
            let Some(first) = tail.first() else {
                return Err(not_understood());
            };
            let d: u32 = first
                .trim_end_matches(|c: char| c.is_ascii_alphabetic())
                .parse()
                .map_err(|_| not_understood())?;
            if !(1..=31).contains(&d) {
                return Err(not_understood());
            }
            let t = hm(at_time(&tail[1..])?);
            (
                format!("0 {} {} {d} * *", t.1, t.0),
                format!("every month on day {d} at {}", fmt_hm(t)),
            )
        }
        Some(w) if weekday(w).is_some() => {
            let mut codes = Vec::new();
            let mut names = Vec::new();
            let mut j = 0;
            while j < rest.len() {
                let w = rest[j];
                if w == "and" || w == "," {
                    j += 1;
                    continue;
                }
                match weekday(w) {
                    Some((c, n)) => {
                        if !codes.contains(&c) {
                            codes.push(c);
                            names.push(n);
                        }
                        j += 1;
                    }
                    None => break,
                }
            }
            let t = hm(at_time(&rest[j..])?);
            (
                format!("0 {} {} * * {}", t.1, t.0, codes.join(",")),
                format!("every {} at {}", names.join(" and "), fmt_hm(t)),
            )
        }
        _ => return Err(not_understood()),
    };
    let c = Cadence::new(&cron, tz.unwrap_or(Tz::UTC))?;
    Ok(WhenSpec {
        cron: c.expression().to_owned(),
        tz,
        description,
    })
}

/// What a schedule does when occurrences were missed while no Krake was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CatchUp {
    /// Run once for all the missed occurrences (the default).
    #[default]
    Once,
    /// Skip missed occurrences; wait for the next one.
    Skip,
}

impl CatchUp {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::Once => "once",
            CatchUp::Skip => "skip",
        }
    }

    /// Parses `once` or `skip`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "once" => Some(CatchUp::Once),
            "skip" => Some(CatchUp::Skip),
            _ => None,
        }
    }
}

impl fmt::Display for CatchUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Who runs a schedule's task and why: the coordinator's choice, recorded on the schedule and
/// on every run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The agent's name.
    pub agent: String,
    /// The role asked for, if the task named a role rather than an agent.
    pub role: Option<String>,
    /// Why this agent: "named in the task", "the data analyst in lunavo", ….
    pub reason: String,
}

/// A schedule as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Short id.
    pub id: ScheduleId,
    /// The config key for schedules defined in the config file; `None` for chat-made ones.
    pub name: Option<String>,
    /// The workspace the task belongs to.
    pub workspace: WorkspaceSlug,
    /// Who runs it.
    pub assignment: Assignment,
    /// What to do.
    pub task: String,
    /// When.
    pub cadence: Cadence,
    /// "every Monday at 09:00".
    pub description: String,
    /// What happens to occurrences missed while Krake was down.
    pub catch_up: CatchUp,
    /// Paused schedules do not run.
    pub paused: bool,
    /// The next occurrence, when active.
    pub next_run_at: Option<Timestamp>,
    /// When it last ran.
    pub last_run_at: Option<Timestamp>,
    /// Who created it.
    pub created_by: String,
}

/// What is needed to create a schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSchedule {
    /// The config key (config-defined schedules only).
    pub name: Option<String>,
    /// The workspace.
    pub workspace: WorkspaceSlug,
    /// Who runs it.
    pub assignment: Assignment,
    /// What to do.
    pub task: String,
    /// When.
    pub cadence: Cadence,
    /// For people.
    pub description: String,
    /// Missed-occurrence policy.
    pub catch_up: CatchUp,
    /// Who creates it.
    pub created_by: String,
    /// The first occurrence.
    pub next_run_at: Option<Timestamp>,
}

/// Why an occurrence ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunTrigger {
    /// It was due.
    Due,
    /// It was missed while Krake was down and runs once now.
    CatchUp,
    /// Someone asked for it (`/schedule run 3`).
    Manual,
}

impl RunTrigger {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunTrigger::Due => "due",
            RunTrigger::CatchUp => "catch-up",
            RunTrigger::Manual => "manual",
        }
    }
}

/// One run of a schedule: the occurrence, the inbox thread it posted and the assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRun {
    /// The schedule.
    pub schedule: ScheduleId,
    /// The occurrence it ran for (for manual runs, when asked).
    pub occurrence_at: Timestamp,
    /// When it ran.
    pub ran_at: Timestamp,
    /// Why.
    pub trigger: RunTrigger,
    /// The agent it was assigned to.
    pub agent: String,
    /// Why that agent.
    pub reason: String,
    /// The inbox thread posted.
    pub thread: Option<ThreadId>,
}

/// Schedules' storage.
#[async_trait]
pub trait ScheduleRepo: Send + Sync {
    /// Stores a new schedule, marking `ctx.inbound` applied in the same transaction.
    async fn create_schedule(
        &self,
        new: &NewSchedule,
        ctx: &crate::ports::WriteCtx,
    ) -> Result<Schedule, RepoError>;
    /// Creates or updates the config-defined schedule `new.name`, keeping its paused state and,
    /// when its timing is unchanged, its next run. Returns it.
    async fn sync_config_schedule(
        &self,
        new: &NewSchedule,
        now: Timestamp,
    ) -> Result<Schedule, RepoError>;
    /// Deletes config-defined schedules whose names are not in `keep`; returns how many.
    async fn prune_config_schedules(&self, keep: &[String]) -> Result<u64, RepoError>;
    /// One schedule.
    async fn get_schedule(&self, id: ScheduleId) -> Result<Option<Schedule>, RepoError>;
    /// Every schedule, by id.
    async fn list_schedules(&self) -> Result<Vec<Schedule>, RepoError>;
    /// Pauses (`next_run_at = None`) or resumes (with the next run given). `None` if absent.
    async fn set_schedule_paused(
        &self,
        id: ScheduleId,
        paused: bool,
        next_run_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Option<Schedule>, RepoError>;
    /// Deletes a schedule and its run history. `false` if absent.
    async fn delete_schedule(&self, id: ScheduleId) -> Result<bool, RepoError>;
    /// Active schedules whose next run is at or before `now`, earliest first.
    async fn due_schedules(&self, now: Timestamp, limit: u32) -> Result<Vec<Schedule>, RepoError>;
    /// The earliest next run of any active schedule.
    async fn next_due(&self) -> Result<Option<Timestamp>, RepoError>;
    /// Claims the occurrence `expected` of schedule `id` by moving its next run to `next`
    /// (a compare-and-set: it fails if another process moved it first), and in the same
    /// transaction records `run` and creates `thread` (if any) in the inbox. Returns `None`
    /// when the claim was lost, else the thread created.
    async fn claim_occurrence(
        &self,
        id: ScheduleId,
        expected: Timestamp,
        next: Option<Timestamp>,
        run: Option<(&ScheduleRun, &NewThread)>,
        now: Timestamp,
    ) -> Result<Option<Option<ThreadId>>, RepoError>;
    /// Records a manual run and creates its thread, without moving the next run; marks
    /// `ctx.inbound` applied in the same transaction.
    async fn record_manual_run(
        &self,
        run: &ScheduleRun,
        thread: &NewThread,
        ctx: &crate::ports::WriteCtx,
    ) -> Result<ThreadId, RepoError>;
    /// The latest runs of a schedule, newest first.
    async fn schedule_runs(
        &self,
        id: ScheduleId,
        limit: u32,
    ) -> Result<Vec<ScheduleRun>, RepoError>;
}

/// A request to create a schedule, as parsed; the service resolves the assignee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRequest {
    /// The agent name or role written, if any.
    pub who: Option<String>,
    /// The workspace named (`in lunavo`), if any.
    pub workspace: Option<WorkspaceSlug>,
    /// The task.
    pub task: String,
    /// When.
    pub when: WhenSpec,
    /// Missed-occurrence policy (`catch-up skip` at the end).
    pub catch_up: CatchUp,
}

/// The `/schedule` family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleCommand {
    /// Create a schedule.
    Create(Box<ScheduleRequest>),
    /// List the schedules with their next runs.
    List,
    /// Pause one.
    Pause(ScheduleId),
    /// Resume one.
    Resume(ScheduleId),
    /// Delete one.
    Delete(ScheduleId),
    /// Run one now (its regular next run stays).
    RunNow(ScheduleId),
}

fn take_number(s: &str) -> Option<(ScheduleId, &str)> {
    let s = s.trim_start();
    let (w, rest) = match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let w = w
        .trim_start_matches('#')
        .trim_end_matches([',', '.', '!', '?']);
    if w.is_empty() || w.len() > 18 || !w.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = w.parse().ok()?;
    (n > 0).then_some((ScheduleId(n), rest))
}

const WHEN_STARTS: &[&str] = &[
    "every", "each", "daily", "hourly", "weekly", "monthly", "cron",
];

const QUOTES: &[char] = &['"', '“', '”', '„', '«', '»'];

/// Parses the arguments of `/schedule` (and natural phrasings starting with "every …").
/// `Err` carries the problem in plain words.
pub fn parse_schedule_command(
    args: &str,
    workspaces: &[Workspace],
) -> Result<ScheduleCommand, String> {
    let args = args.trim();
    let (head, rest) = match args.find(char::is_whitespace) {
        Some(i) => (&args[..i], &args[i..]),
        None => (args, ""),
    };
    let id_cmd = |name: &str, f: fn(ScheduleId) -> ScheduleCommand| match take_number(rest) {
        Some((id, tail)) if tail.trim().is_empty() || tail.trim() == "now" => Ok(f(id)),
        _ => Err(format!(
            "`/schedule {name}` needs a schedule number, e.g. `/schedule {name} 3`"
        )),
    };
    match head.to_lowercase().as_str() {
        "" => {
            return Err(
                "`/schedule` needs who, what and when, e.g. `/schedule dexter \"summarise last week's sales\" every monday 09:00 Europe/Berlin`".to_owned(),
            );
        }
        "list" | "ls" => return Ok(ScheduleCommand::List),
        "pause" | "stop" => return id_cmd("pause", ScheduleCommand::Pause),
        "resume" | "unpause" | "continue" => return id_cmd("resume", ScheduleCommand::Resume),
        "delete" | "remove" | "rm" | "cancel" => return id_cmd("delete", ScheduleCommand::Delete),
        "run" | "now" | "trigger" => return id_cmd("run", ScheduleCommand::RunNow),
        _ => {}
    }
    // A trailing `catch-up skip` / `catch-up once` sets the policy.
    let mut body = args.to_owned();
    let mut catch_up = CatchUp::Once;
    let lower = body.to_lowercase();
    for (suffix, policy) in [
        ("catch-up skip", CatchUp::Skip),
        ("catchup skip", CatchUp::Skip),
        ("catch-up once", CatchUp::Once),
        ("catchup once", CatchUp::Once),
    ] {
        if lower.ends_with(suffix) {
            body.truncate(body.len() - suffix.len());
            catch_up = policy;
            break;
        }
    }
    let body = body.trim();
    let take_ws = |who: &str| -> Result<(Option<String>, Option<WorkspaceSlug>), String> {
        let words: Vec<&str> = who.split_whitespace().collect();
        let mut ws = None;
        let mut kept = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let w = words[i].to_lowercase();
            if (w == "in" || w == "for") && i + 1 < words.len() {
                let tail = words[i + 1..].join(" ").to_lowercase();
                if let Some(found) = workspaces.iter().find(|x| {
                    x.slug.as_str() == tail
                        || x.name.to_lowercase() == tail
                        || x.slug.as_str() == words[i + 1].to_lowercase()
                }) {
                    ws = Some(found.slug.clone());
                    let consumed = if found.slug.as_str() == words[i + 1].to_lowercase() {
                        1
                    } else {
                        words.len() - i - 1
                    };
                    i += 1 + consumed;
                    continue;
                }
                return Err(format!(
                    "`{}` is not a workspace; the workspaces are {}",
                    words[i + 1..].join(" "),
                    workspaces
                        .iter()
                        .map(|w| w.slug.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            kept.push(words[i]);
            i += 1;
        }
        let who = kept.join(" ").trim_start_matches("the ").trim().to_owned();
        Ok(((!who.is_empty()).then_some(who), ws))
    };
    // Form 1: who "task" when
    if let Some(open) = body.find(QUOTES) {
        let after_open = &body[open..];
        let q = after_open.chars().next().map_or(1, char::len_utf8);
        let inner = &after_open[q..];
        let Some(close) = inner.find(QUOTES) else {
            return Err("the task's closing quote is missing".to_owned());
        };
        let task = inner[..close].trim();
        let qc = inner[close..].chars().next().map_or(1, char::len_utf8);
        let when_text = inner[close + qc..].trim();
        if task.is_empty() {
            return Err("the task in quotes is empty".to_owned());
        }
        if when_text.is_empty() {
            return Err(
                "say when to run it, e.g. `every monday 09:00 Europe/Berlin` or `cron 0 9 * * 1-5`"
                    .to_owned(),
            );
        }
        let when = parse_when(when_text).map_err(|e| e.to_string())?;
        let (who, workspace) = take_ws(&body[..open])?;
        return Ok(ScheduleCommand::Create(Box::new(ScheduleRequest {
            who,
            workspace,
            task: task.to_owned(),
            when,
            catch_up,
        })));
    }
    // Form 2: when (have|ask|get|tell) <agent> [to] task  — "every weekday at 8 have Soshie draft today's post"
    let words: Vec<&str> = body.split_whitespace().collect();
    if words
        .first()
        .is_some_and(|w| WHEN_STARTS.contains(&w.to_lowercase().as_str()))
        && let Some(k) = words.iter().position(|w| {
            matches!(
                w.to_lowercase().as_str(),
                "have" | "ask" | "get" | "tell" | "let"
            )
        })
    {
        let when = parse_when(&words[..k].join(" ")).map_err(|e| e.to_string())?;
        let who = words.get(k + 1).map(|w| w.trim_end_matches([',', ':']));
        let mut t = k + 2;
        if words.get(t).is_some_and(|w| w.eq_ignore_ascii_case("to")) {
            t += 1;
        }
        let (who, workspace) = take_ws(who.unwrap_or(""))?;
        let task = words.get(t..).map(|w| w.join(" ")).unwrap_or_default();
        if task.is_empty() {
            return Err(
                "what should be done? e.g. `every weekday at 8 have soshie draft today's post`"
                    .to_owned(),
            );
        }
        return Ok(ScheduleCommand::Create(Box::new(ScheduleRequest {
            who,
            workspace,
            task,
            when,
            catch_up,
        })));
    }
    // Form 3: <agent> [to] task when — the first position where the rest reads as a time wins.
    let mut last_err = None;
    for (k, w) in words.iter().enumerate().skip(1) {
        if !WHEN_STARTS.contains(&w.to_lowercase().as_str()) {
            continue;
        }
        match parse_when(&words[k..].join(" ")) {
            Ok(when) => {
                let who = words[0].trim_end_matches([',', ':']);
                let mut t = 1;
                if words.get(1).is_some_and(|w| w.eq_ignore_ascii_case("to")) {
                    t = 2;
                }
                let task = words.get(t..k).map(|w| w.join(" ")).unwrap_or_default();
                if task.is_empty() {
                    return Err("what should be done? Put the task in quotes: `/schedule dexter \"summarise last week's sales\" every monday 09:00`".to_owned());
                }
                let (who, workspace) = take_ws(who)?;
                return Ok(ScheduleCommand::Create(Box::new(ScheduleRequest {
                    who,
                    workspace,
                    task,
                    when,
                    catch_up,
                })));
            }
            Err(e) => last_err = Some(e.to_string()),
        }
    }
    Err(last_err.unwrap_or_else(|| {
        "write who, the task in quotes and when, e.g. `/schedule dexter \"summarise last week's sales\" every monday 09:00 Europe/Berlin`".to_owned()
    }))
}

/// Natural phrasings about existing schedules: "pause schedule 3", "run schedule 3 now",
/// "delete schedule 3", "resume schedule 3", "list schedules", "my schedules".
pub fn parse_natural_schedule(text: &str) -> Option<ScheduleCommand> {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    match words.as_slice() {
        ["schedules"] | ["list", "schedules"] | ["show", "schedules"] | ["my", "schedules"] => {
            return Some(ScheduleCommand::List);
        }
        _ => {}
    }
    let pos = words
        .iter()
        .position(|w| *w == "schedule" || *w == "schedules")?;
    if pos == 0 || pos > 2 {
        return None;
    }
    let verb = words[0];
    let joined = words[pos + 1..].join(" ");
    let (id, tail) = take_number(&joined)?;
    if !(tail.trim().is_empty() || tail.trim() == "now") {
        return None;
    }
    Some(match verb {
        "pause" | "stop" => ScheduleCommand::Pause(id),
        "resume" | "unpause" | "restart" => ScheduleCommand::Resume(id),
        "delete" | "remove" | "cancel" => ScheduleCommand::Delete(id),
        "run" | "trigger" => ScheduleCommand::RunNow(id),
        _ => return None,
    })
}

/// Whether a text starts like a schedule ("every weekday at 8 have …").
pub fn starts_like_schedule(text: &str) -> bool {
    let first = text.split_whitespace().next().unwrap_or("").to_lowercase();
    matches!(
        first.as_str(),
        "every" | "each" | "daily" | "hourly" | "weekly" | "monthly"
    ) && text.split_whitespace().any(|w| {
        matches!(
            w.to_lowercase().as_str(),
            "have" | "ask" | "get" | "tell" | "let"
        )
    })
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::default_workspaces;

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
    fn natural_phrasings() {
        let w = parse_when("every monday 09:00 Europe/Berlin").unwrap();
        assert_eq!(w.cron, "0 0 9 * * MON");
        assert_eq!(w.tz, Some(chrono_tz::Europe::Berlin));
        assert_eq!(w.description, "every Monday at 09:00");
        assert_eq!(
            parse_when("every weekday at 8").unwrap().cron,
            "0 0 8 * * MON-FRI"
        );
        assert_eq!(parse_when("daily at 7:30pm").unwrap().cron, "0 30 19 * * *");
        assert_eq!(parse_when("every day at 9 am").unwrap().cron, "0 0 9 * * *");
        assert_eq!(
            parse_when("every 15 minutes").unwrap().cron,
            "0 */15 * * * *"
        );
        assert_eq!(parse_when("every 2 hours").unwrap().cron, "0 0 */2 * * *");
        assert_eq!(parse_when("hourly at :15").unwrap().cron, "0 15 * * * *");
        assert_eq!(
            parse_when("every mon and thu at 17:00 UTC").unwrap().cron,
            "0 0 17 * * MON,THU"
        );
        assert_eq!(
            parse_when("every month on the 1st at 9").unwrap().cron,
            "0 0 9 1 * *"
        );
        assert_eq!(
            parse_when("every week on friday at 16:30").unwrap().cron,
            "0 30 16 * * FRI"
        );
        let w = parse_when("cron 0 9 * * 1-5 America/New_York").unwrap();
        assert_eq!(w.cron, "0 0 9 * * MON-FRI");
        assert_eq!(w.tz, Some(chrono_tz::America::New_York));
        assert!(parse_when("every blue moon").is_err());
        assert!(parse_when("every 7 minutes").is_err());
        assert!(parse_when("every day at 25:00").is_err());
    }

    #[test]
    fn schedule_commands() {
        let ws = default_workspaces();
        let Ok(ScheduleCommand::Create(r)) = parse_schedule_command(
            "dexter \"summarise last week's sales\" every monday 09:00 Europe/Berlin",
            &ws,
        ) else {
            panic!()
        };
        assert_eq!(r.who.as_deref(), Some("dexter"));
        assert_eq!(r.task, "summarise last week's sales");
        assert_eq!(r.when.cron, "0 0 9 * * MON");
        assert_eq!(r.catch_up, CatchUp::Once);
        let Ok(ScheduleCommand::Create(r)) =
            parse_schedule_command("every weekday at 8 have Soshie draft today's post", &ws)
        else {
            panic!()
        };
        assert_eq!(r.who.as_deref(), Some("Soshie"));
        assert_eq!(r.task, "draft today's post");
        let Ok(ScheduleCommand::Create(r)) = parse_schedule_command(
            "data analyst in lunavo \"weekly KPIs\" cron 0 9 * * 1 catch-up skip",
            &ws,
        ) else {
            panic!()
        };
        assert_eq!(r.who.as_deref(), Some("data analyst"));
        assert_eq!(r.workspace.as_ref().map(|w| w.as_str()), Some("lunavo"));
        assert_eq!(r.catch_up, CatchUp::Skip);
        let Ok(ScheduleCommand::Create(r)) =
            parse_schedule_command("penn to write a newsletter every friday at 10", &ws)
        else {
            panic!()
        };
        assert_eq!(r.task, "write a newsletter");
        let Ok(ScheduleCommand::Create(r)) =
            parse_schedule_command("\"weekly sales summary\" every monday at 9", &ws)
        else {
            panic!()
        };
        assert_eq!(r.who, None);
        assert_eq!(
            parse_schedule_command("pause 3", &ws),
            Ok(ScheduleCommand::Pause(ScheduleId(3)))
        );
        assert_eq!(
            parse_schedule_command("run #4 now", &ws),
            Ok(ScheduleCommand::RunNow(ScheduleId(4)))
        );
        assert!(parse_schedule_command("pause", &ws).is_err());
        let e = parse_schedule_command("dexter \"x\" cron 0 25 * * *", &ws).unwrap_err();
        assert!(e.contains("0 25 * * *"), "{e}");
        let e = parse_schedule_command("dexter \"x\" every day at 9 Narnia/Cair", &ws).unwrap_err();
        assert!(e.contains("Narnia/Cair"), "{e}");
        assert!(parse_schedule_command("dexter in narnia \"x\" every day", &ws).is_err());
        assert_eq!(
            parse_natural_schedule("pause schedule 3"),
            Some(ScheduleCommand::Pause(ScheduleId(3)))
        );
        assert_eq!(
            parse_natural_schedule("run schedule #2 now"),
            Some(ScheduleCommand::RunNow(ScheduleId(2)))
        );
        assert_eq!(parse_natural_schedule("pause the music"), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        #[test]
        fn when_parsing_never_panics(s in "(cron |every |daily |)[0-9*/,\\- a-zA-Z:?#LW]{0,40}") {
            let _ = parse_when(&s);
        }
    }

    #[test]
    fn counts_missed_occurrences() {
        let c = Cadence::new("0 9 * * *", Tz::UTC).unwrap();
        let from = ts("2026-11-20T09:00:00Z");
        assert_eq!(c.count_between(from, ts("2026-11-23T12:00:00Z"), 100), 3);
        assert_eq!(c.count_between(from, ts("2026-11-23T12:00:00Z"), 2), 2);
    }
}
