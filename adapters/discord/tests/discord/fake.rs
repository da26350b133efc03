//! A local fake of Discord's REST API on 127.0.0.1, speaking the real wire protocol: message
//! creation with `nonce` / `enforce_nonce` deduplication, edits, threads started from messages
//! (error 160004 when one exists), interaction callbacks, webhook follow-ups and the original
//! response, bulk command registration, and 429s with the documented headers and bodies.

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// A 429 as the docs show it: headers and body.
#[derive(Debug, Clone)]
pub struct Limited {
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

/// The three examples of rate_limit_429_examples_from_docs.txt, in file order
/// (user, shared resource, global).
pub fn documented_429s() -> Vec<Limited> {
    let text =
        std::fs::read_to_string(crate::fixture("rate_limit_429_examples_from_docs.txt")).unwrap();
    let mut out = Vec::new();
    for section in text.split("## Example").skip(1) {
        let headers = section
            .lines()
            .filter_map(|l| l.strip_prefix("< "))
            .filter(|l| !l.starts_with("HTTP/"))
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_owned(), v.trim().to_owned()))
            .collect();
        let start = section.find('{').unwrap();
        let end = section.rfind('}').unwrap();
        let body: Value = serde_json::from_str(&section[start..=end]).unwrap();
        out.push(Limited { headers, body });
    }
    assert_eq!(out.len(), 3, "three documented 429 examples");
    out
}

#[derive(Debug, Clone, PartialEq)]
pub struct Msg {
    pub id: u64,
    pub channel: u64,
    pub body: Value,
}

impl Msg {
    pub fn content(&self) -> &str {
        self.body["content"].as_str().unwrap_or("")
    }
}

#[derive(Debug, Default)]
pub struct State {
    next_id: u64,
    /// Every created message, in arrival order (channel messages and thread messages).
    pub messages: Vec<Msg>,
    /// Threads started from messages: (parent channel, message = thread id, name).
    pub threads: Vec<(u64, u64, String)>,
    /// Message edits: (channel, message, body).
    pub edits: Vec<(u64, u64, Value)>,
    /// When each edit arrived (same order as `edits`).
    pub edited_at: Vec<std::time::Instant>,
    /// Typing indicators triggered, by channel.
    pub typing: Vec<u64>,
    /// Webhook calls: (method, path, body).
    pub webhooks: Vec<(String, String, Value)>,
    /// Interaction callbacks: (path, body).
    pub callbacks: Vec<(String, Value)>,
    /// Command registrations: (path, body).
    pub registrations: Vec<(String, Value)>,
    /// Every request as `METHOD /path`.
    pub requests: Vec<String>,
    /// Answer the next requests with these 429s.
    pub limit_next: VecDeque<Limited>,
    /// Record the next message creation, then never answer it (a crash mid-delivery).
    pub hang_next_create: bool,
    /// Record the next thread creation, then never answer it (a crash between the post and
    /// its Discord thread).
    pub hang_next_thread: bool,
    /// Answer the creation of message number `n` (counting from 0) with this 429.
    pub limit_at_message: Option<(usize, Limited)>,
    /// Authorization headers seen on channel routes.
    pub auth: Vec<String>,
}

#[derive(Clone)]
pub struct Fake {
    pub url: String,
    pub state: Arc<Mutex<State>>,
    pub changed: Arc<Notify>,
}

impl Fake {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State {
            next_id: 1_300_000_000_000_000_000,
            ..Default::default()
        }));
        let changed = Arc::new(Notify::new());
        let (s, c) = (state.clone(), changed.clone());
        let app = Router::new().fallback(move |m: Method, u: Uri, h: HeaderMap, b: Bytes| {
            let (s, c) = (s.clone(), c.clone());
            async move { handle(s, c, m, u, h, b).await }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Fake {
            url: format!("http://{addr}"),
            state,
            changed,
        }
    }

    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.lock().unwrap())
    }

    /// Waits (without a clock) until `done` holds.
    pub async fn until(&self, done: impl Fn(&State) -> bool) {
        loop {
            let notified = self.changed.notified();
            if self.with(|s| done(s)) {
                return;
            }
            tokio::time::timeout(std::time::Duration::from_secs(20), notified)
                .await
                .expect("the fake Discord never saw what the test waits for");
        }
    }
}

fn ok(v: Value) -> Response {
    (
        StatusCode::OK,
        [
            ("x-ratelimit-bucket", "fake-bucket"),
            ("x-ratelimit-limit", "5"),
            ("x-ratelimit-remaining", "4"),
            ("x-ratelimit-reset-after", "1.0"),
        ],
        axum::Json(v),
    )
        .into_response()
}

fn limited(l: Limited) -> Response {
    let mut r = (StatusCode::TOO_MANY_REQUESTS, axum::Json(l.body)).into_response();
    for (k, v) in l.headers {
        if k.eq_ignore_ascii_case("content-type") {
            continue;
        }
        r.headers_mut().insert(
            axum::http::HeaderName::from_bytes(k.to_lowercase().as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    r
}

fn error(status: StatusCode, code: u64, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "code": code, "message": message })),
    )
        .into_response()
}

