//! The Telegram front in the binary: its settings (`[telegram]`, `KRAKE_TELEGRAM_TOKEN`) and
//! starting it, supervised, inside `krake serve` (polling task or webhook route, and its
//! delivery loop).

use crate::serve::spawn_delivery_loop_once_up;
use crate::settings::env_or;
use anyhow::{Context, bail};
use krake_core::Krake;
use krake_core::config::Directory;
use krake_core::delivery::Deliverer;
use krake_core::supervise::{FrontFailure, Fronts, Supervision, supervise};
use krake_core::time::{Clock, SystemClock};
use krake_core::workspace::WorkspaceSlug;
use krake_store::Store;
use krake_telegram::front::{FrontError, FrontPorts, Webhook};
use krake_telegram::{
    BotToken, ChatRoute, Mode, Place, TelegramConfig, TelegramFront, TelegramSender, WebhookSecret,
};
use serde::Deserialize;
use std::sync::Arc;
use tokio::sync::watch;

/// `[telegram]` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramFile {
    /// The bot token (prefer `KRAKE_TELEGRAM_TOKEN`).
    pub token: Option<String>,
    /// The Bot API base URL.
    pub api_url: Option<String>,
    /// `polling` (default) or `webhook`.
    pub mode: Option<String>,
    /// Seconds a getUpdates call waits for updates.
    pub poll_timeout_secs: Option<u32>,
    /// The webhook secret (prefer `KRAKE_TELEGRAM_WEBHOOK_SECRET`).
    pub webhook_secret: Option<String>,
    /// The public URL registered with setWebhook at start-up.
    pub webhook_url: Option<String>,
    /// Where each workspace's inbox threads are posted.
    #[serde(default)]
    pub chats: Vec<TelegramChatFile>,
}

/// `[[telegram.chats]]` in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramChatFile {
    /// The workspace slug.
    pub workspace: String,
    /// The chat id (groups and supergroups are negative, e.g. -1001234567890).
    pub chat_id: i64,
    /// The forum topic (`message_thread_id`), in a forum supergroup.
    pub topic: Option<i32>,
}

/// The front's settings, or `None` when no token is set (the front is off).
pub fn settings(
    file: &TelegramFile,
    directory: &Directory,
) -> anyhow::Result<Option<TelegramConfig>> {
    let Some(token) = env_or("KRAKE_TELEGRAM_TOKEN", file.token.as_ref()) else {
        return Ok(None);
    };
    let token = BotToken::parse(&token)
        .context("KRAKE_TELEGRAM_TOKEN / telegram.token is not a bot token")?;
    let mode = match file.mode.as_deref().unwrap_or("polling") {
        "polling" => Mode::Polling {
            timeout_secs: file.poll_timeout_secs.unwrap_or(25).min(50),
        },
        "webhook" => {
            let Some(secret) = env_or(
                "KRAKE_TELEGRAM_WEBHOOK_SECRET",
                file.webhook_secret.as_ref(),
            ) else {
                bail!(
                    "telegram.mode = \"webhook\" needs a secret: set KRAKE_TELEGRAM_WEBHOOK_SECRET or telegram.webhook_secret"
                );
            };
            Mode::Webhook {
                secret: WebhookSecret::parse(&secret).context("telegram.webhook_secret")?,
                url: file.webhook_url.clone().filter(|u| !u.is_empty()),
            }
        }
        other => bail!("telegram.mode must be `polling` or `webhook`, not `{other}`"),
    };
    let mut chats = Vec::new();
    for c in &file.chats {
        let workspace = WorkspaceSlug::parse(&c.workspace).with_context(|| {
            format!(
                "[[telegram.chats]]: `{}` is not a workspace slug",
                c.workspace
            )
        })?;
        if directory.workspace(&workspace).is_none() {
            bail!(
                "[[telegram.chats]]: there is no workspace `{}`",
                c.workspace
            );
        }
        let place = match c.topic {
            Some(t) if t > 0 => Place::topic(c.chat_id, t),
            Some(t) => bail!("[[telegram.chats]] for {workspace}: topic {t} is not a topic id"),
            None => Place::chat(c.chat_id),
        };
        chats.push(ChatRoute { workspace, place });
    }
    if let Some(url) = &file.api_url {
        url::Url::parse(url).with_context(|| format!("telegram.api_url `{url}` is not a URL"))?;
    }
    Ok(Some(TelegramConfig {
        token,
        api_url: file.api_url.clone().filter(|u| !u.is_empty()),
        mode,
        chats,
    }))
}

/// The `[telegram]` section of `krake config`, secrets redacted.
pub fn redacted(config: Option<&TelegramConfig>) -> String {
    let Some(c) = config else {
        return "\n[telegram]\ntoken = \"\" # not set: the Telegram front is off\n".into();
    };
    let mut out = String::from("\n[telegram]\ntoken = \"***\"\n");
    if let Some(u) = &c.api_url {
        out.push_str(&format!("api_url = {u:?}\n"));
    }
    match &c.mode {
        Mode::Polling { timeout_secs } => out.push_str(&format!(
            "mode = \"polling\"\npoll_timeout_secs = {timeout_secs}\n"
        )),
        Mode::Webhook { url, .. } => {
            out.push_str("mode = \"webhook\"\nwebhook_secret = \"***\"\n");
            if let Some(u) = url {
                out.push_str(&format!("webhook_url = {u:?}\n"));
            }
        }
    }
    for r in &c.chats {
        out.push_str(&format!(
            "\n[[telegram.chats]]\nworkspace = \"{}\"\nchat_id = {}\n",
            r.workspace, r.place.chat
        ));
        if let Some(t) = r.place.topic {
            out.push_str(&format!("topic = {t}\n"));
        }
    }
    out
}

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
    let sender = TelegramSender::new(client, s.clone(), clock.clone());
    let owner = format!(
        "telegram-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    let deliverer = Deliverer::new(s.clone(), s.clone(), Arc::new(sender), clock.clone(), owner);
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
