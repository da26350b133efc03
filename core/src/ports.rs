//! The ports core needs from the outside world, each a small trait. krake-store implements the
//! repositories on SQLite and PostgreSQL; the [`Clock`](crate::time::Clock) lives in
//! [`time`](crate::time).

use crate::actor::{Actor, Front};
use crate::inbound::{Answered, InboundId, InboundMark, InboundRecord, Recorded, StoredInbound};
use crate::inbox::{
    AuditEntry, Decision, DecisionOutcome, Expired, NewThread, Thread, ThreadFilter, ThreadId,
};
use crate::outbox::{
    Destination, KeyedOutbound, NewOutbound, OutboxId, OutboxJob, OutboxWake, RetryOutcome,
    RetryPolicy,
};
use crate::time::Timestamp;
use async_trait::async_trait;
use std::time::Duration;

/// A repository failure. Internals are logged where they happen; people see a short message.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The database could not be reached or refused the operation.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back (a bug or a manual edit).
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    /// The inbound event this change belongs to was already applied; nothing changed.
    #[error("this event was already handled")]
    AlreadyApplied,
}

/// The context of a write: who, through which front, for which inbound event, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteCtx {
    /// Who acts.
    pub actor: Actor,
    /// The inbound event causing the change; it is marked processed in the same transaction,
    /// so a redelivered event cannot apply the change twice, and on the accept path its
    /// answer is written there too ([`InboundMark::answer`]).
    pub inbound: Option<InboundMark>,
    /// Now.
    pub now: Timestamp,
}

impl WriteCtx {
    /// This context with the change's reply rendered by `render` inside the change's
    /// transaction, so the reply is stored and queued with the change (on the accept path;
    /// elsewhere the context is returned unchanged).
    pub(crate) fn answering(
        &self,
        render: impl Fn(crate::inbound::Change<'_>) -> Option<crate::reply::Reply>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        Self {
            inbound: self.inbound.as_ref().map(|m| m.rendering(render)),
            ..self.clone()
        }
    }
}

/// Whether archiving or unarchiving changed anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveOutcome {
    /// It changed.
    Changed(Thread),
    /// It was already so.
    Unchanged(Thread),
}

/// A place where a thread is shown: a front's destination and the platform's message id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadCopy {
    /// The thread.
    pub thread: ThreadId,
    /// Where it is shown.
    pub destination: Destination,
    /// The platform's id of the message showing it.
    pub message_id: String,
}

/// The To Do inbox's storage. Every change writes its audit row, marks `ctx.inbound`
/// processed, writes that event's answer ([`InboundMark::answer`]) and enqueues an edit for
/// every copy, in one transaction.
#[async_trait]
pub trait InboxRepo: Send + Sync {
    /// Creates a thread.
    async fn create(&self, new: &NewThread, ctx: &WriteCtx) -> Result<Thread, RepoError>;
    /// One thread with its replies.
    async fn get(&self, id: ThreadId) -> Result<Option<Thread>, RepoError>;
    /// Threads matching the filter, newest first, without their replies.
    async fn list(&self, filter: &ThreadFilter) -> Result<Vec<Thread>, RepoError>;
    /// Adds a reply; an open question becomes answered. `None` if there is no such thread.
    async fn reply(
        &self,
        id: ThreadId,
        text: &str,
        ctx: &WriteCtx,
    ) -> Result<Option<Thread>, RepoError>;
    /// Takes a decision as a compare-and-set on the thread's status (and on `expected_version`
    /// when a button carried one). `needed` distinct approvals decide; one rejection decides.
    async fn decide(
        &self,
        id: ThreadId,
        decision: &Decision,
        expected_version: Option<i64>,
        ctx: &WriteCtx,
    ) -> Result<Option<DecisionOutcome>, RepoError>;
    /// Archives (`true`) or unarchives (`false`) a thread; unarchiving restores its earlier status.
    async fn set_archived(
        &self,
        id: ThreadId,
        archived: bool,
        ctx: &WriteCtx,
    ) -> Result<Option<ArchiveOutcome>, RepoError>;
    /// Expires open threads whose expiry has passed, each exactly once, taking its timeout
    /// route; an escalation it opens is posted to the workspace's `routes`.
    async fn sweep_expired(
        &self,
        now: Timestamp,
        limit: u32,
        routes: &crate::delivery::Routes,
    ) -> Result<Vec<Expired>, RepoError>;
    /// The audit log of a thread, oldest first.
    async fn audit(&self, id: ThreadId) -> Result<Vec<AuditEntry>, RepoError>;
    /// Records that a thread is shown at a destination (after a front posted it).
    async fn add_copy(&self, copy: &ThreadCopy) -> Result<(), RepoError>;
    /// Where a thread is shown.
    async fn copies(&self, id: ThreadId) -> Result<Vec<ThreadCopy>, RepoError>;
    /// The thread copy shown by a platform message (a reply to it is a reply to the thread).
    async fn copy_at(
        &self,
        destination: &Destination,
        message_id: &str,
    ) -> Result<Option<ThreadCopy>, RepoError>;
    /// How long each thread answered at or after `since` waited for a person: approvals
    /// until their decision, other kinds until their first reply by a person (Krake's own
    /// notes do not count).
    async fn response_times(
        &self,
        since: Timestamp,
    ) -> Result<Vec<crate::inbox::stats::ResponseTime>, RepoError>;
}

