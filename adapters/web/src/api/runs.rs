//! `/api/v1/runs`: agents' runs a caller may see (filters, paging), one run with its steps
//! and usage, and cancelling one. The rules are core's (`run::watch`); this only maps them
//! to status codes.

use super::{ErrorBody, json_body};
use crate::ApiError;
use crate::auth::{CSRF_HEADER, Caller};
use crate::front::WebState;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use krake_core::run::{Cancel, Run, RunId, RunQuery, RunStatus, RunView};
use krake_core::workspace::WorkspaceSlug;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Run routes.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/api/v1/runs", get(list))
        .route("/api/v1/runs/{id}", get(show))
        .route("/api/v1/runs/{id}/cancel", post(cancel))
}

/// Filters and paging of the run list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunParams {
    /// Only this workspace (slug).
    pub workspace: Option<String>,
    /// Only this agent (any spelling).
    pub agent: Option<String>,
    /// Only this status: queued, running, awaiting_approval, executing, done, rejected,
    /// escalated, failed, refused, expired, cancelled.
    pub status: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<u32>,
    /// Only runs with a smaller id (the previous page's `next_before`).
    pub before: Option<i64>,
}

impl RunParams {
    /// The core query these parameters mean, or what is wrong with them.
    pub fn query(&self) -> Result<RunQuery, ApiError> {
        let workspace = match self.workspace.as_deref().filter(|w| !w.is_empty()) {
            Some(w) => {
                Some(WorkspaceSlug::parse(w).map_err(|e| ApiError::BadRequest(e.to_string()))?)
            }
            None => None,
        };
        let status = match self.status.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
                let all: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::BadRequest(format!(
                    "`{s}` is not a run status: use one of {}",
                    all.join(", ")
                ))
            })?),
            None => None,
        };
        let limit = self.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ApiError::BadRequest(format!(
                "limit must be between 1 and 200, not {limit}"
            )));
        }
        Ok(RunQuery {
            workspace,
            agent: self.agent.clone().filter(|a| !a.trim().is_empty()),
            status,
            before: self.before.map(RunId),
            limit: Some(limit),
        })
    }
}

/// A run in a list (no steps).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RunSummary {
    /// Id (`run 12`).
    pub id: i64,
    /// Workspace slug.
    pub workspace: String,
    /// The agent.
    pub agent: String,
    /// The task.
    pub task: String,
    /// Where it stands (see the `status` filter).
    pub status: String,
    /// What started it: command, schedule, event, revision, reply, delegation (another
    /// agent handed it over).
    pub trigger: String,
    /// Who asked.
    pub requested_by: String,
    /// The thread it opened or answers.
    pub thread: Option<i64>,
    /// The run it follows (a revision or follow-up) or that delegated it.
    pub parent: Option<i64>,
    /// The result, once there is one.
    pub result: Option<String>,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
    /// Created, ms since the epoch.
    pub created_at: i64,
    /// Last change, ms since the epoch.
    pub updated_at: i64,
}

impl From<&Run> for RunSummary {
    fn from(r: &Run) -> Self {
        Self {
            id: r.id.0,
            workspace: r.workspace.to_string(),
            agent: r.agent.clone(),
            task: r.task.clone(),
            status: r.status.as_str().to_owned(),
            trigger: r.trigger.clone(),
            requested_by: r.requested_by.clone(),
            thread: r.thread.map(|t| t.0),
            parent: r.parent.map(|p| p.0),
            result: r.result.clone(),
            error: r.error.clone(),
            created_at: r.created_at.as_millis(),
            updated_at: r.updated_at.as_millis(),
        }
    }
}

/// A page of runs, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunPage {
    /// The runs.
    pub runs: Vec<RunSummary>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<i64>,
}

/// One step of a run.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepView {
    /// When, ms since the epoch.
    pub at: i64,
    /// What: retrieved, model, tool, refused_tool, correction, verdict, executed, cancelled, …
    pub kind: String,
    /// Details for people.
    pub detail: String,
}

/// One run with its steps and what its model calls used.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    /// The run.
    #[serde(flatten)]
    pub summary: RunSummary,
    /// Every step, oldest first.
    pub steps: Vec<StepView>,
    /// Model calls charged.
    pub model_calls: u64,
    /// Prompt tokens.
    pub input_tokens: u64,
    /// Completion tokens.
    pub output_tokens: u64,
    /// Cost in micro-dollars.
    pub cost_micros: i64,
}

