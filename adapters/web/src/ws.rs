//! The web chat over WebSocket (`GET /ws/chat`), written over any `Sink`/`Stream` of text
//! frames so tests drive it with channels.
//!
//! Client → server (JSON text frames):
//! - first `{"type":"hello","workspace":"lunavo"?,"token":"krk_…"?,"session":"…"?,"last":12?}`:
//!   who (a session cookie on the upgrade request, or a token: a widget token, scoped to one
//!   workspace and the chat, or a personal one), which widget workspace, and for a resume the
//!   session id and the last sequence number seen;
//! - `{"type":"say","id":"c7","text":"/todo"}`: a chat message, handled once per `id`
//!   (a message resent after a drop is not handled twice);
//! - `{"type":"press","payload":"k1:a:12:3","id":"p4"?,"reason":"…"?}`: a button (handled once
//!   per `id`); a Reject press may carry the reason the person gave;
//! - `{"type":"ack","seq":40}`: everything up to 40 arrived (lets the server forget it).
//!
//! Server → client: every message has `seq` (1, 2, 3, … per session) and a `type`: `welcome`
//! (`session`, `user`, `workspace`, `reset`: true when the client must reload its state),
//! `reply` (`re`, `text`, `tone`, `thread`, `buttons: [{label, payload}]`, `blocks`: the same
//! content as parts to draw, see [`block_json`]), `thread` (a new or changed inbox thread),
//! `error` (`code`, `message`: a bad frame; the connection stays open).
//!
//! A session opened for a workspace (`hello.workspace`, the widget's `data-workspace`) acts in
//! that workspace only: what it sends runs as the person with their role there and none
//! elsewhere, so `/todo` lists that workspace's threads, `/show` and decisions reach only them,
//! and a task for an agent goes to it (see [`scoped`]).
//!
//! Before a session: `error` with `code` `unauthenticated` (no credential: sign in at `/login`
//! or give a token) or `cross_origin` (the page is not on this Krake's own origin, so its
//! session cookie does not count there; the client says so rather than asking to sign in).
//!
//! A socket acts with the rights its credential has now, not those it had at `hello`: before
//! each `say` or `press`, and before pushing, the session cookie or token is checked again
//! (through the auth cache, so at most `auth_cache_ttl`, 2 s, old), and at least every
//! [`WebConfig::socket_recheck`](crate::front::WebConfig::socket_recheck) while idle. A
//! credential that no longer counts (signed out, expired, revoked) ends the session with
//! `error` `unauthenticated`; changed roles end the connection with `error` `reconnect` (the
//! client reconnects, and the resume looks the user up again). A sign-out in this process
//! closes its sockets at once.

use crate::auth::{Caller, Credential, caller, recheck};
use crate::front::WebState;
use crate::live::Session;
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use krake_core::actor::{Front, Role};
use krake_core::inbound::{Content, IdempotencyKey, Inbound};
use krake_core::reply::{Block, Button, ButtonAction, ButtonPayload, Reply};
use krake_core::workspace::WorkspaceSlug;
use serde::Deserialize;
use std::sync::Arc;

/// Largest text frame accepted from a client.
pub const MAX_FRAME: usize = 16 * 1024;

/// A frame from the client, parsed.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum ClientFrame {
    /// Opens or resumes the session.
    Hello {
        /// The widget's workspace.
        #[serde(default)]
        workspace: Option<String>,
        /// A personal API token, when not signed in by cookie.
        #[serde(default)]
        token: Option<String>,
        /// The session to resume.
        #[serde(default)]
        session: Option<String>,
        /// The last sequence number seen.
        #[serde(default)]
        last: Option<u64>,
    },
    /// A chat message.
    Say {
        /// The client's id of the message (unique per session).
        id: String,
        /// What was written.
        text: String,
    },
    /// A button press.
    Press {
        /// The button's payload.
        payload: String,
        /// The client's id of the press (optional; a press resent with the same id is
        /// handled once).
        #[serde(default)]
        id: Option<String>,
        /// Why, for a Reject (the widget asks for it).
        #[serde(default)]
        reason: Option<String>,
    },
    /// Everything up to `seq` arrived.
    Ack {
        /// The last sequence number received.
        seq: u64,
    },
}

