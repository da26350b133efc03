//! [`DiscordFront`]: what Discord events mean to core, and how core's answers go back. Used by
//! both ways in (the interactions endpoint and the gateway), so they behave the same.
//!
//! Every event goes through core's one accept path, [`Krake::accept`], under its own key, so a
//! redelivered event is handled once and its stored reply is what a second answer shows.
//!
//! - A slash command's options become a typed [`Command`](krake_core::Command) through core
//!   ([`CommandParser::from_options`]) and are handled once under the key
//!   `discord:interaction:<id>`. The reply is the interaction's response (inline). If it is
//!   still working after `defer_after` (2 s by default; Discord allows 3), the answer is
//!   "thinking…" (type 5) and the reply follows by editing the original response through the
//!   interaction token; a redelivered interaction sends no follow-up.
//! - A button's `custom_id` is decoded as a [`ButtonPayload`]; anything else is refused. The
//!   outcome (or refusal) is shown only to the presser (ephemeral); the thread's messages on
//!   every front are edited through the outbox.
//! - A message (gateway) is handled when it is a DM, mentions the bot, or is written in a
//!   Discord thread that stands for an inbox thread, where plain text is a reply to it. Core
//!   queues its reply for the channel in the same transaction that stores it (key
//!   `discord:message:<id>`), so a message replayed after a gateway RESUME queues nothing.
//! - Files: a message's attachments, when the message is for Krake (a DM, a mention of the bot,
//!   or a workspace's home channel), are each sent to core as a file to learn (key
//!   `discord:message:<id>:file:<n>`); so is `/learn`'s attachment option. Core fetches them
//!   later through [`Attachments`](crate::Attachments) and says in the channel when each is
//!   learned.

use crate::rest::Rest;
use crate::wire::{self, Attachment, CommandData, ComponentData, EPHEMERAL, Interaction, kind};
use crate::{DiscordConfig, commands, render};
use krake_core::Krake;
use krake_core::actor::{Actor, Front};
use krake_core::chat::command::Parsed;
use krake_core::inbound::{Accepted, Content, IdempotencyKey, Inbound};
use krake_core::inbox::ThreadId;
use krake_core::knowledge::learn::{FileBody, SentFile, clean_name};
use krake_core::ports::{RepoError, ThreadLink, ThreadLinkRepo};
use krake_core::reply::{ButtonPayload, Reply};
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
    /// Files attached to it.
    pub attachments: Vec<Attachment>,
}

