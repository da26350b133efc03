//! `/api/v1/folders`: agents' folders (issue 9): the list, one folder as columns and entries,
//! adding, changing and deleting entries (values checked against their columns), and CSV
//! export and import (all or nothing, every bad row named). Creating, renaming and deleting
//! folders and columns go through the `/folder` chat commands (the web chat, or any front).

use super::{ErrorBody, json_body};
use crate::ApiError;
use crate::auth::{CSRF_HEADER, Caller};
use crate::front::WebState;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::routing::{patch, post};
use axum::{Json, Router};
use krake_core::folder::EntryId;
use krake_core::folder::{Entry, Folder};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Folder routes.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/api/v1/folders", get(list))
        .route("/api/v1/folders/{agent}/{folder}", get(show))
        .route(
            "/api/v1/folders/{agent}/{folder}/csv",
            get(csv).post(import),
        )
        .route("/api/v1/folders/{agent}/{folder}/entries", post(add_entry))
        .route(
            "/api/v1/folders/{agent}/{folder}/entries/{id}",
            patch(update_entry).delete(delete_entry),
        )
}

/// New or changed values of an entry, by column name.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryBody {
    /// Values by column name (checked against each column's type).
    pub values: BTreeMap<String, String>,
}

/// What an import did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Imported {
    /// Entries added.
    pub imported: usize,
}

fn csrf(caller: &Caller, headers: &HeaderMap) -> Result<(), ApiError> {
    caller.check_csrf(headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()))
}

fn entry_view(f: &Folder, e: &Entry) -> EntryView {
    view(f, std::slice::from_ref(e))
        .entries
        .pop()
        .unwrap_or(EntryView {
            id: e.id.0,
            values: BTreeMap::new(),
        })
}

fn pairs(b: EntryBody) -> Vec<(String, String)> {
    b.values.into_iter().collect()
}

