//! A local fake of the Telegram Bot API: the real wire protocol (`POST /bot<token>/<method>`,
//! method names matched case-insensitively as teloxide sends them in PascalCase, JSON answers
//! `{"ok":true,"result":…}` and errors with `parameters.retry_after`), on 127.0.0.1 port 0.
//!
//! It holds queued updates for getUpdates (confirmed by `offset` as Telegram does), records
//! every call, numbers sent messages, and can be told to answer 429, to refuse the token
//! (401 to everything, as for a revoked token) or to hold a send forever (a process killed
//! mid-request). [`FakeTelegram::reserve`] gives its address before it listens, for a Bot API
//! that comes up late.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The token the fake accepts (tests configure Krake with it).
pub const TOKEN: &str = "123456:TEST-token_for-fake";

/// The fake bot's username.
pub const BOT_USERNAME: &str = "krake_test_bot";

/// The fake bot's user id.
pub const BOT_ID: u64 = 123456;

/// One API call as the fake received it.
#[derive(Debug, Clone)]
pub struct Call {
    /// The method, lowercased (`sendmessage`).
    pub method: String,
    /// The JSON body (`Null` for multipart bodies such as setWebhook's).
    pub body: Value,
    /// When it arrived.
    pub at: std::time::Instant,
}

#[derive(Default)]
struct Inner {
    updates: VecDeque<Value>,
    calls: Vec<Call>,
    /// Messages sent or edited and confirmed to the client: (method, body, message id).
    delivered: Vec<(String, Value, i64)>,
    next_message_id: i64,
    failures: HashMap<String, VecDeque<(u16, Value)>>,
    hold_sends_after: Option<usize>,
    /// Telegram's per-chat limit, enforced: a send closer than this to the chat's last one
    /// gets a 429.
    per_chat: Option<Duration>,
    last_send: HashMap<i64, std::time::Instant>,
    too_many: usize,
    refuse_token: bool,
    /// Files people sent, by `file_id`: their path on the file endpoint and bytes.
    files: HashMap<String, (String, Arc<Vec<u8>>)>,
    /// Paths downloaded from the file endpoint, in order.
    downloads: Vec<String>,
}

/// Telegram's limit for files a bot downloads (getFile refuses larger ones).
pub const BOT_DOWNLOAD_LIMIT: usize = 20 * 1024 * 1024;

/// A fake whose address is known but which does not listen yet: connections to it are refused
/// (the port is bound, so nothing else can take it) until [`Unopened::open`].
pub struct Unopened {
    /// The base URL to configure as `telegram.api_url`.
    pub url: String,
    socket: tokio::net::TcpSocket,
}

impl Unopened {
    /// Starts listening: from now on the fake answers.
    pub fn open(self) -> FakeTelegram {
        let listener = self.socket.listen(1024).unwrap();
        FakeTelegram::serve(listener)
    }
}

/// The fake server.
#[derive(Clone)]
pub struct FakeTelegram {
    /// The base URL to configure as `telegram.api_url`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
    arrived: Arc<Notify>,
    called: Arc<Notify>,
}

