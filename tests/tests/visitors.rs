//! The customer widget end to end: the real `krake serve`, a publishable key made with
//! `krake key`, visitors on `/ws/visitor` speaking the widget's protocol (with the `Origin`
//! header a browser sends), the team answering over the REST API, the local OpenAI-compatible
//! fake as the model, and `krake ingest` for the knowledge Cassie answers from.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use futures_util::{SinkExt, StreamExt};
use krake_tests::browser::{api, serve, serve_with_model};
use krake_tests::fake_openai::{Answer, FakeOpenAi};
use krake_tests::{krake, run};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SHOP: &str = "http://shop.test:8081";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An owner `ana` and her personal API token.
fn owner_token(dir: &Path) -> String {
    let (ok, _, err) = run(krake(dir).args(["user", "add", "ana", "--role", "owner"]));
    assert!(ok, "{err}");
    let (ok, token, err) = run(krake(dir).args(["user", "token", "ana"]));
    assert!(ok, "{err}");
    token.trim().to_owned()
}

/// `krake key create lunavo --origin SHOP`: the key.
fn make_key(dir: &Path) -> String {
    let (ok, out, err) = run(krake(dir).args(["key", "create", "lunavo", "--origin", SHOP]));
    assert!(ok, "{err}");
    let key = out.trim().to_owned();
    assert!(key.starts_with("kpub_"), "{out}");
    assert!(
        err.contains("data-key"),
        "the CLI says how to use it: {err}"
    );
    key
}

async fn connect(port: u16, origin: &str) -> Ws {
    let mut req = format!("ws://127.0.0.1:{port}/ws/visitor")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert("origin", origin.parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

async fn frame(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).unwrap(),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) => return Value::Null,
            Ok(Some(Ok(_))) => {}
            other => panic!("no frame from the visitor socket: {other:?}"),
        }
    }
}

/// The next frame of `kind`, skipping `typing`.
async fn next_of(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let f = frame(ws).await;
        if f["type"] == kind {
            return f;
        }
        assert!(
            f["type"] == "typing" || f["type"] == "ack",
            "expected {kind}, got {f}"
        );
    }
}

async fn hello(ws: &mut Ws, key: &str, visitor: Option<&str>) -> Value {
    let mut h = json!({"type": "hello", "key": key});
    if let Some(v) = visitor {
        h["visitor"] = json!(v);
    }
    ws.send(Message::text(h.to_string())).await.unwrap();
    frame(ws).await
}

async fn say(ws: &mut Ws, id: &str, text: &str) {
    let f = json!({"type": "say", "id": id, "text": text});
    ws.send(Message::text(f.to_string())).await.unwrap();
}

/// Says `text` and returns the next message the visitor receives (after the ack).
async fn ask(ws: &mut Ws, id: &str, text: &str) -> Value {
    say(ws, id, text).await;
    let ack = next_of(ws, "ack").await;
    assert_eq!(ack["id"], id, "{ack}");
    next_of(ws, "message").await
}

