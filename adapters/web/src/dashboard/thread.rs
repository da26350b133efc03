//! A thread's page: what it asks, its status, quorum progress (`1 of 2 approvals: ana`),
//! replies, the actions (Approve; Reject with a required reason and a confirmation step;
//! Archive or Unarchive; Reply) and the audit log.
//!
//! Every action posts a form and is answered with a redirect to the page with `?done=…`: the
//! page then says what happened in words and shows the state now, so a reload never posts
//! twice. A refused action shows the page again with why, at the refusal's status.

use super::{WithCsrf, ago, flash, form_post, html, layout, signed_in};
use crate::ApiError;
use crate::auth::Caller;
use crate::front::WebState;
use axum::extract::rejection::{FormRejection, PathRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use krake_core::inbox::{Decision, Thread, ThreadId, ThreadKind, ThreadStatus};
use krake_core::thread_api::{Decided, ThreadError};
use maud::{Markup, html as markup};
use serde::Deserialize;

/// The longest rejection reason taken (characters).
const MAX_REASON: usize = 2000;

/// `?done=`: what the last action did (`approved`, `counted`, `already`, `rejected`,
/// `replied`, `archived`, `unarchived`).
#[derive(Debug, Default, Deserialize)]
pub struct DoneQuery {
    /// The action's outcome.
    pub done: Option<String>,
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
    /// `yes` once a rejection was confirmed; without it a rejection asks first.
    #[serde(default)]
    pub confirm: String,
}

impl WithCsrf for ActionForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

pub(super) async fn thread_page(
    State(state): State<WebState>,
    headers: HeaderMap,
    id: Result<Path<i64>, PathRejection>,
    q: Result<Query<DoneQuery>, QueryRejection>,
) -> Response {
    let who = match signed_in(&state, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Ok(Path(id)) = id else {
        let body = markup! {
            (flash("error", "A thread id is a number, as in /threads/12."))
            p { a href="/" { "Back to the inbox" } }
        };
        return html(
            StatusCode::BAD_REQUEST,
            layout("Not a thread", Some(&who), body),
        );
    };
    let done = q.ok().and_then(|Query(q)| q.done);
    render(
        &state,
        &who,
        ThreadId(id),
        StatusCode::OK,
        Notice::Done(done),
    )
    .await
}

/// What heads the page.
enum Notice {
    /// The outcome of the action just done, from `?done=`.
    Done(Option<String>),
    /// Why an action was refused.
    Refused(String),
    /// A rejection without a reason: why, with the Reject box open again.
    NoReason(String),
}

/// Names joined for a sentence: `ana`, `ana and bo`, `ana, bo and cy`.
fn names(list: &[String]) -> String {
    match list {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// `one more approval`, `2 more approvals`.
fn more(missing: usize) -> String {
    match missing {
        1 => "one more approval".to_owned(),
        n => format!("{n} more approvals"),
    }
}

/// How many approvals are still missing on a thread.
fn missing(t: &Thread) -> usize {
    (t.approvers.needed() as usize).saturating_sub(t.approvals.len())
}

/// The words for `?done=…` on thread `t` as it is now: (class, text).
fn done_text(t: &Thread, who: &Caller, done: &str) -> Option<(&'static str, String)> {
    let id = t.id.0;
    let you = who.actor.user.as_str();
    let approvals: Vec<String> = t.approvals.iter().map(ToString::to_string).collect();
    let status = t.status;
    Some(match done {
        "approved" if status == ThreadStatus::Approved => (
            "ok",
            if approvals.len() > 1 {
                format!(
                    "You approved #{id}: it is approved now ({} of {}: {}).",
                    approvals.len(),
                    t.approvers.needed(),
                    names(&approvals)
                )
            } else {
                format!("You approved #{id}: it is approved now.")
            },
        ),
        "approved" | "counted" if status == ThreadStatus::Open => (
            "ok",
            format!(
                "Your approval of #{id} counts: {} of {} ({}). It needs {} before anything happens.",
                approvals.len(),
                t.approvers.needed(),
                names(&approvals),
                more(missing(t))
            ),
        ),
        "already" if status == ThreadStatus::Open => (
            "warn",
            format!(
                "You already approved #{id}; it needs {} from someone else.",
                more(missing(t))
            ),
        ),
        "rejected" if status == ThreadStatus::Rejected => (
            "ok",
            match &t.reason {
                Some(r) => format!("You rejected #{id}. Reason: {r}"),
                None => format!("You rejected #{id}."),
            },
        ),
        "replied" => (
            "ok",
            if status == ThreadStatus::Answered && t.kind == ThreadKind::Question {
                format!("Your reply is on #{id}; the question is answered now.")
            } else {
                format!("Your reply is on #{id}.")
            },
        ),
        "archived" if status == ThreadStatus::Archived => (
            "ok",
            format!("#{id} is archived: it left the inbox. Unarchive brings it back."),
        ),
        "unarchived" if status != ThreadStatus::Archived => {
            ("ok", format!("#{id} is back in the inbox ({status})."))
        }
        // The thread moved on since (another person acted): the page shows how it is now.
        "approved" | "counted" | "already" | "rejected" | "archived" | "unarchived" => (
            "warn",
            format!(
                "#{id} changed since: it is {status}{} now, {you}.",
                t.decided_by
                    .as_ref()
                    .map(|u| format!(" by {u}"))
                    .unwrap_or_default()
            ),
        ),
        _ => return None,
    })
}

async fn render(
    state: &WebState,
    who: &Caller,
    id: ThreadId,
    status: StatusCode,
    notice: Notice,
) -> Response {
    let t = match state.krake.thread_for(&who.actor, id).await {
        Ok(t) => t,
        Err(e) => {
            return super::failed_page(
                who,
                "Thread",
                &ApiError::from(e),
                ("/", "Back to the inbox"),
            );
        }
    };
    let audit = state
        .krake
        .audit_for(&who.actor, id)
        .await
        .unwrap_or_default();
    let note = match &notice {
        Notice::Done(Some(d)) => done_text(&t, who, d),
        Notice::Done(None) => None,
        Notice::Refused(why) | Notice::NoReason(why) => Some(("error", why.clone())),
    };
    let reject_open = matches!(notice, Notice::NoReason(_));
    let now = state.krake.now();
    let body = markup! {
        @if let Some((class, text)) = &note { (flash(class, text)) }
        (summary(&t, who, now))
        (actions(&t, who, reject_open))
        h2 { "Replies" }
        @if t.replies.is_empty() {
            p class="empty" { "No replies yet." }
        } @else {
            ul class="replies" {
                @for r in &t.replies {
                    li {
                        strong { (r.author.as_str()) } " "
                        small { "(" (r.front) ", " (ago(now, r.at)) ")" }
                        br;
                        (r.text)
                    }
                }
            }
        }
        form method="post" action={ "/threads/" (t.id.0) } class="reply" {
            (hidden(&t, who))
            input type="hidden" name="action" value="reply";
            label for="reply-text" { "Reply" }
            textarea id="reply-text" name="text" rows="3" required {}
            button type="submit" { "Send reply" }
        }
        h2 { "Audit log" }
        table class="audit" {
            thead { tr { th { "When" } th { "Who" } th { "Front" } th { "What" } th { "Detail" } } }
            tbody {
                @for a in &audit {
                    tr {
                        td class="when" { (ago(now, a.at)) }
                        td { (a.actor.as_str()) }
                        td { (a.front) }
                        td { (a.action) }
                        td { (a.detail) }
                    }
                }
            }
        }
    };
    html(status, layout(&format!("#{}", t.id.0), Some(who), body))
}

/// The thread itself: title, where it stands, what it proposes and who decides.
fn summary(t: &Thread, who: &Caller, now: krake_core::time::Timestamp) -> Markup {
    let needed = t.approvers.needed() as usize;
    let quorum = t.kind == ThreadKind::Approval && needed > 1;
    let approvals: Vec<String> = t.approvals.iter().map(ToString::to_string).collect();
    let you_approved = t.approvals.contains(&who.actor.user);
    markup! {
        article data-thread=(t.id.0) data-version=(t.version) {
            h1 { "#" (t.id.0) " " span class="title" { (t.title) } }
            p class="meta" {
                a href={ "/?workspace=" (t.workspace.as_str()) } { (t.workspace.as_str()) }
                " · " (t.kind) " · "
                span class="status" data-status=(t.status) { (t.status) }
                " · opened " (ago(now, t.created_at))
                " · version " (t.version)
            }
            @if let Some(agent) = &t.agent { p { "From " (agent) " (" (t.origin) ")" } }
            @if !t.body.is_empty() { pre class="body" { (t.body) } }
            @if let Some(a) = &t.action { p { strong { "Proposed:" } " " (a.describe()) } }
            @if quorum {
                p class="quorum" data-approvals=(approvals.len()) data-needed=(needed) {
                    strong { (approvals.len()) " of " (needed) " approvals" }
                    @if !approvals.is_empty() { ": " (names(&approvals)) }
                    @if t.status == ThreadStatus::Open {
                        @if you_approved {
                            " · you approved; it needs " (more(missing(t))) " from someone else"
                        } @else {
                            " · needs " (more(missing(t)))
                        }
                    }
                }
            } @else if t.is_decidable() {
                p { "Needs " (t.approvers.describe()) }
            }
            @if let Some(by) = &t.decided_by {
                p class="decided" {
                    "Decided by " (by.as_str())
                    @if let Some(r) = &t.reason { ": " (r) }
                }
            }
        }
    }
}

/// The hidden fields every thread form carries.
fn hidden(t: &Thread, who: &Caller) -> Markup {
    markup! {
        input type="hidden" name="csrf" value=(who.csrf().unwrap_or_default());
        input type="hidden" name="version" value=(t.version);
    }
}

/// Approve, Reject (a reason first; its box open when `reject_open`), Archive or Unarchive.
fn actions(t: &Thread, who: &Caller, reject_open: bool) -> Markup {
    let id = t.id.0;
    let action = format!("/threads/{id}");
    let (arch, arch_label) = if t.status == ThreadStatus::Archived {
        ("unarchive", "Unarchive")
    } else {
        ("archive", "Archive")
    };
    markup! {
        h2 { "Act" }
        div class="actions" {
            @if t.is_decidable() {
                form method="post" action=(action) class="inline approve" {
                    (hidden(t, who))
                    input type="hidden" name="action" value="approve";
                    button type="submit" class="approve" { "Approve" }
                }
                details class="reject-step" open[reject_open] {
                    summary class="reject" { "Reject…" }
                    form method="post" action=(action) class="reply reject" {
                        (hidden(t, who))
                        input type="hidden" name="action" value="reject";
                        label for="reason" { "Why reject it? Whoever proposed it is told." }
                        textarea id="reason" name="text" rows="2" required maxlength=(MAX_REASON) autofocus[reject_open] {}
                        button type="submit" class="reject" { "Continue" }
                    }
                }
            }
            form method="post" action=(action) class="inline" {
                (hidden(t, who))
                input type="hidden" name="action" value=(arch);
                button type="submit" class="archive" { (arch_label) }
            }
        }
    }
}

/// The confirmation step of a rejection: the reason shown back, Reject or go back.
fn confirm_reject(t: &Thread, who: &Caller, reason: &str) -> Response {
    let id = t.id.0;
    let body = markup! {
        section class="confirm" {
            h1 { "Reject #" (id) "?" }
            p { "Reject " strong { "#" (id) " " (t.title) } " with this reason:" }
            blockquote class="reason" { (reason) }
            form method="post" action={ "/threads/" (id) } class="reply" {
                (hidden(t, who))
                input type="hidden" name="action" value="reject";
                input type="hidden" name="confirm" value="yes";
                input type="hidden" name="text" value=(reason);
                button type="submit" class="reject" id="confirm-reject" { "Yes, reject #" (id) }
            }
            p { a href={ "/threads/" (id) } { "No, back to #" (id) } }
        }
    };
    html(
        StatusCode::OK,
        layout(&format!("Reject #{id}?"), Some(who), body),
    )
}

pub(super) async fn thread_action(
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
    let refuse =
        |status: StatusCode, why: String| render(&state, &who, id, status, Notice::Refused(why));
    let refuse_no_reason = |why: String| {
        render(
            &state,
            &who,
            id,
            StatusCode::BAD_REQUEST,
            Notice::NoReason(why),
        )
    };
    let result: Result<(Thread, &str), ThreadError> = match form.action.as_str() {
        "approve" => k
            .decide_thread(a, id, Decision::Approve, form.version)
            .await
            .map(|d| match d {
                Decided::Decided(t) => (t, "approved"),
                Decided::Counted { thread, .. } => (thread, "counted"),
                Decided::AlreadyCounted(t) => (t, "already"),
            }),
        "reject" if text.is_empty() => {
            return refuse_no_reason(
                format!(
                    "Not rejected: a rejection needs a reason. Say why below, so whoever proposed #{} knows what to change.",
                    id.0
                ),
            )
            .await;
        }
        "reject" if text.chars().count() > MAX_REASON => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("Not rejected: keep the reason under {MAX_REASON} characters."),
            )
            .await;
        }
        "reject" if form.confirm != "yes" => {
            return match k.thread_for(a, id).await {
                Ok(t) if t.is_decidable() => confirm_reject(&t, &who, &text),
                Ok(t) => {
                    refuse(
                        StatusCode::CONFLICT,
                        format!(
                            "#{} is already {}{}; there is nothing to reject.",
                            id.0,
                            t.status,
                            t.decided_by
                                .as_ref()
                                .map(|u| format!(" by {u}"))
                                .unwrap_or_default()
                        ),
                    )
                    .await
                }
                Err(e) => {
                    let e = ApiError::from(e);
                    refuse(e.status(), e.to_string()).await
                }
            };
        }
        "reject" => k
            .decide_thread(a, id, Decision::Reject { reason: Some(text) }, form.version)
            .await
            .map(|d| (d.thread().clone(), "rejected")),
        "reply" => k.reply_to(a, id, &form.text).await.map(|t| (t, "replied")),
        "archive" => k.archive_thread(a, id, true).await.map(|t| (t, "archived")),
        "unarchive" => k
            .archive_thread(a, id, false)
            .await
            .map(|t| (t, "unarchived")),
        other => Err(ThreadError::Invalid(format!(
            "`{other}` is not an action here"
        ))),
    };
    match result {
        Ok((t, done)) => {
            state.hub.publish(&t);
            Redirect::to(&format!("/threads/{}?done={done}", id.0)).into_response()
        }
        Err(e) => {
            let e = ApiError::from(e);
            refuse(e.status(), e.to_string()).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{more, names};

    #[test]
    fn names_read_as_a_sentence() {
        assert_eq!(names(&[]), "");
        assert_eq!(names(&["ana".into()]), "ana");
        assert_eq!(names(&["ana".into(), "bo".into()]), "ana and bo");
        assert_eq!(
            names(&["ana".into(), "bo".into(), "cy".into()]),
            "ana, bo and cy"
        );
        assert_eq!(more(1), "one more approval");
        assert_eq!(more(2), "2 more approvals");
    }
}
