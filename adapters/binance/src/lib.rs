//! A read-only client of Binance's spot REST API, for Krake's portfolio reports.
//!
//! Read-only by construction and by check:
//! - the crate only sends `GET` requests, to four endpoints, and has no code for any order,
//!   withdrawal or transfer endpoint:
//!   - `GET /api/v3/time` (weight 1): Binance's clock, so signed requests carry a
//!     `timestamp` Binance accepts even when ours is off;
//!   - `GET /sapi/v1/account/apiRestrictions` (signed, weight 1): what the key may do;
//!     [`BinanceClient::check_key_is_read_only`] refuses a key that can trade, withdraw,
//!     transfer, or use margin, futures or options;
//!   - `GET /api/v3/account` (signed, weight 20): the balances;
//!   - `GET /api/v3/ticker/price` (weight 4): every symbol's last price, to value them.
//! - [`BinanceClient::portfolio`] values the balances in one quote asset (USDT by default):
//!   directly, through the inverted pair, or through BTC; an asset with no price route is
//!   listed as unpriced, never counted as 0.
//!
//! Signed requests carry `recvWindow`, `timestamp` and last a `signature` ([`sign`]: HMAC-SHA256
//! of the query with the API secret), with the key in `X-MBX-APIKEY`. The client keeps the
//! last `X-MBX-USED-WEIGHT-1M`, and after a 429 (rate limit) or 418 (IP ban) sends nothing at
//! all until `Retry-After` has passed, as Binance requires. Answers are bounded in size and
//! time. Neither the secret, the key nor a signed query ever appears in an error or a log.
//!
//! Layout: [`client`] (HTTP, clock, rate limits), [`restrictions`] (the read-only verdict),
//! [`portfolio`] (balances, prices, valuation), [`sign`], [`config`], [`error`], and
//! [`poller`]: `[binance]` in the config file and the task `krake serve` runs to store the
//! portfolio's value as the metric `binance.portfolio_value`.

pub mod client;
pub mod config;
pub mod error;
pub mod poller;
pub mod portfolio;
pub mod restrictions;
pub mod sign;

pub use client::{BinanceClient, MAX_BODY_BYTES};
pub use config::BinanceConfig;
pub use error::BinanceError;
pub use krake_core::secret::Secret;
pub use portfolio::{AssetValue, Balance, Portfolio, Prices};
pub use restrictions::KeyRestrictions;
pub use sign::sign;
