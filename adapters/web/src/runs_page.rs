//! The dashboard's Agents page (each agent working or idle, this month's runs and cost against
//! its budget, its last result and tools), Runs page (filters, newest first) and a run's page
//! (its steps, tool calls, tokens and cost, and a Cancel form for members). Both are server-rendered and work without
//! scripts; `dashboard.js` keeps them live by reading `/api/v1/runs` with the session.

use crate::ApiError;
use crate::auth::Caller;
use crate::dashboard::{
    WithCsrf, choose, filter_link, flash, form_post, html, layout, signed_in, url_part,
};
use crate::front::WebState;
use axum::Router;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use krake_core::ledger::dollars;
use krake_core::run::{Cancel, Run, RunId, RunStatus};
use maud::{Markup, html as markup};
use serde::Deserialize;

/// Run page routes.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/agents", get(agents))
        .route("/runs", get(runs))
        .route("/runs/{id}", get(run_page).post(run_action))
}

/// Runs filters (query string), as the API takes them.
#[derive(Debug, Default, Deserialize)]
pub struct RunsQuery {
    /// Workspace slug.
    pub workspace: Option<String>,
    /// Agent.
    pub agent: Option<String>,
    /// Status.
    pub status: Option<String>,
    /// Paging.
    pub before: Option<i64>,
}