/// Routes: `/ws/chat`.
pub fn router() -> Router<WebState> {
    Router::new().route("/ws/chat", get(upgrade))
}

async fn upgrade(
    State(state): State<WebState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // A session cookie only counts when the page is from this host (no cross-site hijacking).
    let cookie_caller = if same_origin(&headers, &state.config) {
        match caller(&state, &headers).await.ok().flatten() {
            Some(c) => Cookie::Caller(c),
            None => Cookie::None,
        }
    } else if crate::auth::cookie(&headers, crate::auth::SESSION_COOKIE)
        .is_some_and(|v| !v.is_empty())
    {
        Cookie::OtherOrigin
    } else {
        Cookie::None
    };
    ws.read_buffer_size(4 * 1024)
        .write_buffer_size(4 * 1024)
        .max_message_size(MAX_FRAME)
        .max_frame_size(MAX_FRAME)
        .on_upgrade(move |socket| serve_socket(state, cookie_caller, socket))
        .into_response()
}

/// Whether the page opening a socket is from this Krake: its `Origin` is `public_url`'s when
/// that is set; otherwise its host is the request's `Host` and its scheme is https (with
/// `secure_cookies`) or http/https. A request with no `Origin` is not from a browser page.
pub fn same_origin(headers: &HeaderMap, config: &crate::front::WebConfig) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let Some(origin) = origin else {
        // Not a browser (no Origin): cookies were not sent by a third-party page.
        return true;
    };
    let origin = origin.trim_end_matches('/');
    if let Some(public) = &config.public_url {
        return origin.eq_ignore_ascii_case(public_origin(public));
    }
    let Some((scheme, rest)) = origin.split_once("://") else {
        return false;
    };
    let scheme_ok = if config.secure_cookies {
        scheme.eq_ignore_ascii_case("https")
    } else {
        scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http")
    };
    scheme_ok && host.is_some_and(|h| rest.eq_ignore_ascii_case(h))
}

/// The origin (`scheme://host[:port]`) of a URL such as `https://krake.example.com/base/`.
fn public_origin(url: &str) -> &str {
    let url = url.trim_end_matches('/');
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host_end = rest.find('/').map_or(url.len(), |i| scheme.len() + 3 + i);
            &url[..host_end]
        }
        None => url,
    }
}

/// What the upgrade request's session cookie gave.
#[derive(Debug, Clone)]
pub enum Cookie {
    /// A signed-in person, from a page of this Krake.
    Caller(Caller),
    /// A session cookie sent by a page of another origin (another site, or this host on
    /// another port): not used, and the client is told why.
    OtherOrigin,
    /// No session cookie (or one that no longer counts).
    None,
}

async fn serve_socket(state: WebState, cookie: Cookie, socket: WebSocket) {
    let (sink, stream) = socket.split();
    let sink = sink
        .with(|t: Arc<str>| async move { Ok::<_, axum::Error>(Message::Text(t.as_ref().into())) });
    let stream = stream.filter_map(|m| async move {
        match m {
            Ok(Message::Text(t)) => Some(Incoming::Text(t.to_string())),
            Ok(Message::Binary(_)) => Some(Incoming::Invalid),
            Ok(Message::Close(_)) | Err(_) => Some(Incoming::Closed),
            Ok(_) => None,
        }
    });
    run_session_with(state, cookie, Box::pin(sink), Box::pin(stream)).await;
}

/// One frame from the client's side of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A text frame.
    Text(String),
    /// A frame that cannot be a message (binary).
    Invalid,
    /// The connection closed.
    Closed,
}

