//! The dashboard: server-rendered HTML pages (sign-in, the home page with the overview and
//! the inbox with filters, a thread with its replies, audit log and actions, workspaces with
//! each one's KPI cards from `kpi_cards` and commerce panel, agents, runs in `runs_page`, each
//! workspace's knowledge in `knowledge_page`).
//! Plain forms and links, so it works with the keyboard and without scripts; the embedded
//! widget script adds live updates.
//!
//! Every text that comes from people or agents goes through [`esc`]; pages also forbid inline
//! scripts (Content-Security-Policy), so a title like `<script>…` only ever shows as text.

use crate::ApiError;
use crate::auth::{Caller, caller};
use crate::front::WebState;
use axum::Router;
use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use krake_core::commerce::Kpis;
use krake_core::inbox::{Decision, Thread, ThreadId};
use krake_core::thread_api::ThreadError;
use krake_core::workspace::WorkspaceSlug;
use serde::Deserialize;
use std::fmt::Write as _;

/// Dashboard routes.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/", get(inbox))
        .route("/threads/{id}", get(thread_page).post(thread_action))
        .route("/workspaces", get(workspaces))
        .route("/workspaces/{slug}", get(workspace_kpis))
        .merge(crate::runs_page::router())
        .merge(crate::dead_letters_page::router())
        .merge(crate::knowledge_page::router())
        .merge(crate::folders_page::router())
        .merge(crate::schedules_page::router())
        .merge(crate::costs_page::router())
}

/// Escapes text for HTML element content and quoted attributes.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

