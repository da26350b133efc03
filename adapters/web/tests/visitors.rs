//! The customer widget's socket driven over channels (no network): bad frames and limits get
//! their error and the socket goes on, a fifth tab is refused, and a message kept by another
//! process (several `krake serve` on one PostgreSQL) reaches an open socket once by catching up.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use futures_util::{Sink, Stream};
use krake_core::actor::{Actor, Role, UserName};
use krake_core::visitor::{NewKey, NewVisitorMessage, Speaker, VisitorId, Visitors};
use krake_web::front::WebState;
use krake_web::visitor::{VisitorHub, VisitorLimits};
use serde_json::{Value, json};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

const KEY: &str = "kpub_0123456789abcdef0123456789abcdef";
const SHOP: &str = "https://shop.example.com";

struct Visitor {
    tx: mpsc::UnboundedSender<Result<String, ()>>,
    rx: mpsc::UnboundedReceiver<String>,
}

impl Visitor {
    fn send(&self, v: Value) {
        self.tx.send(Ok(v.to_string())).unwrap();
    }

    async fn next(&mut self) -> Value {
        let t = tokio::time::timeout(Duration::from_secs(5), self.rx.recv())
            .await
            .expect("a frame within 5 s")
            .expect("the socket is open");
        serde_json::from_str(&t).unwrap()
    }

    async fn nothing_within(&mut self, d: Duration) {
        if let Ok(Some(f)) = tokio::time::timeout(d, self.rx.recv()).await {
            panic!("unexpected frame {f}");
        }
    }
}

fn connect(state: &WebState, origin: &str) -> Visitor {
    let (in_tx, in_rx) = mpsc::unbounded_channel::<Result<String, ()>>();
    let (out_tx, out_rx) = mpsc::unbounded_channel::<String>();
    let stream: Pin<Box<dyn Stream<Item = Result<String, ()>> + Send>> =
        Box::pin(futures_util::stream::unfold(in_rx, |mut rx| async move {
            rx.recv().await.map(|m| (m, rx))
        }));
    let sink: Pin<Box<dyn Sink<String, Error = ()> + Send>> = Box::pin(futures_util::sink::unfold(
        out_tx,
        |tx, m: String| async move { tx.send(m).map(|_| tx).map_err(|_| ()) },
    ));
    tokio::spawn(krake_web::visitor::serve(
        state.clone(),
        Some(origin.to_owned()),
        sink,
        stream,
    ));
    Visitor {
        tx: in_tx,
        rx: out_rx,
    }
}

/// The test app with visitors enabled, a key for lunavo, and sockets that catch up often.
async fn app() -> (common::App, WebState, Visitors) {
    app_with(VisitorLimits {
        catch_up: Some(Duration::from_millis(100)),
        ..VisitorLimits::default()
    })
    .await
}

async fn app_with(limits: VisitorLimits) -> (common::App, WebState, Visitors) {
    let app = common::spawn().await;
    let visitors = Visitors::new(
        Arc::new(app.store.clone()),
        Arc::new(
            krake_core::config::Directory::new(
                krake_core::workspace::default_workspaces(),
                krake_core::agent::default_agents(),
            )
            .unwrap(),
        ),
        app.clock.clone(),
    );
    let owner = Actor::new(
        UserName::parse("ana").unwrap(),
        krake_core::actor::Front::Cli,
        Role::Owner,
    );
    visitors
        .create_key(
            &owner,
            &NewKey {
                workspace: common::ws("lunavo"),
                agent: None,
                origins: vec![SHOP.into()],
            },
            KEY,
        )
        .await
        .unwrap();
    let mut state = app.state.clone();
    state.krake = state.krake.clone().with_visitors(visitors.clone());
    state.visitors = Arc::new(VisitorHub::new(limits));
    (app, state, visitors)
}

#[tokio::test]
async fn bad_frames_and_limits_get_their_error_and_the_socket_goes_on() {
    let (_app, state, _) = app().await;
    let mut v = connect(&state, SHOP);
    v.send(json!({"type": "say", "id": "v1", "text": "hi"}));
    let f = v.next().await;
    assert_eq!(f["code"], "bad_frame", "hello comes first: {f}");

    let mut v = connect(&state, SHOP);
    v.send(json!({"type": "hello", "key": KEY}));
    assert_eq!(v.next().await["type"], "welcome");
    v.send(json!({"type": "press", "payload": "x"}));
    assert_eq!(v.next().await["code"], "bad_frame");
    v.send(json!({"type": "say", "id": "has space", "text": "hi"}));
    assert_eq!(v.next().await["code"], "bad_frame");
    v.send(json!({"type": "say", "id": "v2", "text": "x".repeat(2001)}));
    let f = v.next().await;
    assert_eq!(f["code"], "too_long", "{f}");
    assert!(f["message"].as_str().unwrap().contains("2000"), "{f}");
    // Still open: a command is answered (through the outbox) and acknowledged.
    v.send(json!({"type": "say", "id": "v3", "text": "/todo"}));
    assert_eq!(v.next().await, json!({"type": "ack", "id": "v3"}));
}

