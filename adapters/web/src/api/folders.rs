//! `/api/v1/folders`: agents' folders (issue 9): the list, one folder as columns and entries,
//! adding, changing and deleting entries (values checked against their columns), and CSV
//! export and import (all or nothing, every bad row named), and the folders' structure:
//! creating, renaming and deleting folders and columns, under the same rules as the `/folder`
//! chat commands (reading needs a workspace the agent works in, changing needs member there).

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
use krake_core::folder::{Column, ColumnKind, Entry, Folder};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Folder routes.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/api/v1/folders", get(list).post(create_folder))
        .route(
            "/api/v1/folders/{agent}/{folder}",
            get(show).patch(rename_folder).delete(delete_folder),
        )
        .route("/api/v1/folders/{agent}/{folder}/columns", post(add_column))
        .route(
            "/api/v1/folders/{agent}/{folder}/columns/{column}",
            patch(rename_column).delete(remove_column),
        )
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
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    // Downloaded as a file, never rendered or sniffed as something else by a browser.
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let disposition = format!(
        "attachment; filename=\"{}-{}.csv\"",
        file_name(&f.agent),
        file_name(f.name.as_str())
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(res)
}

/// A name as a safe file-name part: ASCII letters, digits, `-` and `_`, anything else `_`.
fn file_name(name: &str) -> String {
    name.chars()
        .take(60)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// A new folder.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFolderBody {
    /// The agent it belongs to (`soshie` or `Soshie`).
    pub agent: Option<String>,
    /// Its name (1 to 60 characters, no `=`).
    pub name: Option<String>,
}

/// A new name for a folder or a column.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameBody {
    /// The new name (1 to 60 characters, no `=`).
    pub name: Option<String>,
}

/// A new column.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewColumnBody {
    /// Its name (1 to 60 characters, no `=`).
    pub name: Option<String>,
    /// `text`, `number`, `date`, `url` or `status` (`status: draft|posted` also works).
    pub kind: Option<String>,
    /// A status column's allowed values.
    #[serde(default)]
    pub values: Vec<String>,
}

/// What deleting a folder did.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeletedFolder {
    /// Entries deleted with it.
    pub deleted_entries: u64,
}

fn required(v: Option<String>, what: &str) -> Result<String, ApiError> {
    v.filter(|s| !s.trim().is_empty())
        .ok_or_else(|| ApiError::BadRequest(format!("`{what}` is required")))
}

fn column_view(c: &Column) -> ColumnView {
    ColumnView {
        name: c.name.as_str().to_owned(),
        kind: c.kind.describe(),
    }
}

/// Parses a column type: `kind` with `values`, or `status: a|b` in `kind` alone.
fn column_kind(kind: &str, values: &[String]) -> Result<ColumnKind, ApiError> {
    let (name, inline) = match kind.split_once(':') {
        Some((k, v)) => (k, Some(v.to_owned())),
        None => (kind, None),
    };
    let listed = (!values.is_empty()).then(|| values.join("|"));
    ColumnKind::parse(name, inline.or(listed).as_deref()).map_err(ApiError::BadRequest)
}

/// Creates an empty folder for an agent (member of a workspace the agent works in).
#[utoipa::path(post, path = "/api/v1/folders", tag = "folders", request_body = NewFolderBody,
    responses((status = 201, body = FolderView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody)))]
pub async fn create_folder(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<FolderView>), ApiError> {
    csrf(&caller, &headers)?;
    let b: NewFolderBody = json_body(body, state.config.max_body_bytes)?;
    let (agent, name) = (required(b.agent, "agent")?, required(b.name, "name")?);
    let f = state
        .krake
        .create_folder_for(&caller.actor, &agent, &name)
        .await?;
    Ok((StatusCode::CREATED, Json(view(&f, &[]))))
}

/// Renames a folder.
#[utoipa::path(patch, path = "/api/v1/folders/{agent}/{folder}", tag = "folders", request_body = RenameBody,
    params(("agent" = String, Path, description = "agent"), ("folder" = String, Path, description = "folder name")),
    responses((status = 200, body = FolderView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody)))]
pub async fn rename_folder(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    Path((agent, folder)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<FolderView>, ApiError> {
    csrf(&caller, &headers)?;
    let b: RenameBody = json_body(body, state.config.max_body_bytes)?;
    let to = required(b.name, "name")?;
    let f = state
        .krake
        .rename_folder_for(&caller.actor, &agent, &folder, &to)
        .await?;
    let (f, entries) = state
        .krake
        .folder_for(&caller.actor, &f.agent, f.name.as_str())
        .await?;
    Ok(Json(view(&f, &entries)))
}

/// Deletes a folder with its columns and entries.
#[utoipa::path(delete, path = "/api/v1/folders/{agent}/{folder}", tag = "folders",
    params(("agent" = String, Path, description = "agent"), ("folder" = String, Path, description = "folder name")),
    responses((status = 200, body = DeletedFolder), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn delete_folder(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    Path((agent, folder)): Path<(String, String)>,
) -> Result<Json<DeletedFolder>, ApiError> {
    csrf(&caller, &headers)?;
    let deleted_entries = state
        .krake
        .delete_folder_for(&caller.actor, &agent, &folder)
        .await?;
    Ok(Json(DeletedFolder { deleted_entries }))
}

/// Adds a column at the end of a folder.
#[utoipa::path(post, path = "/api/v1/folders/{agent}/{folder}/columns", tag = "folders", request_body = NewColumnBody,
    params(("agent" = String, Path, description = "agent"), ("folder" = String, Path, description = "folder name")),
    responses((status = 201, body = ColumnView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody)))]
pub async fn add_column(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    Path((agent, folder)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<ColumnView>), ApiError> {
    csrf(&caller, &headers)?;
    let b: NewColumnBody = json_body(body, state.config.max_body_bytes)?;
    let name = required(b.name, "name")?;
    let kind = column_kind(&required(b.kind, "kind")?, &b.values)?;
    let c = state
        .krake
        .add_folder_column(&caller.actor, &agent, &folder, &name, &kind)
        .await?;
    Ok((StatusCode::CREATED, Json(column_view(&c))))
}

/// Renames a column; its values stay.
#[utoipa::path(patch, path = "/api/v1/folders/{agent}/{folder}/columns/{column}", tag = "folders", request_body = RenameBody,
    params(("agent" = String, Path, description = "agent"), ("folder" = String, Path, description = "folder name"),
        ("column" = String, Path, description = "column name")),
    responses((status = 200, body = ColumnView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody)))]
pub async fn rename_column(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    Path((agent, folder, column)): Path<(String, String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ColumnView>, ApiError> {
    csrf(&caller, &headers)?;
    let b: RenameBody = json_body(body, state.config.max_body_bytes)?;
    let to = required(b.name, "name")?;
    let c = state
        .krake
        .rename_folder_column(&caller.actor, &agent, &folder, &column, &to)
        .await?;
    Ok(Json(column_view(&c)))
}

/// Removes a column and its values.
#[utoipa::path(delete, path = "/api/v1/folders/{agent}/{folder}/columns/{column}", tag = "folders",
    params(("agent" = String, Path, description = "agent"), ("folder" = String, Path, description = "folder name"),
        ("column" = String, Path, description = "column name")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn remove_column(
    State(state): State<WebState>,
    caller: Caller,
    headers: HeaderMap,
    Path((agent, folder, column)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    csrf(&caller, &headers)?;
    state
        .krake
        .remove_folder_column(&caller.actor, &agent, &folder, &column)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
