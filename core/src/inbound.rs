//! Inbound events: everything that arrives (chat messages, button presses, webhooks) is stored
//! once under a unique idempotency key before the platform gets its acknowledgement.
//!
//! [`Inbound`] is what a chat front hands to core's one accept path
//! ([`Krake::accept`](crate::Krake::accept)); [`InboundRecord`] is how any event (chat or
//! webhook) is kept in the inbound log.

use crate::actor::{Actor, Front, UserName};
use crate::chat::command::Command;
use crate::inbox::ThreadId;
use crate::outbox::{Destination, KeyedOutbound, NewOutbound, OutboxPayload};
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
    /// A Reject button pressed with the reason the person typed beside it (the web chat's
    /// thread card): applied to the version the button showed, like a bare press.
    RejectWithReason {
        /// The Reject button's payload.
        button: ButtonPayload,
        /// Why.
        reason: String,
    },
    /// A file sent to be learned (a Telegram document, a Discord attachment or `/learn`, a
    /// web upload), into `workspace` or the person's first.
    File {
        /// The file.
        file: crate::knowledge::learn::SentFile,
        /// The workspace named with it.
        workspace: Option<crate::workspace::WorkspaceSlug>,
    },
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
            Content::RejectWithReason { button, reason } => {
                format!("button {}: {reason}", button.encode())
            }
            Content::File { file, .. } => format!(
                "file {}{}",
                file.name,
                file.size
                    .map(|s| format!(" ({s} bytes)"))
                    .unwrap_or_default()
            ),
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
    /// Where the answer of work this message starts goes (an agent run's streamed and final
    /// answer): the chat, channel or web session it was sent in. `None` (the terminal, which
    /// runs no agents itself): the answer is only in the inbox.
    pub answer_to: Option<Destination>,
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

/// How long an answer written in its change's transaction is held back from its front while
/// what follows the change runs (an approved action, a follow-up run). The accept path lets
/// it go at once when that is done; after a crash it leaves on its own once this has passed.
pub const ANSWER_HOLD: std::time::Duration = std::time::Duration::from_secs(30);

/// What a change wrote, as the answer's renderer sees it inside the change's transaction.
#[derive(Debug, Clone, Copy)]
pub enum Change<'a> {
    /// A thread was created.
    Created(&'a crate::inbox::Thread),
    /// A reply was added to a thread.
    Replied(&'a crate::inbox::Thread),
    /// A decision was taken, counted or refused.
    Decided(&'a crate::inbox::DecisionOutcome),
    /// A thread was archived or unarchived, or already was.
    Archived(&'a crate::ports::ArchiveOutcome),
    /// A schedule was created.
    Scheduled(&'a crate::schedule::Schedule),
    /// A schedule ran at once and posted this thread.
    RanNow(ThreadId),
    /// Entries were added to a folder.
    Added(&'a [crate::folder::EntryId]),
    /// A file was filed to be learned.
    Queued(crate::knowledge::learn::LearnId),
    /// A learned file was forgotten.
    Forgot,
}

/// Renders the reply to a change (what follows the change is added by the accept path).
type Render = dyn Fn(Change<'_>) -> Option<Reply> + Send + Sync;

/// Where the answer to an event goes, and what its change's transaction wrote.
#[derive(Debug, Default)]
struct AnswerSlot {
    /// The reply's outbox destination and key (none for fronts that answer inline).
    reply_to: Option<(Destination, String)>,
    /// The reply written with the change, once it is written.
    written: std::sync::Mutex<Option<Reply>>,
}

/// The inbound event a change belongs to. The change's transaction marks it processed (a
/// redelivery cannot apply the change twice) and, on the accept path, also stores the reply
/// with the event and queues it for its conversation ([`InboundMark::answer`]), so a crash
/// right after the change loses no answer.
#[derive(Clone)]
pub struct InboundMark {
    /// The event.
    pub id: InboundId,
    /// Where answers to work the event starts go ([`Inbound::answer_to`]).
    pub answer_to: Option<Destination>,
    slot: Option<std::sync::Arc<AnswerSlot>>,
    render: Option<std::sync::Arc<Render>>,
}

impl std::fmt::Debug for InboundMark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundMark")
            .field("id", &self.id)
            .field("answered", &self.render.is_some())
            .finish()
    }
}

impl PartialEq for InboundMark {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for InboundMark {}

/// An answer for the store to write in a change's transaction (see [`InboundMark::answer`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldAnswer {
    /// The reply as JSON, stored with the event unless it already has one.
    pub response: String,
    /// The reply's outbox row, queued once under its key and not due before
    /// [`ANSWER_HOLD`] has passed.
    pub outbound: Option<KeyedOutbound>,
}

impl InboundMark {
    /// A mark only: the change marks the event processed; its answer is written elsewhere
    /// (webhook events have none).
    pub fn new(id: InboundId) -> Self {
        Self {
            id,
            answer_to: None,
            slot: None,
            render: None,
        }
    }

    /// The same mark, naming where answers to work the event starts go.
    pub fn with_answer_to(mut self, answer_to: Option<Destination>) -> Self {
        self.answer_to = answer_to;
        self
    }

    /// A mark on the accept path, whose change may also write the answer (queued to
    /// `reply_to` under `key`, when the front queues its replies).
    pub(crate) fn answered(id: InboundId, reply_to: Option<(Destination, String)>) -> Self {
        Self {
            id,
            answer_to: None,
            slot: Some(std::sync::Arc::new(AnswerSlot {
                reply_to,
                written: std::sync::Mutex::default(),
            })),
            render: None,
        }
    }

    /// The same mark whose change renders its answer with `render`.
    pub(crate) fn rendering(
        &self,
        render: impl Fn(Change<'_>) -> Option<Reply> + Send + Sync + 'static,
    ) -> Self {
        Self {
            render: self.slot.as_ref().map(|_| std::sync::Arc::new(render) as _),
            ..self.clone()
        }
    }

    /// Called by the store inside a change's transaction: the answer to write with the
    /// change, if this change is answered there. It is remembered, so the accept path knows
    /// the event is answered (when the transaction commits).
    pub fn answer(&self, change: Change<'_>) -> Option<HeldAnswer> {
        let (slot, render) = (self.slot.as_ref()?, self.render.as_ref()?);
        let reply = render(change)?;
        let response = serde_json::to_string(&reply).ok()?;
        let outbound = slot.reply_to.as_ref().map(|(d, key)| KeyedOutbound {
            message: NewOutbound {
                destination: d.clone(),
                payload: OutboxPayload::Send {
                    reply: reply.clone(),
                },
            },
            key: key.clone(),
        });
        if let Ok(mut w) = slot.written.lock() {
            *w = Some(reply);
        }
        Some(HeldAnswer { response, outbound })
    }

    /// The reply the change's transaction wrote, if it wrote one.
    pub(crate) fn written(&self) -> Option<Reply> {
        self.slot
            .as_ref()
            .and_then(|s| s.written.lock().ok().and_then(|w| w.clone()))
    }
}
