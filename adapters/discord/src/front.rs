//! [`DiscordFront`]: what Discord events mean to core, and how core's answers go back. Used by
//! both ways in (the interactions endpoint and the gateway), so they behave the same.
//!
//! - A slash command becomes command text for core's parser and is handled once under the key
//!   `discord:interaction:<id>`. If it is still working after `defer_after` (2 s by default;
//!   Discord allows 3), the answer is "thinking…" (type 5) and the reply follows by editing the
//!   original response through the interaction token.
//! - A button's `custom_id` is decoded as a [`ButtonPayload`]; anything else is refused. The
//!   outcome (or refusal) is shown only to the presser (ephemeral); the thread's messages on
//!   every front are edited through the outbox.
//! - A message (gateway) is handled when it is a DM, mentions the bot, or is written in a
//!   Discord thread that stands for an inbox thread, where plain text is a reply to it.

use crate::rest::Rest;
use crate::wire::{self, CommandData, ComponentData, EPHEMERAL, Interaction, kind};
use crate::{DiscordConfig, commands, render};
use krake_core::Krake;
use krake_core::actor::{Actor, Front};
use krake_core::inbound::IdempotencyKey;
use krake_core::inbox::ThreadId;
use krake_core::outbox::{NewOutbound, OutboxPayload};
use krake_core::ports::{OutboxRepo, RepoError, ThreadLink, ThreadLinkRepo};
use krake_core::reply::{ButtonPayload, Reply};
use krake_core::service::IncomingMessage;
use krake_core::time::Clock;
use krake_core::workspace::WorkspaceSlug;
use serde_json::{Value, json};
use serenity::http::{LightMethod, Route};
use serenity::model::id::ApplicationId;
use std::future::Future;
use std::sync::Arc;

/// Why an interaction was refused outright (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrontError {
    /// Not an interaction body.
    #[error("malformed interaction: {0}")]
    Malformed(String),
    /// An interaction type Krake does not handle.
    #[error("unsupported interaction type {0}")]
    UnknownType(u8),
}

/// A chat message from the gateway, in the adapter's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// Message snowflake.
    pub id: u64,
    /// Channel (or Discord thread) snowflake.
    pub channel: u64,
    /// Guild, unless a DM.
    pub guild: Option<u64>,
    /// Author's user snowflake.
    pub author_id: u64,
    /// Author's display name.
    pub author_name: String,
    /// Whether the author is a bot (their messages are ignored).
    pub author_is_bot: bool,
    /// Whether the bot is mentioned.
    pub mentions_bot: bool,
    /// The text.
    pub text: String,
}

/// The Discord front's event handling over core.
pub struct DiscordFront {
    krake: Krake,
    links: Arc<dyn ThreadLinkRepo>,
    config: DiscordConfig,
    rest: Option<Arc<Rest>>,
    outbox: Option<(Arc<dyn OutboxRepo>, Arc<dyn Clock>)>,
}

impl DiscordFront {
    /// The front over `krake`; `rest` is needed for follow-ups (deferral, long replies).
    pub fn new(
        krake: Krake,
        links: Arc<dyn ThreadLinkRepo>,
        config: DiscordConfig,
        rest: Option<Arc<Rest>>,
    ) -> Self {
        Self {
            krake,
            links,
            config,
            rest,
            outbox: None,
        }
    }

    /// The same front answering gateway messages through the durable outbox (delivered by the
    /// Discord sender, rate-limited and in order per channel) instead of directly.
    pub fn with_outbox(mut self, outbox: Arc<dyn OutboxRepo>, clock: Arc<dyn Clock>) -> Self {
        self.outbox = Some((outbox, clock));
        self
    }

    /// The core service.
    pub fn krake(&self) -> &Krake {
        &self.krake
    }

    /// The configuration.
    pub fn config(&self) -> &DiscordConfig {
        &self.config
    }

    /// Who a Discord user is to Krake: the Krake user they linked with `/link CODE`, or an
    /// unlinked guest who may chat (and read the threads of `home`, the workspace whose
    /// channel or Discord thread they write in) but not act on threads; core says why.
    pub async fn identify(
        &self,
        user_id: &str,
        display: &str,
        home: Option<&WorkspaceSlug>,
    ) -> Result<Actor, RepoError> {
        self.krake
            .identify(Front::Discord, user_id, display, home)
            .await
    }

