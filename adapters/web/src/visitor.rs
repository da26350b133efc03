//! The customer widget's socket (`GET /ws/visitor`) and its outbox sender: anonymous visitors
//! of a shop's pages chatting with the workspace's customer-service agent (core's
//! [`krake_core::visitor`] holds the rules; this only verifies, converts and renders).
//!
//! Client → server (JSON text frames, at most [`MAX_FRAME`] bytes):
//! - first, within `hello_timeout`: `{"type":"hello","key":"kpub_…","visitor":"kvis_…"?}` — the
//!   publishable key from the script tag's `data-key`, and the visitor token kept in the
//!   browser's local storage to resume the conversation;
//! - `{"type":"say","id":"v3","text":"Where is my order?"}`: a message, handled once per `id`.
//!
//! Server → client:
//! - `welcome`: `visitor` (the token to keep), `workspace`, `title`, `agent`, `history`
//!   (`[{seq, from, name, text, citations}]`, oldest first);
//! - `message`: `seq`, `from` (`agent` or `team`), `name`, `text`, `citations`;
//! - `typing`: the agent is writing;
//! - `ack`: `id` — the message was kept and handed to the agent;
//! - `error`: `code`, `message` — `bad_key`, `revoked`, `origin` end the chat (the socket
//!   closes); `rate_limited`, `too_long`, `bad_frame` leave it open.
//!
//! Bounds: the page's `Origin` must be one of the key's origins (checked at `hello`); per
//! visitor at most [`VisitorLimits::sockets_per_visitor`] sockets and
//! [`VisitorLimits::messages_per_minute`] messages; per key
//! [`VisitorLimits::key_messages_per_minute`] messages and
//! [`VisitorLimits::hellos_per_minute`] hellos (new and resumed conversations); frames beyond
//! [`MAX_FRAME`] close the socket. A revoked key ends its open chats at their next message, or
//! within `socket_recheck` while idle.

use crate::front::WebState;
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use krake_core::delivery::{Delivery, SendError, Sent};
use krake_core::inbound::{Content, IdempotencyKey, Inbound};
use krake_core::outbox::{Destination, OutboxId};
use krake_core::visitor::{
    MAX_MESSAGE_CHARS, NewVisitorMessage, Speaker, TOKEN_PREFIX, Visitor, VisitorId, VisitorMessage,
};
use serde::Deserialize;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Largest text frame accepted from a visitor.
pub const MAX_FRAME: usize = 8 * 1024;

/// Frames waiting for one slow visitor socket; more are dropped (the visitor's conversation
/// is kept: a reload shows everything).
const QUEUE: usize = 32;

/// The customer widget's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisitorLimits {
    /// Messages one visitor may send per minute (and at once).
    pub messages_per_minute: u32,
    /// Messages all visitors of one key may send per minute.
    pub key_messages_per_minute: u32,
    /// Hellos (new or resumed conversations) per key per minute.
    pub hellos_per_minute: u32,
    /// Sockets one visitor may hold open at once (tabs).
    pub sockets_per_visitor: usize,
    /// Sockets all visitors may hold open at once.
    pub sockets: usize,
    /// How often an open socket looks for messages kept by another process (several
    /// `krake serve` on one PostgreSQL: the outbox may deliver a visitor's answer in a process
    /// that does not hold their socket); `None` with one process (SQLite).
    pub catch_up: Option<std::time::Duration>,
}

impl Default for VisitorLimits {
    fn default() -> Self {
        Self {
            messages_per_minute: 10,
            key_messages_per_minute: 600,
            hellos_per_minute: 600,
            sockets_per_visitor: 4,
            sockets: 10_000,
            catch_up: None,
        }
    }
}

type Keyed = governor::DefaultKeyedRateLimiter<i64>;

/// A frame for a visitor's sockets: the message's `seq` (0 for `typing`) and its JSON.
type Pushed = (i64, Arc<str>);

/// Each visitor's open sockets in this process: (socket id, its queue).
type Sockets = HashMap<i64, Vec<(u64, mpsc::Sender<Pushed>)>>;

