//! [`TelegramFront`]: the Telegram side of Krake. It starts the bot (getMe, setMyCommands),
//! receives updates by long polling (the offset persisted after each update) or on
//! `POST /telegram/webhook`, and turns each update into one call on core's accept path,
//! [`Krake::accept`], under the idempotency key `telegram:update:<update_id>`: a chat message
//! as text (or text replying to a message, which core may read as a reply to the inbox thread
//! that message shows), a button as its typed payload. Core queues a message's reply in the
//! durable outbox for the chat it was asked in (in a forum topic, that topic) in the same
//! transaction that stores it; a callback query is answered at once, inline.
//!
//! Start-up and polling report to a [`FrontHandle`] and tell a refused token
//! ([`FrontError::Unauthorized`]) from an unreachable API, so `krake serve` supervises the
//! front; the [`Webhook`] route is served before the front has started (503 until then).

use crate::FRONT;
use crate::config::{Mode, TelegramConfig, WebhookSecret};
use crate::convert::{self, BotIdentity, ButtonPress, ChatMessage, Event};
use crate::render;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use krake_core::Krake;
use krake_core::actor::Front;
use krake_core::backoff::Backoff;
use krake_core::chat::command::COMMANDS;
use krake_core::inbound::{Content, IdempotencyKey, Inbound};
use krake_core::knowledge::learn::{FileBody, SentFile, clean_name};
use krake_core::ports::{FrontStateRepo, RepoError};
use krake_core::reply::{ButtonPayload, Reply, Tone};
use krake_core::supervise::FrontHandle;
use serde_json::Value;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use teloxide::payloads::{AnswerCallbackQuerySetters, GetUpdatesSetters, SetWebhookSetters};
use teloxide::prelude::Requester;
use teloxide::types::{BotCommand, CallbackQueryId, Update, UpdateKind};
use teloxide::{ApiError, Bot, RequestError};
use tokio::sync::watch;

/// The header Telegram sends the webhook secret in.
pub const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

/// The webhook's path on Krake's HTTP server.
pub const WEBHOOK_PATH: &str = "/telegram/webhook";

/// Why the front could not start or handle an update (the update is then tried again).
#[derive(Debug, thiserror::Error)]
pub enum FrontError {
    /// The Bot API refused or could not be reached.
    #[error("the Telegram Bot API failed: {0}")]
    Api(String),
    /// The Bot API refused the token (401 Unauthorized, or 404 for a token it does not know).
    #[error("the Telegram Bot API refused the bot token ({0})")]
    Unauthorized(String),
    /// Telegram asked to wait.
    #[error("Telegram asked to wait {0:?}")]
    RetryAfter(Duration),
    /// The configured API URL is not a URL.
    #[error("telegram.api_url is not a URL: {0}")]
    Url(String),
    /// The database failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

impl From<RequestError> for FrontError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::RetryAfter(s) => FrontError::RetryAfter(s.duration()),
            RequestError::Api(ApiError::InvalidToken) => {
                FrontError::Unauthorized("401 Unauthorized".into())
            }
            other => FrontError::Api(other.to_string()),
        }
    }
}

/// What handling one update did (tests look at it; the log says it too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// A message was answered; the reply is queued in the outbox.
    Replied(Reply),
    /// A button press was answered with this.
    Answered(Reply),
    /// Nothing to do, for this reason.
    Skipped(String),
}

/// The ports the front uses besides core's service.
#[derive(Clone)]
pub struct FrontPorts {
    /// The polling offset.
    pub state: Arc<dyn FrontStateRepo>,
}

/// The Telegram front.
pub struct TelegramFront {
    krake: Krake,
    bot: Bot,
    config: TelegramConfig,
    ports: FrontPorts,
    me: BotIdentity,
}

/// A Bot API client for the configuration (its API URL when one is set).
pub fn bot(config: &TelegramConfig) -> Result<Bot, FrontError> {
    let bot = Bot::new(config.token.expose());
    Ok(match &config.api_url {
        Some(url) => bot.set_api_url(
            url.parse()
                .map_err(|e: url::ParseError| FrontError::Url(e.to_string()))?,
        ),
        None => bot,
    })
}

