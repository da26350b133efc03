//! The thread-links repository (places on a front that stand for an inbox thread), run against
//! a fresh SQLite file and a fresh PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_core::actor::{Actor, Front};
use krake_core::inbox::{NewThread, ThreadId, ThreadKind};
use krake_core::ports::{InboxRepo, ThreadLink, ThreadLinkRepo, WriteCtx};
use krake_core::time::Timestamp;
use krake_core::workspace::WorkspaceSlug;
use krake_store::Store;

struct Db {
    store: Store,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

fn admin_url() -> String {
    std::env::var("KRAKE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

impl Db {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Store::sqlite_url(&dir.path().join("krake.db")))
            .await
            .unwrap();
        store.migrate(|_| {}).await.unwrap();
        Db {
            store,
            _dir: Some(dir),
            pg_name: None,
        }
    }

    async fn postgres() -> Self {
        let admin = admin_url();
        let name = format!("krake_test_{}", uuid::Uuid::new_v4().simple());
        let admin_store = Store::open(&admin).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is required for these tests ({e}); run scripts/test, which starts it"
            )
        });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(admin_store.pool())
            .await
            .unwrap();
        admin_store.pool().close().await;
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap();
        let store = Store::open(&format!("{base}/{name}")).await.unwrap();
        store.migrate(|_| {}).await.unwrap();
        Db {
            store,
            _dir: None,
            pg_name: Some(name),
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Drop the per-test database on a thread of its own: Drop cannot await.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(admin) = Store::open(&admin_url()).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(admin.pool())
                                .await;
                    }
                });
            })
            .join();
        }
    }
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { let db = super::Db::sqlite().await; super::$name(&db.store).await; } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { let db = super::Db::postgres().await; super::$name(&db.store).await; } )*
        }
    };
}

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