impl FakeTelegram {
    /// Starts the fake on 127.0.0.1, port 0.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener)
    }

    /// Binds 127.0.0.1, port 0, without listening (see [`Unopened`]).
    pub fn reserve() -> Unopened {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        Unopened {
            url: format!("http://{addr}/"),
            socket,
        }
    }

    fn serve(listener: tokio::net::TcpListener) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            next_message_id: 1000,
            ..Inner::default()
        }));
        let arrived = Arc::new(Notify::new());
        let fake = FakeTelegram {
            url: String::new(),
            inner,
            arrived,
            called: Arc::new(Notify::new()),
        };
        let app = Router::new()
            .route("/{bot}/{method}", post(api))
            .route("/file/{bot}/{*path}", get(file))
            .with_state(fake.clone());
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeTelegram {
            url: format!("http://{addr}/"),
            ..fake
        }
    }

    /// Holds a file people sent, for getFile and the file endpoint, as Telegram does once a
    /// document is in a chat.
    pub fn add_file(&self, file_id: &str, bytes: Vec<u8>) {
        let mut inner = self.inner.lock().unwrap();
        let path = format!("documents/file_{}", inner.files.len() + 1);
        inner
            .files
            .insert(file_id.to_owned(), (path, Arc::new(bytes)));
    }

    /// The paths downloaded from the file endpoint, in order.
    pub fn downloads(&self) -> Vec<String> {
        self.inner.lock().unwrap().downloads.clone()
    }

    /// Queues an update for getUpdates.
    pub fn push_update(&self, update: Value) {
        self.inner.lock().unwrap().updates.push_back(update);
        self.arrived.notify_waiters();
    }

    /// Makes the next `n` calls of `method` fail with 429 and `retry_after` seconds.
    pub fn rate_limit(&self, method: &str, n: usize, retry_after: u64) {
        let body = json!({
            "ok": false,
            "error_code": 429,
            "description": format!("Too Many Requests: retry after {retry_after}"),
            "parameters": {"retry_after": retry_after}
        });
        let mut inner = self.inner.lock().unwrap();
        let q = inner.failures.entry(method.to_lowercase()).or_default();
        for _ in 0..n {
            q.push_back((429, body.clone()));
        }
    }

    /// From now on every call is refused with 401 Unauthorized, as Telegram answers a bot
    /// token it does not accept (still recorded).
    pub fn refuse_token(&self) {
        self.inner.lock().unwrap().refuse_token = true;
    }

    /// Makes the next call of `method` fail with a Bot API error (e.g. 400 or 403).
    pub fn fail_once(&self, method: &str, code: u16, description: &str) {
        let body = json!({"ok": false, "error_code": code, "description": description});
        self.inner
            .lock()
            .unwrap()
            .failures
            .entry(method.to_lowercase())
            .or_default()
            .push_back((code, body));
    }

    /// Forgets every failure queued with [`fail_once`](Self::fail_once) or
    /// [`rate_limit`](Self::rate_limit): the platform works again.
    pub fn clear_failures(&self) {
        self.inner.lock().unwrap().failures.clear();
    }

    /// From now on, sendMessage calls after the first `n` confirmed ones never answer (the
    /// sender is "killed" while waiting). `None` lifts it.
    pub fn hold_sends_after(&self, n: Option<usize>) {
        self.inner.lock().unwrap().hold_sends_after = n;
    }

    /// Waits (up to 10 s, then panics) until `method` was called `n` times.
    pub async fn wait_calls(&self, method: &str, n: usize) {
        let wait = async {
            loop {
                let notified = self.called.notified();
                if self.calls_of(method).len() >= n {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), wait)
            .await
            .unwrap_or_else(|_| panic!("{method} was not called {n} times"));
    }

    /// Waits (up to 10 s, then panics) until `n` messages were sent and confirmed.
    pub async fn wait_sent(&self, n: usize) {
        let wait = async {
            loop {
                let notified = self.called.notified();
                if self.sent().len() >= n {
                    return;
                }
                notified.await;
            }
        };
        // A restarted process retries a failed send after its backoff: on a loaded 2-core
        // machine that took over 10 s once.
        tokio::time::timeout(Duration::from_secs(30), wait)
            .await
            .unwrap_or_else(|_| panic!("{n} messages were not sent"));
    }

    /// Enforces a least interval between two messages to one chat, answering 429 (retry after
    /// 1 s) to a faster send, as Telegram does.
    pub fn enforce_per_chat(&self, interval: Duration) {
        self.inner.lock().unwrap().per_chat = Some(interval);
    }

    /// How many 429s the per-chat limit gave.
    pub fn too_many(&self) -> usize {
        self.inner.lock().unwrap().too_many
    }

    /// Every call received, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    /// The calls of one method (case-insensitive).
    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        let m = method.to_lowercase();
        self.calls().into_iter().filter(|c| c.method == m).collect()
    }

    /// Messages sent (sendMessage) and confirmed, in order: (request body, message id).
    pub fn sent(&self) -> Vec<(Value, i64)> {
        self.delivered_of("sendmessage")
    }

    /// Edits (editMessageText) confirmed, in order: (request body, message id).
    pub fn edits(&self) -> Vec<(Value, i64)> {
        self.delivered_of("editmessagetext")
    }

    fn delivered_of(&self, method: &str) -> Vec<(Value, i64)> {
        self.inner
            .lock()
            .unwrap()
            .delivered
            .iter()
            .filter(|(m, _, _)| m == method)
            .map(|(_, b, id)| (b.clone(), *id))
            .collect()
    }
}

fn ok(result: Value) -> Response {
    axum::Json(json!({"ok": true, "result": result})).into_response()
}

fn chat_json(id: i64) -> Value {
    if id > 0 {
        json!({"id": id, "type": "private", "first_name": "Ana"})
    } else {
        json!({"id": id, "type": "supergroup", "title": "Krake HQ", "is_forum": true})
    }
}

fn message_json(body: &Value, id: i64) -> Value {
    let chat = body["chat_id"].as_i64().unwrap_or(0);
    let mut m = json!({
        "message_id": id,
        "date": 1_795_503_000,
        "chat": chat_json(chat),
        "from": {"id": BOT_ID, "is_bot": true, "first_name": "Krake", "username": BOT_USERNAME},
        "text": body["text"].clone(),
    });
    if let Some(t) = body.get("message_thread_id").and_then(Value::as_i64) {
        m["message_thread_id"] = json!(t);
        m["is_topic_message"] = json!(true);
    }
    if let Some(k) = body.get("reply_markup") {
        m["reply_markup"] = k.clone();
    }
    m
}

