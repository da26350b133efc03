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
    /// Mark the session cookie `Secure` (when Krake is served over HTTPS; default: on when
    /// `public_url` is https).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secure_cookies: Option<bool>,
    /// Hours a sign-in lasts (default 12).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_hours: Option<u64>,
    /// Failed sign-ins of one user name from one address (within 15 minutes) before that
    /// address backs off (default 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_attempts: Option<u32>,
    /// The longest sign-in backoff, in seconds (default 900).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_backoff_max_secs: Option<u64>,
    /// Sign-in tries per minute from one address, any user names (default 30).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_per_address_per_minute: Option<u32>,
    /// Sign-in tries per minute of one user name from addresses that failed for it
    /// (default 10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_per_user_per_minute: Option<u32>,
    /// Password checks (argon2, ~19 MiB each) at once (default: the number of cores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_checks: Option<usize>,
    /// Password checks waiting beyond those before sign-in answers 503 (default 32).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_queue: Option<usize>,
    /// Behind a reverse proxy: the header whose last address is the client's
    /// (`x-forwarded-for`); unset, the peer's address counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_ip_header: Option<String>,
    /// Seconds between checks of an idle web chat socket's credential (default 30).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket_recheck_secs: Option<u64>,
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
    /// This Krake's public URL (`https://krake.example.com`): the OpenID Connect redirect, the
    /// only origin whose pages may open the web chat, and `Secure` cookies when https.
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
        let public_url = self.public_url.clone().filter(|u| !u.trim().is_empty());
        let https = public_url
            .as_deref()
            .is_some_and(|u| u.to_ascii_lowercase().starts_with("https://"));
        Ok(WebConfig {
            secure_cookies: self.secure_cookies.unwrap_or(https),
            public_url,
            login_backoff_max: self
                .login_backoff_max_secs
                .map_or(d.login_backoff_max, |s| Duration::from_secs(s.max(1))),
            login_per_address_per_minute: self
                .login_per_address_per_minute
                .unwrap_or(d.login_per_address_per_minute)
                .max(1),
            login_per_user_per_minute: self
                .login_per_user_per_minute
                .unwrap_or(d.login_per_user_per_minute)
                .max(1),
            password_checks: self.password_checks.unwrap_or(d.password_checks).max(1),
            password_queue: self.password_queue.unwrap_or(d.password_queue),
            client_ip_header: self
                .client_ip_header
                .clone()
                .filter(|h| !h.trim().is_empty()),
            socket_recheck: self
                .socket_recheck_secs
                .map_or(d.socket_recheck, |s| Duration::from_secs(s.max(1))),
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
            login_backoff_max_secs: Some(c.login_backoff_max.as_secs()),
            login_per_address_per_minute: Some(c.login_per_address_per_minute),
            login_per_user_per_minute: Some(c.login_per_user_per_minute),
            password_checks: Some(c.password_checks),
            password_queue: Some(c.password_queue),
            client_ip_header: c.client_ip_header.clone(),
            socket_recheck_secs: Some(c.socket_recheck.as_secs()),
            max_body_bytes: Some(c.max_body_bytes),
            oidc_issuer: oidc.map(|o| o.issuer.clone()),
            oidc_client_id: oidc.map(|o| o.client_id.clone()),
            oidc_client_secret: oidc.map(|o| o.client_secret.clone()),
            public_url: c
                .public_url
                .clone()
                .or_else(|| oidc.map(|o| o.base_url.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_https_public_url_makes_cookies_secure_unless_told_otherwise() {
        let https = WebFile {
            public_url: Some("https://krake.example.com".into()),
            ..WebFile::default()
        };
        let c = https.resolve().unwrap();
        assert!(c.secure_cookies);
        assert_eq!(c.public_url.as_deref(), Some("https://krake.example.com"));
        let off = WebFile {
            secure_cookies: Some(false),
            ..https
        };
        assert!(!off.resolve().unwrap().secure_cookies);
        let http = WebFile {
            public_url: Some("http://127.0.0.1:8080".into()),
            ..WebFile::default()
        };
        assert!(!http.resolve().unwrap().secure_cookies);
        assert!(!WebFile::default().resolve().unwrap().secure_cookies);
    }

    #[test]
    fn limits_are_read_and_written_back() {
        let f: WebFile = toml_like(&[
            ("password_checks", 3),
            ("password_queue", 7),
            ("login_per_address_per_minute", 100),
        ]);
        let c = f.resolve().unwrap();
        assert_eq!((c.password_checks, c.password_queue), (3, 7));
        assert_eq!(c.login_per_address_per_minute, 100);
        let back = WebFile::effective(&c);
        assert_eq!(back.password_checks, Some(3));
        assert_eq!(back.socket_recheck_secs, Some(30));
    }

    fn toml_like(pairs: &[(&str, u64)]) -> WebFile {
        let v: serde_json::Map<String, serde_json::Value> = pairs
            .iter()
            .map(|(k, n)| ((*k).to_owned(), serde_json::Value::from(*n)))
            .collect();
        serde_json::from_value(serde_json::Value::Object(v)).unwrap()
    }
}
