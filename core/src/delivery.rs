//! Delivery: the platform-independent half of an outbox worker, and where threads are posted.
//!
//! A front implements [`Sender`] (render and send one message, map the platform's answer to
//! [`Sent`] or a [`SendError`]); [`Deliverer::run_once`] does the rest for every front alike:
//! claim due messages for the front (one at a time per destination, so order holds), resolve
//! thread payloads to the thread's *current* state, send, record the platform message id (a
//! posted thread becomes a copy that later changes edit), retry with backoff or a platform's
//! `retry_after`, and dead-letter what can never succeed. [`Deliverer::run_until`] is the
//! worker's loop: a message is sent as soon as its commit wakes the worker (the store's
//! [`OutboxSignal`](crate::outbox::OutboxSignal)); polling is only the safety net.

use crate::inbox::{Thread, ThreadId};
use crate::outbox::{
    Destination, NewOutbound, OutboxId, OutboxJob, OutboxPayload, OutboxWake, RetryOutcome,
    RetryPolicy,
};
use crate::ports::{InboxRepo, OutboxRepo, RepoError, ThreadCopy};
use crate::reply::Reply;
use crate::time::{Clock, Timestamp};
use crate::workspace::WorkspaceSlug;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// Where new inbox threads of each workspace are posted (a Telegram chat or topic, a Discord
/// channel, …). Filled from each front's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes(BTreeMap<WorkspaceSlug, Vec<Destination>>);

impl Routes {
    /// No routes: threads are only shown where people ask for them.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a destination for a workspace (duplicates are ignored).
    pub fn add(&mut self, workspace: WorkspaceSlug, destination: Destination) {
        let list = self.0.entry(workspace).or_default();
        if !list.contains(&destination) {
            list.push(destination);
        }
    }

    /// The destinations of a workspace.
    pub fn for_workspace(&self, workspace: &WorkspaceSlug) -> &[Destination] {
        self.0.get(workspace).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The workspace whose routes name `destination`, else the first workspace with routes.
    fn workspace_of(&self, destination: &Destination) -> Option<&WorkspaceSlug> {
        self.0
            .iter()
            .find(|(_, ds)| ds.contains(destination))
            .or_else(|| self.0.iter().next())
            .map(|(w, _)| w)
    }
}

/// What a sender is asked to deliver, with thread payloads resolved to the current thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Send a reply.
    Send {
        /// The reply.
        reply: Reply,
    },
    /// Post a thread (render it with [`render_thread`](crate::service::render_thread)).
    Post {
        /// The thread as it is now.
        thread: Thread,
    },
    /// Edit the message showing a thread so it shows the thread as it is now.
    Edit {
        /// The thread as it is now.
        thread: Thread,
        /// The platform's id of the message to edit.
        message_id: String,
    },
    /// An answer so far, while it streams (best-effort, never queued): open a message with
    /// `text` (`message_id` `None`; return its id) or edit that message to show `text`.
    Stream {
        /// The message to edit; `None` opens one.
        message_id: Option<String>,
        /// The whole answer so far.
        text: String,
    },
    /// The final answer replacing a streamed message (queued, delivered once).
    Replace {
        /// The streamed message.
        message_id: String,
        /// The final reply.
        reply: Reply,
    },
    /// Show that an answer is being worked on (a typing indicator; best-effort).
    Typing,
}

/// A successful send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sent {
    /// The platform's id of the message sent (needed to edit a posted thread later).
    pub message_id: Option<String>,
}

/// Why a send failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The platform said 429: try again after this long.
    #[error("rate limited; retry after {0:?}")]
    RateLimited(Duration),
    /// A failure that may pass (5xx, timeout, connection reset).
    #[error("temporary failure: {0}")]
    Transient(String),
    /// A failure that will not pass (chat not found, bot blocked, bad request).
    #[error("permanent failure: {0}")]
    Permanent(String),
}

/// One front's way of sending.
#[async_trait]
pub trait Sender: Send + Sync {
    /// The front whose destinations this sender serves (`telegram`, `discord`, `web`).
    fn front(&self) -> &str;
    /// Renders and sends one delivery to a destination of this front.
    async fn send(&self, destination: &Destination, delivery: &Delivery)
    -> Result<Sent, SendError>;

    /// The least time between two edits of a streamed answer (platforms allow about one
    /// edit per second per chat; a web socket takes every change).
    fn stream_interval(&self) -> Duration {
        Duration::from_secs(1)
    }

