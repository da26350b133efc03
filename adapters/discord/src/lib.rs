//! # krake-discord
//!
//! Krake's Discord front. It converts Discord events to core commands and renders core replies;
//! no business rule lives here. Two ways in, one way out:
//!
//! - [`interactions`]: `POST /discord/interactions`, the signed HTTP interactions endpoint
//!   (Ed25519 over timestamp + raw body, PING → PONG, slash commands, buttons, deferral).
//! - [`gateway`]: the serenity gateway client: messages that mention the bot, DMs, messages in
//!   Krake's Discord threads, and interactions when no endpoint URL is configured.
//! - [`sender`]: the outbox [`Sender`](krake_core::delivery::Sender): posts inbox threads with
//!   Approve / Reject buttons, opens a Discord thread on each, edits them on decisions.
//!
//! Around them:
//! - [`settings`]: `[discord]` in the config file, read into a [`DiscordConfig`] and written back
//!   for `krake config` with the token as `***`.
//! - [`verify`]: request signature verification.
//! - [`wire`]: the interaction payloads as Discord sends them (tolerant parsing).
//! - [`files`]: [`Attachments`], the bytes of files people send, from Discord's CDN only.
//! - [`commands`]: slash-command definitions generated from core's `COMMANDS` and
//!   [`Directory`](krake_core::config::Directory), and options → command text.
//! - [`render`]: replies and threads → message bodies (2000-character split, buttons).
//! - [`rest`]: the REST client (serenity's routes and request builder over reqwest, pointed at
//!   a configurable base URL) with Krake's own 429 and bucket handling.
//! - [`front`]: [`DiscordFront`](front::DiscordFront), the shared event → core → reply logic.

pub mod commands;
pub mod files;
pub mod front;
pub mod gateway;
pub mod interactions;
pub mod render;
pub mod rest;
pub mod sender;
pub mod settings;
pub mod verify;
pub mod wire;

/// The bot token's type: core's secret, which never prints.
pub use files::Attachments;
pub use krake_core::secret::Secret;
use krake_core::workspace::WorkspaceSlug;
use std::collections::BTreeMap;
use std::time::Duration;

/// The front's name in destinations (`discord:channel:<id>`) and the outbox.
pub const FRONT: &str = "discord";

/// Discord's REST base (the client appends `/api/v10/…`).
pub const DEFAULT_API_URL: &str = "https://discord.com";

/// The Discord front's configuration.
#[derive(Debug, Clone)]
pub struct DiscordConfig {
    /// The bot token: enables the gateway and REST (posting threads, follow-ups, registration).
    pub token: Option<Secret>,
    /// The application's public key (hex): enables `POST /discord/interactions`.
    pub public_key: Option<String>,
    /// The application id (needed to register commands; read from interactions otherwise).
    pub application_id: Option<u64>,
    /// REST base URL, `https://discord.com` unless a proxy or a test server stands in.
    pub api_url: String,
    /// Gateway URL; when absent the one Discord's `GET /gateway` names.
    pub gateway_url: Option<String>,
    /// Channel where each workspace's new inbox threads are posted.
    pub channels: BTreeMap<WorkspaceSlug, u64>,
    /// A command still working after this long is deferred (type 5) and finished by follow-up.
    pub defer_after: Duration,
    /// Largest interaction body accepted.
    pub max_body_bytes: usize,
    /// Signed interactions whose `X-Signature-Timestamp` is further than this from now are
    /// refused (401); default [`verify::DEFAULT_MAX_SKEW`] (5 minutes).
    pub max_signature_skew: Duration,
}

impl Default for DiscordConfig {
    fn default() -> Self {
        Self {
            token: None,
            public_key: None,
            application_id: None,
            api_url: DEFAULT_API_URL.to_owned(),
            gateway_url: None,
            channels: BTreeMap::new(),
            defer_after: Duration::from_millis(2000),
            max_body_bytes: 64 * 1024,
            max_signature_skew: verify::DEFAULT_MAX_SKEW,
        }
    }
}

impl DiscordConfig {
    /// Whether any part of the front is enabled.
    pub fn enabled(&self) -> bool {
        self.token.is_some() || self.public_key.is_some()
    }

    /// The workspace whose threads are posted in `channel`, if any.
    pub fn workspace_of(&self, channel: u64) -> Option<&WorkspaceSlug> {
        self.channels
            .iter()
            .find(|(_, c)| **c == channel)
            .map(|(w, _)| w)
    }
}

/// Parses a Discord snowflake (a positive 64-bit integer written in decimal).
pub fn snowflake(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u64>().ok().filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("MTIz.abc.def");
        assert!(!format!("{s:?}").contains("MTIz"));
        let c = DiscordConfig {
            token: Some(s),
            ..Default::default()
        };
        assert!(!format!("{c:?}").contains("MTIz"));
    }

    #[test]
    fn snowflakes() {
        assert_eq!(
            snowflake("1311111111111111111"),
            Some(1_311_111_111_111_111_111)
        );
        assert_eq!(snowflake("0"), None);
        assert_eq!(snowflake("-1"), None);
        assert_eq!(snowflake("99999999999999999999"), None);
        assert_eq!(snowflake(""), None);
    }
}
