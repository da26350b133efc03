//! `/api/v1/workspaces/{slug}/knowledge`: a workspace's learned files. Listing and searching
//! need the viewer role there, uploading and forgetting the member role; an upload and a
//! forget go through core's one accept path (`Content::File`, `Command::Forget`) like a file
//! or `/forget` sent in chat, so they are handled once per idempotency key and audited alike.
//! The rules are core's ([`krake_core::knowledge::view`]); this module reads the request
//! (a multipart upload within `[rag] max_file_mb`) and writes JSON.

use super::ErrorBody;
use crate::ApiError;
use crate::auth::{CSRF_HEADER, Caller};
use crate::front::WebState;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::get;
use axum::{Json, Router};
use krake_core::actor::Actor;
use krake_core::chat::command::Command;
use krake_core::inbound::{Content, IdempotencyKey, Inbound};
use krake_core::knowledge::learn::{FileBody, SentFile, Source, clean_name};
use krake_core::knowledge::view::KnowledgeRefused;
use krake_core::outbox::Destination;
use krake_core::reply::{Reply, Tone};
use krake_core::workspace::WorkspaceSlug;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Room for the multipart framing around the file (boundaries, headers, the other fields).
pub const FORM_SLACK: u64 = 64 * 1024;

/// Knowledge routes. The upload's body limit is the configured file size (checked in the
/// handler, since it is a setting), not the API's small JSON limit.
pub fn router() -> Router<WebState> {
    Router::new()
        .route(
            "/api/v1/workspaces/{slug}/knowledge",
            get(list).post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/workspaces/{slug}/knowledge/search", get(search))
        .route(
            "/api/v1/workspaces/{slug}/knowledge/{name}",
            axum::routing::delete(forget),
        )
}

impl From<KnowledgeRefused> for ApiError {
    fn from(e: KnowledgeRefused) -> Self {
        match e {
            KnowledgeRefused::Forbidden(m) => ApiError::Forbidden(m),
            e @ (KnowledgeRefused::NoWorkspace(_)
            | KnowledgeRefused::NoSuchFile { .. }
            | KnowledgeRefused::Unavailable(_)) => ApiError::NotFound(e.to_string()),
        }
    }
}

/// A learned file (or one being read).
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceView {
    /// The file name, as answers cite it.
    pub name: String,
    /// Its title (first heading, HTML title, else the name).
    pub title: String,
    /// What it was read as (`markdown`, `pdf`, `text`, `html`, `csv`; empty while queued).
    pub kind: String,
    /// How many passages it became.
    pub passages: i64,
    /// `queued` (being read) or `learned`.
    pub status: String,
    /// Who sent it.
    pub added_by: String,
    /// Through which front (`web`, `api`, `telegram`, `discord`).
    pub front: String,
    /// Its size in bytes, when known.
    pub size: Option<u64>,
    /// When it was sent, ms since the epoch.
    pub created_at: i64,
}

impl From<&Source> for SourceView {
    fn from(s: &Source) -> Self {
        Self {
            name: s.name.clone(),
            title: s.title.clone(),
            kind: s.kind.clone(),
            passages: s.passages,
            status: s.status.as_str().to_owned(),
            added_by: s.added_by.clone(),
            front: s.front.clone(),
            size: s.size,
            created_at: s.created_at.as_millis(),
        }
    }
}

/// A workspace's files, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceList {
    /// The workspace.
    pub workspace: String,
    /// Its files.
    pub sources: Vec<SourceView>,
}

/// What an upload or a forget was answered (the same words chat gets).
#[derive(Debug, Serialize, ToSchema)]
pub struct KnowledgeReply {
    /// The workspace.
    pub workspace: String,
    /// The file's name as cited.
    pub name: String,
    /// Krake's answer (`Reading NAME into WS's knowledge …`, `Forgot NAME: …`).
    pub reply: String,
    /// `info`, `success`, `warning`, `error`.
    pub tone: String,
}

/// A retrieved passage.
#[derive(Debug, Serialize, ToSchema)]
pub struct PassageView {
    /// The passage text.
    pub text: String,
    /// The source (a file name, `thread #12`, …).
    pub source: String,
    /// The kind of source (`file`, `thread`, `agent_result`, `folder`).
    pub kind: String,
    /// The source's title.
    pub title: String,
    /// The passage's number in its source, from 1 (`§N`).
    pub position: u32,
    /// How answers cite it: `source §N`.
    pub citation: String,
    /// Relevance (higher is better; comparable within one answer).
    pub score: f32,
}

/// What a question retrieves.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchView {
    /// The workspace.
    pub workspace: String,
    /// The question.
    pub query: String,
    /// The passages, best first: what an agent asked the same is given.
    pub passages: Vec<PassageView>,
}

/// `?q=`: the question.
#[derive(Debug, Deserialize, IntoParams)]
pub struct SearchQuery {
    /// The question or words to retrieve passages for.
    pub q: Option<String>,
}

