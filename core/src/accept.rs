//! The one accept path: [`Krake::accept`] takes everything a person sends through any front
//! (Telegram polling and webhook, Discord interactions and gateway, the web socket, the
//! terminal) and handles it exactly once.
//!
//! 1. The event is recorded under its idempotency key (a redelivery is recognised here).
//! 2. Its content is turned into a typed [`Command`] (text is parsed; typed commands, thread
//!    replies and button presses need no parsing) and executed.
//! 3. A state change, the event's processed mark, the reply stored with the event and the
//!    reply's outbox row (for fronts that queue replies) are written in **one transaction**
//!    keyed by the event ([`InboundMark`]): the change's repository renders the reply from what
//!    it wrote. The outbox row is held ([`ANSWER_HOLD`](crate::inbound::ANSWER_HOLD)) while
//!    what follows the change runs (an approved action, a follow-up run); then the final reply
//!    replaces it and it leaves at once. A crash in between loses nothing: the held reply
//!    leaves on its own once the hold has passed, and a redelivery gets it back.
//!    Commands that change nothing store their reply, the processed mark and the outbox row in
//!    one transaction of their own.
//!
//! A redelivery gets the stored reply back and queues nothing. A front that answers inline
//! renders [`Accepted::reply`], which comes from that same stored record, and sends nothing
//! more to its platform when [`Accepted::fresh`] is false.

use crate::chat::command::{Command, Parsed};
use crate::inbound::{
    Accepted, Content, IdempotencyKey, Inbound, InboundId, InboundMark, InboundRecord, Recorded,
};
use crate::outbox::{KeyedOutbound, NewOutbound, OutboxPayload};
use crate::ports::RepoError;
use crate::reply::{ButtonAction, ButtonPayload, Reply};
use crate::service::{Krake, failure};
use std::time::Duration;

/// How long a redelivery that finds its event applied but not yet answered waits for the
/// first delivery's answer before answering itself.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(3);

/// What a redelivered event whose change was applied, but whose reply was never stored (a
/// crash between the two), is told.
fn already_handled() -> Reply {
    Reply::info("That message was already handled.")
}

impl Krake {
    /// Handles one thing a person sent, exactly once (see the [module](self) docs).
    #[tracing::instrument(skip_all, fields(source = %inbound.source, key = inbound.key.as_str()))]
    pub async fn accept(&self, inbound: Inbound) -> Accepted {
        let record = InboundRecord {
            source: inbound.source.as_str().to_owned(),
            idempotency_key: inbound.key.clone(),
            actor: inbound.actor.user.clone(),
            conversation: inbound.conversation.clone(),
            content: inbound.content.describe(),
            received_at: self.clock.now(),
        };
        let id = match self.inbound.record_inbound(&record).await {
            Ok(Recorded::New(id)) => id,
            Ok(Recorded::Duplicate {
                response: Some(r), ..
            }) => return stored(&r),
            // Recorded before (a crash, or a delivery still being handled): run it; a change
            // already applied is refused by the store and the first answer stands.
            Ok(Recorded::Duplicate { id, .. }) => id,
            Err(e) => {
                return Accepted {
                    reply: failure(&e),
                    fresh: false,
                };
            }
        };
        let reply_to = inbound
            .reply_to
            .as_ref()
            .map(|d| (d.clone(), reply_key(&inbound)));
        let mark = InboundMark::answered(id, reply_to).with_answer_to(inbound.answer_to.clone());
        let reply = match self.run(&inbound, &mark).await {
            Ok(reply) => reply,
            Err(RepoError::AlreadyApplied) => match self.wait_for_answer(&record).await {
                Some(done) => return done,
                None => already_handled(),
            },
            Err(e) => {
                // Nothing was stored: the platform may deliver the event again.
                return Accepted {
                    reply: failure(&e),
                    fresh: false,
                };
            }
        };
        match mark.written() {
            Some(held) => self.release(id, &inbound, held, reply).await,
            None => self.answer(id, &inbound, reply).await,
        }
    }

