//! [`RunRepo`] and [`CostLedger`] on SQL: agent runs claimed with a lease, their steps, and
//! one ledger row per model call.

use crate::{Backend, Store, corrupt, db_err};
use async_trait::async_trait;
use krake_core::inbox::ThreadId;
use krake_core::ledger::{BudgetHold, CallRecord, CostLedger, CostReport, OverBudget, RunUsage};
use krake_core::outbox::{Destination, KeyedOutbound};
use krake_core::ports::RepoError;
use krake_core::run::{
    Delegated, NewRun, Run, RunFilter, RunId, RunOutcome, RunRepo, RunStatus, RunStep,
};
use krake_core::time::Timestamp;
use krake_core::workspace::WorkspaceSlug;
use sqlx::Row;
use sqlx::any::AnyRow;
use std::time::Duration;

const RUN_COLUMNS: &str = "id, workspace, agent, task, trigger_kind, requested_by, status, result, error, \
     attempts, thread_id, parent_id, feedback, answer_to, stream_message, created_at, updated_at";

/// Moves a run to its end (compare-and-set on its status).
const FINISH_RUN: &str = "UPDATE agent_runs SET status = $1, result = COALESCE($2, result), error = $3, \
       thread_id = COALESCE($4, thread_id), lease_owner = NULL, lease_until = NULL, updated_at = $5 \
     WHERE id = $6 AND status = $7";

/// [`FINISH_RUN`] with its values bound.
fn finish_query(
    id: RunId,
    from: RunStatus,
    outcome: &RunOutcome,
    now: Timestamp,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    sqlx::query(FINISH_RUN)
        .bind(outcome.status.as_str())
        .bind(outcome.result.as_deref())
        .bind(outcome.error.as_deref())
        .bind(outcome.thread.map(|t| t.0))
        .bind(now.as_millis())
        .bind(id.0)
        .bind(from.as_str())
}

fn run_from_row(r: &AnyRow) -> Result<Run, RepoError> {
    let ws: String = r.try_get("workspace").map_err(db_err)?;
    let status: String = r.try_get("status").map_err(db_err)?;
    Ok(Run {
        id: RunId(r.try_get("id").map_err(db_err)?),
        workspace: WorkspaceSlug::parse(&ws).map_err(|_| corrupt("workspace", &ws))?,
        agent: r.try_get("agent").map_err(db_err)?,
        task: r.try_get("task").map_err(db_err)?,
        trigger: r.try_get("trigger_kind").map_err(db_err)?,
        requested_by: r.try_get("requested_by").map_err(db_err)?,
        status: RunStatus::parse(&status).ok_or_else(|| corrupt("run status", &status))?,
        steps: Vec::new(),
        result: r.try_get("result").map_err(db_err)?,
        error: r.try_get("error").map_err(db_err)?,
        attempts: i32::try_from(r.try_get::<i64, _>("attempts").map_err(db_err)?)
            .unwrap_or(i32::MAX),
        thread: r
            .try_get::<Option<i64>, _>("thread_id")
            .map_err(db_err)?
            .map(ThreadId),
        parent: r
            .try_get::<Option<i64>, _>("parent_id")
            .map_err(db_err)?
            .map(RunId),
        feedback: r.try_get("feedback").map_err(db_err)?,
        answer_to: match r
            .try_get::<Option<String>, _>("answer_to")
            .map_err(db_err)?
        {
            Some(d) => Some(Destination::parse(&d).map_err(|_| corrupt("answer destination", &d))?),
            None => None,
        },
        stream_message: r.try_get("stream_message").map_err(db_err)?,
        created_at: Timestamp::from_millis(r.try_get("created_at").map_err(db_err)?),
        updated_at: Timestamp::from_millis(r.try_get("updated_at").map_err(db_err)?),
    })
}

