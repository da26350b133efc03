//! The customer widget's client side (`data-key="kpub_…"`) in headless Chromium against a
//! scripted `/ws/visitor` (a local server speaking the protocol frame by frame, so each client
//! rule is checked on its own): hello without and then with the stored visitor token, the
//! welcome's history replacing the log, the typing indicator, acks marking a message sent,
//! a repeated `seq` shown once, citations as chips, a message resent with the same id after a
//! drop until acknowledged, `rate_limited` putting the text back in the box, and `revoked`
//! ending the chat with no reconnect loop. The real server's side is `browser_customer.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use fantoccini::{Client, Locator};
use krake_tests::browser::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, broadcast, mpsc};

const KEY: &str = "kpub_test123";

/// What the test tells the connected socket to do.
#[derive(Clone, Debug)]
enum Cmd {
    Send(Value),
    Close,
}

#[derive(Clone)]
struct Fake {
    /// Frames the widget sent, in order, with the connection's number.
    from_client: mpsc::UnboundedSender<(usize, Value)>,
    to_client: broadcast::Sender<Cmd>,
    connections: Arc<Mutex<usize>>,
}

async fn page() -> impl IntoResponse {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Lunavo</title></head>\
         <body style=\"font-family:serif;margin:2rem\"><h1>Lunavo</h1><p>Hoodies that glow in the dark.</p>\
         <script src=\"/widget.js\" data-key=\"{KEY}\"></script></body></html>"
    ))
}

async fn widget() -> impl IntoResponse {
    (
        [("content-type", "text/javascript; charset=utf-8")],
        krake_web::assets::WIDGET_JS,
    )
}

async fn visitor(State(fake): State<Fake>, ws: WebSocketUpgrade) -> impl IntoResponse {
    ws.on_upgrade(move |socket| serve(fake, socket))
}