pub(crate) fn html(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

pub(crate) fn page(title: &str, who: Option<&Caller>, body: &str) -> String {
    page_in(title, who, body, "")
}

/// A page whose chat widget works in `workspace` (its attach button adds files there).
pub(crate) fn page_in(title: &str, who: Option<&Caller>, body: &str, workspace: &str) -> String {
    let nav = match who {
        Some(c) => format!(
            r#"<nav><a href="/" accesskey="i">Inbox</a> <a href="/workspaces">Workspaces</a> <a href="/agents">Agents</a> <a href="/runs">Runs</a> <a href="/folders">Folders</a> <a href="/deadletters">Dead letters</a>
<span class="who">{user}</span>
<form method="post" action="/logout" class="inline"><input type="hidden" name="csrf" value="{csrf}"><button type="submit">Sign out</button></form></nav>"#,
            user = esc(c.actor.user.as_str()),
            csrf = esc(c.csrf().unwrap_or_default()),
        ),
        None => String::new(),
    };
    let scripts = if who.is_some() {
        format!(
            r#"<script src="/assets/dashboard.js" defer></script><script src="/widget.js" data-workspace="{}" defer></script>"#,
            esc(workspace)
        )
    } else {
        String::new()
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Krake</title><link rel="stylesheet" href="/assets/style.css">{scripts}</head>
<body><header><strong class="brand">Krake</strong>{nav}</header><main>
{body}
</main></body></html>"#,
        title = esc(title),
    )
}

/// The sign-in page with an optional message, at `status`. Its form carries a CSRF token, set
/// as a pre-session cookie too: the one in `headers` when present, else a new one.
pub fn login_response(
    status: StatusCode,
    message: &str,
    state: &WebState,
    headers: Option<&HeaderMap>,
) -> Response {
    let token = crate::auth::login_token(headers);
    let msg = if message.is_empty() {
        String::new()
    } else {
        format!(
            r#"<p class="flash error" role="alert">{}</p>"#,
            esc(message)
        )
    };
    let oidc = if state.config.oidc.is_some() {
        r#"<p><a class="button" href="/login/oidc">Sign in with Google</a></p>"#
    } else {
        ""
    };
    let body = format!(
        r#"<h1>Sign in</h1>{msg}
<form method="post" action="/login" class="login"><input type="hidden" name="csrf" value="{csrf}">
<label for="user">User name</label><input id="user" name="user" autocomplete="username" required autofocus>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form>{oidc}
<p class="hint">First time here? Accounts are made on the machine Krake runs on:
<code>krake user add ana --role owner --password-stdin</code>, then type a password of ten
characters or more. The terminal chat needs no account: <code>krake chat</code>.</p>"#,
        csrf = esc(&token),
    );
    let mut res = html(status, page("Sign in", None, &body));
    match crate::auth::login_token_cookie(state, &token) {
        Ok(c) => {
            res.headers_mut().append(header::SET_COOKIE, c);
            res
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /login`.
pub async fn login_page(State(state): State<WebState>, headers: HeaderMap) -> Response {
    login_response(StatusCode::OK, "", &state, Some(&headers))
}

/// The signed-in caller, or a redirect to the sign-in page.
pub(crate) async fn signed_in(state: &WebState, headers: &HeaderMap) -> Result<Caller, Response> {
    match caller(state, headers).await {
        Ok(Some(c)) => Ok(c),
        Ok(None) | Err(ApiError::Unauthenticated) => Err(Redirect::to("/login").into_response()),
        Err(e) => Err(e.into_response()),
    }
}

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

pub(crate) fn select(
    name: &str,
    label: &str,
    current: &str,
    options: &[(String, String)],
) -> String {
    let mut s = format!(r#"<label>{label} <select name="{name}">"#);
    for (value, text) in options {
        let sel = if value == current { " selected" } else { "" };
        let _ = write!(
            s,
            r#"<option value="{}"{sel}>{}</option>"#,
            esc(value),
            esc(text)
        );
    }
    s.push_str("</select></label>");
    s
}

async fn inbox(
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
        limit: Some(50),
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
    let mut body = String::new();
    // The overview heads the unfiltered home page only: a filtered or paged inbox is a search.
    if q.workspace.is_none() && q.kind.is_none() && q.status.is_none() && q.before.is_none() {
        match state.krake.overview(&who.actor).await {
            Ok(Some(o)) => body.push_str(&crate::kpi_cards::overview(&o, state.krake.now())),
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "reading the overview");
                body.push_str(
                    r#"<p class="flash error" role="alert">The overview could not be read; the inbox follows.</p>"#,
                );
            }
        }
    }
    body.push_str(if body.is_empty() {
        "<h1>Inbox</h1>"
    } else {
        r#"<h2 class="inbox">Inbox</h2>"#
    });
    let mut ws_opts = vec![(String::new(), "all workspaces".to_owned())];
    for w in state.krake.directory().workspaces() {
        if who.actor.can_see(&w.slug) {
            ws_opts.push((w.slug.to_string(), w.name.clone()));
        }
    }
    let mut kinds = vec![(String::new(), "all kinds".to_owned())];
    kinds.extend(
        krake_core::inbox::ThreadKind::ALL
            .iter()
            .map(|k| (k.to_string(), k.to_string())),
    );
    let mut statuses = vec![(String::new(), "all but archived".to_owned())];
    statuses.extend(
        krake_core::inbox::ThreadStatus::ALL
            .iter()
            .map(|k| (k.to_string(), k.to_string())),
    );
    let _ = write!(
        body,
        r#"<form method="get" action="/" class="filters">{}{}{}<button type="submit">Filter</button></form>"#,
        select(
            "workspace",
            "Workspace",
            q.workspace.as_deref().unwrap_or(""),
            &ws_opts
        ),
        select("kind", "Kind", q.kind.as_deref().unwrap_or(""), &kinds),
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
            return html(status, page("Inbox", Some(&who), &body));
        }
        Ok(threads) if threads.is_empty() => {
            body.push_str(r#"<p class="empty">Nothing here. All clear.</p><table id="inbox" class="threads"><tbody></tbody></table>"#);
        }
        Ok(threads) => {
            body.push_str(r#"<table id="inbox" class="threads"><thead><tr><th>#</th><th>Workspace</th><th>Kind</th><th>Status</th><th>Title</th></tr></thead><tbody>"#);
            for t in &threads {
                body.push_str(&row(t));
            }
            body.push_str("</tbody></table>");
            if threads.len() == 50
                && let Some(last) = threads.last()
            {
                let mut link = format!("/?before={}", last.id.0);
                for (k, v) in [
                    ("workspace", &q.workspace),
                    ("kind", &q.kind),
                    ("status", &q.status),
                ] {
                    if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                        let _ = write!(link, "&{k}={}", esc(v));
                    }
                }
                let _ = write!(body, r#"<p><a href="{link}">Older threads →</a></p>"#);
            }
        }
    }
    html(StatusCode::OK, page("Inbox", Some(&who), &body))
}

fn row(t: &Thread) -> String {
    format!(
        r#"<tr data-thread="{id}"><td><a href="/threads/{id}">#{id}</a></td><td>{ws}</td><td>{kind}</td><td class="status" data-status="{status}">{status}</td><td class="title">{title}</td></tr>"#,
        id = t.id.0,
        ws = esc(t.workspace.as_str()),
        kind = t.kind,
        status = t.status,
        title = esc(&t.title),
    )
}

async fn thread_page(
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
            page(
                "Not a thread",
                Some(&who),
                "<p>A thread id is a number.</p>",
            ),
        );
    };
    render_thread(&state, &who, ThreadId(id), StatusCode::OK, None).await
}

async fn render_thread(
    state: &WebState,
    who: &Caller,
    id: ThreadId,
    status: StatusCode,
    flash: Option<(&str, String)>,
) -> Response {
    let t = match state.krake.thread_for(&who.actor, id).await {
        Ok(t) => t,
        Err(e) => {
            let e = ApiError::from(e);
            let body = format!(
                r#"<p class="flash error" role="alert">{}</p><p><a href="/">Back to the inbox</a></p>"#,
                esc(&e.to_string())
            );
            return html(e.status(), page("Thread", Some(who), &body));
        }
    };
    let audit = state
        .krake
        .audit_for(&who.actor, id)
        .await
        .unwrap_or_default();
    let mut b = String::new();
    if let Some((class, msg)) = flash {
        let _ = write!(
            b,
            r#"<p class="flash {class}" role="alert">{}</p>"#,
            esc(&msg)
        );
    }
    let _ = write!(
        b,
        r#"<article data-thread="{id}"><h1>#{id} <span class="title">{title}</span></h1>
<p class="meta">{ws} · {kind} · <span class="status" data-status="{status}">{status}</span> · version {version}</p>"#,
        id = t.id.0,
        title = esc(&t.title),
        ws = esc(t.workspace.as_str()),
        kind = t.kind,
        status = t.status,
        version = t.version,
    );
    if let Some(agent) = &t.agent {
        let _ = write!(b, "<p>From {} ({})</p>", esc(agent), t.origin);
    }
    if !t.body.is_empty() {
        let _ = write!(b, r#"<pre class="body">{}</pre>"#, esc(&t.body));
    }
    if let Some(a) = &t.action {
        let _ = write!(
            b,
            "<p><strong>Proposed:</strong> {}</p>",
            esc(&a.describe())
        );
    }
    if t.is_decidable() {
        let _ = write!(b, "<p>Needs {}</p>", esc(&t.approvers.describe()));
    }
    if let Some(by) = &t.decided_by {
        let reason = t
            .reason
            .as_ref()
            .map(|r| format!(": {}", esc(r)))
            .unwrap_or_default();
        let _ = write!(b, "<p>Decided by {}{reason}</p>", esc(by.as_str()));
    }
    b.push_str("</article><h2>Replies</h2>");
    if t.replies.is_empty() {
        b.push_str("<p class=\"empty\">No replies yet.</p>");
    } else {
        b.push_str("<ul class=\"replies\">");
        for r in &t.replies {
            let _ = write!(
                b,
                "<li><strong>{}</strong> <small>({}, {})</small><br>{}</li>",
                esc(r.author.as_str()),
                r.front,
                esc(&r.at.to_utc_string()),
                esc(&r.text)
            );
        }
        b.push_str("</ul>");
    }
    let csrf = esc(who.csrf().unwrap_or_default());
    let hidden = format!(
        r#"<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="version" value="{}">"#,
        t.version
    );
    b.push_str(r#"<h2>Act</h2><div class="actions">"#);
    if t.is_decidable() {
        let _ = write!(
            b,
            r#"<form method="post" action="/threads/{id}" class="inline">{hidden}<input type="hidden" name="action" value="approve"><button type="submit" class="approve">Approve</button></form>
<form method="post" action="/threads/{id}" class="inline">{hidden}<input type="hidden" name="action" value="reject"><label for="reason">Reason</label> <input id="reason" name="text"> <button type="submit" class="reject">Reject</button></form>"#,
            id = t.id.0
        );
    }
    let arch = if t.status == krake_core::inbox::ThreadStatus::Archived {
        ("unarchive", "Unarchive")
    } else {
        ("archive", "Archive")
    };
    let _ = write!(
        b,
        r#"<form method="post" action="/threads/{id}" class="inline">{hidden}<input type="hidden" name="action" value="{}"><button type="submit">{}</button></form></div>
<form method="post" action="/threads/{id}" class="reply">{hidden}<input type="hidden" name="action" value="reply"><label for="reply-text">Reply</label><textarea id="reply-text" name="text" rows="3" required></textarea><button type="submit">Send reply</button></form>"#,
        arch.0,
        arch.1,
        id = t.id.0
    );
    b.push_str("<h2>Audit log</h2><table class=\"audit\"><thead><tr><th>When</th><th>Who</th><th>Front</th><th>What</th><th>Detail</th></tr></thead><tbody>");
    for a in &audit {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.at.to_utc_string()),
            esc(a.actor.as_str()),
            a.front,
            esc(&a.action),
            esc(&a.detail)
        );
    }
    b.push_str("</tbody></table>");
    html(status, page(&format!("#{}", t.id.0), Some(who), &b))
}

/// A form posted on a thread page.
#[derive(Debug, Deserialize)]
pub struct ActionForm {
    /// `approve`, `reject`, `reply`, `archive`, `unarchive`.
    pub action: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// The version shown (decisions on a changed thread are refused).
    pub version: Option<i64>,
    /// Reply text or rejection reason.
    #[serde(default)]
    pub text: String,
}

/// A dashboard form carrying the session's CSRF token.
pub(crate) trait WithCsrf {
    /// The token the form carried.
    fn csrf(&self) -> &str;
}

impl WithCsrf for ActionForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// What every dashboard form post starts with: the signed-in caller, the numeric id in the
/// path (`what` names it in the error), the form read within the body limit (413 beyond it)
/// and its CSRF token checked. Anything else is the response to give instead.
pub(crate) async fn form_post<F: WithCsrf>(
    state: &WebState,
    headers: &HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    form: Result<Form<F>, FormRejection>,
    what: &str,
) -> Result<(Caller, i64, F), Response> {
    let who = signed_in(state, headers).await?;
    let Ok(Path(id)) = id else {
        return Err(ApiError::BadRequest(format!("a {what} id is a number")).into_response());
    };
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(ApiError::PayloadTooLarge(state.config.max_body_bytes).into_response());
        }
        Err(e) => return Err(ApiError::BadRequest(e.body_text()).into_response()),
    };
    who.check_csrf(Some(form.csrf()))
        .map_err(IntoResponse::into_response)?;
    Ok((who, id, form))
}

async fn thread_action(
    State(state): State<WebState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Response {
    let (who, id, form) = match form_post(&state, &headers, id, form, "thread").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let id = ThreadId(id);
    let k = &state.krake;
    let a = &who.actor;
    let text = form.text.trim().to_owned();
    let result: Result<(Thread, String), ThreadError> = match form.action.as_str() {
        "approve" => k
            .decide_thread(a, id, Decision::Approve, form.version)
            .await
            .map(|d| (d.thread().clone(), "Approved.".to_owned())),
        "reject" => k
            .decide_thread(
                a,
                id,
                Decision::Reject {
                    reason: (!text.is_empty()).then_some(text),
                },
                form.version,
            )
            .await
            .map(|d| (d.thread().clone(), "Rejected.".to_owned())),
        "reply" => k
            .reply_to(a, id, &form.text)
            .await
            .map(|t| (t, "Replied.".to_owned())),
        "archive" => k
            .archive_thread(a, id, true)
            .await
            .map(|t| (t, "Archived.".to_owned())),
        "unarchive" => k
            .archive_thread(a, id, false)
            .await
            .map(|t| (t, "Unarchived.".to_owned())),
        other => Err(ThreadError::Invalid(format!(
            "`{other}` is not an action here"
        ))),
    };
    match result {
        Ok((t, _)) => {
            state.hub.publish(&t);
            Redirect::to(&format!("/threads/{}", id.0)).into_response()
        }
        Err(e) => {
            let e = ApiError::from(e);
            render_thread(&state, &who, id, e.status(), Some(("error", e.to_string()))).await
        }
    }
}

async fn workspaces(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let who = match signed_in(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let mut b = String::from(
        "<h1>Workspaces</h1><table><thead><tr><th>Name</th><th>Slug</th><th>Your role</th><th>Pages</th></tr></thead><tbody>",
    );
    for w in state.krake.directory().workspaces() {
        if who.actor.can_see(&w.slug) {
            let _ = write!(
                b,
                r#"<tr><td><a href="/?workspace={slug}">{name}</a></td><td>{slug}</td><td>{role}</td><td><a href="/workspaces/{slug}">KPIs</a> · <a href="/workspaces/{slug}/knowledge">Knowledge</a></td></tr>"#,
                slug = esc(w.slug.as_str()),
                name = esc(&w.name),
                role = who.actor.role_in(&w.slug)
            );
        }
    }
    b.push_str("</tbody></table>");
    html(StatusCode::OK, page("Workspaces", Some(&who), &b))
}

/// `GET /workspaces/{slug}`: the workspace's KPI panel, for its viewers and above.
async fn workspace_kpis(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Response {
    let who = match signed_in(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let fail = |e: ApiError| {
        let body = format!(
            r#"<p class="flash error" role="alert">{}</p><p><a href="/workspaces">Back to the workspaces</a></p>"#,
            esc(&e.to_string())
        );
        html(e.status(), page("Workspace", Some(&who), &body))
    };
    let Some(w) = WorkspaceSlug::parse(&slug)
        .ok()
        .and_then(|s| state.krake.directory().workspace(&s).cloned())
    else {
        return fail(ApiError::NotFound(format!(
            "there is no workspace `{slug}`; pick one from the workspaces page"
        )));
    };
    if !who.actor.can_see(&w.slug) {
        return fail(ApiError::Forbidden(format!(
            "{} is not a member of {}; ask one of its owners to add you",
            who.actor.user, w.slug
        )));
    }
    let mut b = format!(
        r#"<h1>{name} <small>{slug}</small></h1><p><a href="/?workspace={slug}">Its inbox</a> · <a href="/workspaces/{slug}/knowledge">Its knowledge</a></p>"#,
        name = esc(&w.name),
        slug = esc(w.slug.as_str()),
    );
    let board = match state.krake.kpi_board(&who.actor, &w.slug).await {
        Ok(board) => board,
        Err(e) => return fail(ApiError::from(e)),
    };
    if let Some(board) = &board {
        b.push_str(&crate::kpi_cards::board_cards(board, state.krake.now()));
    }
    match state.krake.kpis(&who.actor, &w.slug).await {
        Ok(Some(k)) => b.push_str(&kpi_panel(&k)),
        Ok(None) if board.is_some() => b.push_str(
            r#"<p class="empty">Commerce is not set up: connect a shop (see docs/commerce.md) to see orders and print orders here.</p>"#,
        ),
        Ok(None) => b.push_str(
            r#"<p class="empty">No figures here: commerce is not set up. Connect a shop (see docs/commerce.md) to see KPIs.</p>"#,
        ),
        Err(e) => return fail(ApiError::from(e)),
    }
    html(StatusCode::OK, page(&w.name, Some(&who), &b))
}

/// The KPI panel: today per currency, fulfilment states and late print orders, recent days.
fn kpi_panel(k: &Kpis) -> String {
    let mut b = String::from(r#"<section class="kpis" aria-label="Key figures">"#);
    match &k.today {
        None => b.push_str(r#"<p class="empty">No orders yet.</p>"#),
        Some(day) => {
            let _ = write!(b, "<h2>Today <small>({})</small></h2>", esc(day));
            if k.today_figures.is_empty() {
                b.push_str(r#"<p class="empty">No orders yet today.</p>"#);
            }
            for d in &k.today_figures {
                let cur = esc(&d.currency);
                let _ = write!(
                    b,
                    r#"<dl class="kpi-today" data-currency="{cur}"><div><dt>Revenue</dt><dd data-kpi="revenue">{rev} {cur}</dd></div><div><dt>Orders</dt><dd data-kpi="orders">{orders}</dd></div><div><dt>Average order</dt><dd data-kpi="aov">{aov} {cur}</dd></div><div><dt>Paid / pending</dt><dd data-kpi="paid">{paid} / {pending}</dd></div><div><dt>Refunds</dt><dd data-kpi="refunds">{refunds} {cur}</dd></div></dl>"#,
                    rev = d.revenue,
                    orders = d.orders,
                    aov = d.average_order_value(),
                    paid = d.paid,
                    pending = d.pending,
                    refunds = d.refunds,
                );
            }
        }
    }
    b.push_str("<h2>Print orders</h2>");
    if k.fulfilment.is_empty() {
        b.push_str(r#"<p class="empty">No print orders.</p>"#);
    } else {
        b.push_str("<table class=\"fulfilment\"><thead><tr><th>State</th><th>Orders</th></tr></thead><tbody>");
        for (state, n) in &k.fulfilment {
            let _ = write!(b, "<tr><td>{}</td><td>{n}</td></tr>", esc(state));
        }
        b.push_str("</tbody></table>");
    }
    let late_class = if k.late_orders > 0 { " error" } else { "" };
    let _ = write!(
        b,
        r#"<p class="flash{late_class}" data-kpi="late">Late print orders: {}</p>"#,
        k.late_orders
    );
    if !k.days.is_empty() {
        b.push_str("<h2>Recent days</h2><table class=\"days\"><thead><tr><th>Day</th><th>Orders</th><th>Revenue</th><th>Average</th><th>Paid</th><th>Pending</th><th>Refunds</th></tr></thead><tbody>");
        for d in &k.days {
            let cur = esc(&d.currency);
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{} {cur}</td><td>{} {cur}</td><td>{}</td><td>{}</td><td>{} {cur}</td></tr>",
                esc(&d.day),
                d.orders,
                d.revenue,
                d.average_order_value(),
                d.paid,
                d.pending,
                d.refunds,
            );
        }
        b.push_str("</tbody></table>");
    }
    b.push_str("</section>");
    b
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc(r#"<script>alert("1")</script> & 'x'"#),
            "&lt;script&gt;alert(&quot;1&quot;)&lt;/script&gt; &amp; &#39;x&#39;"
        );
    }
}
