//! The REST API under `/api/v1`: route modules ([`inbox`], [`directory`], [`folders`], [`runs`],
//! [`knowledge`]), the JSON shapes
//! they answer with, and the OpenAPI document generated from them (`/api/v1/openapi.json`).
//!
//! Authentication: `Authorization: Bearer <token>` (scripts) or the session cookie (the
//! dashboard); a state change with the cookie must carry the `X-CSRF-Token` header.
//! Errors: `{"error":{"code","message"}}` with 400, 401, 403, 404, 409 (with `current`: the
//! thread as it is now), 413, 429; see [`ApiError`].

pub mod deadletters;
pub mod directory;
pub mod folders;
pub mod inbox;
pub mod knowledge;
pub mod metrics;
pub mod runs;

use crate::ApiError;
use crate::front::WebState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use krake_core::inbox::{AuditEntry, Thread};
use krake_core::thread_api::ThreadError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// All API routes.
pub fn router() -> Router<WebState> {
    Router::new()
        .merge(inbox::router())
        .merge(directory::router())
        .merge(folders::router())
        .merge(runs::router())
        .merge(deadletters::router())
        .merge(metrics::router())
        .merge(knowledge::router())
        .route("/api/v1/openapi.json", get(openapi_json))
}

/// The OpenAPI document of the API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Krake API", description = "The To Do inbox, workspaces, agents and their runs, and workspaces' knowledge of a Krake."),
    paths(
        inbox::list, inbox::show, inbox::reply, inbox::approve, inbox::reject,
        inbox::archive, inbox::unarchive, inbox::audit,
        directory::workspaces, directory::agents, directory::me,
        folders::list, folders::show, folders::csv, folders::import,
        folders::add_entry, folders::update_entry, folders::delete_entry,
        folders::create_folder, folders::rename_folder, folders::delete_folder,
        folders::add_column, folders::rename_column, folders::remove_column,
        runs::list, runs::show, runs::cancel,
        deadletters::list, deadletters::retry, deadletters::discard,
        metrics::push, metrics::overview,
        knowledge::list, knowledge::upload, knowledge::forget, knowledge::search
    ),
    components(schemas(
        ThreadSummary, ThreadView, ReplyView, ThreadPage, DecisionView, AuditView, ErrorBody,
        ErrorDetail, inbox::ReplyBody, inbox::ApproveBody, inbox::RejectBody,
        directory::WorkspaceView, directory::AgentView, directory::MeView,
        folders::FolderSummary, folders::FolderView, folders::ColumnView, folders::EntryView,
        folders::EntryBody, folders::Imported, folders::NewFolderBody, folders::RenameBody,
        folders::NewColumnBody, folders::DeletedFolder,
        runs::RunSummary, runs::RunPage, runs::RunDetail, runs::StepView, runs::CancelBody,
        deadletters::DeadLetterView, deadletters::DeadLetterList, deadletters::DeadLetterDone,
        metrics::PointBody, metrics::MetricsBody, metrics::PushedView,
        knowledge::SourceView, knowledge::SourceList, knowledge::KnowledgeReply,
        knowledge::PassageView, knowledge::SearchView
    )),
    modifiers(&Security),
    security(("bearer" = []), ("session" = []))
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        c.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(utoipa::openapi::security::ApiKey::Cookie(
                utoipa::openapi::security::ApiKeyValue::new(crate::auth::SESSION_COOKIE),
            )),
        );
    }
}

async fn openapi_json() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

/// The error shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// An error's code and message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// `bad_request`, `unauthenticated`, `forbidden`, `not_found`, `conflict`,
    /// `payload_too_large`, `too_many_requests`, `busy` (503), `internal`.
    pub code: String,
    /// What went wrong and what to do.
    pub message: String,
    /// For `conflict`: the thread as it is now.
    #[schema(value_type = Option<Object>)]
    pub current: Option<serde_json::Value>,
}

/// A thread in a list (no replies).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ThreadSummary {
    /// Id (`#12`).
    pub id: i64,
    /// Workspace slug.
    pub workspace: String,
    /// `approval`, `escalation`, `question`, `notice`.
    pub kind: String,
    /// `open`, `approved`, `rejected`, `answered`, `archived`, `expired`.
    pub status: String,
    /// `agent`, `system`, `user`.
    pub origin: String,
    /// The agent involved.
    pub agent: Option<String>,
    /// One line.
    pub title: String,
    /// Bumped by every change; pass it to approve/reject to refuse a stale decision.
    pub version: i64,
    /// Whether approve/reject apply now.
    pub decidable: bool,
    /// Creation time, ms since the epoch.
    pub created_at: i64,
    /// Last change, ms since the epoch.
    pub updated_at: i64,
}

impl From<&Thread> for ThreadSummary {
    fn from(t: &Thread) -> Self {
        Self {
            id: t.id.0,
            workspace: t.workspace.to_string(),
            kind: t.kind.to_string(),
            status: t.status.to_string(),
            origin: t.origin.to_string(),
            agent: t.agent.clone(),
            title: t.title.clone(),
            version: t.version,
            decidable: t.is_decidable(),
            created_at: t.created_at.as_millis(),
            updated_at: t.updated_at.as_millis(),
        }
    }
}

