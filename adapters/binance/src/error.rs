//! [`BinanceError`]: everything that can go wrong talking to Binance. No variant carries the
//! API key, the secret, a signature or a signed query string.

use std::time::Duration;

/// An error from [`BinanceClient`](crate::BinanceClient). Endpoints are named by path only.
#[derive(Debug, thiserror::Error)]
pub enum BinanceError {
    /// The configuration cannot work (bad base URL, empty key, out-of-range `recvWindow`).
    #[error("invalid Binance configuration: {0}")]
    Config(String),
    /// The request did not get an answer (connection refused, timeout, broken body).
    #[error("cannot reach Binance ({endpoint}): {source}")]
    Http {
        /// The path asked for.
        endpoint: &'static str,
        /// The transport error, with its URL (and so any signed query) removed.
        #[source]
        source: reqwest::Error,
    },
    /// HTTP 429: too much request weight used. No request is sent until `retry_after` has
    /// passed; until then every call returns this error with the time left.
    #[error("Binance rate limit reached: retry in {}s", retry_after.as_secs())]
    RateLimited {
        /// How long to wait before sending anything.
        retry_after: Duration,
    },
    /// HTTP 418: this IP is banned for ignoring a 429. No request is sent until `retry_after`
    /// has passed; until then every call returns this error with the time left.
    #[error("Binance has banned this IP: retry in {}s", retry_after.as_secs())]
    Banned {
        /// How long the ban lasts.
        retry_after: Duration,
    },
    /// Binance refused the request with its `{"code", "msg"}` error body (for example -1022,
    /// a bad signature: the secret is wrong; -2015, an unknown key or an IP not allowed).
    #[error("Binance refused {endpoint} (HTTP {status}, code {code}): {msg}")]
    Api {
        /// The path asked for.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// Binance's error code (negative).
        code: i64,
        /// Binance's message.
        msg: String,
    },
    /// A non-success status without Binance's error body.
    #[error("Binance answered {endpoint} with HTTP {status}")]
    Status {
        /// The path asked for.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
    },
    /// The response body is larger than [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES).
    #[error("Binance's answer to {endpoint} is larger than {limit} bytes")]
    TooLarge {
        /// The path asked for.
        endpoint: &'static str,
        /// The limit in bytes.
        limit: usize,
    },
    /// The response is not what Binance documents (bad JSON, a missing field, an amount or
    /// price that is not a decimal number).
    #[error("unexpected answer from Binance ({endpoint}): {reason}")]
    Decode {
        /// The path asked for.
        endpoint: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The API key can do more than read: each named permission is switched on. Krake only
    /// works with keys that can neither trade, withdraw nor transfer.
    #[error("the Binance API key is not read-only: it has {} enabled", .0.join(", "))]
    KeyCanTrade(Vec<String>),
    /// The API key cannot read the account (`enableReading` is off).
    #[error("the Binance API key cannot read the account (enableReading is off)")]
    KeyCannotRead,
}
