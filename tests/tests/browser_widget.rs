//! The team chat widget in a real browser (headless Chromium over WebDriver against the real
//! `krake serve`): suggestions on an empty conversation, `/todo` as a real table, thread cards
//! whose Approve works (quorum "1 of 2" first) and whose Reject asks for a reason, `#1` as a
//! link that opens the thread page, `data-workspace` scoping `/todo`, Escape closing the
//! panel, and on a page of another origin the not-signed-in and the cross-origin states, both
//! refusing input. Desktop (1200x900) and phone (390x844) screenshots with
//! `KRAKE_SCREENSHOTS=DIR`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use fantoccini::{Client, Locator};
use krake_tests::browser::*;
use krake_tests::krake;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Clicks the first element matching `css`.
async fn click(c: &Client, css: &str) {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
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

/// Opens the widget and waits for its socket's welcome.
async fn open_widget(c: &Client) {
    until(
        c,
        "the widget's welcome",
        "document.querySelector('.krake-widget[data-state=\"ready\"]')",
    )
    .await;
    click(c, ".krake-toggle").await;
    until(
        c,
        "the panel open with the input focused",
        "document.activeElement === document.querySelector('.krake-input')",
    )
    .await;
}

/// The text of the last Krake bubble once `pred` (JS on `r`, the bubble) holds.
async fn last_reply(c: &Client, what: &str, pred: &str) -> Value {
    until(
        c,
        what,
        &format!("(function(){{var all=document.querySelectorAll('.krake-reply'); var r=all[all.length-1]; return r && ({pred}) && r.textContent;}})()"),
    )
    .await
}

/// A page on another origin (this host, another port) embedding the widget of `krake_port`
/// with `attrs` on its script tag; the port it is served on. Serves the page to every request.
async fn host_page(krake_port: u16, attrs: &str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Lunavo shop</title></head>\
         <body style=\"font-family:sans-serif;margin:2rem\"><h1>Lunavo</h1><p>Night hoodies, glow-in-the-dark crescents.</p>\
         <script src=\"http://127.0.0.1:{krake_port}/widget.js\" {attrs}></script></body></html>"
    );
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let page = page.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    page.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(page.as_bytes()).await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_team_widget_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    owner_with_password(dir.path());
    let out = krake(dir.path()).arg("demo").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_server, port) = serve(dir.path());
    let (_driver, driver_port) = chromedriver();
    let c = browser(driver_port).await;
    let base = format!("http://127.0.0.1:{port}");
    sign_in(&c, &base).await;

    // An empty conversation offers suggestions; /todo from a chip draws a real table.
    open_widget(&c).await;
    let chips = js(
        &c,
        "Array.from(document.querySelectorAll('.krake-chip')).map(b => b.textContent)",
    )
    .await;
    assert_eq!(chips, json!(["/todo", "/kpi", "help"]));
    assert_eq!(
        js(
            &c,
            "document.querySelector('.krake-log').getAttribute('aria-live')"
        )
        .await,
        json!("polite")
    );
    shot(&c, "widget-empty-desktop").await;
    click(&c, ".krake-chip").await;
    until(
        &c,
        "the /todo table",
        "document.querySelectorAll('.krake-reply table.krake-table tbody tr').length >= 5",
    )
    .await;
    assert_eq!(
        js(&c, "document.querySelectorAll('.krake-suggestions').length").await,
        json!(0),
        "suggestions go once the conversation starts"
    );
    let row = js(
        &c,
        "Array.from(document.querySelectorAll('.krake-table tbody tr[data-krake-thread=\"1\"] td')).map(t => t.textContent)",
    )
    .await;
    assert_eq!(row[0], "#1");
    assert_eq!(row[2], "open");
    assert_eq!(row[3], "lunavo");
    assert!(
        row[1]
            .as_str()
            .unwrap()
            .contains("Publish the hoodie launch post"),
        "{row}"
    );
    // The widget's lines never carry the dashboard's `data-thread` (it counts rows by it).
    assert_eq!(
        js(
            &c,
            "document.querySelectorAll('.krake-widget [data-thread]').length"
        )
        .await,
        json!(0)
    );
    // The table fits the panel or scrolls inside it; the panel itself never scrolls sideways.
    let fits = js(
        &c,
        "(function(){var w=document.querySelector('.krake-table-wrap'), l=document.querySelector('.krake-log'); return w.getBoundingClientRect().right <= l.getBoundingClientRect().right + 1 && l.scrollWidth <= l.clientWidth + 1;})()",
    )
    .await;
    assert_eq!(fits, json!(true));
    shot(&c, "widget-todo-desktop").await;

    // A quorum thread's card: Approve counts "1 of 2"; the thread stays open.
    say(&c, "/show 8").await;
    until(
        &c,
        "the card of #8",
        "document.querySelector('.krake-card[data-krake-thread=\"8\"] .krake-button[data-action=\"approve\"]')",
    )
    .await;
    assert_eq!(
        js(&c, "document.querySelector('.krake-card[data-krake-thread=\"8\"] .krake-quorum').textContent").await,
        json!("0 of 2 approvals")
    );
    click(
        &c,
        ".krake-card[data-krake-thread=\"8\"] .krake-button[data-action=\"approve\"]",
    )
    .await;
    until(
        &c,
        "1 of 2 on the card",
        "document.querySelector('.krake-card[data-krake-thread=\"8\"] .krake-quorum').textContent === '1 of 2 approvals'",
    )
    .await;
    assert_eq!(
        js(
            &c,
            "document.querySelectorAll('.krake-card[data-krake-thread=\"8\"]').length"
        )
        .await,
        json!(1),
        "a press updates the card pressed, it draws no second one"
    );
    last_reply(
        &c,
        "the count's reply",
        "r.textContent.includes('1 more needed')",
    )
    .await;

    // Approve #1 on its card: the thread is approved (in the store too), the card says so.
    say(&c, "/show 1").await;
    click(
        &c,
        ".krake-card[data-krake-thread=\"1\"] .krake-button[data-action=\"approve\"]",
    )
    .await;
    until(
        &c,
        "the card of #1 approved",
        "(function(){var c=document.querySelector('.krake-card[data-krake-thread=\"1\"]'); return c.getAttribute('data-status') === 'approved' && !c.querySelector('.krake-actions') && c.querySelector('.krake-pill').textContent === 'approved';})()",
    )
    .await;
    let thread = js(&c, "fetch('/api/v1/inbox/1').then(r => r.json())").await;
    assert_eq!(thread["status"], "approved", "{thread}");
    shot(&c, "widget-card-approved-desktop").await;

    // Reject asks for a reason: not sent without one.
    say(&c, "/show 2").await;
    // "Refund order #1042": a shop's order number is text, the thread's #2 a link.
    until(
        &c,
        "thread 2's card",
        "document.querySelector('.krake-card[data-krake-thread=\"2\"]') && document.querySelector('.krake-log').textContent.includes('order #1042')",
    )
    .await;
    assert_eq!(
        js(
            &c,
            "Array.from(document.querySelectorAll('a.krake-link')).some(a => a.textContent === '#1042')"
        )
        .await,
        json!(false),
        "an order number is not a thread link"
    );
    click(
        &c,
        ".krake-card[data-krake-thread=\"2\"] .krake-button[data-action=\"reject\"]",
    )
    .await;
    until(
        &c,
        "the reason box focused",
        "document.activeElement === document.querySelector('.krake-card[data-krake-thread=\"2\"] .krake-reason')",
    )
    .await;
    assert_eq!(
        js(
            &c,
            "document.querySelector('.krake-reject-confirm').disabled"
        )
        .await,
        json!(true)
    );
    shot(&c, "widget-reject-reason-desktop").await;
    let reason = c.find(Locator::Css(".krake-reason")).await.unwrap();
    reason.send_keys("wrong photo").await.unwrap();
    click(&c, ".krake-reject-confirm").await;
    until(
        &c,
        "the card of #2 rejected with its reason",
        "(function(){var c=document.querySelector('.krake-card[data-krake-thread=\"2\"]'); var d=c.querySelector('.krake-decided'); return c.getAttribute('data-status') === 'rejected' && d && d.textContent === 'Rejected by ana: wrong photo';})()",
    )
    .await;

    // Phone: the panel takes the whole screen, the table scrolls inside it.
    c.set_window_size(390, 844).await.unwrap();
    let full = js(
        &c,
        "(function(){var p=document.querySelector('.krake-panel').getBoundingClientRect(); return [Math.round(p.width), Math.round(p.height), document.documentElement.clientWidth, window.innerHeight];})()",
    )
    .await;
    assert_eq!(full[0], full[2], "{full}");
    assert_eq!(full[1], full[3], "{full}");
    shot(&c, "widget-cards-phone").await;
    say(&c, "/todo").await;
    until(
        &c,
        "a second table",
        "document.querySelectorAll('.krake-table').length === 2",
    )
    .await;
    let sideways = js(
        &c,
        "(function(){var l=document.querySelector('.krake-log'); return l.scrollWidth <= l.clientWidth + 1;})()",
    )
    .await;
    assert_eq!(sideways, json!(true), "the log scrolls sideways on a phone");
    shot(&c, "widget-todo-phone").await;
    say(&c, "/kpi lunavo").await;
    until(
        &c,
        "the KPI cards",
        "document.querySelectorAll('.krake-kpi').length > 0 || Array.from(document.querySelectorAll('.krake-reply')).some(r => r.textContent.includes('No figures'))",
    )
    .await;
    shot(&c, "widget-kpi-phone").await;

    // Escape closes the panel and gives the focus back to the button.
    c.set_window_size(1200, 900).await.unwrap();
    c.find(Locator::Css(".krake-input"))
        .await
        .unwrap()
        .send_keys("\u{E00C}")
        .await
        .unwrap();
    until(
        &c,
        "the panel closed",
        "document.querySelector('.krake-panel').getAttribute('data-open') === 'false' && document.activeElement === document.querySelector('.krake-toggle')",
    )
    .await;

    // `#1` in a reply is a link that opens the thread's page.
    click(&c, ".krake-toggle").await;
    click(&c, ".krake-card[data-krake-thread=\"1\"] a.krake-link").await;
    until(
        &c,
        "the thread page",
        "location.pathname === '/threads/1' && document.querySelector('article[data-thread=\"1\"]')",
    )
    .await;

    // data-workspace="lunavo" (a lunavo page): /todo lists lunavo's threads only, although
    // ana is an owner everywhere.
    c.goto(&format!("{base}/workspaces/lunavo/knowledge"))
        .await
        .unwrap();
    open_widget(&c).await;
    assert!(
        js(&c, "document.querySelector('.krake-title').textContent")
            .await
            .as_str()
            .unwrap()
            .contains("lunavo")
    );
    say(&c, "/todo all").await;
    let workspaces = until(
        &c,
        "the scoped table",
        "(function(){var t=document.querySelectorAll('.krake-table'); var l=t[t.length-1]; return l && Array.from(l.querySelectorAll('tbody tr')).map(r => r.children[3].textContent);})()",
    )
    .await;
    let workspaces = workspaces.as_array().unwrap();
    assert!(!workspaces.is_empty());
    assert!(workspaces.iter().all(|w| w == "lunavo"), "{workspaces:?}");
    shot(&c, "widget-scoped-desktop").await;
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_team_widget_on_another_origin_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    owner_with_password(dir.path());
    let (_server, port) = serve(dir.path());
    let host = host_page(port, "data-workspace=\"lunavo\"").await;
    let (_driver, driver_port) = chromedriver();
    let c = browser(driver_port).await;
    let base = format!("http://127.0.0.1:{port}");

    // Not signed in: says so with a link to sign in, and takes no typing.
    c.goto(&format!("http://127.0.0.1:{host}/")).await.unwrap();
    until(
        &c,
        "the signed-out state",
        "document.querySelector('.krake-widget[data-state=\"signed-out\"]')",
    )
    .await;
    click(&c, ".krake-toggle").await;
    let state = js(
        &c,
        "[document.querySelector('.krake-notice').textContent, document.querySelector('.krake-input').disabled, document.querySelector('.krake-send').disabled, document.querySelector('a.krake-signin').href]",
    )
    .await;
    assert!(
        state[0]
            .as_str()
            .unwrap()
            .starts_with("Sign in to Krake to chat"),
        "{state}"
    );
    assert_eq!(
        (state[1].clone(), state[2].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(state[3], json!(format!("{base}/login")));
    shot(&c, "widget-signed-out-desktop").await;
    c.set_window_size(390, 844).await.unwrap();
    shot(&c, "widget-signed-out-phone").await;
    c.set_window_size(1200, 900).await.unwrap();

    // Signed in at Krake, on this other origin: its cookie does not count here, and the widget
    // says that (not "sign in"), still taking no typing.
    sign_in(&c, &base).await;
    c.goto(&format!("http://127.0.0.1:{host}/")).await.unwrap();
    until(
        &c,
        "the cross-origin state",
        "document.querySelector('.krake-widget[data-state=\"cross-origin\"]')",
    )
    .await;
    click(&c, ".krake-toggle").await;
    let state = js(
        &c,
        "[document.querySelector('.krake-notice').textContent, document.querySelector('.krake-input').disabled]",
    )
    .await;
    assert!(
        state[0]
            .as_str()
            .unwrap()
            .contains("does not reach this page"),
        "{state}"
    );
    assert_eq!(state[1], json!(true));
    shot(&c, "widget-cross-origin-desktop").await;
    c.close().await.unwrap();
}
