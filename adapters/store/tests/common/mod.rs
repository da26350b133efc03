//! The shared harness of the store's test files: a fresh SQLite file or a fresh PostgreSQL
//! database per test (on `KRAKE_TEST_POSTGRES_URL`, default 127.0.0.1:5432), dropped after,
//! and macros that run each test body on both.
#![allow(dead_code, unused_macros, clippy::unwrap_used, clippy::expect_used)]

use krake_store::Store;

/// A test database: the store, its URL (to open a second `Store` on it), and what to clean up.
pub struct Db {
    pub store: Store,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

pub fn admin_url() -> String {
    std::env::var("KRAKE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

impl Db {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = Store::sqlite_url(&dir.path().join("krake.db"));
        let store = Store::open(&url).await.unwrap();
        store.migrate(|_| {}).await.unwrap();
        Db {
            store,
            url,
            _dir: Some(dir),
            pg_name: None,
        }
    }

    pub async fn postgres() -> Self {
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
        let url = format!("{base}/{name}");
        let store = Store::open(&url).await.unwrap();
        store.migrate(|_| {}).await.unwrap();
        Db {
            store,
            url,
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

/// Runs each `async fn name(&Store)` body on SQLite and on PostgreSQL.
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

/// Runs each `async fn name(&Db)` body on SQLite and on PostgreSQL (for tests that open a
/// second store on the same database).
macro_rules! on_both_db {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { let db = super::Db::sqlite().await; super::$name(&db).await; } )*
        }
        mod postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { let db = super::Db::postgres().await; super::$name(&db).await; } )*
        }
    };
}