/// Adds an entry (member of a workspace the agent works in).
#[utoipa::path(post, path = "/api/v1/folders/{agent}/{folder}/entries", tag = "folders", request_body = EntryBody,
    params(("agent" = String, Path, description = "agent"), ("folder" = String, Path, description = "folder name")),
    responses((status = 201, body = EntryView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn add_entry(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    Path((agent, folder)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<EntryView>), ApiError> {
    csrf(&caller, &headers)?;
    let b: EntryBody = json_body(body, state.config.max_body_bytes)?;
    let e = state
        .krake
        .add_folder_entry(&caller.actor, &agent, &folder, &pairs(b))
        .await?;
    let (f, _) = state
        .krake
        .folder_for(&caller.actor, &agent, &folder)
        .await?;
    Ok((StatusCode::CREATED, Json(entry_view(&f, &e))))
}

/// Changes some values of an entry.
#[utoipa::path(patch, path = "/api/v1/folders/{agent}/{folder}/entries/{id}", tag = "folders", request_body = EntryBody,
    params(("agent" = String, Path, description = "agent"), ("folder" = String, Path, description = "folder name"),
        ("id" = i64, Path, description = "entry id")),
    responses((status = 200, body = EntryView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn update_entry(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    Path((agent, folder, id)): Path<(String, String, i64)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EntryView>, ApiError> {
    csrf(&caller, &headers)?;
    let b: EntryBody = json_body(body, state.config.max_body_bytes)?;
    let e = state
        .krake
        .update_folder_entry(&caller.actor, &agent, &folder, EntryId(id), &pairs(b))
        .await?;
    let (f, _) = state
        .krake
        .folder_for(&caller.actor, &agent, &folder)
        .await?;
    Ok(Json(entry_view(&f, &e)))
}

/// Deletes an entry.
#[utoipa::path(delete, path = "/api/v1/folders/{agent}/{folder}/entries/{id}", tag = "folders",
    params(("agent" = String, Path, description = "agent"), ("folder" = String, Path, description = "folder name"),
        ("id" = i64, Path, description = "entry id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_entry(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    Path((agent, folder, id)): Path<(String, String, i64)>,
) -> Result<StatusCode, ApiError> {
    csrf(&caller, &headers)?;
    state
        .krake
        .delete_folder_entry(&caller.actor, &agent, &folder, EntryId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Imports CSV rows (header = column names): all or nothing; 400 names every bad row.
#[utoipa::path(post, path = "/api/v1/folders/{agent}/{folder}/csv", tag = "folders",
    request_body(content = String, content_type = "text/csv"),
    params(("agent" = String, Path, description = "agent"), ("folder" = String, Path, description = "folder name")),
    responses((status = 200, body = Imported), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn import(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    Path((agent, folder)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Imported>, ApiError> {
    csrf(&caller, &headers)?;
    let bytes = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(state.config.max_body_bytes)
        } else {
            ApiError::BadRequest(r.body_text())
        }
    })?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| ApiError::BadRequest("the CSV is not UTF-8".into()))?;
    let imported = state
        .krake
        .import_folder_csv(&caller.actor, &agent, &folder, text)
        .await?;
    Ok(Json(Imported { imported }))
}

/// A folder in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct FolderSummary {
    /// The agent (`Soshie`).
    pub agent: String,
    /// The folder's name.
    pub name: String,
    /// Column names, in order.
    pub columns: Vec<String>,
    /// How many entries.
    pub entries: i64,
}

/// A column.
#[derive(Debug, Serialize, ToSchema)]
pub struct ColumnView {
    /// Name.
    pub name: String,
    /// `text`, `number`, `date`, `url`, or `status: a|b|c`.
    pub kind: String,
}

/// An entry: its id and its values by column name (blank columns are absent).
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryView {
    /// Entry id.
    pub id: i64,
    /// Values by column name.
    pub values: BTreeMap<String, String>,
}

/// A folder with its entries.
#[derive(Debug, Serialize, ToSchema)]
pub struct FolderView {
    /// The agent.
    pub agent: String,
    /// The folder's name.
    pub name: String,
    /// Columns, in order.
    pub columns: Vec<ColumnView>,
    /// Entries, by id.
    pub entries: Vec<EntryView>,
}

/// Folder list filter.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FolderParams {
    /// Only this agent's folders.
    pub agent: Option<String>,
}

/// The view of a folder (shared with the dashboard).
pub fn view(f: &Folder, entries: &[Entry]) -> FolderView {
    FolderView {
        agent: f.agent.clone(),
        name: f.name.as_str().to_owned(),
        columns: f
            .columns
            .iter()
            .map(|c| ColumnView {
                name: c.name.as_str().to_owned(),
                kind: c.kind.describe(),
            })
            .collect(),
        entries: entries
            .iter()
            .map(|e| EntryView {
                id: e.id.0,
                values: f
                    .columns
                    .iter()
                    .filter_map(|c| {
                        e.values
                            .get(&c.id)
                            .map(|v| (c.name.as_str().to_owned(), v.clone()))
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// The folders the caller may read.
#[utoipa::path(get, path = "/api/v1/folders", tag = "folders", params(FolderParams),
    responses((status = 200, body = Vec<FolderSummary>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list(
    State(state): State<WebState>,
    caller: Caller,
    q: Result<Query<FolderParams>, QueryRejection>,
) -> Result<Json<Vec<FolderSummary>>, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest(format!("bad query: {}", e.body_text())))?;
    let folders = state
        .krake
        .folders_for(&caller.actor, q.agent.as_deref().filter(|a| !a.is_empty()))
        .await?;
    Ok(Json(
        folders
            .iter()
            .map(|f| FolderSummary {
                agent: f.agent.clone(),
                name: f.name.as_str().to_owned(),
                columns: f
                    .columns
                    .iter()
                    .map(|c| c.name.as_str().to_owned())
                    .collect(),
                entries: f.entries,
            })
            .collect(),
    ))
}

/// One folder with its entries.
#[utoipa::path(get, path = "/api/v1/folders/{agent}/{folder}", tag = "folders",
    params(("agent" = String, Path, description = "agent"), ("folder" = String, Path, description = "folder name")),
    responses((status = 200, body = FolderView), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<WebState>,
    caller: Caller,
    Path((agent, folder)): Path<(String, String)>,
) -> Result<Json<FolderView>, ApiError> {
    let (f, entries) = state
        .krake
        .folder_for(&caller.actor, &agent, &folder)
        .await?;
    Ok(Json(view(&f, &entries)))
}

/// One folder as CSV (header = column names).
#[utoipa::path(get, path = "/api/v1/folders/{agent}/{folder}/csv", tag = "folders",
    params(("agent" = String, Path, description = "agent"), ("folder" = String, Path, description = "folder name")),
    responses((status = 200, content_type = "text/csv", body = String), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn csv(
    State(state): State<WebState>,
    caller: Caller,
    Path((agent, folder)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (f, entries) = state
        .krake
        .folder_for(&caller.actor, &agent, &folder)
        .await?;
    let mut res = krake_core::folder::to_csv(&f, &entries).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    Ok(res)
}
