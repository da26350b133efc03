//! The To Do inbox on SQL. Every change runs in one transaction with its audit row, the
//! inbound event's processed mark and an outbox edit per copy of the thread.

use crate::inbound::{mark_applied, write_answer};
use crate::{Backend, Store, Tx, corrupt, db_err};
use async_trait::async_trait;
use krake_core::actor::{Front, UserName};
use krake_core::delivery::Routes;
use krake_core::inbound::Change;
use krake_core::inbox::{
    Approvers, AuditEntry, Decision, DecisionOutcome, Expired, NewThread, Origin, Thread,
    ThreadFilter, ThreadId, ThreadKind, ThreadReply, ThreadStatus, TimeoutRoute,
};
use krake_core::outbox::{Destination, OutboxPayload};
use krake_core::ports::{ArchiveOutcome, InboxRepo, RepoError, ThreadCopy, WriteCtx};
use krake_core::time::Timestamp;
use krake_core::workspace::WorkspaceSlug;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

mod create;
pub(crate) use create::{create_in, create_many_in, insert_thread};

pub(crate) const THREAD_COLUMNS: &str = "id, workspace, kind, status, origin, agent, title, body, action, approvers, \
     expires_at, timeout_route, decided_by, reason, version, created_at, updated_at";

/// The columns of a thread row as stored, before they are checked (shared by the sqlx reads
/// and the direct SQLite reads of [`crate::direct`]).
pub(crate) struct ThreadRow {
    pub(crate) id: i64,
    pub(crate) workspace: String,
    pub(crate) kind: String,
    pub(crate) status: String,
    pub(crate) origin: String,
    pub(crate) agent: Option<String>,
    pub(crate) title: String,
    pub(crate) body: String,
    pub(crate) action: Option<String>,
    pub(crate) approvers: String,
    pub(crate) expires_at: Option<i64>,
    pub(crate) timeout_route: String,
    pub(crate) decided_by: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) version: i64,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

impl ThreadRow {
    /// The thread these columns describe (no approvals, no replies), or what is corrupt.
    pub(crate) fn into_thread(self) -> Result<Thread, RepoError> {
        let ThreadRow {
            id,
            workspace: ws,
            kind,
            status,
            origin,
            agent,
            title,
            body,
            action,
            approvers,
            expires_at,
            timeout_route: route,
            decided_by,
            reason,
            version,
            created_at,
            updated_at,
        } = self;
        Ok(Thread {
            id: ThreadId(id),
            workspace: WorkspaceSlug::parse(&ws).map_err(|_| corrupt("workspace", &ws))?,
            kind: ThreadKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
            status: ThreadStatus::parse(&status).ok_or_else(|| corrupt("status", &status))?,
            origin: Origin::parse(&origin).ok_or_else(|| corrupt("origin", &origin))?,
            agent,
            title,
            body,
            action: match action {
                Some(a) => Some(serde_json::from_str(&a).map_err(|_| corrupt("action", &a))?),
                None => None,
            },
            approvers: serde_json::from_str(&approvers)
                .map_err(|_| corrupt("approvers", &approvers))?,
            expires_at: expires_at.map(Timestamp::from_millis),
            timeout_route: TimeoutRoute::parse(&route)
                .ok_or_else(|| corrupt("timeout_route", &route))?,
            decided_by: match decided_by {
                Some(u) => Some(UserName::parse(&u).map_err(|_| corrupt("decided_by", &u))?),
                None => None,
            },
            reason,
            approvals: Vec::new(),
            version,
            created_at: Timestamp::from_millis(created_at),
            updated_at: Timestamp::from_millis(updated_at),
            replies: Vec::new(),
        })
    }
}

