//! [`LearnRepo`] on SQL: files sent to be learned, as durable jobs claimed with a lease, and
//! the sources they became (`knowledge_sources`), with who added and forgot what
//! (`knowledge_audit`).

use crate::inbound::{mark_applied, write_answer};
use crate::{Backend, Store, Tx, db_err};
use async_trait::async_trait;
use krake_core::actor::Front;
use krake_core::inbound::Change;
use krake_core::knowledge::learn::{
    FileBody, Finish, LearnId, LearnJob, LearnRepo, NewLearn, Source, SourceStatus,
};
use krake_core::outbox::{Destination, KeyedOutbound};
use krake_core::ports::{RepoError, WriteCtx};
use krake_core::time::Timestamp;
use krake_core::workspace::WorkspaceSlug;
use sqlx::Row;
use std::time::Duration;

const SOURCE_COLUMNS: &str = "id, workspace, name, title, kind, added_by, front, size, passages, \
     status, error, created_at, updated_at";

fn corrupt(what: &str, value: &str) -> RepoError {
    RepoError::Corrupt(format!("knowledge source {what} `{value}`"))
}

fn source_row(r: &sqlx::any::AnyRow) -> Result<Source, RepoError> {
    let workspace: String = r.try_get("workspace").map_err(db_err)?;
    let status: String = r.try_get("status").map_err(db_err)?;
    Ok(Source {
        id: LearnId(r.try_get("id").map_err(db_err)?),
        workspace: WorkspaceSlug::parse(&workspace)
            .map_err(|_| corrupt("workspace", &workspace))?,
        name: r.try_get("name").map_err(db_err)?,
        title: r.try_get("title").map_err(db_err)?,
        kind: r.try_get("kind").map_err(db_err)?,
        added_by: r.try_get("added_by").map_err(db_err)?,
        front: r.try_get("front").map_err(db_err)?,
        size: r
            .try_get::<Option<i64>, _>("size")
            .map_err(db_err)?
            .and_then(|s| u64::try_from(s).ok()),
        passages: r.try_get("passages").map_err(db_err)?,
        status: SourceStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
        error: r.try_get("error").map_err(db_err)?,
        created_at: Timestamp::from_millis(r.try_get("created_at").map_err(db_err)?),
        updated_at: Timestamp::from_millis(r.try_get("updated_at").map_err(db_err)?),
    })
}

fn job_row(r: &sqlx::any::AnyRow) -> Result<LearnJob, RepoError> {
    let workspace: String = r.try_get("workspace").map_err(db_err)?;
    let front: String = r.try_get("front").map_err(db_err)?;
    let answer_to: Option<String> = r.try_get("answer_to").map_err(db_err)?;
    Ok(LearnJob {
        id: LearnId(r.try_get("id").map_err(db_err)?),
        workspace: WorkspaceSlug::parse(&workspace)
            .map_err(|_| corrupt("workspace", &workspace))?,
        name: r.try_get("name").map_err(db_err)?,
        size: r
            .try_get::<Option<i64>, _>("size")
            .map_err(db_err)?
            .and_then(|s| u64::try_from(s).ok()),
        body: r.try_get("body").map_err(db_err)?,
        locator: r.try_get("locator").map_err(db_err)?,
        added_by: r.try_get("added_by").map_err(db_err)?,
        front: Front::parse(&front).ok_or_else(|| corrupt("front", &front))?,
        answer_to: match answer_to {
            Some(d) => Some(Destination::parse(&d).map_err(|_| corrupt("destination", &d))?),
            None => None,
        },
        progress_message: r.try_get("progress_message").map_err(db_err)?,
        attempts: r.try_get("attempts").map_err(db_err)?,
    })
}

async fn audit(
    tx: &mut Tx,
    workspace: &WorkspaceSlug,
    source: &str,
    actor: &str,
    front: &str,
    action: &str,
    at: Timestamp,
) -> Result<(), RepoError> {
    sqlx::query(
        "INSERT INTO knowledge_audit (workspace, source, actor, front, action, at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(workspace.as_str())
    .bind(source)
    .bind(actor)
    .bind(front)
    .bind(action)
    .bind(at.as_millis())
    .execute(&mut **tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

impl Store {
    /// Who added and forgot which file of `workspace`, oldest first: (source, actor, front,
    /// action).
    pub async fn knowledge_audit(
        &self,
        workspace: &WorkspaceSlug,
    ) -> Result<Vec<(String, String, String, String)>, RepoError> {
        let rows = sqlx::query(
            "SELECT source, actor, front, action FROM knowledge_audit WHERE workspace = $1 ORDER BY id",
        )
        .bind(workspace.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("source").map_err(db_err)?,
                    r.try_get("actor").map_err(db_err)?,
                    r.try_get("front").map_err(db_err)?,
                    r.try_get("action").map_err(db_err)?,
                ))
            })
            .collect()
    }
}