    /// Runs the content of an inbound event as its actor.
    async fn run(&self, inbound: &Inbound, id: &InboundMark) -> Result<Reply, RepoError> {
        let actor = &inbound.actor;
        if actor.front == crate::actor::Front::Visitor {
            // A shop's visitor: never a command, whatever the content (see `visitor`).
            return self.visit(inbound, id).await;
        }
        match &inbound.content {
            Content::Text(text) => self.run_text(inbound, text, id).await,
            Content::TextReplyingTo { text, message_id } => {
                // A reply to the message showing an inbox thread is a reply in that thread.
                let copy = match &inbound.reply_to {
                    Some(d) if !text.trim_start().starts_with('/') => {
                        self.inbox.copy_at(d, message_id).await?
                    }
                    _ => None,
                };
                match copy {
                    Some(c) => {
                        self.run_command(
                            inbound,
                            Command::Reply {
                                id: c.thread,
                                text: text.clone(),
                            },
                            id,
                        )
                        .await
                    }
                    None => self.run_text(inbound, text, id).await,
                }
            }
            Content::Command(cmd) => self.run_command(inbound, cmd.clone(), id).await,
            Content::ThreadReply { thread, text } => {
                if text.trim().is_empty() {
                    return Ok(Reply::info(format!(
                        "Write your reply to #{} as text here.",
                        thread.0
                    )));
                }
                self.run_command(
                    inbound,
                    Command::Reply {
                        id: *thread,
                        text: text.clone(),
                    },
                    id,
                )
                .await
            }
            Content::File { file, workspace } => {
                let ctx = self.ctx(actor, Some(id));
                self.learn(inbound, file, workspace.clone(), &ctx).await
            }
            Content::RejectWithReason { button, reason }
                if button.action == crate::reply::ButtonAction::Reject =>
            {
                // The version the card showed: a stale card is refused, not applied.
                self.execute_with(
                    actor,
                    Command::Reject {
                        id: button.thread,
                        reason: Some(reason.clone()),
                    },
                    Some(button.version),
                    Some(id),
                )
                .await
            }
            Content::RejectWithReason { button, .. } => {
                self.execute_with(
                    actor,
                    button_command(button),
                    Some(button.version),
                    Some(id),
                )
                .await
            }
            Content::Button(payload) => {
                // The version the button showed: a stale button is refused, not applied.
                self.execute_with(
                    actor,
                    button_command(payload),
                    Some(payload.version),
                    Some(id),
                )
                .await
            }
        }
    }

    async fn run_text(
        &self,
        inbound: &Inbound,
        text: &str,
        id: &InboundMark,
    ) -> Result<Reply, RepoError> {
        match self.parser().parse(text) {
            Parsed::Command(cmd) => self.run_command(inbound, cmd, id).await,
            other => match self.route(&inbound.actor, text, &other).await {
                Some(cmd) => self.run_command(inbound, cmd, id).await,
                None => Ok(crate::service::render_unparsed(other)),
            },
        }
    }

    async fn run_command(
        &self,
        inbound: &Inbound,
        cmd: Command,
        id: &InboundMark,
    ) -> Result<Reply, RepoError> {
        match cmd {
            Command::Batch(items) => Ok(self.run_batch(inbound, items).await),
            cmd => self.execute_with(&inbound.actor, cmd, None, Some(id)).await,
        }
    }

    /// Several threads in one command: each is its own event (`<key>/1`, `<key>/2`, …) on
    /// this same path, so each change happens once with its own stored answer, and a
    /// redelivery after a crash part-way finishes the rest. The reply reports every one.
    async fn run_batch(&self, inbound: &Inbound, items: Vec<Command>) -> Reply {
        let mut replies = Vec::with_capacity(items.len());
        for (n, item) in items.into_iter().enumerate() {
            let key = format!("{}/{}", inbound.key.as_str(), n + 1);
            let Ok(key) = IdempotencyKey::parse(&key) else {
                return Reply::error(
                    "This message's id is too long to handle several threads at once; name one thread per message.",
                );
            };
            let part = Inbound {
                key,
                reply_to: None,
                content: Content::Command(item),
                ..inbound.clone()
            };
            replies.push(Box::pin(self.accept(part)).await.reply);
        }
        crate::chat::text::each(replies)
    }

