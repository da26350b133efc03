//! Schedules on SQL. An occurrence is claimed by a compare-and-set on `next_run_at` in the
//! transaction that records the run and posts the inbox thread; under PostgreSQL's READ
//! COMMITTED a second process's UPDATE waits for the first, re-reads the row and matches
//! nothing. `schedule_runs` is unique on (schedule, occurrence, trigger) as a second guard.

use crate::inbound::{mark_applied, write_answer};
use crate::inbox::{audit, insert_thread};
use crate::{Store, Tx, corrupt, db_err};
use async_trait::async_trait;
use krake_core::inbound::Change;
use krake_core::inbox::{NewThread, ThreadId};
use krake_core::ports::{RepoError, WriteCtx};
use krake_core::schedule::{
    Assignment, Cadence, CatchUp, NewSchedule, RunTrigger, Schedule, ScheduleId, ScheduleRepo,
    ScheduleRun, parse_timezone,
};
use krake_core::time::Timestamp;
use krake_core::workspace::WorkspaceSlug;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

const COLUMNS: &str = "id, name, workspace, agent, role, assignment, task, cron, timezone, description, \
     catch_up, paused, next_run_at, last_run_at, created_by";

fn from_row(r: &AnyRow) -> Result<Schedule, RepoError> {
    let s = |c: &str| r.try_get::<String, _>(c).map_err(db_err);
    let ws = s("workspace")?;
    let tz = s("timezone")?;
    let cron = s("cron")?;
    let cu = s("catch_up")?;
    let tz = parse_timezone(&tz).map_err(|_| corrupt("timezone", &tz))?;
    Ok(Schedule {
        id: ScheduleId(r.try_get("id").map_err(db_err)?),
        name: r.try_get("name").map_err(db_err)?,
        workspace: WorkspaceSlug::parse(&ws).map_err(|_| corrupt("workspace", &ws))?,
        assignment: Assignment {
            agent: s("agent")?,
            role: r.try_get("role").map_err(db_err)?,
            reason: s("assignment")?,
        },
        task: s("task")?,
        cadence: Cadence::new(&cron, tz).map_err(|_| corrupt("cron", &cron))?,
        description: s("description")?,
        catch_up: CatchUp::parse(&cu).ok_or_else(|| corrupt("catch_up", &cu))?,
        paused: r.try_get::<i64, _>("paused").map_err(db_err)? != 0,
        next_run_at: r
            .try_get::<Option<i64>, _>("next_run_at")
            .map_err(db_err)?
            .map(Timestamp::from_millis),
        last_run_at: r
            .try_get::<Option<i64>, _>("last_run_at")
            .map_err(db_err)?
            .map(Timestamp::from_millis),
        created_by: s("created_by")?,
    })
}

async fn load(conn: &mut AnyConnection, id: ScheduleId) -> Result<Option<Schedule>, RepoError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM schedules WHERE id = $1"))
        .bind(id.0)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_err)?;
    row.as_ref().map(from_row).transpose()
}

async fn insert(
    conn: &mut AnyConnection,
    new: &NewSchedule,
    now: Timestamp,
) -> Result<ScheduleId, RepoError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO schedules (name, workspace, agent, role, assignment, task, cron, timezone, description, catch_up, paused, next_run_at, created_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $12, $13, $13) RETURNING id",
    )
    .bind(new.name.clone())
    .bind(new.workspace.as_str())
    .bind(new.assignment.agent.as_str())
    .bind(new.assignment.role.clone())
    .bind(new.assignment.reason.as_str())
    .bind(new.task.as_str())
    .bind(new.cadence.expression())
    .bind(new.cadence.timezone().name())
    .bind(new.description.as_str())
    .bind(new.catch_up.as_str())
    .bind(new.next_run_at.map(Timestamp::as_millis))
    .bind(new.created_by.as_str())
    .bind(now.as_millis())
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(ScheduleId(id))
}

