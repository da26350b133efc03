//! [`BinanceClient`]: GET requests to Binance's spot API, signed where Binance asks, with
//! the server's clock, its rate limits and bounded answers.

use crate::Secret;
use crate::config::BinanceConfig;
use crate::error::BinanceError;
use crate::portfolio::{Balance, Portfolio, Prices, parse_decimal};
use crate::restrictions::{self, KeyRestrictions};
use crate::sign::sign;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use serde::Deserialize;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::time::Instant;

/// `GET`, weight 1: Binance's clock.
const TIME: &str = "/api/v3/time";
/// `GET`, signed, weight 20: balances.
const ACCOUNT: &str = "/api/v3/account";
/// `GET`, weight 4 for every symbol: last prices.
const TICKER_PRICE: &str = "/api/v3/ticker/price";
/// `GET`, signed, weight 1: what the API key may do.
const API_RESTRICTIONS: &str = "/sapi/v1/account/apiRestrictions";

/// The largest response body read; the price list of every symbol is a few hundred KiB.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// How long to back off after a 429 or 418 without a readable `Retry-After`.
pub const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(60);
/// The response header with the request weight this IP used in the current minute.
pub const USED_WEIGHT_HEADER: &str = "x-mbx-used-weight-1m";
/// The weight this client lets an IP use per minute (Binance allows 6,000): at or past it,
/// nothing is sent until the next minute, so a poll never draws a 429 for other users of the
/// same address.
pub const WEIGHT_BUDGET_1M: u32 = 5_000;
/// Binance's error code for a `timestamp` outside `recvWindow`.
const INVALID_TIMESTAMP: i64 = -1021;

/// A read-only client of Binance's spot REST API. It only ever sends `GET` requests to the
/// four endpoints listed in the crate documentation. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct BinanceClient {
    http: reqwest::Client,
    base_url: String,
    /// `X-MBX-APIKEY`, marked sensitive so it never prints.
    api_key: HeaderValue,
    api_secret: Secret,
    quote: String,
    recv_window_ms: u64,
    state: Mutex<State>,
}

/// What the client learned from Binance's answers. Never held across an `.await`.
#[derive(Debug, Default)]
struct State {
    /// Binance's clock minus ours, in milliseconds; `None` until first synced.
    offset_ms: Option<i64>,
    /// A 429 or 418 back-off in force.
    backoff: Option<Backoff>,
    /// The last `X-MBX-USED-WEIGHT-1M` seen.
    used_weight: Option<u32>,
}

#[derive(Debug, Clone, Copy)]
struct Backoff {
    until: Instant,
    banned: bool,
}

impl Backoff {
    fn error(self, left: Duration) -> BinanceError {
        if self.banned {
            BinanceError::Banned { retry_after: left }
        } else {
            BinanceError::RateLimited { retry_after: left }
        }
    }
}

#[derive(Deserialize)]
struct ServerTime {
    #[serde(rename = "serverTime")]
    server_time: i64,
}

#[derive(Deserialize)]
struct AccountWire {
    balances: Vec<BalanceWire>,
}

#[derive(Deserialize)]
struct BalanceWire {
    asset: String,
    free: String,
    locked: String,
}

#[derive(Deserialize)]
struct TickerPrice {
    symbol: String,
    price: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: i64,
    msg: String,
}