impl Store {
    async fn steps(&self, id: RunId) -> Result<Vec<RunStep>, RepoError> {
        let rows = sqlx::query(
            "SELECT at, kind, detail FROM agent_run_steps WHERE run_id = $1 ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter()
            .map(|r| {
                Ok(RunStep {
                    at: Timestamp::from_millis(r.try_get("at").map_err(db_err)?),
                    kind: r.try_get("kind").map_err(db_err)?,
                    detail: r.try_get("detail").map_err(db_err)?,
                })
            })
            .collect()
    }

    async fn with_steps(&self, row: Option<AnyRow>) -> Result<Option<Run>, RepoError> {
        let Some(row) = row else { return Ok(None) };
        let mut run = run_from_row(&row)?;
        run.steps = self.steps(run.id).await?;
        Ok(Some(run))
    }
}

#[async_trait]
impl RunRepo for Store {
    async fn create_run(&self, new: &NewRun, now: Timestamp) -> Result<Run, RepoError> {
        let sql = format!(
            "INSERT INTO agent_runs (workspace, agent, task, trigger_kind, requested_by, status, attempts, parent_id, feedback, answer_to, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'queued', 0, $6, $7, $8, $9, $9) RETURNING {RUN_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(new.workspace.as_str())
            .bind(&new.agent)
            .bind(&new.task)
            .bind(&new.trigger)
            .bind(&new.requested_by)
            .bind(new.parent.map(|p| p.0))
            .bind(new.feedback.as_deref())
            .bind(new.answer_to.as_ref().map(Destination::as_str))
            .bind(now.as_millis())
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        run_from_row(&row)
    }

    async fn claim_runs(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Run>, RepoError> {
        let skip = if self.backend == Backend::Postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        // Queued runs, and running ones whose worker's lease ran out (it died): the status is
        // checked again on the outer row, so a run finished meanwhile is never claimed.
        let sql = format!(
            "UPDATE agent_runs SET status = 'running', lease_owner = $1, lease_until = $2, \
               attempts = attempts + 1, updated_at = $3 \
             WHERE id IN (SELECT id FROM agent_runs WHERE trigger_kind <> 'delegation' \
                 AND (status = 'queued' OR (status = 'running' AND lease_until <= $4)) \
                 ORDER BY id LIMIT {}{skip}) \
               AND (status = 'queued' OR (status = 'running' AND lease_until <= $5)) \
             RETURNING {RUN_COLUMNS}",
            limit.clamp(1, 1000)
        );
        let mut tx = self.begin().await?;
        let rows = sqlx::query(&sql)
            .bind(owner)
            .bind(now.plus(lease).as_millis())
            .bind(now.as_millis())
            .bind(now.as_millis())
            .bind(now.as_millis())
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        let mut runs: Vec<Run> = rows.iter().map(run_from_row).collect::<Result<_, _>>()?;
        runs.sort_by_key(|r| r.id);
        Ok(runs)
    }

    async fn extend_lease(&self, id: RunId, lease_until: Timestamp) -> Result<bool, RepoError> {
        let done = sqlx::query(
            "UPDATE agent_runs SET lease_until = $1 WHERE id = $2 AND status = 'running'",
        )
        .bind(lease_until.as_millis())
        .bind(id.0)
        .execute(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn add_step(
        &self,
        id: RunId,
        step: &RunStep,
        lease_until: Timestamp,
    ) -> Result<bool, RepoError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO agent_run_steps (run_id, at, kind, detail) VALUES ($1, $2, $3, $4)",
        )
        .bind(id.0)
        .bind(step.at.as_millis())
        .bind(&step.kind)
        .bind(&step.detail)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        let running = sqlx::query(
            "UPDATE agent_runs SET lease_until = $1, updated_at = $2 WHERE id = $3 AND status = 'running'",
        )
        .bind(lease_until.as_millis())
        .bind(step.at.as_millis())
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(running.rows_affected() == 1)
    }

    async fn cancel_run(
        &self,
        id: RunId,
        by: &str,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<Run>, RepoError> {
        let why = match reason {
            Some(r) => format!("cancelled by {by}: {r}"),
            None => format!("cancelled by {by}"),
        };
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE agent_runs SET status = 'cancelled', error = $1, lease_owner = NULL, lease_until = NULL, updated_at = $2 \
             WHERE id = $3 AND status IN ('queued', 'running', 'awaiting_approval')",
        )
        .bind(&why)
        .bind(now.as_millis())
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        if done.rows_affected() == 1 {
            sqlx::query(
                "INSERT INTO agent_run_steps (run_id, at, kind, detail) VALUES ($1, $2, 'cancelled', $3)",
            )
            .bind(id.0)
            .bind(now.as_millis())
            .bind(&why)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        self.run(id).await
    }

    async fn finish_run(
        &self,
        id: RunId,
        from: RunStatus,
        outcome: &RunOutcome,
        now: Timestamp,
    ) -> Result<bool, RepoError> {
        let done = finish_query(id, from, outcome, now)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_stream_message(&self, id: RunId, message_id: &str) -> Result<(), RepoError> {
        sqlx::query("UPDATE agent_runs SET stream_message = $1 WHERE id = $2")
            .bind(message_id)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn finish_run_answering(
        &self,
        id: RunId,
        from: RunStatus,
        outcome: &RunOutcome,
        answer: &KeyedOutbound,
        now: Timestamp,
    ) -> Result<bool, RepoError> {
        let mut tx = self.begin().await?;
        let done = finish_query(id, from, outcome, now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        if done.rows_affected() != 1 {
            tx.rollback().await.map_err(db_err)?;
            return Ok(false);
        }
        crate::outbox::insert_once(
            &mut tx,
            &answer.message.destination,
            &answer.message.payload,
            &answer.key,
            now,
        )
        .await?;
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    async fn run(&self, id: RunId) -> Result<Option<Run>, RepoError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM agent_runs WHERE id = $1"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        self.with_steps(row).await
    }

    async fn run_for_thread(&self, thread: ThreadId) -> Result<Option<Run>, RepoError> {
        let row = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM agent_runs WHERE thread_id = $1 ORDER BY id DESC LIMIT 1"
        ))
        .bind(thread.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_err)?;
        self.with_steps(row).await
    }

    async fn queue_from_threads(
        &self,
        prefix: &str,
        since: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<RunId>, RepoError> {
        let pattern = format!(
            "{}%",
            prefix
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let sql = format!(
            "INSERT INTO agent_runs (workspace, agent, task, trigger_kind, requested_by, status, attempts, source_key, created_at, updated_at) \
             SELECT t.workspace, t.agent, t.title || $1 || t.body, 'event', 'krake', 'queued', 0, t.origin_key, $2, $3 \
             FROM threads t WHERE t.origin_key LIKE $4 ESCAPE '\\' AND t.agent IS NOT NULL AND t.created_at >= $5 \
               AND NOT EXISTS (SELECT 1 FROM agent_runs r WHERE r.source_key = t.origin_key) \
             ORDER BY t.id LIMIT {} \
             ON CONFLICT (source_key) DO NOTHING RETURNING id",
            limit.clamp(1, 1000)
        );
        let mut tx = self.begin().await?;
        let ids: Vec<i64> = sqlx::query_scalar(&sql)
            .bind("\n")
            .bind(now.as_millis())
            .bind(now.as_millis())
            .bind(pattern)
            .bind(since.as_millis())
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(ids.into_iter().map(RunId).collect())
    }

    async fn runs_with_status(
        &self,
        status: RunStatus,
        updated_before: Timestamp,
        limit: u32,
    ) -> Result<Vec<Run>, RepoError> {
        let rows = sqlx::query(&format!(
            "SELECT {RUN_COLUMNS} FROM agent_runs WHERE status = $1 AND updated_at <= $2 ORDER BY id LIMIT $3"
        ))
        .bind(status.as_str())
        .bind(updated_before.as_millis())
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await
        .map_err(db_err)?;
        rows.iter().map(run_from_row).collect()
    }

    async fn start_delegated(
        &self,
        new: &NewRun,
        key: &str,
        owner: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Delegated, RepoError> {
        let until = now.plus(lease).as_millis();
        let sql = format!(
            "INSERT INTO agent_runs (workspace, agent, task, trigger_kind, requested_by, status, attempts, parent_id, feedback, source_key, lease_owner, lease_until, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'running', 1, $6, $7, $8, $9, $10, $11, $11) \
             ON CONFLICT (source_key) DO NOTHING RETURNING {RUN_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(new.workspace.as_str())
            .bind(&new.agent)
            .bind(&new.task)
            .bind(&new.trigger)
            .bind(&new.requested_by)
            .bind(new.parent.map(|p| p.0))
            .bind(new.feedback.as_deref())
            .bind(key)
            .bind(owner)
            .bind(until)
            .bind(now.as_millis())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        if let Some(row) = row {
            return Ok(Delegated::Started(run_from_row(&row)?));
        }
        // Started before (a resumed parent): take it over when nobody drives it any more.
        let sql = format!(
            "UPDATE agent_runs SET status = 'running', lease_owner = $1, lease_until = $2, \
               attempts = attempts + 1, updated_at = $3 \
             WHERE source_key = $4 AND (status = 'queued' OR (status = 'running' AND lease_until <= $5)) \
             RETURNING {RUN_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(owner)
            .bind(until)
            .bind(now.as_millis())
            .bind(key)
            .bind(now.as_millis())
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        if let Some(row) = row {
            return Ok(Delegated::Started(run_from_row(&row)?));
        }
        let sql = format!("SELECT {RUN_COLUMNS} FROM agent_runs WHERE source_key = $1");
        let row = sqlx::query(&sql)
            .bind(key)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        let mut run = run_from_row(&row)?;
        run.steps = self.steps(run.id).await?;
        Ok(Delegated::Existing(run))
    }

    async fn list_runs(&self, f: &RunFilter) -> Result<Vec<Run>, RepoError> {
        let mut sql = format!("SELECT {RUN_COLUMNS} FROM agent_runs WHERE 1 = 1");
        let mut binds: Vec<Bind> = Vec::new();
        let next = |v: Bind, binds: &mut Vec<Bind>| {
            binds.push(v);
            format!("${}", binds.len())
        };
        if let Some(v) = &f.visible {
            if v.is_empty() {
                return Ok(Vec::new());
            }
            let marks: Vec<String> = v
                .iter()
                .map(|w| next(Bind::Text(w.to_string()), &mut binds))
                .collect();
            sql.push_str(&format!(" AND workspace IN ({})", marks.join(", ")));
        }
        if let Some(w) = &f.workspace {
            let m = next(Bind::Text(w.to_string()), &mut binds);
            sql.push_str(&format!(" AND workspace = {m}"));
        }
        if let Some(a) = &f.agent {
            let m = next(Bind::Text(a.to_lowercase()), &mut binds);
            sql.push_str(&format!(" AND LOWER(agent) = {m}"));
        }
        if let Some(st) = f.status {
            let m = next(Bind::Text(st.as_str().to_owned()), &mut binds);
            sql.push_str(&format!(" AND status = {m}"));
        }
        if let Some(p) = f.parent {
            let m = next(Bind::Int(p.0), &mut binds);
            sql.push_str(&format!(" AND parent_id = {m}"));
        }
        if let Some(b) = f.before {
            let m = next(Bind::Int(b.0), &mut binds);
            sql.push_str(&format!(" AND id < {m}"));
        }
        sql.push_str(&format!(
            " ORDER BY id DESC LIMIT {}",
            f.limit.clamp(1, 1000)
        ));
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = match b {
                Bind::Text(t) => q.bind(t),
                Bind::Int(i) => q.bind(i),
            };
        }
        let rows = q.fetch_all(&self.pool).await.map_err(db_err)?;
        rows.iter().map(run_from_row).collect()
    }
}

/// A value bound into a query built from a filter.
enum Bind {
    Text(String),
    Int(i64),
}

fn tokens(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[async_trait]
impl CostLedger for Store {
    async fn run_usage(&self, run: i64) -> Result<RunUsage, RepoError> {
        let row = sqlx::query(
            "SELECT CAST(COUNT(*) AS BIGINT) AS calls, \
             CAST(COALESCE(SUM(input_tokens), 0) AS BIGINT) AS input_tokens, \
             CAST(COALESCE(SUM(output_tokens), 0) AS BIGINT) AS output_tokens, \
             CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) AS cost_micros \
             FROM model_calls WHERE run_id = $1",
        )
        .bind(run)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        let n = |c: &str| -> Result<i64, RepoError> { row.try_get::<i64, _>(c).map_err(db_err) };
        let u = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(RunUsage {
            calls: u(n("calls")?),
            input_tokens: u(n("input_tokens")?),
            output_tokens: u(n("output_tokens")?),
            cost_micros: n("cost_micros")?,
        })
    }

    async fn record_call(&self, c: &CallRecord) -> Result<(), RepoError> {
        // The call and the month's roll-up move together, so a budget check never sees one
        // without the other.
        let mut tx = self.begin().await?;
        sqlx::query(
            "INSERT INTO model_calls (run_id, workspace, agent, provider, model, input_tokens, output_tokens, cost_micros, at, day, month) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(c.run)
        .bind(c.workspace.as_str())
        .bind(&c.agent)
        .bind(&c.provider)
        .bind(&c.model)
        .bind(tokens(c.input_tokens))
        .bind(tokens(c.output_tokens))
        .bind(c.cost_micros)
        .bind(c.at.as_millis())
        .bind(c.day())
        .bind(c.month())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        sqlx::query(
            "INSERT INTO model_spend (workspace, agent, month, cost_micros, calls) VALUES ($1, LOWER($2), $3, $4, 1) \
             ON CONFLICT (workspace, agent, month) DO UPDATE \
             SET cost_micros = model_spend.cost_micros + excluded.cost_micros, calls = model_spend.calls + 1",
        )
        .bind(c.workspace.as_str())
        .bind(&c.agent)
        .bind(c.month())
        .bind(c.cost_micros)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(())
    }

    async fn spent(
        &self,
        workspace: &WorkspaceSlug,
        agent: Option<&str>,
        month: &str,
    ) -> Result<i64, RepoError> {
        let q = match agent {
            Some(a) => sqlx::query_scalar::<_, Option<i64>>(
                "SELECT CAST(SUM(cost_micros) AS BIGINT) FROM model_spend WHERE workspace = $1 AND month = $2 AND agent = LOWER($3)",
            )
            .bind(workspace.as_str())
            .bind(month)
            .bind(a.to_owned()),
            None => sqlx::query_scalar::<_, Option<i64>>(
                "SELECT CAST(SUM(cost_micros) AS BIGINT) FROM model_spend WHERE workspace = $1 AND month = $2",
            )
            .bind(workspace.as_str())
            .bind(month),
        };
        Ok(q.fetch_one(&self.pool).await.map_err(db_err)?.unwrap_or(0))
    }

    async fn hold(&self, hold: &BudgetHold) -> Result<Result<(), OverBudget>, RepoError> {
        let mut tx = self.begin().await?;
        if self.backend() == crate::Backend::Postgres {
            // Serialise the checks of one workspace and agent across processes (SQLite's
            // writer lock, taken by BEGIN IMMEDIATE, already does); sorted, so no deadlock.
            let mut keys = vec![
                format!("krake:budget:ws:{}", hold.workspace),
                format!("krake:budget:agent:{}", hold.agent),
            ];
            keys.sort();
            for k in keys {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind(k)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
        }
        sqlx::query("DELETE FROM budget_holds WHERE expires_at <= $1")
            .bind(hold.now.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        // One statement, one snapshot: spent and held read together.
        let row = sqlx::query(
            "SELECT \
             (SELECT CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) FROM model_spend WHERE workspace = $1 AND month = $2), \
             (SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM budget_holds WHERE workspace = $3 AND month = $4), \
             (SELECT CAST(COALESCE(SUM(cost_micros), 0) AS BIGINT) FROM model_spend WHERE agent = $5 AND month = $6), \
             (SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM budget_holds WHERE agent = $7 AND month = $8)",
        )
        .bind(hold.workspace.as_str())
        .bind(&hold.month)
        .bind(hold.workspace.as_str())
        .bind(&hold.month)
        .bind(&hold.agent)
        .bind(&hold.month)
        .bind(&hold.agent)
        .bind(&hold.month)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        let get = |i: usize| row.try_get::<i64, _>(i).map_err(db_err);
        let checked = hold.check((get(0)?, get(1)?), (get(2)?, get(3)?));
        if checked.is_ok() {
            sqlx::query(
                "INSERT INTO budget_holds (id, workspace, agent, month, amount, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&hold.id)
            .bind(hold.workspace.as_str())
            .bind(&hold.agent)
            .bind(&hold.month)
            .bind(hold.amount)
            .bind(hold.expires.as_millis())
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(checked)
    }

    async fn release_hold(&self, id: &str) -> Result<(), RepoError> {
        sqlx::query("DELETE FROM budget_holds WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn spent_by_agent(&self, agent: &str, month: &str) -> Result<i64, RepoError> {
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(SUM(cost_micros) AS BIGINT) FROM model_spend WHERE agent = LOWER($1) AND month = $2",
        )
        .bind(agent)
        .bind(month)
        .fetch_one(&self.pool)
        .await
        .map_err(db_err)?;
        Ok(v.unwrap_or(0))
    }

    async fn report(
        &self,
        workspace: Option<&WorkspaceSlug>,
        month: &str,
    ) -> Result<CostReport, RepoError> {
        // Grouped in SQL by workspace, agent and day: the report reads one row per group.
        let sql = "SELECT workspace, agent, day, CAST(COUNT(*) AS BIGINT) AS calls, \
             CAST(SUM(input_tokens) AS BIGINT) AS input_tokens, CAST(SUM(output_tokens) AS BIGINT) AS output_tokens, \
             CAST(SUM(cost_micros) AS BIGINT) AS cost_micros \
             FROM model_calls WHERE month = $1 AND ($2 = '' OR workspace = $3) \
             GROUP BY workspace, agent, day";
        let ws = workspace.map(|w| w.to_string()).unwrap_or_default();
        let rows = sqlx::query(sql)
            .bind(month)
            .bind(ws.clone())
            .bind(ws)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        let mut report = CostReport {
            month: month.to_owned(),
            workspace: workspace.cloned(),
            ..CostReport::default()
        };
        for r in &rows {
            let w: String = r.try_get("workspace").map_err(db_err)?;
            let agent: String = r.try_get("agent").map_err(db_err)?;
            let day: String = r.try_get("day").map_err(db_err)?;
            let calls = u64::try_from(r.try_get::<i64, _>("calls").map_err(db_err)?).unwrap_or(0);
            let input =
                u64::try_from(r.try_get::<i64, _>("input_tokens").map_err(db_err)?).unwrap_or(0);
            let output =
                u64::try_from(r.try_get::<i64, _>("output_tokens").map_err(db_err)?).unwrap_or(0);
            let cost: i64 = r.try_get("cost_micros").map_err(db_err)?;
            for s in [
                &mut report.total,
                report.by_workspace.entry(w).or_default(),
                report.by_agent.entry(agent).or_default(),
                report.by_day.entry(day).or_default(),
            ] {
                s.calls += calls;
                s.input_tokens += input;
                s.output_tokens += output;
                s.cost_micros += cost;
            }
        }
        Ok(report)
    }
}
