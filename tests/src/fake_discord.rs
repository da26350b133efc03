//! A local Discord on 127.0.0.1 for `krake serve`: the REST routes the front uses (the gateway's
//! address, channel messages and their edits, interaction callbacks and webhook follow-ups,
//! command registration), a gateway WebSocket (HELLO, IDENTIFY → READY, heartbeats acknowledged,
//! then the events a test dispatches) and attachments served from its own host and port at
//! `/attachments/{channel}/{id}/{filename}`, as Discord's CDN serves them.

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// The bot's user id (READY names it; mentions of it are for Krake).
pub const BOT: u64 = 827_290_144_020_496_384;

/// The application id.
pub const APP: u64 = 777_000_000_000_000_777;

#[derive(Default)]
struct Inner {
    next_id: u64,
    /// Created messages: (channel, body).
    messages: Vec<(u64, Value)>,
    /// Message edits: (channel, body).
    edits: Vec<(u64, Value)>,
    /// Webhook calls (follow-ups, edits of the original response): bodies.
    webhooks: Vec<Value>,
    /// Attachments: path → bytes.
    files: HashMap<String, Arc<Vec<u8>>>,
    /// Attachment paths downloaded, in order.
    downloads: Vec<String>,
    /// Events dispatched so far (replayed to a gateway connection made later).
    events: Vec<(String, Value)>,
    /// Whether a gateway session is ready.
    ready: bool,
}

/// The fake Discord.
#[derive(Clone)]
pub struct FakeDiscord {
    /// Its base URL (`http://127.0.0.1:PORT`), for `discord.api_url`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    dispatch: broadcast::Sender<(String, Value)>,
}

impl FakeDiscord {
    /// Starts it on a free port.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (dispatch, _) = broadcast::channel(256);
        let fake = FakeDiscord {
            url: format!("http://{addr}"),
            inner: Arc::new(Mutex::new(Inner {
                next_id: 1_400_000_000_000_000_000,
                ..Inner::default()
            })),
            dispatch,
        };
        let app = Router::new()
            .route("/gateway", get(gateway))
            .route("/attachments/{channel}/{id}/{name}", get(attachment))
            .fallback(rest)
            .with_state(fake.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        fake
    }

    /// The gateway URL, for `discord.gateway_url`.
    pub fn gateway_url(&self) -> String {
        format!("{}/gateway", self.url.replace("http://", "ws://"))
    }

    /// Holds an attachment's bytes and returns its URL on this host, as Discord's CDN would.
    pub fn add_attachment(&self, channel: u64, id: u64, name: &str, bytes: Vec<u8>) -> String {
        let path = format!("/attachments/{channel}/{id}/{name}");
        self.inner
            .lock()
            .unwrap()
            .files
            .insert(path.clone(), Arc::new(bytes));
        format!("{}{path}", self.url)
    }

    /// The attachment paths downloaded, in order.
    pub fn downloads(&self) -> Vec<String> {
        self.inner.lock().unwrap().downloads.clone()
    }