/// The durable record of everything that arrives.
#[async_trait]
pub trait InboundRepo: Send + Sync {
    /// Stores an event unless its idempotency key was seen before.
    async fn record_inbound(&self, event: &InboundRecord) -> Result<Recorded, RepoError>;
    /// Marks an event processed (if not yet) and stores the reply given (JSON), if any.
    async fn complete_inbound(
        &self,
        id: InboundId,
        response: Option<&str>,
        now: Timestamp,
    ) -> Result<(), RepoError>;
    /// Answers a chat event: stores `response` (a [`Reply`](crate::Reply) as JSON), marks the
    /// event processed and queues `reply` (the reply's outbox row, at most once under its
    /// key) in one transaction. Only the first answer of an event stands: a later one changes
    /// nothing and gets the stored response back.
    async fn answer_inbound(
        &self,
        id: InboundId,
        response: &str,
        reply: Option<&KeyedOutbound>,
        now: Timestamp,
    ) -> Result<Answered, RepoError>;
    /// Lets go of an answer its change's transaction wrote (see
    /// [`InboundMark::answer`]): stores `response` (the final reply, with what followed the
    /// change) over the one written, and gives the held outbox row under `reply.key`
    /// `reply`'s payload and makes it due now. When that row already left (it was held past
    /// [`ANSWER_HOLD`](crate::inbound::ANSWER_HOLD)) and `again` is set, `reply` is queued
    /// once more under `followup:<key>`, so what followed still reaches the conversation.
    async fn release_answer(
        &self,
        id: InboundId,
        response: &str,
        reply: Option<&KeyedOutbound>,
        again: bool,
        now: Timestamp,
    ) -> Result<(), RepoError>;
    /// Leases up to `limit` unprocessed events from `source` to `owner` until `now + lease`.
    async fn claim_inbound(
        &self,
        source: &str,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<StoredInbound>, RepoError>;
}

/// The outbox of outgoing messages.
#[async_trait]
pub trait OutboxRepo: Send + Sync {
    /// Enqueues messages (in order per destination).
    async fn enqueue(
        &self,
        messages: &[NewOutbound],
        now: Timestamp,
    ) -> Result<Vec<OutboxId>, RepoError>;
    /// Enqueues one message unless a message with the same `key` was ever enqueued (e.g. the
    /// reply to inbound event `telegram:update:42`). `None` when it already was.
    async fn enqueue_once(
        &self,
        message: &NewOutbound,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<OutboxId>, RepoError>;
    /// Leases up to `limit` due messages whose destination has no earlier message pending, so
    /// order per destination holds; optionally only destinations of one front.
    async fn claim_outbox(
        &self,
        front: Option<&str>,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<OutboxJob>, RepoError>;
    /// Marks a leased message delivered, storing the platform's message id. `false` if the
    /// lease was lost.
    async fn complete_outbox(
        &self,
        id: OutboxId,
        owner: &str,
        platform_message_id: Option<&str>,
        now: Timestamp,
    ) -> Result<bool, RepoError>;
    /// Marks several leased messages delivered in one transaction (one durable commit for
    /// the batch). Returns how many were still leased to `owner` and are now done.
    async fn complete_outbox_many(
        &self,
        done: &[(OutboxId, Option<String>)],
        owner: &str,
        now: Timestamp,
    ) -> Result<usize, RepoError>;
    /// Records a failed attempt: schedules a retry (not before `not_before`, e.g. a 429's
    /// retry_after) or dead-letters after `policy.max_attempts`.
    async fn retry_outbox(
        &self,
        id: OutboxId,
        owner: &str,
        error: &str,
        now: Timestamp,
        not_before: Option<Timestamp>,
        policy: &RetryPolicy,
    ) -> Result<RetryOutcome, RepoError>;
    /// Messages waiting (not delivered, not dead).
    async fn outbox_depth(&self) -> Result<i64, RepoError>;
    /// Dead-lettered messages, newest first: id, destination, last error.
    async fn dead_letters(
        &self,
        limit: u32,
    ) -> Result<Vec<(OutboxId, Destination, String)>, RepoError>;
    /// Sends a dead letter again: it is pending once more, due now, with fresh attempts, after
    /// anything queued meanwhile for its destination. `false` when `id` is not a dead letter.
    async fn retry_dead_letter(&self, id: OutboxId, now: Timestamp) -> Result<bool, RepoError>;
    /// Gives up on a dead letter for good (kept, marked discarded). `false` when `id` is not
    /// a dead letter.
    async fn discard_dead_letter(&self, id: OutboxId) -> Result<bool, RepoError>;
    /// A wake for one delivery worker of `front`, fired when messages for it are committed
    /// (by this process or, where the store can tell, another). `None` when the store cannot
    /// tell: the worker then finds messages by polling alone.
    fn subscribe_wakes(&self, front: &str) -> Option<OutboxWake> {
        let _ = front;
        None
    }
}

/// A Krake user and their roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user.
    pub name: crate::actor::UserName,
    /// Role in every workspace not listed below.
    pub role: crate::actor::Role,
    /// Roles that differ per workspace.
    pub workspace_roles:
        std::collections::BTreeMap<crate::workspace::WorkspaceSlug, crate::actor::Role>,
}

/// Users, their roles, and the links between platform identities and users.
#[async_trait]
pub trait UserRepo: Send + Sync {
    /// Adds a user, or changes their role: everywhere (`workspace` None) or in one workspace.
    async fn upsert_user(
        &self,
        name: &crate::actor::UserName,
        role: crate::actor::Role,
        workspace: Option<&crate::workspace::WorkspaceSlug>,
        now: Timestamp,
    ) -> Result<UserRecord, RepoError>;
    /// One user.
    async fn user(&self, name: &crate::actor::UserName) -> Result<Option<UserRecord>, RepoError>;
    /// Every user, by name.
    async fn users(&self) -> Result<Vec<UserRecord>, RepoError>;
    /// Stores a one-time link code for a user, valid until `expires_at`.
    async fn create_link_code(
        &self,
        user: &crate::actor::UserName,
        code: &str,
        expires_at: Timestamp,
    ) -> Result<(), RepoError>;
    /// Redeems a code once (unused and unexpired), linking the platform identity to its user.
    /// `None` when the code is unknown, used or expired.
    async fn redeem_link_code(
        &self,
        code: &str,
        front: crate::actor::Front,
        external_id: &str,
        now: Timestamp,
    ) -> Result<Option<crate::actor::UserName>, RepoError>;
    /// The user a platform identity is linked to.
    async fn linked_user(
        &self,
        front: crate::actor::Front,
        external_id: &str,
    ) -> Result<Option<crate::actor::UserName>, RepoError>;
}

/// A front's small durable state: where its update stream was read up to, and which parts of
/// an outbox message it already sent (so a redelivered message is not shown twice).
#[async_trait]
pub trait FrontStateRepo: Send + Sync {
    /// The saved cursor of a front's update stream (Telegram: the next `offset`).
    async fn cursor(&self, front: &str) -> Result<Option<i64>, RepoError>;
    /// Saves the cursor (it only moves forward).
    async fn save_cursor(&self, front: &str, cursor: i64) -> Result<(), RepoError>;
    /// The parts of an outbox message already sent, as (part number, platform message id).
    async fn sent_parts(&self, outbox: OutboxId) -> Result<Vec<(i32, String)>, RepoError>;
    /// Records that a part of an outbox message was sent (idempotent).
    async fn record_sent_part(
        &self,
        outbox: OutboxId,
        part: i32,
        message_id: &str,
        now: Timestamp,
    ) -> Result<(), RepoError>;
}

/// What an API token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenScope {
    /// Everything its user may do, on the API and the web chat.
    Personal,
    /// The web chat widget of one workspace only (`data-token` in a page), acting there with
    /// the user's role capped at member; refused by the API.
    Widget(crate::workspace::WorkspaceSlug),
}

impl TokenScope {
    /// How the scope is stored: `personal`, or `widget:<workspace>`.
    pub fn as_stored(&self) -> String {
        match self {
            TokenScope::Personal => "personal".into(),
            TokenScope::Widget(w) => format!("widget:{w}"),
        }
    }

