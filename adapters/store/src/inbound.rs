//! The inbound event log: one row per event, unique on its idempotency key; and what a
//! change's transaction writes for the event it belongs to (its processed mark, its answer).

use crate::{Backend, Store, Tx, corrupt, db_err};
use async_trait::async_trait;
use krake_core::actor::UserName;
use krake_core::inbound::{
    ANSWER_HOLD, Answered, Change, IdempotencyKey, InboundId, InboundRecord, Recorded,
    StoredInbound,
};
use krake_core::outbox::KeyedOutbound;
use krake_core::ports::{InboundRepo, RepoError, WriteCtx};
use krake_core::time::Timestamp;
use sqlx::AnyConnection;
use sqlx::Row;
use std::sync::Arc;
use std::time::Duration;

/// Marks the inbound event processed; fails with `AlreadyApplied` if it already was.
pub(crate) async fn mark_applied(
    conn: &mut AnyConnection,
    ctx: &WriteCtx,
) -> Result<(), RepoError> {
    if let Some(mark) = &ctx.inbound {
        let done = sqlx::query(
            "UPDATE inbound SET processed_at = $1 WHERE id = $2 AND processed_at IS NULL",
        )
        .bind(ctx.now.as_millis())
        .bind(mark.id.0)
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Err(RepoError::AlreadyApplied);
        }
    }
    Ok(())
}

/// Writes the answer to the inbound event a change belongs to, rendered from the change, in
/// the change's transaction ([`InboundMark::answer`](krake_core::inbound::InboundMark::answer)):
/// stored with the event, and its outbox row queued once but held for
/// [`ANSWER_HOLD`] (the accept path lets it go as soon as what follows the change has run).
pub(crate) async fn write_answer(
    tx: &mut Tx,
    ctx: &WriteCtx,
    change: Change<'_>,
) -> Result<(), RepoError> {
    let Some(mark) = &ctx.inbound else {
        return Ok(());
    };
    let Some(held) = mark.answer(change) else {
        return Ok(());
    };
    sqlx::query("UPDATE inbound SET response = $1 WHERE id = $2 AND response IS NULL")
        .bind(&held.response)
        .bind(mark.id.0)
        .execute(&mut **tx)
        .await
        .map_err(db_err)?;
    if let Some(o) = &held.outbound {
        crate::outbox::insert_once_due(
            tx,
            &o.message.destination,
            &o.message.payload,
            &o.key,
            ctx.now,
            ctx.now.plus(ANSWER_HOLD),
        )
        .await?;
    }
    Ok(())
}

