//! The home page: the overview (unfiltered only), the open threads counted per workspace, the
//! filters and the inbox table (titles link to their thread, ages with the full time on
//! hover). `dashboard.js` adds threads that arrive while the page is open, when they match
//! the page's filters (the table carries them as `data-` attributes).

use super::{ago, choose, filter_link, flash, html, layout, signed_in};
use crate::ApiError;
use crate::front::WebState;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use krake_core::inbox::{Thread, ThreadKind, ThreadStatus};
use krake_core::time::Timestamp;
use maud::{Markup, html as markup};
use serde::Deserialize;

/// Threads per inbox page.
const PAGE: usize = 50;
/// Open threads counted at most (more shows as `200+`).
const COUNTED: usize = 200;

/// Inbox filters (query string).
#[derive(Debug, Default, Deserialize)]
pub struct InboxQuery {
    /// Workspace slug.
    pub workspace: Option<String>,
    /// Kind.
    pub kind: Option<String>,
    /// Status (`all` = every status but archived).
    pub status: Option<String>,
    /// Paging.
    pub before: Option<i64>,
}

impl InboxQuery {
    fn unfiltered(&self) -> bool {
        [&self.workspace, &self.kind, &self.status]
            .iter()
            .all(|v| v.as_deref().is_none_or(str::is_empty))
            && self.before.is_none()
    }
}

/// The open threads the caller may see, per workspace in the directory's order, and whether
/// there were more than counted.
async fn open_counts(
    state: &WebState,
    who: &crate::auth::Caller,
) -> Option<(Vec<(String, usize)>, bool)> {
    let params = crate::api::inbox::ListParams {
        workspace: None,
        kind: None,
        status: Some("open".into()),
        limit: u32::try_from(COUNTED).ok(),
        before: None,
    };
    let open = state
        .krake
        .threads_for(&who.actor, params.filter().ok()?)
        .await
        .ok()?;
    let mut counts = Vec::new();
    for w in state.krake.directory().workspaces() {
        let n = open.iter().filter(|t| t.workspace == w.slug).count();
        if n > 0 {
            counts.push((w.slug.to_string(), n));
        }
    }
    Some((counts, open.len() >= COUNTED))
}

pub(super) async fn inbox(
    State(state): State<WebState>,
    headers: HeaderMap,
    q: Result<Query<InboxQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let who = match signed_in(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let params = crate::api::inbox::ListParams {
        workspace: q.workspace.clone(),
        kind: q.kind.clone(),
        status: q.status.clone(),
        limit: u32::try_from(PAGE).ok(),
        before: q.before,
    };
    let listed = match params.filter() {
        Ok(f) => state
            .krake
            .threads_for(&who.actor, f)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    // The overview heads the unfiltered home page only: a filtered or paged inbox is a search.
    let mut overview = None;
    let mut overview_failed = false;
    if q.unfiltered() {
        match state.krake.overview(&who.actor).await {
            Ok(o) => overview = o,
            Err(e) => {
                tracing::error!(error = %e, "reading the overview");
                overview_failed = true;
            }
        }
    }
    let counts = open_counts(&state, &who).await;
    let now = state.krake.now();
    let mut ws_opts = vec![(String::new(), "all workspaces".to_owned())];
    for w in state.krake.directory().workspaces() {
        if who.actor.can_see(&w.slug) {
            ws_opts.push((w.slug.to_string(), w.name.clone()));
        }
    }
    let mut kinds = vec![(String::new(), "all kinds".to_owned())];
    kinds.extend(
        ThreadKind::ALL
            .iter()
            .map(|k| (k.to_string(), k.to_string())),
    );
    let mut statuses = vec![(String::new(), "all but archived".to_owned())];
    statuses.extend(
        ThreadStatus::ALL
            .iter()
            .map(|k| (k.to_string(), k.to_string())),
    );
    let headed = overview.is_some() || overview_failed;
    let (status, listed) = match listed {
        Ok(t) => (StatusCode::OK, Ok(t)),
        Err(e) => (e.status(), Err(e)),
    };
    let body = markup! {
        @if let Some(o) = &overview { (crate::kpi_cards::overview(o, now)) }
        @if overview_failed { (flash("error", "The overview could not be read; the inbox follows.")) }
        @if headed { h2 class="inbox" { "Inbox" } } @else { h1 { "Inbox" } }
        @if let Some((counts, more)) = &counts { (count_line(counts, *more)) }
        form method="get" action="/" class="filters" {
            (choose("workspace", "Workspace", q.workspace.as_deref().unwrap_or(""), &ws_opts))
            (choose("kind", "Kind", q.kind.as_deref().unwrap_or(""), &kinds))
            (choose("status", "Status", q.status.as_deref().unwrap_or(""), &statuses))
            button type="submit" { "Filter" }
        }
        @match &listed {
            Err(e) => (flash("error", &e.to_string())),
            Ok(threads) => (table(&q, threads, now)),
        }
    };
    html(status, layout("Inbox", Some(&who), body))
}

/// `7 open: lunavo 3 · monarch 4`, each a link to that workspace's open threads.
fn count_line(counts: &[(String, usize)], more: bool) -> Markup {
    let total: usize = counts.iter().map(|(_, n)| n).sum();
    markup! {
        p class="counts" id="open-counts" {
            @if total == 0 {
                "Nothing open."
            } @else {
                a href="/?status=open" {
                    strong data-open=(total) { (total) @if more { "+" } } " open"
                }
                ": "
                @for (i, (ws, n)) in counts.iter().enumerate() {
                    @if i > 0 { " · " }
                    a href={ "/?status=open&workspace=" (ws) } data-open-workspace=(ws) { (ws) " " (n) }
                }
            }
        }
    }
}

/// The inbox table (hidden while empty, so live rows have a place to go) and paging.
fn table(q: &InboxQuery, threads: &[Thread], now: Timestamp) -> Markup {
    let older = (threads.len() == PAGE)
        .then(|| threads.last())
        .flatten()
        .map(|last| {
            filter_link(
                &format!("/?before={}", last.id.0),
                &[
                    ("workspace", &q.workspace),
                    ("kind", &q.kind),
                    ("status", &q.status),
                ],
            )
        });
    markup! {
        @if threads.is_empty() { p class="empty" id="inbox-empty" { "Nothing here. All clear." } }
        table id="inbox" class="threads"
            data-workspace=(q.workspace.as_deref().unwrap_or(""))
            data-kind=(q.kind.as_deref().unwrap_or(""))
            data-status=(q.status.as_deref().unwrap_or(""))
            data-paged[q.before.is_some()]
            hidden[threads.is_empty()] {
            thead { tr { th { "#" } th { "Title" } th { "Workspace" } th { "Kind" } th { "Status" } th { "Age" } } }
            tbody { @for t in threads { (row(t, now)) } }
        }
        @if let Some(link) = older { p { a href=(link) { "Older threads →" } } }
    }
}

/// One thread's row.
fn row(t: &Thread, now: Timestamp) -> Markup {
    let id = t.id.0;
    markup! {
        tr data-thread=(id) {
            td class="id" { a href={ "/threads/" (id) } { "#" (id) } }
            td class="title" { a href={ "/threads/" (id) } { (t.title) } }
            td class="ws" { (t.workspace.as_str()) }
            td class="kind" { (t.kind) }
            td class="status" data-status=(t.status) { (t.status) }
            td class="age" { (ago(now, t.created_at)) }
        }
    }
}
