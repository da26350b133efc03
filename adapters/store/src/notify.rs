//! Change notices between processes sharing one PostgreSQL database (LISTEN/NOTIFY).
//!
//! Work queued in the database (webhooks, outbox jobs, schedules) needs no notice: any process
//! claims it. What lives in one process's memory does: the web chat sessions connected to it.
//! When a process pushes a thread change to its own sessions it also sends
//! `NOTIFY krake_threads, '<thread id>'`; every other process listens, loads the thread and
//! pushes it to its sessions. On SQLite (one process) both ends do nothing.

use crate::{Backend, Store, db_err};
use krake_core::inbox::ThreadId;
use krake_core::ports::RepoError;

/// The channel thread changes are announced on.
pub const THREADS_CHANNEL: &str = "krake_threads";

impl Store {
    /// Tells the other processes on this PostgreSQL database that thread `id` changed.
    /// Nothing on SQLite.
    pub async fn notify_thread_changed(&self, id: ThreadId) -> Result<(), RepoError> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(THREADS_CHANNEL)
            .bind(id.0.to_string())
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    /// Listens for thread changes announced by any process (including this one); `None` on
    /// SQLite, where there is no other process to hear from.
    pub async fn listen_thread_changes(&self) -> Result<Option<ThreadChanges>, RepoError> {
        if self.backend != Backend::Postgres {
            return Ok(None);
        }
        let mut listener = sqlx::postgres::PgListener::connect(self.url.expose())
            .await
            .map_err(db_err)?;
        listener.listen(THREADS_CHANNEL).await.map_err(db_err)?;
        Ok(Some(ThreadChanges { listener }))
    }
}

/// A stream of changed thread ids from [`Store::listen_thread_changes`].
pub struct ThreadChanges {
    listener: sqlx::postgres::PgListener,
}

impl ThreadChanges {
    /// The next changed thread. After a lost connection the listener reconnects by itself;
    /// notices sent while it was away are missed (a web client catches up when it reloads).
    pub async fn next(&mut self) -> Result<ThreadId, RepoError> {
        loop {
            let n = self.listener.recv().await.map_err(db_err)?;
            if let Ok(id) = n.payload().parse::<i64>() {
                return Ok(ThreadId(id));
            }
        }
    }
}