impl BinanceClient {
    /// A client for `config`, checked; nothing is sent until a method is called.
    pub fn new(config: BinanceConfig) -> Result<Self, BinanceError> {
        let base_url = config.checked_base_url()?;
        let quote = config.checked_quote_asset()?;
        config.check_rest()?;
        let mut api_key = HeaderValue::from_str(config.api_key.expose().trim()).map_err(|_| {
            BinanceError::Config("api_key has characters not allowed in a header".into())
        })?;
        api_key.set_sensitive(true);
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            // A redirect could carry the key header to another host.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("krake-binance/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BinanceError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base_url,
            api_key,
            api_secret: config.api_secret,
            quote,
            recv_window_ms: config.recv_window_ms,
            state: Mutex::new(State::default()),
        })
    }

    /// The asset portfolios are valued in (upper case).
    pub fn quote_asset(&self) -> &str {
        &self.quote
    }

    /// The request weight this IP used in the current minute, from the last answer's
    /// `X-MBX-USED-WEIGHT-1M` (Binance's limit is 6000 a minute).
    pub fn used_weight(&self) -> Option<u32> {
        self.state().used_weight
    }

    /// Binance's clock minus ours in milliseconds, once synced.
    pub fn time_offset_ms(&self) -> Option<i64> {
        self.state().offset_ms
    }

    /// Asks Binance for its time (`GET /api/v3/time`) and keeps the difference to ours, used
    /// for the `timestamp` of signed requests. Done by the first signed request and again
    /// when Binance says a timestamp is outside `recvWindow`.
    #[tracing::instrument(skip(self))]
    pub async fn sync_time(&self) -> Result<i64, BinanceError> {
        let sent = now_ms();
        let body = self.get(TIME, None).await?;
        let received = now_ms();
        let time: ServerTime = decode(TIME, &body)?;
        // Binance read its clock about halfway through the round trip.
        let offset = time.server_time - (sent + (received - sent) / 2);
        self.state().offset_ms = Some(offset);
        tracing::debug!(offset_ms = offset, "synced with Binance's clock");
        Ok(offset)
    }

    /// Checks that the API key can read the account and do nothing else (signed
    /// `GET /sapi/v1/account/apiRestrictions`): [`BinanceError::KeyCanTrade`] names every
    /// trade, withdrawal, transfer, margin, futures or options permission that is on, and
    /// [`BinanceError::KeyCannotRead`] says reading is off. Call it before using a key.
    #[tracing::instrument(skip(self))]
    pub async fn check_key_is_read_only(&self) -> Result<KeyRestrictions, BinanceError> {
        let body = self.signed_get(API_RESTRICTIONS, "").await?;
        let map: serde_json::Map<String, serde_json::Value> = decode(API_RESTRICTIONS, &body)?;
        restrictions::check(API_RESTRICTIONS, &map)
    }

    /// The spot account's non-zero balances (signed `GET /api/v3/account` with
    /// `omitZeroBalances=true`).
    #[tracing::instrument(skip(self))]
    pub async fn account(&self) -> Result<Vec<Balance>, BinanceError> {
        let body = self.signed_get(ACCOUNT, "omitZeroBalances=true").await?;
        let account: AccountWire = decode(ACCOUNT, &body)?;
        account
            .balances
            .into_iter()
            .map(|b| {
                let free = decimal(ACCOUNT, &b.asset, "free", &b.free)?;
                let locked = decimal(ACCOUNT, &b.asset, "locked", &b.locked)?;
                Ok(Balance {
                    asset: b.asset,
                    free,
                    locked,
                })
            })
            .collect()
    }

    /// The last price of every symbol (`GET /api/v3/ticker/price`, unsigned).
    #[tracing::instrument(skip(self))]
    pub async fn prices(&self) -> Result<Prices, BinanceError> {
        let body = self.get(TICKER_PRICE, None).await?;
        let tickers: Vec<TickerPrice> = decode(TICKER_PRICE, &body)?;
        tickers
            .into_iter()
            .map(|t| {
                let price = decimal(TICKER_PRICE, &t.symbol, "price", &t.price)?;
                Ok((t.symbol, price))
            })
            .collect()
    }

    /// The balances valued in the quote asset (see [`Portfolio::value`]): the account first,
    /// then the prices, one after the other so a rate limit on the first spares the second.
    #[tracing::instrument(skip(self))]
    pub async fn portfolio(&self) -> Result<Portfolio, BinanceError> {
        let balances = self.account().await?;
        let prices = self.prices().await?;
        let at_ms = now_ms() + self.time_offset_ms().unwrap_or(0);
        Ok(Portfolio::value(&self.quote, &balances, &prices, at_ms))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // The state stays consistent whatever panicked while holding it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A signed GET: `params`, `recvWindow` and `timestamp` (ours plus Binance's offset),
    /// then `signature` last. A timestamp Binance finds outside `recvWindow` (-1021) makes
    /// the client resync its clock and try once more.
    async fn signed_get(&self, path: &'static str, params: &str) -> Result<Vec<u8>, BinanceError> {
        let mut offset = match self.time_offset_ms() {
            Some(o) => o,
            None => self.sync_time().await?,
        };
        let mut resynced = false;
        loop {
            let mut query = String::from(params);
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(&format!(
                "recvWindow={}&timestamp={}",
                self.recv_window_ms,
                now_ms() + offset
            ));
            let signature = sign(self.api_secret.expose(), &query);
            query.push_str("&signature=");
            query.push_str(&signature);
            match self.get(path, Some(&query)).await {
                Err(BinanceError::Api {
                    code: INVALID_TIMESTAMP,
                    ..
                }) if !resynced => {
                    tracing::info!(
                        endpoint = path,
                        "timestamp outside recvWindow: resyncing clock"
                    );
                    resynced = true;
                    offset = self.sync_time().await?;
                }
                other => return other,
            }
        }
    }

    /// One GET (the key header on signed requests), unless a 429/418 back-off is in force.
    /// Notes the used weight; turns 429/418 into a back-off and errors into [`BinanceError`].
    async fn get(
        &self,
        path: &'static str,
        signed_query: Option<&str>,
    ) -> Result<Vec<u8>, BinanceError> {
        self.check_backoff()?;
        let mut request = match signed_query {
            Some(q) => self
                .http
                .get(format!("{}{path}?{q}", self.base_url))
                .header("X-MBX-APIKEY", self.api_key.clone()),
            None => self.http.get(format!("{}{path}", self.base_url)),
        };
        request = request.header(reqwest::header::ACCEPT, "application/json");
        let response = request.send().await.map_err(|e| http_error(path, e))?;
        let status = response.status();
        self.note_weight(response.headers());
        tracing::debug!(
            endpoint = path,
            status = status.as_u16(),
            "Binance answered"
        );
        if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::IM_A_TEAPOT {
            let retry_after = retry_after(response.headers());
            let banned = status == StatusCode::IM_A_TEAPOT;
            tracing::warn!(
                endpoint = path,
                banned,
                retry_after_s = retry_after.as_secs(),
                "Binance rate limit: backing off"
            );
            return Err(self.start_backoff(retry_after, banned));
        }
        let body = read_bounded(path, response).await?;
        if status.is_success() {
            return Ok(body);
        }
        Err(match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(e) => BinanceError::Api {
                endpoint: path,
                status: status.as_u16(),
                code: e.code,
                msg: e.msg,
            },
            Err(_) => BinanceError::Status {
                endpoint: path,
                status: status.as_u16(),
            },
        })
    }

    fn check_backoff(&self) -> Result<(), BinanceError> {
        let mut state = self.state();
        if let Some(backoff) = state.backoff {
            let now = Instant::now();
            if now < backoff.until {
                return Err(backoff.error(backoff.until - now));
            }
            state.backoff = None;
        }
        Ok(())
    }

    fn start_backoff(&self, retry_after: Duration, banned: bool) -> BinanceError {
        let new = Backoff {
            until: Instant::now() + retry_after,
            banned,
        };
        let mut state = self.state();
        // A longer back-off already running (from a request in flight alongside) stands.
        let kept = match state.backoff {
            Some(old) => Backoff {
                until: old.until.max(new.until),
                banned: old.banned || new.banned,
            },
            None => new,
        };
        state.backoff = Some(kept);
        kept.error(retry_after)
    }

    fn note_weight(&self, headers: &HeaderMap) {
        if let Some(w) = headers
            .get(USED_WEIGHT_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok())
        {
            self.state().used_weight = Some(w);
            if w >= WEIGHT_BUDGET_1M {
                // Binance counts weight per wall-clock minute: wait for the next one.
                let into_minute = u64::try_from(now_ms().rem_euclid(60_000)).unwrap_or(0);
                let left = Duration::from_millis(60_000 - into_minute + 500);
                tracing::warn!(
                    used_weight = w,
                    wait_s = left.as_secs(),
                    "near Binance's request weight limit: waiting for the next minute"
                );
                let _ = self.start_backoff(left, false);
            }
        }
    }
}

