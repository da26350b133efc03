//! `/api/v1/workspaces`, `/api/v1/agents`, `/api/v1/me`: what there is, and who is asking.

use super::ErrorBody;
use crate::ApiError;
use crate::auth::Caller;
use crate::front::WebState;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

/// Directory routes.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/api/v1/workspaces", get(workspaces))
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/me", get(me))
}

/// A workspace the caller may see.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceView {
    /// Slug (`lunavo`).
    pub slug: String,
    /// Name (`Lunavo`).
    pub name: String,
    /// The caller's role there.
    pub role: String,
}

/// An agent.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentView {
    /// Name (`Penn`).
    pub name: String,
    /// Role (`copywriter`).
    pub role: String,
    /// What it does.
    pub description: String,
    /// Workspaces it works in (the first is its home).
    pub workspaces: Vec<String>,
}

/// The caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    /// User name.
    pub user: String,
    /// `session` or `token`.
    pub via: String,
    /// Role per visible workspace.
    pub workspaces: Vec<WorkspaceView>,
    /// For a session: the token to send as `X-CSRF-Token` with changes.
    pub csrf: Option<String>,
}

fn visible(state: &WebState, caller: &Caller) -> Vec<WorkspaceView> {
    state
        .krake
        .directory()
        .workspaces()
        .iter()
        .filter(|w| caller.actor.can_see(&w.slug))
        .map(|w| WorkspaceView {
            slug: w.slug.to_string(),
            name: w.name.clone(),
            role: caller.actor.role_in(&w.slug).to_string(),
        })
        .collect()
}

/// The workspaces the caller may see, with their role in each.
#[utoipa::path(get, path = "/api/v1/workspaces", tag = "directory",
    responses((status = 200, body = Vec<WorkspaceView>), (status = 401, body = ErrorBody)))]
pub async fn workspaces(
    State(state): State<WebState>,
    caller: Caller,
) -> Result<Json<Vec<WorkspaceView>>, ApiError> {
    Ok(Json(visible(&state, &caller)))
}

/// The agents working in workspaces the caller may see.
#[utoipa::path(get, path = "/api/v1/agents", tag = "directory",
    responses((status = 200, body = Vec<AgentView>), (status = 401, body = ErrorBody)))]
pub async fn agents(
    State(state): State<WebState>,
    caller: Caller,
) -> Result<Json<Vec<AgentView>>, ApiError> {
    Ok(Json(
        state
            .krake
            .directory()
            .agents()
            .iter()
            .filter(|a| a.workspaces.iter().any(|w| caller.actor.can_see(w)))
            .map(|a| AgentView {
                name: a.name.to_string(),
                role: a.role.clone(),
                description: a.description.clone(),
                workspaces: a.workspaces.iter().map(ToString::to_string).collect(),
            })
            .collect(),
    ))
}

/// Who is asking, with their roles (and, for a session, the CSRF token).
#[utoipa::path(get, path = "/api/v1/me", tag = "directory",
    responses((status = 200, body = MeView), (status = 401, body = ErrorBody)))]
pub async fn me(State(state): State<WebState>, caller: Caller) -> Result<Json<MeView>, ApiError> {
    Ok(Json(MeView {
        user: caller.actor.user.to_string(),
        via: match caller.via {
            crate::auth::Via::Session { .. } => "session".into(),
            crate::auth::Via::Token => "token".into(),
        },
        workspaces: visible(&state, &caller),
        csrf: caller.csrf().map(str::to_owned),
    }))
}
