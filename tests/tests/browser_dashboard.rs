//! The dashboard answering back, in a real browser: headless Chromium driven over WebDriver
//! against the real `krake serve`. A thread made elsewhere (the terminal chat, another
//! process) appears on the open inbox without a reload, only where the filters let it; a
//! quorum approval shows "1 of 2", a second Approve by the same person says so, a second
//! person's approves it; Reject is refused without a reason, then asks for confirmation; an
//! unknown address is a 404 page with the navigation (JSON under /api); on a phone the
//! navigation folds into a Menu and the chat button leaves the last rows visible.
//!
//! Needs the Debian packages `chromium` and `chromium-driver`; fails, never skips, without
//! them. `KRAKE_SCREENSHOTS=DIR` saves the screenshots (desktop 1200×900, phone 390×844).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use fantoccini::{Client, Locator};
use krake_tests::browser::*;
use krake_tests::{chat, krake};
use serde_json::{Value, json};
use std::path::Path;

const PHONE: (u32, u32) = (390, 844);
const DESKTOP: (u32, u32) = (1200, 900);

/// Signs in as `user` (made with [`PASSWORD`]) and waits for the inbox.
async fn sign_in_as(c: &Client, base: &str, user: &str) {
    c.goto(&format!("{base}/login")).await.unwrap();
    until(c, "the sign-in page", "document.querySelector('#user')").await;
    for (id, text) in [("user", user), ("password", PASSWORD)] {
        c.find(Locator::Id(id))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }
    click(c, "form.login button").await;
    until(c, "the inbox", "location.pathname === '/'").await;
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn js(c: &Client, expr: &str) -> Value {
    c.execute(&format!("return ({expr});"), vec![])
        .await
        .unwrap()
}

/// The flash message's class and text.
async fn flash(c: &Client) -> (String, String) {
    let v = until(
        c,
        "a flash message",
        "document.getElementById('flash') && [document.getElementById('flash').className, document.getElementById('flash').textContent]",
    )
    .await;
    (
        v[0].as_str().unwrap().to_owned(),
        v[1].as_str().unwrap().to_owned(),
    )
}

/// The id of the thread titled `title`, from the inbox filtered to `workspace`.
async fn thread_id(c: &Client, base: &str, workspace: &str, title: &str) -> i64 {
    c.goto(&format!("{base}/?workspace={workspace}"))
        .await
        .unwrap();
    until(
        c,
        "the thread's row",
        &format!(
            "Array.from(document.querySelectorAll('#inbox tr[data-thread]')).filter(r => r.querySelector('td.title').textContent.includes({t})).map(r => Number(r.getAttribute('data-thread')))[0]",
            t = json!(title)
        ),
    )
    .await
    .as_i64()
    .unwrap()
}

/// Runs `lines` in the terminal chat, a process of its own (off the async workers).
async fn chat_elsewhere(dir: &Path, lines: &[&str]) -> String {
    let dir = dir.to_owned();
    let lines: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let l: Vec<&str> = lines.iter().map(String::as_str).collect();
        chat(&dir, &l)
    })
    .await
    .unwrap()
}

