//! The outbox: outgoing messages, written in the same transaction as the change that causes
//! them, delivered by one worker per front in order per destination, retried with exponential
//! backoff, dead-lettered after too many attempts. [`OutboxSignal`] wakes a front's worker
//! as soon as a message for it is committed, so it never waits for its next poll.

use crate::inbox::ThreadId;
use crate::reply::Reply;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// The stored id of an outbox message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OutboxId(pub i64);

/// Where a message goes: a front and a place on it, e.g. `telegram:-1001234:topic:7` or
/// `discord:channel:1234`. Messages to one destination are delivered in the order enqueued.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Destination(String);

/// Why a text is not a destination.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a destination looks like `front:place` (e.g. `telegram:-100123`), up to 200 characters")]
pub struct DestinationError;

impl Destination {
    /// Parses `front:place`.
    pub fn parse(s: &str) -> Result<Self, DestinationError> {
        match s.split_once(':') {
            Some((front, place))
                if !front.is_empty()
                    && !place.is_empty()
                    && s.len() <= 200
                    && !s.chars().any(char::is_whitespace) =>
            {
                Ok(Self(s.to_owned()))
            }
            _ => Err(DestinationError),
        }
    }

    /// The destination as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The front part (`telegram`).
    pub fn front(&self) -> &str {
        self.0.split_once(':').map(|(f, _)| f).unwrap_or(&self.0)
    }
}

/// What an outbox message asks a delivery worker to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OutboxPayload {
    /// Send this reply.
    Send {
        /// The reply to render and send.
        reply: Reply,
    },
    /// Post a new copy of an inbox thread (the worker records the platform message id).
    PostThread {
        /// The thread.
        thread: ThreadId,
    },
    /// Replace a streamed answer's message with the final reply.
    Replace {
        /// The platform's id of the streamed message.
        message_id: String,
        /// The final reply.
        reply: Reply,
    },
    /// Edit an existing copy of a thread to show its current state.
    EditThread {
        /// The thread.
        thread: ThreadId,
        /// The platform's id of the message to edit.
        message_id: String,
        /// The thread version that caused this edit.
        version: i64,
    },
}

/// A message to enqueue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutbound {
    /// Where.
    pub destination: Destination,
    /// What.
    pub payload: OutboxPayload,
}

/// A message to enqueue at most once: a second message with the same key is never queued
/// (the reply to inbound event `telegram:update:42` is keyed `reply:telegram:update:42`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedOutbound {
    /// The message.
    pub message: NewOutbound,
    /// Its key, unique among every message ever enqueued.
    pub key: String,
}

/// A claimed outbox message, leased to one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxJob {
    /// Its id.
    pub id: OutboxId,
    /// Where.
    pub destination: Destination,
    /// What.
    pub payload: OutboxPayload,
    /// Attempts so far, this one included.
    pub attempts: i32,
    /// Until when the lease holds; after that another worker may take it.
    pub lease_until: Timestamp,
    /// When it was queued (for enqueue-to-delivery latency).
    pub created_at: Timestamp,
}

/// What a failed attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOutcome {
    /// Scheduled again at this time.
    Scheduled(Timestamp),
    /// Too many attempts: moved to the dead letters.
    DeadLettered,
    /// The lease was lost (another worker owns it now); nothing changed.
    LeaseLost,
}