async fn handle(
    state: Arc<Mutex<State>>,
    changed: Arc<Notify>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(&body) {
            Ok(v) => v,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    50109,
                    "The request body contains invalid JSON.",
                );
            }
        }
    };
    let segs: Vec<&str> = path
        .strip_prefix("/api/v10/")
        .unwrap_or("")
        .split('/')
        .collect();
    let num = |i: usize| segs.get(i).and_then(|s| s.parse::<u64>().ok());
    let mut hang = false;
    let response = {
        let mut s = state.lock().unwrap();
        s.requests.push(format!("{method} {path}"));
        if let Some(l) = s.limit_next.pop_front() {
            drop(s);
            changed.notify_waiters();
            return limited(l);
        }
        match (method.as_str(), segs.as_slice()) {
            ("POST", ["channels", _, "messages"]) => {
                s.auth.push(
                    headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned(),
                );
                let channel = num(1).unwrap();
                let content = body["content"].as_str().unwrap_or("");
                let is_new = !body.get("nonce").is_some_and(|n| {
                    s.messages
                        .iter()
                        .any(|m| m.channel == channel && m.body.get("nonce") == Some(n))
                });
                if is_new
                    && s.limit_at_message
                        .as_ref()
                        .is_some_and(|(n, _)| *n == s.messages.len())
                {
                    let (_, l) = s.limit_at_message.take().unwrap();
                    drop(s);
                    changed.notify_waiters();
                    return limited(l);
                }
                if content.chars().map(char::len_utf16).sum::<usize>() > 2000 {
                    error(
                        StatusCode::BAD_REQUEST,
                        50035,
                        "Invalid Form Body: content too long",
                    )
                } else {
                    let nonce = body
                        .get("nonce")
                        .cloned()
                        .filter(|_| body["enforce_nonce"] == true);
                    let existing = nonce.as_ref().and_then(|n| {
                        s.messages
                            .iter()
                            .find(|m| m.channel == channel && m.body.get("nonce") == Some(n))
                            .cloned()
                    });
                    let m = match existing {
                        Some(m) => m,
                        None => {
                            s.next_id += 1;
                            let m = Msg {
                                id: s.next_id,
                                channel,
                                body: body.clone(),
                            };
                            s.messages.push(m.clone());
                            if s.hang_next_create {
                                s.hang_next_create = false;
                                hang = true;
                            }
                            m
                        }
                    };
                    ok(json!({
                        "id": m.id.to_string(),
                        "channel_id": channel.to_string(),
                        "content": m.body["content"],
                        "components": m.body["components"],
                        "type": 0,
                    }))
                }
            }
            ("PATCH", ["channels", _, "messages", _]) => {
                let (channel, message) = (num(1).unwrap(), num(3).unwrap());
                if s.messages
                    .iter()
                    .any(|m| m.channel == channel && m.id == message)
                {
                    s.edits.push((channel, message, body.clone()));
                    s.edited_at.push(std::time::Instant::now());
                    ok(
                        json!({ "id": message.to_string(), "channel_id": channel.to_string(), "content": body["content"] }),
                    )
                } else {
                    error(StatusCode::NOT_FOUND, 10008, "Unknown Message")
                }
            }
            ("POST", ["channels", _, "typing"]) => {
                s.typing.push(num(1).unwrap());
                StatusCode::NO_CONTENT.into_response()
            }
            ("POST", ["channels", _, "messages", _, "threads"]) => {
                let (channel, message) = (num(1).unwrap(), num(3).unwrap());
                if s.threads.iter().any(|t| t.1 == message) {
                    error(
                        StatusCode::BAD_REQUEST,
                        160004,
                        "A thread has already been created for this message",
                    )
                } else if !s
                    .messages
                    .iter()
                    .any(|m| m.channel == channel && m.id == message)
                {
                    error(StatusCode::NOT_FOUND, 10008, "Unknown Message")
                } else {
                    let name = body["name"].as_str().unwrap_or("").to_owned();
                    s.threads.push((channel, message, name.clone()));
                    if s.hang_next_thread {
                        s.hang_next_thread = false;
                        hang = true;
                    }
                    ok(
                        json!({ "id": message.to_string(), "type": 11, "parent_id": channel.to_string(), "name": name }),
                    )
                }
            }
            (_, ["webhooks", _, _, ..]) => {
                s.webhooks
                    .push((method.to_string(), path.clone(), body.clone()));
                s.next_id += 1;
                ok(json!({ "id": s.next_id.to_string(), "content": body["content"] }))
            }
            ("POST", ["interactions", _, _, "callback"]) => {
                s.callbacks.push((path.clone(), body.clone()));
                (StatusCode::NO_CONTENT, "").into_response()
            }
            ("PUT", ["applications", _, "commands"])
            | ("PUT", ["applications", _, "guilds", _, "commands"]) => {
                s.registrations.push((path.clone(), body.clone()));
                ok(body.clone())
            }
            _ => error(StatusCode::NOT_FOUND, 0, "404: Not Found"),
        }
    };
    changed.notify_waiters();
    if hang {
        std::future::pending::<()>().await;
    }
    response
}
