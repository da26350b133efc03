//! The dashboard's Folders, Schedules and Costs pages through the router (no socket): a
//! folder's entries added, edited, deleted and imported from CSV by a member with a message
//! after each, a viewer shown no forms and refused, and the Costs page's month and empty state.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use common::{As, spawn};
use krake_core::actor::{Actor, Front, Role, UserName};
use krake_core::reply::Tone;
use tower::ServiceExt;

/// Posts a form (`application/x-www-form-urlencoded`) with a session cookie.
async fn post_form(
    app: &common::App,
    path: &str,
    cookie: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
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
    read(app, req).await
}

/// Posts a CSV file as a multipart form with its CSRF field.
async fn post_csv(
    app: &common::App,
    path: &str,
    cookie: &str,
    csrf: &str,
    csv: &str,
) -> (StatusCode, String) {
    let b = "XkrakeBoundary42";
    let body = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"posts.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n--{b}--\r\n"
    );
    let req = Request::post(path)
        .header("cookie", format!("krake_session={cookie}"))
        .header("content-type", format!("multipart/form-data; boundary={b}"))
        .body(Body::from(body))
        .unwrap();
    read(app, req).await
}

/// The response to `req`; a redirect (a change that worked) is followed with the cookie.
async fn read(app: &common::App, req: Request<Body>) -> (StatusCode, String) {
    let cookie = req.headers().get("cookie").cloned();
    let res = app.router.clone().oneshot(req).await.unwrap();
    if res.status() == StatusCode::SEE_OTHER {
        let to = res.headers().get("location").unwrap().to_str().unwrap();
        assert!(to.contains("?done="), "{to}");
        let mut next = Request::get(to);
        if let Some(c) = cookie {
            next = next.header("cookie", c);
        }
        return Box::pin(read(app, next.body(Body::empty()).unwrap())).await;
    }
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 10 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

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

async fn page(app: &common::App, path: &str, cookie: &str) -> (StatusCode, String) {
    let (s, _, html) = app
        .send(Method::GET, path, As::Cookie(cookie, None), None)
        .await;
    (s, html)
}

async fn calendar(app: &common::App) {
    let ana = ana();
    for cmd in [
        "/folder create soshie calendar",
        "/folder addcol soshie calendar title text",
        "/folder addcol soshie calendar status status draft,posted",
        "/folder addcol soshie calendar reach number",
        "/folder addcol soshie calendar day date",
    ] {
        let r = app.state.krake.handle_text(&ana, cmd).await;
        assert_eq!(r.tone, Tone::Success, "{cmd}: {}", r.text);
    }
}

#[tokio::test]
async fn a_member_adds_edits_deletes_and_imports_folder_entries_with_a_message_each_time() {
    let app = spawn().await;
    calendar(&app).await;
    let (cookie, csrf) = app.sign_in("bo").await;
    let url = "/folders/soshie/calendar";
    let (s, html) = page(&app, url, &cookie).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("No entries yet."), "{html}");
    // One field per column, typed by its kind.
    assert!(
        html.contains(r#"name="col.reach" type="text" inputmode="decimal""#),
        "{html}"
    );
    assert!(html.contains(r#"name="col.day" type="date""#), "{html}");
    assert!(
        html.contains(r#"<option value="posted">posted</option>"#),
        "{html}"
    );
    assert!(html.contains(r#"enctype="multipart/form-data""#), "{html}");

    // Add, with the title escaped on the page.
    let (s, html) = post_form(
        &app,
        &format!("{url}/entries"),
        &cookie,
        &[
            ("csrf", &csrf),
            ("col.title", "<b>Hoodie</b> launch"),
            ("col.status", "draft"),
            ("col.reach", "1_200"),
            ("col.day", "2026-12-24"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("Added entry #1."), "{html}");
    assert!(html.contains("&lt;b&gt;Hoodie&lt;/b&gt; launch"), "{html}");
    assert!(!html.contains("<b>Hoodie</b>"), "{html}");

    // A bad value adds nothing, says why and keeps what was typed.
    let (s, html) = post_form(
        &app,
        &format!("{url}/entries"),
        &cookie,
        &[
            ("csrf", &csrf),
            ("col.title", "Scarf"),
            ("col.reach", "lots"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("<code>lots</code> is not a number"), "{html}");
    assert!(
        html.contains(r#"value="Scarf""#),
        "the form keeps what was typed"
    );
    let (_, f) = app
        .state
        .krake
        .folder_for(&ana(), "soshie", "calendar")
        .await
        .unwrap();
    assert_eq!(f.len(), 1);

    // Edit: the form opens with the entry's values, saving says so.
    let (_, html) = page(&app, &format!("{url}?edit=1"), &cookie).await;
    assert!(html.contains("Edit entry #1"), "{html}");
    assert!(html.contains(r#"value="2026-12-24""#), "{html}");
    let (s, html) = post_form(
        &app,
        &format!("{url}/entries/1"),
        &cookie,
        &[
            ("csrf", &csrf),
            ("action", "save"),
            ("col.title", "Hoodie launch"),
            ("col.status", "posted"),
        ],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("Saved entry #1."), "{html}");
    assert!(html.contains(r#"data-column="status">posted<"#), "{html}");

    // Delete asks first (a page of its own, no script needed), then deletes.
    let (_, html) = page(&app, &format!("{url}?delete=1"), &cookie).await;
    assert!(html.contains("Delete entry #1?"), "{html}");
    assert!(html.contains(r#"value="delete""#), "{html}");
    let (s, html) = post_form(
        &app,
        &format!("{url}/entries/1"),
        &cookie,
        &[("csrf", &csrf), ("action", "delete")],
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("Deleted entry #1."), "{html}");
    assert!(!html.contains(r#"data-entry="1""#), "{html}");

    // A CSV with two bad rows: the good rows are added, each bad one listed with its line.
    let csv = "title,status,reach\nScarf,draft,3\nBeanie,maybe,2\nSocks,posted,many\nMittens,,\n";
    let (s, html) = post_csv(&app, &format!("{url}/import"), &cookie, &csrf, csv).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(
        html.contains("Added 2 entries from posts.csv; 2 rows were left out"),
        "{html}"
    );
    assert!(
        html.contains(r#"data-line="3""#)
            && html.contains("<code>maybe</code> is not one of draft, posted"),
        "{html}"
    );
    assert!(
        html.contains(r#"data-line="4""#) && html.contains("<code>many</code> is not a number"),
        "{html}"
    );
    assert!(
        html.contains(">Scarf<") && html.contains(">Mittens<"),
        "{html}"
    );
    assert!(!html.contains(">Beanie<"), "{html}");
    // A CSV without a bad row says how many were added.
    let (s, html) = post_csv(
        &app,
        &format!("{url}/import"),
        &cookie,
        &csrf,
        "title\nGloves\n",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("Added 1 entry from the CSV file."), "{html}");
    // Nothing but bad rows: 400, nothing added.
    let (s, html) = post_csv(
        &app,
        &format!("{url}/import"),
        &cookie,
        &csrf,
        "title,colour\nx,red\n",
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("Added 0 entries"), "{html}");
    assert!(
        html.contains("<code>colour</code> is not a column of calendar"),
        "{html}"
    );

    // Without the CSRF token nothing changes.
    let (s, _) = post_form(
        &app,
        &format!("{url}/entries"),
        &cookie,
        &[("col.title", "Forged")],
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = post_csv(
        &app,
        &format!("{url}/import"),
        &cookie,
        "wrong",
        "title\nForged\n",
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, f) = app
        .state
        .krake
        .folder_for(&ana(), "soshie", "calendar")
        .await
        .unwrap();
    assert_eq!(f.len(), 3);
}

fn ana() -> Actor {
    Actor::new(UserName::parse("ana").unwrap(), Front::Cli, Role::Owner)
}

#[tokio::test]
async fn a_viewer_sees_no_folder_forms_and_is_refused() {
    let app = spawn().await;
    calendar(&app).await;
    let (cookie, csrf) = app.sign_in("vic").await;
    let url = "/folders/soshie/calendar";
    let (s, html) = page(&app, url, &cookie).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(r#"id="read-only""#), "{html}");
    assert!(!html.contains("/entries\""), "no add form: {html}");
    assert!(!html.contains("/import\""), "no import form: {html}");
    let (s, html) = post_form(
        &app,
        &format!("{url}/entries"),
        &cookie,
        &[("csrf", &csrf), ("col.title", "Sneaky")],
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{html}");
    assert!(html.contains("needs the member role"), "{html}");
    let (s, _) = post_csv(
        &app,
        &format!("{url}/import"),
        &cookie,
        &csrf,
        "title\nSneaky\n",
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, f) = app
        .state
        .krake
        .folder_for(&ana(), "soshie", "calendar")
        .await
        .unwrap();
    assert!(f.is_empty());
}

#[tokio::test]
async fn the_costs_page_shows_a_month_with_links_to_its_neighbours() {
    let app = spawn().await;
    let (cookie, _) = app.sign_in("bo").await;
    let (s, html) = page(&app, "/costs?month=2026-11", &cookie).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("November 2026"), "{html}");
    assert!(html.contains(r#"href="/costs?month=2026-10""#), "{html}");
    assert!(html.contains(r#"id="no-costs""#), "{html}");
    let (s, html) = page(&app, "/costs?month=2026-13", &cookie).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("is not a month"), "{html}");
    // bo sees lunavo only.
    let (s, _) = page(&app, "/costs?workspace=monarch", &cookie).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}
