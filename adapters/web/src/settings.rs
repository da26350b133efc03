//! `[web]` in the config file: read (the OpenID Connect `KRAKE_OIDC_…` variables preferred over
//! the file) into a [`WebConfig`], and written back from one for `krake config` (the client
//! secret as `***`).

use crate::front::WebConfig;
use crate::oidc::OidcConfig;
use krake_core::secret::Secret;
use krake_core::settings::{SettingsError, env_or, env_secret};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[web]` in the config file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebFile {
    /// Mark the session cookie `Secure` (when Krake is served over HTTPS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secure_cookies: Option<bool>,
    /// Hours a sign-in lasts (default 12).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_hours: Option<u64>,
    /// Failed sign-ins per user name per 15 minutes before refusing (default 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_attempts: Option<u32>,
    /// Largest API or form body in bytes (default 65536).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<usize>,
    /// OpenID Connect issuer (`https://accounts.google.com`; `KRAKE_OIDC_ISSUER`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc_issuer: Option<String>,
    /// OpenID Connect client id (`KRAKE_OIDC_CLIENT_ID`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc_client_id: Option<String>,
    /// OpenID Connect client secret (prefer `KRAKE_OIDC_CLIENT_SECRET`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc_client_secret: Option<Secret>,
    /// This Krake's public URL, for the OpenID Connect redirect (`https://krake.example.com`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
}

impl WebFile {
    /// The web front's settings.
    pub fn resolve(&self) -> Result<WebConfig, SettingsError> {
        let d = WebConfig::default();
        let secret = env_secret("KRAKE_OIDC_CLIENT_SECRET", self.oidc_client_secret.as_ref());
        let issuer = env_or("KRAKE_OIDC_ISSUER", self.oidc_issuer.as_ref());
        let client = env_or("KRAKE_OIDC_CLIENT_ID", self.oidc_client_id.as_ref());
        let oidc = match (issuer, client, secret) {
            (Some(issuer), Some(client_id), Some(client_secret)) => Some(OidcConfig {
                issuer,
                client_id,
                client_secret,
                base_url: self
                    .public_url
                    .clone()
                    .unwrap_or_else(|| "http://127.0.0.1:8080".into()),
            }),
            (None, None, None) => None,
            _ => {
                return Err(SettingsError::new(
                    "[web] OpenID Connect needs all three of oidc_issuer, oidc_client_id and oidc_client_secret (KRAKE_OIDC_CLIENT_SECRET)",
                ));
            }
        };
        Ok(WebConfig {
            secure_cookies: self.secure_cookies.unwrap_or(false),
            session_ttl: self
                .session_hours
                .map(|h| Duration::from_secs(h.max(1) * 3600))
                .unwrap_or(d.session_ttl),
            login_attempts: self.login_attempts.unwrap_or(d.login_attempts).max(1),
            max_body_bytes: self.max_body_bytes.unwrap_or(d.max_body_bytes).max(1024),
            oidc,
            ..d
        })
    }

    /// The settings in effect, as they would be written in the file (the secret as `***`).
    pub fn effective(c: &WebConfig) -> Self {
        let oidc = c.oidc.as_ref();
        Self {
            secure_cookies: Some(c.secure_cookies),
            session_hours: Some(c.session_ttl.as_secs() / 3600),
            login_attempts: Some(c.login_attempts),
            max_body_bytes: Some(c.max_body_bytes),
            oidc_issuer: oidc.map(|o| o.issuer.clone()),
            oidc_client_id: oidc.map(|o| o.client_id.clone()),
            oidc_client_secret: oidc.map(|o| o.client_secret.clone()),
            public_url: oidc.map(|o| o.base_url.clone()),
        }
    }
}
