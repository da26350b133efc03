//! Gateway mode: serenity's client receives MESSAGE_CREATE and INTERACTION_CREATE and hands
//! them to the [`DiscordFront`]. The client's REST calls go to `discord.api_url` (serenity's
//! proxy setting, with its own ratelimiter off as serenity requires for a proxy) and it connects
//! to `discord.gateway_url` when one is configured.
//!
//! [`run`] is one life of the gateway for `krake serve`'s supervisor: it reports `up` when
//! Discord says the session is ready (or resumed), `retrying` while serenity reconnects a
//! dropped connection, and ends with a [`FrontFailure`] that tells an unreachable Discord from
//! a refused token.

use crate::front::{ChatMessage, DiscordFront};
use crate::wire::Interaction as WireInteraction;
use crate::{DEFAULT_API_URL, Secret};
use krake_core::supervise::{FrontFailure, FrontHandle};
use serenity::all::{
    ConnectionStage, Context, EventHandler, GatewayError, GatewayIntents, Interaction, Message,
    Ready, ResumedEvent, ShardStageUpdateEvent, UserId,
};
use serenity::http::HttpBuilder;
use std::sync::{Arc, OnceLock};
use tokio::sync::watch;

/// Converts a serenity message to the front's words; `bot` is Krake's own user id.
pub fn chat_message(m: &Message, bot: Option<UserId>) -> ChatMessage {
    ChatMessage {
        id: m.id.get(),
        channel: m.channel_id.get(),
        guild: m.guild_id.map(|g| g.get()),
        author_id: m.author.id.get(),
        author_name: m
            .author
            .global_name
            .clone()
            .unwrap_or_else(|| m.author.name.clone()),
        author_is_bot: m.author.bot || bot == Some(m.author.id),
        mentions_bot: bot.is_some_and(|b| m.mentions.iter().any(|u| u.id == b)),
        text: m.content.clone(),
        attachments: m
            .attachments
            .iter()
            .map(|a| crate::wire::Attachment {
                id: a.id.get().to_string(),
                filename: a.filename.clone(),
                size: Some(u64::from(a.size)),
                url: a.url.clone(),
                content_type: a.content_type.clone(),
            })
            .collect(),
    }
}

/// The gateway's typed interaction as the endpoint's JSON. serenity leaves the interaction's
/// `type` out when serialising, so it is put back from the typed value.
pub fn to_wire(interaction: &Interaction) -> Result<WireInteraction, String> {
    let mut v = serde_json::to_value(interaction).map_err(|e| e.to_string())?;
    if let Some(obj) = v.as_object_mut() {
        obj.insert(
            "type".into(),
            serde_json::Value::from(u8::from(interaction.kind())),
        );
    }
    serde_json::from_value(v).map_err(|e| e.to_string())
}

struct Handler {
    front: Arc<DiscordFront>,
    me: OnceLock<UserId>,
    status: FrontHandle,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        let _ = self.me.set(ready.user.id);
        tracing::info!(user = %ready.user.name, guilds = ready.guilds.len(), "Discord gateway ready");
        self.status.up();
    }

    async fn resume(&self, _ctx: Context, _: ResumedEvent) {
        self.status.up();
    }

    async fn shard_stage_update(&self, _ctx: Context, event: ShardStageUpdateEvent) {
        // serenity reconnects by itself; until it has, the front is not up.
        let dropped = matches!(
            event.new,
            ConnectionStage::Disconnected | ConnectionStage::Connecting | ConnectionStage::Resuming
        );
        if dropped && self.status.status().state.is_up() {
            self.status
                .retrying("the gateway connection dropped; reconnecting");
        }
    }

    async fn message(&self, _ctx: Context, m: Message) {
        let chat = chat_message(&m, self.me.get().copied());
        // Core queues the reply for the channel; nothing to send from here.
        let _ = self.front.message(&chat).await;
    }

    async fn interaction_create(&self, _ctx: Context, interaction: Interaction) {
        // One path for both ways in: the gateway's typed interaction as the endpoint's JSON.
        let i = match to_wire(&interaction) {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(error = %e, "unreadable gateway interaction");
                return;
            }
        };
        let (id, token) = (crate::snowflake(&i.id), i.token.clone());
        match self.front.interaction(i).await {
            Ok(body) => {
                if let Some(id) = id {
                    self.front.respond(id, &token, &body).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "gateway interaction refused"),
        }
    }
}

