//! The generic outbox worker over a real SQLite store, with a scripted sender standing in for
//! a platform (the platforms' own wire protocols are tested in their adapters).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use async_trait::async_trait;
use krake_core::Krake;
use krake_core::actor::Actor;
use krake_core::config::Directory;
use krake_core::delivery::{Deliverer, Delivery, Routes, SendError, Sender, Sent};
use krake_core::inbox::{NewThread, ThreadKind, ThreadStatus};
use krake_core::outbox::{Destination, NewOutbound, OutboxPayload};
use krake_core::ports::{InboxRepo, OutboxRepo};
use krake_core::reply::Reply;
use krake_core::time::{Clock, ManualClock, Timestamp};
use krake_core::workspace::WorkspaceSlug;
use krake_store::Store;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
struct Scripted {
    answers: Mutex<VecDeque<Result<Sent, SendError>>>,
    seen: Mutex<Vec<(String, Delivery)>>,
    /// Approves this thread during the next send: a change while a message is in flight.
    approve_during: Mutex<Option<(Krake, i64)>>,
}

#[async_trait]
impl Sender for Scripted {
    fn front(&self) -> &str {
        "test"
    }
    async fn send(
        &self,
        destination: &Destination,
        delivery: &Delivery,
    ) -> Result<Sent, SendError> {
        self.seen
            .lock()
            .unwrap()
            .push((destination.as_str().to_owned(), delivery.clone()));
        let approve = self.approve_during.lock().unwrap().take();
        if let Some((krake, id)) = approve {
            krake
                .handle_text(&Actor::local(), &format!("approve {id}"))
                .await;
        }
        let n = self.seen.lock().unwrap().len();
        self.answers.lock().unwrap().pop_front().unwrap_or(Ok(Sent {
            message_id: Some(format!("m{n}")),
        }))
    }
}

struct World {
    store: Store,
    clock: Arc<ManualClock>,
    krake: Krake,
    sender: Arc<Scripted>,
    deliverer: Deliverer,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Store::sqlite_url(&dir.path().join("k.db")))
        .await
        .unwrap();
    store.migrate(|_| {}).await.unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_795_503_000_000)));
    let mut routes = Routes::new();
    routes.add(
        WorkspaceSlug::parse("lunavo").unwrap(),
        Destination::parse("test:lunavo-room").unwrap(),
    );
    let krake = Krake::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        clock.clone(),
        Directory::default(),
    )
    .with_routes(routes)
    .with_outbox(Arc::new(store.clone()));
    let sender = Arc::new(Scripted::default());
    let deliverer = Deliverer::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        sender.clone(),
        clock.clone(),
        "test-worker",
    );
    World {
        store,
        clock,
        krake,
        sender,
        deliverer,
        _dir: dir,
    }
}

fn approval() -> NewThread {
    NewThread::new(
        WorkspaceSlug::parse("lunavo").unwrap(),
        ThreadKind::Approval,
        "Post it",
        "",
    )
}

#[tokio::test]
async fn a_thread_is_posted_then_its_copy_is_edited_on_decision() {
    let w = world().await;
    let t = w
        .krake
        .create_thread(&Actor::system(), &approval())
        .await
        .unwrap();
    let stats = w.deliverer.run_once().await.unwrap();
    assert_eq!(stats.delivered, 1);
    let copies = w.store.copies(t.id).await.unwrap();
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].message_id, "m1");
    w.krake
        .handle_text(&Actor::local(), &format!("approve {}", t.id.0))
        .await;
    w.deliverer.run_once().await.unwrap();
    let seen = w.sender.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    match &seen[1] {
        (dest, Delivery::Edit { thread, message_id }) => {
            assert_eq!(dest, "test:lunavo-room");
            assert_eq!(message_id, "m1");
            assert_eq!(
                thread.status,
                ThreadStatus::Approved,
                "the edit shows the thread as it is now"
            );
        }
        other => panic!("{other:?}"),
    }
    // Threads in workspaces without a route are not posted.
    let other = NewThread::new(
        WorkspaceSlug::parse("monarch").unwrap(),
        ThreadKind::Notice,
        "x",
        "",
    );
    w.krake
        .create_thread(&Actor::system(), &other)
        .await
        .unwrap();
    assert_eq!(w.deliverer.run_once().await.unwrap().delivered, 0);
}