/// The body, refused past [`MAX_BODY_BYTES`] before or while reading it.
async fn read_bounded(
    endpoint: &'static str,
    mut response: reqwest::Response,
) -> Result<Vec<u8>, BinanceError> {
    let too_large = BinanceError::TooLarge {
        endpoint,
        limit: MAX_BODY_BYTES,
    };
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64)
    {
        return Err(too_large);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| http_error(endpoint, e))?
    {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A transport error without its URL, which may hold a signed query.
fn http_error(endpoint: &'static str, e: reqwest::Error) -> BinanceError {
    BinanceError::Http {
        endpoint,
        source: e.without_url(),
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    endpoint: &'static str,
    body: &[u8],
) -> Result<T, BinanceError> {
    serde_json::from_slice(body).map_err(|e| BinanceError::Decode {
        endpoint,
        reason: e.to_string(),
    })
}

fn decimal(
    endpoint: &'static str,
    owner: &str,
    field: &str,
    text: &str,
) -> Result<f64, BinanceError> {
    parse_decimal(text).ok_or_else(|| BinanceError::Decode {
        endpoint,
        reason: format!(
            "{owner} {field} is not a decimal number: {:?}",
            text.chars().take(40).collect::<String>()
        ),
    })
}

/// `Retry-After` in seconds, else [`DEFAULT_RETRY_AFTER`].
fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(DEFAULT_RETRY_AFTER, Duration::from_secs)
}

/// Our wall clock in Unix milliseconds.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_or_defaults() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), DEFAULT_RETRY_AFTER);
        h.insert(RETRY_AFTER, HeaderValue::from_static(" 7 "));
        assert_eq!(retry_after(&h), Duration::from_secs(7));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h), DEFAULT_RETRY_AFTER);
    }

    #[test]
    fn client_debug_hides_key_and_secret() {
        let config = BinanceConfig::new(Secret::new("key-123"), Secret::new("secret-456"));
        let client = BinanceClient::new(config).unwrap();
        let shown = format!("{client:?}");
        assert!(
            !shown.contains("key-123") && !shown.contains("secret-456"),
            "{shown}"
        );
    }

    #[test]
    fn bad_key_header_is_a_config_error_without_the_key() {
        let config = BinanceConfig::new(Secret::new("bad\nkey"), Secret::new("s"));
        let err = BinanceClient::new(config).unwrap_err();
        assert!(matches!(err, BinanceError::Config(_)));
        assert!(!err.to_string().contains("bad"));
    }
}