/// Open threads of lunavo seen through the REST API, newest first.
async fn threads(port: u16, token: &str, kind: &str) -> Vec<Value> {
    let (status, body) = api(
        port,
        token,
        "GET",
        &format!("/api/v1/inbox?workspace=lunavo&kind={kind}"),
        &Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["threads"].as_array().unwrap().clone()
}

async fn wait_thread(port: u16, token: &str, kind: &str, title: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(t) = threads(port, token, kind)
            .await
            .into_iter()
            .find(|t| t["title"].as_str().unwrap_or("").contains(title))
        {
            return t;
        }
        assert!(Instant::now() < deadline, "no {kind} thread `{title}`");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_chats_with_cassie_and_the_team_answers_what_she_could_not() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(
        docs.join("returns.md"),
        "# Returns\n\nLunavo refunds hoodies within 30 days of delivery.\n",
    )
    .unwrap();
    let (ok, out, err) = run(krake(dir.path())
        .arg("ingest")
        .arg(&docs)
        .args(["--workspace", "lunavo"]));
    assert!(ok, "{out}{err}");
    let token = owner_token(dir.path());
    let key = make_key(dir.path());
    let model = FakeOpenAi::start(vec![
        Answer::reply(
            "You can return a hoodie within 30 days of delivery (returns.md §1).",
            0.9,
        ),
        Answer::Tools(vec![(
            "escalate".into(),
            json!({"reason": "engraving is not in the knowledge base"}).to_string(),
        )]),
    ])
    .await;
    let (_server, port, _) = serve_with_model(dir.path(), &model.base_url, false);

    // A page of another site is refused; the shop's page is let in.
    let mut evil = connect(port, "http://evil.test").await;
    let refused = hello(&mut evil, &key, None).await;
    assert_eq!(refused["code"], "origin", "{refused}");
    let mut ws = connect(port, SHOP).await;
    let welcome = hello(&mut ws, &key, None).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["title"], "Lunavo");
    assert_eq!(welcome["agent"], "Cassie");
    assert_eq!(welcome["history"], json!([]));
    let visitor = welcome["visitor"].as_str().unwrap().to_owned();
    assert!(visitor.starts_with("kvis_"), "{welcome}");

    // Commands are refused: no inbox, no approvals, no KPIs.
    for (id, cmd) in [("v1", "/todo"), ("v2", "/approve 1"), ("v3", "/kpi lunavo")] {
        let m = ask(&mut ws, id, cmd).await;
        assert_eq!(m["from"], "agent", "{m}");
        assert!(
            m["text"]
                .as_str()
                .unwrap()
                .contains("Commands are only for the Lunavo team"),
            "{m}"
        );
    }
    assert_eq!(model.served(), 0, "a command never reaches the model");

    // A question: Cassie answers from the knowledge base, citing it.
    let m = ask(&mut ws, "v4", "How long do I have to return a hoodie?").await;
    assert_eq!(m["name"], "Cassie", "{m}");
    assert!(m["text"].as_str().unwrap().contains("30 days"), "{m}");
    assert_eq!(m["citations"], json!(["returns.md §1"]), "{m}");
    let first = &model.requests()[0];
    let tools: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    for t in &tools {
        assert!(
            ["reply", "escalate", "search_knowledge"].contains(t),
            "a visitor's run offers only knowledge and answers: {tools:?}"
        );
    }
    assert!(
        first.to_string().contains("refunds hoodies within 30 days"),
        "the knowledge base's passage is in the prompt: {first}"
    );

    // Unsure: handed to the team, who answer from the inbox; the visitor sees it.
    let m = ask(&mut ws, "v5", "Can you engrave my name on the hoodie?").await;
    let told = m["text"].as_str().unwrap();
    assert!(
        told.contains("passed your question to the Lunavo team"),
        "{m}"
    );
    assert!(
        !told.contains('#'),
        "no thread numbers for visitors: {told}"
    );
    let thread = wait_thread(port, &token, "escalation", "").await;
    let id = thread["id"].as_i64().unwrap();
    let (status, body) = api(
        port,
        &token,
        "POST",
        &format!("/api/v1/inbox/{id}/reply"),
        &json!({"text": "Yes: engraving costs 5 euros, add it at checkout."}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let m = next_of(&mut ws, "message").await;
    assert_eq!(m["from"], "team", "{m}");
    assert_eq!(m["name"], "ana", "{m}");
    assert!(
        m["text"]
            .as_str()
            .unwrap()
            .contains("engraving costs 5 euros"),
        "{m}"
    );

    // A reload resumes the conversation, each message once and in order.
    drop(ws);
    let mut again = connect(port, SHOP).await;
    let welcome = hello(&mut again, &key, Some(&visitor)).await;
    assert_eq!(welcome["visitor"], visitor.as_str(), "{welcome}");
    let history = welcome["history"].as_array().unwrap();
    let seqs: Vec<i64> = history.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(seqs, sorted, "{history:?}");
    let from: Vec<&str> = history
        .iter()
        .map(|m| m["from"].as_str().unwrap())
        .collect();
    assert_eq!(
        from,
        [
            "visitor", "agent", "visitor", "agent", "visitor", "agent", "visitor", "agent",
            "visitor", "agent", "team"
        ],
        "{history:?}"
    );
    assert_eq!(model.served(), 2, "no follow-up run after the team's reply");

    // Another visitor token of someone else is a new conversation, not theirs.
    let mut other = connect(port, SHOP).await;
    let w = hello(&mut other, &key, Some("kvis_not-a-real-token")).await;
    assert_ne!(w["visitor"], visitor.as_str());
    assert_eq!(w["history"], json!([]));

    // Too many messages at once: refused with a clear error, the socket stays open.
    let mut limited = false;
    for n in 0..14 {
        say(&mut other, &format!("r{n}"), "/hi").await;
    }
    for _ in 0..40 {
        let f = frame(&mut other).await;
        if f["code"] == "rate_limited" {
            assert!(f["message"].as_str().unwrap().contains("wait"), "{f}");
            limited = true;
            break;
        }
    }
    assert!(limited, "a flood is rate limited");

    // Revoked: an open chat ends at its next message, a new one is refused.
    let (ok, out, err) = run(krake(dir.path()).args(["key", "revoke", &key[..11]]));
    assert!(ok, "{err}");
    assert!(out.contains("Revoked"), "{out}");
    say(&mut again, "v9", "still there?").await;
    let m = next_of(&mut again, "message").await;
    assert!(
        m["text"].as_str().unwrap().contains("no longer available"),
        "{m}"
    );
    let mut late = connect(port, SHOP).await;
    let refused = hello(&mut late, &key, Some(&visitor)).await;
    assert_eq!(refused["code"], "revoked", "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_a_visitor_is_told_a_person_will_answer_and_nothing_is_lost_to_a_kill() {
    let dir = tempfile::tempdir().unwrap();
    let token = owner_token(dir.path());
    let key = make_key(dir.path());
    let (server, port) = serve(dir.path());
    let mut ws = connect(port, SHOP).await;
    let welcome = hello(&mut ws, &key, None).await;
    let visitor = welcome["visitor"].as_str().unwrap().to_owned();

    // No model: the question is filed for the team and the visitor told so.
    let m = ask(&mut ws, "v1", "Do you ship to Norway?").await;
    assert!(
        m["text"]
            .as_str()
            .unwrap()
            .contains("A person will reply here"),
        "{m}"
    );
    let thread = wait_thread(port, &token, "question", "Do you ship to Norway?").await;
    assert!(
        thread["title"]
            .as_str()
            .unwrap()
            .starts_with("Website visitor asks"),
        "{thread}"
    );

    // Accepted, then the process is killed (SIGKILL) before anything else.
    say(&mut ws, "v2", "And to Iceland?").await;
    let ack = next_of(&mut ws, "ack").await;
    assert_eq!(ack["id"], "v2");
    drop(server);
    let (_server, port) = serve(dir.path());
    let iceland = wait_thread(port, &token, "question", "And to Iceland?").await;

    // The team answers after the restart; the visitor, back, sees everything once.
    let id = iceland["id"].as_i64().unwrap();
    let (status, body) = api(
        port,
        &token,
        "POST",
        &format!("/api/v1/inbox/{id}/reply"),
        &json!({"text": "We ship to Iceland in 5 days."}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // If the killed process had claimed the answer for delivery, its 60 s lease must pass
    // before the new one sends it (and the team's reply waits behind it: one conversation's
    // messages leave in order).
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let mut ws = connect(port, SHOP).await;
        let welcome = hello(&mut ws, &key, Some(&visitor)).await;
        let history = welcome["history"].as_array().unwrap().clone();
        let texts: Vec<&str> = history
            .iter()
            .map(|m| m["text"].as_str().unwrap())
            .collect();
        if texts.iter().any(|t| t.contains("Iceland in 5 days")) {
            let count = |s: &str| texts.iter().filter(|t| t.contains(s)).count();
            assert_eq!(count("And to Iceland?"), 1, "{texts:?}");
            assert_eq!(count("A person will reply here"), 2, "{texts:?}");
            assert_eq!(count("Iceland in 5 days"), 1, "{texts:?}");
            assert_eq!(history.last().unwrap()["from"], "team");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the team's reply never arrived: {texts:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
