//! The web chat protocol over channels (no socket): commands through core, buttons, live
//! pushes with sequence numbers, resume after a drop without loss or duplicates, bad frames,
//! and one inbox across fronts.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::client::connect;
use common::{As, spawn, ws};
use krake_core::actor::{Actor, Front, Role, UserName};
use krake_core::inbox::ThreadKind;
use krake_core::outbox::{Destination, OutboxPayload};
use krake_core::ports::{InboxRepo, OutboxRepo, ThreadCopy};
use krake_web::ws::Incoming;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn chat_runs_commands_and_buttons_with_sequence_numbers() {
    let app = spawn().await;
    let t = app
        .thread("lunavo", ThreadKind::Approval, "Publish the launch post")
        .await;
    let mut c = connect(&app);
    c.send(json!({"type":"hello","token":"tok-bo"}));
    let w = c.next().await;
    assert_eq!(
        (w["seq"].as_u64(), w["type"].as_str(), w["user"].as_str()),
        (Some(1), Some("welcome"), Some("bo"))
    );
    c.send(json!({"type":"say","id":"m1","text":"/todo"}));
    let r = c.next().await;
    assert_eq!(r["seq"], 2);
    assert_eq!(r["type"], "reply");
    assert_eq!(r["re"], "m1");
    assert!(
        r["text"]
            .as_str()
            .unwrap()
            .contains("Publish the launch post"),
        "{r}"
    );
    c.send(json!({"type":"say","id":"m2","text":format!("/show {}", t.id.0)}));
    let r = c.next().await;
    assert_eq!(r["seq"], 3);
    let buttons = r["buttons"].as_array().unwrap();
    assert_eq!(buttons.len(), 2);
    assert_eq!(buttons[0]["label"], "Approve");
    let payload = buttons[0]["payload"].as_str().unwrap().to_owned();
    assert_eq!(payload, format!("k1:a:{}:{}", t.id.0, t.version));
    c.send(json!({"type":"press","payload":payload}));
    let r = c.next().await;
    assert_eq!(r["seq"], 4);
    assert!(r["text"].as_str().unwrap().starts_with("Approved"), "{r}");
    let pushed = c.next().await;
    assert_eq!(pushed["seq"], 5);
    assert_eq!(pushed["type"], "thread");
    assert_eq!(pushed["thread"]["status"], "approved");
    // The same button again: refused, nothing changes, no new push.
    c.send(json!({"type":"press","payload":payload}));
    let r = c.next().await;
    assert_eq!(r["seq"], 6);
    assert!(
        r["text"].as_str().unwrap().contains("already approved"),
        "{r}"
    );
    c.nothing_more().await;
}

