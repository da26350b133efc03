//! # krake-store
//!
//! Krake's durable store on sqlx: SQLite by default (one file in the data directory, WAL) and
//! PostgreSQL when given a `postgres://` URL. Both run the same SQL where the dialects agree;
//! where they differ (locking) the backend picks its own.
//!
//! - [`Store`]: opening, migrating, health.
//! - `inbox`: [`InboxRepo`](krake_core::ports::InboxRepo): threads, replies, decisions, audit, copies.
//! - `inbound`: [`InboundRepo`](krake_core::ports::InboundRepo): idempotent event log.
//! - `outbox`: [`OutboxRepo`](krake_core::ports::OutboxRepo): leased, ordered, retried delivery.
//!   Every commit that queued messages wakes their fronts' workers (`Tx::commit`); on
//!   PostgreSQL other processes hear of it too (`notify`).
//! - `fronts`: [`FrontStateRepo`](krake_core::ports::FrontStateRepo): update cursors, parts sent.
//! - `schedules`: [`ScheduleRepo`](krake_core::schedule::ScheduleRepo): schedules, occurrences
//!   claimed by compare-and-set on `next_run_at`, run history.
//! - `folders`: [`FolderRepo`](krake_core::folder::FolderRepo): agents' typed tables.
//! - `commerce`: [`CommerceRepo`](krake_core::commerce::CommerceRepo): orders, fulfilments, KPI roll-ups.
//! - `users`: [`UserRepo`](krake_core::ports::UserRepo): users, roles, link codes, platform identities.
//! - `web_accounts`: [`AccountRepo`](krake_core::web_accounts::AccountRepo): password hashes, web sessions.
//! - `links`: [`ThreadLinkRepo`](krake_core::ports::ThreadLinkRepo): front places standing for threads.
//! - `runs`: [`RunRepo`](krake_core::run::RunRepo) and [`CostLedger`](krake_core::ledger::CostLedger):
//!   agent runs under leases, their steps, one ledger row per model call.

mod commerce;
mod direct;
mod folders;
mod fronts;
mod inbound;
pub use inbound::GroupCommit;
mod inbox;
mod learn;
mod links;
mod metrics;
mod notify;
pub use notify::{OUTBOX_CHANNEL, THREADS_CHANNEL, ThreadChanges};
mod outbox;
mod runs;
mod schedules;
mod users;
mod visitors;
mod web_accounts;

use krake_core::ports::RepoError;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Executor};
use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file (the embedded default).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// Failures opening or migrating the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no supported database.
    #[error("unsupported database URL `{0}`: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl(String),
    /// The database could not be opened.
    #[error("cannot open the database at {url}: {source}")]
    Open {
        /// The URL with any password removed.
        url: String,
        /// Why.
        #[source]
        source: sqlx::Error,
    },
    /// Migrations failed.
    #[error("cannot migrate the database at {url}: {source}")]
    Migrate {
        /// The URL with any password removed.
        url: String,
        /// Why.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
}

/// A migration step, reported while migrating (long migrations show progress).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrationProgress {
    /// How many are pending before starting.
    Pending(usize),
    /// All pending migrations are applied; the newest version is this.
    Done {
        /// How many were applied.
        applied: usize,
        /// The newest applied version.
        version: i64,
    },
}

/// The store: a connection pool and its backend.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The URL it was opened with (for LISTEN connections); never printed.
    url: krake_core::secret::Secret,
    /// SQLite files: direct connections for the hot paths (inbox listings, the inbound
    /// writer); `None` on PostgreSQL.
    direct: Option<std::sync::Arc<direct::Direct>>,
    /// PostgreSQL: a small native pool for the inbound writer, whose batches bind whole
    /// columns as arrays (one prepared statement whatever the batch size); `None` on SQLite.
    native_pg: Option<sqlx::PgPool>,
    /// Wakes delivery workers when outbox messages are committed (shared by clones).
    notices: notify::OutboxNotices,
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

