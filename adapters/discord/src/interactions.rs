//! `POST /discord/interactions`: Discord's signed HTTP interactions endpoint.
//!
//! Every request is verified first (Ed25519 over `X-Signature-Timestamp` + the raw body, with
//! the application's public key, and the timestamp within
//! [`DiscordConfig::max_signature_skew`](crate::DiscordConfig) of now): any failure is 401, as
//! Discord requires (it sends invalid signatures on purpose to check). Bodies over the configured limit are 413, bodies that are
//! not interactions 400, unknown interaction types 400; all are logged and none panics.

use crate::front::{DiscordFront, FrontError};
use crate::verify::{self, SignatureVerifier};
use crate::wire::Interaction;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use std::sync::Arc;

/// The path Discord is configured to call.
pub const PATH: &str = "/discord/interactions";

#[derive(Clone)]
struct EndpointState {
    front: Arc<DiscordFront>,
    verifier: SignatureVerifier,
}

/// The endpoint's router, to merge into `krake serve`'s app.
pub fn router(front: Arc<DiscordFront>, verifier: SignatureVerifier) -> Router {
    let limit = front.config().max_body_bytes;
    Router::new()
        .route(PATH, post(interactions))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(EndpointState { front, verifier })
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn interactions(
    State(state): State<EndpointState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let timestamp = h("x-signature-timestamp");
    if let Err(e) = state
        .verifier
        .verify(h("x-signature-ed25519"), timestamp, &body)
    {
        tracing::info!(error = %e, "interaction refused: bad signature");
        return error(StatusCode::UNAUTHORIZED, "invalid request signature");
    }
    // Discord never retries an interaction: a correctly signed one from long ago is a replay.
    let skew = state.front.config().max_signature_skew;
    if let Err(e) = verify::check_timestamp(timestamp, state.front.krake().now(), skew) {
        tracing::info!(error = %e, timestamp, "interaction refused: stale signature timestamp");
        return error(StatusCode::UNAUTHORIZED, "stale request timestamp");
    }
    let interaction: Interaction = match serde_json::from_slice(&body) {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(error = %e, "signed but malformed interaction");
            return error(StatusCode::BAD_REQUEST, "malformed interaction");
        }
    };
    match state.front.interaction(interaction).await {
        Ok(answer) => Json(answer).into_response(),
        Err(e @ (FrontError::UnknownType(_) | FrontError::Malformed(_))) => {
            error(StatusCode::BAD_REQUEST, &e.to_string())
        }
    }
}