    /// Like [`send`](Self::send), knowing the outbox message's id: a key that stays the same
    /// across retries and restarts, which a platform that deduplicates (Discord's message
    /// `nonce`) can use so a resend after a crash does not post twice. Defaults to `send`.
    async fn send_keyed(
        &self,
        key: OutboxId,
        destination: &Destination,
        delivery: &Delivery,
    ) -> Result<Sent, SendError> {
        let _ = key;
        self.send(destination, delivery).await
    }
}

/// The senders that show answers live (typing, streamed edits), by front, shared by the run
/// engine and the fronts: each front adds its sender when it starts. Cloning shares it.
#[derive(Clone, Default)]
pub struct LiveSenders(Arc<std::sync::RwLock<BTreeMap<String, Arc<dyn Sender>>>>);

impl std::fmt::Debug for LiveSenders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fronts: Vec<String> = self
            .0
            .read()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_tuple("LiveSenders").field(&fronts).finish()
    }
}

impl LiveSenders {
    /// None yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the sender of its front.
    pub fn add(&self, sender: Arc<dyn Sender>) {
        if let Ok(mut m) = self.0.write() {
            m.insert(sender.front().to_owned(), sender);
        }
    }

    /// The sender of `front`, if it is up in this process.
    pub fn get(&self, front: &str) -> Option<Arc<dyn Sender>> {
        self.0.read().ok().and_then(|m| m.get(front).cloned())
    }
}

/// What one pass of a deliverer did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeliveryStats {
    /// Sent and recorded.
    pub delivered: usize,
    /// Failed, scheduled again.
    pub retried: usize,
    /// Moved to the dead letters.
    pub dead: usize,
    /// The lease was lost to another worker (nothing recorded by this one).
    pub lost: usize,
    /// For each message delivered, the time from its queueing to its delivery (retries and
    /// waits for a rate limit included).
    pub latencies: Vec<Duration>,
    /// The earliest retry this pass scheduled, if any.
    pub next_retry: Option<Timestamp>,
}

impl DeliveryStats {
    /// Whether the pass did anything (so the queue may hold more right now).
    pub fn busy(&self) -> bool {
        self.delivered + self.retried + self.dead + self.lost > 0
    }
}

/// How long a worker waits after a pass that failed (the store unreachable).
const ERROR_WAIT: Duration = Duration::from_secs(2);

/// The generic outbox worker for one front.
pub struct Deliverer {
    outbox: Arc<dyn OutboxRepo>,
    inbox: Arc<dyn InboxRepo>,
    sender: Arc<dyn Sender>,
    clock: Arc<dyn Clock>,
    /// Retry policy for failed sends.
    pub policy: RetryPolicy,
    /// This worker's lease owner name (unique per process and front).
    pub owner: String,
    /// How long a claim is leased; a crashed worker's claims return after this.
    pub lease: Duration,
    /// Messages claimed per pass.
    pub batch: u32,
    /// The longest [`run_until`](Self::run_until) waits between passes when nothing wakes it:
    /// the safety net for messages whose wake cannot reach this worker (queued by another
    /// process on SQLite, a PostgreSQL notice lost while reconnecting).
    pub poll: Duration,
    /// Fired when a message for this front is committed (from the outbox repository).
    wake: Option<OutboxWake>,
    /// Where dead letters are escalated (see [`escalating`](Self::escalating)).
    escalate_to: Option<Routes>,
}

impl Deliverer {
    /// A deliverer with default policy, a 60 s lease, batches of 50 and a 1 s safety poll,
    /// woken by the outbox repository when a message for its front is committed.
    pub fn new(
        outbox: Arc<dyn OutboxRepo>,
        inbox: Arc<dyn InboxRepo>,
        sender: Arc<dyn Sender>,
        clock: Arc<dyn Clock>,
        owner: impl Into<String>,
    ) -> Self {
        let wake = outbox.subscribe_wakes(sender.front());
        Self {
            outbox,
            inbox,
            sender,
            clock,
            policy: RetryPolicy::default(),
            owner: owner.into(),
            lease: Duration::from_secs(60),
            batch: 50,
            poll: Duration::from_secs(1),
            wake,
            escalate_to: None,
        }
    }