/// The bot's command menu, from core's command definitions (the one source).
pub fn commands() -> Vec<BotCommand> {
    COMMANDS
        .iter()
        .filter(|c| {
            let ok = !c.name.is_empty()
                && c.name.len() <= 32
                && c.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                tracing::warn!(
                    command = c.name,
                    "not a valid Telegram command name; left out of the menu"
                );
            }
            ok
        })
        .map(|c| BotCommand::new(c.name, c.about))
        .collect()
}

impl TelegramFront {
    /// Starts the bot: learns who it is (getMe), registers the command menu (setMyCommands)
    /// and, in webhook mode with a URL, registers the webhook (setWebhook).
    pub async fn start(
        krake: Krake,
        config: TelegramConfig,
        ports: FrontPorts,
    ) -> Result<Self, FrontError> {
        let bot = bot(&config)?;
        let me = bot.get_me().await?;
        let me = BotIdentity {
            id: me.user.id.0,
            username: me.user.username.clone().unwrap_or_default(),
        };
        bot.set_my_commands(commands()).await?;
        if let Mode::Webhook {
            secret,
            url: Some(url),
        } = &config.mode
        {
            let url = url
                .parse()
                .map_err(|e: url::ParseError| FrontError::Url(e.to_string()))?;
            bot.set_webhook(url).secret_token(secret.expose()).await?;
        }
        tracing::info!(bot = %me.username, chats = config.chats.len(), "Telegram front started");
        Ok(Self {
            krake,
            bot,
            config,
            ports,
            me,
        })
    }

    /// A front for a bot already known, without calling Telegram (no getMe, no
    /// setMyCommands): for benchmarks and tools that only handle updates.
    pub fn offline(
        krake: Krake,
        config: TelegramConfig,
        ports: FrontPorts,
        me: BotIdentity,
    ) -> Result<Self, FrontError> {
        Ok(Self {
            bot: bot(&config)?,
            krake,
            config,
            ports,
            me,
        })
    }

    /// The Bot API client.
    pub fn client(&self) -> &Bot {
        &self.bot
    }

    /// The bot, as getMe described it.
    pub fn me(&self) -> &BotIdentity {
        &self.me
    }

    /// Handles one update. An error means nothing was finished that cannot be repeated: the
    /// update should be handled again later (the polling offset stays before it; a webhook
    /// answers 500 so Telegram retries).
    #[tracing::instrument(skip_all, fields(update = update.id.0))]
    pub async fn handle(&self, update: &Update) -> Result<Handled, FrontError> {
        match &update.kind {
            UpdateKind::Error(raw) => self.unreadable(update.id.0, raw.clone()).await,
            _ => self.handle_known(update).await,
        }
    }

    async fn handle_known(&self, update: &Update) -> Result<Handled, FrontError> {
        let handled = match convert::convert(update, self.me.id) {
            Event::Message(m) => self.on_message(update.id.0, m).await?,
            Event::Button(b) => self.on_button(update.id.0, b).await?,
            Event::Skip(why) => Handled::Skipped(why),
        };
        match &handled {
            Handled::Skipped(why) => tracing::info!(reason = %why, "update skipped"),
            Handled::Replied(r) | Handled::Answered(r) => {
                tracing::debug!(tone = ?r.tone, "update handled")
            }
        }
        Ok(handled)
    }

    /// Handles an update as raw JSON (the webhook's body). A body that is not an update is
    /// logged and skipped: Telegram would only send it again.
    pub async fn handle_json(&self, body: &[u8]) -> Result<Handled, FrontError> {
        match serde_json::from_slice::<Update>(body) {
            Ok(u) if matches!(u.kind, UpdateKind::Error(_)) => {
                let raw = serde_json::from_slice::<Value>(body).unwrap_or(Value::Null);
                self.unreadable(u.id.0, raw).await
            }
            Ok(u) => self.handle_known(&u).await,
            Err(e) => {
                let why = format!("a malformed update ({e}), {} bytes", body.len());
                tracing::warn!(reason = %why, "update skipped");
                Ok(Handled::Skipped(why))
            }
        }
    }

