//! # krake-web
//!
//! Krake's HTTP front on axum. [`app`] builds the router from its state, so tests call it with
//! `tower::ServiceExt::oneshot` and no socket.
//!
//! - `GET /healthz`: the process is up (liveness).
//! - `GET /readyz`: the process can do work: the database answers (readiness).
//! - `GET /api/v1/workspaces/{slug}/kpis`: a workspace's KPIs, for a personal API token
//!   (`Authorization: Bearer krk_…`) of a user who may see the workspace.
//!
//! The web front proper (REST API under `/api/v1`, sign-in, the dashboard at `/`, the web
//! chat over `/ws/chat` and its embeddable `/widget.js`) is [`front::router`], merged beside
//! [`app`]:
//! - [`api`]: the REST API route modules and the OpenAPI document.
//! - [`auth`]: argon2 passwords, session cookies, CSRF, bearer tokens, login rate limits.
//! - [`live`]: the hub that pushes inbox changes to connected sessions, with sequence numbers.
//! - [`ws`]: the web chat protocol over any `Sink`/`Stream` of text frames, and `/ws/chat`.
//! - [`dashboard`]: server-rendered HTML pages (every user text escaped).
//! - [`assets`]: the embedded stylesheet and scripts (no CDN).
//! - [`oidc`]: OpenID Connect sign-in when an issuer is configured.
//!
//! Errors have one JSON shape, `{"error":{"code":"…","message":"…"}}`, made in one place
//! ([`ApiError`]).

mod costs;

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use krake_core::Krake;
use krake_core::actor::{Actor, Front};
use krake_core::ports::TokenRepo;
use krake_core::workspace::WorkspaceSlug;
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub mod api;
pub mod assets;
pub mod auth;
pub mod dashboard;
pub mod front;
pub mod live;
pub mod oidc;
pub mod ws;

/// What `/readyz` checks: something that answers `Ok` when Krake can serve.
#[async_trait]
pub trait Readiness: Send + Sync {
    /// `Ok` when ready; otherwise a short reason (never a secret).
    async fn check(&self) -> Result<(), String>;
}

/// What the API needs: the core service and the token store.
#[derive(Clone)]
pub struct Api {
    /// The core service (it enforces who may see what).
    pub krake: Krake,
    /// Personal API tokens.
    pub tokens: Arc<dyn TokenRepo>,
}

/// The router's shared state.
#[derive(Clone)]
pub struct AppState {
    /// The readiness check.
    pub readiness: Arc<dyn Readiness>,
    /// The API; `None` serves only the probes.
    pub api: Option<Api>,
}

/// The SHA-256 (hex) under which a personal API token is stored.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An API failure, mapped to a status and the JSON error shape in one place.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or an unknown token.
    #[error(
        "sign in first (at /login), or send `Authorization: Bearer <token>` (create a token with `krake user token NAME`)"
    )]
    Unauthenticated,
    /// Authenticated, but not allowed here.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed (bad JSON, wrong types, unknown fields, bad values).
    #[error("{0}")]
    BadRequest(String),
    /// The thread is not in a state for this (already decided); carries its current state.
    #[error("{message}")]
    Conflict {
        /// What happened.
        message: String,
        /// The current state of what was refused, as JSON.
        current: serde_json::Value,
    },
    /// The body is larger than allowed.
    #[error("the request body is larger than {0} bytes; send less")]
    PayloadTooLarge(usize),
    /// Too many attempts (sign-in); try again after this many seconds.
    #[error("too many attempts; try again in {0} seconds")]
    TooManyRequests(u64),
    /// Something failed inside; details are logged, not returned.
    #[error("something went wrong on the server; try again")]
    Internal,
}

impl ApiError {
    /// The HTTP status and the error code of this error.
    pub fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Conflict { .. } => (StatusCode::CONFLICT, "conflict"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            ApiError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.status_code().0
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        let mut error = serde_json::json!({ "code": code, "message": self.to_string() });
        if let ApiError::Conflict { current, .. } = &self
            && !current.is_null()
        {
            error["current"] = current.clone();
        }
        let mut res = (status, Json(serde_json::json!({ "error": error }))).into_response();
        if let ApiError::TooManyRequests(secs) = &self {
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(*secs),
            );
        }
        res
    }
}

impl From<krake_core::ports::RepoError> for ApiError {
    fn from(e: krake_core::ports::RepoError) -> Self {
        tracing::error!(error = %e, "API request failed");
        ApiError::Internal
    }
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/api/v1/workspaces/{slug}/kpis", get(kpis))
        .merge(costs::router())
        .with_state(state)
}

async fn healthz() -> Response {
    Json(serde_json::json!({ "status": "ok" })).into_response()
}

async fn readyz(State(state): State<AppState>) -> Response {
    match state.readiness.check().await {
        Ok(()) => Json(serde_json::json!({ "status": "ready" })).into_response(),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "unavailable", "reason": reason })),
            )
                .into_response()
        }
    }
}

/// The actor behind a request's bearer token.
async fn authenticate(api: &Api, headers: &HeaderMap) -> Result<Actor, ApiError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(ApiError::Unauthenticated)?;
    let user = api
        .tokens
        .user_for_token(&hash_token(token))
        .await?
        .ok_or(ApiError::Unauthenticated)?;
    let mut actor = Actor::new(user.name, Front::Api, user.role);
    actor.workspace_roles = user.workspace_roles;
    Ok(actor)
}

async fn kpis(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let api = state
        .api
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("the API is not enabled".into()))?;
    let actor = authenticate(api, &headers).await?;
    let ws = WorkspaceSlug::parse(&slug)
        .ok()
        .filter(|w| api.krake.directory().workspace(w).is_some())
        .ok_or_else(|| ApiError::NotFound(format!("there is no workspace `{slug}`")))?;
    if !actor.can_see(&ws) {
        return Err(ApiError::Forbidden(format!(
            "{} may not see {ws}",
            actor.user
        )));
    }
    let k = api
        .krake
        .kpis(&actor, &ws)
        .await?
        .ok_or_else(|| ApiError::NotFound("KPIs are not available".into()))?;
    Ok(Json(k).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    struct Fixed(Result<(), String>);

    #[async_trait]
    impl Readiness for Fixed {
        async fn check(&self) -> Result<(), String> {
            self.0.clone()
        }
    }

    async fn status(ready: Result<(), String>, path: &str) -> StatusCode {
        let app = app(AppState {
            readiness: Arc::new(Fixed(ready)),
            api: None,
        });
        let res = app
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        res.status()
    }

    #[tokio::test]
    async fn probes() {
        assert_eq!(status(Ok(()), "/healthz").await, StatusCode::OK);
        assert_eq!(status(Ok(()), "/readyz").await, StatusCode::OK);
        assert_eq!(
            status(Err("database down".into()), "/readyz").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            status(Err("database down".into()), "/healthz").await,
            StatusCode::OK
        );
        assert_eq!(status(Ok(()), "/nope").await, StatusCode::NOT_FOUND);
    }

    #[test]
    fn tokens_hash_to_hex() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
