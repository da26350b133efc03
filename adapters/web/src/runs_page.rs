//! The dashboard's Agents page (each agent working or idle, this month's runs and cost against
//! its budget, its last result and tools), Runs page (filters, newest first) and a run's page
//! (its steps, tool calls, tokens and cost, and a Cancel form for members). Both are server-rendered and work without
//! scripts; `dashboard.js` keeps them live by reading `/api/v1/runs` with the session.

use crate::ApiError;
use crate::auth::Caller;
use crate::dashboard::{WithCsrf, esc, form_post, html, page, select, signed_in};
use crate::front::WebState;
use axum::Router;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use krake_core::ledger::dollars;
use krake_core::run::{Cancel, Run, RunId, RunStatus};
use serde::Deserialize;
use std::fmt::Write as _;

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
    let mut b = String::from(
        "<h1>Agents</h1><table class=\"agents\"><thead><tr><th>Name</th><th>Role</th><th>Now</th><th>This month</th><th>Last result</th><th>Tools</th><th>Workspaces</th></tr></thead><tbody>",
    );
    for a in state.krake.directory().agents() {
        if !a.workspaces.iter().any(|w| who.actor.can_see(w)) {
            continue;
        }
        let ws: Vec<&str> = a.workspaces.iter().map(|w| w.as_str()).collect();
        let s = status.iter().find(|s| s.name == a.name.as_str());
        let now = match s.map(|s| s.working_on.as_slice()) {
            None => "—".to_owned(),
            Some([]) => r#"<span class="status" data-status="idle">idle</span>"#.to_owned(),
            Some(ids) => format!(
                r#"<span class="status" data-status="running">working</span> on {}"#,
                ids.iter()
                    .map(|id| format!(r#"<a href="/runs/{0}">run {0}</a>"#, id.0))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let month = s.map_or_else(String::new, |s| {
            format!(
                r#"<a href="/runs?agent={}">{} run{}</a>, {}{}"#,
                esc(&s.name.to_lowercase()),
                s.runs_this_month,
                if s.runs_this_month == 1 { "" } else { "s" },
                esc(&dollars(s.spent_micros)),
                s.budget_micros
                    .map(|b| format!(" of {}", esc(&dollars(b))))
                    .unwrap_or_default()
            )
        });
        let last = s
            .and_then(|s| s.last_result.as_ref())
            .map_or_else(String::new, |(id, text)| {
                format!(
                    r#"<a href="/runs/{}">run {}</a>: {}"#,
                    id.0,
                    id.0,
                    esc(&krake_core::text::one_line(text, 80))
                )
            });
        let tools = s.map_or_else(String::new, |s| esc(&s.tools.join(", ")));
        let _ = write!(
            b,
            r#"<tr data-agent="{name}"><td>{name}</td><td>{role}<br><span class="hint">{desc}</span></td><td>{now}</td><td>{month}</td><td class="title">{last}</td><td class="hint">{tools}</td><td>{ws}</td></tr>"#,
            name = esc(a.name.as_str()),
            role = esc(&a.role),
            desc = esc(&a.description),
            ws = esc(&ws.join(", ")),
        );
    }
    b.push_str("</tbody></table>");
    html(StatusCode::OK, page("Agents", Some(&who), &b))
}

fn row(r: &Run) -> String {
    format!(
        r#"<tr data-run="{id}"><td><a href="/runs/{id}">run {id}</a></td><td>{agent}</td><td>{ws}</td><td class="status" data-status="{status}">{status}</td><td class="title">{task}</td></tr>"#,
        id = r.id.0,
        agent = esc(&r.agent),
        ws = esc(r.workspace.as_str()),
        status = r.status,
        task = esc(&r.task),
    )
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
    let mut body = String::from("<h1>Runs</h1>");
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
    let _ = write!(
        body,
        r#"<form method="get" action="/runs" class="filters">{}{}{}<button type="submit">Filter</button></form>"#,
        select(
            "workspace",
            "Workspace",
            q.workspace.as_deref().unwrap_or(""),
            &ws_opts
        ),
        select("agent", "Agent", q.agent.as_deref().unwrap_or(""), &agents),
        select(
            "status",
            "Status",
            q.status.as_deref().unwrap_or(""),
            &statuses
        ),
    );
    match listed {
        Err(e) => {
            let status = e.status();
            let _ = write!(
                body,
                r#"<p class="flash error" role="alert">{}</p>"#,
                esc(&e.to_string())
            );
            return html(status, page("Runs", Some(&who), &body));
        }
        Ok(list) => {
            if list.is_empty() {
                body.push_str(r#"<p class="empty">No runs here yet. Give an agent a task in chat: <code>ask penn to draft a tagline</code>.</p>"#);
            }
            body.push_str(r#"<table id="runs" class="threads" data-live-runs><thead><tr><th>Run</th><th>Agent</th><th>Workspace</th><th>Status</th><th>Task</th></tr></thead><tbody>"#);
            for r in &list {
                body.push_str(&row(r));
            }
            body.push_str("</tbody></table>");
            if list.len() == 50
                && let Some(last) = list.last()
            {
                let mut link = format!("/runs?before={}", last.id.0);
                for (k, v) in [
                    ("workspace", &q.workspace),
                    ("agent", &q.agent),
                    ("status", &q.status),
                ] {
                    if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                        let _ = write!(link, "&{k}={}", esc(v));
                    }
                }
                let _ = write!(body, r#"<p><a href="{link}">Older runs →</a></p>"#);
            }
        }
    }
    html(StatusCode::OK, page("Runs", Some(&who), &body))
}

async fn run_page(
    State(state): State<WebState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
) -> Response {
    let who = match signed_in(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Ok(Path(id)) = id else {
        return html(
            StatusCode::BAD_REQUEST,
            page("Not a run", Some(&who), "<p>A run id is a number.</p>"),
        );
    };
    render_run(&state, &who, RunId(id), StatusCode::OK, None).await
}

async fn render_run(
    state: &WebState,
    who: &Caller,
    id: RunId,
    status: StatusCode,
    flash: Option<(&str, String)>,
) -> Response {
    let view = match state.krake.run_view(&who.actor, id).await {
        Ok(Some(v)) => v,
        Ok(None) => {
            return html(
                StatusCode::NOT_FOUND,
                page(
                    "No such run",
                    Some(who),
                    &format!(
                        r#"<p>There is no {id} you can see. <a href="/runs">All runs</a></p>"#
                    ),
                ),
            );
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let r = &view.run;
    let u = view.usage;
    let mut b = format!(
        r#"<h1>Run {id} · {agent}</h1><p><span class="status" data-status="{st}" id="run-status">{st}</span> in {ws} · asked by {by} ({trigger}) · {at}</p>"#,
        id = r.id.0,
        agent = esc(&r.agent),
        st = r.status,
        ws = esc(r.workspace.as_str()),
        by = esc(&r.requested_by),
        trigger = esc(&r.trigger),
        at = esc(&r.created_at.to_utc_string()),
    );
    if let Some((kind, text)) = flash {
        let _ = write!(
            b,
            r#"<p class="flash {kind}" role="alert">{}</p>"#,
            esc(&text)
        );
    }
    let _ = write!(
        b,
        r#"<h2>Task</h2><pre class="body">{}</pre><dl class="kpi-today"><div><dt>Model calls</dt><dd id="run-calls">{}</dd></div><div><dt>Tokens in</dt><dd id="run-in">{}</dd></div><div><dt>Tokens out</dt><dd id="run-out">{}</dd></div><div><dt>Cost</dt><dd id="run-cost">{}</dd></div></dl>"#,
        esc(&r.task),
        u.calls,
        u.input_tokens,
        u.output_tokens,
        esc(&dollars(u.cost_micros)),
    );
    if let Some(th) = r.thread {
        let _ = write!(b, r#"<p>Thread: <a href="/threads/{0}">#{0}</a></p>"#, th.0);
    }
    if let Some(p) = r.parent {
        let how = if r.trigger == krake_core::run::DELEGATION {
            "Delegated by"
        } else {
            "Follows"
        };
        let _ = write!(b, r#"<p>{how} <a href="/runs/{0}">run {0}</a>.</p>"#, p.0);
    }
    if let Some(res) = &r.result {
        let _ = write!(b, r#"<h2>Result</h2><pre class="body">{}</pre>"#, esc(res));
    }
    if let Some(e) = &r.error {
        let _ = write!(b, r#"<h2>Why</h2><pre class="body">{}</pre>"#, esc(e));
    }
    let may_cancel =
        !who.actor.unlinked && who.actor.role_in(&r.workspace) >= krake_core::actor::Role::Member;
    if r.status.cancellable() && may_cancel {
        let _ = write!(
            b,
            r#"<form method="post" action="/runs/{id}" class="reply" id="run-cancel"><input type="hidden" name="csrf" value="{csrf}"><label>Why cancel (optional) <input name="reason" maxlength="500"></label><button type="submit" class="reject">Cancel this run</button></form>"#,
            id = r.id.0,
            csrf = esc(who.csrf().unwrap_or_default()),
        );
    }
    let _ = write!(
        b,
        r#"<h2>Steps</h2><table class="audit" id="run-steps" data-live-run="{id}" data-steps="{n}"><thead><tr><th>When (UTC)</th><th>Step</th><th>Detail</th></tr></thead><tbody>"#,
        id = r.id.0,
        n = r.steps.len(),
    );
    for s in &r.steps {
        let t = s.at.to_utc_string();
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td class=\"title\">{}</td></tr>",
            esc(t.get(11..16).unwrap_or(&t)),
            esc(&s.kind),
            esc(&s.detail)
        );
    }
    b.push_str("</tbody></table>");
    if r.steps.is_empty() {
        b.push_str(r#"<p class="empty">No steps yet: it waits for a worker.</p>"#);
    }
    html(status, page(&format!("Run {}", r.id.0), Some(who), &b))
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
            return Redirect::to(&format!("/runs/{}", id.0)).into_response();
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