#[tokio::test]
async fn a_dropped_session_resumes_without_loss_or_duplicates() {
    let app = spawn().await;
    let a = app.thread("lunavo", ThreadKind::Approval, "a").await;
    let b = app.thread("lunavo", ThreadKind::Approval, "b").await;
    let mut c = connect(&app);
    c.send(json!({"type":"hello","token":"tok-bo"}));
    let w = c.next().await;
    let session = w["session"].as_str().unwrap().to_owned();
    // A change while connected arrives live.
    app.post(
        &format!("/api/v1/inbox/{}/approve", a.id.0),
        As::Token("tok-ana"),
        None,
    )
    .await;
    let m = c.next().await;
    assert_eq!(
        (m["seq"].as_u64(), m["thread"]["id"].as_i64()),
        (Some(2), Some(a.id.0))
    );
    c.drop_connection().await;
    // Changes while disconnected are kept for the session.
    app.post(
        &format!("/api/v1/inbox/{}/reject", b.id.0),
        As::Token("tok-ana"),
        Some(r#"{"reason":"no"}"#),
    )
    .await;
    app.post(
        &format!("/api/v1/inbox/{}/archive", a.id.0),
        As::Token("tok-ana"),
        None,
    )
    .await;
    // The client saw up to 2 and resumes from there: exactly 3 and 4 come, once.
    let mut c = connect(&app);
    c.send(json!({"type":"hello","token":"tok-bo","session":session,"last":2}));
    let m3 = c.next().await;
    let m4 = c.next().await;
    assert_eq!(
        (m3["seq"].as_u64(), m3["thread"]["status"].as_str()),
        (Some(3), Some("rejected"))
    );
    assert_eq!(
        (m4["seq"].as_u64(), m4["thread"]["status"].as_str()),
        (Some(4), Some("archived"))
    );
    c.nothing_more().await;
    // A message resent after a drop (same id) is handled once: the stored reply comes back.
    let b2 = app.thread("lunavo", ThreadKind::Approval, "c").await;
    c.send(json!({"type":"say","id":"x1","text":format!("approve {}", b2.id.0)}));
    let first = c.next().await;
    assert!(
        first["text"].as_str().unwrap().starts_with("Approved"),
        "{first}"
    );
    let _push = c.next().await;
    c.send(json!({"type":"say","id":"x1","text":format!("approve {}", b2.id.0)}));
    let again = c.next().await;
    assert_eq!(again["text"], first["text"]);
    let audit = app.store.audit(b2.id).await.unwrap();
    assert_eq!(audit.iter().filter(|e| e.action == "approved").count(), 1);
}

#[tokio::test]
async fn an_unknown_session_gets_a_fresh_one_and_is_told_to_reload() {
    let app = spawn().await;
    let mut c = connect(&app);
    c.send(json!({"type":"hello","token":"tok-bo","session":"gone","last":40}));
    let w = c.next().await;
    assert_eq!(
        (w["seq"].as_u64(), w["reset"].as_bool()),
        (Some(1), Some(true))
    );
    assert_ne!(w["session"], "gone");
}

#[tokio::test]
async fn bad_frames_get_an_error_and_the_connection_stays() {
    let app = spawn().await;
    let mut c = connect(&app);
    c.send(json!({"type":"hello","token":"tok-bo"}));
    c.next().await;
    c.raw(Incoming::Text("{nonsense".into()));
    let e = c.next().await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("bad_frame"))
    );
    c.raw(Incoming::Invalid);
    assert_eq!(c.next().await["code"], "bad_frame");
    c.send(json!({"type":"say","text":"no id"}));
    assert_eq!(c.next().await["code"], "bad_frame");
    c.send(json!({"type":"press","payload":"k9:evil"}));
    assert_eq!(c.next().await["code"], "bad_button");
    c.send(json!({"type":"say","id":"ok","text":"/help"}));
    let r = c.next().await;
    assert_eq!(r["type"], "reply");
    assert_eq!(r["seq"], 6);
}

#[tokio::test]
async fn no_credentials_or_another_workspace_ends_the_connection() {
    let app = spawn().await;
    let mut c = connect(&app);
    c.send(json!({"type":"hello"}));
    let e = c.next().await;
    assert_eq!(e["code"], "unauthenticated");
    tokio::time::timeout(Duration::from_secs(5), c.task)
        .await
        .unwrap()
        .unwrap();
    let mut c = connect(&app);
    c.send(json!({"type":"hello","token":"tok-nope"}));
    assert_eq!(c.next().await["code"], "unauthenticated");
    let mut c = connect(&app);
    c.send(json!({"type":"hello","token":"tok-mo","workspace":"lunavo"}));
    assert_eq!(c.next().await["code"], "forbidden");
}

#[tokio::test]
async fn widget_sessions_see_only_their_workspace_and_what_they_may_see() {
    let app = spawn().await;
    let mut lunavo = connect(&app);
    lunavo.send(json!({"type":"hello","token":"tok-ana","workspace":"lunavo"}));
    lunavo.next().await;
    let mut mo = connect(&app);
    mo.send(json!({"type":"hello","token":"tok-mo"}));
    mo.next().await;
    let m = app.thread("monarch", ThreadKind::Approval, "m").await;
    let l = app.thread("lunavo", ThreadKind::Approval, "l").await;
    app.post(
        &format!("/api/v1/inbox/{}/approve", m.id.0),
        As::Token("tok-ana"),
        None,
    )
    .await;
    app.post(
        &format!("/api/v1/inbox/{}/approve", l.id.0),
        As::Token("tok-ana"),
        None,
    )
    .await;
    assert_eq!(lunavo.next().await["thread"]["id"], l.id.0);
    lunavo.nothing_more().await;
    assert_eq!(mo.next().await["thread"]["id"], m.id.0);
    mo.nothing_more().await;
}