fn welcome(session: &Session, reset: bool) {
    session.push_json(
        "welcome",
        serde_json::json!({
            "session": session.id,
            "user": session.actor().user.as_str(),
            "workspace": session.workspace.as_ref().map(WorkspaceSlug::as_str),
            "reset": reset,
        }),
    );
}

fn error_to(session: &Session, code: &str, message: &str) {
    session.push_json(
        "error",
        serde_json::json!({ "code": code, "message": message }),
    );
}

/// Sends one message outside any session (before `hello` succeeded) and reports whether it
/// went out.
async fn send_raw<Si>(sink: &mut Si, kind: &str, code: &str, message: &str) -> bool
where
    Si: Sink<Arc<str>> + Unpin,
{
    let text =
        serde_json::json!({ "seq": 0, "type": kind, "code": code, "message": message }).to_string();
    sink.send(Arc::from(text)).await.is_ok()
}

/// Runs one connection whose upgrade request carried `cookie`'s caller (see
/// [`run_session_with`]).
pub async fn run_session<Si, St>(state: WebState, cookie: Option<Caller>, sink: Si, stream: St)
where
    Si: Sink<Arc<str>> + Unpin,
    St: Stream<Item = Incoming> + Unpin,
{
    let cookie = cookie.map_or(Cookie::None, Cookie::Caller);
    run_session_with(state, cookie, sink, stream).await;
}

/// What a connection without a credential is told: to sign in, or (its page is on another
/// origin, whose session cookie does not count) where Krake is.
fn no_credential(state: &WebState, cookie: &Cookie) -> (&'static str, String) {
    match cookie {
        Cookie::OtherOrigin => (
            "cross_origin",
            format!(
                "this page is not on Krake's own address, so your Krake sign-in does not count here: chat on Krake's own pages{}, or give the widget a widget token (data-token)",
                state
                    .config
                    .public_url
                    .as_deref()
                    .map(|u| format!(" ({})", public_origin(u)))
                    .unwrap_or_default()
            ),
        ),
        _ => (
            "unauthenticated",
            "sign in first (at /login on this Krake), or give the widget a token (data-token)"
                .to_owned(),
        ),
    }
}