#[tokio::test]
async fn a_fifth_tab_of_one_visitor_is_refused() {
    let (_app, state, _) = app().await;
    let mut first = connect(&state, SHOP);
    first.send(json!({"type": "hello", "key": KEY}));
    let token = first.next().await["visitor"].as_str().unwrap().to_owned();
    let mut tabs = vec![first];
    for _ in 0..3 {
        let mut t = connect(&state, SHOP);
        t.send(json!({"type": "hello", "key": KEY, "visitor": token}));
        assert_eq!(t.next().await["type"], "welcome");
        tabs.push(t);
    }
    let mut fifth = connect(&state, SHOP);
    fifth.send(json!({"type": "hello", "key": KEY, "visitor": token}));
    let f = fifth.next().await;
    assert_eq!(f["code"], "rate_limited", "{f}");
    assert!(
        f["message"].as_str().unwrap().contains("too many tabs"),
        "{f}"
    );
}

#[tokio::test]
async fn a_message_kept_by_another_process_reaches_an_open_socket_once() {
    let (app, state, visitors) = app().await;
    let mut v = connect(&state, SHOP);
    v.send(json!({"type": "hello", "key": KEY}));
    let welcome = v.next().await;
    assert_eq!(welcome["type"], "welcome");
    let token = welcome["visitor"].as_str().unwrap();
    let visitor = visitors
        .open(KEY, Some(SHOP), Some(token), || unreachable!())
        .await
        .unwrap()
        .unwrap()
        .visitor;
    // Another process's sender keeps the answer; this process never pushes it.
    let kept = visitors
        .repo()
        .append_message(
            visitor.id,
            &NewVisitorMessage {
                from: Speaker::Team,
                name: Some("ana"),
                text: "We ship to Norway in 4 days.",
            },
            "out:42",
            krake_core::time::Clock::now(app.clock.as_ref()),
        )
        .await
        .unwrap()
        .unwrap();
    let f = v.next().await;
    assert_eq!(f["type"], "message", "{f}");
    assert_eq!(f["seq"], kept.seq);
    assert_eq!(f["from"], "team");
    assert_eq!(f["text"], "We ship to Norway in 4 days.");
    // Pushed here too (the same message): not shown again; nor by later catch-ups.
    state.visitors.push(
        VisitorId(visitor.id.0),
        &json!({"type": "message", "seq": kept.seq, "text": "We ship to Norway in 4 days."}),
    );
    v.nothing_within(Duration::from_millis(400)).await;
}

#[tokio::test]
async fn a_flood_of_hellos_is_limited_before_any_visitor_is_made() {
    let (_app, state, visitors) = app_with(VisitorLimits {
        hellos_per_minute: 3,
        ..VisitorLimits::default()
    })
    .await;
    let mut tokens = Vec::new();
    for _ in 0..3 {
        let mut v = connect(&state, SHOP);
        v.send(json!({"type": "hello", "key": KEY}));
        let w = v.next().await;
        assert_eq!(w["type"], "welcome", "{w}");
        tokens.push(w["visitor"].as_str().unwrap().to_owned());
    }
    let mut v = connect(&state, SHOP);
    v.send(json!({"type": "hello", "key": KEY}));
    let f = v.next().await;
    assert_eq!(f["code"], "rate_limited", "{f}");
    // The refused hello made no visitor: the three known ones are all there are (each new
    // one would have been given a token the next open could resume).
    let mut seen = std::collections::BTreeSet::new();
    for t in &tokens {
        let w = visitors
            .open(KEY, Some(SHOP), Some(t), || unreachable!("a known token"))
            .await
            .unwrap()
            .unwrap();
        seen.insert(w.visitor.id.0);
    }
    assert_eq!(seen.len(), 3);
    assert_eq!(*seen.iter().max().unwrap() - *seen.iter().min().unwrap(), 2);
    let next = visitors
        .open(KEY, Some(SHOP), None, || "kvis_next".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        next.visitor.id.0,
        seen.iter().max().unwrap() + 1,
        "no visitor was made for the refused hello"
    );
}
