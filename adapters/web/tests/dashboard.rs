//! The dashboard's thread page, inbox and 404 page through the router (no socket): every
//! action answered by a redirect to `?done=…` and the new state in words, quorum progress and
//! approving twice, Reject refused without a reason and confirmed before it happens, the
//! inbox's open counts, links and ages, the 404 page (JSON under /api), and the dead letters
//! page's answer after Send again or Discard.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{As, spawn, ws};
use krake_core::actor::Actor;
use krake_core::inbox::{Approvers, NewThread, ThreadKind, ThreadStatus};
use tower::ServiceExt;

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Posts a form with a session cookie: the status, where it redirects (if it does) and the
/// page.
async fn post(
    app: &common::App,
    path: &str,
    cookie: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, Option<String>, String) {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&");
    let req = Request::post(path)
        .header("cookie", format!("krake_session={cookie}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let to = res
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned());
    let bytes = axum::body::to_bytes(res.into_body(), 10 << 20)
        .await
        .unwrap();
    (status, to, String::from_utf8_lossy(&bytes).into_owned())
}

async fn page(app: &common::App, path: &str, cookie: &str) -> (StatusCode, String) {
    let (s, _, html) = app
        .send(Method::GET, path, As::Cookie(cookie, None), None)
        .await;
    (s, html)
}

#[tokio::test]
async fn reject_needs_a_reason_and_asks_before_it_happens() {
    let app = spawn().await;
    let t = app.thread("lunavo", ThreadKind::Approval, "ship it").await;
    let (bo, csrf) = app.sign_in("bo").await;
    let path = format!("/threads/{}", t.id.0);
    let version = t.version.to_string();

    // No reason: refused with why, the Reject box open again; nothing changed.
    let (s, _, html) = post(
        &app,
        &path,
        &bo,
        &[
            ("action", "reject"),
            ("csrf", &csrf),
            ("version", &version),
            ("text", "  "),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(html.contains("a rejection needs a reason"), "{html}");
    assert!(
        html.contains(r#"<details class="reject-step" open>"#),
        "{html}"
    );
    let now = app
        .state
        .krake
        .thread_for(&Actor::system(), t.id)
        .await
        .unwrap();
    assert_eq!(now.status, ThreadStatus::Open);

    // A reason: the confirmation page shows it back (escaped); still nothing changed.
    let reason = "<b>wrong</b> photo";
    let (s, _, html) = post(
        &app,
        &path,
        &bo,
        &[
            ("action", "reject"),
            ("csrf", &csrf),
            ("version", &version),
            ("text", reason),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(&format!("Reject #{}?", t.id.0)), "{html}");
    assert!(html.contains("&lt;b&gt;wrong&lt;/b&gt; photo"), "{html}");
    assert!(!html.contains("<b>wrong"), "{html}");
    assert!(html.contains(r#"name="confirm" value="yes""#), "{html}");
    let now = app
        .state
        .krake
        .thread_for(&Actor::system(), t.id)
        .await
        .unwrap();
    assert_eq!(now.status, ThreadStatus::Open);

    // Confirmed: rejected, and the page says so with the reason.
    let (s, to, _) = post(
        &app,
        &path,
        &bo,
        &[
            ("action", "reject"),
            ("csrf", &csrf),
            ("version", &version),
            ("text", reason),
            ("confirm", "yes"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let to = to.unwrap();
    assert_eq!(to, format!("{path}?done=rejected"));
    let (s, html) = page(&app, &to, &bo).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        html.contains(&format!(
            "You rejected #{}. Reason: &lt;b&gt;wrong&lt;/b&gt; photo",
            t.id.0
        )),
        "{html}"
    );
    assert!(html.contains(r#"data-status="rejected""#), "{html}");
}

#[tokio::test]
async fn a_quorum_shows_its_progress_and_a_second_approve_says_so() {
    let app = spawn().await;
    let mut new = NewThread::new(ws("lunavo"), ThreadKind::Approval, "hire Mara", "details");
    new.approvers = Approvers::Quorum { n: 2 };
    let t = app
        .state
        .krake
        .create_thread(&Actor::system(), &new)
        .await
        .unwrap();
    let path = format!("/threads/{}", t.id.0);
    let (ana, ana_csrf) = app.sign_in("ana").await;
    let (_, html) = page(&app, &path, &ana).await;
    assert!(html.contains("0 of 2 approvals"), "{html}");

    let approve = |csrf: String| vec![("action", "approve".to_owned()), ("csrf", csrf)];
    let fields = approve(ana_csrf.clone());
    let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (s, to, _) = post(&app, &path, &ana, &f).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let (_, html) = page(&app, &to.unwrap(), &ana).await;
    assert!(html.contains("counts: 1 of 2 (ana)"), "{html}");
    assert!(html.contains("1 of 2 approvals</strong>: ana"), "{html}");

    // ana again: nothing changes, and the page says why.
    let (_, to, _) = post(&app, &path, &ana, &f).await;
    let to = to.unwrap();
    assert!(to.ends_with("?done=already"), "{to}");
    let (_, html) = page(&app, &to, &ana).await;
    assert!(
        html.contains(&format!(
            "You already approved #{}; it needs one more approval from someone else.",
            t.id.0
        )),
        "{html}"
    );

    // bo's is the second: approved.
    let (bo, bo_csrf) = app.sign_in("bo").await;
    let fields = approve(bo_csrf);
    let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_, to, _) = post(&app, &path, &bo, &f).await;
    let (_, html) = page(&app, &to.unwrap(), &bo).await;
    assert!(
        html.contains(&format!(
            "You approved #{}: it is approved now (2 of 2: ana and bo).",
            t.id.0
        )),
        "{html}"
    );
}

#[tokio::test]
async fn the_inbox_counts_links_and_ages_its_threads() {
    let app = spawn().await;
    let t = app
        .thread("lunavo", ThreadKind::Question, "<i>sizes</i>?")
        .await;
    app.thread("monarch", ThreadKind::Question, "colours?")
        .await;
    let (bo, _) = app.sign_in("bo").await;
    let (s, html) = page(&app, "/", &bo).await;
    assert_eq!(s, StatusCode::OK);
    // bo sees lunavo only: one open thread, counted and linked.
    assert!(html.contains(r#"data-open="1""#), "{html}");
    assert!(
        html.contains(r#"href="/?status=open&amp;workspace=lunavo""#),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            r#"<td class="title"><a href="/threads/{}">&lt;i&gt;sizes&lt;/i&gt;?</a></td>"#,
            t.id.0
        )),
        "{html}"
    );
    assert!(html.contains("<time datetime="), "{html}");
    assert!(!html.contains("colours?"), "{html}");
    // The filters travel with the table, for rows that arrive live.
    let (_, html) = page(&app, "/?workspace=lunavo&kind=question", &bo).await;
    assert!(
        html.contains(r#"data-workspace="lunavo" data-kind="question" data-status="""#),
        "{html}"
    );
}

#[tokio::test]
async fn an_unknown_address_is_a_page_and_under_api_json() {
    let app = spawn().await;
    let (bo, _) = app.sign_in("bo").await;
    let (s, h, html) = app
        .send(
            Method::GET,
            "/no/such/%3Cpage%3E\"x",
            As::Cookie(&bo, None),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        h.get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/html"),
        "{h:?}"
    );
    assert!(html.contains("Page not found"), "{html}");
    assert!(html.contains(r#"<a href="/">the inbox</a>"#), "{html}");
    assert!(html.contains(r#"<a href="/runs">Runs</a>"#), "{html}");
    assert!(!html.contains("<page>"), "{html}");
    // Signed out: the page offers to sign in, with no navigation.
    let (s, _, html) = app.send(Method::GET, "/nowhere", As::Nobody, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(html.contains(r#"<a href="/login">Sign in</a>"#), "{html}");
    assert!(!html.contains("<nav"), "{html}");
    let (s, v) = app.get("/api/v1/nowhere", As::Cookie(&bo, None)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "not_found", "{v}");
}

#[tokio::test]
async fn a_dead_letter_action_is_answered_on_the_list() {
    let app = spawn().await;
    let (ana, _) = app.sign_in("ana").await;
    let (s, html) = page(&app, "/deadletters?done=discarded&id=3", &ana).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("Dead letter #3 is discarded."), "{html}");
    let (_, html) = page(&app, "/deadletters?done=retried&id=4", &ana).await;
    assert!(html.contains("Dead letter #4 is queued again"), "{html}");
    // An unknown outcome shows no message.
    let (_, html) = page(&app, "/deadletters?done=%3Cb%3E&id=4", &ana).await;
    assert!(!html.contains(r#"id="flash""#), "{html}");
}