    /// Delivers until `stop` completes. After a pass that did something the next one starts
    /// at once; otherwise the worker waits until a message for its front is committed (the
    /// wake), its earliest scheduled retry is due, or [`poll`](Self::poll) has passed,
    /// whichever comes first. After a failed pass (the store unreachable) it waits 2 s.
    /// `observe` sees every successful pass and how long it took. A pass in progress is
    /// finished before stopping.
    pub async fn run_until(
        &self,
        stop: impl Future<Output = ()> + Send,
        mut observe: impl FnMut(&DeliveryStats, Duration) + Send,
    ) {
        tokio::pin!(stop);
        let mut retry_at: Option<Timestamp> = None;
        loop {
            let started = std::time::Instant::now();
            let pause = match self.run_once().await {
                Ok(stats) => {
                    observe(&stats, started.elapsed());
                    let now = self.clock.now();
                    retry_at = match (retry_at.filter(|at| *at > now), stats.next_retry) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    if stats.busy() {
                        None
                    } else {
                        let until_retry = retry_at.map(|at| {
                            Duration::from_millis(
                                u64::try_from(at.as_millis() - now.as_millis()).unwrap_or(0),
                            )
                        });
                        Some(until_retry.map_or(self.poll, |d| d.min(self.poll)))
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, owner = %self.owner, "outbox pass failed; will retry");
                    tokio::select! {
                        _ = &mut stop => return,
                        _ = tokio::time::sleep(ERROR_WAIT) => {}
                    }
                    continue;
                }
            };
            match pause {
                None => tokio::select! {
                    biased;
                    _ = &mut stop => return,
                    _ = std::future::ready(()) => {}
                },
                Some(limit) => tokio::select! {
                    _ = &mut stop => return,
                    _ = self.idle(limit) => {}
                },
            }
        }
    }

    /// Waits for a wake for at most `limit` (the whole of `limit` without one).
    async fn idle(&self, limit: Duration) {
        match &self.wake {
            Some(wake) => {
                wake.wait(limit).await;
            }
            None => tokio::time::sleep(limit).await,
        }
    }

    /// The front this deliverer serves (its sender's front).
    pub fn front(&self) -> &str {
        self.sender.front()
    }

    /// Claims and delivers one batch. Returns what happened; an empty pass means the front's
    /// queue has nothing due.
    pub async fn run_once(&self) -> Result<DeliveryStats, RepoError> {
        let now = self.clock.now();
        let jobs = self
            .outbox
            .claim_outbox(
                Some(self.sender.front()),
                &self.owner,
                now,
                self.lease,
                self.batch,
            )
            .await?;
        let mut stats = DeliveryStats::default();
        for job in jobs {
            self.deliver(job, &mut stats).await?;
        }
        Ok(stats)
    }

    async fn resolve(&self, job: &OutboxJob) -> Result<Option<Delivery>, RepoError> {
        Ok(match &job.payload {
            OutboxPayload::Send { reply } => Some(Delivery::Send {
                reply: reply.clone(),
            }),
            OutboxPayload::Replace { message_id, reply } => Some(Delivery::Replace {
                message_id: message_id.clone(),
                reply: reply.clone(),
            }),
            OutboxPayload::PostThread { thread } => self
                .inbox
                .get(*thread)
                .await?
                .map(|thread| Delivery::Post { thread }),
            OutboxPayload::EditThread {
                thread, message_id, ..
            } => self.inbox.get(*thread).await?.map(|thread| Delivery::Edit {
                thread,
                message_id: message_id.clone(),
            }),
        })
    }

    #[tracing::instrument(skip_all, fields(front = self.sender.front(), job = job.id.0, destination = job.destination.as_str()))]
    async fn deliver(&self, job: OutboxJob, stats: &mut DeliveryStats) -> Result<(), RepoError> {
        let Some(delivery) = self.resolve(&job).await? else {
            self.fail(
                &job,
                SendError::Permanent("the thread no longer exists".into()),
                stats,
            )
            .await?;
            return Ok(());
        };
        match self
            .sender
            .send_keyed(job.id, &job.destination, &delivery)
            .await
        {
            Ok(sent) => {
                let now = self.clock.now();
                if !self
                    .outbox
                    .complete_outbox(job.id, &self.owner, sent.message_id.as_deref(), now)
                    .await?
                {
                    // Another worker took over after our lease ran out; it will deliver again,
                    // which is why leases must be longer than a send can take.
                    tracing::warn!("lease lost before completion");
                    stats.lost += 1;
                    return Ok(());
                }
                stats.delivered += 1;
                stats.latencies.push(Duration::from_millis(
                    u64::try_from(now.as_millis() - job.created_at.as_millis()).unwrap_or(0),
                ));
                if let (Delivery::Post { thread }, Some(message_id)) = (&delivery, sent.message_id)
                {
                    self.record_copy(thread, &job.destination, message_id)
                        .await?;
                }
            }
            Err(e) => self.fail(&job, e, stats).await?,
        }
        Ok(())
    }

