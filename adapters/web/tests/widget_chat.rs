//! The web chat's structured replies and scoping, over channels (no socket): `/todo`, a
//! thread and decisions carry blocks (a table, thread cards with quorum progress and buttons)
//! whose content is the text's; a Reject press carries its reason; a session opened for a
//! workspace lists and acts in that workspace only; a page on another origin is told so.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::client::Client;
use common::{App, spawn, ws};
use futures_util::{Sink, Stream};
use krake_core::actor::Actor;
use krake_core::inbox::{Approvers, NewThread, ThreadKind};
use krake_core::ports::InboxRepo;
use krake_web::ws::{Cookie, Incoming, run_session_with};
use serde_json::{Value, json};
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;

/// A connection whose upgrade request's cookie gave `cookie`.
fn connect_with(app: &App, cookie: Cookie) -> Client {
    let (in_tx, in_rx) = mpsc::unbounded_channel::<Incoming>();
    let (out_tx, out_rx) = mpsc::unbounded_channel::<Arc<str>>();
    let stream: Pin<Box<dyn Stream<Item = Incoming> + Send>> =
        Box::pin(futures_util::stream::unfold(in_rx, |mut rx| async move {
            rx.recv().await.map(|m| (m, rx))
        }));
    let sink: Pin<Box<dyn Sink<Arc<str>, Error = ()> + Send>> = Box::pin(
        futures_util::sink::unfold(out_tx, |tx, m: Arc<str>| async move {
            tx.send(m).map(|_| tx).map_err(|_| ())
        }),
    );
    let task = tokio::spawn(run_session_with(app.state.clone(), cookie, sink, stream));
    Client {
        tx: Some(in_tx),
        rx: out_rx,
        task,
    }
}

async fn hello(app: &App, token: &str, workspace: Option<&str>) -> Client {
    let mut c = connect_with(app, Cookie::None);
    c.send(json!({"type":"hello","token":token,"workspace":workspace}));
    let w = c.next().await;
    assert_eq!(w["type"], "welcome", "{w}");
    assert_eq!(w["workspace"], json!(workspace));
    c
}

/// The next reply, past any thread pushes.
async fn reply(c: &mut Client) -> Value {
    loop {
        let m = c.next().await;
        if m["type"] != "thread" {
            return m;
        }
    }
}

async fn say(c: &mut Client, id: &str, text: &str) -> Value {
    c.send(json!({"type":"say","id":id,"text":text}));
    let r = reply(c).await;
    assert_eq!(
        (r["type"].as_str(), r["re"].as_str()),
        (Some("reply"), Some(id)),
        "{r}"
    );
    r
}

#[tokio::test]
async fn a_todo_reply_carries_a_table_whose_rows_are_its_lines() {
    let app = spawn().await;
    let a = app
        .thread("lunavo", ThreadKind::Approval, "Publish the launch post")
        .await;
    let b = app
        .thread("monarch", ThreadKind::Question, "Which <b>size</b>?")
        .await;
    let mut c = hello(&app, "tok-ana", None).await;
    let r = say(&mut c, "m1", "/todo").await;
    let text = r["text"].as_str().unwrap();
    let blocks = r["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 1, "{r}");
    let table = &blocks[0];
    assert_eq!(table["type"], "table");
    assert_eq!(
        table["columns"],
        json!(["#", "Title", "Status", "Workspace", "Kind"])
    );
    let rows = table["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (th, kind) in [(&a, "approval"), (&b, "question")] {
        let row = rows
            .iter()
            .find(|r| r[0] == format!("#{}", th.id.0))
            .unwrap_or_else(|| panic!("no row for #{}: {table}", th.id.0));
        assert_eq!(row[1], th.title);
        assert_eq!(row[2], "open");
        assert_eq!(row[3], th.workspace.as_str());
        assert_eq!(row[4], kind);
        // The text says the same on its line for the thread.
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("#{} ", th.id.0)))
            .unwrap_or_else(|| panic!("no line for #{}: {text}", th.id.0));
        for cell in row.as_array().unwrap() {
            assert!(
                line.contains(cell.as_str().unwrap()),
                "{cell} not in {line}"
            );
        }
    }
    // Nothing open: no table, just the words.
    let mut c = hello(&app, "tok-mo", None).await;
    let r = say(&mut c, "m1", "/todo rejected").await;
    assert!(r["text"].as_str().unwrap().starts_with("No "), "{r}");
    assert_eq!(r["blocks"], json!([]));
}

