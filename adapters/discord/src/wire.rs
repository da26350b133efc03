//! Interaction payloads as Discord sends them, parsed tolerantly (the documented examples omit
//! fields real payloads carry), and the response bodies Krake sends back.

use serde::Deserialize;
use serde_json::{Value, json};

/// Interaction types (`type` of an interaction).
pub mod kind {
    /// PING: answered with PONG.
    pub const PING: u8 = 1;
    /// A slash command.
    pub const APPLICATION_COMMAND: u8 = 2;
    /// A button (or other component) was used.
    pub const MESSAGE_COMPONENT: u8 = 3;
    /// Autocomplete for an option.
    pub const AUTOCOMPLETE: u8 = 4;
    /// A modal was submitted.
    pub const MODAL_SUBMIT: u8 = 5;
}

/// Interaction callback types.
pub mod callback {
    /// PONG.
    pub const PONG: u8 = 1;
    /// A message in answer.
    pub const CHANNEL_MESSAGE: u8 = 4;
    /// "Krake is thinking…": the answer follows through the interaction token.
    pub const DEFERRED_CHANNEL_MESSAGE: u8 = 5;
    /// Autocomplete choices.
    pub const AUTOCOMPLETE_RESULT: u8 = 8;
}

/// Message flag: only the person who used the interaction sees the message.
pub const EPHEMERAL: u64 = 64;

/// A Discord user.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct User {
    /// Snowflake.
    pub id: String,
    /// User name.
    #[serde(default)]
    pub username: String,
    /// Display name, if set.
    #[serde(default)]
    pub global_name: Option<String>,
    /// Whether it is a bot.
    #[serde(default)]
    pub bot: bool,
}

impl User {
    /// The name to show.
    pub fn display(&self) -> &str {
        self.global_name
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(&self.username)
    }
}

/// A guild member (in guild interactions).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Member {
    /// The user.
    #[serde(default)]
    pub user: Option<User>,
    /// Nickname in the guild.
    #[serde(default)]
    pub nick: Option<String>,
}

/// The message a component was attached to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MessageRef {
    /// Snowflake.
    pub id: String,
    /// Its channel.
    #[serde(default)]
    pub channel_id: Option<String>,
}

/// An interaction.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Interaction {
    /// Snowflake.
    pub id: String,
    /// The application it is for.
    #[serde(default)]
    pub application_id: Option<String>,
    /// See [`kind`].
    #[serde(rename = "type")]
    pub kind: u8,
    /// The token for the response and follow-ups (valid 15 minutes).
    #[serde(default)]
    pub token: String,
    /// Type-specific data.
    #[serde(default)]
    pub data: Option<Value>,
    /// The guild, when used in one.
    #[serde(default)]
    pub guild_id: Option<String>,
    /// The channel it was used in.
    #[serde(default)]
    pub channel_id: Option<String>,
    /// The member, in guilds.
    #[serde(default)]
    pub member: Option<Member>,
    /// The user, in DMs.
    #[serde(default)]
    pub user: Option<User>,
    /// The message, for components.
    #[serde(default)]
    pub message: Option<MessageRef>,
}

impl Interaction {
    /// Who used it: the member's user in guilds, the user in DMs.
    pub fn invoker(&self) -> Option<&User> {
        self.member
            .as_ref()
            .and_then(|m| m.user.as_ref())
            .or(self.user.as_ref())
    }

    /// The name to show for the invoker (guild nickname first).
    pub fn invoker_display(&self) -> String {
        let nick = self.member.as_ref().and_then(|m| m.nick.clone());
        nick.filter(|n| !n.is_empty())
            .or_else(|| self.invoker().map(|u| u.display().to_owned()))
            .unwrap_or_default()
    }

    /// The channel, as a snowflake.
    pub fn channel(&self) -> Option<u64> {
        self.channel_id.as_deref().and_then(crate::snowflake)
    }
}

/// A slash command's data.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CommandData {
    /// The command's name.
    pub name: String,
    /// The options given.
    #[serde(default)]
    pub options: Vec<CommandOption>,
    /// What options refer to (attachments by id).
    #[serde(default)]
    pub resolved: Resolved,
}

/// The objects a slash command's options refer to by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Resolved {
    /// Attachments, by the id an attachment option's value names.
    #[serde(default)]
    pub attachments: std::collections::BTreeMap<String, Attachment>,
}

/// A file attached to a message, or given as an attachment option.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Attachment {
    /// Snowflake.
    pub id: String,
    /// Its file name.
    pub filename: String,
    /// Its size in bytes.
    #[serde(default)]
    pub size: Option<u64>,
    /// Where Discord's CDN serves it.
    pub url: String,
    /// Its media type, when Discord knows it.
    #[serde(default)]
    pub content_type: Option<String>,
}

/// One option value of a slash command.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CommandOption {
    /// Its name.
    pub name: String,
    /// Its type (3 string, 4 integer, 11 attachment, …).
    #[serde(rename = "type")]
    pub kind: u8,
    /// Its value.
    #[serde(default)]
    pub value: Option<Value>,
    /// Sub-options (sub-commands).
    #[serde(default)]
    pub options: Vec<CommandOption>,
}

/// A component interaction's data.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ComponentData {
    /// The component's custom id.
    pub custom_id: String,
    /// The component's type (2 = button).
    #[serde(default)]
    pub component_type: u8,
}

/// The PONG body.
pub fn pong() -> Value {
    json!({ "type": callback::PONG })
}

/// The deferred-message body (type 5).
pub fn deferred(ephemeral: bool) -> Value {
    if ephemeral {
        json!({ "type": callback::DEFERRED_CHANNEL_MESSAGE, "data": { "flags": EPHEMERAL } })
    } else {
        json!({ "type": callback::DEFERRED_CHANNEL_MESSAGE })
    }
}

/// A message body as the answer (type 4).
pub fn message(data: Value) -> Value {
    json!({ "type": callback::CHANNEL_MESSAGE, "data": data })
}
