//! # krake-web
//!
//! Krake's HTTP front on axum. [`app`] builds the router from its state, so tests call it with
//! `tower::ServiceExt::oneshot` and no socket.
//!
//! - `GET /healthz`: the process is up (liveness).
//! - `GET /readyz`: the process can do work: the database answers (readiness); the body lists
//!   each chat front's state (`fronts`), which does not decide readiness.
//! - `GET /api/v1/workspaces/{slug}/kpis`: a workspace's KPIs, for a personal API token
//!   (`Authorization: Bearer krk_…`) of a user who may see the workspace.
//!
//! The web front proper (REST API under `/api/v1`, sign-in, the dashboard at `/`, the web
//! chat over `/ws/chat` and its embeddable `/widget.js`) is [`front::router`], merged beside
//! [`app`]:
//! - [`api`]: the REST API route modules and the OpenAPI document.
//! - [`auth`]: argon2 passwords, session cookies, CSRF, bearer tokens.
//! - [`login_limits`]: sign-in backoff per name and address, limits per address and name,
//!   bounded concurrent password checks.
//! - [`live`]: the hub that pushes inbox changes to connected sessions, with sequence numbers.
//! - [`ws`]: the web chat protocol over any `Sink`/`Stream` of text frames, and `/ws/chat`.
//! - [`dashboard`]: server-rendered HTML pages (every user text escaped).
//! - [`knowledge_page`]: a workspace's Knowledge page (its files, adding, forgetting, asking).
//! - [`folders_page`], [`schedules_page`], [`costs_page`]: agents' folders (entries edited,
//!   CSV imported), the schedules (paused, resumed) and a month's model costs.
//! - [`kpi_cards`]: KPI cards with inline SVG trends, and the overview on the home page.
//! - [`assets`]: the embedded stylesheet and scripts (no CDN).
//! - [`oidc`]: OpenID Connect sign-in when an issuer is configured.
//! - [`server`]: the HTTP listener with its limits (`[http]`: read timeouts, connections, rate
//!   limits per address and per token).
//! - [`settings`]: `[web]` in the config file, read into a [`front::WebConfig`] and written back
//!   for `krake config` with the client secret as `***`.
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
use krake_core::supervise::FrontStatus;
use krake_core::workspace::WorkspaceSlug;
use sha2::{Digest, Sha256};
use std::sync::Arc;

pub mod api;
pub mod assets;
pub mod auth;
pub mod costs_page;
pub mod dashboard;
pub mod dead_letters_page;
pub mod folders_page;
pub mod front;
pub mod knowledge_page;
pub mod kpi_cards;
pub mod live;
pub mod login_limits;
pub mod oidc;
pub mod runs_page;
pub mod schedules_page;
pub mod server;
pub mod settings;
pub mod visitor;
pub mod ws;

/// What `/readyz` checks: something that answers `Ok` when Krake can serve.
#[async_trait]
pub trait Readiness: Send + Sync {
    /// `Ok` when ready; otherwise a short reason (never a secret).
    async fn check(&self) -> Result<(), String>;

    /// Each front's state (Telegram, Discord, web), listed in `/readyz`'s body. Only listed:
    /// see [`app`] for why a front that is down leaves Krake ready.
    fn fronts(&self) -> Vec<(String, FrontStatus)> {
        Vec::new()
    }
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
    /// An uploaded file is larger than the configured limit (bytes).
    #[error("the file is larger than {} ([rag] max_file_mb); split it, or ask an owner to run `krake ingest`", krake_core::knowledge::learn::megabytes(*.0))]
    FileTooLarge(u64),
    /// Too many attempts (sign-in); try again after this many seconds.
    #[error("too many attempts; try again in {0} seconds")]
    TooManyRequests(u64),
    /// Too much work under way (password checks); try again after this many seconds.
    #[error("Krake is busy; try again in {0} seconds")]
    Busy(u64),
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
            ApiError::PayloadTooLarge(_) | ApiError::FileTooLarge(_) => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
            ApiError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            ApiError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "busy"),
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
        if let ApiError::TooManyRequests(secs) | ApiError::Busy(secs) = &self {
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
///
/// `/readyz` answers 200 while [`Readiness::check`] passes (the database answers), whatever
/// the chat fronts do: with Telegram or Discord away, the web chat, the API, the dashboard and
/// the webhooks still serve, and taking the process out of a load balancer would only stop
/// those too. The body lists each front's state so an operator sees it:
/// `{"status":"ready","fronts":{"telegram":{"state":"retrying","error":"…","failures":3,
/// "retry_in_secs":4}}}`; alert on `krake_front_up` in `/metrics` instead.
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
    let fronts: serde_json::Map<String, serde_json::Value> = state
        .readiness
        .fronts()
        .into_iter()
        .map(|(name, s)| (name, front_json(&s)))
        .collect();
    match state.readiness.check().await {
        Ok(()) => Json(serde_json::json!({ "status": "ready", "fronts": fronts })).into_response(),
        Err(reason) => {
            tracing::warn!(%reason, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({
                    "status": "unavailable",
                    "reason": reason,
                    "fronts": fronts,
                })),
            )
                .into_response()
        }
    }
}

