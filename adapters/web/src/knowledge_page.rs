//! The dashboard's Knowledge page of a workspace (`/workspaces/{slug}/knowledge`): the files
//! it has learned (name, kind, passages, who added them, from where, when), a form to add one
//! and a *Forget* button per file for its members, and a question box showing the passages
//! (with their citations and scores) that an agent asked the same would be given. Adding and
//! forgetting go through core's accept path as the API's do ([`crate::api::knowledge`]).

use crate::ApiError;
use crate::api::knowledge::{forget_file, learn, read_upload, workspace};
use crate::auth::Caller;
use crate::dashboard::{ago, flash, html, layout_in, signed_in};
use crate::front::WebState;
use axum::Router;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use krake_core::knowledge::learn::{SourceStatus, megabytes};
use krake_core::reply::Tone;
use krake_core::workspace::WorkspaceSlug;
use maud::html as markup;
use serde::Deserialize;

/// Knowledge page routes.
pub fn router() -> Router<WebState> {
    Router::new()
        .route(
            "/workspaces/{slug}/knowledge",
            get(show).post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/workspaces/{slug}/knowledge/forget", post(forget))
}

/// `?q=`: a question to show the retrieved passages of.
#[derive(Debug, Default, Deserialize)]
pub struct AskQuery {
    /// The question.
    pub q: Option<String>,
}

/// The Forget form.
#[derive(Debug, Deserialize)]
pub struct ForgetForm {
    /// The session's CSRF token.
    pub csrf: String,
    /// The file to forget.
    pub name: String,
}

/// A message above the page: its class (`ok`, `error`) and text.
type Flash = Option<(&'static str, String)>;

async fn render(
    state: &WebState,
    who: &Caller,
    ws: &WorkspaceSlug,
    question: &str,
    note: Flash,
    status: StatusCode,
) -> Response {
    let actor = &who.actor;
    let sources = match state.krake.knowledge_sources(actor, ws).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return failed(who, ApiError::from(e)),
        Err(e) => return failed(who, ApiError::from(e)),
    };
    let name = state
        .krake
        .directory()
        .workspace(ws)
        .map_or_else(|| ws.to_string(), |w| w.name.clone());
    let slug = ws.as_str();
    let csrf = who.csrf().unwrap_or_default();
    let may_change = state.krake.may_change_knowledge(actor, ws);
    let passages = if question.is_empty() {
        None
    } else {
        Some(state.krake.knowledge_search(actor, ws, question).await)
    };
    let now = state.krake.now();
    let body = markup! {
        h1 { "Knowledge " small { (name) " · " (slug) } }
        p {
            a href={ "/workspaces/" (slug) } { "Its KPIs" } " · "
            a href={ "/?workspace=" (slug) } { "Its inbox" }
        }
        @if let Some((class, text)) = &note { (flash(class, text)) }
        @match &may_change {
            Ok(()) => section class="knowledge-add" {
                h2 { "Add a file" }
                form method="post" action={ "/workspaces/" (slug) "/knowledge" } enctype="multipart/form-data" class="upload" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="file" {
                        "Markdown, text, HTML, CSV or PDF with a text layer, up to "
                        (megabytes(state.config.max_file_bytes))
                    }
                    input id="file" name="file" type="file" required;
                    button type="submit" { "Learn it" }
                }
            },
            Err(e) => p class="hint" { (e) },
        }
        section class="knowledge-ask" {
            h2 { "Ask it" }
            form method="get" action={ "/workspaces/" (slug) "/knowledge" } class="ask" {
                label for="q" { "What an agent would be given for" }
                input id="q" name="q" value=(question) placeholder="how long do refunds take?";
                button type="submit" { "Search" }
            }
            @match &passages {
                None => {}
                Some(Ok(p)) if p.is_empty() => p class="empty" id="passages" { "Nothing in this knowledge matches." },
                Some(Ok(passages)) => ol class="passages" id="passages" {
                    @for p in passages {
                        li {
                            p class="cite" {
                                strong { (p.citation()) } " "
                                span class="score" title="relevance" { "score " (format!("{:.3}", p.score)) }
                            }
                            blockquote { (p.text.trim()) }
                        }
                    }
                },
                Some(Err(e)) => (flash("error", &e.to_string())),
            }
        }
        h2 { "Files" }
        @if sources.is_empty() {
            p class="empty" { "No files yet. Add one above, or send one to Krake in chat." }
        } @else {
            table class="sources" id="sources" {
                thead { tr { th { "File" } th { "Kind" } th { "Passages" } th { "Added by" } th { "From" } th { "When" } th {} } }
                tbody {
                    @for s in &sources {
                        tr data-source=(s.name) data-status=(s.status.as_str()) {
                            td class="title" {
                                (s.name)
                                @if !s.title.is_empty() && s.title != s.name { br; small { (s.title) } }
                            }
                            td { (if s.kind.is_empty() { "file" } else { &s.kind }) }
                            td class="passages" {
                                @if s.status == SourceStatus::Queued { "being read" } @else { (s.passages) }
                            }
                            td { (s.added_by) }
                            td { (s.front) }
                            td { (ago(now, s.created_at)) }
                            td {
                                @if may_change.is_ok() && s.status == SourceStatus::Learned {
                                    form method="post" action={ "/workspaces/" (slug) "/knowledge/forget" } class="inline" {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="name" value=(s.name);
                                        button type="submit" class="reject" { "Forget" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    html(
        status,
        layout_in(&format!("Knowledge · {name}"), Some(who), slug, body),
    )
}

fn failed(who: &Caller, e: ApiError) -> Response {
    crate::dashboard::failed_page(
        who,
        "Knowledge",
        &e,
        ("/workspaces", "Back to the workspaces"),
    )
}

/// The caller and the workspace of a Knowledge page request, or the response instead.
async fn open(
    state: &WebState,
    headers: &HeaderMap,
    slug: &str,
) -> Result<(Caller, WorkspaceSlug), Response> {
    let who = signed_in(state, headers).await?;
    match workspace(state, slug) {
        Ok(ws) => Ok((who, ws)),
        Err(e) => Err(failed(&who, e)),
    }
}

async fn show(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    q: Result<Query<AskQuery>, QueryRejection>,
) -> Response {
    let (who, ws) = match open(&state, &headers, &slug).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let question = q.ok().and_then(|Query(q)| q.q).unwrap_or_default();
    render(&state, &who, &ws, question.trim(), None, StatusCode::OK).await
}

async fn upload(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    let (who, ws) = match open(&state, &headers, &slug).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let refuse = |e: ApiError| {
        let status = e.status();
        render(
            &state,
            &who,
            &ws,
            "",
            Some(("error", e.to_string())),
            status,
        )
    };
    if let Err(e) = state.krake.may_change_knowledge(&who.actor, &ws) {
        return refuse(e.into()).await;
    }
    let form = match form {
        Ok(f) => f,
        Err(e) => return refuse(ApiError::BadRequest(e.body_text())).await,
    };
    let upload = match read_upload(&headers, form, state.config.max_file_bytes).await {
        Ok(u) => u,
        Err(e) => return refuse(e).await,
    };
    if let Err(e) = who.check_csrf(upload.csrf.as_deref()) {
        return refuse(e).await;
    }
    let key = match crate::api::knowledge::key_of(&headers, &who.actor, "upload") {
        Ok(k) => k,
        Err(e) => return refuse(e).await,
    };
    let reply = learn(&state, &who.actor, &ws, upload, key, None).await;
    let (class, status) = match reply.tone {
        Tone::Info | Tone::Success => ("ok", StatusCode::OK),
        Tone::Warning => ("error", StatusCode::BAD_REQUEST),
        Tone::Error => ("error", StatusCode::INTERNAL_SERVER_ERROR),
    };
    render(&state, &who, &ws, "", Some((class, reply.text)), status).await
}

async fn forget(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    form: Result<Form<ForgetForm>, FormRejection>,
) -> Response {
    let (who, ws) = match open(&state, &headers, &slug).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return ApiError::PayloadTooLarge(state.config.max_body_bytes).into_response();
        }
        Err(e) => return ApiError::BadRequest(e.body_text()).into_response(),
    };
    if let Err(e) = who.check_csrf(Some(&form.csrf)) {
        return e.into_response();
    }
    let key = match crate::api::knowledge::key_of(&headers, &who.actor, "forget") {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let (flash, status) = match forget_file(&state, &who.actor, &ws, &form.name, key).await {
        Ok(reply) => (("ok", reply.text), StatusCode::OK),
        Err(e) => {
            let status = e.status();
            (("error", e.to_string()), status)
        }
    };
    render(&state, &who, &ws, "", Some(flash), status).await
}