#[tokio::test]
async fn a_thread_card_shows_quorum_progress_and_its_buttons_work() {
    let app = spawn().await;
    let mut new = NewThread::new(
        ws("lunavo"),
        ThreadKind::Approval,
        "Refund #1042",
        "details",
    );
    new.approvers = Approvers::Quorum { n: 2 };
    let t = app
        .state
        .krake
        .create_thread(&Actor::system(), &new)
        .await
        .unwrap();
    let mut ana = hello(&app, "tok-ana", None).await;
    let r = say(&mut ana, "s1", &format!("/show {}", t.id.0)).await;
    let card = &r["blocks"][0];
    assert_eq!(card["type"], "thread", "{r}");
    assert_eq!(card["id"], t.id.0);
    assert_eq!(card["title"], "Refund #1042");
    assert_eq!(
        (card["approvals"].as_u64(), card["needed"].as_u64()),
        (Some(0), Some(2))
    );
    assert_eq!(
        card["buttons"], r["buttons"],
        "the card's buttons are the reply's"
    );
    assert_eq!(card["buttons"][0]["action"], "approve");
    assert_eq!(card["buttons"][1]["action"], "reject");
    let approve = card["buttons"][0]["payload"].as_str().unwrap().to_owned();
    ana.send(json!({"type":"press","payload":approve,"id":"p1"}));
    let r = reply(&mut ana).await;
    assert!(r["text"].as_str().unwrap().contains("1 more needed"), "{r}");
    let card = &r["blocks"][0];
    assert_eq!(
        (
            card["status"].as_str(),
            card["approvals"].as_u64(),
            card["needed"].as_u64()
        ),
        (Some("open"), Some(1), Some(2))
    );
    // Still open: the card's buttons are for the thread's new version.
    let fresh = card["buttons"][0]["payload"].as_str().unwrap();
    assert!(
        fresh.starts_with(&format!("k1:a:{}:", t.id.0)) && fresh != approve,
        "{fresh}"
    );
    // The same person again: told, not counted twice.
    ana.send(json!({"type":"press","payload":fresh,"id":"p2"}));
    let r = reply(&mut ana).await;
    assert!(
        r["text"].as_str().unwrap().contains("already approved"),
        "{r}"
    );
    assert_eq!(r["blocks"][0]["approvals"], 1);
    // The second approval (bo, a member) approves it; the card says so.
    let mut bo = hello(&app, "tok-bo", None).await;
    let r = say(&mut bo, "b1", &format!("approve {}", t.id.0)).await;
    assert!(r["text"].as_str().unwrap().starts_with("Approved"), "{r}");
    let card = &r["blocks"][0];
    assert_eq!(
        (card["status"].as_str(), card["approvals"].as_u64()),
        (Some("approved"), Some(2))
    );
    assert_eq!(
        card["buttons"],
        json!([]),
        "a decided thread's card has no buttons"
    );
}

