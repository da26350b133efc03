//! The Telegram [`Sender`]: sends and edits messages for the outbox [`Deliverer`].
//!
//! Pacing lives here: at most one message per second per chat and 20 per minute per group
//! (Telegram's documented limits). When a chat's next slot is near (within
//! [`Limits::max_wait`]), the sender waits for it; when it is further away, it returns
//! [`SendError::RateLimited`] for that destination so the deliverer moves on to other chats.
//! A 429 from Telegram returns `RateLimited(retry_after)` and the limiter learns it: that chat
//! is not tried again before then.
//!
//! Streamed answers ([`Delivery::Stream`]) open one message and edit it in place
//! (`editMessageText`), paced like any message to the chat (so at most one per second), with
//! `sendChatAction typing` before the first words; the final text replaces it through the
//! outbox ([`Delivery::Replace`]).
//!
//! A message redelivered after a crash is not shown twice: each part sent is recorded (by
//! outbox id and part number) right after Telegram confirms it, and parts already recorded are
//! skipped. Edits are idempotent ("message is not modified" counts as done).
//!
//! [`Deliverer`]: krake_core::delivery::Deliverer

use crate::place::Place;
use crate::render;
use async_trait::async_trait;
use krake_core::delivery::{Delivery, SendError, Sender, Sent};
use krake_core::outbox::{Destination, OutboxId};
use krake_core::ports::FrontStateRepo;
use krake_core::time::{Clock, Timestamp};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use teloxide::RequestError;
use teloxide::payloads::{EditMessageTextSetters, SendChatActionSetters, SendMessageSetters};
use teloxide::prelude::Requester;
use teloxide::types::{ChatAction, ChatId, MessageId, ThreadId};
use teloxide::{ApiError, Bot};

/// Telegram's rate limits as the sender applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Least time between two messages to one chat.
    pub per_chat: Duration,
    /// Messages a group may receive per `group_window`.
    pub group_max: usize,
    /// The group window.
    pub group_window: Duration,
    /// The longest the sender waits for a slot before giving the destination back.
    pub max_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            per_chat: Duration::from_secs(1),
            group_max: 20,
            group_window: Duration::from_secs(60),
            max_wait: Duration::from_secs(3),
        }
    }
}

#[derive(Debug)]
struct ChatPace {
    next: Timestamp,
    recent: VecDeque<Timestamp>,
}

/// Per-chat and per-group pacing, on the injected clock (so tests drive it by hand).
struct Pacer {
    limits: Limits,
    clock: Arc<dyn Clock>,
    chats: Mutex<HashMap<i64, ChatPace>>,
}

impl Pacer {
    /// Reserves the chat's next slot if it is within `max_wait` and says how long to wait for
    /// it; otherwise says how far it is.
    fn reserve(&self, place: Place) -> Result<Duration, Duration> {
        let now = self.clock.now();
        let mut chats = self.chats.lock().unwrap_or_else(|e| e.into_inner());
        let p = chats.entry(place.chat).or_insert_with(|| ChatPace {
            next: now,
            recent: VecDeque::new(),
        });
        let mut at = p.next.max(now);
        if place.is_group() && p.recent.len() >= self.limits.group_max {
            let oldest = p.recent[p.recent.len() - self.limits.group_max];
            at = at.max(oldest.plus(self.limits.group_window));
        }
        let wait = millis(at.as_millis() - now.as_millis());
        if wait > self.limits.max_wait {
            return Err(wait);
        }
        p.next = at.plus(self.limits.per_chat);
        p.recent.push_back(at);
        while p.recent.len() > self.limits.group_max {
            p.recent.pop_front();
        }
        Ok(wait)
    }

    /// Telegram said 429 for this chat: nothing goes there before `after` has passed.
    fn penalise(&self, chat: i64, after: Duration) {
        let until = self.clock.now().plus(after);
        let mut chats = self.chats.lock().unwrap_or_else(|e| e.into_inner());
        let p = chats.entry(chat).or_insert_with(|| ChatPace {
            next: until,
            recent: VecDeque::new(),
        });
        p.next = p.next.max(until);
    }
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Sends Krake's outbox messages to Telegram.
pub struct TelegramSender {
    bot: Bot,
    state: Arc<dyn FrontStateRepo>,
    clock: Arc<dyn Clock>,
    pacer: Pacer,
}

impl TelegramSender {
    /// A sender over a Bot API client, recording parts sent in `state`.
    pub fn new(bot: Bot, state: Arc<dyn FrontStateRepo>, clock: Arc<dyn Clock>) -> Self {
        Self::with_limits(bot, state, clock, Limits::default())
    }

