//! One transaction for a person's command: the state change, the event's processed mark, the
//! reply stored with the event and the reply's outbox row. Tested through core's accept path
//! on SQLite and PostgreSQL, with a listener standing in for what follows a decision (an
//! approved action): it answers at once, waits for the test, or never returns (the process
//! dies while the action runs).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[macro_use]
mod common;

use async_trait::async_trait;
use common::Db;
use krake_core::Krake;
use krake_core::actor::{Actor, Front, Role, UserName};
use krake_core::config::Directory;
use krake_core::inbound::{ANSWER_HOLD, Accepted, Content, IdempotencyKey, Inbound};
use krake_core::inbox::rules::{InboxEvent, InboxListener};
use krake_core::inbox::{NewThread, ThreadId, ThreadKind, ThreadStatus};
use krake_core::outbox::{Destination, OutboxJob, OutboxPayload};
use krake_core::ports::{InboxRepo, OutboxRepo, RepoError};
use krake_core::time::{ManualClock, Timestamp};
use krake_core::workspace::WorkspaceSlug;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

const T0: i64 = 1_795_503_000_000;

/// What follows a decision: "Done: …" once the test lets it (`gate`), or never.
struct Action {
    gate: Arc<Semaphore>,
}

#[async_trait]
impl InboxListener for Action {
    async fn on_inbox_event(
        &self,
        event: InboxEvent<'_>,
        _actor: &Actor,
    ) -> Result<Option<String>, RepoError> {
        match event {
            InboxEvent::Decided(th) => {
                self.gate.acquire().await.unwrap().forget();
                Ok(Some(format!("Done: posted {}.", th.title)))
            }
            InboxEvent::Replied(_) => Ok(None),
        }
    }
}

struct App {
    krake: Arc<Krake>,
    gate: Arc<Semaphore>,
}

fn app(db: &Db, permits: usize) -> App {
    let store = Arc::new(db.store.clone());
    let gate = Arc::new(Semaphore::new(permits));
    let krake = Krake::new(
        store.clone(),
        store,
        Arc::new(ManualClock::new(Timestamp::from_millis(T0))),
        Directory::default(),
    )
    .with_listener(Arc::new(Action { gate: gate.clone() }));
    App {
        krake: Arc::new(krake),
        gate,
    }
}

async fn approval(db: &Db) -> ThreadId {
    let n = NewThread::new(
        WorkspaceSlug::parse("lunavo").unwrap(),
        ThreadKind::Approval,
        "the launch post",
        "",
    );
    let ctx = krake_core::ports::WriteCtx {
        actor: Actor::system(),
        inbound: None,
        now: Timestamp::from_millis(T0),
    };
    db.store.create(&n, &ctx).await.unwrap().id
}

fn chat() -> Destination {
    Destination::parse("telegram:42").unwrap()
}

fn approve(key: &str, thread: ThreadId) -> Inbound {
    Inbound {
        source: Front::Telegram,
        key: IdempotencyKey::parse(key).unwrap(),
        actor: Actor::new(
            UserName::parse("ana").unwrap(),
            Front::Telegram,
            Role::Member,
        ),
        conversation: "42".into(),
        reply_to: Some(chat()),
        answer_to: None,
        content: Content::Text(format!("/approve {}", thread.0)),
    }
}

/// The replies due at `at`, as text, delivered (claimed and completed, as the front's
/// deliverer does), so each is seen once.
async fn due(db: &Db, at: i64) -> Vec<String> {
    let jobs: Vec<OutboxJob> = db
        .store
        .claim_outbox(
            None,
            "test",
            Timestamp::from_millis(at),
            Duration::from_secs(600),
            100,
        )
        .await
        .unwrap();
    let done: Vec<_> = jobs.iter().map(|j| (j.id, None)).collect();
    let completed = db
        .store
        .complete_outbox_many(&done, "test", Timestamp::from_millis(at))
        .await
        .unwrap();
    assert_eq!(completed, jobs.len());
    jobs.into_iter()
        .map(|j| {
            assert_eq!(j.destination, chat());
            match j.payload {
                OutboxPayload::Send { reply } => reply.text,
                other => panic!("not a reply: {other:?}"),
            }
        })
        .collect()
}

