//! Direct SQLite access beside the sqlx pool, for the two hot paths whose cost was the pool's
//! single connection and sqlx's `Any` driver rather than SQLite itself:
//!
//! - the inbound writer: a thread of its own that group-commits webhook events (drain the
//!   queue, insert all in one `BEGIN IMMEDIATE` transaction, commit, then answer each caller),
//!   with a second thread running passive WAL checkpoints so the writer's commits never wait
//!   on one;
//! - inbox listings: a few read-only connections (WAL readers never wait for the writer).
//!
//! Both open the same file as the pool, in WAL mode with `synchronous = NORMAL` (a commit
//! survives a process crash): the durability is the pool's. Writes from the pool and from the
//! writer thread serialise on SQLite's write lock (`busy_timeout` 10 s, like the pool).

use crate::inbox::{ListBind, ThreadRow};
use krake_core::inbound::{InboundId, InboundRecord, Recorded};
use krake_core::inbox::Thread;
use krake_core::ports::RepoError;
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// How many listings run at once (and how many reader connections are kept).
const READERS: usize = 4;
/// How often the checkpointer copies the WAL back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);

/// An event waiting for the writer, with where its answer goes.
pub(crate) type Pending = (InboundRecord, oneshot::Sender<Result<Recorded, RepoError>>);

/// The SQLite file of a store and its reader connections.
pub(crate) struct Direct {
    path: PathBuf,
    readers: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct").finish_non_exhaustive()
    }
}

/// The file an `sqlite:` URL names, when it is a file that exists (not `:memory:`).
pub(crate) fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(":memory:") || path.contains('%') {
        return None;
    }
    let path = PathBuf::from(path);
    path.is_file().then_some(path)
}

fn sql_err(e: rusqlite::Error) -> RepoError {
    match e {
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => RepoError::Corrupt(e.to_string()),
        other => {
            tracing::warn!(error = %other, "database error");
            RepoError::Unavailable(other.to_string())
        }
    }
}

fn open(path: &Path, read_only: bool) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    )?;
    if read_only {
        conn.execute_batch("PRAGMA query_only = ON;")?;
    }
    Ok(conn)
}