/// Runs one connection: waits for `hello`, then relays the session's log to the sink and the
/// client's frames to core, until the client goes away or another connection resumes the
/// session.
pub async fn run_session_with<Si, St>(state: WebState, cookie: Cookie, mut sink: Si, mut stream: St)
where
    Si: Sink<Arc<str>> + Unpin,
    St: Stream<Item = Incoming> + Unpin,
{
    // 1. hello
    let deadline = tokio::time::Instant::now() + state.config.hello_timeout;
    let (session, epoch) = loop {
        // A connection that does not say who it is in time is closed.
        let Ok(Some(Incoming::Text(text))) = tokio::time::timeout_at(deadline, stream.next()).await
        else {
            let _ = send_raw(&mut sink, "error", "timeout", "say hello first").await;
            return;
        };
        let hello = match serde_json::from_str::<ClientFrame>(&text) {
            Ok(ClientFrame::Hello {
                workspace,
                token,
                session,
                last,
            }) => (workspace, token, session, last),
            Ok(_) => {
                if !send_raw(
                    &mut sink,
                    "error",
                    "hello_first",
                    "send a hello message first",
                )
                .await
                {
                    return;
                }
                continue;
            }
            Err(e) => {
                if !send_raw(
                    &mut sink,
                    "error",
                    "bad_frame",
                    &format!("not a message: {e}"),
                )
                .await
                {
                    return;
                }
                continue;
            }
        };
        let (workspace, token, resume, last) = hello;
        let who = match (&cookie, token) {
            (_, Some(token)) => {
                let credential = Credential::Token(crate::hash_token(&token));
                match recheck(&state, &credential).await {
                    Ok(Some(actor)) => Some((actor, credential)),
                    _ => None,
                }
            }
            (Cookie::Caller(c), None) => {
                Some((actor_for_web(c.actor.clone()), c.credential.clone()))
            }
            (_, None) => None,
        };
        let Some((actor, credential)) = who else {
            let (code, message) = no_credential(&state, &cookie);
            let _ = send_raw(&mut sink, "error", code, &message).await;
            return;
        };
        let workspace = match workspace.filter(|w| !w.is_empty()) {
            None => None,
            Some(w) => match WorkspaceSlug::parse(&w)
                .ok()
                .filter(|s| state.krake.directory().workspace(s).is_some())
            {
                Some(s) if actor.can_see(&s) => Some(s),
                Some(_) => {
                    let _ = send_raw(
                        &mut sink,
                        "error",
                        "forbidden",
                        &format!("{} is not a member of {w}", actor.user),
                    )
                    .await;
                    return;
                }
                None => {
                    let _ = send_raw(
                        &mut sink,
                        "error",
                        "not_found",
                        &format!("there is no workspace `{w}`"),
                    )
                    .await;
                    return;
                }
            },
        };
        // A resumed session acts with the rights the user has now, proved by this hello's
        // credential; one for a workspace they may no longer see is not resumed.
        let resumed = resume
            .as_deref()
            .and_then(|id| state.hub.resume(id, &actor.user))
            .filter(|s| s.workspace.as_ref().is_none_or(|w| actor.can_see(w)));
        match resumed {
            Some(s) => {
                s.reauthorize(actor, credential);
                let (epoch, lost) = s.attach(last.unwrap_or(0));
                if lost {
                    welcome(&s, true);
                }
                break (s, epoch);
            }
            None => {
                let s = state.hub.open(actor, credential, workspace);
                let (epoch, _) = s.attach(0);
                // A client that asked to resume an unknown session must reload its state.
                welcome(&s, resume.is_some());
                break (s, epoch);
            }
        }
    };
    // 2. relay
    let mut next_check = tokio::time::Instant::now() + state.config.socket_recheck;
    loop {
        if session.is_closed() {
            let _ = send_raw(&mut sink, "error", "unauthenticated", SIGNED_OUT).await;
            return;
        }
        // Pushes go out only while the credential still counts (a thread pushed to a
        // signed-out or demoted user would leak).
        if session.has_unsent() || tokio::time::Instant::now() >= next_check {
            next_check = tokio::time::Instant::now() + state.config.socket_recheck;
            if let Err(end) = still_allowed(&state, &session).await {
                end_session(&state, &session, epoch, &mut sink, end).await;
                return;
            }
        }
        let Some(unsent) = session.take_unsent(epoch) else {
            return; // another connection resumed this session
        };
        for m in unsent {
            if sink.send(m).await.is_err() {
                session.detach(epoch);
                return;
            }
        }
        tokio::select! {
            _ = session.notify.notified() => {}
            _ = tokio::time::sleep_until(next_check) => {}
            frame = stream.next() => match frame {
                // Boxed: the future of a command is large and short-lived; an idle session
                // should not carry its space.
                Some(Incoming::Text(text)) => {
                    if let Err(end) = Box::pin(handle_frame(&state, &session, &text)).await {
                        end_session(&state, &session, epoch, &mut sink, end).await;
                        return;
                    }
                }
                Some(Incoming::Invalid) => error_to(&session, "bad_frame", "binary frames are not messages; send JSON text"),
                Some(Incoming::Closed) | None => {
                    session.detach(epoch);
                    return;
                }
            },
        }
    }
}

/// What the client is told when its credential no longer counts.
const SIGNED_OUT: &str = "signed out (the session ended or the token was revoked): sign in again";

/// Why a socket must stop acting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The credential no longer counts: the session ends for good.
    SignedOut,
    /// The user's rights changed: the client reconnects and resumes with them.
    RightsChanged,
}

