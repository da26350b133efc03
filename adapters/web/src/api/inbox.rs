//! `/api/v1/inbox`: list (filters, paging), show, reply, approve, reject, archive, unarchive,
//! and a thread's audit log.

use super::{AuditView, DecisionView, ErrorBody, ThreadPage, ThreadSummary, ThreadView, json_body};
use crate::ApiError;
use crate::auth::{CSRF_HEADER, Caller};
use crate::front::WebState;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use krake_core::inbox::{Decision, ThreadFilter, ThreadId, ThreadKind, ThreadStatus};
use krake_core::thread_api::Decided;
use krake_core::workspace::WorkspaceSlug;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

/// Inbox routes.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/api/v1/inbox", get(list))
        .route("/api/v1/inbox/{id}", get(show))
        .route("/api/v1/inbox/{id}/reply", post(reply))
        .route("/api/v1/inbox/{id}/approve", post(approve))
        .route("/api/v1/inbox/{id}/reject", post(reject))
        .route("/api/v1/inbox/{id}/archive", post(archive))
        .route("/api/v1/inbox/{id}/unarchive", post(unarchive))
        .route("/api/v1/inbox/{id}/audit", get(audit))
}

/// Filters and paging of the inbox list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this workspace (slug).
    pub workspace: Option<String>,
    /// Only this kind: approval, escalation, question, notice.
    pub kind: Option<String>,
    /// Only this status: open, approved, rejected, answered, archived, expired; `all` (the
    /// default) is every status but archived.
    pub status: Option<String>,
    /// Page size, 1–200 (default 50).
    pub limit: Option<u32>,
    /// Only threads with a smaller id (the previous page's `next_before`).
    pub before: Option<i64>,
}

impl ListParams {
    /// The core filter these parameters mean, or what is wrong with them.
    pub fn filter(&self) -> Result<ThreadFilter, ApiError> {
        let bad = |what: &str, v: &str, allowed: &str| {
            ApiError::BadRequest(format!("`{v}` is not a {what}: use one of {allowed}"))
        };
        let workspace = match self.workspace.as_deref().filter(|w| !w.is_empty()) {
            Some(w) => {
                Some(WorkspaceSlug::parse(w).map_err(|e| ApiError::BadRequest(e.to_string()))?)
            }
            None => None,
        };
        let kind = match self.kind.as_deref().filter(|k| !k.is_empty()) {
            Some(k) => Some(
                ThreadKind::parse(k)
                    .ok_or_else(|| bad("kind", k, "approval, escalation, question, notice"))?,
            ),
            None => None,
        };
        let status = match self
            .status
            .as_deref()
            .filter(|s| !s.is_empty() && *s != "all")
        {
            Some(s) => Some(ThreadStatus::parse(s).ok_or_else(|| {
                bad(
                    "status",
                    s,
                    "open, approved, rejected, answered, archived, expired, all",
                )
            })?),
            None => None,
        };
        let limit = self.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ApiError::BadRequest(format!(
                "limit must be between 1 and 200, not {limit}"
            )));
        }
        Ok(ThreadFilter {
            workspace,
            kind,
            status,
            visible: None,
            limit,
            before: self.before.map(ThreadId),
        })
    }
}

fn thread_id(id: Result<Path<i64>, PathRejection>) -> Result<ThreadId, ApiError> {
    match id {
        Ok(Path(n)) if n > 0 => Ok(ThreadId(n)),
        _ => Err(ApiError::BadRequest(
            "a thread id is a positive number, as in /api/v1/inbox/12".into(),
        )),
    }
}

fn csrf(caller: &Caller, headers: &HeaderMap) -> Result<(), ApiError> {
    caller.check_csrf(headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))
}

/// Lists threads, newest first.
#[utoipa::path(get, path = "/api/v1/inbox", params(ListParams), tag = "inbox",
    responses(
        (status = 200, body = ThreadPage),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<WebState>,
    caller: Caller,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<ThreadPage>, ApiError> {
    let Query(params) =
        params.map_err(|e| ApiError::BadRequest(format!("bad query: {}", e.body_text())))?;
    let filter = params.filter()?;
    let limit = filter.limit as usize;
    let threads = state.krake.threads_for(&caller.actor, filter).await?;
    let next_before = (threads.len() == limit)
        .then(|| threads.last().map(|t| t.id.0))
        .flatten();
    Ok(Json(ThreadPage {
        threads: threads.iter().map(ThreadSummary::from).collect(),
        next_before,
    }))
}

/// One thread with its replies.
#[utoipa::path(get, path = "/api/v1/inbox/{id}", tag = "inbox",
    params(("id" = i64, Path, description = "thread id")),
    responses((status = 200, body = ThreadView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<WebState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<ThreadView>, ApiError> {
    let t = state
        .krake
        .thread_for(&caller.actor, thread_id(id)?)
        .await?;
    Ok(Json(ThreadView::from(&t)))
}

/// The body of a reply.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyBody {
    /// What to write.
    pub text: String,
}

/// Replies in a thread (answers an open question).
#[utoipa::path(post, path = "/api/v1/inbox/{id}/reply", tag = "inbox", request_body = ReplyBody,
    params(("id" = i64, Path, description = "thread id")),
    responses((status = 200, body = ThreadView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody)))]
