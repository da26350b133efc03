//! # krake-commerce
//!
//! Webhooks from the shops and the print partner. This crate verifies and parses; core
//! ([`krake_core::commerce`]) turns the events into KPIs and work.
//!
//! - [`shopify`]: HMAC verification (current and previous secret) and payload parsing.
//! - [`gelato`]: payload parsing (Gelato signs nothing: a per-workspace path token instead).
//! - [`gelato_api`]: Gelato's Order API, asked before acting on a costly status.
//! - [`shopify_admin`]: Shopify's Admin REST API, for approved refunds and price changes.
//! - [`settings`]: `[shopify]` and `[gelato]` in the config file, read and written back for
//!   `krake config` with every secret as `***`.
//! - [`router`]: `POST /webhooks/shopify` and `POST /webhooks/gelato/{token}`, which answer 200
//!   only after the event is durably stored.

pub mod gelato;
pub mod gelato_api;
pub mod settings;
pub mod shopify;
pub mod shopify_admin;
mod web;

pub use web::{DEFAULT_MAX_EVENT_AGE, MAX_BODY, Secret, WEBHOOK_EVENTS, WebhookConfig, router};

/// Why a payload could not be turned into an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not JSON at all.
    #[error("the body is not valid JSON: {0}")]
    Json(String),
    /// JSON, but a field the event needs is missing or of the wrong type.
    #[error("field `{0}` is missing or invalid")]
    Field(&'static str),
}

/// Reads an RFC 3339 time (`2024-06-26T12:33:21-04:00`): UTC millis, the UTC offset in
/// minutes, and the local calendar day.
pub(crate) fn local_time(s: &str) -> Option<(i64, i32, String)> {
    use chrono::Datelike;
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    let offset = t.offset().local_minus_utc() / 60;
    Some((
        t.timestamp_millis(),
        offset,
        // As `%Y-%m-%d`, without parsing a format string for every webhook.
        format!("{:04}-{:02}-{:02}", t.year(), t.month(), t.day()),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::local_time;

    #[test]
    fn the_day_is_the_shops_local_calendar_day() {
        for (time, day, offset) in [
            ("2024-06-26T23:30:00-04:00", "2024-06-26", -240),
            ("2024-06-27T03:30:00Z", "2024-06-27", 0),
            ("2026-01-01T00:15:00+14:00", "2026-01-01", 840),
            ("0999-03-04T05:06:07+05:30", "0999-03-04", 330),
        ] {
            let (ms, off, d) = local_time(time).unwrap();
            assert_eq!((d.as_str(), off), (day, offset), "{time}");
            let again = chrono::DateTime::parse_from_rfc3339(time).unwrap();
            assert_eq!(ms, again.timestamp_millis());
            assert_eq!(d, again.date_naive().format("%Y-%m-%d").to_string());
        }
        assert!(local_time("yesterday").is_none());
    }
}