#[async_trait]
impl InboundRepo for Store {
    async fn record_inbound(&self, e: &InboundRecord) -> Result<Recorded, RepoError> {
        let inserted: Option<i64> = sqlx::query_scalar(
            "INSERT INTO inbound (source, idempotency_key, actor, conversation, content, received_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        )
        .bind(e.source.as_str())
        .bind(e.idempotency_key.as_str())
        .bind(e.actor.as_str())
        .bind(e.conversation.as_str())
        .bind(e.content.as_str())
        .bind(e.received_at.as_millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        if let Some(id) = inserted {
            return Ok(Recorded::New(InboundId(id)));
        }
        let row = sqlx::query(
            "SELECT id, processed_at, response FROM inbound WHERE idempotency_key = $1",
        )
        .bind(e.idempotency_key.as_str())
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(Recorded::Duplicate {
            id: InboundId(row.try_get("id").map_err(db_err)?),
            processed: row
                .try_get::<Option<i64>, _>("processed_at")
                .map_err(db_err)?
                .is_some(),
            response: row.try_get("response").map_err(db_err)?,
        })
    }

    async fn complete_inbound(
        &self,
        id: InboundId,
        response: Option<&str>,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        sqlx::query(
            "UPDATE inbound SET processed_at = COALESCE(processed_at, $1), response = COALESCE(response, $2), \
             lease_owner = NULL, lease_until = NULL WHERE id = $3",
        )
        .bind(now.as_millis())
        .bind(response.map(str::to_owned))
        .bind(id.0)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn answer_inbound(
        &self,
        id: InboundId,
        response: &str,
        reply: Option<&KeyedOutbound>,
        now: Timestamp,
    ) -> Result<Answered, RepoError> {
        let mut tx = self.begin().await?;
        let stored = sqlx::query(
            "UPDATE inbound SET processed_at = COALESCE(processed_at, $1), response = $2, \
             lease_owner = NULL, lease_until = NULL WHERE id = $3 AND response IS NULL",
        )
        .bind(now.as_millis())
        .bind(response)
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if stored.rows_affected() == 0 {
            // Answered before (a redelivery handled side by side): that answer stands.
            let earlier: Option<String> =
                sqlx::query_scalar("SELECT response FROM inbound WHERE id = $1")
                    .bind(id.0)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .flatten();
            tx.commit().await.map_err(db_err)?;
            return match earlier {
                Some(response) => Ok(Answered {
                    response,
                    first: false,
                }),
                None => Err(RepoError::Corrupt(format!(
                    "inbound event {} is missing",
                    id.0
                ))),
            };
        }
        if let Some(r) = reply {
            // Its commit wakes the front's delivery workers.
            crate::outbox::insert_once(
                &mut tx,
                &r.message.destination,
                &r.message.payload,
                &r.key,
                now,
            )
            .await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(Answered {
            response: response.to_owned(),
            first: true,
        })
    }

    async fn release_answer(
        &self,
        id: InboundId,
        response: &str,
        reply: Option<&KeyedOutbound>,
        again: bool,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE inbound SET response = $1 WHERE id = $2")
            .bind(response)
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if let Some(r) = reply {
            let payload = serde_json::to_string(&r.message.payload)
                .map_err(|e| RepoError::Corrupt(e.to_string()))?;
            // Only a row never tried can change: one that left, or is leaving, stays as sent.
            let released = sqlx::query(
                "UPDATE outbox SET payload = $1, next_attempt_at = $2 \
                 WHERE dedupe_key = $3 AND state = 'pending' AND attempts = 0",
            )
            .bind(payload)
            .bind(now.as_millis())
            .bind(&r.key)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            if released.rows_affected() > 0 {
                // Its commit wakes the front's delivery workers.
                tx.queued(r.message.destination.front());
            } else if again {
                crate::outbox::insert_once(
                    &mut tx,
                    &r.message.destination,
                    &r.message.payload,
                    &format!("followup:{}", r.key),
                    now,
                )
                .await?;
            }
        }
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    async fn claim_inbound(
        &self,
        source: &str,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<StoredInbound>, RepoError> {
        // On PostgreSQL the source is matched as a range and the rows ordered by (source, id):
        // only the queue's index (`inbound_unprocessed`: source, id, unprocessed rows) gives
        // that order. With `source = $3 … ORDER BY id` the planner walks the primary key from
        // the oldest event and filters out every processed one (it assumes unprocessed rows
        // are spread evenly, while they are all at the end): 15 ms per claim behind 30,000
        // processed events, against 0.3 ms through the queue's index.
        let (matches, order, skip) = if self.backend == Backend::Postgres {
            (
                "source >= $3 AND source <= $3",
                "source, id",
                " FOR UPDATE SKIP LOCKED",
            )
        } else {
            ("source = $3", "id", "")
        };
        let sql = format!(
            "UPDATE inbound SET lease_owner = $1, lease_until = $2, attempts = attempts + 1 WHERE id IN ( \
               SELECT id FROM inbound WHERE {matches} AND processed_at IS NULL \
               AND (lease_until IS NULL OR lease_until <= $4) ORDER BY {order} LIMIT {}{skip}) \
             RETURNING id, source, idempotency_key, actor, conversation, content, received_at, attempts",
            limit.clamp(1, 1000)
        );
        let mut tx = self.begin().await?;
        if self.backend == Backend::Postgres {
            // The queue's index in its order is the only plan that stays cheap whatever the
            // statistics say. Taken before a burst, they say almost nothing is unprocessed,
            // and the planner then reads every unprocessed row through a bitmap and sorts
            // them (73 ms per claim behind a backlog of 32,000, against 5 ms in order).
            sqlx::query(
                "SELECT set_config('enable_bitmapscan', 'off', true), set_config('enable_seqscan', 'off', true)",
            )
            .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        let rows = sqlx::query(&sql)
            .bind(owner)
            .bind(now.plus(lease).as_millis())
            .bind(source)
            .bind(now.as_millis())
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        let mut out: Vec<StoredInbound> = rows
            .iter()
            .map(|r| {
                let key: String = r.try_get("idempotency_key").map_err(db_err)?;
                let actor: String = r.try_get("actor").map_err(db_err)?;
                Ok(StoredInbound {
                    id: InboundId(r.try_get("id").map_err(db_err)?),
                    attempts: i32::try_from(r.try_get::<i64, _>("attempts").map_err(db_err)?)
                        .unwrap_or(i32::MAX),
                    event: InboundRecord {
                        source: r.try_get("source").map_err(db_err)?,
                        idempotency_key: IdempotencyKey::parse(&key)
                            .map_err(|_| corrupt("idempotency_key", &key))?,
                        actor: UserName::parse(&actor).map_err(|_| corrupt("actor", &actor))?,
                        conversation: r.try_get("conversation").map_err(db_err)?,
                        content: r.try_get("content").map_err(db_err)?,
                        received_at: Timestamp::from_millis(
                            r.try_get("received_at").map_err(db_err)?,
                        ),
                    },
                })
            })
            .collect::<Result<_, RepoError>>()?;
        out.sort_by_key(|s| s.id);
        Ok(out)
    }
}

impl Store {
    /// Records many events in one transaction (group commit): one durable commit for the whole
    /// batch. Each result is what [`InboundRepo::record_inbound`] would have said for it.
    pub async fn record_inbound_many(
        &self,
        events: &[InboundRecord],
    ) -> Result<Vec<Recorded>, RepoError> {
        // Rows are written in key order, so that concurrent batches lock keys in one order and
        // never deadlock; the answers go back in the callers' order.
        let mut order: Vec<usize> = (0..events.len()).collect();
        order.sort_by(|a, b| {
            events[*a]
                .idempotency_key
                .as_str()
                .cmp(events[*b].idempotency_key.as_str())
        });
        let sorted: Vec<&InboundRecord> = order.iter().map(|i| &events[*i]).collect();
        let out = match &self.native_pg {
            Some(pg) => record_sorted_pg(pg, &sorted).await?,
            None => self.record_sorted(&sorted).await?,
        };
        let mut answers: Vec<Option<Recorded>> = vec![None; events.len()];
        for (at, r) in order.into_iter().zip(out) {
            answers[at] = Some(r);
        }
        answers
            .into_iter()
            .map(|r| r.ok_or_else(|| RepoError::Corrupt("an inbound answer went missing".into())))
            .collect()
    }

    /// [`record_inbound_many`](Self::record_inbound_many) through the pool: multi-row
    /// statements of up to 100 rows, `sorted` by key; the answers in that order.
    async fn record_sorted(&self, sorted: &[&InboundRecord]) -> Result<Vec<Recorded>, RepoError> {
        let mut tx = self.begin().await?;
        let mut out = Vec::with_capacity(sorted.len());
        for chunk in sorted.chunks(100) {
            // One multi-row statement per chunk; rows whose key exists come back missing.
            let mut sql = String::from(
                "INSERT INTO inbound (source, idempotency_key, actor, conversation, content, received_at) VALUES ",
            );
            for i in 0..chunk.len() {
                let b = i * 6;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!(
                    "(${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6
                ));
            }
            sql.push_str(" ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key");
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(e.source.as_str())
                    .bind(e.idempotency_key.as_str())
                    .bind(e.actor.as_str())
                    .bind(e.conversation.as_str())
                    .bind(e.content.as_str())
                    .bind(e.received_at.as_millis());
            }
            let rows = q.fetch_all(&mut *tx).await.map_err(db_err)?;
            let mut new_ids = std::collections::HashMap::with_capacity(rows.len());
            for r in rows {
                let key: String = r.try_get("idempotency_key").map_err(db_err)?;
                new_ids.insert(key, r.try_get::<i64, _>("id").map_err(db_err)?);
            }
            // The keys that were not inserted are read back in one query.
            let mut seen = std::collections::HashSet::new();
            let missing: Vec<&str> = chunk
                .iter()
                .map(|e| e.idempotency_key.as_str())
                .filter(|k| !new_ids.contains_key(*k) && seen.insert(*k))
                .collect();
            let mut existing = std::collections::HashMap::with_capacity(missing.len());
            if !missing.is_empty() {
                let mut sql = String::from(
                    "SELECT id, idempotency_key, processed_at, response FROM inbound WHERE idempotency_key IN (",
                );
                for i in 0..missing.len() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("${}", i + 1));
                }
                sql.push(')');
                let mut q = sqlx::query(&sql);
                for k in &missing {
                    q = q.bind(*k);
                }
                for r in q.fetch_all(&mut *tx).await.map_err(db_err)? {
                    let key: String = r.try_get("idempotency_key").map_err(db_err)?;
                    existing.insert(
                        key,
                        (
                            InboundId(r.try_get("id").map_err(db_err)?),
                            r.try_get::<Option<i64>, _>("processed_at")
                                .map_err(db_err)?
                                .is_some(),
                            r.try_get::<Option<String>, _>("response").map_err(db_err)?,
                        ),
                    );
                }
            }
            answer_chunk(chunk, new_ids, existing, &mut out)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(out)
    }
}

/// What each event of a chunk gets: `New` with the id it was inserted under (`new_ids`), or
/// `Duplicate` with what was stored before (`existing`). A key repeated inside one chunk is new
/// once, then a duplicate.
fn answer_chunk(
    chunk: &[&InboundRecord],
    mut new_ids: std::collections::HashMap<String, i64>,
    mut existing: std::collections::HashMap<String, (InboundId, bool, Option<String>)>,
    out: &mut Vec<Recorded>,
) -> Result<(), RepoError> {
    for e in chunk {
        let key = e.idempotency_key.as_str();
        if let Some(id) = new_ids.remove(key) {
            existing.insert(key.to_owned(), (InboundId(id), false, None));
            out.push(Recorded::New(InboundId(id)));
            continue;
        }
        let (id, processed, response) = existing
            .get(key)
            .cloned()
            .ok_or_else(|| RepoError::Corrupt(format!("inbound event `{key}` vanished")))?;
        out.push(Recorded::Duplicate {
            id,
            processed,
            response,
        });
    }
    Ok(())
}

/// [`Store::record_inbound_many`] on PostgreSQL's own driver: the batch's columns bound as six
/// arrays and inserted with `UNNEST` in one statement, whatever the batch's size (one
/// prepared statement, planned once per connection), then the keys already there read back
/// with `= ANY`; one transaction. `sorted` is in key order, so concurrent batches lock keys in
/// one order.
async fn record_sorted_pg(
    pg: &sqlx::PgPool,
    sorted: &[&InboundRecord],
) -> Result<Vec<Recorded>, RepoError> {
    let mut sources = Vec::with_capacity(sorted.len());
    let mut keys = Vec::with_capacity(sorted.len());
    let mut actors = Vec::with_capacity(sorted.len());
    let mut conversations = Vec::with_capacity(sorted.len());
    let mut contents = Vec::with_capacity(sorted.len());
    let mut received = Vec::with_capacity(sorted.len());
    for e in sorted {
        sources.push(e.source.as_str());
        keys.push(e.idempotency_key.as_str());
        actors.push(e.actor.as_str());
        conversations.push(e.conversation.as_str());
        contents.push(e.content.as_str());
        received.push(e.received_at.as_millis());
    }
    let mut tx = pg.begin().await.map_err(db_err)?;
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "INSERT INTO inbound (source, idempotency_key, actor, conversation, content, received_at) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[]) \
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING id, idempotency_key",
    )
    .bind(&sources)
    .bind(&keys)
    .bind(&actors)
    .bind(&conversations)
    .bind(&contents)
    .bind(&received)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    let new_ids: std::collections::HashMap<String, i64> =
        rows.into_iter().map(|(id, key)| (key, id)).collect();
    let mut seen = std::collections::HashSet::new();
    let missing: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| !new_ids.contains_key(*k) && seen.insert(*k))
        .collect();
    let mut existing = std::collections::HashMap::with_capacity(missing.len());
    if !missing.is_empty() {
        let rows: Vec<(i64, String, Option<i64>, Option<String>)> = sqlx::query_as(
            "SELECT id, idempotency_key, processed_at, response FROM inbound WHERE idempotency_key = ANY($1)",
        )
        .bind(&missing)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?;
        for (id, key, processed, response) in rows {
            existing.insert(key, (InboundId(id), processed.is_some(), response));
        }
    }
    let mut out = Vec::with_capacity(sorted.len());
    answer_chunk(sorted, new_ids, existing, &mut out)?;
    tx.commit().await.map_err(db_err)?;
    Ok(out)
}

type Pending = crate::direct::Pending;

/// How many group-commit batches may be written at once through the pool.
pub(crate) const WRITERS_IN_FLIGHT: usize = 4;

/// Group commit for inbound events: concurrent `record_inbound` calls are gathered and written
/// in one transaction, and each caller is answered only after that transaction committed, so
/// nothing is acknowledged before it is durable. Everything else goes straight to the store.
///
/// On an SQLite file the writer is a thread with its own connection (see `direct`); on
/// PostgreSQL it is a task on the current tokio runtime using the pool.
#[derive(Clone)]
pub struct GroupCommit {
    store: Store,
    tx: tokio::sync::mpsc::Sender<Pending>,
}

impl GroupCommit {
    /// Starts the writer (on SQLite a thread; otherwise a task on the current tokio
    /// runtime); at most `max_batch` events per commit.
    pub fn start(store: Store, max_batch: usize) -> Self {
        if let Some(direct) = &store.direct {
            match direct.start_writer(max_batch) {
                Ok(tx) => return Self { store, tx },
                Err(e) => tracing::warn!(
                    error = %e,
                    "cannot start the SQLite inbound writer thread; writing through the pool"
                ),
            }
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Pending>(max_batch.max(1) * 4);
        let writer = store.clone();
        // Several batches in flight at once: while one waits for its commit to reach the disk,
        // the next is already being written (the database flushes concurrent commits together).
        let in_flight = Arc::new(tokio::sync::Semaphore::new(WRITERS_IN_FLIGHT));
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let Ok(permit) = in_flight.clone().acquire_owned().await else {
                    return;
                };
                let mut batch = vec![first];
                while batch.len() < max_batch.max(1) {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                let writer = writer.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    let (events, replies): (Vec<InboundRecord>, Vec<_>) = batch.into_iter().unzip();
                    match writer.record_inbound_many(&events).await {
                        Ok(results) => {
                            for (reply, r) in replies.into_iter().zip(results) {
                                let _ = reply.send(Ok(r));
                            }
                        }
                        Err(e) => {
                            let msg = e.to_string();
                            for reply in replies {
                                let _ = reply.send(Err(RepoError::Unavailable(msg.clone())));
                            }
                        }
                    }
                });
            }
        });
        Self { store, tx }
    }
}

#[async_trait]
impl InboundRepo for GroupCommit {
    async fn record_inbound(&self, event: &InboundRecord) -> Result<Recorded, RepoError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx
            .send((event.clone(), reply))
            .await
            .map_err(|_| RepoError::Unavailable("the inbound writer stopped".into()))?;
        answer
            .await
            .map_err(|_| RepoError::Unavailable("the inbound writer stopped".into()))?
    }

    async fn complete_inbound(
        &self,
        id: InboundId,
        response: Option<&str>,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        self.store.complete_inbound(id, response, now).await
    }

    async fn answer_inbound(
        &self,
        id: InboundId,
        response: &str,
        reply: Option<&KeyedOutbound>,
        now: Timestamp,
    ) -> Result<Answered, RepoError> {
        self.store.answer_inbound(id, response, reply, now).await
    }

    async fn release_answer(
        &self,
        id: InboundId,
        response: &str,
        reply: Option<&KeyedOutbound>,
        again: bool,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        self.store
            .release_answer(id, response, reply, again, now)
            .await
    }

    async fn claim_inbound(
        &self,
        source: &str,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<StoredInbound>, RepoError> {
        self.store
            .claim_inbound(source, owner, now, lease, limit)
            .await
    }
}