/// Runs the gateway client until `stop` turns true (then `Ok`), reporting to `status`. Asks
/// Discord for the gateway first (`GET /gateway/bot`), so that an unreachable Discord or a
/// refused token ends this life at once with the matching [`FrontFailure`]; serenity then
/// reconnects dropped connections by itself, and a fatal gateway error ends it too.
pub async fn run(
    front: Arc<DiscordFront>,
    token: Secret,
    api_url: &str,
    gateway_url: Option<String>,
    status: FrontHandle,
    mut stop: watch::Receiver<bool>,
) -> Result<(), FrontFailure> {
    let mut http = HttpBuilder::new(token.expose());
    let base = api_url.trim_end_matches('/');
    if base != DEFAULT_API_URL {
        http = http.proxy(base).ratelimiter_disabled(true);
    }
    if let Some(app) = front.config().application_id {
        http = http.application_id(app.into());
    }
    let http = http.build();
    tokio::select! {
        r = http.get_bot_gateway() => { r.map_err(failure)?; }
        _ = stop.changed() => return Ok(()),
    }
    let intents = GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT;
    let mut client = serenity::all::ClientBuilder::new_with_http(http, intents)
        .event_handler(Handler {
            front,
            me: OnceLock::new(),
            status,
        })
        .await
        .map_err(failure)?;
    if let Some(url) = gateway_url {
        *client.ws_url.lock().await = url;
    }
    let shards = client.shard_manager.clone();
    tokio::select! {
        r = client.start() => r.map_err(failure),
        _ = stop.changed() => {
            shards.shutdown_all().await;
            Ok(())
        }
    }
}