fn per_minute(n: u32) -> governor::Quota {
    let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    governor::Quota::per_minute(n).allow_burst(n)
}

/// The visitors' sockets in this process, and their rate limits.
pub struct VisitorHub {
    limits: VisitorLimits,
    sockets: Mutex<Sockets>,
    open: AtomicU64,
    next: AtomicU64,
    visitor_messages: Keyed,
    key_messages: Keyed,
    key_hellos: Keyed,
}

impl Default for VisitorHub {
    fn default() -> Self {
        Self::new(VisitorLimits::default())
    }
}

impl VisitorHub {
    /// A hub with `limits`.
    pub fn new(limits: VisitorLimits) -> Self {
        Self {
            limits,
            sockets: Mutex::new(HashMap::new()),
            open: AtomicU64::new(0),
            next: AtomicU64::new(1),
            visitor_messages: governor::RateLimiter::keyed(per_minute(limits.messages_per_minute)),
            key_messages: governor::RateLimiter::keyed(per_minute(limits.key_messages_per_minute)),
            key_hellos: governor::RateLimiter::keyed(per_minute(limits.hellos_per_minute)),
        }
    }

    /// Visitor sockets open in this process.
    pub fn open_sockets(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Sockets> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a socket of `visitor`; `None` when the visitor or the process has too many.
    fn join(&self, visitor: VisitorId) -> Option<(u64, mpsc::Receiver<Pushed>)> {
        let mut map = self.lock();
        if self.open.load(Ordering::Relaxed) >= self.limits.sockets as u64 {
            return None;
        }
        let list = map.entry(visitor.0).or_default();
        list.retain(|(_, tx)| !tx.is_closed());
        if list.len() >= self.limits.sockets_per_visitor {
            return None;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(QUEUE);
        list.push((id, tx));
        self.open.fetch_add(1, Ordering::Relaxed);
        Some((id, rx))
    }

    fn leave(&self, visitor: VisitorId, socket: u64) {
        let mut map = self.lock();
        if let Some(list) = map.get_mut(&visitor.0) {
            list.retain(|(id, _)| *id != socket);
            if list.is_empty() {
                map.remove(&visitor.0);
            }
        }
        self.open.fetch_sub(1, Ordering::Relaxed);
        if map.is_empty() {
            map.shrink_to_fit();
        }
    }

    /// Pushes a frame to every socket of `visitor` in this process (a full queue drops it).
    pub fn push(&self, visitor: VisitorId, frame: &serde_json::Value) {
        let seq = frame["seq"].as_i64().unwrap_or(0);
        let text: Arc<str> = Arc::from(frame.to_string());
        let map = self.lock();
        if let Some(list) = map.get(&visitor.0) {
            for (_, tx) in list {
                let _ = tx.try_send((seq, text.clone()));
            }
        }
    }

    fn may_say(&self, visitor: &Visitor) -> bool {
        self.visitor_messages.check_key(&visitor.id.0).is_ok()
            && self.key_messages.check_key(&visitor.key.0).is_ok()
    }

    /// Forgets limiter state of visitors and keys not seen lately.
    pub fn retain_recent(&self) {
        for l in [&self.visitor_messages, &self.key_messages, &self.key_hellos] {
            l.retain_recent();
            l.shrink_to_fit();
        }
    }
}

/// A frame from a visitor's widget.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum VisitorFrame {
    /// Opens or resumes the conversation.
    Hello {
        /// The publishable key.
        key: String,
        /// The visitor token to resume with.
        #[serde(default)]
        visitor: Option<String>,
    },
    /// A message.
    Say {
        /// The widget's id of the message (unique per visitor).
        id: String,
        /// What was written.
        text: String,
    },
}

/// A message as the widget receives it.
pub fn message_json(m: &VisitorMessage) -> serde_json::Value {
    serde_json::json!({
        "seq": m.seq,
        "from": m.from.as_str(),
        "name": m.name,
        "text": m.text,
        "citations": m.citations(),
    })
}

/// A `message` frame.
fn message_frame(m: &VisitorMessage) -> serde_json::Value {
    let mut frame = message_json(m);
    if let Some(o) = frame.as_object_mut() {
        o.insert("type".into(), "message".into());
    }
    frame
}

fn error(code: &str, message: &str) -> serde_json::Value {
    serde_json::json!({"type": "error", "code": code, "message": message})
}

/// Routes: `/ws/visitor`.
pub fn router() -> Router<WebState> {
    Router::new().route("/ws/visitor", get(upgrade))
}

async fn upgrade(
    State(state): State<WebState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    ws.read_buffer_size(2 * 1024)
        .write_buffer_size(2 * 1024)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| serve_socket(state, origin, socket))
        .into_response()
}