/// The Discord front's event handling over core.
pub struct DiscordFront {
    krake: Krake,
    links: Arc<dyn ThreadLinkRepo>,
    config: DiscordConfig,
    rest: Option<Arc<Rest>>,
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
        }
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
        if data.name == commands::LEARN {
            return self.learn(&i, &data).await;
        }
        let cmd = match commands::command(&data, self.krake.parser()) {
            Ok(Parsed::Command(c)) => c,
            Ok(other) => return ephemeral_text(&not_understood(other)),
            Err(e) => return ephemeral_text(&e.to_string()),
        };
        let inbound = match self.slash_inbound(&i, |_| Content::Command(cmd)).await {
            Ok(inbound) => inbound,
            Err(refused) => return refused,
        };
        let krake = self.krake.clone();
        let work = async move { krake.accept(inbound).await };
        self.answer(&i, work, false).await
    }

    /// A slash command as core's inbound: who used it (identified with the channel's home
    /// workspace), keyed by the interaction, answered inline; what it starts (a task's answer,
    /// "Learned …") goes to the channel it was used in. `content` gets the channel's home.
    async fn slash_inbound(
        &self,
        i: &Interaction,
        content: impl FnOnce(Option<WorkspaceSlug>) -> Content,
    ) -> Result<Inbound, Value> {
        let Some(user) = i.invoker().cloned() else {
            return Err(ephemeral_text("I could not tell who used that command."));
        };
        let Ok(key) = IdempotencyKey::parse(&format!("discord:interaction:{}", i.id)) else {
            return Err(ephemeral_text("I could not read that command."));
        };
        let channel = i.channel();
        let home = self.home(channel).await;
        let actor = self
            .identify(&user.id, &i.invoker_display(), home.as_ref())
            .await
            .map_err(|e| failed(&e))?;
        Ok(Inbound {
            source: Front::Discord,
            key,
            actor,
            conversation: format!("discord:channel:{}", channel.unwrap_or(0)),
            reply_to: None,
            answer_to: channel.and_then(|c| crate::sender::channel_destination(c).ok()),
            content: content(home),
        })
    }

    /// `/learn`: the attachment option's file goes to core to be learned; the reply is the
    /// interaction's response, and "Learned …" follows in the channel.
    async fn learn(&self, i: &Interaction, data: &CommandData) -> Value {
        let (file, workspace) = match commands::learn_options(data) {
            Ok(o) => o,
            Err(e) => return ephemeral_text(&e.to_string()),
        };
        let workspace = match workspace.map(|w| WorkspaceSlug::parse(&w).map_err(|_| w)) {
            None => None,
            Some(Ok(w)) => Some(w),
            Some(Err(w)) => {
                let w: String = w.chars().take(32).collect();
                return ephemeral_text(&format!("`{w}` is not a workspace. Nothing was learned."));
            }
        };
        let inbound = match self
            .slash_inbound(i, |home| file_content(&file, workspace.or(home)))
            .await
        {
            Ok(inbound) => inbound,
            Err(refused) => return refused,
        };
        let krake = self.krake.clone();
        let work = async move { krake.accept(inbound).await };
        self.answer(i, work, false).await
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
        let Ok(key) = IdempotencyKey::parse(&format!("discord:interaction:{}", i.id)) else {
            return ephemeral_text("I could not read that button.");
        };
        let inbound = Inbound {
            source: Front::Discord,
            key,
            actor,
            conversation: format!("discord:channel:{}", i.channel().unwrap_or(0)),
            reply_to: None,
            answer_to: None,
            content: Content::Button(payload),
        };
        let krake = self.krake.clone();
        let work = async move { krake.accept(inbound).await };
        // The message itself is edited through the outbox; the presser sees the outcome.
        self.answer(&i, work, true).await
    }

    /// Runs `work`; answers with its reply if it finishes within `defer_after`, otherwise
    /// defers and edits the original response when it does.
    async fn answer(
        &self,
        i: &Interaction,
        work: impl Future<Output = Accepted> + Send + 'static,
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
                                // A redelivered interaction was answered the first time.
                                Ok(a) if !a.fresh => return,
                                Ok(a) => a.reply,
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
        let (reply, fresh) = match reply {
            Ok(a) => (a.reply, a.fresh),
            Err(e) => {
                tracing::error!(error = %e, "command task failed");
                (
                    Reply::error("Something went wrong on my side; nothing was changed."),
                    false,
                )
            }
        };
        let mut bodies = render::reply_bodies(&reply);
        let first = if bodies.is_empty() {
            render::body("…", Vec::new())
        } else {
            bodies.remove(0)
        };
        // The rest of a long reply follows once; a redelivery only gets the first part again.
        if fresh
            && !bodies.is_empty()
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

    /// Handles a gateway message; `None` when it is not for Krake. Core queues the reply for
    /// the channel (delivered by the Discord sender, rate-limited and in order per channel);
    /// the returned reply is the one stored with the message.
    #[tracing::instrument(skip_all, fields(message = m.id, channel = m.channel))]
    pub async fn message(&self, m: &ChatMessage) -> Option<Reply> {
        if m.author_is_bot {
            return None;
        }
        let linked = self.linked(m.channel).await;
        let files = message_files(m, self.config.workspace_of(m.channel));
        // A message with files for Krake is about them: each is learned under its own key.
        let contents: Vec<(String, Content)> = if files.is_empty() {
            let content = message_content(m, linked.as_ref().map(|l| l.thread))?;
            vec![(format!("discord:message:{}", m.id), content)]
        } else {
            files
                .into_iter()
                .enumerate()
                .map(|(n, c)| (format!("discord:message:{}:file:{n}", m.id), c))
                .collect()
        };
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
        let reply_to = match crate::sender::channel_destination(m.channel) {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(error = %e, channel = m.channel, "no destination for a channel");
                None
            }
        };
        let mut first = None;
        for (key, content) in contents {
            let key = IdempotencyKey::parse(&key).ok()?;
            let accepted = self
                .krake
                .accept(Inbound {
                    source: Front::Discord,
                    key,
                    actor: actor.clone(),
                    conversation: format!("discord:channel:{}", m.channel),
                    answer_to: reply_to.clone(),
                    reply_to: reply_to.clone(),
                    content,
                })
                .await;
            first.get_or_insert(accepted.reply);
        }
        first
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
/// plain text is a reply to that thread and a slash command stays a command.
pub fn message_content(m: &ChatMessage, linked: Option<ThreadId>) -> Option<Content> {
    if m.author_is_bot {
        return None;
    }
    if !(m.guild.is_none() || m.mentions_bot || linked.is_some()) {
        return None;
    }
    let text = strip_mentions(&m.text);
    Some(match linked {
        Some(thread) if !text.is_empty() && !text.starts_with('/') => {
            Content::ThreadReply { thread, text }
        }
        _ => Content::Text(text),
    })
}

/// The files of a gateway message, as files for core to learn, when the message is for Krake:
/// a DM, a mention of the bot, or a message in `home`, the channel of a workspace. The
/// workspace is the one `/learn <workspace>` in the text names, else `home`'s (core asks
/// when neither says).
pub fn message_files(m: &ChatMessage, home: Option<&WorkspaceSlug>) -> Vec<Content> {
    if m.author_is_bot || m.attachments.is_empty() {
        return Vec::new();
    }
    if !(m.guild.is_none() || m.mentions_bot || home.is_some()) {
        return Vec::new();
    }
    let workspace = krake_core::knowledge::learn::named_workspace(&strip_mentions(&m.text))
        .or_else(|| home.cloned());
    m.attachments
        .iter()
        .map(|a| file_content(a, workspace.clone()))
        .collect()
}

/// An attachment as a file for core to learn: fetched later from its URL.
fn file_content(a: &Attachment, workspace: Option<WorkspaceSlug>) -> Content {
    Content::File {
        file: SentFile {
            name: clean_name(&a.filename),
            size: a.size,
            body: FileBody::Remote(a.url.clone()),
        },
        workspace,
    }
}

/// What a problem with a typed command says to the person (core's words).
fn not_understood(p: Parsed) -> String {
    krake_core::service::render_unparsed(p).text
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
            attachments: Vec::new(),
        }
    }

    fn attachment(id: &str, name: &str, size: u64) -> Attachment {
        Attachment {
            id: id.into(),
            filename: name.into(),
            size: Some(size),
            url: format!("https://cdn.discordapp.com/attachments/2/{id}/{name}"),
            content_type: None,
        }
    }

    #[test]
    fn which_files_are_learned_and_where() {
        let lunavo = WorkspaceSlug::parse("lunavo").unwrap();
        let monarch = WorkspaceSlug::parse("monarch").unwrap();
        let file = |name: &str, size: u64, url: &str, ws: Option<&WorkspaceSlug>| Content::File {
            file: SentFile {
                name: name.into(),
                size: Some(size),
                body: FileBody::Remote(url.into()),
            },
            workspace: ws.cloned(),
        };
        let faq = "https://cdn.discordapp.com/attachments/2/10/faq.md";
        let policy = "https://cdn.discordapp.com/attachments/2/11/returns policy.pdf";
        let mut m = msg("", Some(5), false);
        m.attachments = vec![
            attachment("10", "faq.md", 120),
            attachment("11", "returns policy.pdf", 31_457_280),
        ];
        // Guild chatter elsewhere: someone else's files.
        assert_eq!(message_files(&m, None), Vec::new());
        // In a workspace's home channel, every file, for that workspace; names are cleaned.
        assert_eq!(
            message_files(&m, Some(&lunavo)),
            vec![
                file("faq.md", 120, faq, Some(&lunavo)),
                file("returns-policy.pdf", 31_457_280, policy, Some(&lunavo)),
            ]
        );
        // `/learn monarch` names the workspace, also beside a mention.
        m.text = "<@99> /learn monarch".into();
        m.mentions_bot = true;
        assert_eq!(
            message_files(&m, Some(&lunavo))[0],
            file("faq.md", 120, faq, Some(&monarch))
        );
        assert_eq!(message_files(&m, None).len(), 2, "a mention is for Krake");
        // A DM with no workspace named: core asks which.
        let mut dm = msg("here you go", None, false);
        dm.attachments = vec![attachment("10", "faq.md", 120)];
        assert_eq!(
            message_files(&dm, None),
            vec![file("faq.md", 120, faq, None)]
        );
        // A bot's files, and messages without files, are never learned.
        dm.author_is_bot = true;
        assert_eq!(message_files(&dm, None), Vec::new());
        assert_eq!(
            message_files(&msg("<@99> hi", Some(5), true), Some(&lunavo)),
            Vec::new()
        );
    }

    #[test]
    fn which_messages_are_for_krake() {
        let text = |s: &str| Some(Content::Text(s.into()));
        assert_eq!(
            message_content(&msg("<@99> what's open in lunavo?", Some(5), true), None),
            text("what's open in lunavo?")
        );
        assert_eq!(message_content(&msg("chatter", Some(5), false), None), None);
        assert_eq!(
            message_content(&msg("approve 12", None, false), None),
            text("approve 12")
        );
        assert_eq!(
            message_content(&msg("ship it friday", Some(5), false), Some(ThreadId(7))),
            Some(Content::ThreadReply {
                thread: ThreadId(7),
                text: "ship it friday".into()
            })
        );
        assert_eq!(
            message_content(&msg("/approve 7", Some(5), false), Some(ThreadId(7))),
            text("/approve 7")
        );
        let mut bot = msg("hi", None, true);
        bot.author_is_bot = true;
        assert_eq!(message_content(&bot, None), None);
    }

    #[test]
    fn mentions_are_stripped_safely() {
        assert_eq!(strip_mentions("<@!123>  hello <@456>"), "hello");
        assert_eq!(strip_mentions("a <@ b <@x> c"), "a <@ b <@x> c");
        assert_eq!(strip_mentions("<@"), "<@");
        assert_eq!(strip_mentions("é<@1>é"), "éé");
    }
}
