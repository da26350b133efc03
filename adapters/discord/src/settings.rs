//! `[discord]` in the config file: read (the `KRAKE_DISCORD_…` variables preferred over the
//! file) into a [`DiscordConfig`], and written back from one for `krake config` (the token as
//! `***`).

use crate::{DiscordConfig, snowflake};
use krake_core::config::Directory;
use krake_core::secret::Secret;
use krake_core::settings::{SettingsError, env_or, env_secret, known_workspace};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// `[discord]` in the config file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DiscordFile {
    /// The bot token (prefer `KRAKE_DISCORD_TOKEN`): gateway, posting threads, registration.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// The application's public key, hex (`KRAKE_DISCORD_PUBLIC_KEY`): the interactions endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// The application id (`KRAKE_DISCORD_APPLICATION_ID`), needed by `krake discord register`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application_id: Option<String>,
    /// REST base URL (`KRAKE_DISCORD_API_URL`); default `https://discord.com`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_url: Option<String>,
    /// Gateway URL (`KRAKE_DISCORD_GATEWAY_URL`); default: the one Discord names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_url: Option<String>,
    /// Milliseconds before a slow command is deferred (default 2000; Discord allows 3000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub defer_after_ms: Option<u64>,
    /// Largest interaction body accepted, in bytes (default 65536).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<usize>,
    /// Signed interactions whose timestamp is further than this many seconds from now are
    /// refused (default 300; Discord never retries an interaction).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_signature_age_secs: Option<u64>,
    /// Workspace slug → channel id where its new inbox threads are posted.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub channels: BTreeMap<String, String>,
}

impl DiscordFile {
    /// The front's settings (the front is off when neither token nor public key is set).
    pub fn resolve(&self, directory: &Directory) -> Result<DiscordConfig, SettingsError> {
        let mut c = DiscordConfig {
            token: env_secret("KRAKE_DISCORD_TOKEN", self.token.as_ref()),
            public_key: env_or("KRAKE_DISCORD_PUBLIC_KEY", self.public_key.as_ref()),
            ..Default::default()
        };
        if let Some(key) = &c.public_key {
            crate::verify::SignatureVerifier::from_hex(key).map_err(|e| {
                SettingsError::new(format!(
                    "discord.public_key / KRAKE_DISCORD_PUBLIC_KEY: {e}"
                ))
            })?;
        }
        if let Some(app) = env_or("KRAKE_DISCORD_APPLICATION_ID", self.application_id.as_ref()) {
            c.application_id = Some(snowflake(&app).ok_or_else(|| {
                SettingsError::new(format!(
                    "discord.application_id: `{app}` is not a Discord id (a number)"
                ))
            })?);
        }
        if let Some(url) = env_or("KRAKE_DISCORD_API_URL", self.api_url.as_ref()) {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(SettingsError::new(format!(
                    "discord.api_url: `{url}` is not an http(s) URL"
                )));
            }
            c.api_url = url;
        }
        c.gateway_url = env_or("KRAKE_DISCORD_GATEWAY_URL", self.gateway_url.as_ref());
        if let Some(ms) = self.defer_after_ms {
            c.defer_after = Duration::from_millis(ms.clamp(100, 2800));
        }
        if let Some(n) = self.max_body_bytes {
            c.max_body_bytes = n.clamp(1024, 1 << 20);
        }
        if let Some(secs) = self.max_signature_age_secs {
            c.max_signature_skew = Duration::from_secs(secs.max(1));
        }
        for (ws, channel) in &self.channels {
            let slug = known_workspace(directory, ws, "[discord.channels]")?;
            let id = snowflake(channel).ok_or_else(|| {
                SettingsError::new(format!(
                    "[discord.channels] {ws}: `{channel}` is not a Discord channel id"
                ))
            })?;
            c.channels.insert(slug, id);
        }
        Ok(c)
    }

    /// The settings in effect, as they would be written in the file (the token as `***`).
    pub fn effective(c: &DiscordConfig) -> Self {
        Self {
            token: c.token.clone(),
            // A public key is not a secret.
            public_key: c.public_key.clone(),
            application_id: c.application_id.map(|a| a.to_string()),
            api_url: Some(c.api_url.clone()),
            gateway_url: c.gateway_url.clone(),
            defer_after_ms: Some(c.defer_after.as_millis() as u64),
            max_body_bytes: Some(c.max_body_bytes),
            max_signature_age_secs: Some(c.max_signature_skew.as_secs()),
            channels: c
                .channels
                .iter()
                .map(|(ws, ch)| (ws.to_string(), ch.to_string()))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<DiscordConfig, String> {
        let file: DiscordFile = toml::from_str(text).map_err(|e| e.to_string())?;
        file.resolve(&Directory::default())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn discord_settings_are_checked_and_the_token_never_written() {
        let d = load(
            r#"
token = "MTIz.NDU2.s3cret-token"
public_key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
application_id = "827290144020496384"
api_url = "http://127.0.0.1:9"
defer_after_ms = 1500
[channels]
lunavo = "1111111111111111111"
"#,
        )
        .unwrap();
        assert!(d.enabled());
        assert_eq!(d.application_id, Some(827_290_144_020_496_384));
        assert_eq!(d.api_url, "http://127.0.0.1:9");
        assert_eq!(d.defer_after.as_millis(), 1500);
        assert_eq!(
            d.workspace_of(1_111_111_111_111_111_111)
                .map(|w| w.as_str()),
            Some("lunavo")
        );
        let out = toml::to_string(&DiscordFile::effective(&d)).unwrap();
        assert!(!out.contains("s3cret"), "{out}");
        assert!(out.starts_with("token = \"***\""), "{out}");
        assert!(out.contains("lunavo = \"1111111111111111111\""), "{out}");
        assert!(!format!("{d:?}").contains("s3cret"));
        for (bad, says) in [
            ("public_key = \"xyz\"\n", "public key"),
            ("[channels]\nnarnia = \"1\"\n", "narnia"),
            ("[channels]\nlunavo = \"#general\"\n", "#general"),
            ("application_id = \"abc\"\n", "application_id"),
            ("tokn = \"x\"\n", "tokn"),
        ] {
            let e = load(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        // Nothing configured: the front is off.
        assert!(!load("").unwrap().enabled());
    }
}
