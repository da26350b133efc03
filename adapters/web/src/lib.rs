//! # krake-web
//!
//! Krake's HTTP front on axum. [`app`] builds the whole router from its state, so tests call it
//! with `tower::ServiceExt::oneshot` and no socket. For now it serves the probes:
//!
//! - `GET /healthz`: the process is up (liveness).
//! - `GET /readyz`: the process can do work: the database answers (readiness).

use async_trait::async_trait;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;

/// What `/readyz` checks: something that answers `Ok` when Krake can serve.
#[async_trait]
pub trait Readiness: Send + Sync {
    /// `Ok` when ready; otherwise a short reason (never a secret).
    async fn check(&self) -> Result<(), String>;
}

/// The router's shared state.
#[derive(Clone)]
pub struct AppState {
    /// The readiness check.
    pub readiness: Arc<dyn Readiness>,
}

/// The whole HTTP application.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
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
}