#[async_trait]
impl LearnRepo for Store {
    async fn enqueue_learn(&self, new: &NewLearn, ctx: &WriteCtx) -> Result<LearnId, RepoError> {
        let (body, locator) = match &new.file.body {
            FileBody::Bytes(b) => (Some(b.as_slice()), None),
            FileBody::Remote(r) => (None, Some(r.as_str())),
        };
        let size = match &new.file.body {
            FileBody::Bytes(b) => Some(b.len() as u64),
            FileBody::Remote(_) => new.file.size,
        }
        .and_then(|s| i64::try_from(s).ok());
        let mut tx = self.begin().await?;
        mark_applied(&mut tx, ctx).await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO knowledge_sources (workspace, name, added_by, front, size, locator, body, \
               status, answer_to, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'queued', $8, $9, $9) RETURNING id",
        )
        .bind(new.workspace.as_str())
        .bind(&new.file.name)
        .bind(&new.added_by)
        .bind(new.front.as_str())
        .bind(size)
        .bind(locator)
        .bind(body)
        .bind(new.answer_to.as_ref().map(Destination::as_str))
        .bind(ctx.now.as_millis())
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        write_answer(&mut tx, ctx, Change::Queued(LearnId(id))).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(LearnId(id))
    }

    async fn claim_learn(
        &self,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Option<LearnJob>, RepoError> {
        let skip = if self.backend == Backend::Postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE knowledge_sources SET lease_until = $1, attempts = attempts + 1 \
             WHERE id = (SELECT id FROM knowledge_sources WHERE status = 'queued' \
                 AND lease_until <= $2 ORDER BY id LIMIT 1{skip}) \
               AND status = 'queued' AND lease_until <= $3 \
             RETURNING id, workspace, name, size, body, locator, added_by, front, answer_to, \
               progress_message, attempts"
        );
        let mut tx = self.begin().await?;
        let row = sqlx::query(&sql)
            .bind(now.plus(lease).as_millis())
            .bind(now.as_millis())
            .bind(now.as_millis())
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        row.as_ref().map(job_row).transpose()
    }

    async fn save_body(
        &self,
        id: LearnId,
        bytes: &[u8],
        hash: &str,
        keep: bool,
    ) -> Result<(), RepoError> {
        let keep = keep.then_some(bytes);
        sqlx::query(
            "UPDATE knowledge_sources SET body = COALESCE($1, body), hash = $2, size = $3 \
             WHERE id = $4 AND status = 'queued'",
        )
        .bind(keep)
        .bind(hash)
        .bind(i64::try_from(bytes.len()).unwrap_or(i64::MAX))
        .bind(id.0)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn learn_progress(
        &self,
        id: LearnId,
        done: usize,
        total: usize,
        message: Option<&str>,
        lease_until: Timestamp,
    ) -> Result<(), RepoError> {
        sqlx::query(
            "UPDATE knowledge_sources SET done = $1, passages = $2, \
               progress_message = COALESCE($3, progress_message), lease_until = $4 \
             WHERE id = $5 AND status = 'queued'",
        )
        .bind(i64::try_from(done).unwrap_or(i64::MAX))
        .bind(i64::try_from(total).unwrap_or(i64::MAX))
        .bind(message)
        .bind(lease_until.as_millis())
        .bind(id.0)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn finish_learn(
        &self,
        id: LearnId,
        finish: &Finish,
        answer: Option<&KeyedOutbound>,
        now: Timestamp,
    ) -> Result<(), RepoError> {
        let mut tx = self.begin().await?;
        let row = sqlx::query(
            "SELECT workspace, name, added_by, front, body FROM knowledge_sources WHERE id = $1 AND status = 'queued'",
        )
        .bind(id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        // Finished already (by another process that took the job over): nothing twice.
        let Some(row) = row else {
            return Ok(());
        };
        let workspace: String = row.try_get("workspace").map_err(db_err)?;
        let ws = WorkspaceSlug::parse(&workspace).map_err(|_| corrupt("workspace", &workspace))?;
        let name: String = row.try_get("name").map_err(db_err)?;
        match finish {
            Finish::Learned {
                title,
                kind,
                text,
                passages,
            } => {
                sqlx::query(
                    "UPDATE knowledge_sources SET status = 'replaced', updated_at = $1 \
                     WHERE workspace = $2 AND name = $3 AND status = 'learned' AND id <> $4",
                )
                .bind(now.as_millis())
                .bind(ws.as_str())
                .bind(&name)
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                sqlx::query(
                    "UPDATE knowledge_sources SET status = 'learned', title = $1, kind = $2, \
                       text = $3, passages = $4, done = $4, body = NULL, error = NULL, updated_at = $5 \
                     WHERE id = $6",
                )
                .bind(title)
                .bind(kind)
                .bind(text)
                .bind(i64::try_from(*passages).unwrap_or(i64::MAX))
                .bind(now.as_millis())
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                let added_by: String = row.try_get("added_by").map_err(db_err)?;
                let front: String = row.try_get("front").map_err(db_err)?;
                audit(&mut tx, &ws, &name, &added_by, &front, "learned", now).await?;
            }
            Finish::Duplicate { .. } | Finish::Refused(_) => {
                let (status, error) = match finish {
                    Finish::Refused(why) => ("refused", Some(why.as_str())),
                    _ => ("duplicate", None),
                };
                sqlx::query(
                    "UPDATE knowledge_sources SET status = $1, error = $2, body = NULL, updated_at = $3 \
                     WHERE id = $4",
                )
                .bind(status)
                .bind(error)
                .bind(now.as_millis())
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            }
        }
        if let Some(a) = answer {
            crate::outbox::insert_once(
                &mut tx,
                &a.message.destination,
                &a.message.payload,
                &a.key,
                now,
            )
            .await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    async fn learned_with_hash(
        &self,
        workspace: &WorkspaceSlug,
        hash: &str,
    ) -> Result<Option<Source>, RepoError> {
        let row = sqlx::query(&format!(
            "SELECT {SOURCE_COLUMNS} FROM knowledge_sources \
             WHERE workspace = $1 AND hash = $2 AND status = 'learned' ORDER BY id LIMIT 1"
        ))
        .bind(workspace.as_str())
        .bind(hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.as_ref().map(source_row).transpose()
    }

    async fn sources(&self, workspace: &WorkspaceSlug) -> Result<Vec<Source>, RepoError> {
        let rows = sqlx::query(&format!(
            "SELECT {SOURCE_COLUMNS} FROM knowledge_sources \
             WHERE workspace = $1 AND status IN ('learned', 'queued') ORDER BY id DESC LIMIT 500"
        ))
        .bind(workspace.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(source_row).collect()
    }

    async fn source_text(
        &self,
        workspace: &WorkspaceSlug,
        name: &str,
    ) -> Result<Option<(Source, String)>, RepoError> {
        let row = sqlx::query(&format!(
            "SELECT {SOURCE_COLUMNS}, text FROM knowledge_sources \
             WHERE workspace = $1 AND name = $2 AND status = 'learned' ORDER BY id DESC LIMIT 1"
        ))
        .bind(workspace.as_str())
        .bind(name)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        let Some(row) = row else { return Ok(None) };
        let text: Option<String> = row.try_get("text").map_err(db_err)?;
        Ok(Some((source_row(&row)?, text.unwrap_or_default())))
    }

    async fn forget_source(
        &self,
        workspace: &WorkspaceSlug,
        name: &str,
        ctx: &WriteCtx,
    ) -> Result<Option<Source>, RepoError> {
        let mut tx = self.begin().await?;
        mark_applied(&mut tx, ctx).await?;
        let row = sqlx::query(&format!(
            "UPDATE knowledge_sources SET status = 'forgotten', text = NULL, updated_at = $1 \
             WHERE workspace = $2 AND name = $3 AND status = 'learned' RETURNING {SOURCE_COLUMNS}"
        ))
        .bind(ctx.now.as_millis())
        .bind(workspace.as_str())
        .bind(name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        // Nothing to forget: nothing is written (the accept path answers on its own).
        let Some(row) = row else {
            return Ok(None);
        };
        audit(
            &mut tx,
            workspace,
            name,
            ctx.actor.user.as_str(),
            ctx.actor.front.as_str(),
            "forgot",
            ctx.now,
        )
        .await?;
        write_answer(&mut tx, ctx, Change::Forgot).await?;
        tx.commit().await.map_err(db_err)?;
        source_row(&row).map(Some)
    }
}
