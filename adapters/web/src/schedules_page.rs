//! The dashboard's Schedules page (`/schedules`): every schedule of a workspace the signed-in
//! person sees (workspace, agent, task, cadence in words with its cron and time zone, next run,
//! last run with what it started, paused or active), and *Pause*/*Resume* forms for members.
//! Reading is core's [`schedules_for`](krake_core::Krake::schedules_for); pausing and resuming
//! go through core's accept path as the `/schedule pause|resume` chat commands do, so the rules
//! (member role in the schedule's workspace) and the audit trail are the chat's; a change that
//! worked is answered with a redirect to `/schedules?done=…`, which says what was done.

use crate::ApiError;
use crate::auth::Caller;
use crate::dashboard::{html, page, signed_in};
use crate::front::WebState;
use axum::Router;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use krake_core::chat::command::Command;
use krake_core::inbound::{Content, Inbound};
use krake_core::reply::Tone;
use krake_core::run::RunStatus;
use krake_core::schedule::{ScheduleCommand, ScheduleId, ScheduleStatus, local_time};
use krake_core::time::Timestamp;
use maud::{Markup, html};
use serde::Deserialize;

/// Schedules page routes.
pub fn router() -> Router<WebState> {
    Router::new()
        .route("/schedules", get(list))
        .route("/schedules/{id}", post(act))
}

/// A message above the page: its class (`ok`, `error`) and text.
type Flash = Option<(&'static str, String)>;

async fn render(state: &WebState, who: &Caller, flash: Flash, status: StatusCode) -> Response {
    let listed = match state.krake.schedules_for(&who.actor).await {
        Ok(Some(l)) => Ok(l),
        Ok(None) => Err(ApiError::NotFound(
            "schedules are not available here".into(),
        )),
        Err(e) => Err(ApiError::from(e)),
    };
    let now = state.krake.now();
    let csrf = who.csrf().unwrap_or_default();
    let (status, body) = match listed {
        Err(e) => (
            e.status(),
            html! {
                h1 { "Schedules" }
                p.flash.error role="alert" { (e.to_string()) }
            },
        ),
        Ok(list) => (
            status,
            html! {
                h1 { "Schedules" }
                @if let Some((class, text)) = &flash {
                    p #flash class=(format!("flash {class}")) role="alert" { (text) }
                }
                @if list.is_empty() {
                    div.empty #no-schedules {
                        p { "No schedules yet. Create one in the chat (the widget at the bottom right, Telegram, Discord or " code { "krake chat" } "):" }
                        pre { code { "/schedule dexter \"summarise last week's sales\" every monday 09:00 Europe/Berlin" } }
                        p { "or in words: " code { "every weekday at 8 ask Soshie to draft a post" } ". It then shows here with its next run." }
                    }
                } @else {
                    p.hint { "Recurring tasks Krake hands to an agent. Each run posts a thread in the inbox and starts the agent's run." }
                    div.scroll {
                        table.schedules #schedules {
                            thead {
                                tr {
                                    th scope="col" { "#" }
                                    th scope="col" { "Workspace" }
                                    th scope="col" { "Agent" }
                                    th scope="col" { "Task" }
                                    th scope="col" { "When" }
                                    th scope="col" { "Next run" }
                                    th scope="col" { "Last run" }
                                    th scope="col" { "State" }
                                }
                            }
                            tbody {
                                @for s in &list { (row(s, now, csrf)) }
                            }
                        }
                    }
                }
            },
        ),
    };
    html(status, page("Schedules", Some(who), &body.into_string()))
}