fn thread_from_row(row: &AnyRow) -> Result<Thread, RepoError> {
    let get_s = |c: &str| row.try_get::<String, _>(c).map_err(db_err);
    ThreadRow {
        id: row.try_get("id").map_err(db_err)?,
        workspace: get_s("workspace")?,
        kind: get_s("kind")?,
        status: get_s("status")?,
        origin: get_s("origin")?,
        agent: row.try_get("agent").map_err(db_err)?,
        title: get_s("title")?,
        body: get_s("body")?,
        action: row.try_get("action").map_err(db_err)?,
        approvers: get_s("approvers")?,
        expires_at: row.try_get("expires_at").map_err(db_err)?,
        timeout_route: get_s("timeout_route")?,
        decided_by: row.try_get("decided_by").map_err(db_err)?,
        reason: row.try_get("reason").map_err(db_err)?,
        version: row.try_get("version").map_err(db_err)?,
        created_at: row.try_get("created_at").map_err(db_err)?,
        updated_at: row.try_get("updated_at").map_err(db_err)?,
    }
    .into_thread()
}

/// A value bound to a list query.
pub(crate) enum ListBind {
    /// Text.
    Text(String),
    /// An integer.
    Int(i64),
}

/// The listing query of `filter` (`$1`, `$2`… in order of appearance) with its values, or
/// `None` when nothing can match (no visible workspace).
pub(crate) fn list_query(filter: &ThreadFilter) -> Option<(String, Vec<ListBind>)> {
    let mut sql = format!("SELECT {THREAD_COLUMNS} FROM threads WHERE 1 = 1");
    let mut binds: Vec<ListBind> = Vec::new();
    let mut push = |sql: &mut String, clause: &str, v: ListBind| {
        binds.push(v);
        sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
    };
    if let Some(w) = &filter.workspace {
        push(
            &mut sql,
            " AND workspace = ?",
            ListBind::Text(w.to_string()),
        );
    }
    if let Some(k) = filter.kind {
        push(&mut sql, " AND kind = ?", ListBind::Text(k.to_string()));
    }
    match filter.status {
        Some(s) => push(&mut sql, " AND status = ?", ListBind::Text(s.to_string())),
        None => sql.push_str(" AND status <> 'archived'"),
    }
    if let Some(visible) = &filter.visible {
        if visible.is_empty() {
            return None;
        }
        sql.push_str(" AND workspace IN (");
        for (i, w) in visible.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            push(&mut sql, "?", ListBind::Text(w.to_string()));
        }
        sql.push(')');
    }
    if let Some(b) = filter.before {
        push(&mut sql, " AND id < ?", ListBind::Int(b.0));
    }
    let limit = if filter.limit == 0 {
        50
    } else {
        filter.limit.min(500)
    };
    sql.push_str(&format!(" ORDER BY id DESC LIMIT {limit}"));
    Some((sql, binds))
}

/// Reads a thread; inside a write transaction on PostgreSQL (`lock`) the row is locked until
/// commit. SQLite's `BEGIN IMMEDIATE` already serialises writers.
async fn load(
    conn: &mut AnyConnection,
    lock: bool,
    id: ThreadId,
    full: bool,
) -> Result<Option<Thread>, RepoError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {THREAD_COLUMNS} FROM threads WHERE id = $1{lock}");
    let Some(row) = sqlx::query(&sql)
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?
    else {
        return Ok(None);
    };
    let mut th = thread_from_row(&row)?;
    let approvals: Vec<String> = sqlx::query_scalar(
        "SELECT user_name FROM thread_approvals WHERE thread_id = $1 ORDER BY at, user_name",
    )
    .bind(id.0)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    th.approvals = approvals
        .iter()
        .filter_map(|u| UserName::parse(u).ok())
        .collect();
    if full {
        let rows = sqlx::query(
            "SELECT author, front, text, at FROM thread_replies WHERE thread_id = $1 ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
        for r in rows {
            let author: String = r.try_get("author").map_err(db_err)?;
            let front: String = r.try_get("front").map_err(db_err)?;
            th.replies.push(ThreadReply {
                author: UserName::parse(&author).map_err(|_| corrupt("author", &author))?,
                front: Front::parse(&front).ok_or_else(|| corrupt("front", &front))?,
                text: r.try_get("text").map_err(db_err)?,
                at: Timestamp::from_millis(r.try_get("at").map_err(db_err)?),
            });
        }
    }
    Ok(Some(th))
}

