//! Change notices between processes sharing one PostgreSQL database (LISTEN/NOTIFY), and the
//! outbox wakes of this process.
//!
//! Threads: what lives in one process's memory needs a notice, the web chat sessions
//! connected to it. When a process pushes a thread change to its own sessions it also sends
//! `NOTIFY krake_threads, '<thread id>'`; every other process listens, loads the thread and
//! pushes it to its sessions.
//!
//! Outbox: any process may claim queued messages, but a delivery worker should not have to
//! poll to learn of them. A commit that queued messages wakes this process's workers of their
//! fronts at once (an [`OutboxSignal`]) and, on PostgreSQL, sends
//! `NOTIFY krake_outbox, '<front> <origin>'` inside the transaction; a listener task in every
//! process (started with its first worker) turns other processes' notices into local wakes.
//! After (re)connecting it wakes every worker, since notices sent meanwhile were missed.
//!
//! On SQLite (one process) only the local wakes exist.

use crate::{Backend, Store, db_err};
use krake_core::inbox::ThreadId;
use krake_core::outbox::{OutboxSignal, OutboxWake};
use krake_core::ports::RepoError;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::watch;

/// The channel thread changes are announced on.
pub const THREADS_CHANNEL: &str = "krake_threads";

/// The channel queued outbox messages are announced on (payload: `<front> <origin>`).
pub const OUTBOX_CHANNEL: &str = "krake_outbox";

/// One store's outbox wakes (shared by its clones): the local signal, this store's origin tag
/// (its own notices are already woken locally), and the cross-process listener's state.
#[derive(Debug, Clone)]
pub(crate) struct OutboxNotices {
    signal: OutboxSignal,
    origin: Arc<str>,
    started: Arc<AtomicBool>,
    listening: Arc<watch::Sender<bool>>,
    /// Held by every clone of the store; the listener task ends once it is gone.
    alive: Arc<()>,
}

impl OutboxNotices {
    pub(crate) fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let origin = format!(
            "{}.{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Self {
            signal: OutboxSignal::new(),
            origin: origin.into(),
            started: Arc::new(AtomicBool::new(false)),
            listening: Arc::new(watch::channel(false).0),
            alive: Arc::new(()),
        }
    }

    /// Wakes this process's workers of `front`.
    pub(crate) fn wake(&self, front: &str) {
        self.signal.wake(front);
    }
}

/// Sends the outbox notice for `front` inside the caller's (PostgreSQL) transaction.
pub(crate) async fn announce_outbox(
    conn: &mut sqlx::AnyConnection,
    notices: &OutboxNotices,
    front: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(OUTBOX_CHANNEL)
        .bind(format!("{front} {}", notices.origin))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// A wake for one delivery worker of `front`: fired after every commit that queued a
    /// message for it (on PostgreSQL, by any process: the first call starts the listener).
    pub(crate) fn outbox_wake(&self, front: &str) -> OutboxWake {
        let wake = self.notices.signal.subscribe(front);
        if self.backend == Backend::Postgres {
            self.start_outbox_listener();
        }
        wake
    }

    /// Waits until this process hears other processes' outbox notices (starting the listener
    /// if no worker did yet). At once on SQLite, where there is no other process to hear;
    /// on PostgreSQL it waits as long as the server cannot be reached.
    pub async fn outbox_listening(&self) {
        if self.backend != Backend::Postgres {
            return;
        }
        self.start_outbox_listener();
        let mut rx = self.notices.listening.subscribe();
        let _ = rx.wait_for(|listening| *listening).await;
    }

    fn start_outbox_listener(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no async runtime: outbox notices from other processes are not heard");
            return;
        };
        if self.notices.started.swap(true, Ordering::SeqCst) {
            return;
        }
        runtime.spawn(listen_outbox(
            self.url.clone(),
            self.notices.signal.clone(),
            self.notices.origin.clone(),
            self.notices.listening.clone(),
            Arc::downgrade(&self.notices.alive),
        ));
    }

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

/// Turns other processes' outbox notices into local wakes until the store is gone. A lost
/// connection is made again (with backoff while the server is away) and every worker is woken
/// once it listens again.
async fn listen_outbox(
    url: krake_core::secret::Secret,
    signal: OutboxSignal,
    origin: Arc<str>,
    listening: Arc<watch::Sender<bool>>,
    alive: Weak<()>,
) {
    let mut backoff = Duration::from_millis(500);
    let mut failing = false;
    while alive.upgrade().is_some() {
        let connected = async {
            let mut listener = sqlx::postgres::PgListener::connect(url.expose()).await?;
            listener.listen(OUTBOX_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        let mut listener = match connected {
            Ok(l) => l,
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "cannot listen for outbox notices; delivery polls until it can");
                    failing = true;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        if failing {
            tracing::info!("listening for outbox notices again");
        }
        backoff = Duration::from_millis(500);
        signal.wake_all();
        listening.send_replace(true);
        loop {
            match listener.try_recv().await {
                Ok(Some(notice)) => {
                    let (front, from) = notice
                        .payload()
                        .split_once(' ')
                        .unwrap_or((notice.payload(), ""));
                    if from != &*origin {
                        signal.wake(front);
                    }
                }
                // The connection was lost and made again: notices in between were missed.
                Ok(None) => signal.wake_all(),
                Err(e) => {
                    tracing::warn!(error = %e, "lost the outbox notice listener; reconnecting");
                    listening.send_replace(false);
                    failing = true;
                    break;
                }
            }
            if alive.upgrade().is_none() {
                return;
            }
        }
    }
}
