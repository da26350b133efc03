//! Outbox wakes: a delivery worker whose safety poll is an hour away still sends a queued
//! message at once, whichever write queued it (enqueue, enqueue_once, a new thread posted to a
//! front, a thread change editing its copies), on SQLite and on PostgreSQL; and on PostgreSQL
//! a message queued by another process (a second store on the database) wakes it too.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[macro_use]
mod common;
use common::Db;

use async_trait::async_trait;
use krake_core::actor::Actor;
use krake_core::delivery::{Deliverer, Delivery, DeliveryStats, SendError, Sender, Sent};
use krake_core::inbox::{NewThread, ThreadKind};
use krake_core::outbox::{Destination, NewOutbound, OutboxPayload};
use krake_core::ports::{InboxRepo, OutboxRepo, WriteCtx};
use krake_core::reply::Reply;
use krake_core::time::{Clock, SystemClock};
use krake_core::workspace::WorkspaceSlug;
use krake_store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Far longer than any wait below: a message found by polling would fail the test.
const POLL: Duration = Duration::from_secs(3600);
/// How long a woken worker may take (a loaded test machine) before the test fails.
const IN_TIME: Duration = Duration::from_secs(10);

/// A sender that hands every delivery to the test.
struct Recording {
    sent: mpsc::UnboundedSender<Delivery>,
    next: AtomicU64,
}

#[async_trait]
impl Sender for Recording {
    fn front(&self) -> &str {
        "telegram"
    }
    async fn send(&self, _: &Destination, delivery: &Delivery) -> Result<Sent, SendError> {
        let _ = self.sent.send(delivery.clone());
        Ok(Sent {
            message_id: Some(format!("m{}", self.next.fetch_add(1, Ordering::Relaxed))),
        })
    }
}

/// A worker running on `store` with an hour's poll.
struct Worker {
    sent: mpsc::UnboundedReceiver<Delivery>,
    passes: mpsc::UnboundedReceiver<DeliveryStats>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    fn start(store: &Store) -> Self {
        let (sent_tx, sent) = mpsc::unbounded_channel();
        let (pass_tx, passes) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let s = Arc::new(store.clone());
        let mut deliverer = Deliverer::new(
            s.clone(),
            s,
            Arc::new(Recording {
                sent: sent_tx,
                next: AtomicU64::new(1),
            }),
            Arc::new(SystemClock),
            "wakes-test",
        );
        deliverer.poll = POLL;
        let task = tokio::spawn(async move {
            deliverer
                .run_until(
                    async {
                        let _ = stopped.await;
                    },
                    move |stats, _| {
                        let _ = pass_tx.send(stats.clone());
                    },
                )
                .await;
        });
        Self {
            sent,
            passes,
            stop: Some(stop),
            task,
        }
    }

    /// Waits until the worker finished a pass that found nothing: it is now waiting for a
    /// wake (or its hour-long poll).
    async fn idle(&mut self) {
        tokio::time::timeout(IN_TIME, async {
            while let Some(stats) = self.passes.recv().await {
                if !stats.busy() {
                    return;
                }
            }
        })
        .await
        .expect("the worker goes idle");
    }

    /// The next delivery, which must come long before the poll.
    async fn next(&mut self, what: &str) -> Delivery {
        tokio::time::timeout(IN_TIME, self.sent.recv())
            .await
            .unwrap_or_else(|_| panic!("{what}: not delivered before the poll"))
            .expect("the worker runs")
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap();
    }
}

fn to_telegram(text: &str) -> NewOutbound {
    NewOutbound {
        destination: Destination::parse("telegram:42").unwrap(),
        payload: OutboxPayload::Send {
            reply: Reply::info(text),
        },
    }
}

fn ctx() -> WriteCtx {
    WriteCtx {
        actor: Actor::system(),
        inbound: None,
        now: SystemClock.now(),
    }
}

on_both!(every_way_of_queueing_wakes_the_worker);

