//! `[telegram]` in the config file: read (with `KRAKE_TELEGRAM_TOKEN` and
//! `KRAKE_TELEGRAM_WEBHOOK_SECRET` preferred over the file) into a [`TelegramConfig`], and
//! written back from one for `krake config` (secrets as `***`).

use crate::config::{BotToken, ChatRoute, Mode, TelegramConfig, WebhookSecret};
use crate::place::Place;
use krake_core::config::Directory;
use krake_core::secret::Secret;
use krake_core::settings::{SettingsError, env_secret, known_workspace};
use serde::{Deserialize, Serialize};

/// `[telegram]` in the config file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramFile {
    /// The bot token (prefer `KRAKE_TELEGRAM_TOKEN`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// The Bot API base URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// `polling` (default) or `webhook`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Seconds a getUpdates call waits for updates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub poll_timeout_secs: Option<u32>,
    /// The webhook secret (prefer `KRAKE_TELEGRAM_WEBHOOK_SECRET`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<Secret>,
    /// The public URL registered with setWebhook at start-up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Where each workspace's inbox threads are posted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chats: Vec<TelegramChatFile>,
}

/// `[[telegram.chats]]` in the config file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramChatFile {
    /// The workspace slug.
    pub workspace: String,
    /// The chat id (groups and supergroups are negative, e.g. -1001234567890).
    pub chat_id: i64,
    /// The forum topic (`message_thread_id`), in a forum supergroup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<i32>,
}

impl TelegramFile {
    /// The front's settings, or `None` when no token is set (the front is off).
    pub fn resolve(&self, directory: &Directory) -> Result<Option<TelegramConfig>, SettingsError> {
        let Some(token) = env_secret("KRAKE_TELEGRAM_TOKEN", self.token.as_ref()) else {
            return Ok(None);
        };
        // The message never echoes the value: a token pasted wrongly is still a secret.
        let token = BotToken::parse(token.expose()).map_err(|e| {
            SettingsError::new(format!(
                "KRAKE_TELEGRAM_TOKEN / telegram.token is not a bot token: {e}"
            ))
        })?;
        let mode = match self.mode.as_deref().unwrap_or("polling") {
            "polling" => Mode::Polling {
                timeout_secs: self.poll_timeout_secs.unwrap_or(25).min(50),
            },
            "webhook" => {
                let Some(secret) = env_secret(
                    "KRAKE_TELEGRAM_WEBHOOK_SECRET",
                    self.webhook_secret.as_ref(),
                ) else {
                    return Err(SettingsError::new(
                        "telegram.mode = \"webhook\" needs a secret: set KRAKE_TELEGRAM_WEBHOOK_SECRET or telegram.webhook_secret",
                    ));
                };
                Mode::Webhook {
                    secret: WebhookSecret::parse(secret.expose())
                        .map_err(|e| SettingsError::new(format!("telegram.webhook_secret: {e}")))?,
                    url: self.webhook_url.clone().filter(|u| !u.is_empty()),
                }
            }
            other => {
                return Err(SettingsError::new(format!(
                    "telegram.mode must be `polling` or `webhook`, not `{other}`"
                )));
            }
        };
        let mut chats = Vec::new();
        for c in &self.chats {
            let workspace = known_workspace(directory, &c.workspace, "[[telegram.chats]]")?;
            let place = match c.topic {
                Some(t) if t > 0 => Place::topic(c.chat_id, t),
                Some(t) => {
                    return Err(SettingsError::new(format!(
                        "[[telegram.chats]] for {workspace}: topic {t} is not a topic id"
                    )));
                }
                None => Place::chat(c.chat_id),
            };
            chats.push(ChatRoute { workspace, place });
        }
        let api_url = self.api_url.clone().filter(|u| !u.trim().is_empty());
        if let Some(url) = &api_url {
            url::Url::parse(url).map_err(|_| {
                SettingsError::new(format!("telegram.api_url `{url}` is not a URL"))
            })?;
        }
        Ok(Some(TelegramConfig {
            token,
            api_url,
            mode,
            chats,
        }))
    }

    /// The settings in effect, as they would be written in the file (secrets as `***`).
    pub fn effective(config: &TelegramConfig) -> Self {
        let (mode, poll_timeout_secs, webhook_secret, webhook_url) = match &config.mode {
            Mode::Polling { timeout_secs } => ("polling", Some(*timeout_secs), None, None),
            Mode::Webhook { secret, url } => (
                "webhook",
                None,
                Some(Secret::new(secret.expose())),
                url.clone(),
            ),
        };
        Self {
            token: Some(Secret::new(config.token.expose())),
            api_url: config.api_url.clone(),
            mode: Some(mode.to_owned()),
            poll_timeout_secs,
            webhook_secret,
            webhook_url,
            chats: config
                .chats
                .iter()
                .map(|r| TelegramChatFile {
                    workspace: r.workspace.to_string(),
                    chat_id: r.place.chat,
                    topic: r.place.topic,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Option<TelegramConfig>, String> {
        let file: TelegramFile = toml::from_str(text).map_err(|e| e.to_string())?;
        file.resolve(&Directory::default())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn telegram_settings_are_checked_and_written_back_without_secrets() {
        let t = load(
            r#"
token = "123456:SECRET-token_x"
mode = "webhook"
webhook_secret = "hook-secret_1"
webhook_url = "https://krake.example/telegram/webhook"
[[chats]]
workspace = "lunavo"
chat_id = -1001847508954
topic = 4
"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(t.chats.len(), 1);
        assert_eq!(
            t.chats[0].place.destination().as_str(),
            "telegram:-1001847508954:topic:4"
        );
        let out = toml::to_string(&TelegramFile::effective(&t)).unwrap();
        assert!(
            !out.contains("SECRET") && !out.contains("hook-secret"),
            "{out}"
        );
        assert!(out.starts_with("token = \"***\""), "{out}");
        assert!(out.contains("webhook_secret = \"***\""), "{out}");
        assert!(out.contains("topic = 4"), "{out}");
        assert!(!format!("{t:?}").contains("SECRET"));
        let e =
            load("token = \"1:a\"\n[[chats]]\nworkspace = \"narnia\"\nchat_id = 1\n").unwrap_err();
        assert!(e.contains("narnia"), "{e}");
        let e = load("token = \"1:a\"\nmode = \"webhook\"\n").unwrap_err();
        assert!(e.contains("KRAKE_TELEGRAM_WEBHOOK_SECRET"), "{e}");
        let e = load("token = \"not a token\"\n").unwrap_err();
        assert!(!e.contains("not a token"), "the value is never echoed: {e}");
        // No token: the front is off.
        assert!(load("").unwrap().is_none());
    }
}