/// One front's state as `/readyz` shows it.
fn front_json(s: &FrontStatus) -> serde_json::Value {
    let mut v = serde_json::json!({ "state": s.state.name() });
    if let Some(error) = s.state.error() {
        v["error"] = error.into();
        v["failures"] = s.failures.into();
    }
    if let Some(wait) = s.retry_in() {
        v["retry_in_secs"] = wait.as_secs().into();
    }
    v
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
    let grant = api
        .tokens
        .token_grant(
            &hash_token(token),
            krake_core::time::Clock::now(&krake_core::time::SystemClock),
        )
        .await?
        .filter(|g| g.scope == krake_core::ports::TokenScope::Personal)
        .ok_or(ApiError::Unauthenticated)?;
    Ok(auth::actor_of(grant.user, Front::Api))
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
    // The commerce figures as before, with every KPI of the workspace under `figures`.
    let commerce = api.krake.kpis(&actor, &ws).await?;
    let board = api.krake.kpi_board(&actor, &ws).await?;
    if commerce.is_none() && board.is_none() {
        return Err(ApiError::NotFound("KPIs are not available".into()));
    }
    let mut v = match commerce {
        Some(k) => serde_json::to_value(k),
        None => Ok(serde_json::json!({ "workspace": ws })),
    }
    .map_err(|e| {
        tracing::error!(error = %e, "writing KPIs as JSON");
        ApiError::Internal
    })?;
    if let Some(b) = board {
        v["day"] = b.today.into();
        v["demo"] = b.demo.into();
        v["notes"] = b.notes.into();
        v["figures"] = serde_json::to_value(b.figures).map_err(|e| {
            tracing::error!(error = %e, "writing KPIs as JSON");
            ApiError::Internal
        })?;
    }
    Ok(Json(v).into_response())
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

    struct WithFronts(Result<(), String>, krake_core::supervise::Fronts);

    #[async_trait]
    impl Readiness for WithFronts {
        async fn check(&self) -> Result<(), String> {
            self.0.clone()
        }

        fn fronts(&self) -> Vec<(String, FrontStatus)> {
            self.1.snapshot()
        }
    }

    async fn readyz_of(
        ready: Result<(), String>,
        fronts: &krake_core::supervise::Fronts,
    ) -> (StatusCode, serde_json::Value) {
        let app = app(AppState {
            readiness: Arc::new(WithFronts(ready, fronts.clone())),
            api: None,
        });
        let res = app
            .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn readyz_lists_the_fronts_and_a_front_down_leaves_it_ready() {
        let fronts = krake_core::supervise::Fronts::new();
        fronts.register("web").up();
        fronts
            .register("telegram")
            .retrying("the Telegram Bot API failed: connection refused");
        fronts
            .register("discord")
            .unauthorized("Discord refused the bot token: set KRAKE_DISCORD_TOKEN");
        let (status, body) = readyz_of(Ok(()), &fronts).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["status"], "ready");
        assert_eq!(body["fronts"]["web"], serde_json::json!({"state": "up"}));
        assert_eq!(body["fronts"]["telegram"]["state"], "retrying");
        assert_eq!(
            body["fronts"]["telegram"]["error"],
            "the Telegram Bot API failed: connection refused"
        );
        assert_eq!(body["fronts"]["telegram"]["failures"], 1);
        assert_eq!(body["fronts"]["discord"]["state"], "unauthorized");
        assert!(
            body["fronts"]["discord"]["error"]
                .as_str()
                .unwrap()
                .contains("KRAKE_DISCORD_TOKEN")
        );
        let (status, body) = readyz_of(Err("database unavailable".into()), &fronts).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["reason"], "database unavailable");
        assert_eq!(body["fronts"]["web"]["state"], "up");
    }

    #[test]
    fn tokens_hash_to_hex() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