async fn serve_socket(state: WebState, origin: Option<String>, socket: WebSocket) {
    let (tx, rx) = socket.split();
    let tx = tx.with(|t: String| async move { Ok::<_, axum::Error>(Message::Text(t.into())) });
    let rx = rx.filter_map(|m| async move {
        match m {
            Ok(Message::Text(t)) => Some(Ok(t.to_string())),
            Ok(Message::Close(_)) | Err(_) => Some(Err(())),
            Ok(_) => None,
        }
    });
    serve(state, origin, Box::pin(tx), Box::pin(rx)).await;
}

/// Serves one visitor's socket over any sink and stream of text frames (the stream yields
/// `Err` when the socket closes).
pub async fn serve<S, R>(state: WebState, origin: Option<String>, mut tx: S, mut rx: R)
where
    S: Sink<String> + Unpin,
    R: Stream<Item = Result<String, ()>> + Unpin,
{
    let Some(visitors) = state.krake.visitors().cloned() else {
        let _ = send(
            &mut tx,
            &error("bad_key", "This chat is not available here."),
        )
        .await;
        return;
    };
    let hello = match tokio::time::timeout(state.config.hello_timeout, rx.next()).await {
        Ok(Some(Ok(t))) => serde_json::from_str::<VisitorFrame>(&t),
        _ => return,
    };
    let (key, token) = match hello {
        Ok(VisitorFrame::Hello { key, visitor }) => (key, visitor),
        _ => {
            let _ = send(
                &mut tx,
                &error(
                    "bad_frame",
                    "Start with {\"type\":\"hello\",\"key\":\"kpub_…\"}.",
                ),
            )
            .await;
            return;
        }
    };
    // Limited before anything is written: a flood of hellos makes no visitors.
    match visitors.check(&key, origin.as_deref()).await {
        Ok(k) if state.visitors.key_hellos.check_key(&k.id.0).is_err() => {
            let _ = send(
                &mut tx,
                &error(
                    "rate_limited",
                    "This chat is busy right now; try again in a minute.",
                ),
            )
            .await;
            return;
        }
        Ok(_) => {}
        Err(refused) => {
            let _ = send(&mut tx, &error(refused.code(), &refused.to_string())).await;
            return;
        }
    }
    let opened = visitors
        .open(&key, origin.as_deref(), token.as_deref(), || {
            format!("{TOKEN_PREFIX}{}", crate::auth::random_token())
        })
        .await;
    let welcome = match opened {
        Ok(Ok(w)) => w,
        Ok(Err(refused)) => {
            let _ = send(&mut tx, &error(refused.code(), &refused.to_string())).await;
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "a visitor could not be let in");
            let _ = send(
                &mut tx,
                &error(
                    "unavailable",
                    "The chat is unavailable right now; try again in a minute.",
                ),
            )
            .await;
            return;
        }
    };
    let visitor = welcome.visitor.clone();
    let Some((socket, mut pushed)) = state.visitors.join(visitor.id) else {
        let _ = send(
            &mut tx,
            &error(
                "rate_limited",
                "This chat is open in too many tabs; close one and reload.",
            ),
        )
        .await;
        return;
    };
    let frame = serde_json::json!({
        "type": "welcome",
        "visitor": welcome.token,
        "workspace": visitor.workspace.as_str(),
        "title": welcome.title,
        "agent": visitor.agent,
        "history": welcome.history.iter().map(message_json).collect::<Vec<_>>(),
    });
    // The last message shown: a message is shown once, pushed or caught up.
    let mut last = welcome.history.last().map_or(0, |m| m.seq);
    let catch_up = state.visitors.limits.catch_up;
    let mut catching =
        tokio::time::interval(catch_up.unwrap_or(std::time::Duration::from_secs(3600)));
    catching.tick().await;
    if send(&mut tx, &frame).await {
        let mut recheck = tokio::time::interval(state.config.socket_recheck);
        recheck.tick().await;
        loop {
            tokio::select! {
                got = rx.next() => {
                    let Some(Ok(text)) = got else { break };
                    if !handle(&state, &visitor, &text, &mut tx).await {
                        break;
                    }
                }
                out = pushed.recv() => {
                    let Some((seq, out)) = out else { break };
                    if seq > 0 && seq <= last {
                        continue;
                    }
                    last = last.max(seq);
                    if tx.send(out.to_string()).await.is_err() {
                        break;
                    }
                }
                _ = catching.tick(), if catch_up.is_some() => {
                    let Ok(missed) = visitors.messages_after(visitor.id, last).await else {
                        continue;
                    };
                    for m in missed {
                        last = last.max(m.seq);
                        if !send(&mut tx, &message_frame(&m)).await {
                            break;
                        }
                    }
                }
                _ = recheck.tick() => {
                    if let Ok(Err(r)) = visitors.still_allowed(&visitor).await {
                        let _ = send(&mut tx, &error(r.code(), &r.to_string())).await;
                        break;
                    }
                }
            }
        }
    }
    state.visitors.leave(visitor.id, socket);
}

