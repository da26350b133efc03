//! `[binance]` in the config and its poller: polls the read-only portfolio and stores its value as the workspace's
//! `binance.portfolio_value` history. A key that can trade or withdraw stops it for good.

use crate::{BinanceClient, BinanceConfig, BinanceError};
use krake_core::Krake;
use krake_core::secret::Secret;
use krake_core::workspace::WorkspaceSlug;
use serde::{Deserialize, Serialize};
use std::time::Duration;
use tokio::sync::watch;

/// `[binance]`: the portfolio's value as a KPI history of one workspace. The key and secret
/// come from the environment, never from the file.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BinanceFile {
    /// The workspace whose `binance` KPI it feeds (default `lunabots`).
    #[serde(default = "default_binance_workspace")]
    pub workspace: String,
    /// The API's address (default `https://api.binance.com`).
    #[serde(default = "default_binance_url")]
    pub base_url: String,
    /// The asset values are shown in (default `USDT`).
    #[serde(default = "default_binance_quote")]
    pub quote_asset: String,
    /// Seconds between polls (default 900, at least 60).
    #[serde(default = "default_binance_poll")]
    pub poll_secs: u64,
    /// The variable holding the API key (default `KRAKE_BINANCE_API_KEY`).
    #[serde(default = "default_binance_key_env")]
    pub api_key_env: String,
    /// The variable holding the API secret (default `KRAKE_BINANCE_API_SECRET`).
    #[serde(default = "default_binance_secret_env")]
    pub api_secret_env: String,
}

fn default_binance_workspace() -> String {
    "lunabots".into()
}
fn default_binance_url() -> String {
    "https://api.binance.com".into()
}
fn default_binance_quote() -> String {
    "USDT".into()
}
fn default_binance_poll() -> u64 {
    900
}
fn default_binance_key_env() -> String {
    "KRAKE_BINANCE_API_KEY".into()
}
fn default_binance_secret_env() -> String {
    "KRAKE_BINANCE_API_SECRET".into()
}

/// Starts the poller when `[binance]` is configured and its key and secret are set; it
/// stores through `krake` and stops when `stop` changes.
pub fn spawn(
    file: Option<&BinanceFile>,
    krake: Krake,
    mut stop: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let b = file?.clone();
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let (Some(key), Some(secret)) = (var(&b.api_key_env), var(&b.api_secret_env)) else {
        tracing::warn!(
            key = %b.api_key_env,
            secret = %b.api_secret_env,
            "[binance] is configured but its key or secret variable is unset: the portfolio is not polled"
        );
        return None;
    };
    let mut config = BinanceConfig::new(Secret::new(key), Secret::new(secret));
    config.base_url = b.base_url.clone();
    config.quote_asset = b.quote_asset.clone();
    let client = match BinanceClient::new(config) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "[binance] cannot start; the portfolio is not polled");
            return None;
        }
    };
    let ws = WorkspaceSlug::parse(&b.workspace).ok()?;
    let every = Duration::from_secs(b.poll_secs.max(60));
    Some(tokio::spawn(async move {
        let mut read_only = false;
        loop {
            let wait = match poll(&client, &krake, &ws, &mut read_only).await {
                Ok(()) => every,
                Err(None) => return,
                Err(Some(d)) => d,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return,
            }
        }
    }))
}

/// One poll; `Err(None)` stops polling for good, `Err(Some(wait))` tries again after `wait`.
async fn poll(
    client: &BinanceClient,
    krake: &Krake,
    ws: &WorkspaceSlug,
    read_only: &mut bool,
) -> Result<(), Option<Duration>> {
    let retry = |e: &BinanceError| -> Option<Duration> {
        match e {
            BinanceError::KeyCanTrade(_) | BinanceError::KeyCannotRead => {
                tracing::error!(error = %e, "refusing to poll Binance: give Krake a key that can only read (no trading, withdrawals or transfers)");
                None
            }
            BinanceError::RateLimited { retry_after } | BinanceError::Banned { retry_after } => {
                tracing::warn!(error = %e, "Binance asks to wait; polling again after it");
                Some(*retry_after)
            }
            other => {
                tracing::warn!(error = %other, "polling Binance failed; will retry in a minute");
                Some(Duration::from_secs(60))
            }
        }
    };
    if !*read_only {
        client
            .check_key_is_read_only()
            .await
            .map_err(|e| retry(&e))?;
        *read_only = true;
    }
    let p = client.portfolio().await.map_err(|e| retry(&e))?;
    if !p.unpriced.is_empty() {
        tracing::warn!(assets = ?p.unpriced, quote = %p.quote, "Binance holds assets with no price in the quote asset; they are not in the total");
    }
    match krake
        .record_measured(ws, krake_core::kpi::BINANCE_METRIC, p.total)
        .await
    {
        Ok(Ok(_)) => {
            tracing::info!(total = p.total, quote = %p.quote, "Binance portfolio valued");
            Ok(())
        }
        Ok(Err(refused)) => {
            tracing::error!(error = %refused, "the Binance portfolio value was refused");
            Err(None)
        }
        Err(e) => {
            tracing::warn!(error = %e, "storing the Binance portfolio value failed; will retry");
            Err(Some(Duration::from_secs(60)))
        }
    }
}
