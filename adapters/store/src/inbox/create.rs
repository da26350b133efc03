//! Creating threads: one, or many in one transaction (the commerce processor's batches), each
//! with its audit row and an outbox post per place its workspace's threads are shown.

use super::audit;
use crate::{Tx, db_err};
use krake_core::inbox::{NewThread, ThreadId};
use krake_core::outbox::OutboxPayload;
use krake_core::ports::{RepoError, WriteCtx};
use krake_core::time::Timestamp;
use sqlx::Row;

/// Inserts a thread (and its PostThread outbox rows). A thread whose origin key exists is not
/// inserted again: the existing id comes back with `false`.
pub(crate) async fn insert_thread(
    conn: &mut Tx,
    new: &NewThread,
    now: Timestamp,
) -> Result<(ThreadId, bool), RepoError> {
    let action = match &new.action {
        Some(a) => Some(serde_json::to_string(a).map_err(|e| RepoError::Corrupt(e.to_string()))?),
        None => None,
    };
    let approvers =
        serde_json::to_string(&new.approvers).map_err(|e| RepoError::Corrupt(e.to_string()))?;
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO threads (workspace, kind, status, origin, agent, title, body, action, approvers, expires_at, timeout_route, version, created_at, updated_at, origin_key) \
         VALUES ($1, $2, 'open', $3, $4, $5, $6, $7, $8, $9, $10, 1, $11, $11, $12) ON CONFLICT (origin_key) DO NOTHING RETURNING id",
    )
    .bind(new.workspace.as_str())
    .bind(new.kind.as_str())
    .bind(new.origin.as_str())
    .bind(new.agent.clone())
    .bind(new.title.as_str())
    .bind(new.body.as_str())
    .bind(action)
    .bind(approvers)
    .bind(new.expires_at.map(Timestamp::as_millis))
    .bind(new.timeout_route.as_str())
    .bind(now.as_millis())
    .bind(new.origin_key.clone())
    .fetch_optional(&mut **conn)
    .await
    .map_err(db_err)?;
    let Some(id) = id else {
        let existing: i64 = sqlx::query_scalar("SELECT id FROM threads WHERE origin_key = $1")
            .bind(new.origin_key.clone())
            .fetch_one(&mut **conn)
            .await
            .map_err(db_err)?;
        return Ok((ThreadId(existing), false));
    };
    let id = ThreadId(id);
    for d in &new.post_to {
        crate::outbox::insert(conn, d, &OutboxPayload::PostThread { thread: id }, now).await?;
    }
    crate::visitors::shown_to_visitors(conn, id, &new.post_to).await?;
    Ok((id, true))
}

/// Inserts a thread with its audit row, inside the caller's transaction.
pub(crate) async fn create_in(
    conn: &mut Tx,
    new: &NewThread,
    ctx: &WriteCtx,
) -> Result<ThreadId, RepoError> {
    let (id, created) = insert_thread(conn, new, ctx.now).await?;
    if created {
        audit(
            conn,
            id,
            ctx,
            "created",
            &format!("{} in {}: {}", new.kind, new.workspace, new.title),
        )
        .await?;
    }
    Ok(id)
}