/// Checks the session's credential again: `Ok` when it still counts with the same rights.
async fn still_allowed(state: &WebState, session: &Session) -> Result<(), End> {
    if session.is_closed() {
        return Err(End::SignedOut);
    }
    let now = match recheck(state, &session.credential()).await {
        Ok(Some(actor)) => actor,
        Ok(None) => return Err(End::SignedOut),
        // The store did not answer: act on nothing rather than on stale rights.
        Err(_) => return Err(End::RightsChanged),
    };
    let was = session.actor();
    if now.role != was.role || now.workspace_roles != was.workspace_roles {
        return Err(End::RightsChanged);
    }
    Ok(())
}

/// Tells the client why its connection ends, and ends it: a signed-out session is closed and
/// forgotten; one whose rights changed stays resumable (the resume looks the user up again).
async fn end_session<Si>(state: &WebState, session: &Session, epoch: u64, sink: &mut Si, end: End)
where
    Si: Sink<Arc<str>> + Unpin,
{
    match end {
        End::SignedOut => {
            tracing::info!(user = %session.actor().user, "web chat socket closed: signed out");
            session.close();
            state.hub.remove(&session.id);
            let _ = send_raw(sink, "error", "unauthenticated", SIGNED_OUT).await;
        }
        End::RightsChanged => {
            tracing::info!(user = %session.actor().user, "web chat socket closed: rights changed");
            session.detach(epoch);
            let _ = send_raw(
                sink,
                "error",
                "reconnect",
                "your rights changed: reconnect to go on with them",
            )
            .await;
        }
    }
}

/// The actor of a web socket (a cookie's caller comes through `Front::Web` already).
fn actor_for_web(mut actor: krake_core::Actor) -> krake_core::Actor {
    actor.front = Front::Web;
    actor
}

/// Handles one client frame; `Err` when the socket's credential no longer allows acting
/// (nothing was done).
async fn handle_frame(state: &WebState, session: &Session, text: &str) -> Result<(), End> {
    let frame = match serde_json::from_str::<ClientFrame>(text) {
        Ok(f) => f,
        Err(e) => {
            error_to(session, "bad_frame", &format!("not a message: {e}"));
            return Ok(());
        }
    };
    // A frame that acts is done with the rights the credential has now.
    if matches!(frame, ClientFrame::Say { .. } | ClientFrame::Press { .. }) {
        still_allowed(state, session).await?;
        if !session.allow_message() {
            error_to(
                session,
                "rate_limited",
                "too many messages at once: wait a few seconds, then send it again",
            );
            return Ok(());
        }
    }
    act(state, session, frame).await;
    Ok(())
}

async fn act(state: &WebState, session: &Session, frame: ClientFrame) {
    match frame {
        ClientFrame::Hello { .. } => error_to(
            session,
            "bad_frame",
            "already said hello on this connection",
        ),
        ClientFrame::Ack { seq } => session.ack(seq),
        ClientFrame::Say { id, text } => {
            let Some(key) = message_key(session, &id) else {
                return error_to(
                    session,
                    "bad_frame",
                    "a message id has at most 100 characters",
                );
            };
            let reply = accept(state, session, key, Content::Text(text)).await;
            send_reply(state, session, Some(&id), reply).await;
        }
        ClientFrame::Press {
            payload,
            id,
            reason,
        } => match ButtonPayload::decode(&payload) {
            Ok(p) => {
                // A press with the client's id is handled once per id; without one, each
                // press is its own event (a stale or repeated press is refused by its version).
                let id = id.unwrap_or_else(|| format!("press:{}", unique()));
                let Some(key) = message_key(session, &id) else {
                    return error_to(
                        session,
                        "bad_frame",
                        "a press id has at most 100 characters",
                    );
                };
                let reason = reason
                    .map(|r| r.trim().to_owned())
                    .filter(|r| !r.is_empty() && p.action == ButtonAction::Reject);
                // Core applies it to the version the button showed (a stale card is refused).
                let content = match reason {
                    Some(reason) => Content::RejectWithReason { button: p, reason },
                    None => Content::Button(p),
                };
                let reply = accept(state, session, key, content).await;
                send_reply(state, session, None, reply).await;
            }
            Err(e) => error_to(session, "bad_button", &e.to_string()),
        },
    }
}