/// Sends a frame; `false` when the socket is gone.
async fn send<S: Sink<String> + Unpin>(tx: &mut S, frame: &serde_json::Value) -> bool {
    tx.send(frame.to_string()).await.is_ok()
}

/// Handles one frame after `hello`; `false` ends the socket.
async fn handle<S: Sink<String> + Unpin>(
    state: &WebState,
    visitor: &Visitor,
    text: &str,
    tx: &mut S,
) -> bool {
    let (id, said) = match serde_json::from_str::<VisitorFrame>(text) {
        Ok(VisitorFrame::Say { id, text }) => (id, text),
        Ok(VisitorFrame::Hello { .. }) | Err(_) => {
            return send(
                tx,
                &error(
                    "bad_frame",
                    "Send {\"type\":\"say\",\"id\":\"v1\",\"text\":\"…\"}.",
                ),
            )
            .await;
        }
    };
    if id.is_empty() || id.len() > 64 || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return send(
            tx,
            &error(
                "bad_frame",
                "A message's id has 1 to 64 characters without spaces.",
            ),
        )
        .await;
    }
    if said.chars().count() > MAX_MESSAGE_CHARS {
        return send(
            tx,
            &error(
                "too_long",
                &format!("That message is too long: write at most {MAX_MESSAGE_CHARS} characters."),
            ),
        )
        .await;
    }
    if !state.visitors.may_say(visitor) {
        return send(
            tx,
            &error(
                "rate_limited",
                "You're sending messages faster than we can read them; wait a few seconds and send again.",
            ),
        )
        .await;
    }
    let (Ok(key), Some(to)) = (
        IdempotencyKey::parse(&format!("visitor:{}:{id}", visitor.id)),
        visitor.id.destination(),
    ) else {
        return send(tx, &error("bad_frame", "That message's id cannot be used.")).await;
    };
    let inbound = Inbound {
        source: krake_core::actor::Front::Visitor,
        key,
        actor: visitor.actor(),
        conversation: to.as_str().to_owned(),
        reply_to: Some(to.clone()),
        answer_to: Some(to),
        content: Content::Text(said),
    };
    let _accepted = state.krake.accept(inbound).await;
    send(tx, &serde_json::json!({"type": "ack", "id": id})).await
}