async fn status(db: &Db, id: ThreadId) -> ThreadStatus {
    db.store.get(id).await.unwrap().unwrap().status
}

/// The approval and its reply are written together; the reply leaves as soon as what
/// followed has run, once, with what followed in it.
async fn the_reply_leaves_with_what_followed_once_it_ran(db: &Db) {
    let app = app(db, 1);
    let id = approval(db).await;
    let a = app.krake.accept(approve("telegram:update:1", id)).await;
    assert!(a.fresh);
    assert!(
        a.reply.text.starts_with(&format!("Approved #{}", id.0)),
        "{a:?}"
    );
    assert!(
        a.reply.text.ends_with("Done: posted the launch post."),
        "{a:?}"
    );
    let sent = due(db, T0).await;
    assert_eq!(
        sent,
        vec![a.reply.text.clone()],
        "released at once, not held"
    );
    // A redelivery gets the final reply back and queues nothing.
    let again = app.krake.accept(approve("telegram:update:1", id)).await;
    assert_eq!(
        again,
        Accepted {
            reply: a.reply,
            fresh: false
        }
    );
    assert!(
        due(db, T0 + ANSWER_HOLD.as_millis() as i64 + 1)
            .await
            .is_empty()
    );
}

/// The process dies while the approved action runs (after the approval committed): the
/// reply written with the approval is not lost. It leaves by itself once its hold ends, a
/// redelivery of the event gets it back, and nothing is applied or queued twice.
async fn a_crash_after_the_change_loses_no_reply(db: &Db) {
    let app = app(db, 0);
    let id = approval(db).await;
    let krake = app.krake.clone();
    let first = tokio::spawn(async move { krake.accept(approve("telegram:update:2", id)).await });
    for _ in 0..200 {
        if status(db, id).await == ThreadStatus::Approved {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status(db, id).await, ThreadStatus::Approved);
    // The crash: the action never finishes, its accept never returns.
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    // Held while the action would run: nothing is due yet.
    assert!(due(db, T0).await.is_empty(), "the reply is held, not sent");
    // The platform delivers the event again: the reply written with the change comes back,
    // and the decision is not taken again.
    let again = app.krake.accept(approve("telegram:update:2", id)).await;
    assert!(!again.fresh);
    assert_eq!(
        again.reply.text,
        format!("Approved #{}: the launch post", id.0)
    );
    let audit = db.store.audit(id).await.unwrap();
    assert_eq!(audit.iter().filter(|e| e.action == "approved").count(), 1);
    // Once the hold has passed it leaves, exactly once.
    let later = T0 + ANSWER_HOLD.as_millis() as i64 + 1;
    assert_eq!(due(db, later).await, vec![again.reply.text]);
    assert!(due(db, later + 600_001).await.is_empty());
}

/// An action slower than the hold: the reply written with the change has already left when
/// the action ends, so what followed is sent as one more message, once.
async fn an_action_slower_than_the_hold_follows_in_a_message_of_its_own(db: &Db) {
    let app = app(db, 0);
    let id = approval(db).await;
    let krake = app.krake.clone();
    let first = tokio::spawn(async move { krake.accept(approve("telegram:update:3", id)).await });
    let later = T0 + ANSWER_HOLD.as_millis() as i64 + 1;
    let mut left = Vec::new();
    for _ in 0..200 {
        left = due(db, later).await;
        if !left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(left, vec![format!("Approved #{}: the launch post", id.0)]);
    app.gate.add_permits(1);
    let a = first.await.unwrap();
    assert!(a.fresh);
    assert!(
        a.reply.text.ends_with("Done: posted the launch post."),
        "{a:?}"
    );
    // The held row was delivered, so what followed is a message of its own, due now, once.
    assert_eq!(due(db, T0).await, vec![a.reply.text.clone()]);
    assert!(due(db, T0).await.is_empty());
}

on_both_db!(
    the_reply_leaves_with_what_followed_once_it_ran,
    a_crash_after_the_change_loses_no_reply,
    an_action_slower_than_the_hold_follows_in_a_message_of_its_own,
);