pub async fn reply(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ThreadView>, ApiError> {
    csrf(&caller, &headers)?;
    let id = thread_id(id)?;
    let b: ReplyBody = json_body(body, state.config.max_body_bytes)?;
    let t = state.krake.reply_to(&caller.actor, id, &b.text).await?;
    state.hub.publish(&t);
    Ok(Json(ThreadView::from(&t)))
}

/// The body of an approval (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    /// The version the decision was made on; a changed thread is refused (409).
    pub version: Option<i64>,
}

/// The body of a rejection (optional).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// Why.
    pub reason: Option<String>,
    /// The version the decision was made on.
    pub version: Option<i64>,
}

fn decided(d: Decided) -> DecisionView {
    let (outcome, missing) = match &d {
        Decided::Decided(_) => ("decided", 0),
        Decided::Counted { missing, .. } => ("counted", *missing),
        Decided::AlreadyCounted(_) => ("already_counted", 0),
    };
    DecisionView {
        outcome: outcome.into(),
        missing,
        thread: ThreadView::from(d.thread()),
    }
}

async fn decide(
    state: &WebState,
    caller: &Caller,
    id: ThreadId,
    decision: Decision,
    version: Option<i64>,
) -> Result<Json<DecisionView>, ApiError> {
    let d = state
        .krake
        .decide_thread(&caller.actor, id, decision, version)
        .await?;
    state.hub.publish(d.thread());
    Ok(Json(decided(d)))
}

/// Approves an approval thread (member or above in its workspace). 409 when already decided.
#[utoipa::path(post, path = "/api/v1/inbox/{id}/approve", tag = "inbox", request_body(content = ApproveBody, description = "optional"),
    params(("id" = i64, Path, description = "thread id")),
    responses((status = 200, body = DecisionView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn approve(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<DecisionView>, ApiError> {
    csrf(&caller, &headers)?;
    let id = thread_id(id)?;
    let b: ApproveBody = json_body(body, state.config.max_body_bytes)?;
    decide(&state, &caller, id, Decision::Approve, b.version).await
}

/// Rejects an approval thread, with an optional reason. 409 when already decided.
#[utoipa::path(post, path = "/api/v1/inbox/{id}/reject", tag = "inbox", request_body(content = RejectBody, description = "optional"),
    params(("id" = i64, Path, description = "thread id")),
    responses((status = 200, body = DecisionView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn reject(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<DecisionView>, ApiError> {
    csrf(&caller, &headers)?;
    let id = thread_id(id)?;
    let b: RejectBody = json_body(body, state.config.max_body_bytes)?;
    let reason = b.reason.filter(|r| !r.trim().is_empty());
    decide(&state, &caller, id, Decision::Reject { reason }, b.version).await
}

async fn set_archived(
    state: &WebState,
    caller: &Caller,
    headers: &HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    archived: bool,
) -> Result<Json<ThreadView>, ApiError> {
    csrf(caller, headers)?;
    let id = thread_id(id)?;
    let t = state
        .krake
        .archive_thread(&caller.actor, id, archived)
        .await?;
    state.hub.publish(&t);
    Ok(Json(ThreadView::from(&t)))
}

/// Archives a thread.
#[utoipa::path(post, path = "/api/v1/inbox/{id}/archive", tag = "inbox",
    params(("id" = i64, Path, description = "thread id")),
    responses((status = 200, body = ThreadView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn archive(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<ThreadView>, ApiError> {
    set_archived(&state, &caller, &headers, id, true).await
}

/// Unarchives a thread (it gets its earlier status back).
#[utoipa::path(post, path = "/api/v1/inbox/{id}/unarchive", tag = "inbox",
    params(("id" = i64, Path, description = "thread id")),
    responses((status = 200, body = ThreadView), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unarchive(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<ThreadView>, ApiError> {
    set_archived(&state, &caller, &headers, id, false).await
}

/// The audit log of a thread, oldest first.
#[utoipa::path(get, path = "/api/v1/inbox/{id}/audit", tag = "inbox",
    params(("id" = i64, Path, description = "thread id")),
    responses((status = 200, body = Vec<AuditView>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn audit(
    State(state): State<WebState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    let entries = state.krake.audit_for(&caller.actor, thread_id(id)?).await?;
    Ok(Json(entries.iter().map(AuditView::from).collect()))
}