    /// The same with other limits (tests, a local Bot API server).
    pub fn with_limits(
        bot: Bot,
        state: Arc<dyn FrontStateRepo>,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Self {
        Self {
            bot,
            state,
            clock: clock.clone(),
            pacer: Pacer {
                limits,
                clock,
                chats: Mutex::new(HashMap::new()),
            },
        }
    }

    async fn pace(&self, place: Place) -> Result<(), SendError> {
        match self.pacer.reserve(place) {
            Ok(wait) => {
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                Ok(())
            }
            Err(wait) => Err(SendError::RateLimited(wait)),
        }
    }

    async fn send_parts(
        &self,
        job: Option<OutboxId>,
        place: Place,
        delivery: &Delivery,
    ) -> Result<Sent, SendError> {
        let rendered = render::delivery(delivery);
        let done = match job {
            Some(job) => self
                .state
                .sent_parts(job)
                .await
                .map_err(|e| SendError::Transient(e.to_string()))?,
            None => Vec::new(),
        };
        let last = rendered.parts.len().saturating_sub(1);
        let mut last_id = None;
        for (i, text) in rendered.parts.iter().enumerate() {
            let part = i32::try_from(i).unwrap_or(i32::MAX);
            if let Some((_, id)) = done.iter().find(|(p, _)| *p == part) {
                tracing::info!(
                    part,
                    "part already sent before a restart; not sending it again"
                );
                last_id = Some(id.clone());
                continue;
            }
            self.pace(place).await?;
            let mut req = self.bot.send_message(ChatId(place.chat), text.clone());
            if let Some(t) = place.topic {
                req = req.message_thread_id(ThreadId(MessageId(t)));
            }
            if i == last
                && let Some(k) = &rendered.keyboard
            {
                req = req.reply_markup(k.clone());
            }
            let sent = req.await.map_err(|e| self.failed(place, e))?;
            let id = sent.id.0.to_string();
            if let Some(job) = job
                && let Err(e) = self
                    .state
                    .record_sent_part(job, part, &id, self.clock.now())
                    .await
            {
                // Sent but not recorded: a crash now would send this part again.
                tracing::warn!(error = %e, part, "could not record a sent part");
            }
            last_id = Some(id);
        }
        Ok(Sent {
            message_id: last_id,
        })
    }

    async fn edit(
        &self,
        place: Place,
        message_id: &str,
        delivery: &Delivery,
    ) -> Result<Sent, SendError> {
        let id = message_id.parse::<i32>().map_err(|_| {
            SendError::Permanent(format!("`{message_id}` is not a Telegram message id"))
        })?;
        let rendered = render::delivery(delivery);
        let text = render::one_message(&rendered.parts.concat());
        self.pace(place).await?;
        let mut req = self
            .bot
            .edit_message_text(ChatId(place.chat), MessageId(id), text);
        // Without a keyboard the old buttons are removed (a decided thread has none).
        req =
            req.reply_markup(rendered.keyboard.unwrap_or_else(|| {
                teloxide::types::InlineKeyboardMarkup::new(Vec::<Vec<_>>::new())
            }));
        match req.await {
            Ok(_) | Err(RequestError::Api(ApiError::MessageNotModified)) => Ok(Sent {
                message_id: Some(message_id.to_owned()),
            }),
            Err(e) => Err(self.failed(place, e)),
        }
    }

    fn failed(&self, place: Place, e: RequestError) -> SendError {
        let err = classify(e);
        if let SendError::RateLimited(after) = &err {
            self.pacer.penalise(place.chat, *after);
        }
        err
    }

    async fn deliver(
        &self,
        job: Option<OutboxId>,
        destination: &Destination,
        delivery: &Delivery,
    ) -> Result<Sent, SendError> {
        let place = Place::parse(destination).map_err(|e| SendError::Permanent(e.to_string()))?;
        match delivery {
            Delivery::Edit { message_id, .. } | Delivery::Replace { message_id, .. } => {
                self.edit(place, message_id, delivery).await
            }
            Delivery::Stream {
                message_id: Some(id),
                ..
            } => self.edit(place, id, delivery).await,
            Delivery::Send { .. } | Delivery::Post { .. } | Delivery::Stream { .. } => {
                self.send_parts(job, place, delivery).await
            }
            Delivery::Typing => {
                let mut req = self
                    .bot
                    .send_chat_action(ChatId(place.chat), ChatAction::Typing);
                if let Some(t) = place.topic {
                    req = req.message_thread_id(ThreadId(MessageId(t)));
                }
                req.await.map_err(|e| self.failed(place, e))?;
                Ok(Sent { message_id: None })
            }
        }
    }
}

/// Maps a Bot API failure to what the deliverer should do.
pub fn classify(e: RequestError) -> SendError {
    match e {
        RequestError::RetryAfter(s) => SendError::RateLimited(s.duration()),
        RequestError::Network(e) => SendError::Transient(e.to_string()),
        RequestError::Io(e) => SendError::Transient(e.to_string()),
        RequestError::InvalidJson { source, .. } => {
            SendError::Transient(format!("unreadable answer from Telegram: {source}"))
        }
        RequestError::MigrateToChatId(id) => SendError::Permanent(format!(
            "the group became supergroup {}; map the workspace to that chat",
            id.0
        )),
        RequestError::Api(ApiError::Unknown(d))
            if d.contains("Internal Server Error") || d.contains("Bad Gateway") =>
        {
            SendError::Transient(d)
        }
        RequestError::Api(api) => SendError::Permanent(api.to_string()),
    }
}

#[async_trait]
impl Sender for TelegramSender {
    fn front(&self) -> &str {
        crate::FRONT
    }