/// The customer widget's outbox sender (front `visitor`): what is queued for `visitor:<id>`
/// is kept in the visitor's conversation once per outbox message, then pushed to their open
/// sockets in this process. Threads shown there record a copy (so the team's replies in them
/// reach the visitor) and show nothing themselves.
pub struct VisitorSender {
    krake: krake_core::Krake,
    hub: Arc<VisitorHub>,
}

impl VisitorSender {
    /// A sender keeping messages through `krake`'s visitors and pushing through `hub`.
    pub fn new(krake: krake_core::Krake, hub: Arc<VisitorHub>) -> Self {
        Self { krake, hub }
    }

    async fn keep(
        &self,
        visitor: VisitorId,
        reply: &krake_core::reply::Reply,
        key: &str,
    ) -> Result<Sent, SendError> {
        if reply.text.trim().is_empty() {
            // A question handed to the agent: its answer follows.
            return Ok(Sent { message_id: None });
        }
        let Some(visitors) = self.krake.visitors() else {
            return Err(SendError::Permanent("visitors are not enabled".into()));
        };
        let repo = visitors.repo();
        let known = repo
            .visitor(visitor)
            .await
            .map_err(|e| SendError::Transient(e.to_string()))?;
        let Some(v) = known else {
            return Err(SendError::Permanent(format!("no visitor {visitor}")));
        };
        let (from, name) = match &reply.by {
            Some(person) => (Speaker::Team, person.as_str()),
            None => (Speaker::Agent, v.agent.as_str()),
        };
        let kept = repo
            .append_message(
                visitor,
                &NewVisitorMessage {
                    from,
                    name: Some(name),
                    text: &reply.text,
                },
                key,
                krake_core::time::Clock::now(&krake_core::time::SystemClock),
            )
            .await
            .map_err(|e| SendError::Transient(e.to_string()))?;
        if let Some(m) = &kept {
            self.hub.push(visitor, &message_frame(m));
        }
        Ok(Sent {
            message_id: kept.map(|m| format!("m{}", m.seq)),
        })
    }
}

#[async_trait::async_trait]
impl krake_core::delivery::Sender for VisitorSender {
    fn front(&self) -> &str {
        krake_core::visitor::FRONT
    }

    async fn send(
        &self,
        destination: &Destination,
        delivery: &Delivery,
    ) -> Result<Sent, SendError> {
        let Some(visitor) = VisitorId::of(destination) else {
            return Err(SendError::Permanent(format!(
                "`{}` is not a visitor",
                destination.as_str()
            )));
        };
        match delivery {
            Delivery::Typing | Delivery::Stream { .. } => {
                self.hub
                    .push(visitor, &serde_json::json!({"type": "typing"}));
                Ok(Sent {
                    message_id: match delivery {
                        Delivery::Stream { message_id, .. } => message_id
                            .clone()
                            .or_else(|| Some(format!("s{}", crate::auth::random_token()))),
                        _ => None,
                    },
                })
            }
            Delivery::Send { reply } | Delivery::Replace { reply, .. } => {
                // Not from the outbox (no key to repeat): kept as a message of its own.
                let key = format!("live:{}", crate::auth::random_token());
                self.keep(visitor, reply, &key).await
            }
            Delivery::Post { thread } => Ok(Sent {
                message_id: Some(format!("thread-{}", thread.id.0)),
            }),
            Delivery::Edit { message_id, .. } => Ok(Sent {
                message_id: Some(message_id.clone()),
            }),
        }
    }

    async fn send_keyed(
        &self,
        key: OutboxId,
        destination: &Destination,
        delivery: &Delivery,
    ) -> Result<Sent, SendError> {
        match (delivery, VisitorId::of(destination)) {
            (Delivery::Send { reply } | Delivery::Replace { reply, .. }, Some(visitor)) => {
                self.keep(visitor, reply, &format!("out:{}", key.0)).await
            }
            _ => self.send(destination, delivery).await,
        }
    }

    fn stream_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(1)
    }
}