#[tokio::test]
async fn a_reject_press_carries_the_reason_given() {
    let app = spawn().await;
    let t = app
        .thread("lunavo", ThreadKind::Approval, "Discount code")
        .await;
    let mut c = hello(&app, "tok-bo", None).await;
    let r = say(&mut c, "s1", &format!("/show {}", t.id.0)).await;
    let reject = r["blocks"][0]["buttons"][1]["payload"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(reject.starts_with(&format!("k1:r:{}:", t.id.0)), "{reject}");
    c.send(json!({"type":"press","payload":reject,"id":"p1","reason":"  margin too thin "}));
    let r = reply(&mut c).await;
    assert!(
        r["text"]
            .as_str()
            .unwrap()
            .starts_with("Rejected (margin too thin)"),
        "{r}"
    );
    let card = &r["blocks"][0];
    assert_eq!(
        (
            card["status"].as_str(),
            card["reason"].as_str(),
            card["decided_by"].as_str()
        ),
        (Some("rejected"), Some("margin too thin"), Some("bo"))
    );
    let th = app.store.get(t.id).await.unwrap().unwrap();
    assert_eq!(th.reason.as_deref(), Some("margin too thin"));
    // A Reject with a reason from a card drawn for an older version is refused, not applied.
    let mut new = NewThread::new(ws("lunavo"), ThreadKind::Approval, "Free shipping week", "");
    new.approvers = Approvers::Quorum { n: 2 };
    let u = app
        .state
        .krake
        .create_thread(&Actor::system(), &new)
        .await
        .unwrap();
    let r = say(&mut c, "s2", &format!("/show {}", u.id.0)).await;
    let stale = r["blocks"][0]["buttons"][1]["payload"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = app
        .post(
            &format!("/api/v1/inbox/{}/approve", u.id.0),
            common::As::Token("tok-ana"),
            None,
        )
        .await;
    assert!(status.is_success(), "{status}");
    c.send(json!({"type":"press","payload":stale,"id":"p2","reason":"no"}));
    let r = reply(&mut c).await;
    assert!(r["text"].as_str().unwrap().contains("out of date"), "{r}");
    let th = app.store.get(u.id).await.unwrap().unwrap();
    assert_eq!(th.status.to_string(), "open");
}

#[tokio::test]
async fn a_workspace_session_lists_and_acts_in_its_workspace_only() {
    let app = spawn().await;
    let l = app
        .thread("lunavo", ThreadKind::Approval, "Lunavo post")
        .await;
    let m = app
        .thread("monarch", ThreadKind::Approval, "Monarch post")
        .await;
    // ana is an owner everywhere; her lunavo widget lists lunavo's threads only.
    let mut c = hello(&app, "tok-ana", Some("lunavo")).await;
    let r = say(&mut c, "m1", "/todo").await;
    let text = r["text"].as_str().unwrap();
    assert!(text.contains("Lunavo post"), "{text}");
    assert!(!text.contains("Monarch post"), "{text}");
    let rows = r["blocks"][0]["rows"].as_array().unwrap();
    assert!(rows.iter().all(|row| row[3] == "lunavo"), "{rows:?}");
    // Another workspace's thread does not exist here, and cannot be decided from here.
    let r = say(&mut c, "m2", &format!("/show {}", m.id.0)).await;
    assert!(
        r["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("no thread #{}", m.id.0)),
        "{r}"
    );
    let r = say(&mut c, "m3", &format!("approve {}", m.id.0)).await;
    assert!(
        r["text"]
            .as_str()
            .unwrap()
            .starts_with(&format!("no thread #{}", m.id.0)),
        "{r}"
    );
    // A task for Buddy (home: management) goes to lunavo, the widget's workspace.
    let r = say(&mut c, "m4", "/ask buddy find three shops to partner with").await;
    assert!(r["text"].as_str().unwrap().contains("in lunavo"), "{r}");
    // Its own workspace's threads it may decide.
    let r = say(&mut c, "m5", &format!("approve {}", l.id.0)).await;
    assert!(r["text"].as_str().unwrap().starts_with("Approved"), "{r}");
    // The same person without a workspace sees everything.
    let mut all = hello(&app, "tok-ana", None).await;
    let r = say(&mut all, "a1", "/todo").await;
    assert!(r["text"].as_str().unwrap().contains("Monarch post"), "{r}");
    let r = say(
        &mut all,
        "a2",
        "/ask buddy find three shops to partner with",
    )
    .await;
    assert!(r["text"].as_str().unwrap().contains("in management"), "{r}");
}

#[tokio::test]
async fn a_cookie_from_another_origin_is_told_apart_from_no_sign_in() {
    let app = spawn().await;
    let mut c = connect_with(&app, Cookie::OtherOrigin);
    c.send(json!({"type":"hello","workspace":"lunavo"}));
    let e = c.next().await;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("cross_origin")),
        "{e}"
    );
    assert!(
        e["message"].as_str().unwrap().contains("Krake's own"),
        "{e}"
    );
    c.closed().await;
    let mut c = connect_with(&app, Cookie::None);
    c.send(json!({"type":"hello","workspace":"lunavo"}));
    assert_eq!(c.next().await["code"], "unauthenticated");
    c.closed().await;
    // A token still opens the chat from another origin.
    let mut c = connect_with(&app, Cookie::OtherOrigin);
    c.send(json!({"type":"hello","token":"tok-bo","workspace":"lunavo"}));
    assert_eq!(c.next().await["type"], "welcome");
}