impl Direct {
    /// Direct access to the SQLite file at `path` (connections open when first needed).
    pub(crate) fn new(path: PathBuf) -> Self {
        Self {
            path,
            readers: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(READERS)),
        }
    }

    /// Runs `f` on a reader connection, on the blocking pool, at most [`READERS`] at once.
    async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, RepoError> + Send + 'static,
    ) -> Result<T, RepoError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| RepoError::Unavailable("the store is closed".into()))?;
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let pooled = me.readers.lock().ok().and_then(|mut r| r.pop());
            let conn = match pooled {
                Some(c) => c,
                None => open(&me.path, true).map_err(sql_err)?,
            };
            let out = f(&conn);
            if let Ok(mut r) = me.readers.lock()
                && r.len() < READERS
            {
                r.push(conn);
            }
            out
        })
        .await
        .map_err(|e| RepoError::Unavailable(format!("a database read failed: {e}")))?
    }

    /// The threads of a listing query built by [`crate::inbox::list_query`].
    pub(crate) async fn list_threads(
        self: &Arc<Self>,
        sql: String,
        binds: Vec<ListBind>,
    ) -> Result<Vec<Thread>, RepoError> {
        let rows = self
            .rows(sql, binds, |r| {
                Ok(ThreadRow {
                    id: r.get(0)?,
                    workspace: r.get(1)?,
                    kind: r.get(2)?,
                    status: r.get(3)?,
                    origin: r.get(4)?,
                    agent: r.get(5)?,
                    title: r.get(6)?,
                    body: r.get(7)?,
                    action: r.get(8)?,
                    approvers: r.get(9)?,
                    expires_at: r.get(10)?,
                    timeout_route: r.get(11)?,
                    decided_by: r.get(12)?,
                    reason: r.get(13)?,
                    version: r.get(14)?,
                    created_at: r.get(15)?,
                    updated_at: r.get(16)?,
                })
            })
            .await?;
        rows.into_iter().map(ThreadRow::into_thread).collect()
    }

    /// Rows of a query on a reader connection, each turned into a `T` by `row`.
    pub(crate) async fn rows<T: Send + 'static>(
        self: &Arc<Self>,
        sql: String,
        binds: Vec<ListBind>,
        row: fn(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, RepoError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
            for (i, b) in binds.iter().enumerate() {
                match b {
                    ListBind::Text(t) => stmt.raw_bind_parameter(i + 1, t.as_str()),
                    ListBind::Int(n) => stmt.raw_bind_parameter(i + 1, n),
                }
                .map_err(sql_err)?;
            }
            let mut rows = stmt.raw_query();
            let mut out = Vec::new();
            while let Some(r) = rows.next().map_err(sql_err)? {
                out.push(row(r).map_err(sql_err)?);
            }
            Ok(out)
        })
        .await
    }

    /// Starts the inbound writer thread (and its checkpointer) on this file: events sent to
    /// the returned queue are answered once their batch is committed. The threads end when
    /// every sender is dropped.
    pub(crate) fn start_writer(&self, max_batch: usize) -> Result<mpsc::Sender<Pending>, String> {
        let max_batch = max_batch.max(1);
        let mut conn = open(&self.path, false).map_err(|e| e.to_string())?;
        // The checkpointer thread does the checkpoints, so a commit never runs one.
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0;")
            .map_err(|e| e.to_string())?;
        let checkpointer = open(&self.path, false).map_err(|e| e.to_string())?;
        let (tx, mut rx) = mpsc::channel::<Pending>(max_batch * 4);
        let (alive, stopped) = std::sync::mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("krake-wal-checkpoint".into())
            .spawn(move || {
                // Ends when the writer thread ends (its sender is dropped).
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    if let Err(e) =
                        checkpointer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(error = %e, "WAL checkpoint failed; retrying");
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        std::thread::Builder::new()
            .name("krake-inbound-writer".into())
            .spawn(move || {
                let _alive = alive;
                let mut batch: Vec<Pending> = Vec::with_capacity(max_batch);
                while let Some(first) = rx.blocking_recv() {
                    batch.push(first);
                    while batch.len() < max_batch {
                        match rx.try_recv() {
                            Ok(p) => batch.push(p),
                            Err(_) => break,
                        }
                    }
                    match write_batch(&mut conn, &batch) {
                        Ok(results) => {
                            for ((_, reply), r) in batch.drain(..).zip(results) {
                                let _ = reply.send(Ok(r));
                            }
                        }
                        Err(e) => {
                            let msg = sql_err(e).to_string();
                            for (_, reply) in batch.drain(..) {
                                let _ = reply.send(Err(RepoError::Unavailable(msg.clone())));
                            }
                        }
                    }
                }
            })
            .map_err(|e| e.to_string())?;
        Ok(tx)
    }
}

/// Records a batch in one transaction; each result is what `record_inbound` would have said
/// (a key repeated inside the batch is new once, then a duplicate).
fn write_batch(conn: &mut Connection, batch: &[Pending]) -> rusqlite::Result<Vec<Recorded>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut out = Vec::with_capacity(batch.len());
    {
        // No RETURNING: SQLite would buffer each returned row in a temporary table; the
        // change count and the last rowid say the same for one row.
        let mut insert = tx.prepare_cached(
            "INSERT INTO inbound (source, idempotency_key, actor, conversation, content, received_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (idempotency_key) DO NOTHING",
        )?;
        let mut existing = tx.prepare_cached(
            "SELECT id, processed_at, response FROM inbound WHERE idempotency_key = ?1",
        )?;
        for (e, _) in batch {
            let inserted = insert.execute(params![
                e.source,
                e.idempotency_key.as_str(),
                e.actor.as_str(),
                e.conversation,
                e.content,
                e.received_at.as_millis()
            ])?;
            let id = (inserted == 1).then(|| tx.last_insert_rowid());
            out.push(match id {
                Some(id) => Recorded::New(InboundId(id)),
                None => existing.query_row([e.idempotency_key.as_str()], |r| {
                    Ok(Recorded::Duplicate {
                        id: InboundId(r.get(0)?),
                        processed: r.get::<_, Option<i64>>(1)?.is_some(),
                        response: r.get(2)?,
                    })
                })?,
            });
        }
    }
    tx.commit()?;
    Ok(out)
}