/// The idempotency key of a client's message or press in a session.
fn message_key(session: &Session, id: &str) -> Option<IdempotencyKey> {
    if id.len() > 100 {
        return None;
    }
    IdempotencyKey::parse(&format!("web:{}:{}:{id}", session.actor().user, session.id)).ok()
}

/// A number no other press of this process had.
fn unique() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{t:x}-{n}")
}

/// Hands a message or press to core's accept path. The web answers inline: the reply is the
/// one stored with the event, so a message resent after a drop gets the same reply back and
/// changes nothing twice.
async fn accept(
    state: &WebState,
    session: &Session,
    key: IdempotencyKey,
    content: Content,
) -> Reply {
    state
        .krake
        .accept(Inbound {
            source: Front::Web,
            key,
            actor: scoped(session.actor(), session.workspace.as_ref()),
            conversation: format!("web:{}", session.id),
            reply_to: None,
            answer_to: krake_core::outbox::Destination::parse(&format!(
                "web:session:{}",
                session.id
            ))
            .ok(),
            content,
        })
        .await
        .reply
}

/// The actor a session's messages run as: for a session opened for a workspace, the person
/// with their role there and no role anywhere else (so lists, thread commands and tasks stay
/// in that workspace); otherwise the person as they are.
pub fn scoped(actor: krake_core::Actor, workspace: Option<&WorkspaceSlug>) -> krake_core::Actor {
    let Some(w) = workspace else {
        return actor;
    };
    let mut only = krake_core::Actor {
        role: Role::Guest,
        workspace_roles: std::collections::BTreeMap::new(),
        ..actor.clone()
    };
    only.workspace_roles.insert(w.clone(), actor.role_in(w));
    only
}

fn buttons_json(buttons: &[Button]) -> Vec<serde_json::Value> {
    buttons
        .iter()
        .map(|b| {
            serde_json::json!({
                "label": b.label,
                "payload": b.payload.encode(),
                "action": b.payload.action,
            })
        })
        .collect()
}

/// A reply block as the client gets it: `{"type":"table","columns":[…],"rows":[[…]]}`,
/// `{"type":"thread","id":12,"workspace","title","status","kind","approvals":1,"needed":2,
/// "decided_by","reason","buttons":[{label,payload,action}]}` or `{"type":"kpi","label",
/// "value","change","period","target","on_target","trend"}` (buttons carry their encoded
/// payload, as a `press` sends it back).
pub fn block_json(block: &Block) -> serde_json::Value {
    match block {
        Block::Thread(card) => {
            let mut v = serde_json::to_value(card).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.insert("type".into(), "thread".into());
                o.insert("buttons".into(), buttons_json(&card.buttons).into());
            }
            v
        }
        other => serde_json::to_value(other).unwrap_or_default(),
    }
}

async fn send_reply(state: &WebState, session: &Session, re: Option<&str>, reply: Reply) {
    let blocks: Vec<serde_json::Value> = reply.blocks.iter().map(block_json).collect();
    session.push_json(
        "reply",
        serde_json::json!({
            "re": re,
            "text": reply.text,
            "tone": reply.tone,
            "thread": reply.thread.map(|t| t.0),
            "buttons": buttons_json(&reply.buttons),
            "blocks": blocks,
        }),
    );
    // A change made from chat (a successful reply about a thread) reaches every dashboard at once (the outbox copy comes later
    // and is recognised by its version).
    if let (Some(t), krake_core::reply::Tone::Success) = (reply.thread, reply.tone) {
        state.publish(t).await;
    }
}
