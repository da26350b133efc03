//! Gateway mode: serenity's client receives MESSAGE_CREATE and INTERACTION_CREATE and hands
//! them to the [`DiscordFront`]. The client's REST calls go to `discord.api_url` (serenity's
//! proxy setting, with its own ratelimiter off as serenity requires for a proxy) and it connects
//! to `discord.gateway_url` when one is configured.

use crate::front::{ChatMessage, DiscordFront};
use crate::wire::Interaction as WireInteraction;
use crate::{DEFAULT_API_URL, Secret};
use serenity::all::{Context, EventHandler, GatewayIntents, Interaction, Message, Ready, UserId};
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
    }
}

struct Handler {
    front: Arc<DiscordFront>,
    me: OnceLock<UserId>,
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        let _ = self.me.set(ready.user.id);
        tracing::info!(user = %ready.user.name, guilds = ready.guilds.len(), "Discord gateway ready");
    }

    async fn message(&self, _ctx: Context, m: Message) {
        let chat = chat_message(&m, self.me.get().copied());
        if let Some(reply) = self.front.message(&chat).await {
            self.front.say(chat.channel, &reply).await;
        }
    }

    async fn interaction_create(&self, _ctx: Context, interaction: Interaction) {
        // One path for both ways in: the gateway's typed interaction as the endpoint's JSON.
        let parsed = serde_json::to_value(&interaction)
            .map_err(|e| e.to_string())
            .and_then(|v| serde_json::from_value::<WireInteraction>(v).map_err(|e| e.to_string()));
        let i = match parsed {
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

/// Runs the gateway client until `stop` turns true.
pub async fn run(
    front: Arc<DiscordFront>,
    token: Secret,
    api_url: &str,
    gateway_url: Option<String>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), serenity::Error> {
    let mut http = HttpBuilder::new(token.expose());
    let base = api_url.trim_end_matches('/');
    if base != DEFAULT_API_URL {
        http = http.proxy(base).ratelimiter_disabled(true);
    }
    if let Some(app) = front.config().application_id {
        http = http.application_id(app.into());
    }
    let intents = GatewayIntents::GUILD_MESSAGES
        | GatewayIntents::DIRECT_MESSAGES
        | GatewayIntents::MESSAGE_CONTENT;
    let mut client = serenity::all::ClientBuilder::new_with_http(http.build(), intents)
        .event_handler(Handler {
            front,
            me: OnceLock::new(),
        })
        .await?;
    if let Some(url) = gateway_url {
        *client.ws_url.lock().await = url;
    }
    let shards = client.shard_manager.clone();
    tokio::select! {
        r = client.start() => r,
        _ = stop.changed() => {
            shards.shutdown_all().await;
            Ok(())
        }
    }
}