/// How failed deliveries are retried: exponential backoff with jitter, capped, then dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failure.
    pub base: Duration,
    /// Longest delay.
    pub cap: Duration,
    /// Attempts before dead-lettering.
    pub max_attempts: i32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempts + 1`, with up to 25% jitter derived from `salt`
    /// (the job id), so that jobs failing together do not retry together.
    pub fn delay(&self, attempts: i32, salt: i64) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        // Derived from the salt and attempt number, so a job's wait is the same on every worker.
        let random = crate::backoff::mix((salt as u64) ^ (u64::from(exp) << 32));
        crate::backoff::Backoff::new(self.base, self.cap)
            .with_jitter(25)
            .delay(exp, random)
    }
}

/// Wakes the delivery workers of a front when messages for it were committed (the store
/// fires it after every commit that queued outbox rows; on PostgreSQL, also when another
/// process's notice arrives). Cloning shares it.
///
/// Each worker holds its own [`OutboxWake`], and a wake while it is busy is kept (one permit)
/// until it waits again, so a message queued during a pass is never left for the next poll.
#[derive(Debug, Clone, Default)]
pub struct OutboxSignal {
    subscribers: Arc<Mutex<Vec<Subscriber>>>,
}

/// A worker's front and its end of the signal (gone when the worker is).
type Subscriber = (String, Weak<Notify>);

impl OutboxSignal {
    /// A signal nobody listens to yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes the workers of `front` (all of them for `*`).
    pub fn wake(&self, front: &str) {
        let mut subscribers = self.subscribers.lock().unwrap_or_else(|e| e.into_inner());
        subscribers.retain(|(f, weak)| match weak.upgrade() {
            Some(notify) => {
                if front == "*" || f == front {
                    notify.notify_one();
                }
                true
            }
            None => false,
        });
    }

    /// Wakes every worker (after a gap in which wakes may have been missed).
    pub fn wake_all(&self) {
        self.wake("*");
    }

    /// A wake for one worker of `front`.
    pub fn subscribe(&self, front: &str) -> OutboxWake {
        let notify = Arc::new(Notify::new());
        self.subscribers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((front.to_owned(), Arc::downgrade(&notify)));
        OutboxWake { notify }
    }
}

/// One worker's end of an [`OutboxSignal`].
#[derive(Debug)]
pub struct OutboxWake {
    notify: Arc<Notify>,
}

impl OutboxWake {
    /// Waits for a wake (or one that came while the worker was busy) for at most `limit`.
    /// `true` when woken.
    pub async fn wait(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.notify.notified())
            .await
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_reaches_the_workers_of_its_front_even_when_they_were_busy() {
        let signal = OutboxSignal::new();
        let telegram = signal.subscribe("telegram");
        let web = signal.subscribe("web");
        let hour = Duration::from_secs(3600);
        // Woken while busy (not waiting): the wake is kept for the next wait.
        signal.wake("telegram");
        assert!(telegram.wait(hour).await);
        // Kept once, not counted: the next wait waits.
        assert!(!telegram.wait(Duration::from_millis(10)).await);
        // Another front's wake is not this one's.
        assert!(!web.wait(Duration::from_millis(10)).await);
        signal.wake_all();
        assert!(web.wait(hour).await && telegram.wait(hour).await);
        // A wake while waiting.
        let waiting = tokio::spawn(async move { telegram.wait(hour).await });
        tokio::task::yield_now().await;
        signal.wake("telegram");
        assert!(waiting.await.unwrap());
        // A dropped worker is forgotten.
        drop(web);
        signal.wake("web");
        assert_eq!(signal.subscribers.lock().unwrap().len(), 0);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        let d1 = p.delay(1, 7);
        let d2 = p.delay(2, 7);
        let d5 = p.delay(5, 7);
        assert!(d1 <= Duration::from_secs(1) && d1 >= Duration::from_millis(750));
        assert!(d2 <= Duration::from_secs(2) && d2 >= Duration::from_millis(1500));
        assert!(d5 <= Duration::from_secs(16) && d5 >= Duration::from_secs(12));
        assert!(p.delay(30, 7) <= Duration::from_secs(300));
        assert_ne!(p.delay(3, 1), p.delay(3, 2), "jitter spreads retries");
    }

    #[test]
    fn destinations() {
        let d = Destination::parse("telegram:-1001:topic:7").unwrap();
        assert_eq!(d.front(), "telegram");
        assert!(Destination::parse("nocolon").is_err());
        assert!(Destination::parse(":x").is_err());
        assert!(Destination::parse("a: b").is_err());
    }
}
