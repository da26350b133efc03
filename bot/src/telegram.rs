//! The Telegram front in the binary: starting it, supervised, inside `krake serve` (polling task or webhook route, and its
//! delivery loop).

use crate::serve::spawn_delivery_loop_once_up;
use anyhow::Context;
use krake_core::Krake;
use krake_core::delivery::Deliverer;
use krake_core::supervise::{FrontFailure, Fronts, Supervision, supervise};
use krake_core::time::{Clock, SystemClock};
use krake_store::Store;
use krake_telegram::front::{FrontError, FrontPorts, Webhook};
use krake_telegram::{Mode, TelegramConfig, TelegramFront, TelegramSender};
use std::sync::Arc;
use tokio::sync::watch;

/// What a started front gives `krake serve`: a router to merge (the webhook, or nothing) and
/// background tasks to wait for at shutdown.
pub struct Started {
    /// Routes to merge into the HTTP server.
    pub router: axum::Router,
    /// The supervised front (polling, or the webhook's start-up) and the delivery loop.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Starts the Telegram front, supervised, without waiting for Telegram: getMe and
/// setMyCommands (and setWebhook) are tried again with backoff until the Bot API answers, then
/// polling runs (or the webhook route, served from the start and answering 503 until then,
/// handles updates). A refused token is reported in `fronts` (and so on `/readyz`) with what to
/// do. The outbox delivery loop for `telegram:` destinations starts once the front first came
/// up. Fails only on a configuration that cannot work (an API URL that is not one).
pub fn start(
    config: TelegramConfig,
    krake: &Krake,
    store: &Store,
    fronts: &Fronts,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Started> {
    let s = Arc::new(store.clone());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let status = fronts.register(krake_telegram::FRONT);
    let client = krake_telegram::front::bot(&config)
        .context("the Telegram front cannot start; check telegram.api_url")?;
    let sender = Arc::new(TelegramSender::new(client, s.clone(), clock.clone()));
    // The same sender (and so the same per-chat pacing) shows answers as they stream.
    krake.live().add(sender.clone());
    let owner = format!(
        "telegram-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    let deliverer = Deliverer::new(s.clone(), s.clone(), sender, clock.clone(), owner)
        .escalating(krake.routes().clone());
    let mut tasks = vec![spawn_delivery_loop_once_up(
        deliverer,
        status.subscribe(),
        stop.clone(),
    )];
    let hook = Webhook::pending(&config);
    let router = match config.mode {
        Mode::Polling { .. } => axum::Router::new(),
        Mode::Webhook { .. } => hook.clone().router(),
    };
    let ports = FrontPorts { state: s };
    let krake = krake.clone();
    tasks.push(tokio::spawn(supervise(
        status,
        Supervision::default(),
        stop,
        move |status, mut stop| {
            let (krake, config, ports, hook) =
                (krake.clone(), config.clone(), ports.clone(), hook.clone());
            async move {
                let polling = matches!(config.mode, Mode::Polling { .. });
                let started = tokio::select! {
                    r = TelegramFront::start(krake, config, ports) => r,
                    _ = stop.wait_for(|s| *s) => return Ok(()),
                };
                let front = Arc::new(started.map_err(failure)?);
                status.up();
                if polling {
                    front.poll(status, stop).await.map_err(failure)
                } else {
                    hook.started(front);
                    let _ = stop.wait_for(|s| *s).await;
                    Ok(())
                }
            }
        },
    )));
    Ok(Started { router, tasks })
}

/// What the supervisor makes of a front error: a refused token says what to do.
fn failure(e: FrontError) -> FrontFailure {
    match e {
        FrontError::Unauthorized(why) => FrontFailure::Unauthorized(format!(
            "Telegram refused the bot token ({why}): set KRAKE_TELEGRAM_TOKEN to the token @BotFather gave the bot (and check telegram.api_url), then restart Krake"
        )),
        other => FrontFailure::Unreachable(other.to_string()),
    }
}
