//! [`parse_when`]: natural phrasings ("every monday 09:00 Europe/Berlin", "every weekday at
//! 8") and raw cron to a [`WhenSpec`].

use super::{Cadence, ScheduleError, parse_timezone};
use chrono_tz::Tz;

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

#[cfg(test)]
mod tests {
    use super::*;

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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        #[test]
        fn when_parsing_never_panics(s in "(cron |every |daily |)[0-9*/,\\- a-zA-Z:?#LW]{0,40}") {
            let _ = parse_when(&s);
        }
    }
}