async fn serve(fake: Fake, mut socket: WebSocket) {
    let n = {
        let mut c = fake.connections.lock().await;
        *c += 1;
        *c
    };
    let mut cmds = fake.to_client.subscribe();
    loop {
        tokio::select! {
            m = socket.recv() => match m {
                Some(Ok(Message::Text(t))) => {
                    let _ = fake.from_client.send((n, serde_json::from_str(&t).unwrap()));
                }
                Some(Ok(_)) => {}
                _ => return,
            },
            c = cmds.recv() => match c {
                Ok(Cmd::Send(v)) => {
                    if socket.send(Message::Text(v.to_string().into())).await.is_err() {
                        return;
                    }
                }
                Ok(Cmd::Close) | Err(_) => {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
            },
        }
    }
}

struct Server {
    port: u16,
    rx: mpsc::UnboundedReceiver<(usize, Value)>,
    tx: broadcast::Sender<Cmd>,
}

impl Server {
    async fn start() -> Self {
        let (from_client, rx) = mpsc::unbounded_channel();
        let (tx, _) = broadcast::channel(64);
        let fake = Fake {
            from_client,
            to_client: tx.clone(),
            connections: Arc::new(Mutex::new(0)),
        };
        let app = Router::new()
            .route("/", get(page))
            .route("/widget.js", get(widget))
            .route("/ws/visitor", get(visitor))
            .with_state(fake);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { port, rx, tx }
    }

    /// The next frame the widget sent, and on which connection.
    async fn next(&mut self) -> (usize, Value) {
        tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
            .await
            .expect("a frame from the widget within 10 s")
            .unwrap()
    }

    fn send(&self, v: Value) {
        self.tx.send(Cmd::Send(v)).unwrap();
    }

    fn close(&self) {
        self.tx.send(Cmd::Close).unwrap();
    }
}

async fn js(c: &Client, expr: &str) -> Value {
    c.execute(&format!("return ({expr});"), vec![])
        .await
        .unwrap()
}

async fn type_and_send(c: &Client, text: &str) {
    let input = c.find(Locator::Css(".krake-input")).await.unwrap();
    input.send_keys(text).await.unwrap();
    input.send_keys("\u{E007}").await.unwrap();
}

fn welcome(history: Value) -> Value {
    json!({"type":"welcome","visitor":"kvis_abc","workspace":"lunavo","title":"Lunavo","agent":"Cassie","history":history})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_widget_speaks_the_visitor_protocol_in_chromium() {
    let mut server = Server::start().await;
    let (_driver, driver_port) = chromedriver();
    let c = browser(driver_port).await;
    c.goto(&format!("http://127.0.0.1:{}/", server.port))
        .await
        .unwrap();

    // First visit: hello with the key only; the input waits for the welcome.
    let (n, hello) = server.next().await;
    assert_eq!((n, hello), (1, json!({"type":"hello","key":KEY})));
    c.find(Locator::Css(".krake-toggle"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        js(&c, "document.querySelector('.krake-input').disabled").await,
        json!(true)
    );
    let first = json!([{"seq":1,"from":"agent","name":"Cassie","text":"Hi, I'm Cassie. Ask me about orders, shipping or returns.","citations":[]}]);
    server.send(welcome(first.clone()));
    until(
        &c,
        "the welcome",
        "document.querySelector('.krake-title').textContent === 'Cassie · Lunavo' && !document.querySelector('.krake-input').disabled",
    )
    .await;
    assert_eq!(
        js(&c, &format!("localStorage.getItem('krake-visitor:{KEY}')")).await,
        json!("kvis_abc")
    );
    assert_eq!(
        js(&c, "document.querySelectorAll('.krake-from-agent').length").await,
        json!(1)
    );
    // No commands offered, no links into Krake.
    assert_eq!(
        js(
            &c,
            "document.querySelectorAll('.krake-chip, .krake-widget a, .krake-card').length"
        )
        .await,
        json!(0)
    );

    // A question: said with id v1; typing shows; the ack marks it sent; the answer has a
    // citation chip; a repeated seq is shown once.
    type_and_send(&c, "Where is my order 1042?").await;
    let (_, say) = server.next().await;
    assert_eq!(
        say,
        json!({"type":"say","id":"v1","text":"Where is my order 1042?"})
    );
    assert_eq!(
        js(
            &c,
            "document.querySelector('.krake-you').getAttribute('data-sent')"
        )
        .await,
        json!("false")
    );
    server.send(json!({"type":"typing"}));
    until(
        &c,
        "the typing indicator",
        "document.querySelector('.krake-typing')",
    )
    .await;
    server.send(json!({"type":"ack","id":"v1"}));
    until(
        &c,
        "v1 marked sent",
        "document.querySelector('.krake-you[data-id=\"v1\"]').getAttribute('data-sent') === 'true'",
    )
    .await;
    let answer = json!({"type":"message","seq":2,"from":"agent","name":"Cassie","text":"It left our workshop yesterday; it arrives in 2 to 4 days.","citations":["shipping.md §1"]});
    server.send(answer.clone());
    server.send(answer);
    until(
        &c,
        "the answer with its citation",
        "document.querySelector('.krake-from-agent[data-seq=\"2\"] .krake-citation') && !document.querySelector('.krake-typing')",
    )
    .await;
    assert_eq!(
        js(&c, "document.querySelector('.krake-citation').textContent").await,
        json!("shipping.md §1")
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        js(&c, "document.querySelectorAll('[data-seq=\"2\"]').length").await,
        json!(1),
        "a seq already shown is not shown again"
    );
    shot(&c, "customer-fake-desktop").await;

    // A message not acknowledged before a drop is resent with the same id after the
    // reconnect, whose hello carries the stored visitor token.
    type_and_send(&c, "Thanks!").await;
    let (_, say) = server.next().await;
    assert_eq!(say["id"], "v2");
    server.close();
    let (n, hello) = server.next().await;
    assert_eq!(
        (n, hello),
        (2, json!({"type":"hello","key":KEY,"visitor":"kvis_abc"}))
    );
    let mut history = first.as_array().unwrap().clone();
    history.push(json!({"seq":2,"from":"visitor","name":null,"text":"Where is my order 1042?","citations":[]}));
    history.push(json!({"seq":3,"from":"agent","name":"Cassie","text":"It left our workshop yesterday; it arrives in 2 to 4 days.","citations":["shipping.md §1"]}));
    server.send(welcome(json!(history)));
    let (n, again) = server.next().await;
    assert_eq!(
        (n, again),
        (2, json!({"type":"say","id":"v2","text":"Thanks!"}))
    );
    until(
        &c,
        "the history replacing the log, with the pending message",
        "document.querySelectorAll('.krake-from-agent').length === 2 && document.querySelectorAll('.krake-you').length === 2",
    )
    .await;
    server.send(json!({"type":"ack","id":"v2"}));
    server.send(json!({"type":"message","seq":4,"from":"team","name":"ana","text":"You're welcome!","citations":[]}));
    until(
        &c,
        "the team's reply",
        "document.querySelector('.krake-from-team')",
    )
    .await;

    // Too fast: the text goes back in the box, with the server's words.
    type_and_send(&c, "One more thing").await;
    let (_, say) = server.next().await;
    assert_eq!(say["id"], "v3");
    server.send(json!({"type":"error","code":"rate_limited","message":"Slow down a little: try again in a minute."}));
    until(
        &c,
        "the text back in the box",
        "document.querySelector('.krake-input').value === 'One more thing' && document.body.textContent.includes('Slow down a little')",
    )
    .await;
    c.set_window_size(390, 844).await.unwrap();
    shot(&c, "customer-fake-phone").await;
    c.set_window_size(1200, 900).await.unwrap();

    // Revoked: the chat ends, the input is disabled, and there is no reconnect loop.
    server.send(
        json!({"type":"error","code":"revoked","message":"This chat is no longer available."}),
    );
    server.close();
    until(
        &c,
        "the ended chat",
        "document.querySelector('.krake-input').disabled && document.querySelector('.krake-widget').getAttribute('data-ended') === 'revoked'",
    )
    .await;
    assert!(
        tokio::time::timeout(Duration::from_millis(2500), server.rx.recv())
            .await
            .is_err(),
        "no reconnect after the chat ended"
    );
    shot(&c, "customer-fake-ended").await;
    c.close().await.unwrap();
}
