//! The Discord front in `krake serve` and `krake discord register`: routes for new threads,
//! the interactions endpoint, the supervised gateway and the outbox delivery loop.

use crate::settings::Settings;
use anyhow::{Context, bail};
use axum::Router;
use krake_core::Krake;
use krake_core::delivery::{Deliverer, Routes};
use krake_core::supervise::{FrontFailure, Fronts, Supervision, supervise};
use krake_core::time::{Clock, SystemClock};
use krake_discord::front::DiscordFront;
use krake_discord::rest::Rest;
use krake_discord::sender::{DiscordSender, channel_destination};
use krake_discord::verify::SignatureVerifier;
use krake_discord::{DiscordConfig, Secret};
use krake_store::Store;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Adds each workspace's Discord channel to the routes new threads are posted to (only when a
/// bot token lets Krake post).
pub fn add_routes(config: &DiscordConfig, routes: &mut Routes) {
    if config.token.is_none() {
        return;
    }
    for (ws, channel) in &config.channels {
        if let Ok(d) = channel_destination(*channel) {
            routes.add(ws.clone(), d);
        }
    }
}

/// What the running Discord front adds to `krake serve`.
pub struct Running {
    /// `POST /discord/interactions`, when a public key is configured.
    pub router: Option<Router>,
    /// The delivery loop and the gateway, stopped by the serve's stop signal.
    pub tasks: Vec<JoinHandle<()>>,
}

fn rest(config: &DiscordConfig, clock: Arc<dyn Clock>) -> anyhow::Result<Arc<Rest>> {
    // Without a bot token the client still answers interactions through their webhooks,
    // which need no token.
    let token = config.token.clone().unwrap_or_else(|| Secret::new(""));
    Ok(Arc::new(
        Rest::new(&config.api_url, token, clock).context("cannot set up Discord's REST client")?,
    ))
}

/// Starts what the configuration enables: the endpoint (public key), the gateway and the
/// outbox delivery (token). Nothing when Discord is not configured. The front is registered in
/// `fronts` as `discord`: with a token it is the gateway's state (supervised: retried with
/// backoff while Discord cannot be reached, reported once and retried rarely when the token is
/// refused), and the delivery loop starts once the gateway first came up; with only a public
/// key the endpoint needs nothing from Discord and is up at once.
pub fn start(
    config: &DiscordConfig,
    store: &Store,
    krake: &Krake,
    fronts: &Fronts,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Running> {
    let mut running = Running {
        router: None,
        tasks: Vec::new(),
    };
    if !config.enabled() {
        return Ok(running);
    }
    let status = fronts.register(krake_discord::FRONT);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let rest = rest(config, clock.clone())?;
    // Gateway messages' replies are queued by core; the delivery loop below sends them.
    let front = Arc::new(DiscordFront::new(
        krake.clone(),
        Arc::new(store.clone()),
        config.clone(),
        Some(rest.clone()),
    ));
    if let Some(key) = &config.public_key {
        let verifier = SignatureVerifier::from_hex(key)?;
        running.router = Some(krake_discord::interactions::router(front.clone(), verifier));
        eprintln!(
            "Discord interactions endpoint: POST {}",
            krake_discord::interactions::PATH
        );
    }
    let Some(token) = config.token.clone() else {
        status.up();
        return Ok(running);
    };
    let sender = Arc::new(DiscordSender::new(rest, Arc::new(store.clone())));
    krake.live().add(sender.clone());
    let deliverer = Deliverer::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        sender,
        clock,
        format!("discord-{}", std::process::id()),
    )
    .escalating(krake.routes().clone());
    running
        .tasks
        .push(crate::serve::spawn_delivery_loop_once_up(
            deliverer,
            status.subscribe(),
            stop.clone(),
        ));
    let (api, gateway) = (config.api_url.clone(), config.gateway_url.clone());
    running.tasks.push(tokio::spawn(supervise(
        status,
        Supervision::default(),
        stop,
        move |status, stop| {
            let (front, token, api, gateway) =
                (front.clone(), token.clone(), api.clone(), gateway.clone());
            async move {
                krake_discord::gateway::run(front, token, &api, gateway, status, stop)
                    .await
                    .map_err(|e| match e {
                        FrontFailure::Unauthorized(why) => FrontFailure::Unauthorized(format!(
                            "{why}: set KRAKE_DISCORD_TOKEN to the bot's token (Developer Portal, Bot, Reset Token), then restart Krake"
                        )),
                        other => other,
                    })
            }
        },
    )));
    eprintln!("Discord gateway and delivery started.");
    Ok(running)
}

/// `krake discord register [--guild ID]`: bulk-overwrites the slash commands.
pub async fn register(settings: &Settings, guild: Option<&str>) -> anyhow::Result<()> {
    let config = &settings.discord;
    if config.token.is_none() {
        bail!("registering commands needs the bot token: set KRAKE_DISCORD_TOKEN");
    }
    let Some(app) = config.application_id else {
        bail!(
            "registering commands needs the application id: set KRAKE_DISCORD_APPLICATION_ID (or discord.application_id)"
        );
    };
    let guild = match guild {
        Some(g) => Some(
            krake_discord::snowflake(g)
                .with_context(|| format!("`{g}` is not a Discord guild id"))?,
        ),
        None => None,
    };
    let rest = rest(config, Arc::new(SystemClock))?;
    let n = krake_discord::commands::register(&rest, app, guild, &settings.directory)
        .await
        .context("Discord refused the command registration")?;
    match guild {
        Some(g) => println!("Registered {n} slash commands in guild {g}."),
        None => {
            println!("Registered {n} global slash commands (they may take up to an hour to show).")
        }
    }
    Ok(())
}