/// A reply in a thread.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReplyView {
    /// Who.
    pub author: String,
    /// Through which front.
    pub front: String,
    /// What they wrote.
    pub text: String,
    /// When, ms since the epoch.
    pub at: i64,
}

/// A thread in full.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ThreadView {
    /// The list fields.
    #[serde(flatten)]
    pub summary: ThreadSummary,
    /// The details.
    pub body: String,
    /// What approving does, in words.
    pub action: Option<String>,
    /// Who may decide, in words.
    pub approvers: String,
    /// Who decided.
    pub decided_by: Option<String>,
    /// Why rejected.
    pub reason: Option<String>,
    /// Approvals so far (quorums).
    pub approvals: Vec<String>,
    /// Expiry, ms since the epoch.
    pub expires_at: Option<i64>,
    /// Replies, oldest first.
    pub replies: Vec<ReplyView>,
}

impl From<&Thread> for ThreadView {
    fn from(t: &Thread) -> Self {
        Self {
            summary: t.into(),
            body: t.body.clone(),
            action: t.action.as_ref().map(|a| a.describe()),
            approvers: t.approvers.describe(),
            decided_by: t.decided_by.as_ref().map(ToString::to_string),
            reason: t.reason.clone(),
            approvals: t.approvals.iter().map(ToString::to_string).collect(),
            expires_at: t.expires_at.map(|e| e.as_millis()),
            replies: t
                .replies
                .iter()
                .map(|r| ReplyView {
                    author: r.author.to_string(),
                    front: r.front.to_string(),
                    text: r.text.clone(),
                    at: r.at.as_millis(),
                })
                .collect(),
        }
    }
}

/// A page of threads, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThreadPage {
    /// The threads.
    pub threads: Vec<ThreadSummary>,
    /// Pass as `before` for the next page; absent on the last page.
    pub next_before: Option<i64>,
}

/// What a decision did.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionView {
    /// `decided`, `counted` (a quorum needs more), `already_counted`.
    pub outcome: String,
    /// Approvals still missing (quorums).
    pub missing: u32,
    /// The thread now.
    pub thread: ThreadView,
}

/// An audit log entry.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditView {
    /// Who.
    pub actor: String,
    /// Through which front.
    pub front: String,
    /// What (`created`, `approved`, …).
    pub action: String,
    /// Details.
    pub detail: String,
    /// When, ms since the epoch.
    pub at: i64,
}

impl From<&AuditEntry> for AuditView {
    fn from(a: &AuditEntry) -> Self {
        Self {
            actor: a.actor.to_string(),
            front: a.front.to_string(),
            action: a.action.clone(),
            detail: a.detail.clone(),
            at: a.at.as_millis(),
        }
    }
}

impl From<ThreadError> for ApiError {
    fn from(e: ThreadError) -> Self {
        match e {
            ThreadError::NotFound(m) => ApiError::NotFound(m),
            ThreadError::Forbidden(m) => ApiError::Forbidden(m),
            ThreadError::Invalid(m) => ApiError::BadRequest(m),
            ThreadError::Exists(message) => ApiError::Conflict {
                message,
                current: serde_json::Value::Null,
            },
            ThreadError::Conflict { message, thread } => ApiError::Conflict {
                message,
                current: serde_json::to_value(ThreadView::from(thread.as_ref()))
                    .unwrap_or_default(),
            },
            ThreadError::Repo(e) => e.into(),
        }
    }
}

/// Reads a JSON body: empty means the default; malformed, mistyped or unknown fields are 400;
/// over the limit is 413.
pub fn json_body<T: DeserializeOwned + Default>(
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(limit)
        } else {
            ApiError::BadRequest(format!("cannot read the body: {}", r.body_text()))
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::BadRequest(format!("the body is not valid JSON for this request: {e}"))
    })
}

/// Turns the plain-text or empty error answers of axum's extractors and router (a body over
/// the limit: 413; a path that is not valid percent-encoded UTF-8 or not of the right type:
/// 400; a wrong content type: 415; a wrong method: 405) into the JSON error shape, so every
/// error of the web front reads alike.
pub async fn json_errors(res: Response, limit: usize) -> Response {
    let status = res.status();
    // Plain text or nothing at all (a 405 from the router has no body).
    let plain = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !plain || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let text = axum::body::to_bytes(res.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let text = match (text.trim().is_empty(), status) {
        (false, _) => text,
        (true, StatusCode::METHOD_NOT_ALLOWED) => "this method is not allowed here".into(),
        (true, StatusCode::NOT_FOUND) => "there is nothing at this address".into(),
        (true, _) => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let err = match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(limit),
        StatusCode::INTERNAL_SERVER_ERROR => {
            tracing::error!(%text, "a request failed inside axum");
            ApiError::Internal
        }
        StatusCode::NOT_FOUND => ApiError::NotFound(text),
        _ => {
            let mut res = ApiError::BadRequest(text).into_response();
            // Keep the status axum chose (415, 405, 422, …); the code says what kind it is.
            *res.status_mut() = status;
            return res;
        }
    };
    err.into_response()
}
