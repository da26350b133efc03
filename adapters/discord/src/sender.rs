//! The outbox [`Sender`] for Discord destinations (`discord:channel:<id>`).
//!
//! - `Send`: the reply split at 2000 characters, buttons under the last piece.
//! - `Post`: the thread's main message with its buttons, then a Discord thread opened on it
//!   (`POST /channels/{c}/messages/{m}/threads`), linked to the inbox thread so messages
//!   written there are replies; a long text continues inside the Discord thread. The main
//!   message's id is returned: the deliverer records it as the thread's copy.
//! - `Edit`: the main message rewritten (`PATCH /channels/{c}/messages/{m}`): buttons disabled,
//!   outcome and decider shown once decided.
//! - `Typing`, `Stream`, `Replace`: an answer while it is produced: the typing indicator
//!   (`POST /channels/{c}/typing`), one message opened with the first words and edited in
//!   place as more arrive (core paces the edits to one a second per answer; 429s come back as
//!   `RateLimited` and are waited out), then the final answer written over it through the
//!   outbox.
//!
//! Every message carries a `nonce` derived from the outbox message id with `enforce_nonce`, so
//! a resend after a crash or a 429 half-way (same outbox id) returns the message Discord already
//! has instead of posting it twice; a thread already opened on the message (error 160004) is
//! taken as opened. Order per destination is the outbox's: one message at a time.

use crate::rest::{Rest, RestError};
use crate::{FRONT, render};
use async_trait::async_trait;
use krake_core::actor::Front;
use krake_core::delivery::{Delivery, SendError, Sender, Sent};
use krake_core::inbox::Thread;
use krake_core::outbox::{Destination, DestinationError, OutboxId};
use krake_core::ports::{ThreadLink, ThreadLinkRepo};
use serde_json::{Value, json};
use serenity::http::{LightMethod, Route};
use serenity::model::id::{ChannelId, MessageId};
use std::sync::Arc;

/// Discord's error code for "a thread has already been created for this message".
const THREAD_ALREADY_CREATED: u64 = 160_004;

/// The destination of a channel.
pub fn channel_destination(channel: u64) -> Result<Destination, DestinationError> {
    Destination::parse(&format!("{FRONT}:channel:{channel}"))
}

/// The channel of a Discord destination.
pub fn parse_destination(d: &Destination) -> Option<u64> {
    let rest = d.as_str().strip_prefix("discord:channel:")?;
    crate::snowflake(rest)
}

/// Sends outbox deliveries to Discord.
pub struct DiscordSender {
    rest: Arc<Rest>,
    links: Arc<dyn ThreadLinkRepo>,
}

impl DiscordSender {
    /// A sender over this REST client, recording Discord threads in `links`.
    pub fn new(rest: Arc<Rest>, links: Arc<dyn ThreadLinkRepo>) -> Self {
        Self { rest, links }
    }

    async fn create(
        &self,
        channel: u64,
        mut body: Value,
        nonce: Option<String>,
    ) -> Result<u64, RestError> {
        if let (Some(n), Some(obj)) = (nonce, body.as_object_mut()) {
            obj.insert("nonce".into(), json!(n));
            obj.insert("enforce_nonce".into(), json!(true));
        }
        let msg = self
            .rest
            .call(
                LightMethod::Post,
                Route::ChannelMessages {
                    channel_id: ChannelId::new(channel),
                },
                Some(&body),
            )
            .await?;
        id_of(&msg)
    }

    async fn post_thread(
        &self,
        channel: u64,
        th: &Thread,
        key: Option<OutboxId>,
    ) -> Result<u64, RestError> {
        let rendered = render::thread_message(th);
        let message = self.create(channel, rendered.main, nonce(key, 0)).await?;
        let opened = self
            .rest
            .call(
                LightMethod::Post,
                Route::ChannelMessageThreads {
                    channel_id: ChannelId::new(channel),
                    message_id: MessageId::new(message),
                },
                Some(&json!({ "name": rendered.name, "auto_archive_duration": 10080 })),
            )
            .await;
        let discord_thread = match opened {
            Ok(ch) => Some(id_of(&ch)?),
            // Opened by an earlier attempt: a thread started from a message shares its id.
            Err(RestError::Refused {
                code: Some(THREAD_ALREADY_CREATED),
                ..
            }) => Some(message),
            Err(e @ (RestError::RateLimited { .. } | RestError::Transient(_))) => return Err(e),
            Err(e) => {
                // The message is up and carries the buttons; without a Discord thread people
                // reply with /reply instead. Not worth losing the post over.
                tracing::warn!(error = %e, channel, "could not open a Discord thread on a posted thread");
                None
            }
        };
        if let Some(t) = discord_thread {
            self.links
                .link_thread(
                    Front::Discord,
                    &t.to_string(),
                    &ThreadLink {
                        thread: th.id,
                        workspace: th.workspace.clone(),
                    },
                )
                .await
                .map_err(|e| RestError::Transient(format!("recording the Discord thread: {e}")))?;
            for (i, piece) in rendered.overflow.iter().enumerate() {
                self.create(t, render::body(piece, Vec::new()), nonce(key, i + 1))
                    .await?;
            }
        }
        Ok(message)
    }