pub(crate) async fn audit(
    conn: &mut AnyConnection,
    thread: ThreadId,
    ctx: &WriteCtx,
    action: &str,
    detail: &str,
) -> Result<(), RepoError> {
    sqlx::query("INSERT INTO audit_log (thread_id, actor, front, action, detail, at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(thread.0)
        .bind(ctx.actor.user.as_str())
        .bind(ctx.actor.front.as_str())
        .bind(action)
        .bind(detail)
        .bind(ctx.now.as_millis())
        .execute(&mut *conn)
        .await
        .map_err(db_err)?;
    Ok(())
}

/// Enqueues an edit for every place the thread is shown.
async fn edit_copies(
    conn: &mut Tx,
    thread: ThreadId,
    version: i64,
    now: Timestamp,
) -> Result<(), RepoError> {
    let rows = sqlx::query("SELECT destination, message_id FROM thread_copies WHERE thread_id = $1 ORDER BY destination")
        .bind(thread.0)
        .fetch_all(&mut **conn)
        .await
        .map_err(db_err)?;
    for r in rows {
        let dest: String = r.try_get("destination").map_err(db_err)?;
        let destination = Destination::parse(&dest).map_err(|_| corrupt("destination", &dest))?;
        let payload = OutboxPayload::EditThread {
            thread,
            message_id: r.try_get("message_id").map_err(db_err)?,
            version,
        };
        crate::outbox::insert(conn, &destination, &payload, now).await?;
    }
    Ok(())
}

impl Store {
    /// Whether reads inside write transactions take row locks (PostgreSQL only).
    fn locks(&self) -> bool {
        self.backend == Backend::Postgres
    }
}

#[async_trait]
impl InboxRepo for Store {
    async fn create(&self, new: &NewThread, ctx: &WriteCtx) -> Result<Thread, RepoError> {
        let mut tx = self.begin().await?;
        mark_applied(&mut tx, ctx).await?;
        let id = create_in(&mut tx, new, ctx).await?;
        let th = load(&mut tx, self.locks(), id, true)
            .await?
            .ok_or_else(|| RepoError::Corrupt("created thread vanished".into()))?;
        write_answer(&mut tx, ctx, Change::Created(&th)).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(th)
    }

    async fn get(&self, id: ThreadId) -> Result<Option<Thread>, RepoError> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        load(&mut conn, false, id, true).await
    }

    async fn list(&self, filter: &ThreadFilter) -> Result<Vec<Thread>, RepoError> {
        let Some((sql, binds)) = list_query(filter) else {
            return Ok(Vec::new());
        };
        if let Some(direct) = &self.direct {
            return direct.list_threads(sql, binds).await;
        }
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = match b {
                ListBind::Text(t) => q.bind(t),
                ListBind::Int(i) => q.bind(i),
            };
        }
        let rows = q.fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(thread_from_row).collect()
    }

    async fn reply(
        &self,
        id: ThreadId,
        text: &str,
        ctx: &WriteCtx,
    ) -> Result<Option<Thread>, RepoError> {
        let mut tx = self.begin().await?;
        let Some(th) = load(&mut tx, self.locks(), id, false).await? else {
            return Ok(None);
        };
        mark_applied(&mut tx, ctx).await?;
        sqlx::query("INSERT INTO thread_replies (thread_id, author, front, text, at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id.0)
            .bind(ctx.actor.user.as_str())
            .bind(ctx.actor.front.as_str())
            .bind(text)
            .bind(ctx.now.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let answers = th.kind == ThreadKind::Question && th.status == ThreadStatus::Open;
        if answers {
            sqlx::query("UPDATE threads SET status = 'answered', decided_by = $1, version = version + 1, updated_at = $2 WHERE id = $3")
                .bind(ctx.actor.user.as_str())
                .bind(ctx.now.as_millis())
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        } else {
            sqlx::query("UPDATE threads SET updated_at = $1 WHERE id = $2")
                .bind(ctx.now.as_millis())
                .bind(id.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        audit(&mut tx, id, ctx, "replied", text).await?;
        crate::visitors::pass_on_reply(&mut tx, id, text, ctx).await?;
        if answers {
            edit_copies(&mut tx, id, th.version + 1, ctx.now).await?;
        }
        let th = load(&mut tx, self.locks(), id, true).await?;
        if let Some(th) = &th {
            write_answer(&mut tx, ctx, Change::Replied(th)).await?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(th)
    }

    async fn decide(
        &self,
        id: ThreadId,
        decision: &Decision,
        expected_version: Option<i64>,
        ctx: &WriteCtx,
    ) -> Result<Option<DecisionOutcome>, RepoError> {
        let mut tx = self.begin().await?;
        let Some(th) = load(&mut tx, self.locks(), id, false).await? else {
            return Ok(None);
        };
        let stale = expected_version.is_some_and(|v| v != th.version);
        if th.kind != ThreadKind::Approval || th.status != ThreadStatus::Open || stale {
            return Ok(Some(DecisionOutcome::Refused(th)));
        }
        mark_applied(&mut tx, ctx).await?;
        let user = ctx.actor.user.as_str();
        let (status, action, detail) = match decision {
            Decision::Reject { reason } => {
                ("rejected", "rejected", reason.clone().unwrap_or_default())
            }
            Decision::Approve => {
                let inserted = "INSERT INTO thread_approvals (thread_id, user_name, at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
                let r = sqlx::query(inserted)
                    .bind(id.0)
                    .bind(user)
                    .bind(ctx.now.as_millis())
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                if r.rows_affected() == 0 {
                    tx.rollback().await.map_err(db_err)?;
                    return Ok(Some(DecisionOutcome::AlreadyCounted(th)));
                }
                let have = th.approvals.len() as u32 + 1;
                let needed = th.approvers.needed();
                if have < needed {
                    sqlx::query(
                        "UPDATE threads SET version = version + 1, updated_at = $1 WHERE id = $2",
                    )
                    .bind(ctx.now.as_millis())
                    .bind(id.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                    audit(
                        &mut tx,
                        id,
                        ctx,
                        "approval counted",
                        &format!("{have} of {needed}"),
                    )
                    .await?;
                    edit_copies(&mut tx, id, th.version + 1, ctx.now).await?;
                    let th = load(&mut tx, self.locks(), id, false)
                        .await?
                        .ok_or_else(|| RepoError::Corrupt("thread vanished".into()))?;
                    let outcome = DecisionOutcome::Counted {
                        thread: th,
                        missing: needed - have,
                    };
                    write_answer(&mut tx, ctx, Change::Decided(&outcome)).await?;
                    tx.commit().await.map_err(db_err)?;
                    return Ok(Some(outcome));
                }
                ("approved", "approved", String::new())
            }
        };
        let reason = match decision {
            Decision::Reject { reason } => reason.clone(),
            Decision::Approve => None,
        };
        // The compare-and-set: only an open thread at the version we read can be decided.
        let r = sqlx::query(
            "UPDATE threads SET status = $1, decided_by = $2, reason = $3, version = version + 1, updated_at = $4 \
             WHERE id = $5 AND status = 'open' AND version = $6",
        )
        .bind(status)
        .bind(user)
        .bind(reason)
        .bind(ctx.now.as_millis())
        .bind(id.0)
        .bind(th.version)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if r.rows_affected() == 0 {
            tx.rollback().await.map_err(db_err)?;
            let current = self
                .get(id)
                .await?
                .ok_or_else(|| RepoError::Corrupt("thread vanished".into()))?;
            return Ok(Some(DecisionOutcome::Refused(current)));
        }
        audit(&mut tx, id, ctx, action, &detail).await?;
        edit_copies(&mut tx, id, th.version + 1, ctx.now).await?;
        let th = load(&mut tx, self.locks(), id, true)
            .await?
            .ok_or_else(|| RepoError::Corrupt("thread vanished".into()))?;
        let outcome = DecisionOutcome::Decided(th);
        write_answer(&mut tx, ctx, Change::Decided(&outcome)).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(outcome))
    }

    async fn set_archived(
        &self,
        id: ThreadId,
        archived: bool,
        ctx: &WriteCtx,
    ) -> Result<Option<ArchiveOutcome>, RepoError> {
        let mut tx = self.begin().await?;
        let Some(th) = load(&mut tx, self.locks(), id, false).await? else {
            return Ok(None);
        };
        let is_archived = th.status == ThreadStatus::Archived;
        if is_archived == archived {
            return Ok(Some(ArchiveOutcome::Unchanged(th)));
        }
        mark_applied(&mut tx, ctx).await?;
        let sql = if archived {
            "UPDATE threads SET prev_status = status, status = 'archived', version = version + 1, updated_at = $1 WHERE id = $2"
        } else {
            "UPDATE threads SET status = COALESCE(prev_status, 'open'), prev_status = NULL, version = version + 1, updated_at = $1 WHERE id = $2"
        };
        sqlx::query(sql)
            .bind(ctx.now.as_millis())
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let action = if archived { "archived" } else { "unarchived" };
        audit(&mut tx, id, ctx, action, "").await?;
        edit_copies(&mut tx, id, th.version + 1, ctx.now).await?;
        let th = load(&mut tx, self.locks(), id, true)
            .await?
            .ok_or_else(|| RepoError::Corrupt("thread vanished".into()))?;
        let outcome = ArchiveOutcome::Changed(th);
        write_answer(&mut tx, ctx, Change::Archived(&outcome)).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(outcome))
    }

    async fn sweep_expired(
        &self,
        now: Timestamp,
        limit: u32,
        routes: &Routes,
    ) -> Result<Vec<Expired>, RepoError> {
        let ids: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM threads WHERE status = 'open' AND expires_at IS NOT NULL AND expires_at <= $1 ORDER BY id LIMIT {}",
            limit.clamp(1, 1000)
        ))
        .bind(now.as_millis())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        let ctx = WriteCtx {
            actor: krake_core::Actor::system(),
            inbound: None,
            now,
        };
        let mut out = Vec::new();
        for id in ids {
            let mut tx = self.begin().await?;
            // The compare-and-set makes each expiry happen once, whichever sweeper gets there first.
            let r = sqlx::query("UPDATE threads SET status = 'expired', version = version + 1, updated_at = $1 WHERE id = $2 AND status = 'open'")
                .bind(now.as_millis())
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            if r.rows_affected() == 0 {
                tx.rollback().await.map_err(db_err)?;
                continue;
            }
            let th = load(&mut tx, self.locks(), ThreadId(id), false)
                .await?
                .ok_or_else(|| RepoError::Corrupt("thread vanished".into()))?;
            audit(&mut tx, th.id, &ctx, "expired", th.timeout_route.as_str()).await?;
            edit_copies(&mut tx, th.id, th.version, now).await?;
            let escalation = if th.timeout_route == TimeoutRoute::Escalate {
                let mut new = NewThread::new(
                    th.workspace.clone(),
                    ThreadKind::Escalation,
                    format!("Expired undecided: #{} {}", th.id.0, th.title),
                    format!(
                        "Approval #{} expired at {} without a decision.\n\n{}",
                        th.id.0,
                        th.expires_at.unwrap_or(now).to_utc_string(),
                        th.body
                    ),
                );
                new.agent = th.agent.clone();
                new.approvers = Approvers::Role {
                    role: krake_core::Role::Owner,
                };
                new.post_to = routes.for_workspace(&th.workspace).to_vec();
                let (esc, _) = insert_thread(&mut tx, &new, now).await?;
                audit(
                    &mut tx,
                    esc,
                    &ctx,
                    "created",
                    &format!("escalation of expired #{}", th.id.0),
                )
                .await?;
                Some(esc)
            } else {
                None
            };
            tx.commit().await.map_err(db_err)?;
            out.push(Expired {
                thread: th.id,
                route: th.timeout_route,
                escalation,
            });
        }
        Ok(out)
    }

    async fn audit(&self, id: ThreadId) -> Result<Vec<AuditEntry>, RepoError> {
        let rows = sqlx::query("SELECT thread_id, actor, front, action, detail, at FROM audit_log WHERE thread_id = $1 ORDER BY id")
            .bind(id.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let actor: String = r.try_get("actor").map_err(db_err)?;
                let front: String = r.try_get("front").map_err(db_err)?;
                Ok(AuditEntry {
                    thread: ThreadId(r.try_get("thread_id").map_err(db_err)?),
                    actor: UserName::parse(&actor).map_err(|_| corrupt("actor", &actor))?,
                    front: Front::parse(&front).ok_or_else(|| corrupt("front", &front))?,
                    action: r.try_get("action").map_err(db_err)?,
                    detail: r.try_get("detail").map_err(db_err)?,
                    at: Timestamp::from_millis(r.try_get("at").map_err(db_err)?),
                })
            })
            .collect()
    }

    async fn add_copy(&self, copy: &ThreadCopy) -> Result<(), RepoError> {
        sqlx::query(
            "INSERT INTO thread_copies (thread_id, destination, message_id) VALUES ($1, $2, $3) \
             ON CONFLICT (thread_id, destination) DO UPDATE SET message_id = excluded.message_id",
        )
        .bind(copy.thread.0)
        .bind(copy.destination.as_str())
        .bind(copy.message_id.as_str())
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(())
    }

    async fn copies(&self, id: ThreadId) -> Result<Vec<ThreadCopy>, RepoError> {
        let rows = sqlx::query("SELECT destination, message_id FROM thread_copies WHERE thread_id = $1 ORDER BY destination")
            .bind(id.0)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let d: String = r.try_get("destination").map_err(db_err)?;
                Ok(ThreadCopy {
                    thread: id,
                    destination: Destination::parse(&d).map_err(|_| corrupt("destination", &d))?,
                    message_id: r.try_get("message_id").map_err(db_err)?,
                })
            })
            .collect()
    }

    async fn copy_at(
        &self,
        destination: &Destination,
        message_id: &str,
    ) -> Result<Option<ThreadCopy>, RepoError> {
        let row = sqlx::query(
            "SELECT thread_id FROM thread_copies WHERE destination = $1 AND message_id = $2 ORDER BY thread_id LIMIT 1",
        )
        .bind(destination.as_str())
        .bind(message_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        row.map(|r| {
            Ok(ThreadCopy {
                thread: ThreadId(r.try_get("thread_id").map_err(db_err)?),
                destination: destination.clone(),
                message_id: message_id.to_owned(),
            })
        })
        .transpose()
    }

    async fn response_times(
        &self,
        since: Timestamp,
    ) -> Result<Vec<krake_core::inbox::stats::ResponseTime>, RepoError> {
        // The first decision of an approval, the first reply by a person to anything else.
        let rows = sqlx::query(
            "SELECT t.workspace, t.kind, t.created_at, MIN(a.at) AS answered_at \
             FROM threads t JOIN audit_log a ON a.thread_id = t.id \
             WHERE ((t.kind = 'approval' AND a.action IN ('approved', 'rejected')) \
                 OR (t.kind <> 'approval' AND a.action = 'replied')) \
               AND a.actor <> $1 \
             GROUP BY t.id, t.workspace, t.kind, t.created_at \
             HAVING MIN(a.at) >= $2",
        )
        .bind(krake_core::Actor::system().user.as_str())
        .bind(since.as_millis())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let ws: String = r.try_get("workspace").map_err(db_err)?;
                let kind: String = r.try_get("kind").map_err(db_err)?;
                let opened: i64 = r.try_get("created_at").map_err(db_err)?;
                let answered: i64 = r.try_get("answered_at").map_err(db_err)?;
                Ok(krake_core::inbox::stats::ResponseTime {
                    workspace: WorkspaceSlug::parse(&ws).map_err(|_| corrupt("workspace", &ws))?,
                    kind: ThreadKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
                    waited: std::time::Duration::from_millis(
                        u64::try_from(answered - opened).unwrap_or(0),
                    ),
                })
            })
            .collect()
    }
}
