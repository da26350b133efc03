//! The Folders pages: every folder the signed-in person may see, and one folder's entries,
//! which its members edit on the page: add an entry (one field per column, typed by the
//! column's kind), edit one (`?edit=ID`), delete one (`?delete=ID` asks first, so it works
//! without scripts) and import a CSV file (the good rows are added, every bad row is listed
//! with its line and why). A change that worked is answered with a redirect to the folder's page
//! with `?done=…` (reloading posts nothing again); a refused one shows the page again with why
//! and what was typed. Viewers see no forms and are refused by core if they post anyway.
//! The rules are core's ([`krake_core::folder`]); this module converts and renders, in maud.

use crate::ApiError;
use crate::api::knowledge::read_upload;
use crate::auth::Caller;
use crate::dashboard::{html, page, signed_in};
use crate::front::WebState;
use axum::Router;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use krake_core::folder::{ColumnKind, EntryId, RowError};
use maud::{Markup, html};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Folder routes.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/folders", get(folders))
        .route("/folders/{agent}/{folder}", get(folder_page))
        .route("/folders/{agent}/{folder}/entries", post(add))
        .route("/folders/{agent}/{folder}/entries/{id}", post(change))
        .route(
            "/folders/{agent}/{folder}/import",
            post(import).layer(DefaultBodyLimit::disable()),
        )
}

/// The prefix of an entry form's value fields: `col.<column name>`.
const COL: &str = "col.";