/// Removes the password from a database URL so it can be printed.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s + 3 => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}://{user}:***@{}", &url[..s], &url[at + 1..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Store {
    /// Opens the database at `url` (`sqlite://path` creates the file; `postgres://…`).
    /// Does not migrate: call [`migrate`](Self::migrate).
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        let open_err = |source| StoreError::Open {
            url: redact_url(url),
            source,
        };
        let url = match backend {
            Backend::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url).map_err(open_err)?;
        // One direct connection first: a wrong URL or a server that is down fails at once
        // with the real reason, instead of the pool retrying until its timeout.
        {
            use sqlx::ConnectOptions;
            use sqlx::Connection;
            let probe = options.connect().await.map_err(open_err)?;
            let _ = probe.close().await;
        }
        let pool = match backend {
            // One connection: SQLite has one writer anyway, and a single connection makes every
            // transaction in this process serial without lock-upgrade failures.
            Backend::Sqlite => AnyPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        conn.execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;")
                            .await?;
                        Ok(())
                    })
                })
                .connect_with(options)
                .await
                .map_err(open_err)?,
            Backend::Postgres => AnyPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await
                .map_err(open_err)?,
        };
        let direct = match backend {
            Backend::Sqlite => {
                direct::sqlite_path(&url).map(|path| std::sync::Arc::new(direct::Direct::new(path)))
            }
            Backend::Postgres => None,
        };
        let native_pg = match backend {
            Backend::Sqlite => None,
            // Lazy: its connections open when the first webhook batch is written.
            Backend::Postgres => Some(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(inbound::WRITERS_IN_FLIGHT as u32)
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_lazy(&url)
                    .map_err(open_err)?,
            ),
        };
        Ok(Self {
            pool,
            backend,
            url: krake_core::secret::Secret::new(url),
            direct,
            native_pg,
            notices: notify::OutboxNotices::new(),
        })
    }

    /// The URL of the SQLite file `path`.
    pub fn sqlite_url(path: &std::path::Path) -> String {
        format!("sqlite://{}", path.display())
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for benchmarks and tests that compare against raw SQL.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    fn migrator(&self) -> &'static sqlx::migrate::Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// Applies pending migrations, reporting progress.
    pub async fn migrate(
        &self,
        mut progress: impl FnMut(MigrationProgress),
    ) -> Result<usize, StoreError> {
        let migrator = self.migrator();
        let mig_err = |source| StoreError::Migrate {
            url: self.backend_name().to_owned(),
            source,
        };
        let applied: Vec<i64> = {
            let exists = match self.backend {
                Backend::Sqlite => {
                    "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'"
                }
                Backend::Postgres => {
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = '_sqlx_migrations' AND table_schema = current_schema()"
                }
            };
            let n: i64 = sqlx::query_scalar(exists)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| mig_err(sqlx::migrate::MigrateError::Execute(e)))?;
            if n == 0 {
                Vec::new()
            } else {
                sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                    .fetch_all(&self.pool)
                    .await
                    .map_err(|e| mig_err(sqlx::migrate::MigrateError::Execute(e)))?
            }
        };
        let pending = migrator
            .iter()
            .filter(|m| !applied.contains(&m.version))
            .count();
        progress(MigrationProgress::Pending(pending));
        migrator.run(&self.pool).await.map_err(mig_err)?;
        let version = migrator.iter().map(|m| m.version).max().unwrap_or(0);
        progress(MigrationProgress::Done {
            applied: pending,
            version,
        });
        Ok(pending)
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), RepoError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// Begins a write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`), so a transaction never fails half-way on a lock upgrade when another
    /// process (say `krake chat` beside `krake serve`) writes too.
    async fn begin(&self) -> Result<Tx, RepoError> {
        let inner = match self.backend {
            Backend::Sqlite => self
                .pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(db_err)?,
            Backend::Postgres => self.pool.begin().await.map_err(db_err)?,
        };
        Ok(Tx {
            inner,
            queued: BTreeSet::new(),
            backend: self.backend,
            notices: self.notices.clone(),
        })
    }
}

/// A write transaction that knows which fronts it queued outbox messages for. Outbox rows are
/// only ever inserted through one (`outbox::insert`, `outbox::insert_once`), so its
/// [`commit`](Self::commit) is the one place that tells their delivery workers. It reads
/// and writes like the connection it wraps (`&mut *tx`).
pub(crate) struct Tx {
    inner: sqlx::Transaction<'static, sqlx::Any>,
    queued: BTreeSet<String>,
    backend: Backend,
    notices: notify::OutboxNotices,
}

impl std::ops::Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.inner
    }
}

impl std::ops::DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.inner
    }
}

impl Tx {
    /// Notes that this transaction queued a message for `front` (`outbox` calls it for
    /// every row it inserts).
    pub(crate) fn queued(&mut self, front: &str) {
        if !self.queued.contains(front) {
            self.queued.insert(front.to_owned());
        }
    }

    /// Rolls back: nothing was queued, nobody is woken.
    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        self.inner.rollback().await
    }

    /// Commits, then wakes the workers of every front it queued messages for. On PostgreSQL
    /// the notice to other processes is sent inside the transaction, so PostgreSQL delivers
    /// it exactly when (and only if) the messages are committed.
    pub(crate) async fn commit(mut self) -> Result<(), sqlx::Error> {
        if self.backend == Backend::Postgres {
            for front in &self.queued {
                notify::announce_outbox(&mut self.inner, &self.notices, front).await?;
            }
        }
        self.inner.commit().await?;
        for front in &self.queued {
            self.notices.wake(front);
        }
        Ok(())
    }
}

/// Maps a database error to the port's error, logging the detail.
pub(crate) fn db_err(e: sqlx::Error) -> RepoError {
    match e {
        sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::ColumnNotFound(_) => RepoError::Corrupt(e.to_string()),
        other => {
            tracing::warn!(error = %other, "database error");
            RepoError::Unavailable(other.to_string())
        }
    }
}

pub(crate) fn corrupt(what: &str, value: &str) -> RepoError {
    RepoError::Corrupt(format!(
        "{what}: `{}`",
        value.chars().take(80).collect::<String>()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://./x.db"), "sqlite://./x.db");
    }
}