    /// The scope stored as `s`; `None` for an unknown one (such a token grants nothing).
    pub fn from_stored(s: &str) -> Option<Self> {
        match s.split_once(':') {
            None if s == "personal" => Some(TokenScope::Personal),
            Some(("widget", w)) => crate::workspace::WorkspaceSlug::parse(w)
                .ok()
                .map(TokenScope::Widget),
            _ => None,
        }
    }
}

/// A token to store (only its hash).
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    /// Whose.
    pub user: &'a crate::actor::UserName,
    /// The SHA-256 (hex) of the token.
    pub token_hash: &'a str,
    /// What it is for.
    pub label: &'a str,
    /// What it may do.
    pub scope: TokenScope,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// Now.
    pub now: Timestamp,
}

/// A token as listed: never the token, only the start of its hash as an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The first 12 hex digits of the token's hash (to revoke it by).
    pub id: String,
    /// What it is for.
    pub label: String,
    /// What it may do.
    pub scope: Option<TokenScope>,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<Timestamp>,
}

/// What a live token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    /// Its user, with their roles as they are now.
    pub user: UserRecord,
    /// What it may do.
    pub scope: TokenScope,
    /// When it stops working, if ever.
    pub expires_at: Option<Timestamp>,
}

/// API tokens (personal and widget), stored as hashes; they can expire and be revoked.
#[async_trait]
pub trait TokenRepo: Send + Sync {
    /// Stores a token.
    async fn create_token(&self, token: &NewToken<'_>) -> Result<(), RepoError>;
    /// Stores a personal token that does not expire.
    async fn create_api_token(
        &self,
        user: &crate::actor::UserName,
        token_hash: &str,
        label: &str,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        self.create_token(&NewToken {
            user,
            token_hash,
            label,
            scope: TokenScope::Personal,
            expires_at: None,
            now,
        })
        .await
    }
    /// What the token with this hash grants at `now`: `None` when unknown, expired, revoked,
    /// of an unknown scope, or its user is gone.
    async fn token_grant(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<TokenGrant>, RepoError>;
    /// A user's tokens, newest first (revoked and expired ones too).
    async fn tokens(&self, user: &crate::actor::UserName) -> Result<Vec<TokenInfo>, RepoError>;
    /// Revokes a user's live tokens whose id (hash) starts with `id`, or all of them (`None`);
    /// returns how many.
    async fn revoke_tokens(
        &self,
        user: &crate::actor::UserName,
        id: Option<&str>,
        now: Timestamp,
    ) -> Result<u64, RepoError>;
}

/// The inbox thread a place on a front stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadLink {
    /// The thread.
    pub thread: ThreadId,
    /// Its workspace (people writing there belong to it as far as the front can tell).
    pub workspace: crate::workspace::WorkspaceSlug,
}

/// Places on a front that stand for an inbox thread (the Discord thread opened on a posted
/// thread's message, a Telegram topic): a message written there is a reply to that thread.
#[async_trait]
pub trait ThreadLinkRepo: Send + Sync {
    /// Records that `place` on `front` stands for `link.thread`. Idempotent: a place already
    /// linked keeps its first thread.
    async fn link_thread(
        &self,
        front: Front,
        place: &str,
        link: &ThreadLink,
    ) -> Result<(), RepoError>;
    /// The inbox thread that `place` on `front` stands for, if any.
    async fn linked_thread(
        &self,
        front: Front,
        place: &str,
    ) -> Result<Option<ThreadLink>, RepoError>;
}

/// An in-memory [`ThreadLinkRepo`], for tests.
#[derive(Debug, Default)]
pub struct MemoryThreadLinks(
    std::sync::Mutex<std::collections::HashMap<(Front, String), ThreadLink>>,
);

#[async_trait]
impl ThreadLinkRepo for MemoryThreadLinks {
    async fn link_thread(
        &self,
        front: Front,
        place: &str,
        link: &ThreadLink,
    ) -> Result<(), RepoError> {
        let mut map = self
            .0
            .lock()
            .map_err(|_| RepoError::Unavailable("thread links lock poisoned".into()))?;
        map.entry((front, place.to_owned()))
            .or_insert_with(|| link.clone());
        Ok(())
    }

    async fn linked_thread(
        &self,
        front: Front,
        place: &str,
    ) -> Result<Option<ThreadLink>, RepoError> {
        let map = self
            .0
            .lock()
            .map_err(|_| RepoError::Unavailable("thread links lock poisoned".into()))?;
        Ok(map.get(&(front, place.to_owned())).cloned())
    }
}