async fn agents(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let who = match signed_in(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let status = match state.krake.agent_status(&who.actor).await {
        Ok(s) => s.unwrap_or_default(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let body = markup! {
        h1 { "Agents" }
        table class="agents" {
            thead { tr { th { "Name" } th { "Role" } th { "Now" } th { "This month" } th { "Last result" } th { "Tools" } th { "Workspaces" } } }
            tbody {
                @for a in state.krake.directory().agents() {
                    @if a.workspaces.iter().any(|w| who.actor.can_see(w)) {
                        @let ws: Vec<&str> = a.workspaces.iter().map(|w| w.as_str()).collect();
                        @let s = status.iter().find(|s| s.name == a.name.as_str());
                        tr data-agent=(a.name.as_str()) {
                            td { (a.name.as_str()) }
                            td { (a.role) br; span class="hint" { (a.description) } }
                            td {
                                @match s.map(|s| s.working_on.as_slice()) {
                                    None => "—",
                                    Some([]) => span class="status" data-status="idle" { "idle" },
                                    Some(ids) => {
                                        span class="status" data-status="running" { "working" } " on "
                                        @for (i, id) in ids.iter().enumerate() {
                                            @if i > 0 { ", " }
                                            a href={ "/runs/" (id.0) } { "run " (id.0) }
                                        }
                                    }
                                }
                            }
                            td {
                                @if let Some(s) = s {
                                    a href={ "/runs?agent=" (url_part(&s.name.to_lowercase())) } {
                                        (s.runs_this_month) " run" @if s.runs_this_month != 1 { "s" }
                                    }
                                    ", " (dollars(s.spent_micros))
                                    @if let Some(b) = s.budget_micros { " of " (dollars(b)) }
                                }
                            }
                            td class="title" {
                                @if let Some((id, text)) = s.and_then(|s| s.last_result.as_ref()) {
                                    a href={ "/runs/" (id.0) } { "run " (id.0) } ": " (krake_core::text::one_line(text, 80))
                                }
                            }
                            td class="hint" { @if let Some(s) = s { (s.tools.join(", ")) } }
                            td { (ws.join(", ")) }
                        }
                    }
                }
            }
        }
    };
    html(StatusCode::OK, layout("Agents", Some(&who), body))
}

fn row(r: &Run) -> Markup {
    let id = r.id.0;
    markup! {
        tr data-run=(id) {
            td { a href={ "/runs/" (id) } { "run " (id) } }
            td { (r.agent) }
            td { (r.workspace.as_str()) }
            td class="status" data-status=(r.status) { (r.status) }
            td class="title" { (r.task) }
        }
    }
}

async fn runs(
    State(state): State<WebState>,
    headers: HeaderMap,
    q: Result<Query<RunsQuery>, QueryRejection>,
) -> Response {
    let who = match signed_in(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let q = q.map(|Query(q)| q).unwrap_or_default();
    let params = crate::api::runs::RunParams {
        workspace: q.workspace.clone(),
        agent: q.agent.clone(),
        status: q.status.clone(),
        limit: Some(50),
        before: q.before,
    };
    let listed = match params.query() {
        Ok(rq) => state
            .krake
            .runs(&who.actor, &rq)
            .await
            .map_err(ApiError::from)
            .and_then(|r| {
                r.ok_or_else(|| {
                    ApiError::NotFound("Agents are not set up here, so there are no runs.".into())
                })
            }),
        Err(e) => Err(e),
    };
    let mut ws_opts = vec![(String::new(), "all workspaces".to_owned())];
    for w in state.krake.directory().workspaces() {
        if who.actor.can_see(&w.slug) {
            ws_opts.push((w.slug.to_string(), w.name.clone()));
        }
    }
    let mut agents = vec![(String::new(), "all agents".to_owned())];
    agents.extend(
        state
            .krake
            .directory()
            .agents()
            .iter()
            .map(|a| (a.name.as_str().to_lowercase(), a.name.to_string())),
    );
    let mut statuses = vec![(String::new(), "any status".to_owned())];
    statuses.extend(
        RunStatus::ALL
            .iter()
            .map(|s| (s.as_str().to_owned(), s.as_str().replace('_', " "))),
    );
    let status = listed
        .as_ref()
        .err()
        .map_or(StatusCode::OK, ApiError::status);
    let body = markup! {
        h1 { "Runs" }
        form method="get" action="/runs" class="filters" {
            (choose("workspace", "Workspace", q.workspace.as_deref().unwrap_or(""), &ws_opts))
            (choose("agent", "Agent", q.agent.as_deref().unwrap_or(""), &agents))
            (choose("status", "Status", q.status.as_deref().unwrap_or(""), &statuses))
            button type="submit" { "Filter" }
        }
        @match &listed {
            Err(e) => (flash("error", &e.to_string())),
            Ok(list) => {
                @if list.is_empty() {
                    p class="empty" { "No runs here yet. Give an agent a task in chat: " code { "ask penn to draft a tagline" } "." }
                }
                table id="runs" class="threads runs" data-live-runs {
                    thead { tr { th { "Run" } th { "Agent" } th { "Workspace" } th { "Status" } th { "Task" } } }
                    tbody { @for r in list { (row(r)) } }
                }
                @if list.len() == 50 {
                    @if let Some(last) = list.last() {
                        p {
                            a href=(filter_link(&format!("/runs?before={}", last.id.0), &[("workspace", &q.workspace), ("agent", &q.agent), ("status", &q.status)])) {
                                "Older runs →"
                            }
                        }
                    }
                }
            }
        }
    };
    html(status, layout("Runs", Some(&who), body))
}

/// `?done=cancelled` after a Cancel.
#[derive(Debug, Default, Deserialize)]
pub struct RunDone {
    /// What the last action did.
    pub done: Option<String>,
}

async fn run_page(
    State(state): State<WebState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    q: Result<Query<RunDone>, QueryRejection>,
) -> Response {
    let who = match signed_in(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Ok(Path(id)) = id else {
        let body = markup! {
            (flash("error", "A run id is a number, as in /runs/12."))
            p { a href="/runs" { "All runs" } }
        };
        return html(
            StatusCode::BAD_REQUEST,
            layout("Not a run", Some(&who), body),
        );
    };
    let flash = match q.ok().and_then(|Query(q)| q.done).as_deref() {
        Some("cancelled") => Some(("ok", format!("You cancelled run {id}."))),
        _ => None,
    };
    render_run(&state, &who, RunId(id), StatusCode::OK, flash).await
}

async fn render_run(
    state: &WebState,
    who: &Caller,
    id: RunId,
    status: StatusCode,
    note: Option<(&str, String)>,
) -> Response {
    let view = match state.krake.run_view(&who.actor, id).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            let body = markup! {
                p { "There is no " (id) " you can see. " a href="/runs" { "All runs" } }
            };
            return html(
                StatusCode::NOT_FOUND,
                layout("No such run", Some(who), body),
            );
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let r = &view.run;
    let u = view.usage;
    let may_cancel =
        !who.actor.unlinked && who.actor.role_in(&r.workspace) >= krake_core::actor::Role::Member;
    let body = markup! {
        h1 { "Run " (r.id.0) " · " (r.agent) }
        p {
            span class="status" data-status=(r.status) id="run-status" { (r.status) }
            " in " (r.workspace.as_str()) " · asked by " (r.requested_by) " (" (r.trigger) ") · "
            (r.created_at.to_utc_string())
        }
        @if let Some((kind, text)) = &note { (flash(kind, text)) }
        h2 { "Task" }
        pre class="body" { (r.task) }
        dl class="kpi-today" {
            div { dt { "Model calls" } dd id="run-calls" { (u.calls) } }
            div { dt { "Tokens in" } dd id="run-in" { (u.input_tokens) } }
            div { dt { "Tokens out" } dd id="run-out" { (u.output_tokens) } }
            div { dt { "Cost" } dd id="run-cost" { (dollars(u.cost_micros)) } }
        }
        @if let Some(th) = r.thread { p { "Thread: " a href={ "/threads/" (th.0) } { "#" (th.0) } } }
        @if let Some(p) = r.parent {
            p {
                @if r.trigger == krake_core::run::DELEGATION { "Delegated by " } @else { "Follows " }
                a href={ "/runs/" (p.0) } { "run " (p.0) } "."
            }
        }
        @if let Some(res) = &r.result { h2 { "Result" } pre class="body" { (res) } }
        @if let Some(e) = &r.error { h2 { "Why" } pre class="body" { (e) } }
        @if r.status.cancellable() && may_cancel {
            form method="post" action={ "/runs/" (r.id.0) } class="reply" id="run-cancel" {
                input type="hidden" name="csrf" value=(who.csrf().unwrap_or_default());
                label { "Why cancel (optional) " input name="reason" maxlength="500"; }
                button type="submit" class="reject" { "Cancel this run" }
            }
        }
        h2 { "Steps" }
        table class="audit" id="run-steps" data-live-run=(r.id.0) data-steps=(r.steps.len()) {
            thead { tr { th { "When (UTC)" } th { "Step" } th { "Detail" } } }
            tbody {
                @for s in &r.steps {
                    @let t = s.at.to_utc_string();
                    tr { td { (t.get(11..16).unwrap_or(&t)) } td { (s.kind) } td class="title" { (s.detail) } }
                }
            }
        }
        @if r.steps.is_empty() { p class="empty" { "No steps yet: it waits for a worker." } }
    };
    html(status, layout(&format!("Run {}", r.id.0), Some(who), body))
}

/// The Cancel form.
#[derive(Debug, Deserialize)]
pub struct CancelForm {
    /// The session's CSRF token.
    pub csrf: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

impl WithCsrf for CancelForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn run_action(
    State(state): State<WebState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    form: Result<Form<CancelForm>, FormRejection>,
) -> Response {
    let (who, id, form) = match form_post(&state, &headers, id, form, "run").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let id = RunId(id);
    let reason = Some(form.reason.trim()).filter(|r| !r.is_empty());
    let (status, flash) = match state.krake.cancel_run(&who.actor, id, reason).await {
        Ok(Cancel::Cancelled(_)) => {
            return Redirect::to(&format!("/runs/{}?done=cancelled", id.0)).into_response();
        }
        Ok(Cancel::Ended(r)) => (
            StatusCode::CONFLICT,
            format!("{id} has already ended ({}).", r.status),
        ),
        Ok(Cancel::Executing(_)) => (
            StatusCode::CONFLICT,
            format!("{id}'s approved action is being carried out and cannot be stopped half-way."),
        ),
        Ok(Cancel::NotFound) => (
            StatusCode::NOT_FOUND,
            format!("There is no {id} you can see."),
        ),
        Ok(Cancel::NotLinked) => (
            StatusCode::FORBIDDEN,
            "Cancelling a run needs a linked Krake account.".to_owned(),
        ),
        Ok(Cancel::RoleTooLow { run, role }) => (
            StatusCode::FORBIDDEN,
            format!(
                "Only members of {} can cancel its runs; you are a {role} there.",
                run.workspace
            ),
        ),
        Err(e) => return ApiError::from(e).into_response(),
    };
    render_run(&state, &who, id, status, Some(("error", flash))).await
}
