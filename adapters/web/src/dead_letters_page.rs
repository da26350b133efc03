//! The dashboard's Dead letters page (owners): what could not be delivered, where and why,
//! with *Send again* and *Discard* forms. The rules are core's (`dead_letters`).

use crate::ApiError;
use crate::auth::Caller;
use crate::dashboard::{WithCsrf, flash, form_post, html, layout, signed_in};
use crate::front::WebState;
use axum::Router;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use krake_core::dead_letters::{DeadLetterCommand, DeadLetterOutcome};
use krake_core::outbox::OutboxId;
use maud::html as markup;
use serde::Deserialize;

/// Dead-letter page routes.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/deadletters", get(list))
        .route("/deadletters/{id}", post(act))
}

async fn render(state: &WebState, who: &Caller, note: Option<(&str, String)>) -> Response {
    let outcome = match state
        .krake
        .dead_letters(&who.actor, DeadLetterCommand::List)
        .await
    {
        Ok(o) => o,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let csrf = who.csrf().unwrap_or_default();
    let status = match &outcome {
        DeadLetterOutcome::Listed(_) => StatusCode::OK,
        DeadLetterOutcome::NotOwner => StatusCode::FORBIDDEN,
        _ => StatusCode::NOT_FOUND,
    };
    let body = markup! {
        h1 { "Dead letters" }
        @if let Some((kind, text)) = &note { (flash(kind, text)) }
        @match &outcome {
            DeadLetterOutcome::Listed(list) if list.is_empty() => {
                p class="empty" { "No dead letters: everything was delivered or is still being tried." }
            }
            DeadLetterOutcome::Listed(list) => {
                p { "Messages Krake gave up on after its retries. Send one again once the place works, or discard it." }
                table id="deadletters" {
                    thead { tr { th { "#" } th { "Destination" } th { "Why" } th {} } }
                    tbody {
                        @for d in list {
                            tr data-dead=(d.id.0) {
                                td { (d.id.0) }
                                td { (d.destination.as_str()) }
                                td class="title" { (d.error) }
                                td {
                                    form method="post" action={ "/deadletters/" (d.id.0) } class="inline" {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button type="submit" name="action" value="retry" class="approve" { "Send again" }
                                        " "
                                        button type="submit" name="action" value="discard" class="reject" { "Discard" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            DeadLetterOutcome::NotOwner => {
                (flash("error", "Only owners see dead letters: they may hold any workspace's messages."))
            }
            _ => p { "Dead letters are not available here." },
        }
    };
    html(status, layout("Dead letters", Some(who), body))
}

/// `?done=retried|discarded&id=N` after an action.
#[derive(Debug, Default, Deserialize)]
pub struct DeadDone {
    /// What the last action did.
    pub done: Option<String>,
    /// The dead letter it was done to.
    pub id: Option<i64>,
}

async fn list(
    State(state): State<WebState>,
    headers: HeaderMap,
    q: Result<Query<DeadDone>, QueryRejection>,
) -> Response {
    let who = match signed_in(&state, &headers).await {
        Ok(who) => who,
        Err(r) => return r,
    };
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let note = match (q.done.as_deref(), q.id) {
        (Some("retried"), Some(id)) => Some((
            "ok",
            format!(
                "Dead letter #{id} is queued again: Krake sends it with the next delivery round."
            ),
        )),
        (Some("discarded"), Some(id)) => Some(("ok", format!("Dead letter #{id} is discarded."))),
        _ => None,
    };
    render(&state, &who, note).await
}

/// The Send again / Discard form.
#[derive(Debug, Deserialize)]
pub struct DeadLetterForm {
    /// The session's CSRF token.
    pub csrf: String,
    /// `retry` or `discard`.
    pub action: String,
}

impl WithCsrf for DeadLetterForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn act(
    State(state): State<WebState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    form: Result<Form<DeadLetterForm>, FormRejection>,
) -> Response {
    let (who, id, form) = match form_post(&state, &headers, id, form, "dead letter").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let cmd = match form.action.as_str() {
        "retry" => DeadLetterCommand::Retry(OutboxId(id)),
        "discard" => DeadLetterCommand::Discard(OutboxId(id)),
        other => {
            return ApiError::BadRequest(format!("`{other}` is not an action here"))
                .into_response();
        }
    };
    match state.krake.dead_letters(&who.actor, cmd).await {
        Ok(DeadLetterOutcome::Retried(_)) => {
            Redirect::to(&format!("/deadletters?done=retried&id={id}")).into_response()
        }
        Ok(DeadLetterOutcome::Discarded(_)) => {
            Redirect::to(&format!("/deadletters?done=discarded&id={id}")).into_response()
        }
        Ok(DeadLetterOutcome::NotFound(id)) => {
            render(
                &state,
                &who,
                Some(("error", format!("There is no dead letter #{}.", id.0))),
            )
            .await
        }
        Ok(_) => render(&state, &who, None).await,
        Err(e) => ApiError::from(e).into_response(),
    }
}