    /// Stores the reply with the event and queues it for the front, in one transaction. The
    /// delivery whose answer is stored first is the one that answers (`fresh`); any other gets
    /// that stored answer.
    async fn answer(&self, id: InboundId, inbound: &Inbound, reply: Reply) -> Accepted {
        let Ok(json) = serde_json::to_string(&reply) else {
            tracing::error!("a reply could not be stored");
            return Accepted {
                reply: failure(&RepoError::Corrupt("a reply could not be stored".into())),
                fresh: false,
            };
        };
        let keyed = keyed_reply(inbound, &reply);
        match self
            .inbound
            .answer_inbound(id, &json, keyed.as_ref(), self.clock.now())
            .await
        {
            Ok(a) if a.first => Accepted { reply, fresh: true },
            Ok(a) => stored(&a.response),
            Err(e) => Accepted {
                reply: failure(&e),
                fresh: false,
            },
        }
    }

    /// Lets go of the answer the change's transaction wrote (`held`): the final reply adds
    /// what followed the change. This delivery answered (its transaction stored the reply).
    async fn release(
        &self,
        id: InboundId,
        inbound: &Inbound,
        held: Reply,
        reply: Reply,
    ) -> Accepted {
        let Ok(json) = serde_json::to_string(&reply) else {
            tracing::error!("a reply could not be stored");
            return Accepted {
                reply: held,
                fresh: true,
            };
        };
        let again = reply != held;
        let keyed = keyed_reply(inbound, &reply);
        if let Err(e) = self
            .inbound
            .release_answer(id, &json, keyed.as_ref(), again, self.clock.now())
            .await
        {
            // The held answer leaves on its own once its hold has passed.
            tracing::warn!(error = %e, "an answer could not be released; it leaves when its hold ends");
        }
        Accepted { reply, fresh: true }
    }

    /// A redelivery whose change was applied waits briefly for the first delivery's answer
    /// (it is being stored right now, unless the first delivery crashed).
    async fn wait_for_answer(&self, record: &InboundRecord) -> Option<Accepted> {
        let deadline = tokio::time::Instant::now() + WAIT_FOR_FIRST;
        loop {
            if let Ok(Recorded::Duplicate {
                response: Some(r), ..
            }) = self.inbound.record_inbound(record).await
            {
                return Some(stored(&r));
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The key of an event's reply in the outbox: one reply per event, ever.
fn reply_key(inbound: &Inbound) -> String {
    format!("reply:{}", inbound.key.as_str())
}

/// The reply's outbox row for a front that queues its replies.
fn keyed_reply(inbound: &Inbound, reply: &Reply) -> Option<KeyedOutbound> {
    inbound.reply_to.as_ref().map(|d| KeyedOutbound {
        message: NewOutbound {
            destination: d.clone(),
            payload: OutboxPayload::Send {
                reply: reply.clone(),
            },
        },
        key: reply_key(inbound),
    })
}

/// The command a button press stands for.
fn button_command(payload: &ButtonPayload) -> Command {
    match payload.action {
        ButtonAction::Approve => Command::Approve(payload.thread),
        ButtonAction::Reject => Command::Reject {
            id: payload.thread,
            reason: None,
        },
        ButtonAction::Archive => Command::Archive(payload.thread),
    }
}

/// The reply stored with an event, for a redelivery.
fn stored(json: &str) -> Accepted {
    Accepted {
        reply: serde_json::from_str(json).unwrap_or_else(|_| already_handled()),
        fresh: false,
    }
}