    async fn send(
        &self,
        destination: &Destination,
        delivery: &Delivery,
    ) -> Result<Sent, SendError> {
        self.deliver(None, destination, delivery).await
    }

    async fn send_keyed(
        &self,
        job: OutboxId,
        destination: &Destination,
        delivery: &Delivery,
    ) -> Result<Sent, SendError> {
        self.deliver(Some(job), destination, delivery).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use krake_core::time::ManualClock;

    fn pacer() -> (Pacer, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_000_000)));
        let p = Pacer {
            limits: Limits::default(),
            clock: clock.clone(),
            chats: Mutex::new(HashMap::new()),
        };
        (p, clock)
    }

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn one_per_second_per_chat() {
        let (p, _) = pacer();
        assert_eq!(p.reserve(Place::chat(1)), Ok(S(0)));
        assert_eq!(p.reserve(Place::chat(1)), Ok(S(1)));
        assert_eq!(
            p.reserve(Place::chat(2)),
            Ok(S(0)),
            "other chats are not held up"
        );
        assert_eq!(p.reserve(Place::chat(1)), Ok(S(2)));
        assert_eq!(p.reserve(Place::chat(1)), Ok(S(3)));
        assert_eq!(p.reserve(Place::chat(1)), Err(S(4)), "too far: given back");
    }

    #[test]
    fn twenty_per_minute_per_group() {
        let (p, clock) = pacer();
        for _ in 0..20 {
            clock.advance(S(1));
            assert_eq!(p.reserve(Place::topic(-100, 3)), Ok(S(0)));
        }
        clock.advance(S(1));
        // The 21st (any topic of the group) waits until a minute after the first.
        assert_eq!(p.reserve(Place::chat(-100)), Err(S(40)));
        clock.advance(S(40));
        assert_eq!(p.reserve(Place::chat(-100)), Ok(S(0)));
        // A private chat has no group limit.
        for _ in 0..25 {
            clock.advance(S(1));
            assert_eq!(p.reserve(Place::chat(100)), Ok(S(0)));
        }
    }

    #[test]
    fn failures_are_classified() {
        use teloxide::types::Seconds;
        assert_eq!(
            classify(RequestError::RetryAfter(Seconds::from_seconds(3))),
            SendError::RateLimited(S(3))
        );
        assert!(matches!(
            classify(RequestError::Api(ApiError::BotBlocked)),
            SendError::Permanent(_)
        ));
        assert!(matches!(
            classify(RequestError::Api(ApiError::Unknown(
                "Internal Server Error".into()
            ))),
            SendError::Transient(_)
        ));
        assert!(matches!(
            classify(RequestError::MigrateToChatId(teloxide::types::ChatId(-100))),
            SendError::Permanent(_)
        ));
    }

    #[test]
    fn learns_retry_after() {
        let (p, clock) = pacer();
        p.penalise(7, S(3));
        assert_eq!(p.reserve(Place::chat(7)), Ok(S(3)));
        p.penalise(8, S(30));
        assert_eq!(p.reserve(Place::chat(8)), Err(S(30)));
        clock.advance(S(30));
        assert_eq!(p.reserve(Place::chat(8)), Ok(S(0)));
    }
}
