//! The dashboard's Dead letters page (owners): what could not be delivered, where and why,
//! with *Send again* and *Discard* forms. The rules are core's (`dead_letters`).

use crate::ApiError;
use crate::auth::Caller;
use crate::dashboard::{WithCsrf, esc, form_post, html, page, signed_in};
use crate::front::WebState;
use axum::Router;
use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use krake_core::dead_letters::{DeadLetterCommand, DeadLetterOutcome};
use krake_core::outbox::OutboxId;
use serde::Deserialize;
use std::fmt::Write as _;

/// Dead-letter page routes.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/deadletters", get(list))
        .route("/deadletters/{id}", post(act))
}

async fn render(state: &WebState, who: &Caller, flash: Option<(&str, String)>) -> Response {
    let outcome = match state
        .krake
        .dead_letters(&who.actor, DeadLetterCommand::List)
        .await
    {
        Ok(o) => o,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut b = String::from("<h1>Dead letters</h1>");
    if let Some((kind, text)) = flash {
        let _ = write!(
            b,
            r#"<p class="flash {kind}" role="alert">{}</p>"#,
            esc(&text)
        );
    }
    let status = match outcome {
        DeadLetterOutcome::Listed(list) if list.is_empty() => {
            b.push_str(r#"<p class="empty">No dead letters: everything was delivered or is still being tried.</p>"#);
            StatusCode::OK
        }
        DeadLetterOutcome::Listed(list) => {
            b.push_str(r#"<p>Messages Krake gave up on after its retries. Send one again once the place works, or discard it.</p><table id="deadletters"><thead><tr><th>#</th><th>Destination</th><th>Why</th><th></th></tr></thead><tbody>"#);
            for d in &list {
                let _ = write!(
                    b,
                    r#"<tr data-dead="{id}"><td>{id}</td><td>{dest}</td><td class="title">{why}</td><td><form method="post" action="/deadletters/{id}" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button type="submit" name="action" value="retry" class="approve">Send again</button> <button type="submit" name="action" value="discard" class="reject">Discard</button></form></td></tr>"#,
                    id = d.id.0,
                    dest = esc(d.destination.as_str()),
                    why = esc(&d.error),
                    csrf = esc(who.csrf().unwrap_or_default()),
                );
            }
            b.push_str("</tbody></table>");
            StatusCode::OK
        }
        DeadLetterOutcome::NotOwner => {
            b.push_str(r#"<p class="flash error" role="alert">Only owners see dead letters: they may hold any workspace's messages.</p>"#);
            StatusCode::FORBIDDEN
        }
        _ => {
            b.push_str("<p>Dead letters are not available here.</p>");
            StatusCode::NOT_FOUND
        }
    };
    html(status, page("Dead letters", Some(who), &b))
}

async fn list(State(state): State<WebState>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers).await {
        Ok(who) => render(&state, &who, None).await,
        Err(r) => r,
    }
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
        Ok(DeadLetterOutcome::Retried(_) | DeadLetterOutcome::Discarded(_)) => {
            Redirect::to("/deadletters").into_response()
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
