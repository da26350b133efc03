//! Inbound events: everything that arrives (chat messages, button presses, webhooks) is stored
//! once under a unique idempotency key before the platform gets its acknowledgement.

use crate::actor::UserName;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

/// The stored id of an inbound event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct InboundId(pub i64);

/// A platform-unique key for one event (`telegram:update:123`, `shopify:<webhook id>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IdempotencyKey(String);

/// Why a text is not an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an idempotency key has 1 to 200 printable characters")]
pub struct IdempotencyKeyError;

impl IdempotencyKey {
    /// Parses a key: 1–200 characters, none of them control characters.
    pub fn parse(s: &str) -> Result<Self, IdempotencyKeyError> {
        if s.is_empty() || s.len() > 200 || s.chars().any(char::is_control) {
            return Err(IdempotencyKeyError);
        }
        Ok(Self(s.to_owned()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An event as it arrived, converted to core's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// Where it came from (`cli`, `telegram`, `discord`, `web`, `shopify`, `gelato`).
    pub source: String,
    /// Unique per event; a redelivery carries the same key.
    pub idempotency_key: IdempotencyKey,
    /// Who sent it.
    pub actor: UserName,
    /// The conversation (chat id, channel, session) it belongs to.
    pub conversation: String,
    /// The content: text for chat, the raw body for webhooks.
    pub content: String,
    /// When it was received.
    pub received_at: Timestamp,
}

/// What recording an inbound event found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// First time seen; stored under this id.
    New(InboundId),
    /// Seen before.
    Duplicate {
        /// The stored id.
        id: InboundId,
        /// Whether its effects were already applied.
        processed: bool,
        /// The reply given the first time, if one was stored (JSON of a [`Reply`](crate::Reply)).
        response: Option<String>,
    },
}

/// A stored inbound event waiting to be processed (webhooks and other durable work).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredInbound {
    /// Its id.
    pub id: InboundId,
    /// The event.
    pub event: Inbound,
    /// How many times processing was attempted.
    pub attempts: i32,
}