fn demo(dir: &Path) {
    owner_with_password(dir);
    let out = krake(dir).arg("demo").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A thread asked for in the terminal chat shows on the open inbox at once, as a link, with
/// the open count raised; an inbox filtered to another workspace leaves it out. Unknown
/// addresses get the 404 page. The inbox and a thread at phone size: the menu, the rows clear
/// of the chat button.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_threads_appear_live_and_the_pages_fit_a_phone() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path());
    let (_server, port) = serve(dir.path());
    let (_driver, driver_port) = chromedriver();
    let c = browser(driver_port).await;
    let base = format!("http://127.0.0.1:{port}");
    sign_in(&c, &base).await;

    // The unfiltered inbox, its socket open; a thread made in another process arrives.
    until(
        &c,
        "the widget's socket",
        "document.querySelector('.krake-widget[data-connected=\"true\"]')",
    )
    .await;
    js(
        &c,
        "(window.__noReload = 'still here', window.__pushed = [], document.addEventListener('krake:thread', e => window.__pushed.push(e.detail.id)), 1)",
    )
    .await;
    let rows = js(&c, "document.querySelectorAll('#inbox tbody tr').length").await;
    let open = js(
        &c,
        "Number(document.querySelector('#open-counts [data-open]').getAttribute('data-open'))",
    )
    .await;
    full_shot(&c, "inbox-desktop", DESKTOP.0, DESKTOP.1).await;
    let out = chat_elsewhere(dir.path(), &["/ask penn Draft the winter newsletter"]).await;
    assert!(out.contains('#'), "{out}");
    let id = until(
        &c,
        "the new thread's row",
        "Array.from(document.querySelectorAll('#inbox tbody tr')).filter(r => r.textContent.includes('Draft the winter newsletter')).map(r => r.getAttribute('data-thread'))[0]",
    )
    .await;
    let id: i64 = id.as_str().unwrap().parse().unwrap();
    assert_eq!(
        js(&c, "document.querySelectorAll('#inbox tbody tr').length").await,
        json!(rows.as_u64().unwrap() + 1)
    );
    assert_eq!(
        js(&c, "window.__noReload").await,
        json!("still here"),
        "the page reloaded"
    );
    // Newest first, its title a link to the thread, counted among the open ones.
    assert_eq!(
        js(
            &c,
            "document.querySelector('#inbox tbody tr').getAttribute('data-thread')"
        )
        .await,
        json!(id.to_string())
    );
    assert_eq!(
        js(
            &c,
            &format!("document.querySelector('#inbox tr[data-thread=\"{id}\"] td.title a').getAttribute('href')")
        )
        .await,
        json!(format!("/threads/{id}"))
    );
    assert_eq!(
        js(
            &c,
            "Number(document.querySelector('#open-counts [data-open]').getAttribute('data-open'))"
        )
        .await,
        json!(open.as_u64().unwrap() + 1)
    );
    js(
        &c,
        &format!("(document.querySelector('#inbox tr[data-thread=\"{id}\"]').scrollIntoView({{block: 'center'}}), 1)"),
    )
    .await;
    shot(&c, "inbox-live-row").await;

    // Archived elsewhere: its row says so and the open count goes back down.
    let out = chat_elsewhere(dir.path(), &[&format!("/archive {id}")]).await;
    assert!(out.contains("rchived"), "{out}");
    until(
        &c,
        "the row archived and the count back",
        &format!(
            "document.querySelector('#inbox tr[data-thread=\"{id}\"] td.status').getAttribute('data-status') === 'archived' && Number(document.querySelector('#open-counts [data-open]').getAttribute('data-open')) === {}",
            open.as_u64().unwrap()
        ),
    )
    .await;

    // Server-rendered rows carry their age with the full time as its title.
    let age = js(
        &c,
        "[document.querySelector('#inbox tr:last-child td.age time').textContent, document.querySelector('#inbox tr:last-child td.age time').getAttribute('title')]",
    )
    .await;
    let words = age[0].as_str().unwrap();
    assert!(words == "just now" || words.ends_with(" ago"), "{age}");
    assert!(age[1].as_str().unwrap().ends_with(" UTC"), "{age}");

    // An inbox filtered to monarch hears of a lunavo thread but does not list it.
    c.goto(&format!("{base}/?workspace=monarch")).await.unwrap();
    until(
        &c,
        "the widget's socket",
        "document.querySelector('.krake-widget[data-connected=\"true\"]')",
    )
    .await;
    js(
        &c,
        "(window.__pushed = [], document.addEventListener('krake:thread', e => window.__pushed.push(e.detail.id)), 1)",
    )
    .await;
    let monarch_rows = js(&c, "document.querySelectorAll('#inbox tbody tr').length").await;
    chat_elsewhere(dir.path(), &["/ask penn Draft the spring newsletter"]).await;
    until(
        &c,
        "the push of the lunavo thread",
        "window.__pushed.length > 0",
    )
    .await;
    assert_eq!(
        js(&c, "document.querySelectorAll('#inbox tbody tr').length").await,
        monarch_rows,
        "a lunavo thread was listed on monarch's inbox"
    );

    // An unknown page: 404 with the navigation and a way back; JSON under /api.
    c.goto(&format!("{base}/no/such/page")).await.unwrap();
    until(
        &c,
        "the 404 page",
        "document.querySelector('section.not-found h1') && document.querySelector('section.not-found a[href=\"/\"]') && document.querySelector('nav a[href=\"/runs\"]')",
    )
    .await;
    assert!(
        js(&c, "document.title")
            .await
            .as_str()
            .unwrap()
            .starts_with("Not found")
    );
    shot(&c, "not-found").await;
    let res = krake_tests::raw_http(port, "GET", "/no/such/page", &[], b"").await;
    assert!(res.starts_with("HTTP/1.1 404"), "{res}");
    assert!(res.contains("text/html"), "{res}");
    assert!(res.contains("/no/such/page"), "{res}");
    let res = krake_tests::raw_http(port, "GET", "/api/v1/no-such-thing", &[], b"").await;
    assert!(res.starts_with("HTTP/1.1 404"), "{res}");
    assert!(res.contains(r#""code":"not_found""#), "{res}");

    // On a phone: the navigation is one Menu button that opens without scripts; the last
    // inbox row can be scrolled clear of the chat button.
    c.set_window_size(PHONE.0, PHONE.1).await.unwrap();
    c.goto(&format!("{base}/")).await.unwrap();
    until(&c, "the inbox", "document.querySelector('#inbox')").await;
    until(
        &c,
        "the chat button",
        "document.querySelector('.krake-toggle')",
    )
    .await;
    assert_eq!(
        js(
            &c,
            "[getComputedStyle(document.querySelector('nav.wide')).display, getComputedStyle(document.querySelector('details.menu')).display]"
        )
        .await,
        json!(["none", "block"])
    );
    let header = js(
        &c,
        "document.querySelector('header').getBoundingClientRect().height",
    )
    .await;
    assert!(header.as_f64().unwrap() < 70.0, "header {header}px tall");
    shot(&c, "inbox-phone").await;
    click(&c, "details.menu > summary").await;
    until(
        &c,
        "the open menu",
        "document.querySelector('details.menu nav a[href=\"/schedules\"]').getBoundingClientRect().height > 0",
    )
    .await;
    shot(&c, "menu-phone").await;
    click(&c, "details.menu > summary").await;
    js(
        &c,
        "(window.scrollTo(0, document.documentElement.scrollHeight), 1)",
    )
    .await;
    let overlap = until(
        &c,
        "the page scrolled to its end",
        "(() => { const rows = document.querySelectorAll('#inbox tbody tr'); const last = rows[rows.length - 1].getBoundingClientRect(); const b = document.querySelector('.krake-toggle').getBoundingClientRect(); return [last.bottom, b.top, window.innerHeight]; })()",
    )
    .await;
    assert!(
        overlap[0].as_f64().unwrap() <= overlap[1].as_f64().unwrap(),
        "the chat button covers the last inbox row (row bottom, button top, window): {overlap}"
    );
    shot(&c, "inbox-phone-end").await;
    full_shot(&c, "inbox-phone-full", PHONE.0, PHONE.1).await;
    c.goto(&format!("{base}/threads/{id}")).await.unwrap();
    until(
        &c,
        "the thread page",
        &format!("document.querySelector('article[data-thread=\"{id}\"]')"),
    )
    .await;
    full_shot(&c, "thread-phone", PHONE.0, PHONE.1).await;
    c.close().await.unwrap();
}

/// Reject without a reason is refused and says why; with one it asks first, then rejects and
/// says so. A two-approval thread shows "1 of 2" after ana's Approve, says so when she
/// approves again, and is approved by bo's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_needs_a_reason_and_a_quorum_shows_its_progress() {
    let dir = tempfile::tempdir().unwrap();
    demo(dir.path());
    member(dir.path(), "bo", "member", "management", true);
    let (_server, port) = serve(dir.path());
    let (_driver, driver_port) = chromedriver();
    let c = browser(driver_port).await;
    let base = format!("http://127.0.0.1:{port}");
    sign_in(&c, &base).await;

    // Reject with no reason: the field is required, and a browser that sends it anyway is
    // refused by the server with why; the thread stays open.
    let hoodie = thread_id(&c, &base, "lunavo", "Publish the hoodie launch post").await;
    c.goto(&format!("{base}/threads/{hoodie}")).await.unwrap();
    until(
        &c,
        "the thread page",
        "document.querySelector('details.reject-step')",
    )
    .await;
    click(&c, "details.reject-step > summary").await;
    assert_eq!(
        js(&c, "document.getElementById('reason').required").await,
        json!(true)
    );
    js(
        &c,
        "(document.getElementById('reason').required = false, 1)",
    )
    .await;
    click(&c, "form.reject button").await;
    let (class, text) = flash(&c).await;
    assert!(class.contains("error"), "{class}: {text}");
    assert!(text.contains("needs a reason"), "{text}");
    assert_eq!(
        js(&c, "document.querySelector('article .status').textContent").await,
        json!("open")
    );
    shot(&c, "reject-refused").await;

    // The Reject box is open again for the reason.
    assert_eq!(
        js(&c, "document.querySelector('details.reject-step').open").await,
        json!(true)
    );
    // With a reason: a confirmation page shows it back; confirmed, the thread is rejected.
    c.find(Locator::Id("reason"))
        .await
        .unwrap()
        .send_keys("Wrong photo: use the night shot")
        .await
        .unwrap();
    click(&c, "form.reject button").await;
    until(
        &c,
        "the confirmation",
        "document.querySelector('#confirm-reject')",
    )
    .await;
    assert!(
        js(
            &c,
            "document.querySelector('blockquote.reason').textContent"
        )
        .await
        .as_str()
        .unwrap()
        .contains("Wrong photo: use the night shot")
    );
    assert_eq!(
        js(&c, "document.querySelector('h1').textContent").await,
        json!(format!("Reject #{hoodie}?"))
    );
    shot(&c, "reject-confirm").await;
    click(&c, "#confirm-reject").await;
    until(
        &c,
        "the rejected thread",
        "document.querySelector('article .status') && document.querySelector('article .status').textContent === 'rejected'",
    )
    .await;
    let (class, text) = flash(&c).await;
    assert!(class.contains("ok"), "{class}: {text}");
    assert_eq!(
        text,
        format!("You rejected #{hoodie}. Reason: Wrong photo: use the night shot")
    );
    assert!(
        js(&c, "location.search")
            .await
            .as_str()
            .unwrap()
            .contains("done=rejected")
    );
    full_shot(&c, "thread-rejected", DESKTOP.0, DESKTOP.1).await;

    // The two-approval thread: ana's Approve counts as 1 of 2.
    let hire = thread_id(&c, &base, "management", "Hire a part-time designer").await;
    c.goto(&format!("{base}/threads/{hire}")).await.unwrap();
    let progress = until(
        &c,
        "the quorum progress",
        "document.querySelector('p.quorum') && document.querySelector('p.quorum').textContent",
    )
    .await;
    assert!(
        progress.as_str().unwrap().starts_with("0 of 2 approvals"),
        "{progress}"
    );
    click(&c, "button.approve").await;
    until(&c, "the answer", "location.search.includes('done=')").await;
    let (class, text) = flash(&c).await;
    assert!(class.contains("ok"), "{class}: {text}");
    assert!(text.contains("counts: 1 of 2 (ana)"), "{text}");
    let progress = js(&c, "document.querySelector('p.quorum').textContent").await;
    assert!(
        progress
            .as_str()
            .unwrap()
            .starts_with("1 of 2 approvals: ana"),
        "{progress}"
    );
    assert_eq!(
        js(&c, "document.querySelector('article .status').textContent").await,
        json!("open")
    );
    // A second Approve by ana changes nothing and says so.
    click(&c, "button.approve").await;
    until(&c, "the answer", "location.search.includes('done=already')").await;
    let (class, text) = flash(&c).await;
    assert!(class.contains("warn"), "{class}: {text}");
    assert_eq!(
        text,
        format!("You already approved #{hire}; it needs one more approval from someone else.")
    );
    full_shot(&c, "quorum-1-of-2", DESKTOP.0, DESKTOP.1).await;

    // bo's Approve is the second: approved.
    click(&c, "nav.wide form[action='/logout'] button").await;
    until(&c, "signed out", "location.pathname === '/login'").await;
    sign_in_as(&c, &base, "bo").await;
    c.goto(&format!("{base}/threads/{hire}")).await.unwrap();
    until(
        &c,
        "the thread page",
        "document.querySelector('button.approve')",
    )
    .await;
    click(&c, "button.approve").await;
    until(
        &c,
        "the approved thread",
        "document.querySelector('article .status') && document.querySelector('article .status').textContent === 'approved'",
    )
    .await;
    let (class, text) = flash(&c).await;
    assert!(class.contains("ok"), "{class}: {text}");
    assert_eq!(
        text,
        format!("You approved #{hire}: it is approved now (2 of 2: ana and bo).")
    );
    assert!(
        js(&c, "document.querySelector('p.quorum').textContent")
            .await
            .as_str()
            .unwrap()
            .starts_with("2 of 2 approvals: ana and bo")
    );
    shot(&c, "quorum-approved").await;
    c.set_window_size(PHONE.0, PHONE.1).await.unwrap();
    full_shot(&c, "quorum-approved-phone", PHONE.0, PHONE.1).await;
    c.close().await.unwrap();
}
