//! The bytes of files people send: `getFile` for the file's path (Telegram says its size
//! there too), then the file endpoint (`<api>/file/bot<token>/<path>`), streamed and stopped at
//! the size limit. Errors never carry the URL (it holds the bot token).

use crate::config::TelegramConfig;
use crate::front::FrontError;
use async_trait::async_trait;
use futures_util::StreamExt;
use krake_core::knowledge::learn::{FetchError, FileFetcher};
use teloxide::Bot;
use teloxide::net::Download;
use teloxide::prelude::Requester;
use teloxide::types::FileId;

/// Fetches the files people send to the bot.
#[derive(Debug, Clone)]
pub struct FileDownloads {
    bot: Bot,
}

impl FileDownloads {
    /// Downloads through the bot `config` names (its API URL too).
    pub fn new(config: &TelegramConfig) -> Result<Self, FrontError> {
        Ok(Self {
            bot: crate::front::bot(config)?,
        })
    }
}

#[async_trait]
impl FileFetcher for FileDownloads {
    fn front(&self) -> &str {
        crate::FRONT
    }

    async fn fetch(&self, file_id: &str, max_bytes: u64) -> Result<Vec<u8>, FetchError> {
        let file = self
            .bot
            .get_file(FileId(file_id.to_owned()))
            .await
            .map_err(|e| match e {
                teloxide::RequestError::Api(api) => {
                    FetchError::Failed(format!("Telegram refused getFile: {api}"))
                }
                teloxide::RequestError::Network(n) => FetchError::Failed(
                    if n.is_timeout() {
                        "Telegram did not answer in time"
                    } else {
                        "Telegram could not be reached"
                    }
                    .to_owned(),
                ),
                other => FetchError::Failed(format!(
                    "getFile failed ({})",
                    other.to_string().replace(self.bot.token(), "***")
                )),
            })?;
        if u64::from(file.meta.size) > max_bytes {
            return Err(FetchError::TooLarge(max_bytes));
        }
        let mut stream = self.bot.download_file_stream(&file.path);
        let mut out = Vec::with_capacity(usize::try_from(file.meta.size).unwrap_or(0));
        while let Some(part) = stream.next().await {
            let part = part.map_err(|e| {
                FetchError::Failed(format!("the download failed: {}", e.without_url()))
            })?;
            if (out.len() + part.len()) as u64 > max_bytes {
                return Err(FetchError::TooLarge(max_bytes));
            }
            out.extend_from_slice(&part);
        }
        Ok(out)
    }
}
