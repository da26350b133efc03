//! Inbound events: everything that arrives (chat messages, button presses, webhooks) is stored
//! once under a unique idempotency key before the platform gets its acknowledgement.
//!
//! [`Inbound`] is what a chat front hands to core's one accept path
//! ([`Krake::accept`](crate::Krake::accept)); [`InboundRecord`] is how any event (chat or
//! webhook) is kept in the inbound log.

use crate::actor::{Actor, Front, UserName};
use crate::chat::command::Command;
use crate::inbox::ThreadId;
use crate::outbox::Destination;
use crate::reply::{ButtonPayload, Reply};
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

/// An event as it is kept in the inbound log (chat messages and webhooks alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundRecord {
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
    pub event: InboundRecord,
    /// How many times processing was attempted.
    pub attempts: i32,
}

/// What a person sent, in core's words: fronts convert their platform's event to this and
/// never to text that core must parse again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Text as written: a slash command or a plain sentence.
    Text(String),
    /// Text written as a reply to the platform message `message_id` in the same conversation.
    /// When that message shows an inbox thread, plain text is a reply to the thread; otherwise
    /// it is read like [`Content::Text`].
    TextReplyingTo {
        /// What was written.
        text: String,
        /// The platform's id of the message replied to.
        message_id: String,
    },
    /// A command the platform already typed (a Discord slash command with its options).
    Command(Command),
    /// A reply to an inbox thread (a message written in a place that stands for the thread).
    ThreadReply {
        /// The thread.
        thread: ThreadId,
        /// What was written.
        text: String,
    },
    /// A button press, its payload decoded and checked by the front.
    Button(ButtonPayload),
}

impl Content {
    /// How the content is kept in the inbound log: what was written, or a short description
    /// of a typed command or a button.
    pub fn describe(&self) -> String {
        match self {
            Content::Text(t) | Content::TextReplyingTo { text: t, .. } => t.clone(),
            Content::Command(c) => format!("{c:?}"),
            Content::ThreadReply { thread, text } => format!("reply to #{}: {text}", thread.0),
            Content::Button(b) => format!("button {}", b.encode()),
        }
    }
}

/// One thing a person sent through a front, ready for [`Krake::accept`](crate::Krake::accept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// The front it came through.
    pub source: Front,
    /// Unique per event on its platform; a redelivery carries the same key.
    pub key: IdempotencyKey,
    /// Who sent it, as the front identified them.
    pub actor: Actor,
    /// The conversation it belongs to (chat, channel, web session).
    pub conversation: String,
    /// Where the reply is queued for the front's sender, written in the same transaction as
    /// the inbound's processed mark. `None` for fronts that answer inline (a Discord
    /// interaction's response, a web socket frame, the terminal): they render the returned
    /// reply, which comes from the same stored record.
    pub reply_to: Option<Destination>,
    /// What was sent.
    pub content: Content,
}

/// What [`Krake::accept`](crate::Krake::accept) answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The reply, as stored with the inbound event.
    pub reply: Reply,
    /// `true` for the delivery whose reply was stored (the first to finish; after a crash, the
    /// redelivery that finished the work); `false` for a redelivery that got the stored reply
    /// and queued nothing. A front sends nothing to its platform for such a delivery beyond
    /// its inline answer.
    pub fresh: bool,
}

/// What answering a chat event stored (see
/// [`InboundRepo::answer_inbound`](crate::ports::InboundRepo::answer_inbound)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    /// The response that stands: this answer's, or the one stored first.
    pub response: String,
    /// Whether this answer was the one stored (and its outbox row queued).
    pub first: bool,
}
