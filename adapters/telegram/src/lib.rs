//! # krake-telegram
//!
//! Krake's Telegram front, on teloxide's Bot API client. It converts Telegram updates into
//! core's words (a chat message, a button press) and renders core's replies and inbox threads
//! as Telegram messages; no business rule lives here.
//!
//! - [`config`]: the front's settings: the bot token (a secret), API URL, polling or webhook,
//!   and which chat (or forum topic) shows each workspace's inbox.
//! - [`place`]: a chat or forum topic, and its outbox [`Destination`](krake_core::outbox::Destination)
//!   (`telegram:<chat>` or `telegram:<chat>:topic:<id>`).
//! - [`render`]: replies and threads as plain text (no `parse_mode`, so nothing needs escaping)
//!   split into 4096-UTF-16-unit parts, with [Approve] [Reject] inline keyboards.
//! - [`convert`]: an update as core sees it: who, where, what text or which button.
//! - [`sender`]: the outbox [`Sender`](krake_core::delivery::Sender): paced per chat and group,
//!   429-aware, remembering the parts already sent so a restart never shows a message twice.
//! - [`settings`]: `[telegram]` in the config file, read into a [`TelegramConfig`] and written
//!   back for `krake config` with its secrets as `***`.
//! - [`files`]: [`FileDownloads`], the bytes of files people send (getFile, then the file
//!   endpoint), bounded by the size limit.
//! - [`front`]: [`TelegramFront`](front::TelegramFront): start-up (getMe, setMyCommands), long
//!   polling with a persisted offset, the webhook route, and handling each update.

pub mod config;
pub mod convert;
pub mod files;
pub mod front;
pub mod place;
pub mod render;
pub mod sender;
pub mod settings;

pub use config::{BotToken, ChatRoute, Mode, TelegramConfig, WebhookSecret};
pub use files::FileDownloads;
pub use front::TelegramFront;
pub use place::Place;
pub use sender::TelegramSender;

/// The front's name in destinations, idempotency keys and the cursor table.
pub const FRONT: &str = "telegram";