impl From<&RunView> for RunDetail {
    fn from(v: &RunView) -> Self {
        Self {
            summary: (&v.run).into(),
            steps: v
                .run
                .steps
                .iter()
                .map(|s| StepView {
                    at: s.at.as_millis(),
                    kind: s.kind.clone(),
                    detail: s.detail.clone(),
                })
                .collect(),
            model_calls: v.usage.calls,
            input_tokens: v.usage.input_tokens,
            output_tokens: v.usage.output_tokens,
            cost_micros: v.usage.cost_micros,
        }
    }
}

/// The body of a cancellation (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// Why (kept with who cancelled).
    pub reason: Option<String>,
}

fn run_id(id: Result<Path<i64>, PathRejection>) -> Result<RunId, ApiError> {
    match id {
        Ok(Path(n)) if n > 0 => Ok(RunId(n)),
        _ => Err(ApiError::BadRequest(
            "a run id is a positive number, as in /api/v1/runs/12".into(),
        )),
    }
}

fn no_agents() -> ApiError {
    ApiError::NotFound("agents are not set up here, so there are no runs".into())
}

/// Lists runs the caller may see, newest first.
#[utoipa::path(get, path = "/api/v1/runs", params(RunParams), tag = "runs",
    responses((status = 200, body = RunPage), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<WebState>,
    caller: Caller,
    params: Result<Query<RunParams>, QueryRejection>,
) -> Result<Json<RunPage>, ApiError> {
    let Query(params) =
        params.map_err(|e| ApiError::BadRequest(format!("bad query: {}", e.body_text())))?;
    let q = params.query()?;
    if let Some(w) = q.workspace.as_ref().filter(|w| !caller.actor.can_see(w)) {
        return Err(ApiError::NotFound(format!(
            "there is no workspace `{w}` you can see"
        )));
    }
    let limit = q.limit.unwrap_or(50) as usize;
    let runs = state
        .krake
        .runs(&caller.actor, &q)
        .await?
        .ok_or_else(no_agents)?;
    let next_before = (runs.len() == limit)
        .then(|| runs.last().map(|r| r.id.0))
        .flatten();
    Ok(Json(RunPage {
        runs: runs.iter().map(RunSummary::from).collect(),
        next_before,
    }))
}

/// One run with every step, tool call, token and cost.
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs",
    params(("id" = i64, Path, description = "run id")),
    responses((status = 200, body = RunDetail), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<WebState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<RunDetail>, ApiError> {
    let id = run_id(id)?;
    let v = state
        .krake
        .run_view(&caller.actor, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("there is no {id} you can see")))?;
    Ok(Json(RunDetail::from(&v)))
}

/// Cancels a run (member or above in its workspace): no model call and no action after
/// this. 409 when it has already ended or its action is being carried out.
#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", tag = "runs",
    request_body(content = CancelBody, description = "optional"),
    params(("id" = i64, Path, description = "run id")),
    responses((status = 200, body = RunSummary), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<RunSummary>, ApiError> {
    caller.check_csrf(headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))?;
    let id = run_id(id)?;
    let b: CancelBody = json_body(body, state.config.max_body_bytes)?;
    let reason = b.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
    let conflict = |r: &Run, message: String| ApiError::Conflict {
        message,
        current: serde_json::to_value(RunSummary::from(r)).unwrap_or_default(),
    };
    match state.krake.cancel_run(&caller.actor, id, reason).await? {
        Cancel::Cancelled(r) => Ok(Json(RunSummary::from(r.as_ref()))),
        Cancel::Ended(r) => Err(conflict(
            &r,
            format!("{id} has already ended ({})", r.status),
        )),
        Cancel::Executing(r) => Err(conflict(
            &r,
            format!("{id}'s approved action is being carried out and cannot be stopped half-way"),
        )),
        Cancel::NotFound => Err(ApiError::NotFound(format!("there is no {id} you can see"))),
        Cancel::NotLinked => Err(ApiError::Forbidden(
            "cancelling a run needs a linked Krake account".into(),
        )),
        Cancel::RoleTooLow { run, role } => Err(ApiError::Forbidden(format!(
            "cancelling runs of {} needs the member role; {} is a {role} there",
            run.workspace, caller.actor.user
        ))),
    }
}