/// One inbox, every front: a decision on the web edits the thread's copies on other fronts
/// (through the outbox), a second decision from another front is refused with the state, a
/// decision on another front is refused on the web (409), and threads and changes made
/// elsewhere reach web sessions through the web front's outbox deliverer.
#[tokio::test]
async fn one_inbox_across_fronts() {
    let app = spawn().await;
    let t = app
        .thread("lunavo", ThreadKind::Approval, "refund #1042")
        .await;
    let tg = Destination::parse("telegram:-100123").unwrap();
    app.store
        .add_copy(&ThreadCopy {
            thread: t.id,
            destination: tg.clone(),
            message_id: "77".into(),
        })
        .await
        .unwrap();
    let (s, _) = app
        .post(
            &format!("/api/v1/inbox/{}/approve", t.id.0),
            As::Token("tok-bo"),
            None,
        )
        .await;
    assert_eq!(s, axum::http::StatusCode::OK);
    let now = krake_core::time::Clock::now(app.clock.as_ref());
    let jobs = app
        .store
        .claim_outbox(Some("telegram"), "w", now, Duration::from_secs(60), 10)
        .await
        .unwrap();
    assert!(
        jobs.iter().any(|j| j.destination == tg
            && matches!(j.payload, OutboxPayload::EditThread { thread, .. } if thread == t.id)),
        "{jobs:?}"
    );
    let mut tg_user = Actor::new(
        UserName::parse("ana").unwrap(),
        Front::Telegram,
        Role::Owner,
    );
    tg_user.external_id = Some("5".into());
    let r = app
        .state
        .krake
        .handle_text(&tg_user, &format!("reject {} too late", t.id.0))
        .await;
    assert!(r.text.contains("already approved by bo"), "{}", r.text);

    let u = app.thread("lunavo", ThreadKind::Approval, "second").await;
    let r = app
        .state
        .krake
        .handle_text(&tg_user, &format!("approve {}", u.id.0))
        .await;
    assert!(r.text.starts_with("Approved"), "{}", r.text);
    let (s, v) = app
        .post(
            &format!("/api/v1/inbox/{}/reject", u.id.0),
            As::Token("tok-bo"),
            None,
        )
        .await;
    assert_eq!(s, axum::http::StatusCode::CONFLICT);
    assert_eq!(v["error"]["current"]["decided_by"], "ana");

    // A thread created elsewhere, routed to the web, reaches a connected session by delivery.
    let mut c = connect(&app);
    c.send(json!({"type":"hello","token":"tok-bo"}));
    c.next().await;
    let mut routes = krake_core::delivery::Routes::new();
    routes.add(
        ws("lunavo"),
        krake_web::live::destination(&ws("lunavo")).unwrap(),
    );
    let krake = app.state.krake.clone().with_routes(routes);
    let n = krake
        .create_thread(
            &Actor::system(),
            &krake_core::inbox::NewThread::new(
                ws("lunavo"),
                ThreadKind::Notice,
                "from a webhook",
                "",
            ),
        )
        .await
        .unwrap();
    let store = Arc::new(app.store.clone());
    let deliverer = krake_core::delivery::Deliverer::new(
        store.clone(),
        store.clone(),
        Arc::new(krake_web::live::WebSender::new(app.state.hub.clone())),
        app.clock.clone(),
        "web-test",
    );
    let stats = deliverer.run_once().await.unwrap();
    assert_eq!(stats.delivered, 1);
    let m = c.next().await;
    assert_eq!(
        (m["type"].as_str(), m["thread"]["id"].as_i64()),
        (Some("thread"), Some(n.id.0))
    );
    // A change to it on another front is an edit of the web copy, pushed the same way.
    let r = krake
        .handle_text(&tg_user, &format!("archive {}", n.id.0))
        .await;
    assert!(r.text.starts_with("Archived"), "{}", r.text);
    deliverer.run_once().await.unwrap();
    let m = c.next().await;
    assert_eq!(m["thread"]["status"], "archived");
    c.nothing_more().await;
}

#[tokio::test]
async fn a_connection_that_never_says_hello_is_closed() {
    let app = common::spawn_with(krake_web::front::WebConfig {
        hello_timeout: Duration::from_millis(200),
        ..Default::default()
    })
    .await;
    let mut c = connect(&app);
    let e = c.next().await;
    assert_eq!(e["code"], "timeout");
    tokio::time::timeout(Duration::from_secs(5), c.task)
        .await
        .unwrap()
        .unwrap();
    assert!(app.state.hub.is_empty());
}