#[tokio::test]
async fn a_429_delays_the_destination_and_keeps_order() {
    let w = world().await;
    let dest = Destination::parse("test:room").unwrap();
    let msgs: Vec<NewOutbound> = ["first", "second"]
        .iter()
        .map(|t| NewOutbound {
            destination: dest.clone(),
            payload: OutboxPayload::Send {
                reply: Reply::info(*t),
            },
        })
        .collect();
    w.store.enqueue(&msgs, w.clock.now()).await.unwrap();
    w.sender
        .answers
        .lock()
        .unwrap()
        .push_back(Err(SendError::RateLimited(Duration::from_secs(30))));
    let s = w.deliverer.run_once().await.unwrap();
    assert_eq!((s.delivered, s.retried), (0, 1));
    assert_eq!(
        w.deliverer.run_once().await.unwrap().delivered,
        0,
        "nothing before retry_after, not even the second"
    );
    w.clock.advance(Duration::from_secs(29));
    assert_eq!(w.deliverer.run_once().await.unwrap().delivered, 0);
    w.clock.advance(Duration::from_secs(1));
    assert_eq!(w.deliverer.run_once().await.unwrap().delivered, 1);
    assert_eq!(w.deliverer.run_once().await.unwrap().delivered, 1);
    let texts: Vec<String> = w
        .sender
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, d)| match d {
            Delivery::Send { reply } => reply.text.clone(),
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        texts,
        ["first", "first", "second"],
        "retried in place, order kept"
    );
    assert_eq!(w.store.outbox_depth().await.unwrap(), 0);
}

#[tokio::test]
async fn permanent_failures_are_dead_lettered_at_once() {
    let w = world().await;
    let dest = Destination::parse("test:gone").unwrap();
    w.store
        .enqueue(
            &[NewOutbound {
                destination: dest,
                payload: OutboxPayload::Send {
                    reply: Reply::info("hi"),
                },
            }],
            w.clock.now(),
        )
        .await
        .unwrap();
    w.sender
        .answers
        .lock()
        .unwrap()
        .push_back(Err(SendError::Permanent("chat not found".into())));
    assert_eq!(w.deliverer.run_once().await.unwrap().dead, 1);
    let dead = w.store.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].2.contains("chat not found"));
}

#[tokio::test]
async fn a_change_during_posting_is_edited_in_right_after() {
    let w = world().await;
    let t = w
        .krake
        .create_thread(&Actor::system(), &approval())
        .await
        .unwrap();
    // Someone approves on another front while the post is in flight.
    *w.sender.approve_during.lock().unwrap() = Some((w.krake.clone(), t.id.0));
    w.deliverer.run_once().await.unwrap();
    w.deliverer.run_once().await.unwrap();
    let seen = w.sender.seen.lock().unwrap().clone();
    assert!(matches!(&seen[0].1, Delivery::Post { thread } if thread.status == ThreadStatus::Open));
    assert!(
        matches!(&seen[1].1, Delivery::Edit { thread, message_id } if thread.status == ThreadStatus::Approved && message_id == "m1"),
        "{seen:?}"
    );
}

#[tokio::test]
async fn rate_limits_wait_exactly_and_never_dead_letter() {
    let w = world().await;
    let dest = Destination::parse("test:busy").unwrap();
    w.store
        .enqueue(
            &[NewOutbound {
                destination: dest,
                payload: OutboxPayload::Send {
                    reply: Reply::info("patient"),
                },
            }],
            w.clock.now(),
        )
        .await
        .unwrap();
    // Held back more often than the retry policy allows failures.
    let holds = usize::try_from(w.deliverer.policy.max_attempts).unwrap() + 4;
    for _ in 0..holds {
        w.sender
            .answers
            .lock()
            .unwrap()
            .push_back(Err(SendError::RateLimited(Duration::from_secs(2))));
    }
    for _ in 0..holds {
        let s = w.deliverer.run_once().await.unwrap();
        assert_eq!((s.retried, s.dead), (1, 0));
        w.clock.advance(Duration::from_millis(1999));
        assert_eq!(
            w.deliverer.run_once().await.unwrap().retried,
            0,
            "not before retry_after"
        );
        w.clock.advance(Duration::from_millis(1));
    }
    assert_eq!(w.deliverer.run_once().await.unwrap().delivered, 1);
    assert!(w.store.dead_letters(10).await.unwrap().is_empty());
}