fn row(st: &ScheduleStatus, now: Timestamp, csrf: &str) -> Markup {
    let s = &st.schedule;
    let tz = s.cadence.timezone();
    let state = if s.paused { "paused" } else { "active" };
    html! {
        tr data-schedule=(s.id.0) data-state=(state) {
            td data-label="Schedule" { (s.id.0) }
            td data-label="Workspace" { (s.workspace.as_str()) }
            td data-label="Agent" { (s.assignment.agent) }
            td.title data-label="Task" {
                (s.task)
                @if let Some(name) = &s.name { br; small { "from the config file: " (name) } }
            }
            td data-label="When" {
                (s.description)
                br;
                small { code title="cron: second minute hour day month weekday" { (s.cadence.expression()) } " " (tz.name()) }
            }
            td.next data-label="Next run" {
                @match (s.paused, s.next_run_at) {
                    (true, _) => span.muted { "paused" },
                    (false, Some(n)) => time datetime=(n.to_utc_string()) { (local_time(n, tz)) },
                    (false, None) => span.muted { "never again" },
                }
            }
            td.last data-label="Last run" {
                @match &st.last {
                    None => span.muted { "not yet" },
                    Some(l) => {
                        time datetime=(l.ran_at.to_utc_string()) title=(local_time(l.ran_at, tz)) {
                            (krake_core::kpi::age(now, l.ran_at)) " ago"
                        }
                        @if l.trigger != krake_core::schedule::RunTrigger::Due {
                            " " small { "(" (l.trigger.as_str()) ")" }
                        }
                        br;
                        @if let Some(r) = &st.run {
                            a href=(format!("/runs/{}", r.id.0)) { "run " (r.id.0) }
                            ": " span.status data-status=(r.status.as_str()) { (outcome(r.status)) }
                        } @else if let Some(t) = l.thread {
                            a href=(format!("/threads/{}", t.0)) { "#" (t.0) } " in the inbox"
                        }
                    }
                }
            }
            td.state data-label="State" {
                span.badge.paused[s.paused] { (if s.paused { "Paused" } else { "Active" }) }
                @if st.may_change {
                    " "
                    form.inline method="post" action=(format!("/schedules/{}", s.id.0)) {
                        input type="hidden" name="csrf" value=(csrf);
                        @if s.paused {
                            button.approve type="submit" name="action" value="resume" aria-label=(format!("Resume schedule {}", s.id.0)) { "Resume" }
                        } @else {
                            button type="submit" name="action" value="pause" aria-label=(format!("Pause schedule {}", s.id.0)) { "Pause" }
                        }
                    }
                }
            }
        }
    }
}

/// A run's status in words (`awaiting_approval` → `awaiting approval`).
fn outcome(s: RunStatus) -> String {
    s.as_str().replace('_', " ")
}

/// `?done=paused|resumed&n=ID`: what the last action did (post/redirect/get).
#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    /// `paused` or `resumed`.
    pub done: Option<String>,
    /// The schedule.
    pub n: Option<i64>,
}

async fn list(
    State(state): State<WebState>,
    headers: HeaderMap,
    q: Result<Query<DoneQuery>, QueryRejection>,
) -> Response {
    let q = q.map(|Query(q)| q).unwrap_or_default();
    // Words of our own, never text from the address.
    let flash = match (q.done.as_deref(), q.n) {
        (Some("pause"), Some(n)) => Some((
            "ok",
            format!("Paused schedule {n}: it runs no more until resumed."),
        )),
        (Some("resume"), Some(n)) => Some((
            "ok",
            format!("Resumed schedule {n}; its next run is in the list."),
        )),
        _ => None,
    };
    match signed_in(&state, &headers).await {
        Ok(who) => render(&state, &who, flash, StatusCode::OK).await,
        Err(r) => r,
    }
}

/// The Pause / Resume form.
#[derive(Debug, Deserialize)]
pub struct ScheduleForm {
    /// The session's CSRF token.
    pub csrf: String,
    /// `pause` or `resume`.
    pub action: String,
}

impl crate::dashboard::WithCsrf for ScheduleForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

async fn act(
    State(state): State<WebState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    form: Result<Form<ScheduleForm>, FormRejection>,
) -> Response {
    let (who, id, form) =
        match crate::dashboard::form_post(&state, &headers, id, form, "schedule").await {
            Ok(p) => p,
            Err(r) => return r,
        };
    let cmd = match form.action.as_str() {
        "pause" => ScheduleCommand::Pause(ScheduleId(id)),
        "resume" => ScheduleCommand::Resume(ScheduleId(id)),
        other => {
            return ApiError::BadRequest(format!(
                "`{other}` is not an action here; use pause or resume"
            ))
            .into_response();
        }
    };
    let key = match crate::api::knowledge::key_of(&headers, &who.actor, "schedule") {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let reply = state
        .krake
        .accept(Inbound {
            source: who.actor.front,
            key,
            actor: who.actor.clone(),
            conversation: "web:schedules".into(),
            reply_to: None,
            answer_to: None,
            content: Content::Command(Command::Schedule(cmd)),
        })
        .await
        .reply;
    if reply.tone == Tone::Success {
        return Redirect::to(&format!("/schedules?done={}&n={id}", form.action)).into_response();
    }
    let (class, status) = match reply.tone {
        Tone::Info | Tone::Success => ("ok", StatusCode::OK),
        // Core's refusals: an unknown (or unseen) schedule, or a role that may not change it.
        Tone::Warning if reply.text.starts_with("There is no schedule") => {
            ("error", StatusCode::NOT_FOUND)
        }
        Tone::Warning => ("error", StatusCode::FORBIDDEN),
        Tone::Error => ("error", StatusCode::INTERNAL_SERVER_ERROR),
    };
    render(&state, &who, Some((class, reply.text)), status).await
}
