//! The dashboard's Knowledge page of a workspace (`/workspaces/{slug}/knowledge`): the files
//! it has learned (name, kind, passages, who added them, from where, when), a form to add one
//! and a *Forget* button per file for its members, and a question box showing the passages
//! (with their citations and scores) that an agent asked the same would be given. Adding and
//! forgetting go through core's accept path as the API's do ([`crate::api::knowledge`]).

use crate::ApiError;
use crate::api::knowledge::{forget_file, learn, read_upload, workspace};
use crate::auth::Caller;
use crate::dashboard::{esc, html, page_in, signed_in};
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
use serde::Deserialize;
use std::fmt::Write as _;

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
    flash: Flash,
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
    let slug = esc(ws.as_str());
    let csrf = esc(who.csrf().unwrap_or_default());
    let mut b = format!(
        r#"<h1>Knowledge <small>{name} · {slug}</small></h1><p><a href="/workspaces/{slug}">Its KPIs</a> · <a href="/?workspace={slug}">Its inbox</a></p>"#,
        name = esc(&name),
    );
    if let Some((class, text)) = &flash {
        let _ = write!(
            b,
            r#"<p class="flash {class}" role="alert" id="flash">{}</p>"#,
            esc(text)
        );
    }
    let may_change = state.krake.may_change_knowledge(actor, ws);
    match &may_change {
        Ok(()) => {
            let _ = write!(
                b,
                r#"<section class="knowledge-add"><h2>Add a file</h2><form method="post" action="/workspaces/{slug}/knowledge" enctype="multipart/form-data" class="upload"><input type="hidden" name="csrf" value="{csrf}"><label for="file">Markdown, text, HTML, CSV or PDF with a text layer, up to {max}</label><input id="file" name="file" type="file" required><button type="submit">Learn it</button></form></section>"#,
                max = esc(&megabytes(state.config.max_file_bytes)),
            );
        }
        Err(e) => {
            let _ = write!(b, r#"<p class="hint">{}</p>"#, esc(&e.to_string()));
        }
    }
    let _ = write!(
        b,
        r#"<section class="knowledge-ask"><h2>Ask it</h2><form method="get" action="/workspaces/{slug}/knowledge" class="ask"><label for="q">What an agent would be given for</label><input id="q" name="q" value="{q}" placeholder="how long do refunds take?"><button type="submit">Search</button></form>"#,
        q = esc(question),
    );
    if !question.is_empty() {
        match state.krake.knowledge_search(actor, ws, question).await {
            Ok(p) if p.is_empty() => b.push_str(
                r#"<p class="empty" id="passages">Nothing in this knowledge matches.</p>"#,
            ),
            Ok(passages) => {
                b.push_str(r#"<ol class="passages" id="passages">"#);
                for p in &passages {
                    let _ = write!(
                        b,
                        r#"<li><p class="cite"><strong>{cite}</strong> <span class="score" title="relevance">score {score:.3}</span></p><blockquote>{text}</blockquote></li>"#,
                        cite = esc(&p.citation()),
                        score = p.score,
                        text = esc(p.text.trim()),
                    );
                }
                b.push_str("</ol>");
            }
            Err(e) => {
                let _ = write!(
                    b,
                    r#"<p class="flash error" role="alert">{}</p>"#,
                    esc(&e.to_string())
                );
            }
        }
    }
    b.push_str("</section><h2>Files</h2>");
    if sources.is_empty() {
        b.push_str(
            r#"<p class="empty">No files yet. Add one above, or send one to Krake in chat.</p>"#,
        );
    } else {
        b.push_str(r#"<table class="sources" id="sources"><thead><tr><th>File</th><th>Kind</th><th>Passages</th><th>Added by</th><th>From</th><th>When</th><th></th></tr></thead><tbody>"#);
        let now = state.krake.now();
        for s in &sources {
            let passages = match s.status {
                SourceStatus::Queued => "being read".to_owned(),
                _ => s.passages.to_string(),
            };
            let title = if s.title.is_empty() || s.title == s.name {
                String::new()
            } else {
                format!(r#"<br><small>{}</small>"#, esc(&s.title))
            };
            let forget = if may_change.is_ok() && s.status == SourceStatus::Learned {
                format!(
                    r#"<form method="post" action="/workspaces/{slug}/knowledge/forget" class="inline"><input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="name" value="{name}"><button type="submit" class="reject">Forget</button></form>"#,
                    name = esc(&s.name),
                )
            } else {
                String::new()
            };
            let _ = write!(
                b,
                r#"<tr data-source="{name}" data-status="{status}"><td class="title">{name}{title}</td><td>{kind}</td><td class="passages">{passages}</td><td>{by}</td><td>{front}</td><td>{age} ago</td><td>{forget}</td></tr>"#,
                name = esc(&s.name),
                status = s.status.as_str(),
                kind = esc(if s.kind.is_empty() { "file" } else { &s.kind }),
                by = esc(&s.added_by),
                front = esc(&s.front),
                age = esc(&krake_core::kpi::age(now, s.created_at)),
            );
        }
        b.push_str("</tbody></table>");
    }
    html(
        status,
        page_in(&format!("Knowledge · {name}"), Some(who), &b, ws.as_str()),
    )
}

fn failed(who: &Caller, e: ApiError) -> Response {
    let body = format!(
        r#"<p class="flash error" role="alert">{}</p><p><a href="/workspaces">Back to the workspaces</a></p>"#,
        esc(&e.to_string())
    );
    html(
        e.status(),
        crate::dashboard::page("Knowledge", Some(who), &body),
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
