//! The dashboard: server-rendered HTML pages (sign-in, the home page with the overview and
//! the inbox with filters, counts and ages in [`inbox`], a thread with its replies, audit log,
//! quorum progress and actions in [`thread`], workspaces with each one's KPI cards from
//! `kpi_cards` and commerce panel, agents, runs in `runs_page`, each workspace's knowledge in
//! `knowledge_page`), and the page for an address that leads nowhere ([`not_found_fallback`]).
//! Plain forms and links, so it works with the keyboard and without scripts; the embedded
//! scripts add live updates. Every action answers back: a form post redirects to the page with
//! `?done=…`, which shows what happened and the state now (post/redirect/get).
//!
//! Pages are [maud](https://maud.lambda.xyz/) templates: checked when compiled, and every text
//! inserted is escaped unless it is wrapped in `PreEscaped` (only for markup made here). Pages
//! also forbid inline scripts (Content-Security-Policy), so a title like `<script>…` only ever
//! shows as text. [`page`] and [`esc`] remain for page modules that still build strings.

mod inbox;
mod thread;

use crate::ApiError;
use crate::auth::{Caller, caller};
use crate::front::WebState;
use axum::Router;
use axum::extract::rejection::{FormRejection, PathRejection};
use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use krake_core::commerce::Kpis;
use krake_core::time::Timestamp;
use krake_core::workspace::WorkspaceSlug;
use maud::{DOCTYPE, Markup, PreEscaped, html as markup};
use std::fmt::Write as _;

pub use inbox::InboxQuery;
pub use thread::{ActionForm, DoneQuery};

/// Dashboard routes, and the fallback for every address no route takes
/// ([`not_found_fallback`]; merged routers keep it, so no other may set one).
pub fn router() -> Router<WebState> {
    Router::new()
        .fallback(not_found_fallback)
        .route("/", get(inbox::inbox))
        .route(
            "/threads/{id}",
            get(thread::thread_page).post(thread::thread_action),
        )
        .route("/workspaces", get(workspaces))
        .route("/workspaces/{slug}", get(workspace_kpis))
        .merge(crate::runs_page::router())
        .merge(crate::dead_letters_page::router())
        .merge(crate::knowledge_page::router())
        .merge(crate::folders_page::router())
        .merge(crate::schedules_page::router())
        .merge(crate::costs_page::router())
}

/// Escapes text for HTML element content and quoted attributes, for page modules that still
/// build strings; templates escape by themselves.
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

/// A page around `body`, markup made by the caller (every text in it escaped already).
pub(crate) fn page(title: &str, who: Option<&Caller>, body: &str) -> String {
    layout_in(title, who, "", PreEscaped(body.to_owned()))
}

/// A page around a template's `body`.
pub(crate) fn layout(title: &str, who: Option<&Caller>, body: Markup) -> String {
    layout_in(title, who, "", body)
}

/// The pages in the navigation: address, name.
const NAV: [(&str, &str); 8] = [
    ("/", "Inbox"),
    ("/workspaces", "Workspaces"),
    ("/agents", "Agents"),
    ("/runs", "Runs"),
    ("/schedules", "Schedules"),
    ("/costs", "Costs"),
    ("/folders", "Folders"),
    ("/deadletters", "Dead letters"),
];

/// The navigation links and the sign-out form.
fn nav_links(c: &Caller) -> Markup {
    markup! {
        @for (href, name) in NAV {
            a href=(href) accesskey=[(href == "/").then_some("i")] { (name) }
        }
        span class="who" { (c.actor.user.as_str()) }
        form method="post" action="/logout" class="inline" {
            input type="hidden" name="csrf" value=(c.csrf().unwrap_or_default());
            button type="submit" { "Sign out" }
        }
    }
}