    /// An update teloxide could not read as a kind it knows (`raw` is the whole update). An
    /// older shape (a user without `is_bot`, as in Telegram's own webhook samples) is mended
    /// and read again; an unreadable callback query is still answered; anything else is
    /// logged and skipped.
    async fn unreadable(&self, id: u32, mut raw: Value) -> Result<Handled, FrontError> {
        if convert::mend_old_shapes(&mut raw)
            && let Ok(u) = serde_json::from_str::<Update>(&raw.to_string())
            && !matches!(u.kind, UpdateKind::Error(_))
        {
            tracing::info!(
                update = id,
                "an update in an older shape was read after mending"
            );
            return self.handle_known(&u).await;
        }
        let kinds = raw
            .as_object()
            .map(|o| {
                o.keys()
                    .filter(|k| *k != "update_id")
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        if let Some(query) = raw.pointer("/callback_query/id").and_then(Value::as_str) {
            let reply = Reply::warning("Krake could not read this button press; nothing was done.");
            if let Err(e) = self
                .bot
                .answer_callback_query(CallbackQueryId(query.to_owned()))
                .text(render::answer_text(&reply.text))
                .show_alert(true)
                .await
            {
                tracing::warn!(error = %e, "could not answer a callback query");
            }
            tracing::warn!(
                update = id,
                "an unreadable callback query was answered and skipped"
            );
            return Ok(Handled::Answered(reply));
        }
        let why = format!("an update kind Krake does not know or could not read ({kinds})");
        tracing::info!(update = id, reason = %why, "update skipped");
        Ok(Handled::Skipped(why))
    }

    async fn on_message(&self, update_id: u32, m: ChatMessage) -> Result<Handled, FrontError> {
        let home = self.config.home(m.place).cloned();
        let addressed = convert::addressed_text(&m, &self.me);
        // A file is learned when sent privately, with a caption for the bot, or in a chat
        // that is a workspace's home (the team's group); elsewhere it is someone else's.
        let file = m
            .file
            .clone()
            .filter(|_| m.private || addressed.is_some() || home.is_some());
        let Some(text) = addressed.or_else(|| file.as_ref().map(|_| String::new())) else {
            return Ok(Handled::Skipped(
                "a group message not addressed to the bot".into(),
            ));
        };
        let actor = self
            .krake
            .identify(
                Front::Telegram,
                &m.from.id.to_string(),
                &m.from.display,
                home.as_ref(),
            )
            .await?;
        let content = match (file, m.reply_to) {
            (Some(f), _) => Content::File {
                file: SentFile {
                    name: clean_name(&f.name),
                    size: Some(f.size),
                    body: FileBody::Remote(f.file_id),
                },
                // `/learn monarch` as the caption names the workspace; else the chat's own.
                workspace: krake_core::knowledge::learn::named_workspace(&text).or(home),
            },
            // A reply to one of the bot's messages may be a reply to the thread it shows.
            (None, Some((message_id, true))) => Content::TextReplyingTo {
                text,
                message_id: message_id.to_string(),
            },
            (None, _) => Content::Text(text),
        };
        // The reply is queued for the chat (or topic) in the same transaction that stores it,
        // keyed by the update: a redelivered update queues nothing.
        let accepted = self
            .krake
            .accept(Inbound {
                source: Front::Telegram,
                key: update_key(update_id)?,
                actor,
                conversation: m.place.to_string(),
                reply_to: Some(m.place.destination()),
                answer_to: Some(m.place.destination()),
                content,
            })
            .await;
        Ok(Handled::Replied(accepted.reply))
    }

    async fn on_button(&self, update_id: u32, b: ButtonPress) -> Result<Handled, FrontError> {
        let reply = self.press(update_id, &b).await?;
        let prefix = match reply.tone {
            Tone::Warning => "⚠️ ",
            Tone::Error => "❌ ",
            Tone::Success => "✅ ",
            Tone::Info => "",
        };
        let alert = matches!(reply.tone, Tone::Warning | Tone::Error);
        if let Err(e) = self
            .bot
            .answer_callback_query(CallbackQueryId(b.query_id.clone()))
            .text(render::answer_text(&format!("{prefix}{}", reply.text)))
            .show_alert(alert)
            .await
        {
            // An old query can no longer be answered; the decision stands either way.
            tracing::warn!(error = %e, "could not answer a callback query");
        }
        Ok(Handled::Answered(reply))
    }

    async fn press(&self, update_id: u32, b: &ButtonPress) -> Result<Reply, FrontError> {
        let data = b.data.as_deref().unwrap_or("");
        let payload = match ButtonPayload::decode(data) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, user = b.from.id, "refused callback data");
                return Ok(Reply::warning(e.to_string()));
            }
        };
        let Some((place, _)) = b.message else {
            return Ok(Reply::warning(
                "Krake's buttons work on messages in chats, not on inline messages.",
            ));
        };
        let home = self.config.home(place).cloned();
        let actor = self
            .krake
            .identify(
                Front::Telegram,
                &b.from.id.to_string(),
                &b.from.display,
                home.as_ref(),
            )
            .await?;
        // The press is answered inline (answerCallbackQuery); the thread's messages are edited
        // through the outbox by the change itself.
        let accepted = self
            .krake
            .accept(Inbound {
                source: Front::Telegram,
                key: update_key(update_id)?,
                actor,
                conversation: place.to_string(),
                reply_to: None,
                answer_to: None,
                content: Content::Button(payload),
            })
            .await;
        Ok(accepted.reply)
    }

    /// One getUpdates round: fetches updates after the saved offset, handles each in order
    /// and saves the offset after each. Returns how many were handled.
    pub async fn poll_once(&self, timeout_secs: u32) -> Result<usize, FrontError> {
        let updates = self.fetch(timeout_secs).await?;
        self.handle_batch(updates).await
    }

    async fn fetch(&self, timeout_secs: u32) -> Result<Vec<Fetched>, FrontError> {
        let offset = self.ports.state.cursor(FRONT).await?.unwrap_or(0);
        let offset = i32::try_from(offset).unwrap_or(i32::MAX);
        match self
            .bot
            .get_updates()
            .offset(offset)
            .timeout(timeout_secs)
            .await
        {
            Ok(us) => Ok(us.into_iter().map(Fetched::from).collect()),
            // One update teloxide cannot read spoils the whole batch: read them one by one.
            Err(RequestError::InvalidJson { raw, source }) => {
                tracing::warn!(error = %source, "getUpdates answer not readable as a whole; reading updates one by one");
                tolerant(&raw)
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn handle_batch(&self, updates: Vec<Fetched>) -> Result<usize, FrontError> {
        let mut n = 0;
        for u in updates {
            let id = match &u {
                Fetched::Update(u) => u.id.0,
                Fetched::Unreadable { id, .. } => *id,
            };
            match &u {
                Fetched::Update(u) => {
                    self.handle(u).await?;
                }
                Fetched::Unreadable { why, .. } => {
                    tracing::warn!(update = id, reason = %why, "malformed update skipped");
                }
            }
            self.ports
                .state
                .save_cursor(FRONT, i64::from(id) + 1)
                .await?;
            n += 1;
        }
        Ok(n)
    }

    /// Long polling until `stop` turns true, reporting to `status`: `up` after each answered
    /// getUpdates, `retrying` (once, with the error) while they fail. Deletes any webhook
    /// first (Telegram refuses getUpdates while one is set). Failures back off (1 s doubling
    /// to 60 s, jittered) and retry; a 429 waits as told. Returns an error only when Telegram
    /// refuses the token, which no waiting fixes.
    pub async fn poll(
        self: Arc<Self>,
        status: FrontHandle,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), FrontError> {
        let timeout = match self.config.mode {
            Mode::Polling { timeout_secs } => timeout_secs,
            Mode::Webhook { .. } => return Ok(()),
        };
        match self.bot.delete_webhook().await.map_err(FrontError::from) {
            Err(e @ FrontError::Unauthorized(_)) => return Err(e),
            Err(e) => tracing::warn!(error = %e, "could not delete the webhook before polling"),
            Ok(_) => {}
        }
        let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            // Only the fetch is cancelled on stop; a batch being handled is finished.
            let fetched = tokio::select! {
                r = self.fetch(timeout) => r,
                _ = stop.changed() => return Ok(()),
            };
            let wait = match fetched {
                Ok(batch) => {
                    status.up();
                    match self.handle_batch(batch).await {
                        Ok(_) => {
                            backoff.reset();
                            continue;
                        }
                        Err(e) => {
                            // Not the platform: the update stays before the offset and is
                            // handled again after the wait.
                            let wait = backoff.next_delay();
                            tracing::warn!(error = %e, retry_in = ?wait, "a Telegram update could not be handled");
                            wait
                        }
                    }
                }
                Err(FrontError::RetryAfter(d)) => d,
                Err(e @ FrontError::Unauthorized(_)) => return Err(e),
                Err(e) => {
                    let wait = backoff.next_delay();
                    tracing::debug!(error = %e, retry_in = ?wait, "Telegram polling failed");
                    status.retrying(e.to_string());
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.changed() => return Ok(()),
            }
        }
    }

    /// The webhook route (`POST /telegram/webhook`), to merge into Krake's HTTP server, for a
    /// front already started (see [`Webhook`] for one that is not yet).
    pub fn webhook_router(self: Arc<Self>) -> Router {
        let hook = Webhook::pending(&self.config);
        hook.started(self);
        hook.router()
    }
}

/// The webhook route's state: the secret is known from the configuration at once, the front
/// only once it has started (getMe, which tells who the bot is, answered). The route is served
/// from the start so it never 404s: it answers 401 when the secret header is missing or
/// wrong, 503 while the front is not started yet (Telegram keeps the update and sends it
/// again later, so nothing is lost and nothing needs holding here), 200 once the update is
/// handled (or skipped), 500 when it must be sent again.
pub struct Webhook {
    secret: Option<WebhookSecret>,
    front: RwLock<Option<Arc<TelegramFront>>>,
}

impl Webhook {
    /// The webhook of `config`, its front not started yet.
    pub fn pending(config: &TelegramConfig) -> Arc<Self> {
        let secret = match &config.mode {
            Mode::Webhook { secret, .. } => Some(secret.clone()),
            Mode::Polling { .. } => None,
        };
        Arc::new(Self {
            secret,
            front: RwLock::new(None),
        })
    }

    /// The front has started: updates are handled from now on.
    pub fn started(&self, front: Arc<TelegramFront>) {
        *self.front.write().unwrap_or_else(PoisonError::into_inner) = Some(front);
    }

    /// The started front, if any.
    fn front(&self) -> Option<Arc<TelegramFront>> {
        self.front
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `POST /telegram/webhook`, to merge into Krake's HTTP server.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route(WEBHOOK_PATH, post(webhook))
            .with_state(self)
    }
}

/// The idempotency key of an update: `telegram:update:<update_id>`.
fn update_key(update_id: u32) -> Result<IdempotencyKey, FrontError> {
    IdempotencyKey::parse(&format!("{FRONT}:update:{update_id}"))
        .map_err(|e| FrontError::Api(e.to_string()))
}

/// An update from getUpdates, or one that could not be read.
enum Fetched {
    Update(Box<Update>),
    Unreadable { id: u32, why: String },
}

impl From<Update> for Fetched {
    fn from(u: Update) -> Self {
        Fetched::Update(Box::new(u))
    }
}

/// Reads a getUpdates answer update by update, keeping the ids of those that cannot be read.
fn tolerant(raw: &str) -> Result<Vec<Fetched>, FrontError> {
    let v: serde_json::Value = serde_json::from_str(raw)
        .map_err(|e| FrontError::Api(format!("getUpdates answered with invalid JSON: {e}")))?;
    let Some(items) = v.get("result").and_then(|r| r.as_array()) else {
        return Err(FrontError::Api(
            "getUpdates answered without a result list".into(),
        ));
    };
    let mut out = Vec::new();
    for item in items {
        // From text, not from the Value: teloxide's update reader needs borrowed keys.
        match serde_json::from_str::<Update>(&item.to_string()) {
            Ok(mut u) => {
                if let UpdateKind::Error(raw) = &mut u.kind {
                    *raw = item.clone();
                }
                out.push(u.into())
            }
            Err(e) => match item
                .get("update_id")
                .and_then(|i| i.as_u64())
                .and_then(|i| u32::try_from(i).ok())
            {
                Some(id) => out.push(Fetched::Unreadable {
                    id,
                    why: e.to_string(),
                }),
                None => tracing::warn!(error = %e, "an update without update_id skipped"),
            },
        }
    }
    Ok(out)
}

async fn webhook(State(hook): State<Arc<Webhook>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let Some(secret) = &hook.secret else {
        return StatusCode::NOT_FOUND;
    };
    let given = headers
        .get(SECRET_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !secret.matches(given) {
        tracing::warn!("Telegram webhook call with a missing or wrong secret refused");
        return StatusCode::UNAUTHORIZED;
    }
    let Some(front) = hook.front() else {
        tracing::debug!("a Telegram update before the front started; Telegram sends it again");
        return StatusCode::SERVICE_UNAVAILABLE;
    };
    match front.handle_json(&body).await {
        Ok(_) => StatusCode::OK,
        Err(e) => {
            tracing::warn!(error = %e, "Telegram update not handled; Telegram will send it again");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }
}
