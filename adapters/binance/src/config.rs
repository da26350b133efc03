//! [`BinanceConfig`]: where Binance is, which key to use, and how to value the portfolio.

use crate::Secret;
use crate::error::BinanceError;
use std::time::Duration;

/// Binance's spot REST API.
pub const DEFAULT_BASE_URL: &str = "https://api.binance.com";
/// The asset portfolios are valued in unless configured otherwise.
pub const DEFAULT_QUOTE_ASSET: &str = "USDT";
/// How long after its `timestamp` Binance accepts a signed request (Binance's own default).
pub const DEFAULT_RECV_WINDOW_MS: u64 = 5000;
/// The longest `recvWindow` Binance accepts.
pub const MAX_RECV_WINDOW_MS: u64 = 60_000;
/// How long one request may take, connection included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Settings of a [`BinanceClient`](crate::BinanceClient). `Debug` prints the key and secret as
/// `***`.
#[derive(Debug, Clone)]
pub struct BinanceConfig {
    /// The API root, [`DEFAULT_BASE_URL`] by default. `https`, or `http` on a loopback
    /// address only (local fakes in tests).
    pub base_url: String,
    /// The API key, sent as `X-MBX-APIKEY`.
    pub api_key: Secret,
    /// The API secret, which signs requests and is never sent.
    pub api_secret: Secret,
    /// The asset balances are valued in, [`DEFAULT_QUOTE_ASSET`] by default.
    pub quote_asset: String,
    /// `recvWindow` of signed requests in milliseconds, 1 to [`MAX_RECV_WINDOW_MS`].
    pub recv_window_ms: u64,
    /// The timeout of each request.
    pub timeout: Duration,
}

impl BinanceConfig {
    /// A configuration for a key and secret with every other setting at its default.
    pub fn new(api_key: Secret, api_secret: Secret) -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key,
            api_secret,
            quote_asset: DEFAULT_QUOTE_ASSET.to_owned(),
            recv_window_ms: DEFAULT_RECV_WINDOW_MS,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The base URL without a trailing slash, checked: `https`, or `http` to a loopback host.
    pub(crate) fn checked_base_url(&self) -> Result<String, BinanceError> {
        let bad = |why: &str| BinanceError::Config(format!("base_url {why}"));
        let url = reqwest::Url::parse(self.base_url.trim())
            .map_err(|e| bad(&format!("is not a URL: {e}")))?;
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("must not have a query or fragment"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry credentials"));
        }
        let loopback = match url.host() {
            Some(url::Host::Domain(d)) => d == "localhost",
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => return Err(bad("has no host")),
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            "http" => return Err(bad("must use https (http only for a loopback test server)")),
            _ => return Err(bad("must be an https URL")),
        }
        Ok(url.as_str().trim_end_matches('/').to_owned())
    }

    /// The quote asset in upper case, checked to be a plain asset code.
    pub(crate) fn checked_quote_asset(&self) -> Result<String, BinanceError> {
        let quote = self.quote_asset.trim().to_ascii_uppercase();
        if quote.is_empty() || quote.len() > 20 || !quote.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(BinanceError::Config(format!(
                "quote_asset {quote:?} is not an asset code (letters and digits)"
            )));
        }
        Ok(quote)
    }

    /// The other settings, checked.
    pub(crate) fn check_rest(&self) -> Result<(), BinanceError> {
        if self.api_key.expose().trim().is_empty() {
            return Err(BinanceError::Config("api_key is empty".into()));
        }
        if self.api_secret.expose().is_empty() {
            return Err(BinanceError::Config("api_secret is empty".into()));
        }
        if !(1..=MAX_RECV_WINDOW_MS).contains(&self.recv_window_ms) {
            return Err(BinanceError::Config(format!(
                "recv_window_ms must be 1 to {MAX_RECV_WINDOW_MS}, not {}",
                self.recv_window_ms
            )));
        }
        if self.timeout.is_zero() {
            return Err(BinanceError::Config("timeout must not be zero".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(base_url: &str) -> BinanceConfig {
        BinanceConfig {
            base_url: base_url.into(),
            ..BinanceConfig::new(Secret::new("key-123"), Secret::new("secret-456"))
        }
    }

    #[test]
    fn debug_hides_key_and_secret() {
        let shown = format!("{:?}", config(DEFAULT_BASE_URL));
        assert!(!shown.contains("key-123") && !shown.contains("secret-456"));
        assert!(shown.contains("***"));
    }

    #[test]
    fn base_url_must_be_https_unless_loopback() {
        assert_eq!(
            config("https://api.binance.com/")
                .checked_base_url()
                .unwrap(),
            "https://api.binance.com"
        );
        assert!(config("http://127.0.0.1:8080").checked_base_url().is_ok());
        assert!(config("http://localhost:1").checked_base_url().is_ok());
        assert!(config("http://[::1]:1").checked_base_url().is_ok());
        for bad in [
            "http://api.binance.com",
            "ftp://127.0.0.1",
            "not a url",
            "https://u:p@api.binance.com",
            "https://api.binance.com/?x=1",
        ] {
            assert!(
                matches!(config(bad).checked_base_url(), Err(BinanceError::Config(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn quote_asset_and_limits_are_checked() {
        let mut c = config(DEFAULT_BASE_URL);
        c.quote_asset = " eur ".into();
        assert_eq!(c.checked_quote_asset().unwrap(), "EUR");
        c.quote_asset = "US DT".into();
        assert!(c.checked_quote_asset().is_err());
        let mut c = config(DEFAULT_BASE_URL);
        assert!(c.check_rest().is_ok());
        c.recv_window_ms = 60_001;
        assert!(c.check_rest().is_err());
        c.recv_window_ms = 5000;
        c.api_secret = Secret::new("");
        assert!(c.check_rest().is_err());
    }
}