    /// Edits message `message_id` of `channel` to `body`.
    async fn patch(&self, channel: u64, message_id: &str, body: &Value) -> Result<u64, RestError> {
        let Some(message) = crate::snowflake(message_id) else {
            return Err(RestError::Refused {
                status: 0,
                code: None,
                message: format!("`{message_id}` is not a Discord message id"),
            });
        };
        self.rest
            .call(
                LightMethod::Patch,
                Route::ChannelMessage {
                    channel_id: ChannelId::new(channel),
                    message_id: MessageId::new(message),
                },
                Some(body),
            )
            .await?;
        Ok(message)
    }

    async fn deliver(
        &self,
        key: Option<OutboxId>,
        destination: &Destination,
        delivery: &Delivery,
    ) -> Result<Sent, RestError> {
        let Some(channel) = parse_destination(destination) else {
            return Err(RestError::Refused {
                status: 0,
                code: None,
                message: format!("`{}` is not a Discord destination", destination.as_str()),
            });
        };
        let first = match delivery {
            Delivery::Send { reply } => {
                let mut first = None;
                for (i, b) in render::reply_bodies(reply).into_iter().enumerate() {
                    let id = self.create(channel, b, nonce(key, i)).await?;
                    first.get_or_insert(id);
                }
                first
            }
            Delivery::Post { thread } => Some(self.post_thread(channel, thread, key).await?),
            Delivery::Edit { thread, message_id } => {
                let rendered = render::thread_message(thread);
                Some(self.patch(channel, message_id, &rendered.main).await?)
            }
            Delivery::Stream { message_id, text } => {
                let b = render::body(&render::truncate(text, render::MAX_CONTENT), Vec::new());
                match message_id {
                    Some(m) => Some(self.patch(channel, m, &b).await?),
                    None => Some(self.create(channel, b, None).await?),
                }
            }
            Delivery::Replace { message_id, reply } => {
                // The streamed message becomes the final answer's first piece; a longer
                // answer goes on in messages of its own.
                let mut bodies = render::reply_bodies(reply).into_iter();
                let first = bodies
                    .next()
                    .unwrap_or_else(|| render::body("…", Vec::new()));
                let id = self.patch(channel, message_id, &first).await?;
                for (i, b) in bodies.enumerate() {
                    self.create(channel, b, nonce(key, i + 1)).await?;
                }
                Some(id)
            }
            Delivery::Typing => {
                self.rest
                    .call(
                        LightMethod::Post,
                        Route::ChannelTyping {
                            channel_id: ChannelId::new(channel),
                        },
                        None,
                    )
                    .await?;
                None
            }
        };
        Ok(Sent {
            message_id: first.map(|m| m.to_string()),
        })
    }
}

fn nonce(key: Option<OutboxId>, piece: usize) -> Option<String> {
    // At most 25 characters: `k` + 19 digits + `.` + the piece number.
    key.map(|k| format!("k{}.{piece}", k.0))
}

fn id_of(v: &Value) -> Result<u64, RestError> {
    v.get("id")
        .and_then(Value::as_str)
        .and_then(crate::snowflake)
        .ok_or_else(|| RestError::Transient("Discord's answer has no id".into()))
}

fn to_send_error(e: RestError) -> SendError {
    match e {
        RestError::RateLimited { after, .. } => SendError::RateLimited(after),
        RestError::Transient(m) => SendError::Transient(m),
        r @ RestError::Refused { .. } => SendError::Permanent(r.to_string()),
    }
}

#[async_trait]
impl Sender for DiscordSender {
    fn front(&self) -> &str {
        FRONT
    }

    async fn send(
        &self,
        destination: &Destination,
        delivery: &Delivery,
    ) -> Result<Sent, SendError> {
        self.deliver(None, destination, delivery)
            .await
            .map_err(to_send_error)
    }

    async fn send_keyed(
        &self,
        key: OutboxId,
        destination: &Destination,
        delivery: &Delivery,
    ) -> Result<Sent, SendError> {
        self.deliver(Some(key), destination, delivery)
            .await
            .map_err(to_send_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_round_trip() {
        let d = channel_destination(1_311_111_111_111_111_111).unwrap();
        assert_eq!(d.as_str(), "discord:channel:1311111111111111111");
        assert_eq!(parse_destination(&d), Some(1_311_111_111_111_111_111));
        assert_eq!(
            parse_destination(&Destination::parse("telegram:-100").unwrap()),
            None
        );
        assert_eq!(
            parse_destination(&Destination::parse("discord:channel:abc").unwrap()),
            None
        );
    }

    #[test]
    fn nonces_fit_discord() {
        let n = nonce(Some(OutboxId(i64::MAX)), 99).unwrap();
        assert!(n.len() <= 25, "{n}");
        assert_eq!(nonce(None, 0), None);
    }
}
