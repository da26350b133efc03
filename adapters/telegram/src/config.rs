//! The Telegram front's settings. The binary fills them from its config file and environment.

use crate::place::Place;
use krake_core::delivery::Routes;
use krake_core::workspace::WorkspaceSlug;
use std::fmt;

/// The bot token: a secret. It never prints (Debug and Display show `***`).
#[derive(Clone, PartialEq, Eq)]
pub struct BotToken(String);

/// Why a text is not a bot token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a Telegram bot token looks like `123456:ABC-DEF…` (digits, a colon, then the secret)")]
pub struct BotTokenError;

impl BotToken {
    /// Parses `<bot id>:<secret>` as BotFather gives it.
    pub fn parse(s: &str) -> Result<Self, BotTokenError> {
        let s = s.trim();
        match s.split_once(':') {
            Some((id, secret))
                if !id.is_empty()
                    && id.bytes().all(|b| b.is_ascii_digit())
                    && !secret.is_empty()
                    && secret
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
            {
                Ok(Self(s.to_owned()))
            }
            _ => Err(BotTokenError),
        }
    }

    /// The token itself, for the API client only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BotToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BotToken(***)")
    }
}

impl fmt::Display for BotToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// The webhook secret Telegram echoes in `X-Telegram-Bot-Api-Secret-Token`: a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

/// Why a text is not a webhook secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a webhook secret has 1 to 256 characters A-Z, a-z, 0-9, `_` and `-` (Telegram's rule)")]
pub struct WebhookSecretError;

impl WebhookSecret {
    /// Parses a secret as Telegram allows it.
    pub fn parse(s: &str) -> Result<Self, WebhookSecretError> {
        if s.is_empty()
            || s.len() > 256
            || !s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(WebhookSecretError);
        }
        Ok(Self(s.to_owned()))
    }

    /// The secret itself, for setWebhook only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares with a received header in constant time (for equal lengths).
    pub fn matches(&self, given: &[u8]) -> bool {
        let want = self.0.as_bytes();
        if want.len() != given.len() {
            return false;
        }
        want.iter()
            .zip(given)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

/// How updates arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Long polling with getUpdates (the default; needs no public URL).
    Polling {
        /// Seconds each getUpdates call may wait for updates.
        timeout_secs: u32,
    },
    /// Telegram posts updates to `krake serve` at `POST /telegram/webhook`.
    Webhook {
        /// Checked against `X-Telegram-Bot-Api-Secret-Token`.
        secret: WebhookSecret,
        /// The public URL to register with setWebhook at start-up; `None` when it is
        /// registered by other means.
        url: Option<String>,
    },
}

/// Where a workspace's inbox threads are shown on Telegram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRoute {
    /// The workspace.
    pub workspace: WorkspaceSlug,
    /// The chat or forum topic.
    pub place: Place,
}

/// The Telegram front's settings.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    /// The bot token.
    pub token: BotToken,
    /// The Bot API base URL (a local Bot API server, or a fake in tests); Telegram's when `None`.
    pub api_url: Option<String>,
    /// Polling or webhook.
    pub mode: Mode,
    /// Which chat (or topic) shows each workspace's threads.
    pub chats: Vec<ChatRoute>,
}

impl TelegramConfig {
    /// A polling configuration with no chats mapped.
    pub fn polling(token: BotToken) -> Self {
        Self {
            token,
            api_url: None,
            mode: Mode::Polling { timeout_secs: 25 },
            chats: Vec::new(),
        }
    }

    /// Adds this front's destinations to the core's routes (new threads are posted there).
    pub fn add_routes(&self, routes: &mut Routes) {
        for c in &self.chats {
            routes.add(c.workspace.clone(), c.place.destination());
        }
    }

    /// The workspace a chat (or topic) belongs to: a route for that exact topic first, then
    /// one for the whole chat, then any topic of it.
    pub fn home(&self, place: Place) -> Option<&WorkspaceSlug> {
        self.chats
            .iter()
            .find(|c| c.place == place)
            .or_else(|| {
                self.chats
                    .iter()
                    .find(|c| c.place == Place::chat(place.chat))
            })
            .or_else(|| self.chats.iter().find(|c| c.place.chat == place.chat))
            .map(|c| &c.workspace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let t = BotToken::parse("123456:ABC-def_9").unwrap();
        assert_eq!(format!("{t:?} {t}"), "BotToken(***) ***");
        assert_eq!(t.expose(), "123456:ABC-def_9");
        let s = WebhookSecret::parse("s3cr-et_").unwrap();
        assert!(!format!("{s:?}").contains("s3cr"));
        for bad in ["", "nocolon", ":abc", "12a:abc", "123:", "123:a b"] {
            assert!(BotToken::parse(bad).is_err(), "{bad}");
        }
        assert!(WebhookSecret::parse("has space").is_err());
    }

    #[test]
    fn secret_compare() {
        let s = WebhookSecret::parse("abc").unwrap();
        assert!(s.matches(b"abc"));
        assert!(!s.matches(b"abd"));
        assert!(!s.matches(b"ab"));
        assert!(!s.matches(b""));
    }

    #[test]
    fn homes() {
        let ws = |s| WorkspaceSlug::parse(s).unwrap();
        let mut c = TelegramConfig::polling(BotToken::parse("1:a").unwrap());
        c.chats = vec![
            ChatRoute {
                workspace: ws("lunavo"),
                place: Place::topic(-100, 4),
            },
            ChatRoute {
                workspace: ws("monarch"),
                place: Place::chat(-200),
            },
        ];
        assert_eq!(c.home(Place::topic(-100, 4)), Some(&ws("lunavo")));
        assert_eq!(c.home(Place::topic(-100, 9)), Some(&ws("lunavo")));
        assert_eq!(c.home(Place::topic(-200, 9)), Some(&ws("monarch")));
        assert_eq!(c.home(Place::chat(5)), None);
        let mut r = Routes::new();
        c.add_routes(&mut r);
        assert_eq!(
            r.for_workspace(&ws("lunavo"))[0].as_str(),
            "telegram:-100:topic:4"
        );
    }
}