/// A refused token (HTTP 401, gateway close code 4004) apart from everything else.
pub fn failure(e: serenity::Error) -> FrontFailure {
    match &e {
        serenity::Error::Gateway(GatewayError::InvalidAuthentication) => {
            FrontFailure::Unauthorized("Discord refused the bot token (gateway close 4004)".into())
        }
        serenity::Error::Http(h) if h.status_code().is_some_and(|c| c.as_u16() == 401) => {
            FrontFailure::Unauthorized("Discord refused the bot token (401 Unauthorized)".into())
        }
        _ => FrontFailure::Unreachable(format!("the Discord gateway failed: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::message_content;
    use krake_core::inbound::Content;
    use serde_json::{Value, json};

    fn fixture(name: &str) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/discord")
            .join(name);
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    /// The documented message object (from the component example), as MESSAGE_CREATE
    /// delivers it in a guild, with a mention of the bot.
    fn message_create(bot: &str) -> Value {
        let mut m = fixture("docs_message_component_button_click.json")["message"].clone();
        m["guild_id"] = json!("290926798626357999");
        m["content"] = json!(format!("<@{bot}> what's open in lunavo?"));
        m["mentions"] = json!([{ "id": bot, "username": "Krake", "discriminator": "0", "avatar": null, "bot": true }]);
        m
    }

    #[test]
    fn message_create_becomes_core_text() {
        let bot = UserId::new(827_290_144_020_496_384);
        let m: Message = serde_json::from_value(message_create("827290144020496384")).unwrap();
        let chat = chat_message(&m, Some(bot));
        assert_eq!(chat.channel, 345_626_669_114_982_402);
        assert_eq!(chat.author_id, 53_908_232_506_183_680);
        assert!(chat.mentions_bot && !chat.author_is_bot);
        assert_eq!(
            message_content(&chat, None),
            Some(Content::Text("what's open in lunavo?".into()))
        );
        // Without the mention, guild chatter is not for Krake; in a DM it is.
        let mut plain = message_create("1");
        plain["content"] = json!("just chatting");
        let m: Message = serde_json::from_value(plain.clone()).unwrap();
        assert_eq!(message_content(&chat_message(&m, Some(bot)), None), None);
        plain.as_object_mut().unwrap().remove("guild_id");
        let m: Message = serde_json::from_value(plain).unwrap();
        assert_eq!(
            message_content(&chat_message(&m, Some(bot)), None),
            Some(Content::Text("just chatting".into()))
        );
        // Krake's own messages are never handled.
        let mut own = message_create("1");
        own["author"]["id"] = json!("827290144020496384");
        let m: Message = serde_json::from_value(own).unwrap();
        assert!(chat_message(&m, Some(bot)).author_is_bot);
    }

    #[test]
    fn message_create_attachments_become_files_to_learn() {
        use krake_core::knowledge::learn::{FileBody, SentFile};
        let bot = UserId::new(827_290_144_020_496_384);
        let mut m = message_create("827290144020496384");
        m["content"] = json!("<@827290144020496384> /learn lunavo");
        // An attachment as MESSAGE_CREATE carries it.
        m["attachments"] = json!([{
            "id": "1311111111111111222",
            "filename": "returns_policy.pdf",
            "size": 31_457_280,
            "url": "https://cdn.discordapp.com/attachments/345626669114982402/1311111111111111222/returns_policy.pdf?ex=1&is=2&hm=3",
            "proxy_url": "https://media.discordapp.net/attachments/345626669114982402/1311111111111111222/returns_policy.pdf",
            "content_type": "application/pdf"
        }]);
        let m: Message = serde_json::from_value(m).unwrap();
        let chat = chat_message(&m, Some(bot));
        assert_eq!(chat.attachments.len(), 1);
        assert_eq!(chat.attachments[0].id, "1311111111111111222");
        assert_eq!(chat.attachments[0].size, Some(31_457_280));
        assert_eq!(
            chat.attachments[0].content_type.as_deref(),
            Some("application/pdf")
        );
        assert_eq!(
            crate::front::message_files(&chat, None),
            vec![Content::File {
                file: SentFile {
                    name: "returns_policy.pdf".into(),
                    size: Some(31_457_280),
                    body: FileBody::Remote(chat.attachments[0].url.clone()),
                },
                workspace: Some(krake_core::workspace::WorkspaceSlug::parse("lunavo").unwrap()),
            }]
        );
    }

    #[test]
    fn a_refused_token_is_told_apart_from_an_unreachable_discord() {
        let refused = failure(serenity::Error::Gateway(
            GatewayError::InvalidAuthentication,
        ));
        assert!(matches!(refused, FrontFailure::Unauthorized(m) if m.contains("4004")));
        let closed = failure(serenity::Error::Gateway(GatewayError::Closed(None)));
        assert!(matches!(closed, FrontFailure::Unreachable(_)));
        let other = failure(serenity::Error::Other("connection refused"));
        assert!(matches!(other, FrontFailure::Unreachable(m) if m.contains("connection refused")));
    }

    #[test]
    fn gateway_interactions_take_the_endpoint_path() {
        // The documented button click, as INTERACTION_CREATE delivers it to serenity. Current
        // payloads also carry `member.flags`, `locale`, `entitlements` and
        // `attachment_size_limit` (the 2021 example predates them), which serenity requires.
        let mut click = fixture("docs_message_component_button_click.json");
        click["member"]["flags"] = json!(0);
        click["locale"] = json!("en-US");
        click["entitlements"] = json!([]);
        click["attachment_size_limit"] = json!(10_485_760);
        let typed: Interaction = serde_json::from_value(click).unwrap();
        let wire = to_wire(&typed).unwrap();
        assert_eq!(wire.kind, crate::wire::kind::MESSAGE_COMPONENT);
        assert_eq!(wire.id, "846462639134605312");
        assert_eq!(wire.token, "unique_interaction_token");
        assert_eq!(wire.invoker().unwrap().id, "53908232506183680");
        assert_eq!(wire.data.as_ref().unwrap()["custom_id"], "click_one");
        assert_eq!(wire.channel(), Some(345_626_669_114_982_999));
    }
}