async fn every_way_of_queueing_wakes_the_worker(store: &Store) {
    let mut w = Worker::start(store);
    w.idle().await;

    store
        .enqueue(&[to_telegram("enqueued")], SystemClock.now())
        .await
        .unwrap();
    assert!(
        matches!(w.next("enqueue").await, Delivery::Send { reply } if reply.text == "enqueued")
    );
    w.idle().await;

    store
        .enqueue_once(&to_telegram("once"), "reply:test:1", SystemClock.now())
        .await
        .unwrap()
        .expect("queued");
    assert!(
        matches!(w.next("enqueue_once").await, Delivery::Send { reply } if reply.text == "once")
    );
    w.idle().await;

    // A new thread posted to a Telegram chat (the inbox write queues the post).
    let mut new = NewThread::new(
        WorkspaceSlug::parse("lunavo").unwrap(),
        ThreadKind::Approval,
        "Publish the autumn post?",
        "",
    );
    new.post_to = vec![Destination::parse("telegram:42").unwrap()];
    let thread = store.create(&new, &ctx()).await.unwrap();
    match w.next("a new thread's post").await {
        Delivery::Post { thread: posted } => assert_eq!(posted.id, thread.id),
        other => panic!("expected the post, got {other:?}"),
    }
    w.idle().await;

    // A change to the posted thread queues an edit of its copy.
    store
        .set_archived(thread.id, true, &ctx())
        .await
        .unwrap()
        .expect("the thread exists");
    match w.next("a thread change's edit").await {
        Delivery::Edit {
            thread: edited,
            message_id,
        } => {
            assert_eq!(edited.id, thread.id);
            assert_eq!(message_id, "m3", "the copy posted above is edited");
        }
        other => panic!("expected the edit, got {other:?}"),
    }
    w.stop().await;
}

mod across_processes {
    use super::*;

    /// Two stores on one PostgreSQL database stand for two processes: a message queued by one
    /// wakes the other's worker through NOTIFY.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_a_message_queued_by_another_process_wakes_the_worker() {
        let db = Db::postgres().await;
        let other = Store::open(&db.url).await.unwrap();
        let mut w = Worker::start(&other);
        tokio::time::timeout(IN_TIME, other.outbox_listening())
            .await
            .expect("the other store listens for outbox notices");
        w.idle().await;
        // Listening began with a wake of every worker, whose pass may still pick up the first
        // message; the next ones can only be found through their notices.
        for i in 0..3 {
            let text = format!("from the first process, #{i}");
            db.store
                .enqueue(&[to_telegram(&text)], SystemClock.now())
                .await
                .unwrap();
            assert!(
                matches!(w.next("a notice from another process").await, Delivery::Send { reply } if reply.text == text)
            );
            w.idle().await;
        }
        w.stop().await;
        other.pool().close().await;
    }

    /// On SQLite another process's message is found by the poll (the safety net): a short
    /// poll delivers it, nothing is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_another_process_is_found_by_the_poll() {
        let db = Db::sqlite().await;
        let other = Store::open(&db.url).await.unwrap();
        let s = Arc::new(other.clone());
        let (sent_tx, mut sent) = mpsc::unbounded_channel();
        let mut deliverer = Deliverer::new(
            s.clone(),
            s,
            Arc::new(Recording {
                sent: sent_tx,
                next: AtomicU64::new(1),
            }),
            Arc::new(SystemClock),
            "wakes-test",
        );
        deliverer.poll = Duration::from_millis(50);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            deliverer
                .run_until(
                    async {
                        let _ = stopped.await;
                    },
                    |_, _| {},
                )
                .await;
        });
        db.store
            .enqueue(&[to_telegram("polled")], SystemClock.now())
            .await
            .unwrap();
        let d = tokio::time::timeout(IN_TIME, sent.recv())
            .await
            .expect("found by the poll")
            .unwrap();
        assert!(matches!(d, Delivery::Send { reply } if reply.text == "polled"));
        let _ = stop.send(());
        task.await.unwrap();
    }
}
