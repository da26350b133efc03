//! `/api/v1/deadletters`: messages that could not be delivered (owners only), sent again or
//! given up. The rules are core's (`dead_letters`); this maps them to status codes.

use super::ErrorBody;
use crate::ApiError;
use crate::auth::{CSRF_HEADER, Caller};
use crate::front::WebState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use krake_core::dead_letters::{DeadLetterCommand, DeadLetterOutcome};
use krake_core::outbox::OutboxId;
use serde::Serialize;
use utoipa::ToSchema;

/// Dead-letter routes.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/api/v1/deadletters", get(list))
        .route("/api/v1/deadletters/{id}/retry", post(retry))
        .route("/api/v1/deadletters/{id}/discard", post(discard))
}

/// A message that could not be delivered.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterView {
    /// Its id.
    pub id: i64,
    /// Where it was going (`telegram:42`, `discord:…`, `web:lunavo`).
    pub destination: String,
    /// Why it failed, the last time.
    pub error: String,
}

/// The dead letters, newest first (at most 100).
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterList {
    /// The dead letters.
    pub dead_letters: Vec<DeadLetterView>,
}

/// What retrying or discarding did.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterDone {
    /// The dead letter.
    pub id: i64,
    /// `retried` (queued again) or `discarded`.
    pub outcome: String,
}

fn outbox_id(id: Result<Path<i64>, PathRejection>) -> Result<OutboxId, ApiError> {
    match id {
        Ok(Path(n)) if n > 0 => Ok(OutboxId(n)),
        _ => Err(ApiError::BadRequest(
            "a dead letter id is a positive number, as in /api/v1/deadletters/41/retry".into(),
        )),
    }
}

fn refused(o: DeadLetterOutcome) -> ApiError {
    match o {
        DeadLetterOutcome::NotFound(id) => {
            ApiError::NotFound(format!("there is no dead letter #{}", id.0))
        }
        DeadLetterOutcome::NotOwner => ApiError::Forbidden("only owners see dead letters".into()),
        _ => ApiError::NotFound("dead letters are not available here".into()),
    }
}

/// The dead letters (owners).
#[utoipa::path(get, path = "/api/v1/deadletters", tag = "deadletters",
    responses((status = 200, body = DeadLetterList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<WebState>,
    caller: Caller,
) -> Result<Json<DeadLetterList>, ApiError> {
    match state
        .krake
        .dead_letters(&caller.actor, DeadLetterCommand::List)
        .await?
    {
        DeadLetterOutcome::Listed(list) => Ok(Json(DeadLetterList {
            dead_letters: list
                .into_iter()
                .map(|d| DeadLetterView {
                    id: d.id.0,
                    destination: d.destination.as_str().to_owned(),
                    error: d.error,
                })
                .collect(),
        })),
        other => Err(refused(other)),
    }
}

async fn act(
    state: &WebState,
    caller: &Caller,
    headers: &HeaderMap,
    cmd: DeadLetterCommand,
) -> Result<Json<DeadLetterDone>, ApiError> {
    caller.check_csrf(headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))?;
    match state.krake.dead_letters(&caller.actor, cmd).await? {
        DeadLetterOutcome::Retried(id) => Ok(Json(DeadLetterDone {
            id: id.0,
            outcome: "retried".into(),
        })),
        DeadLetterOutcome::Discarded(id) => Ok(Json(DeadLetterDone {
            id: id.0,
            outcome: "discarded".into(),
        })),
        other => Err(refused(other)),
    }
}

/// Sends a dead letter again (owners): it goes out after anything already waiting for its
/// destination.
#[utoipa::path(post, path = "/api/v1/deadletters/{id}/retry", tag = "deadletters",
    params(("id" = i64, Path, description = "dead letter id")),
    responses((status = 200, body = DeadLetterDone), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn retry(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<DeadLetterDone>, ApiError> {
    let id = outbox_id(id)?;
    act(&state, &caller, &headers, DeadLetterCommand::Retry(id)).await
}

/// Gives up on a dead letter (owners).
#[utoipa::path(post, path = "/api/v1/deadletters/{id}/discard", tag = "deadletters",
    params(("id" = i64, Path, description = "dead letter id")),
    responses((status = 200, body = DeadLetterDone), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn discard(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<DeadLetterDone>, ApiError> {
    let id = outbox_id(id)?;
    act(&state, &caller, &headers, DeadLetterCommand::Discard(id)).await
}