async fn folders(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let who = match signed_in(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let (status, body) = match state.krake.folders_for(&who.actor, None).await {
        Ok(list) => (
            StatusCode::OK,
            html! {
                h1 { "Folders" }
                @if list.is_empty() {
                    p.empty {
                        "No folders yet. Create one in the chat: "
                        code { "/folder create soshie \"content calendar\"" }
                        ", then add columns: "
                        code { "/folder addcol soshie \"content calendar\" title text" }
                        "."
                    }
                } @else {
                    div.scroll {
                        table.folders #folders {
                            thead { tr { th { "Agent" } th { "Folder" } th { "Columns" } th { "Entries" } } }
                            tbody {
                                @for f in &list {
                                    tr {
                                        td data-label="Agent" { (f.agent) }
                                        td data-label="Folder" { a href=(folder_url(&f.agent, f.name.as_str())) { (f.name.as_str()) } }
                                        td data-label="Columns" { (f.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ")) }
                                        td.num data-label="Entries" { (f.entries) }
                                    }
                                }
                            }
                        }
                    }
                }
            },
        ),
        Err(e) => {
            let e = ApiError::from(e);
            (
                e.status(),
                html! { h1 { "Folders" } p.flash.error role="alert" { (e.to_string()) } },
            )
        }
    };
    html(status, page("Folders", Some(&who), &body.into_string()))
}

/// Percent-encodes a path segment.
fn url_part(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn folder_url(agent: &str, folder: &str) -> String {
    format!("/folders/{}/{}", url_part(agent), url_part(folder))
}

/// `?edit=ID` opens an entry's edit form, `?delete=ID` asks before deleting it.
#[derive(Debug, Default, Deserialize)]
pub struct FolderQuery {
    /// The entry to edit.
    pub edit: Option<i64>,
    /// The entry to confirm deleting.
    pub delete: Option<i64>,
    /// What the last change did (`added`, `saved`, `deleted`, `imported`): the page says so.
    pub done: Option<String>,
    /// The entry it was done to, or how many entries were imported.
    pub n: Option<i64>,
}

/// The message for `?done=…&n=…` (words of our own, never text from the address).
fn done_flash(done: &str, n: i64) -> Option<Flash> {
    let text = match done {
        "added" => format!("Added entry #{n}."),
        "saved" => format!("Saved entry #{n}."),
        "deleted" => format!("Deleted entry #{n}."),
        "imported" if n == 1 => "Added 1 entry from the CSV file.".to_owned(),
        "imported" => format!("Added {n} entries from the CSV file."),
        _ => return None,
    };
    Some(Flash::ok(text))
}

/// The answer to a change that worked: back to the folder's page, which says what was done
/// (post/redirect/get: reloading it posts nothing again).
fn done(agent: &str, folder: &str, what: &str, n: i64) -> Response {
    Redirect::to(&format!("{}?done={what}&n={n}", folder_url(agent, folder))).into_response()
}

/// A message above the page: its class (`ok`, `error`) and text.
struct Flash {
    class: &'static str,
    text: String,
    /// Bad CSV rows, listed under the message.
    rows: Vec<RowError>,
}

impl Flash {
    fn ok(text: String) -> Self {
        Self {
            class: "ok",
            text,
            rows: Vec::new(),
        }
    }

    fn error(text: String) -> Self {
        Self {
            class: "error",
            text,
            rows: Vec::new(),
        }
    }
}

/// What the page shows besides the folder: a message, a form reopened with what was typed.
#[derive(Default)]
struct View {
    flash: Option<Flash>,
    /// The entry whose edit form is open.
    edit: Option<i64>,
    /// The entry whose deletion is being confirmed.
    delete: Option<i64>,
    /// What was typed in the add or edit form, by column name (a refused form keeps it).
    typed: BTreeMap<String, String>,
}

async fn folder_page(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((agent, folder)): Path<(String, String)>,
    q: Result<Query<FolderQuery>, QueryRejection>,
) -> Response {
    let who = match signed_in(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let view = View {
        flash: q
            .done
            .as_deref()
            .and_then(|d| done_flash(d, q.n.unwrap_or_default())),
        edit: q.edit,
        delete: q.delete,
        ..View::default()
    };
    render(&state, &who, &agent, &folder, view, StatusCode::OK).await
}

async fn render(
    state: &WebState,
    who: &Caller,
    agent: &str,
    folder: &str,
    view: View,
    status: StatusCode,
) -> Response {
    let (f, entries) = match state.krake.folder_for(&who.actor, agent, folder).await {
        Ok(x) => x,
        Err(e) => {
            let e = ApiError::from(e);
            let body = html! {
                h1 { "Folder" }
                p.flash.error role="alert" { (e.to_string()) }
                p { a href="/folders" { "Back to the folders" } }
            };
            return html(e.status(), page("Folder", Some(who), &body.into_string()));
        }
    };
    let may_change = state.krake.may_change_folders_of(&who.actor, &f.agent);
    let csrf = who.csrf().unwrap_or_default();
    let base = folder_url(&f.agent, f.name.as_str());
    let editing = view
        .edit
        .and_then(|id| entries.iter().find(|e| e.id.0 == id))
        .filter(|_| may_change.is_ok());
    let deleting = view
        .delete
        .and_then(|id| entries.iter().find(|e| e.id.0 == id))
        .filter(|_| may_change.is_ok());
    let value_of = |e: &krake_core::folder::Entry, c: &krake_core::folder::Column| {
        e.values.get(&c.id).cloned().unwrap_or_default()
    };
    let body = html! {
        h1 { (f.agent) " · " (f.name.as_str()) }
        p.links {
            a href="/folders" { "All folders" } " · "
            a href=(format!("/api/v1/folders/{}/{}/csv", url_part(&f.agent), url_part(f.name.as_str()))) download { "Download as CSV" }
        }
        @if let Some(flash) = &view.flash {
            div #flash class=(format!("flash {}", flash.class)) role="alert" {
                p { (ticks(&flash.text)) }
                @if !flash.rows.is_empty() {
                    ul.row-errors #row-errors {
                        @for r in &flash.rows {
                            li data-line=(r.line) { strong { "Line " (r.line) } ": " (ticks(&r.problem)) }
                        }
                    }
                }
            }
        }
        @if let Some(e) = deleting {
            section.confirm #confirm aria-labelledby="confirm-title" {
                h2 #confirm-title { "Delete entry #" (e.id.0) "?" }
                p {
                    @let first = f.columns.iter().map(|c| value_of(e, c)).find(|v| !v.is_empty());
                    @if let Some(v) = first { "“" (v) "” " }
                    "goes from " (f.name.as_str()) " for good."
                }
                form.inline method="post" action=(format!("{base}/entries/{}", e.id.0)) {
                    input type="hidden" name="csrf" value=(csrf);
                    button.reject type="submit" name="action" value="delete" { "Delete entry #" (e.id.0) }
                }
                " "
                a.button href=(base) { "Keep it" }
            }
        }
        @if f.columns.is_empty() {
            p.empty {
                "This folder has no columns yet. Add one in the chat: "
                code { "/folder addcol " (f.agent.to_lowercase()) " \"" (f.name.as_str()) "\" title text" }
            }
        } @else if entries.is_empty() {
            p.empty #no-entries { "No entries yet." @if may_change.is_ok() { " Add one below or import a CSV file." } }
        } @else {
            div.scroll {
                table.folder #entries {
                    thead {
                        tr {
                            th scope="col" { "#" }
                            @for c in &f.columns {
                                th scope="col" title=(c.kind.describe()) { (c.name.as_str()) " " small { "(" (c.kind.as_str()) ")" } }
                            }
                            @if may_change.is_ok() { th scope="col" { span.sr-only { "Actions" } } }
                        }
                    }
                    tbody {
                        @for e in &entries {
                            tr data-entry=(e.id.0) {
                                td { (e.id.0) }
                                @for c in &f.columns {
                                    @let v = value_of(e, c);
                                    td data-column=(c.name.as_str()) class=[matches!(c.kind, ColumnKind::Number).then_some("num")] {
                                        @if matches!(c.kind, ColumnKind::Url) && (v.starts_with("https://") || v.starts_with("http://")) {
                                            a href=(v) rel="noopener noreferrer nofollow" { (v) }
                                        } @else {
                                            (v)
                                        }
                                    }
                                }
                                @if may_change.is_ok() {
                                    td.row-actions {
                                        a href=(format!("{base}?edit={}#edit", e.id.0)) aria-label=(format!("Edit entry {}", e.id.0)) { "Edit" }
                                        " "
                                        a.danger href=(format!("{base}?delete={}#confirm", e.id.0)) aria-label=(format!("Delete entry {}", e.id.0)) { "Delete" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @match &may_change {
            Ok(()) if !f.columns.is_empty() => {
                @if let Some(e) = editing {
                    section.entry-form #edit {
                        h2 { "Edit entry #" (e.id.0) }
                        form.entry method="post" action=(format!("{base}/entries/{}", e.id.0)) {
                            input type="hidden" name="csrf" value=(csrf);
                            @for c in &f.columns {
                                @let v = view.typed.get(c.name.as_str()).cloned().unwrap_or_else(|| value_of(e, c));
                                (field(c, &v, "edit"))
                            }
                            div.buttons {
                                button.approve type="submit" name="action" value="save" { "Save entry #" (e.id.0) }
                                " "
                                a href=(base) { "Cancel" }
                            }
                        }
                    }
                } @else {
                    section.entry-form #add {
                        h2 { "Add an entry" }
                        form.entry method="post" action=(format!("{base}/entries")) {
                            input type="hidden" name="csrf" value=(csrf);
                            @for c in &f.columns {
                                (field(c, view.typed.get(c.name.as_str()).map_or("", String::as_str), "add"))
                            }
                            div.buttons { button.approve type="submit" { "Add entry" } }
                        }
                    }
                }
                section.import #import {
                    h2 { "Import a CSV file" }
                    p.hint {
                        "The first line names the columns ("
                        (f.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "))
                        "; any order, some may be left out). Good rows are added; each bad row is listed with its line and why."
                    }
                    form.upload method="post" action=(format!("{base}/import")) enctype="multipart/form-data" {
                        input type="hidden" name="csrf" value=(csrf);
                        label for="csv-file" { "CSV file" }
                        input #csv-file name="file" type="file" accept=".csv,text/csv" required;
                        button type="submit" { "Import" }
                    }
                }
            }
            Ok(()) => {}
            Err(e) => { p.hint #read-only { "You can read this folder but not change it: " (ticks(&e.to_string())) } }
        }
    };
    html(
        status,
        page(
            &format!("{} · {}", f.name.as_str(), f.agent),
            Some(who),
            &body.into_string(),
        ),
    )
}

/// Text with `code` spans (core's messages quote names and values in backticks) as `<code>`.
fn ticks(text: &str) -> Markup {
    html! {
        @for (i, part) in text.split('`').enumerate() {
            @if i % 2 == 1 { code { (part) } } @else { (part) }
        }
    }
}

/// One labelled input of an entry form, typed by its column's kind.
fn field(c: &krake_core::folder::Column, value: &str, form: &str) -> Markup {
    let id = format!("{form}-{}", c.id.0);
    let name = format!("{COL}{}", c.name.as_str());
    html! {
        div.field {
            label for=(id) { (c.name.as_str()) " " small { (c.kind.as_str()) } }
            @match &c.kind {
                ColumnKind::Text => input id=(id) name=(name) type="text" value=(value) maxlength="2000";
                ColumnKind::Number => input id=(id) name=(name) type="text" inputmode="decimal" value=(value);
                ColumnKind::Date => input id=(id) name=(name) type="date" value=(value);
                ColumnKind::Url => input id=(id) name=(name) type="url" value=(value) placeholder="https://";
                ColumnKind::Status(allowed) => select id=(id) name=(name) {
                    option value="" selected[value.is_empty()] { "(blank)" }
                    @for a in allowed {
                        option value=(a) selected[a.eq_ignore_ascii_case(value)] { (a) }
                    }
                },
            }
        }
    }
}

/// An entry form: the CSRF token, `action` (`save`, `delete`) and `col.<name>` values.
type EntryForm = Vec<(String, String)>;

struct Posted {
    csrf: Option<String>,
    action: String,
    pairs: Vec<(String, String)>,
}

fn posted(form: EntryForm) -> Posted {
    let mut p = Posted {
        csrf: None,
        action: String::new(),
        pairs: Vec::new(),
    };
    for (k, v) in form {
        match k.as_str() {
            "csrf" => p.csrf = Some(v),
            "action" => p.action = v,
            _ => {
                if let Some(col) = k.strip_prefix(COL) {
                    p.pairs.push((col.to_owned(), v));
                }
            }
        }
    }
    p
}

/// The signed-in caller and the form of a post, its CSRF token checked; else the response.
async fn open_post(
    state: &WebState,
    headers: &HeaderMap,
    form: Result<Form<EntryForm>, FormRejection>,
) -> Result<(Caller, Posted), Response> {
    let who = signed_in(state, headers).await?;
    let form = match form {
        Ok(Form(f)) => posted(f),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(ApiError::PayloadTooLarge(state.config.max_body_bytes).into_response());
        }
        Err(e) => return Err(ApiError::BadRequest(e.body_text()).into_response()),
    };
    who.check_csrf(form.csrf.as_deref())
        .map_err(IntoResponse::into_response)?;
    Ok((who, form))
}

fn refused(e: krake_core::thread_api::ThreadError) -> (Flash, StatusCode) {
    let e = ApiError::from(e);
    (Flash::error(e.to_string()), e.status())
}

async fn add(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((agent, folder)): Path<(String, String)>,
    form: Result<Form<EntryForm>, FormRejection>,
) -> Response {
    let (who, form) = match open_post(&state, &headers, form).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let mut view = View::default();
    let status = match state
        .krake
        .add_folder_entry(&who.actor, &agent, &folder, &form.pairs)
        .await
    {
        Ok(e) => return done(&agent, &folder, "added", e.id.0),
        Err(e) => {
            let (flash, status) = refused(e);
            view.flash = Some(flash);
            view.typed = form.pairs.into_iter().collect();
            status
        }
    };
    render(&state, &who, &agent, &folder, view, status).await
}

async fn change(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((agent, folder, id)): Path<(String, String, String)>,
    form: Result<Form<EntryForm>, FormRejection>,
) -> Response {
    let (who, form) = match open_post(&state, &headers, form).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Ok(id) = id.parse::<i64>() else {
        return ApiError::BadRequest(format!("`{id}` is not an entry number")).into_response();
    };
    let k = &state.krake;
    let mut view = View::default();
    let status = match form.action.as_str() {
        "save" => match k
            .update_folder_entry(&who.actor, &agent, &folder, EntryId(id), &form.pairs)
            .await
        {
            Ok(_) => return done(&agent, &folder, "saved", id),
            Err(e) => {
                let (flash, status) = refused(e);
                view.flash = Some(flash);
                view.edit = Some(id);
                view.typed = form.pairs.into_iter().collect();
                status
            }
        },
        "delete" => match k
            .delete_folder_entry(&who.actor, &agent, &folder, EntryId(id))
            .await
        {
            Ok(()) => return done(&agent, &folder, "deleted", id),
            Err(e) => {
                let (flash, status) = refused(e);
                view.flash = Some(flash);
                status
            }
        },
        other => {
            return ApiError::BadRequest(format!(
                "`{other}` is not an action here; use save or delete"
            ))
            .into_response();
        }
    };
    render(&state, &who, &agent, &folder, view, status).await
}

async fn import(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((agent, folder)): Path<(String, String)>,
    form: Result<Multipart, MultipartRejection>,
) -> Response {
    let who = match signed_in(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut view = View::default();
    let status = match read_csv_upload(&state, &who, &headers, form).await {
        Err(e) => {
            let status = e.status();
            view.flash = Some(Flash::error(e.to_string()));
            status
        }
        Ok((name, text)) => match state
            .krake
            .import_folder_csv_rows(&who.actor, &agent, &folder, &text)
            .await
        {
            Err(e) => {
                let (flash, status) = refused(e);
                view.flash = Some(flash);
                status
            }
            Ok(d) if d.bad.is_empty() => {
                return done(
                    &agent,
                    &folder,
                    "imported",
                    i64::try_from(d.added).unwrap_or(0),
                );
            }
            Ok(outcome) => {
                let added = match outcome.added {
                    1 => "1 entry".to_owned(),
                    n => format!("{n} entries"),
                };
                let (class, text, status) = match outcome.bad.len() {
                    0 => ("ok", format!("Added {added} from {name}."), StatusCode::OK),
                    n => (
                        "error",
                        format!(
                            "Added {added} from {name}; {} left out. Fix {} and import only {} again:",
                            if n == 1 {
                                "1 row was".to_owned()
                            } else {
                                format!("{n} rows were")
                            },
                            if n == 1 { "it" } else { "them" },
                            if n == 1 { "that row" } else { "those rows" },
                        ),
                        if outcome.added == 0 {
                            StatusCode::BAD_REQUEST
                        } else {
                            StatusCode::OK
                        },
                    ),
                };
                view.flash = Some(Flash {
                    class,
                    text,
                    rows: outcome.bad,
                });
                status
            }
        },
    };
    render(&state, &who, &agent, &folder, view, status).await
}

/// The uploaded CSV's file name and text, its CSRF token checked.
async fn read_csv_upload(
    state: &WebState,
    who: &Caller,
    headers: &HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<(String, String), ApiError> {
    let form = form.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let upload = read_upload(headers, form, state.config.max_file_bytes).await?;
    who.check_csrf(upload.csrf.as_deref())?;
    let text = String::from_utf8(upload.bytes).map_err(|_| {
        ApiError::BadRequest(format!(
            "{} is not UTF-8 text: save it as CSV (UTF-8) and import it again",
            upload.name
        ))
    })?;
    Ok((upload.name, text))
}
