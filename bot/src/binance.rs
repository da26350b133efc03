//! `[binance]`: polls the read-only portfolio and stores its value as the workspace's
//! `binance.portfolio_value` history. A key that can trade or withdraw stops it for good.

use crate::settings::Settings;
use krake_binance::{BinanceClient, BinanceConfig, BinanceError};
use krake_core::Krake;
use krake_core::secret::Secret;
use krake_core::workspace::WorkspaceSlug;
use std::time::Duration;
use tokio::sync::watch;

/// Starts the poller when `[binance]` is configured and its key and secret are set.
pub fn spawn(
    settings: &Settings,
    krake: Krake,
    mut stop: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let b = settings.binance.clone()?;
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
