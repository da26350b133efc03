//! The bytes of files people send (message attachments, `/learn`'s attachment option): a GET
//! of the attachment's URL, only from Discord's CDN hosts (or the configured API's own host,
//! for a local Discord), without redirects, streamed and stopped at the size limit.

use crate::DiscordConfig;
use async_trait::async_trait;
use krake_core::knowledge::learn::{FetchError, FileFetcher};
use std::time::Duration;

/// The hosts Discord serves attachments from.
pub const CDN_HOSTS: &[&str] = &["cdn.discordapp.com", "media.discordapp.net"];

/// Fetches attachments.
#[derive(Debug, Clone)]
pub struct Attachments {
    client: reqwest::Client,
    /// The configured API's host and port, also allowed (a local Discord serves its files).
    api_origin: Option<(String, Option<u16>)>,
}

impl Attachments {
    /// Fetches for the Discord front `config` describes.
    pub fn new(config: &DiscordConfig) -> Self {
        let api_origin = reqwest::Url::parse(&config.api_url)
            .ok()
            .and_then(|u| u.host_str().map(|h| (h.to_owned(), u.port())));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self { client, api_origin }
    }

    /// Whether `url` is one Krake fetches attachments from.
    pub fn allowed(&self, url: &str) -> bool {
        let Ok(u) = reqwest::Url::parse(url) else {
            return false;
        };
        let Some(host) = u.host_str() else {
            return false;
        };
        (u.scheme() == "https" && CDN_HOSTS.contains(&host))
            || self
                .api_origin
                .as_ref()
                .is_some_and(|(h, p)| h == host && *p == u.port())
    }
}

#[async_trait]
impl FileFetcher for Attachments {
    fn front(&self) -> &str {
        "discord"
    }

    async fn fetch(&self, url: &str, max_bytes: u64) -> Result<Vec<u8>, FetchError> {
        if !self.allowed(url) {
            return Err(FetchError::Failed(
                "the attachment is not on Discord's CDN".to_owned(),
            ));
        }
        let mut res =
            self.client.get(url).send().await.map_err(|e| {
                FetchError::Failed(format!("Discord unreachable: {}", e.without_url()))
            })?;
        if !res.status().is_success() {
            return Err(FetchError::Failed(format!(
                "Discord answered {} for the attachment (it may have expired; send it again)",
                res.status()
            )));
        }
        if res.content_length().is_some_and(|n| n > max_bytes) {
            return Err(FetchError::TooLarge(max_bytes));
        }
        let mut out = Vec::new();
        while let Some(part) = res
            .chunk()
            .await
            .map_err(|e| FetchError::Failed(format!("the download failed: {}", e.without_url())))?
        {
            if (out.len() + part.len()) as u64 > max_bytes {
                return Err(FetchError::TooLarge(max_bytes));
            }
            out.extend_from_slice(&part);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_discords_cdn_and_the_configured_api_host_are_fetched() {
        let a = Attachments::new(&DiscordConfig {
            api_url: "http://127.0.0.1:4567/api/v10".to_owned(),
            ..DiscordConfig::default()
        });
        assert!(a.allowed("https://cdn.discordapp.com/attachments/1/2/faq.md"));
        assert!(a.allowed("https://media.discordapp.net/attachments/1/2/faq.pdf"));
        assert!(a.allowed("http://127.0.0.1:4567/attachments/1/2/faq.md"));
        assert!(
            !a.allowed("http://cdn.discordapp.com/attachments/1/2/faq.md"),
            "not https"
        );
        assert!(!a.allowed("http://127.0.0.1:80/admin"), "another port");
        assert!(!a.allowed("https://evil.example/faq.md"));
        assert!(!a.allowed("not a url"));
    }
}
