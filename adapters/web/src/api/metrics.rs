//! `/api/v1/workspaces/{slug}/metrics` and `/api/v1/overview`: pushing data points that KPIs
//! are computed from (any analytics tool or cron job can feed a KPI), and the Management
//! overview as JSON. The rules (member role, names, values, times, idempotency keys) are
//! core's ([`krake_core::Krake::push_metrics`]).

use super::{ErrorBody, json_body};
use crate::ApiError;
use crate::auth::{CSRF_HEADER, Caller};
use crate::front::WebState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use krake_core::kpi::{PointInput, PushRefused};
use krake_core::workspace::WorkspaceSlug;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Metric routes.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/api/v1/workspaces/{slug}/metrics", post(push))
        .route("/api/v1/overview", get(overview))
}

/// One data point.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PointBody {
    /// The metric (`visitors`; lowercase letters, digits, `_`, `.`).
    pub name: String,
    /// Its value (a finite number).
    pub value: f64,
    /// When it was measured: RFC 3339 or a day (`2026-12-07`); default now. At most 400
    /// days ago, at most a day ahead.
    pub at: Option<String>,
    /// An idempotency key: a point whose key was stored before is not stored again.
    pub key: Option<String>,
}

/// A batch of points (1 to 1000), stored all or nothing.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsBody {
    /// The points.
    pub points: Vec<PointBody>,
}

/// What a push stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushedView {
    /// Points stored now.
    pub stored: usize,
    /// Points whose key was stored before (not stored again).
    pub duplicates: usize,
}

/// Pushes data points for a workspace's KPIs (member role there).
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/metrics", tag = "kpis", request_body = MetricsBody,
    params(("slug" = String, Path, description = "workspace")),
    responses((status = 200, body = PushedView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn push(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    Path(slug): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PushedView>, ApiError> {
    caller.check_csrf(headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))?;
    let ws = WorkspaceSlug::parse(&slug)
        .ok()
        .filter(|w| state.krake.directory().workspace(w).is_some())
        .ok_or_else(|| ApiError::NotFound(format!("there is no workspace `{slug}`")))?;
    if !caller.actor.can_see(&ws) {
        return Err(ApiError::Forbidden(format!(
            "{} is not a member of {ws}",
            caller.actor.user
        )));
    }
    let b: MetricsBody = json_body(body, state.config.max_body_bytes)?;
    let points: Vec<PointInput> = b
        .points
        .into_iter()
        .map(|p| PointInput {
            name: p.name,
            value: p.value,
            at: p.at,
            key: p.key,
        })
        .collect();
    match state
        .krake
        .push_metrics(&caller.actor, ws.as_str(), &points)
        .await?
    {
        Ok(p) => Ok(Json(PushedView {
            stored: p.stored,
            duplicates: p.duplicates,
        })),
        Err(e @ (PushRefused::Role { .. } | PushRefused::Workspace(_))) => {
            Err(ApiError::Forbidden(e.to_string()))
        }
        Err(e @ PushRefused::Unavailable) => Err(ApiError::NotFound(e.to_string())),
        Err(e @ (PushRefused::Point { .. } | PushRefused::Batch(_))) => {
            Err(ApiError::BadRequest(e.to_string()))
        }
    }
}

/// The Management overview: the workspaces the caller sees, their key figures, revenue in one
/// currency (fixed rates from the config, listed) and recent activity.
#[utoipa::path(get, path = "/api/v1/overview", tag = "kpis",
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn overview(
    State(state): State<WebState>,
    caller: Caller,
) -> Result<Json<krake_core::kpi::Overview>, ApiError> {
    state
        .krake
        .overview(&caller.actor)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("KPIs are not available here".into()))
}