/// Creates many automation threads (each with its `origin_key`) in the caller's transaction,
/// a few statements per 50 threads instead of three per thread: the threads, their audit rows
/// and their outbox rows each in multi-row inserts. A key that exists opens nothing, as in
/// [`create_in`]. Threads without a key go through [`create_in`] one by one.
pub(crate) async fn create_many_in(
    conn: &mut Tx,
    items: &[(&NewThread, &WriteCtx)],
) -> Result<(), RepoError> {
    let (keyed, single): (Vec<_>, Vec<_>) = items.iter().partition(|(t, _)| t.origin_key.is_some());
    for (t, ctx) in single {
        create_in(conn, t, ctx).await?;
    }
    for chunk in keyed.chunks(50) {
        let mut rows = Vec::with_capacity(chunk.len());
        for (t, ctx) in chunk {
            let action = match &t.action {
                Some(a) => {
                    Some(serde_json::to_string(a).map_err(|e| RepoError::Corrupt(e.to_string()))?)
                }
                None => None,
            };
            let approvers = serde_json::to_string(&t.approvers)
                .map_err(|e| RepoError::Corrupt(e.to_string()))?;
            rows.push((t, ctx, action, approvers));
        }
        let values = (0..rows.len())
            .map(|i| {
                let b = i * 12;
                format!(
                    "(${}, ${}, 'open', ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, 1, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8,
                    b + 9,
                    b + 10,
                    b + 11,
                    b + 11,
                    b + 12
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "INSERT INTO threads (workspace, kind, status, origin, agent, title, body, action, approvers, expires_at, timeout_route, version, created_at, updated_at, origin_key) \
             VALUES {values} ON CONFLICT (origin_key) DO NOTHING RETURNING id, origin_key"
        );
        let mut q = sqlx::query(&sql);
        for (t, ctx, action, approvers) in &rows {
            q = q
                .bind(t.workspace.as_str())
                .bind(t.kind.as_str())
                .bind(t.origin.as_str())
                .bind(t.agent.clone())
                .bind(t.title.as_str())
                .bind(t.body.as_str())
                .bind(action.clone())
                .bind(approvers.as_str())
                .bind(t.expires_at.map(Timestamp::as_millis))
                .bind(t.timeout_route.as_str())
                .bind(ctx.now.as_millis())
                .bind(t.origin_key.clone());
        }
        let mut created = std::collections::HashMap::new();
        for r in q.fetch_all(&mut **conn).await.map_err(db_err)? {
            let key: String = r.try_get("origin_key").map_err(db_err)?;
            created.insert(key, ThreadId(r.try_get("id").map_err(db_err)?));
        }
        // Audit and outbox rows for the threads created now (not for keys that existed).
        let mut audits = Vec::new();
        let mut posts = Vec::new();
        for (t, ctx, _, _) in &rows {
            let Some(id) = t.origin_key.as_ref().and_then(|k| created.remove(k)) else {
                continue;
            };
            audits.push((
                id,
                *ctx,
                format!("{} in {}: {}", t.kind, t.workspace, t.title),
            ));
            for d in &t.post_to {
                let payload = serde_json::to_string(&OutboxPayload::PostThread { thread: id })
                    .map_err(|e| RepoError::Corrupt(e.to_string()))?;
                posts.push((d, payload, ctx.now));
            }
        }
        if !audits.is_empty() {
            let values = (0..audits.len())
                .map(|i| {
                    let b = i * 6;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO audit_log (thread_id, actor, front, action, detail, at) VALUES {values}"
            );
            let mut q = sqlx::query(&sql);
            for (id, ctx, detail) in &audits {
                q = q
                    .bind(id.0)
                    .bind(ctx.actor.user.as_str())
                    .bind(ctx.actor.front.as_str())
                    .bind("created")
                    .bind(detail.as_str())
                    .bind(ctx.now.as_millis());
            }
            q.execute(&mut **conn).await.map_err(db_err)?;
        }
        for chunk in posts.chunks(100) {
            let values = (0..chunk.len())
                .map(|i| {
                    let b = i * 4;
                    format!(
                        "(${}, ${}, ${}, 'pending', 0, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 4
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "INSERT INTO outbox (destination, front, payload, state, attempts, next_attempt_at, created_at) VALUES {values}"
            );
            let mut q = sqlx::query(&sql);
            for (d, payload, now) in chunk {
                q = q
                    .bind(d.as_str())
                    .bind(d.front())
                    .bind(payload.as_str())
                    .bind(now.as_millis());
            }
            q.execute(&mut **conn).await.map_err(db_err)?;
            for (d, _, _) in chunk {
                conn.queued(d.front());
            }
        }
    }
    Ok(())
}