/// The workspace of a path, if it names one.
pub(crate) fn workspace(state: &WebState, slug: &str) -> Result<WorkspaceSlug, ApiError> {
    WorkspaceSlug::parse(slug)
        .ok()
        .filter(|w| state.krake.directory().workspace(w).is_some())
        .ok_or_else(|| ApiError::NotFound(format!("there is no workspace `{slug}`")))
}

/// Lists a workspace's learned files (viewer role there).
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/knowledge", tag = "knowledge",
    params(("slug" = String, Path, description = "workspace")),
    responses((status = 200, body = SourceList), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<WebState>,
    caller: Caller,
    Path(slug): Path<String>,
) -> Result<Json<SourceList>, ApiError> {
    let ws = workspace(&state, &slug)?;
    let sources = state.krake.knowledge_sources(&caller.actor, &ws).await??;
    Ok(Json(SourceList {
        workspace: ws.to_string(),
        sources: sources.iter().map(SourceView::from).collect(),
    }))
}

/// The passages a question retrieves from a workspace's knowledge, with their citations and
/// scores (viewer role): why an agent answered as it did.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/knowledge/search", tag = "knowledge",
    params(("slug" = String, Path, description = "workspace"), SearchQuery),
    responses((status = 200, body = SearchView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn search(
    State(state): State<WebState>,
    caller: Caller,
    Path(slug): Path<String>,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<SearchView>, ApiError> {
    let ws = workspace(&state, &slug)?;
    let Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let text = q.q.unwrap_or_default().trim().to_owned();
    if text.is_empty() {
        return Err(ApiError::BadRequest(
            "say what to look for: `?q=how long do refunds take`".into(),
        ));
    }
    let passages = state
        .krake
        .knowledge_search(&caller.actor, &ws, &text)
        .await?;
    Ok(Json(SearchView {
        workspace: ws.to_string(),
        query: text,
        passages: passages
            .iter()
            .map(|p| PassageView {
                text: p.text.clone(),
                source: p.source.clone(),
                kind: p.source_kind.clone(),
                title: p.title.clone(),
                position: p.position + 1,
                citation: p.citation(),
                score: p.score,
            })
            .collect(),
    }))
}

/// Uploads a file for the workspace's knowledge (member role): `multipart/form-data` with the
/// file in `file` (and, from the web chat, its `session` so the learned answer shows there).
/// 202: the file is being read; `GET …/knowledge` lists it with its passages once learned.
/// An `Idempotency-Key` header makes a retried upload count once.
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/knowledge", tag = "knowledge",
    request_body(content_type = "multipart/form-data", content = String, description = "field `file`: the file (Markdown, text, HTML, CSV or PDF with a text layer)"),
    params(("slug" = String, Path, description = "workspace"),
        ("Idempotency-Key" = Option<String>, Header, description = "an upload retried with the same key is handled once")),
    responses((status = 202, body = KnowledgeReply), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn upload(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    Path(slug): Path<String>,
    form: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, Json<KnowledgeReply>), ApiError> {
    caller.check_csrf(headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))?;
    let ws = workspace(&state, &slug)?;
    state.krake.may_change_knowledge(&caller.actor, &ws)?;
    let form = form.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let upload = read_upload(&headers, form, state.config.max_file_bytes).await?;
    let answer_to = upload
        .session
        .as_deref()
        .and_then(|sid| chat_session(&state, &caller.actor, sid));
    let name = upload.name.clone();
    let reply = learn(
        &state,
        &caller.actor,
        &ws,
        upload,
        key_of(&headers, &caller.actor, "upload")?,
        answer_to,
    )
    .await;
    match reply.tone {
        Tone::Info | Tone::Success => Ok((
            StatusCode::ACCEPTED,
            Json(KnowledgeReply {
                workspace: ws.to_string(),
                name,
                reply: reply.text,
                tone: tone(reply.tone),
            }),
        )),
        Tone::Warning => Err(ApiError::BadRequest(reply.text)),
        Tone::Error => {
            tracing::error!(text = %reply.text, "an upload failed");
            Err(ApiError::Internal)
        }
    }
}

/// Forgets a learned file (member role): its passages leave the knowledge base, audited.
#[utoipa::path(delete, path = "/api/v1/workspaces/{slug}/knowledge/{name}", tag = "knowledge",
    params(("slug" = String, Path, description = "workspace"), ("name" = String, Path, description = "the file name"),
        ("Idempotency-Key" = Option<String>, Header, description = "a retried forget with the same key is handled once")),
    responses((status = 200, body = KnowledgeReply), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn forget(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    Path((slug, name)): Path<(String, String)>,
) -> Result<Json<KnowledgeReply>, ApiError> {
    caller.check_csrf(headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))?;
    let ws = workspace(&state, &slug)?;
    let reply = forget_file(
        &state,
        &caller.actor,
        &ws,
        &name,
        key_of(&headers, &caller.actor, "forget")?,
    )
    .await?;
    Ok(Json(KnowledgeReply {
        workspace: ws.to_string(),
        name,
        reply: reply.text,
        tone: tone(reply.tone),
    }))
}

/// Forgets `name` through the accept path once the person may and the file is known; a
/// forget that found nothing to forget is 404.
pub(crate) async fn forget_file(
    state: &WebState,
    actor: &Actor,
    ws: &WorkspaceSlug,
    name: &str,
    key: IdempotencyKey,
) -> Result<Reply, ApiError> {
    state.krake.may_change_knowledge(actor, ws)?;
    state.krake.knowledge_source(actor, ws, name).await??;
    let reply = state
        .krake
        .accept(Inbound {
            source: actor.front,
            key,
            actor: actor.clone(),
            conversation: format!("web:knowledge:{ws}"),
            reply_to: None,
            answer_to: None,
            content: Content::Command(Command::Forget {
                workspace: Some(ws.clone()),
                source: name.to_owned(),
            }),
        })
        .await
        .reply;
    match reply.tone {
        Tone::Success | Tone::Info => Ok(reply),
        Tone::Warning => Err(ApiError::NotFound(reply.text)),
        Tone::Error => {
            tracing::error!(text = %reply.text, "a forget failed");
            Err(ApiError::Internal)
        }
    }
}

/// An uploaded file, read from its form.
#[derive(Debug)]
pub(crate) struct Upload {
    /// Its name, cleaned as chat's are.
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// The web chat session the upload came from, if it said.
    pub session: Option<String>,
    /// The dashboard form's CSRF token, if it carried one.
    pub csrf: Option<String>,
}

/// Reads the form's `file` (and `session`, `csrf`), refusing more than `max` bytes of file
/// (413) before reading a body announced larger than that and the form around it.
pub(crate) async fn read_upload(
    headers: &HeaderMap,
    mut form: Multipart,
    max: u64,
) -> Result<Upload, ApiError> {
    let too_large = || ApiError::FileTooLarge(max);
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > max.saturating_add(FORM_SLACK)) {
        return Err(too_large());
    }
    let bad = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            ApiError::BadRequest(format!("cannot read the upload: {}", e.body_text()))
        }
    };
    let mut file: Option<(String, Vec<u8>)> = None;
    let mut session = None;
    let mut csrf = None;
    let mut read: u64 = 0;
    while let Some(mut field) = form.next_field().await.map_err(bad)? {
        let field_name = field.name().unwrap_or_default().to_owned();
        let file_name = field.file_name().map(clean_name);
        let mut bytes = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(bad)? {
            read = read.saturating_add(chunk.len() as u64);
            if read > max.saturating_add(FORM_SLACK) || bytes.len() + chunk.len() > max as usize {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        let text = || String::from_utf8_lossy(&bytes).trim().to_owned();
        match field_name.as_str() {
            "file" => file = Some((file_name.unwrap_or_else(|| "file".into()), bytes)),
            "session" => session = Some(text()).filter(|s| !s.is_empty()),
            "csrf" => csrf = Some(text()),
            _ => {}
        }
    }
    let (name, bytes) = file.ok_or_else(|| {
        ApiError::BadRequest("send the file as multipart/form-data in the field `file`".into())
    })?;
    Ok(Upload {
        name,
        bytes,
        session,
        csrf,
    })
}

/// Files an upload through the accept path, as a file sent in chat is.
pub(crate) async fn learn(
    state: &WebState,
    actor: &Actor,
    ws: &WorkspaceSlug,
    upload: Upload,
    key: IdempotencyKey,
    answer_to: Option<Destination>,
) -> Reply {
    state
        .krake
        .accept(Inbound {
            source: actor.front,
            key,
            actor: actor.clone(),
            conversation: format!("web:knowledge:{ws}"),
            reply_to: None,
            answer_to,
            content: Content::File {
                file: SentFile {
                    name: upload.name,
                    size: Some(upload.bytes.len() as u64),
                    body: FileBody::Bytes(upload.bytes),
                },
                workspace: Some(ws.clone()),
            },
        })
        .await
        .reply
}

/// The web chat session `sid` of the same person, where the learned answer goes.
fn chat_session(state: &WebState, actor: &Actor, sid: &str) -> Option<Destination> {
    let session = state.hub.session(sid)?;
    if session.actor().user != actor.user {
        return None;
    }
    Destination::parse(&format!("web:session:{sid}")).ok()
}

/// The event's idempotency key: the `Idempotency-Key` header's, else a new one.
pub(crate) fn key_of(
    headers: &HeaderMap,
    actor: &Actor,
    what: &str,
) -> Result<IdempotencyKey, ApiError> {
    let given = headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str()
                .ok()
                .map(str::trim)
                .filter(|k| !k.is_empty() && k.len() <= 100)
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "the Idempotency-Key header has 1 to 100 printable characters".into(),
                    )
                })
        })
        .transpose()?;
    let key = match given {
        Some(k) => format!("web:{what}:{}:{k}", actor.user),
        None => format!("web:{what}:{}:{}", actor.user, crate::auth::random_token()),
    };
    IdempotencyKey::parse(&key)
        .map_err(|e| ApiError::BadRequest(format!("the Idempotency-Key header: {e}")))
}

fn tone(t: Tone) -> String {
    match t {
        Tone::Info => "info",
        Tone::Success => "success",
        Tone::Warning => "warning",
        Tone::Error => "error",
    }
    .to_owned()
}