/// A page whose chat widget works in `workspace` (its attach button adds files there). On a
/// wide screen the navigation is one row; on a phone it folds into a Menu button (a
/// `<details>`, so it opens without scripts).
pub(crate) fn layout_in(
    title: &str,
    who: Option<&Caller>,
    workspace: &str,
    body: Markup,
) -> String {
    markup! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Krake" }
                link rel="stylesheet" href="/assets/style.css";
                @if who.is_some() {
                    script src="/assets/dashboard.js" defer {}
                    script src="/widget.js" data-workspace=(workspace) defer {}
                }
            }
            body {
                header {
                    a class="brand" href="/" { "Krake" }
                    @if let Some(c) = who {
                        nav class="wide" aria-label="Pages" { (nav_links(c)) }
                        details class="menu" {
                            summary { "Menu" }
                            nav aria-label="Pages" { (nav_links(c)) }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
    .into_string()
}

/// A message above a page: `class` is `ok`, `warn` or `error` (errors are announced at once).
pub(crate) fn flash(class: &str, text: &str) -> Markup {
    let role = if class == "error" { "alert" } else { "status" };
    markup! { p class={ "flash " (class) } role=(role) id="flash" { (text) } }
}

/// An instant for people: its age (`3 h ago`) in a `<time>` whose title is the full time.
pub(crate) fn ago(now: Timestamp, at: Timestamp) -> Markup {
    let full = at.to_utc_string();
    let iso = full
        .trim_end_matches(" UTC")
        .replacen(' ', "T", 1)
        .to_string()
        + "Z";
    let under_a_minute = now.as_millis() - at.as_millis() < 60_000;
    markup! {
        time datetime=(iso) title=(full) {
            @if under_a_minute { "just now" } @else { (krake_core::kpi::age(now, at)) " ago" }
        }
    }
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
    let body = markup! {
        h1 { "Sign in" }
        @if !message.is_empty() { (flash("error", message)) }
        form method="post" action="/login" class="login" {
            input type="hidden" name="csrf" value=(token);
            label for="user" { "User name" }
            input id="user" name="user" autocomplete="username" required autofocus;
            label for="password" { "Password" }
            input id="password" name="password" type="password" autocomplete="current-password" required;
            button type="submit" { "Sign in" }
        }
        @if state.config.oidc.is_some() {
            p { a class="button" href="/login/oidc" { "Sign in with Google" } }
        }
        p class="hint" {
            "First time here? Accounts are made on the machine Krake runs on: "
            code { "krake user add ana --role owner --password-stdin" }
            ", then type a password of ten characters or more. The terminal chat needs no account: "
            code { "krake chat" } "."
        }
    };
    let mut res = html(status, layout("Sign in", None, body));
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

/// The router's fallback: an address that leads nowhere. Under `/api/` the JSON error every
/// API answer has; elsewhere a page saying so, with the navigation for a signed-in person and
/// a way back (status 404 either way).
pub async fn not_found_fallback(
    State(state): State<WebState>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let path = uri.path();
    if path == "/api" || path.starts_with("/api/") {
        return ApiError::NotFound(format!(
            "there is nothing at {path}; the API's routes are listed in /api/v1/openapi.json"
        ))
        .into_response();
    }
    let who = caller(&state, &headers).await.ok().flatten();
    let body = markup! {
        section class="not-found" {
            h1 { "Page not found" }
            p { "There is no page at " code { (path) } "." }
            @if who.is_some() {
                p { "Check the address, or start again from " a href="/" { "the inbox" } "." }
            } @else {
                p { a href="/login" { "Sign in" } " to see the inbox." }
            }
        }
    };
    html(
        StatusCode::NOT_FOUND,
        layout("Not found", who.as_ref(), body),
    )
}

/// A labelled `<select>`, the option whose value is `current` selected.
pub(crate) fn choose(
    name: &str,
    label: &str,
    current: &str,
    options: &[(String, String)],
) -> Markup {
    markup! {
        label {
            (label) " "
            select name=(name) {
                @for (value, text) in options {
                    option value=(value) selected[value == current] { (text) }
                }
            }
        }
    }
}

/// [`choose`] as a string, for page modules that still build strings.
pub fn select(name: &str, label: &str, current: &str, options: &[(String, String)]) -> String {
    choose(name, label, current, options).into_string()
}

/// The query string of a list page's filters (empty ones left out), `&`-joined after `start`.
pub(crate) fn filter_link(start: &str, filters: &[(&str, &Option<String>)]) -> String {
    let mut link = start.to_owned();
    for (k, v) in filters {
        if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
            link.push('&');
            link.push_str(k);
            link.push('=');
            link.push_str(&url_part(v));
        }
    }
    link
}

/// Percent-encodes a query or path part.
pub(crate) fn url_part(s: &str) -> String {
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

/// A dashboard form carrying the session's CSRF token.
pub(crate) trait WithCsrf {
    /// The token the form carried.
    fn csrf(&self) -> &str;
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

async fn workspaces(State(state): State<WebState>, headers: HeaderMap) -> Response {
    let who = match signed_in(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body = markup! {
        h1 { "Workspaces" }
        table class="workspaces" {
            thead { tr { th { "Name" } th { "Slug" } th { "Your role" } th { "Pages" } } }
            tbody {
                @for w in state.krake.directory().workspaces() {
                    @if who.actor.can_see(&w.slug) {
                        @let slug = w.slug.as_str();
                        tr {
                            td class="title" { a href={ "/?workspace=" (slug) } { (w.name) } }
                            td { (slug) }
                            td { (who.actor.role_in(&w.slug)) }
                            td {
                                a href={ "/workspaces/" (slug) } { "KPIs" } " · "
                                a href={ "/workspaces/" (slug) "/knowledge" } { "Knowledge" }
                            }
                        }
                    }
                }
            }
        }
    };
    html(StatusCode::OK, layout("Workspaces", Some(&who), body))
}

/// A page saying why something failed, with a link back to `back` (address, words).
pub(crate) fn failed_page(who: &Caller, title: &str, e: &ApiError, back: (&str, &str)) -> Response {
    let body = markup! {
        (flash("error", &e.to_string()))
        p { a href=(back.0) { (back.1) } }
    };
    html(e.status(), layout(title, Some(who), body))
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
        failed_page(
            &who,
            "Workspace",
            &e,
            ("/workspaces", "Back to the workspaces"),
        )
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
    let board = match state.krake.kpi_board(&who.actor, &w.slug).await {
        Ok(board) => board,
        Err(e) => return fail(ApiError::from(e)),
    };
    let kpis = match state.krake.kpis(&who.actor, &w.slug).await {
        Ok(k) => k,
        Err(e) => return fail(ApiError::from(e)),
    };
    let slug = w.slug.as_str();
    let body = markup! {
        h1 { (w.name) " " small { (slug) } }
        p {
            a href={ "/?workspace=" (slug) } { "Its inbox" } " · "
            a href={ "/workspaces/" (slug) "/knowledge" } { "Its knowledge" }
        }
        @if let Some(board) = &board { (crate::kpi_cards::board_cards(board, state.krake.now())) }
        @match (&kpis, &board) {
            (Some(k), _) => (kpi_panel(k)),
            (None, Some(_)) => p class="empty" { "Commerce is not set up: connect a shop (see docs/commerce.md) to see orders and print orders here." },
            (None, None) => p class="empty" { "No figures here: commerce is not set up. Connect a shop (see docs/commerce.md) to see KPIs." },
        }
    };
    html(StatusCode::OK, layout(&w.name, Some(&who), body))
}

/// The KPI panel: today per currency, fulfilment states and late print orders, recent days.
fn kpi_panel(k: &Kpis) -> Markup {
    markup! {
        section class="kpis" aria-label="Key figures" {
            @match &k.today {
                None => p class="empty" { "No orders yet." },
                Some(day) => {
                    h2 { "Today " small { "(" (day) ")" } }
                    @if k.today_figures.is_empty() { p class="empty" { "No orders yet today." } }
                    @for d in &k.today_figures {
                        @let cur = &d.currency;
                        dl class="kpi-today" data-currency=(cur) {
                            div { dt { "Revenue" } dd data-kpi="revenue" { (d.revenue) " " (cur) } }
                            div { dt { "Orders" } dd data-kpi="orders" { (d.orders) } }
                            div { dt { "Average order" } dd data-kpi="aov" { (d.average_order_value()) " " (cur) } }
                            div { dt { "Paid / pending" } dd data-kpi="paid" { (d.paid) " / " (d.pending) } }
                            div { dt { "Refunds" } dd data-kpi="refunds" { (d.refunds) " " (cur) } }
                        }
                    }
                }
            }
            h2 { "Print orders" }
            @if k.fulfilment.is_empty() {
                p class="empty" { "No print orders." }
            } @else {
                table class="fulfilment" {
                    thead { tr { th { "State" } th { "Orders" } } }
                    tbody { @for (state, n) in &k.fulfilment { tr { td { (state) } td { (n) } } } }
                }
            }
            p class={ "flash" @if k.late_orders > 0 { " error" } } data-kpi="late" {
                "Late print orders: " (k.late_orders)
            }
            @if !k.days.is_empty() {
                h2 { "Recent days" }
                table class="days" {
                    thead { tr { th { "Day" } th { "Orders" } th { "Revenue" } th { "Average" } th { "Paid" } th { "Pending" } th { "Refunds" } } }
                    tbody {
                        @for d in &k.days {
                            @let cur = &d.currency;
                            tr {
                                td { (d.day) } td { (d.orders) } td { (d.revenue) " " (cur) }
                                td { (d.average_order_value()) " " (cur) } td { (d.paid) }
                                td { (d.pending) } td { (d.refunds) " " (cur) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ago, esc, url_part};
    use krake_core::time::Timestamp;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc(r#"<script>alert("1")</script> & 'x'"#),
            "&lt;script&gt;alert(&quot;1&quot;)&lt;/script&gt; &amp; &#39;x&#39;"
        );
    }

    #[test]
    fn an_age_carries_its_full_time() {
        let at = Timestamp::from_millis(1_765_000_000_000);
        let now = Timestamp::from_millis(1_765_000_000_000 + 3 * 3_600_000 + 60_000);
        let html = ago(now, at).into_string();
        assert!(html.contains(">3 h ago</time>"), "{html}");
        assert!(ago(at, at).into_string().contains(">just now</time>"));
        assert!(html.contains(r#"datetime="2025-12-06T05:46Z""#), "{html}");
        assert!(html.contains(r#"title="2025-12-06 05:46 UTC""#), "{html}");
    }

    #[test]
    fn query_parts_are_encoded() {
        assert_eq!(url_part("a b&c=d"), "a%20b%26c%3Dd");
    }
}
