//! The thread-links repository (places on a front that stand for an inbox thread), run against
//! a fresh SQLite file and a fresh PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[macro_use]
mod common;
use common::Db;

use krake_core::actor::{Actor, Front};
use krake_core::inbox::{NewThread, ThreadId, ThreadKind};
use krake_core::ports::{InboxRepo, ThreadLink, ThreadLinkRepo, WriteCtx};
use krake_core::time::Timestamp;
use krake_core::workspace::WorkspaceSlug;
use krake_store::Store;

on_both!(links_map_places_to_threads);

async fn links_map_places_to_threads(store: &Store) {
    let ctx = WriteCtx {
        actor: Actor::system(),
        inbound: None,
        now: Timestamp::from_millis(1_795_503_000_000),
    };
    let ws = WorkspaceSlug::parse("lunavo").unwrap();
    let a = store
        .create(
            &NewThread::new(ws.clone(), ThreadKind::Approval, "a", ""),
            &ctx,
        )
        .await
        .unwrap();
    let monarch = WorkspaceSlug::parse("monarch").unwrap();
    let b = store
        .create(
            &NewThread::new(monarch.clone(), ThreadKind::Question, "b", ""),
            &ctx,
        )
        .await
        .unwrap();
    // Discord snowflakes exceed 2^53: kept exactly.
    let place = "1311111111111111111";
    assert_eq!(
        store.linked_thread(Front::Discord, place).await.unwrap(),
        None
    );
    store
        .link_thread(Front::Discord, place, &link(a.id, &ws))
        .await
        .unwrap();
    // Idempotent, and a place keeps its first thread.
    store
        .link_thread(Front::Discord, place, &link(a.id, &ws))
        .await
        .unwrap();
    store
        .link_thread(Front::Discord, place, &link(b.id, &monarch))
        .await
        .unwrap();
    assert_eq!(
        store.linked_thread(Front::Discord, place).await.unwrap(),
        Some(link(a.id, &ws)),
        "the first link stays, with the thread's workspace"
    );
    // Fronts are separate namespaces.
    assert_eq!(
        store.linked_thread(Front::Telegram, place).await.unwrap(),
        None
    );
    store
        .link_thread(Front::Discord, "1311111111111111112", &link(b.id, &monarch))
        .await
        .unwrap();
    assert_eq!(
        store
            .linked_thread(Front::Discord, "1311111111111111112")
            .await
            .unwrap(),
        Some(link(b.id, &monarch))
    );
    // A link must name an existing thread.
    assert!(
        store
            .link_thread(Front::Discord, "9", &link(ThreadId(999_999), &ws))
            .await
            .is_err()
    );
}

fn link(thread: ThreadId, workspace: &WorkspaceSlug) -> ThreadLink {
    ThreadLink {
        thread,
        workspace: workspace.clone(),
    }
}

mod notices {
    use super::*;

    /// Two stores on one PostgreSQL database stand for two processes: a change announced by
    /// one is heard by the other.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_thread_changes_reach_other_processes() {
        let db = Db::postgres().await;
        let other = Store::open(&db.url).await.unwrap();
        let mut heard = other
            .listen_thread_changes()
            .await
            .unwrap()
            .expect("PostgreSQL listens");
        db.store.notify_thread_changed(ThreadId(41)).await.unwrap();
        db.store.notify_thread_changed(ThreadId(42)).await.unwrap();
        for want in [41, 42] {
            let id = tokio::time::timeout(std::time::Duration::from_secs(10), heard.next())
                .await
                .expect("heard in time")
                .unwrap();
            assert_eq!(id, ThreadId(want));
        }
        other.pool().close().await;
    }

    /// On SQLite there is one process: nothing to announce, nothing to hear.
    #[tokio::test]
    async fn sqlite_has_no_notices() {
        let db = Db::sqlite().await;
        assert!(db.store.listen_thread_changes().await.unwrap().is_none());
        db.store.notify_thread_changed(ThreadId(1)).await.unwrap();
    }
}