    /// The workspace of a channel: mapped in the configuration, or the workspace of the inbox
    /// thread a Discord thread stands for.
    async fn home(&self, channel: Option<u64>) -> Option<WorkspaceSlug> {
        let channel = channel?;
        if let Some(ws) = self.config.workspace_of(channel) {
            return Some(ws.clone());
        }
        self.linked(channel).await.map(|l| l.workspace)
    }

    async fn linked(&self, channel: u64) -> Option<ThreadLink> {
        match self
            .links
            .linked_thread(Front::Discord, &channel.to_string())
            .await
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "thread link lookup failed");
                None
            }
        }
    }

    /// Answers one verified interaction with the body of its response.
    #[tracing::instrument(skip_all, fields(interaction = %i.id, kind = i.kind))]
    pub async fn interaction(&self, i: Interaction) -> Result<Value, FrontError> {
        match i.kind {
            kind::PING => Ok(wire::pong()),
            kind::APPLICATION_COMMAND => Ok(self.command(i).await),
            kind::MESSAGE_COMPONENT => Ok(self.component(i).await),
            kind::AUTOCOMPLETE => Ok(json!({
                "type": wire::callback::AUTOCOMPLETE_RESULT,
                "data": { "choices": [] }
            })),
            other => {
                tracing::warn!(kind = other, "unsupported interaction type");
                Err(FrontError::UnknownType(other))
            }
        }
    }

    async fn command(&self, i: Interaction) -> Value {
        let data: CommandData = match i.data.clone().map(serde_json::from_value) {
            Some(Ok(d)) => d,
            _ => return ephemeral_text("I could not read that command."),
        };
        let text = match commands::command_text(&data, self.krake.directory()) {
            Ok(t) => t,
            Err(e) => return ephemeral_text(&e.to_string()),
        };
        let Some(user) = i.invoker().cloned() else {
            return ephemeral_text("I could not tell who used that command.");
        };
        let Ok(key) = IdempotencyKey::parse(&format!("discord:interaction:{}", i.id)) else {
            return ephemeral_text("I could not read that command.");
        };
        let channel = i.channel();
        let krake = self.krake.clone();
        let home = self.home(channel).await;
        let actor = match self
            .identify(&user.id, &i.invoker_display(), home.as_ref())
            .await
        {
            Ok(a) => a,
            Err(e) => return failed(&e),
        };
        let conversation = format!("discord:channel:{}", channel.unwrap_or(0));
        let work = async move {
            krake
                .handle_message(IncomingMessage {
                    source: crate::FRONT.to_owned(),
                    key,
                    actor,
                    conversation,
                    text,
                })
                .await
        };
        self.answer(&i, work, false).await
    }

    async fn component(&self, i: Interaction) -> Value {
        let data: ComponentData = match i.data.clone().map(serde_json::from_value) {
            Some(Ok(d)) => d,
            _ => return ephemeral_text("I could not read that button."),
        };
        let payload = match ButtonPayload::decode(&data.custom_id) {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(custom_id = %data.custom_id.chars().take(100).collect::<String>(), "foreign button");
                return ephemeral_text(&format!("{e}. Nothing changed."));
            }
        };
        let Some(user) = i.invoker().cloned() else {
            return ephemeral_text("I could not tell who pressed that button.");
        };
        let home = self.home(i.channel()).await;
        let actor = match self
            .identify(&user.id, &i.invoker_display(), home.as_ref())
            .await
        {
            Ok(a) => a,
            Err(e) => return failed(&e),
        };
        let krake = self.krake.clone();
        let work = async move { krake.press(&actor, payload).await };
        // The message itself is edited through the outbox; the presser sees the outcome.
        self.answer(&i, work, true).await
    }

    /// Runs `work`; answers with its reply if it finishes within `defer_after`, otherwise
    /// defers and edits the original response when it does.
    async fn answer(
        &self,
        i: &Interaction,
        work: impl Future<Output = Reply> + Send + 'static,
        ephemeral: bool,
    ) -> Value {
        let mut task = tokio::spawn(work);
        let follow_up = match (&self.rest, self.application_id(i)) {
            (Some(rest), Some(app)) if !i.token.is_empty() => Some((rest.clone(), app)),
            _ => None,
        };
        let reply = match &follow_up {
            None => (&mut task).await,
            Some(_) => match tokio::time::timeout(self.config.defer_after, &mut task).await {
                Ok(r) => r,
                Err(_) => {
                    let token = i.token.clone();
                    if let Some((rest, app)) = follow_up {
                        tokio::spawn(async move {
                            let reply = match task.await {
                                Ok(r) => r,
                                Err(e) => {
                                    tracing::error!(error = %e, "deferred command failed");
                                    Reply::error(
                                        "Something went wrong on my side; nothing was changed.",
                                    )
                                }
                            };
                            complete_deferred(&rest, app, &token, &reply, ephemeral).await;
                        });
                    }
                    return wire::deferred(ephemeral);
                }
            },
        };
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "command task failed");
                Reply::error("Something went wrong on my side; nothing was changed.")
            }
        };
        let mut bodies = render::reply_bodies(&reply);
        let first = if bodies.is_empty() {
            render::body("…", Vec::new())
        } else {
            bodies.remove(0)
        };
        if !bodies.is_empty()
            && let Some((rest, app)) = self
                .rest
                .clone()
                .zip(self.application_id(i))
                .filter(|_| !i.token.is_empty())
        {
            let token = i.token.clone();
            tokio::spawn(async move {
                for b in bodies {
                    follow(&rest, app, &token, with_flags(b, ephemeral)).await;
                }
            });
        }
        wire::message(with_flags(first, ephemeral))
    }

    fn application_id(&self, i: &Interaction) -> Option<u64> {
        i.application_id
            .as_deref()
            .and_then(crate::snowflake)
            .or(self.config.application_id)
    }

    /// Handles a gateway message; `None` when it is not for Krake.
    #[tracing::instrument(skip_all, fields(message = m.id, channel = m.channel))]
    pub async fn message(&self, m: &ChatMessage) -> Option<Reply> {
        if m.author_is_bot {
            return None;
        }
        let linked = self.linked(m.channel).await;
        let text = message_text(m, linked.as_ref().map(|l| l.thread))?;
        let home = match &linked {
            Some(l) => Some(l.workspace.clone()),
            None => self.config.workspace_of(m.channel).cloned(),
        };
        let actor = match self
            .identify(&m.author_id.to_string(), &m.author_name, home.as_ref())
            .await
        {
            Ok(a) => a,
            Err(e) => return Some(Reply::error(format!("I could not tell who you are: {e}"))),
        };
        let key = IdempotencyKey::parse(&format!("discord:message:{}", m.id)).ok()?;
        Some(
            self.krake
                .handle_message(IncomingMessage {
                    source: crate::FRONT.to_owned(),
                    key,
                    actor,
                    conversation: format!("discord:channel:{}", m.channel),
                    text,
                })
                .await,
        )
    }

    /// Answers in a channel (gateway messages): through the outbox when one is set, otherwise
    /// directly, split at 2000 characters.
    pub async fn say(&self, channel: u64, reply: &Reply) {
        if let Some((outbox, clock)) = &self.outbox {
            match crate::sender::channel_destination(channel) {
                Ok(destination) => {
                    let message = NewOutbound {
                        destination,
                        payload: OutboxPayload::Send {
                            reply: reply.clone(),
                        },
                    };
                    match outbox.enqueue(&[message], clock.now()).await {
                        Ok(_) => return,
                        Err(e) => {
                            tracing::warn!(error = %e, "could not queue an answer; sending it directly")
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, channel, "no destination for a channel"),
            }
        }
        let Some(rest) = &self.rest else { return };
        for b in render::reply_bodies(reply) {
            if let Err(e) = rest
                .call(
                    LightMethod::Post,
                    Route::ChannelMessages {
                        channel_id: serenity::model::id::ChannelId::new(channel),
                    },
                    Some(&b),
                )
                .await
            {
                tracing::warn!(error = %e, channel, "could not answer on Discord");
                return;
            }
        }
    }

    /// Sends an interaction response through the callback endpoint (gateway interactions).
    pub async fn respond(&self, interaction_id: u64, token: &str, body: &Value) {
        let Some(rest) = &self.rest else { return };
        if let Err(e) = rest
            .call(
                LightMethod::Post,
                Route::InteractionResponse {
                    interaction_id: serenity::model::id::InteractionId::new(interaction_id),
                    token,
                },
                Some(body),
            )
            .await
        {
            tracing::warn!(error = %e, "could not answer an interaction");
        }
    }
}

/// What a gateway message says to core, if it is for Krake: DMs, mentions of the bot (with the
/// mention removed), and text in a Discord thread that stands for inbox thread `linked`, where
/// plain text is a reply (`/reply <id> <text>`) and a slash command stays a command.
pub fn message_text(m: &ChatMessage, linked: Option<ThreadId>) -> Option<String> {
    if m.author_is_bot {
        return None;
    }
    if !(m.guild.is_none() || m.mentions_bot || linked.is_some()) {
        return None;
    }
    let text = strip_mentions(&m.text);
    if text.is_empty() {
        return Some(text);
    }
    match linked {
        Some(t) if !text.starts_with('/') => Some(format!("/reply {} {text}", t.0)),
        _ => Some(text),
    }
}

/// Removes user mentions (`<@123>`, `<@!123>`) and tidies the spaces.
fn strip_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<@") {
        let after = &rest[start + 2..];
        let digits = after.strip_prefix('!').unwrap_or(after);
        let skip = after.len() - digits.len();
        match digits.find('>') {
            Some(end) if end > 0 && digits[..end].bytes().all(|b| b.is_ascii_digit()) => {
                out.push_str(&rest[..start]);
                rest = &after[skip + end + 1..];
            }
            _ => {
                out.push_str(&rest[..start + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn with_flags(mut body: Value, ephemeral: bool) -> Value {
    if ephemeral && let Some(obj) = body.as_object_mut() {
        obj.insert("flags".into(), json!(EPHEMERAL));
    }
    body
}

fn ephemeral_text(text: &str) -> Value {
    wire::message(with_flags(render::body(text, Vec::new()), true))
}

fn failed(e: &RepoError) -> Value {
    tracing::error!(error = %e, "identifying a Discord user failed");
    ephemeral_text("Something went wrong on my side and nothing was changed. Please try again.")
}

async fn follow(rest: &Rest, app: u64, token: &str, body: Value) {
    if let Err(e) = rest
        .call(
            LightMethod::Post,
            Route::WebhookFollowupMessages {
                application_id: ApplicationId::new(app),
                token,
            },
            Some(&body),
        )
        .await
    {
        tracing::warn!(error = %e, "follow-up message failed");
    }
}

/// Replaces the "thinking…" response with the reply; a long reply continues in follow-ups.
async fn complete_deferred(rest: &Rest, app: u64, token: &str, reply: &Reply, ephemeral: bool) {
    let mut bodies = render::reply_bodies(reply).into_iter();
    if let Some(first) = bodies.next()
        && let Err(e) = rest
            .call(
                LightMethod::Patch,
                Route::WebhookOriginalInteractionResponse {
                    application_id: ApplicationId::new(app),
                    token,
                },
                Some(&first),
            )
            .await
    {
        tracing::warn!(error = %e, "completing a deferred response failed");
        return;
    }
    for b in bodies {
        follow(rest, app, token, with_flags(b, ephemeral)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str, guild: Option<u64>, mentions_bot: bool) -> ChatMessage {
        ChatMessage {
            id: 1,
            channel: 2,
            guild,
            author_id: 3,
            author_name: "ana".into(),
            author_is_bot: false,
            mentions_bot,
            text: text.into(),
        }
    }

    #[test]
    fn which_messages_are_for_krake() {
        assert_eq!(
            message_text(&msg("<@99> what's open in lunavo?", Some(5), true), None),
            Some("what's open in lunavo?".into())
        );
        assert_eq!(message_text(&msg("chatter", Some(5), false), None), None);
        assert_eq!(
            message_text(&msg("approve 12", None, false), None),
            Some("approve 12".into())
        );
        assert_eq!(
            message_text(&msg("ship it friday", Some(5), false), Some(ThreadId(7))),
            Some("/reply 7 ship it friday".into())
        );
        assert_eq!(
            message_text(&msg("/approve 7", Some(5), false), Some(ThreadId(7))),
            Some("/approve 7".into())
        );
        let mut bot = msg("hi", None, true);
        bot.author_is_bot = true;
        assert_eq!(message_text(&bot, None), None);
    }

    #[test]
    fn mentions_are_stripped_safely() {
        assert_eq!(strip_mentions("<@!123>  hello <@456>"), "hello");
        assert_eq!(strip_mentions("a <@ b <@x> c"), "a <@ b <@x> c");
        assert_eq!(strip_mentions("<@"), "<@");
        assert_eq!(strip_mentions("é<@1>é"), "éé");
    }
}