/// Records a run and posts its thread, inside the caller's transaction.
async fn post_run(
    conn: &mut Tx,
    run: &ScheduleRun,
    thread: &NewThread,
    ctx: &WriteCtx,
) -> Result<ThreadId, RepoError> {
    let (tid, _) = insert_thread(conn, thread, ctx.now).await?;
    audit(
        conn,
        tid,
        ctx,
        "created",
        &format!(
            "{} in {}: {} (schedule {}, {}, assigned to {}: {})",
            thread.kind,
            thread.workspace,
            thread.title,
            run.schedule.0,
            run.trigger.as_str(),
            run.agent,
            run.reason
        ),
    )
    .await?;
    sqlx::query(
        "INSERT INTO schedule_runs (schedule_id, occurrence_at, ran_at, trigger, agent, assignment, thread_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(run.schedule.0)
    .bind(run.occurrence_at.as_millis())
    .bind(run.ran_at.as_millis())
    .bind(run.trigger.as_str())
    .bind(run.agent.as_str())
    .bind(run.reason.as_str())
    .bind(tid.0)
    .execute(&mut **conn)
    .await
    .map_err(db_err)?;
    sqlx::query("UPDATE schedules SET last_run_at = $1 WHERE id = $2")
        .bind(ctx.now.as_millis())
        .bind(run.schedule.0)
        .execute(&mut **conn)
        .await
        .map_err(db_err)?;
    Ok(tid)
}

fn system_ctx(now: Timestamp) -> WriteCtx {
    WriteCtx {
        actor: krake_core::Actor::system(),
        inbound: None,
        now,
    }
}

#[async_trait]
impl ScheduleRepo for Store {
    async fn create_schedule(
        &self,
        new: &NewSchedule,
        ctx: &WriteCtx,
    ) -> Result<Schedule, RepoError> {
        let mut tx = self.begin().await?;
        mark_applied(&mut tx, ctx).await?;
        let id = insert(&mut tx, new, ctx.now).await?;
        let s = load(&mut tx, id)
            .await?
            .ok_or_else(|| RepoError::Corrupt("created schedule vanished".into()))?;
        write_answer(&mut tx, ctx, Change::Scheduled(&s)).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(s)
    }

    async fn sync_config_schedule(
        &self,
        new: &NewSchedule,
        now: Timestamp,
    ) -> Result<Schedule, RepoError> {
        let Some(name) = &new.name else {
            return Err(RepoError::Corrupt("a config schedule needs a name".into()));
        };
        let mut tx = self.begin().await?;
        let lock = if self.backend == crate::Backend::Postgres {
            " FOR UPDATE"
        } else {
            ""
        };
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM schedules WHERE name = $1{lock}"
        ))
        .bind(name.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
        let id = match row.as_ref().map(from_row).transpose()? {
            None => insert(&mut tx, new, now).await?,
            Some(old) => {
                let same_timing = old.cadence == new.cadence;
                let next = if old.paused {
                    None
                } else if same_timing {
                    old.next_run_at
                } else {
                    new.next_run_at
                };
                sqlx::query(
                    "UPDATE schedules SET workspace = $1, agent = $2, role = $3, assignment = $4, task = $5, cron = $6, timezone = $7, \
                     description = $8, catch_up = $9, next_run_at = $10, updated_at = $11 WHERE id = $12",
                )
                .bind(new.workspace.as_str())
                .bind(new.assignment.agent.as_str())
                .bind(new.assignment.role.clone())
                .bind(new.assignment.reason.as_str())
                .bind(new.task.as_str())
                .bind(new.cadence.expression())
                .bind(new.cadence.timezone().name())
                .bind(new.description.as_str())
                .bind(new.catch_up.as_str())
                .bind(next.map(Timestamp::as_millis))
                .bind(now.as_millis())
                .bind(old.id.0)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                old.id
            }
        };
        let s = load(&mut tx, id)
            .await?
            .ok_or_else(|| RepoError::Corrupt("synced schedule vanished".into()))?;
        tx.commit().await.map_err(db_err)?;
        Ok(s)
    }

    async fn prune_config_schedules(&self, keep: &[String]) -> Result<u64, RepoError> {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT name FROM schedules WHERE name IS NOT NULL")
                .fetch_all(&self.pool)
                .await
                .map_err(db_err)?;
        let mut n = 0;
        for name in names.iter().filter(|n| !keep.contains(n)) {
            let mut tx = self.begin().await?;
            let ids: Vec<i64> = sqlx::query_scalar("SELECT id FROM schedules WHERE name = $1")
                .bind(name.as_str())
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
            for id in ids {
                sqlx::query("DELETE FROM schedule_runs WHERE schedule_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
                n += sqlx::query("DELETE FROM schedules WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?
                    .rows_affected();
            }
            tx.commit().await.map_err(db_err)?;
        }
        Ok(n)
    }

    async fn get_schedule(&self, id: ScheduleId) -> Result<Option<Schedule>, RepoError> {
        let mut conn = self.pool.acquire().await.map_err(db_err)?;
        load(&mut conn, id).await
    }

    async fn list_schedules(&self) -> Result<Vec<Schedule>, RepoError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM schedules ORDER BY id"))
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        rows.iter().map(from_row).collect()
    }

    async fn set_schedule_paused(
        &self,
        id: ScheduleId,
        paused: bool,
        next_run_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Option<Schedule>, RepoError> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE schedules SET paused = $1, next_run_at = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(i64::from(paused))
        .bind(next_run_at.map(Timestamp::as_millis))
        .bind(now.as_millis())
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        let s = load(&mut tx, id).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(s)
    }

    async fn delete_schedule(&self, id: ScheduleId) -> Result<bool, RepoError> {
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM schedule_runs WHERE schedule_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let n = sqlx::query("DELETE FROM schedules WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        tx.commit().await.map_err(db_err)?;
        Ok(n > 0)
    }

    async fn due_schedules(&self, now: Timestamp, limit: u32) -> Result<Vec<Schedule>, RepoError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM schedules WHERE paused = 0 AND next_run_at IS NOT NULL AND next_run_at <= $1 \
             ORDER BY next_run_at, id LIMIT {}",
            limit.clamp(1, 1000)
        ))
        .bind(now.as_millis())
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(from_row).collect()
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, RepoError> {
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(next_run_at) FROM schedules WHERE paused = 0 AND next_run_at IS NOT NULL",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(v.map(Timestamp::from_millis))
    }

    async fn claim_occurrence(
        &self,
        id: ScheduleId,
        expected: Timestamp,
        next: Option<Timestamp>,
        run: Option<(&ScheduleRun, &NewThread)>,
        now: Timestamp,
    ) -> Result<Option<Option<ThreadId>>, RepoError> {
        let mut tx = self.begin().await?;
        let claimed = sqlx::query(
            "UPDATE schedules SET next_run_at = $1, updated_at = $2 WHERE id = $3 AND paused = 0 AND next_run_at = $4",
        )
        .bind(next.map(Timestamp::as_millis))
        .bind(now.as_millis())
        .bind(id.0)
        .bind(expected.as_millis())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
        .rows_affected();
        if claimed != 1 {
            return Ok(None);
        }
        let thread = match run {
            Some((run, thread)) => Some(post_run(&mut tx, run, thread, &system_ctx(now)).await?),
            None => None,
        };
        tx.commit().await.map_err(db_err)?;
        Ok(Some(thread))
    }

    async fn record_manual_run(
        &self,
        run: &ScheduleRun,
        thread: &NewThread,
        ctx: &WriteCtx,
    ) -> Result<ThreadId, RepoError> {
        let mut tx = self.begin().await?;
        mark_applied(&mut tx, ctx).await?;
        let t = post_run(&mut tx, run, thread, ctx).await?;
        write_answer(&mut tx, ctx, Change::RanNow(t)).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(t)
    }

    async fn schedule_runs(
        &self,
        id: ScheduleId,
        limit: u32,
    ) -> Result<Vec<ScheduleRun>, RepoError> {
        let rows = sqlx::query(&format!(
            "SELECT schedule_id, occurrence_at, ran_at, trigger, agent, assignment, thread_id FROM schedule_runs \
             WHERE schedule_id = $1 ORDER BY id DESC LIMIT {}",
            limit.clamp(1, 1000)
        ))
        .bind(id.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                let trig: String = r.try_get("trigger").map_err(db_err)?;
                Ok(ScheduleRun {
                    schedule: ScheduleId(r.try_get("schedule_id").map_err(db_err)?),
                    occurrence_at: Timestamp::from_millis(
                        r.try_get("occurrence_at").map_err(db_err)?,
                    ),
                    ran_at: Timestamp::from_millis(r.try_get("ran_at").map_err(db_err)?),
                    trigger: match trig.as_str() {
                        "due" => RunTrigger::Due,
                        "catch-up" => RunTrigger::CatchUp,
                        "manual" => RunTrigger::Manual,
                        _ => return Err(corrupt("trigger", &trig)),
                    },
                    agent: r.try_get("agent").map_err(db_err)?,
                    reason: r.try_get("assignment").map_err(db_err)?,
                    thread: r
                        .try_get::<Option<i64>, _>("thread_id")
                        .map_err(db_err)?
                        .map(ThreadId),
                })
            })
            .collect()
    }
}
