//! `/api/v1/folders`: agents' folders (issue 9), read-only here: the list, one folder as
//! columns and entries, and its CSV export. Changes go through the `/folder` chat commands
//! (the web chat, or any front).

use super::ErrorBody;
use crate::ApiError;
use crate::auth::Caller;
use crate::front::WebState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use krake_core::folder::{Entry, Folder};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Folder routes.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/api/v1/folders", get(list))
        .route("/api/v1/folders/{agent}/{folder}", get(show))
        .route("/api/v1/folders/{agent}/{folder}/csv", get(csv))
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