async fn api(
    State(fake): State<FakeTelegram>,
    Path((bot, method)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if bot != format!("bot{TOKEN}") {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"ok": false, "error_code": 404, "description": "Not Found"})),
        )
            .into_response();
    }
    let method = method.to_lowercase();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let hold = {
        let mut inner = fake.inner.lock().unwrap();
        inner.calls.push(Call {
            method: method.clone(),
            body: body.clone(),
            at: std::time::Instant::now(),
        });
        fake.called.notify_waiters();
        if inner.refuse_token {
            let err = json!({"ok": false, "error_code": 401, "description": "Unauthorized"});
            return (StatusCode::UNAUTHORIZED, axum::Json(err)).into_response();
        }
        if let Some((code, err)) = inner
            .failures
            .get_mut(&method)
            .and_then(VecDeque::pop_front)
        {
            return (StatusCode::from_u16(code).unwrap(), axum::Json(err)).into_response();
        }
        // Telegram's per-chat limit counts edits like messages.
        if (method == "sendmessage" || method == "editmessagetext")
            && let Some(interval) = inner.per_chat
        {
            let chat = body["chat_id"].as_i64().unwrap_or(0);
            let now = std::time::Instant::now();
            if inner
                .last_send
                .get(&chat)
                .is_some_and(|last| now.duration_since(*last) < interval)
            {
                inner.too_many += 1;
                let err = json!({
                    "ok": false, "error_code": 429,
                    "description": "Too Many Requests: retry after 1",
                    "parameters": {"retry_after": 1}
                });
                return (StatusCode::TOO_MANY_REQUESTS, axum::Json(err)).into_response();
            }
            inner.last_send.insert(chat, now);
        }
        method == "sendmessage"
            && inner
                .hold_sends_after
                .is_some_and(|n| inner.delivered.iter().filter(|d| d.0 == method).count() >= n)
    };
    if hold {
        std::future::pending::<()>().await;
    }
    match method.as_str() {
        "getme" => ok(json!({
            "id": BOT_ID, "is_bot": true, "first_name": "Krake", "username": BOT_USERNAME,
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false,
            "has_main_web_app": false
        })),
        "getupdates" => {
            let offset = body["offset"].as_i64().unwrap_or(0);
            let timeout = body["timeout"].as_u64().unwrap_or(0);
            let pending = |fake: &FakeTelegram| {
                let mut inner = fake.inner.lock().unwrap();
                // An offset confirms every update before it, as Telegram does.
                inner
                    .updates
                    .retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
                inner.updates.iter().cloned().collect::<Vec<_>>()
            };
            let mut updates = pending(&fake);
            if updates.is_empty() && timeout > 0 {
                let _ = tokio::time::timeout(
                    Duration::from_secs(timeout),
                    fake.arrived.notified(),
                )
                .await;
                updates = pending(&fake);
            }
            ok(Value::Array(updates))
        }
        "sendmessage" | "editmessagetext" => {
            let mut inner = fake.inner.lock().unwrap();
            let id = if method == "sendmessage" {
                inner.next_message_id += 1;
                inner.next_message_id
            } else {
                body["message_id"].as_i64().unwrap_or(0)
            };
            inner.delivered.push((method.clone(), body.clone(), id));
            fake.called.notify_waiters();
            ok(message_json(&body, id))
        }
        "getfile" => {
            let inner = fake.inner.lock().unwrap();
            let id = body["file_id"].as_str().unwrap_or_default();
            match inner.files.get(id) {
                Some((_, bytes)) if bytes.len() > BOT_DOWNLOAD_LIMIT => (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"ok": false, "error_code": 400, "description": "Bad Request: file is too big"})),
                )
                    .into_response(),
                Some((path, bytes)) => ok(json!({
                    "file_id": id, "file_unique_id": format!("u{id}"),
                    "file_size": bytes.len(), "file_path": path
                })),
                None => (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({"ok": false, "error_code": 400, "description": "Bad Request: invalid file_id"})),
                )
                    .into_response(),
            }
        }
        "getwebhookinfo" => ok(json!({"url": "", "has_custom_certificate": false, "pending_update_count": 0})),
        "answercallbackquery" | "setmycommands" | "setwebhook" | "deletewebhook"
        | "sendchataction" => ok(json!(true)),
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"ok": false, "error_code": 404, "description": "Not Found: method not found"})),
        )
            .into_response(),
    }
}

/// The file endpoint: `GET /file/bot<token>/<file_path>` answers the bytes.
async fn file(
    State(fake): State<FakeTelegram>,
    Path((bot, path)): Path<(String, String)>,
) -> Response {
    let mut inner = fake.inner.lock().unwrap();
    if bot != format!("bot{TOKEN}") {
        return StatusCode::NOT_FOUND.into_response();
    }
    inner.downloads.push(path.clone());
    match inner.files.values().find(|(p, _)| *p == path) {
        Some((_, bytes)) => (StatusCode::OK, bytes.as_ref().clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