    /// Records a posted thread's copy; if the thread changed while it was being posted, the
    /// copy is edited at once so it never shows a stale state.
    async fn record_copy(
        &self,
        shown: &Thread,
        destination: &Destination,
        message_id: String,
    ) -> Result<(), RepoError> {
        self.inbox
            .add_copy(&ThreadCopy {
                thread: shown.id,
                destination: destination.clone(),
                message_id: message_id.clone(),
            })
            .await?;
        if let Some(now) = self
            .inbox
            .get(shown.id)
            .await?
            .filter(|t| t.version != shown.version)
        {
            self.enqueue_edit(shown.id, destination, message_id, now.version)
                .await?;
        }
        Ok(())
    }

    async fn enqueue_edit(
        &self,
        thread: ThreadId,
        destination: &Destination,
        message_id: String,
        version: i64,
    ) -> Result<(), RepoError> {
        let edit = NewOutbound {
            destination: destination.clone(),
            payload: OutboxPayload::EditThread {
                thread,
                message_id,
                version,
            },
        };
        self.outbox.enqueue(&[edit], self.clock.now()).await?;
        Ok(())
    }

    /// The same deliverer telling people when a message is dead-lettered: an escalation for
    /// the owner of the workspace whose `routes` name the destination (else the first with
    /// routes), posted to that workspace's other places, once per destination per hour.
    pub fn escalating(mut self, routes: Routes) -> Self {
        self.escalate_to = Some(routes);
        self
    }

    async fn escalate(
        &self,
        job: &OutboxJob,
        error: &SendError,
        now: crate::time::Timestamp,
    ) -> Result<(), RepoError> {
        let Some(routes) = &self.escalate_to else {
            return Ok(());
        };
        let Some(ws) = routes.workspace_of(&job.destination).cloned() else {
            return Ok(());
        };
        let dest = job.destination.as_str();
        let mut new = crate::inbox::NewThread::new(
            ws.clone(),
            crate::inbox::ThreadKind::Escalation,
            format!("Messages to {dest} cannot be delivered"),
            format!(
                "Krake gave up delivering a message to {dest} after its retries: {error}.\nCheck that place (a removed bot, a deleted channel, a revoked token), then send it again or discard it with /deadletters (owners). One notice per place per hour."
            ),
        );
        new.origin = crate::inbox::Origin::System;
        new.approvers = crate::inbox::Approvers::Role {
            role: crate::actor::Role::Owner,
        };
        new.origin_key = Some(format!(
            "deadletter:{dest}:{}",
            now.as_millis().div_euclid(3_600_000)
        ));
        new.post_to = routes
            .for_workspace(&ws)
            .iter()
            .filter(|d| *d != &job.destination)
            .cloned()
            .collect();
        let ctx = crate::ports::WriteCtx {
            actor: crate::actor::Actor::system(),
            inbound: None,
            now,
        };
        self.inbox.create(&new, &ctx).await.map(|_| ())
    }

    async fn fail(
        &self,
        job: &OutboxJob,
        error: SendError,
        stats: &mut DeliveryStats,
    ) -> Result<(), RepoError> {
        let now = self.clock.now();
        let (not_before, policy) = match &error {
            // A rate limit is no fault of the message: it waits exactly as long as asked and is
            // never dead-lettered for it (a long backlog may be held back many times).
            SendError::RateLimited(after) => (
                Some(now.plus(*after)),
                RetryPolicy {
                    base: Duration::ZERO,
                    max_attempts: i32::MAX,
                    ..self.policy
                },
            ),
            SendError::Transient(_) => (None, self.policy),
            // A permanent failure goes straight to the dead letters.
            SendError::Permanent(_) => (
                None,
                RetryPolicy {
                    max_attempts: 0,
                    ..self.policy
                },
            ),
        };
        match self
            .outbox
            .retry_outbox(
                job.id,
                &self.owner,
                &error.to_string(),
                now,
                not_before,
                &policy,
            )
            .await?
        {
            RetryOutcome::Scheduled(at) => {
                tracing::info!(%error, retry_at = at.as_millis(), "delivery failed; will retry");
                stats.retried += 1;
                stats.next_retry = Some(stats.next_retry.map_or(at, |n| n.min(at)));
            }
            RetryOutcome::DeadLettered => {
                tracing::warn!(%error, "delivery failed for good; dead-lettered");
                stats.dead += 1;
                if let Err(e) = self.escalate(job, &error, now).await {
                    tracing::warn!(error = %e, "a dead letter could not be escalated");
                }
            }
            RetryOutcome::LeaseLost => stats.lost += 1,
        }
        Ok(())
    }
}