/// `/deadletters`: owners see what could not be delivered, where and why; a dead letter sent
/// again is delivered once, a discarded one never; others are refused.
#[tokio::test]
async fn dead_letters_are_listed_sent_again_or_discarded_by_owners() {
    use krake_core::actor::{Front, Role, UserName};
    let w = world().await;
    let dest = Destination::parse("test:gone").unwrap();
    for text in ["first", "second"] {
        w.store
            .enqueue(
                &[NewOutbound {
                    destination: dest.clone(),
                    payload: OutboxPayload::Send {
                        reply: Reply::info(text),
                    },
                }],
                w.clock.now(),
            )
            .await
            .unwrap();
        w.sender
            .answers
            .lock()
            .unwrap()
            .push_back(Err(SendError::Permanent("chat not found".into())));
        assert_eq!(w.deliverer.run_once().await.unwrap().dead, 1);
    }
    let member = Actor::new(
        UserName::parse("bo").unwrap(),
        Front::Telegram,
        Role::Member,
    );
    let refused = w.krake.handle_text(&member, "/deadletters").await;
    assert!(refused.text.starts_with("Only owners"), "{}", refused.text);
    let owner = Actor::local();
    let list = w.krake.handle_text(&owner, "/deadletters").await;
    assert!(
        list.text.starts_with("Dead letters (2), newest first:"),
        "{}",
        list.text
    );
    assert!(
        list.text.contains("By destination: test:gone ×2."),
        "{}",
        list.text
    );
    assert!(list.text.contains("chat not found"), "{}", list.text);
    let dead = w.store.dead_letters(10).await.unwrap();
    let (newest, oldest) = (dead[0].0, dead[1].0);
    let r = w
        .krake
        .handle_text(&owner, &format!("/deadletters discard {}", newest.0))
        .await;
    assert!(r.text.contains("is discarded"), "{}", r.text);
    let r = w
        .krake
        .handle_text(&owner, &format!("/deadletters retry {}", oldest.0))
        .await;
    assert!(r.text.contains("is queued again"), "{}", r.text);
    // Sent again once (the platform is back), the discarded one never.
    let stats = w.deliverer.run_once().await.unwrap();
    assert_eq!(stats.delivered, 1);
    assert_eq!(w.deliverer.run_once().await.unwrap().delivered, 0);
    assert!(w.store.dead_letters(10).await.unwrap().is_empty());
    let again = w
        .krake
        .handle_text(&owner, &format!("/deadletters retry {}", oldest.0))
        .await;
    assert!(
        again.text.contains("There is no dead letter"),
        "{}",
        again.text
    );
    let empty = w.krake.handle_text(&owner, "/deadletters").await;
    assert!(empty.text.starts_with("No dead letters"), "{}", empty.text);
}

/// A dead-lettered message is told to the workspace's owner in an escalation posted to its
/// other places, once per destination per hour, however many messages die there.
#[tokio::test]
async fn a_dead_letter_is_escalated_once_per_place_per_hour() {
    let w = world().await;
    let lunavo = WorkspaceSlug::parse("lunavo").unwrap();
    let gone = Destination::parse("test:gone").unwrap();
    let mut routes = Routes::new();
    routes.add(lunavo.clone(), gone.clone());
    routes.add(
        lunavo.clone(),
        Destination::parse("test:lunavo-room").unwrap(),
    );
    let deliverer = Deliverer::new(
        Arc::new(w.store.clone()),
        Arc::new(w.store.clone()),
        w.sender.clone(),
        w.clock.clone(),
        "escalating-worker",
    )
    .escalating(routes);
    let escalations = || async {
        w.store
            .list(&krake_core::inbox::ThreadFilter {
                kind: Some(ThreadKind::Escalation),
                ..krake_core::inbox::ThreadFilter::default()
            })
            .await
            .unwrap()
    };
    for (text, advance) in [("one", 0), ("two", 60), ("three", 3600)] {
        w.clock.advance(std::time::Duration::from_secs(advance));
        w.store
            .enqueue(
                &[NewOutbound {
                    destination: gone.clone(),
                    payload: OutboxPayload::Send {
                        reply: Reply::info(text),
                    },
                }],
                w.clock.now(),
            )
            .await
            .unwrap();
        w.sender
            .answers
            .lock()
            .unwrap()
            .push_back(Err(SendError::Permanent("bot was kicked".into())));
        let stats = deliverer.run_once().await.unwrap();
        assert_eq!(stats.dead, 1, "{text}");
        if text == "one" {
            let e = escalations().await;
            assert_eq!(e.len(), 1);
            assert_eq!(e[0].title, "Messages to test:gone cannot be delivered");
            let th = w.store.get(e[0].id).await.unwrap().unwrap();
            assert!(th.body.contains("bot was kicked"), "{}", th.body);
            assert!(th.body.contains("/deadletters"), "{}", th.body);
            // Posted to the workspace's other place only (not where delivery fails).
            let jobs = w
                .store
                .claim_outbox(
                    None,
                    "peek",
                    w.clock.now(),
                    std::time::Duration::from_secs(1),
                    50,
                )
                .await
                .unwrap();
            let posted: Vec<&str> = jobs
                .iter()
                .filter(|j| matches!(j.payload, OutboxPayload::PostThread { .. }))
                .map(|j| j.destination.as_str())
                .collect();
            assert_eq!(posted, ["test:lunavo-room"]);
            // Delivered (here), so the scripted platform's answers stay for the next messages.
            let done: Vec<_> = jobs.iter().map(|j| (j.id, None)).collect();
            w.store
                .complete_outbox_many(&done, "peek", w.clock.now())
                .await
                .unwrap();
        }
    }
    assert_eq!(
        escalations().await.len(),
        2,
        "one for the first hour (two dead letters), one for the next"
    );
}