    /// Waits until a gateway session is ready (READY sent).
    pub async fn ready(&self) {
        let wait = async {
            while !self.inner.lock().unwrap().ready {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(60), wait)
            .await
            .expect("krake never opened a gateway session");
    }

    /// Dispatches a gateway event (`t`, `d`) to the connected session.
    pub fn dispatch(&self, kind: &str, data: Value) {
        self.inner
            .lock()
            .unwrap()
            .events
            .push((kind.to_owned(), data.clone()));
        let _ = self.dispatch.send((kind.to_owned(), data));
    }

    /// Every text Krake sent: channel messages, their edits and webhook follow-ups, in order
    /// of arrival within each kind.
    pub fn texts(&self) -> Vec<String> {
        let inner = self.inner.lock().unwrap();
        inner
            .messages
            .iter()
            .map(|(_, b)| b)
            .chain(inner.edits.iter().map(|(_, b)| b))
            .chain(inner.webhooks.iter())
            .filter_map(|b| b["content"].as_str().map(str::to_owned))
            .collect()
    }

    /// The texts of messages created in `channel`.
    pub fn said_in(&self, channel: u64) -> Vec<String> {
        let inner = self.inner.lock().unwrap();
        inner
            .messages
            .iter()
            .chain(inner.edits.iter())
            .filter(|(c, _)| *c == channel)
            .filter_map(|(_, b)| b["content"].as_str().map(str::to_owned))
            .collect()
    }
}

fn ok(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

async fn rest(State(fake): State<FakeDiscord>, method: Method, uri: Uri, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = uri.path().to_owned();
    let segs: Vec<&str> = path
        .strip_prefix("/api/v10/")
        .unwrap_or("")
        .split('/')
        .collect();
    let num = |i: usize| segs.get(i).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
    let mut inner = fake.inner.lock().unwrap();
    match (method.as_str(), segs.as_slice()) {
        ("GET", ["gateway"]) => ok(json!({ "url": fake.gateway_url() })),
        ("GET", ["gateway", "bot"]) => ok(json!({
            "url": fake.gateway_url(),
            "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        })),
        ("POST", ["channels", _, "messages"]) => {
            inner.next_id += 1;
            let (id, channel) = (inner.next_id, num(1));
            inner.messages.push((channel, body.clone()));
            ok(json!({
                "id": id.to_string(), "channel_id": channel.to_string(),
                "content": body["content"], "type": 0
            }))
        }
        ("PATCH", ["channels", _, "messages", _]) => {
            let channel = num(1);
            inner.edits.push((channel, body.clone()));
            ok(
                json!({ "id": segs[3], "channel_id": channel.to_string(), "content": body["content"] }),
            )
        }
        ("POST", ["channels", _, "typing"]) => StatusCode::NO_CONTENT.into_response(),
        ("POST", ["channels", _, "messages", _, "threads"]) => {
            ok(json!({ "id": segs[3], "type": 11, "parent_id": segs[1], "name": body["name"] }))
        }
        (_, ["webhooks", ..]) => {
            inner.webhooks.push(body.clone());
            inner.next_id += 1;
            ok(json!({ "id": inner.next_id.to_string(), "content": body["content"] }))
        }
        ("POST", ["interactions", _, _, "callback"]) => {
            inner.webhooks.push(body["data"].clone());
            StatusCode::NO_CONTENT.into_response()
        }
        ("PUT", ["applications", ..]) => ok(body),
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"code": 0, "message": "404: Not Found"})),
        )
            .into_response(),
    }
}

async fn attachment(
    State(fake): State<FakeDiscord>,
    Path((channel, id, name)): Path<(String, String, String)>,
) -> Response {
    let path = format!("/attachments/{channel}/{id}/{name}");
    let mut inner = fake.inner.lock().unwrap();
    match inner.files.get(&path).cloned() {
        Some(bytes) => {
            inner.downloads.push(path);
            (StatusCode::OK, bytes.as_ref().clone()).into_response()
        }
        None => (StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}

async fn gateway(State(fake): State<FakeDiscord>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| session(fake, socket))
}

fn frame(v: Value) -> Message {
    Message::Text(v.to_string().into())
}

/// One gateway session: HELLO, READY after IDENTIFY, ACK for each heartbeat, then every event
/// dispatched (those dispatched before the session first, in order).
async fn session(fake: FakeDiscord, mut socket: WebSocket) {
    let mut events = fake.dispatch.subscribe();
    let hello = json!({"op": 10, "d": {"heartbeat_interval": 41250}});
    if socket.send(frame(hello)).await.is_err() {
        return;
    }
    let mut seq = 0u64;
    loop {
        tokio::select! {
            m = socket.recv() => {
                let Some(Ok(m)) = m else { return };
                let Message::Text(t) = m else { continue };
                let v: Value = serde_json::from_str(t.as_str()).unwrap_or(Value::Null);
                match v["op"].as_u64() {
                    Some(1) if socket.send(frame(json!({"op": 11}))).await.is_err() => return,
                    Some(2) | Some(6) => {
                        seq += 1;
                        let ready = json!({"op": 0, "s": seq, "t": "READY", "d": {
                            "v": 10,
                            "user": {"id": BOT.to_string(), "username": "Krake", "discriminator": "0", "avatar": null, "bot": true},
                            "guilds": [],
                            "session_id": "fake-session",
                            "resume_gateway_url": fake.gateway_url(),
                            "application": {"id": APP.to_string(), "flags": 0}
                        }});
                        if socket.send(frame(ready)).await.is_err() {
                            return;
                        }
                        let earlier = {
                            let mut inner = fake.inner.lock().unwrap();
                            inner.ready = true;
                            inner.events.clone()
                        };
                        for (t, d) in earlier {
                            seq += 1;
                            if socket.send(frame(json!({"op": 0, "s": seq, "t": t, "d": d}))).await.is_err() {
                                return;
                            }
                        }
                    }
                    _ => {}
                }
            }
            e = events.recv() => {
                let Ok((t, d)) = e else { continue };
                if !fake.inner.lock().unwrap().ready {
                    continue;
                }
                seq += 1;
                if socket.send(frame(json!({"op": 0, "s": seq, "t": t, "d": d}))).await.is_err() {
                    return;
                }
            }
        }
    }
}
