//! The customer widget in a real browser: headless Chromium on a shop's page of another origin
//! (a local page server on its own port) with `<script src=…/widget.js data-key="kpub_…">`,
//! against the real `krake serve` with the local OpenAI-compatible fake as the model. A visitor
//! asks, Cassie answers with a citation, an unsure answer is handed to the team, a person
//! replies on the dashboard and the visitor sees it; commands are refused; the conversation
//! survives a reload; a revoked key is refused. Screenshots at desktop and phone size with
//! `KRAKE_SCREENSHOTS=DIR`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use fantoccini::{Client, Locator};
use krake_tests::browser::*;
use krake_tests::fake_openai::{Answer, FakeOpenAi};
use krake_tests::{krake, run};
use serde_json::{Value, json};

/// Serves the shop's page on `listener`: a plain page with the widget's script tag.
fn shop(listener: std::net::TcpListener, krake_port: u16, key: &str) {
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Lunavo shop</title></head>\
         <body style=\"font-family:sans-serif;margin:2rem\"><h1>Lunavo</h1><p>Hoodies that glow in the dark.</p>\
         <script src=\"http://127.0.0.1:{krake_port}/widget.js\" data-key=\"{key}\"></script></body></html>"
    );
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move || {
            let page = page.clone();
            async move { axum::response::Html(page) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
}

/// Clicks the page's chat button once it shows.
async fn open_chat(c: &Client) {
    until(
        c,
        "the chat button",
        "document.querySelector('.krake-toggle')",
    )
    .await;
    c.find(Locator::Css(".krake-toggle"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The text of every visitor-widget message of class `cls`, joined.
async fn texts(c: &Client, cls: &str) -> String {
    c.execute(
        &format!(
            "return Array.from(document.querySelectorAll('{cls}')).map(e => e.textContent).join('\\n');"
        ),
        vec![],
    )
    .await
    .unwrap()
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_widget_on_a_shop_page_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    owner_with_password(dir.path());
    let (ok, token, err) = run(krake(dir.path()).args(["user", "token", "ana"]));
    assert!(ok, "{err}");
    let token = token.trim().to_owned();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let shop_port = listener.local_addr().unwrap().port();
    let origin = format!("http://127.0.0.1:{shop_port}");
    let (ok, key, err) =
        run(krake(dir.path()).args(["key", "create", "lunavo", "--origin", &origin]));
    assert!(ok, "{err}");
    let key = key.trim().to_owned();
    let model = FakeOpenAi::start(vec![
        Answer::reply(
            "You can return a hoodie within 30 days of delivery (returns.md §1).",
            0.9,
        ),
        Answer::Tools(vec![(
            "escalate".into(),
            json!({"reason": "engraving is not in the knowledge base"}).to_string(),
        )]),
    ])
    .await;
    let (_server, port, _) = serve_with_model(dir.path(), &model.base_url, false);
    shop(listener, port, &key);
    let (_driver, driver_port) = chromedriver();
    let c = browser(driver_port).await;

    // A visitor opens the shop's page and the chat.
    c.goto(&format!("{origin}/")).await.unwrap();
    open_chat(&c).await;
    until(
        &c,
        "the visitor's welcome",
        &format!(
            "document.querySelector('.krake-input') && !document.querySelector('.krake-input').disabled && localStorage.getItem('krake-visitor:{key}')"
        ),
    )
    .await;
    let stored = c
        .execute(
            &format!("return localStorage.getItem('krake-visitor:{key}');"),
            vec![],
        )
        .await
        .unwrap();
    assert!(
        stored.as_str().is_some_and(|t| t.starts_with("kvis_")),
        "the visitor token is kept: {stored}"
    );

    // Cassie answers with a citation.
    say(&c, "How long do I have to return a hoodie?").await;
    until(
        &c,
        "Cassie's answer",
        "Array.from(document.querySelectorAll('.krake-from-agent')).some(e => e.textContent.includes('30 days'))",
    )
    .await;
    assert!(texts(&c, ".krake-citation").await.contains("returns.md §1"));

    // Commands are refused; nothing of the inbox shows.
    for cmd in ["/todo", "/approve 1", "/kpi lunavo"] {
        say(&c, cmd).await;
    }
    until(
        &c,
        "three refusals",
        "Array.from(document.querySelectorAll('.krake-from-agent')).filter(e => e.textContent.includes('Commands are only for the Lunavo team')).length === 3",
    )
    .await;
    let page = c.source().await.unwrap();
    assert!(
        !page.contains("krake-card"),
        "no thread cards for a visitor"
    );
    assert!(!page.contains("/threads/"), "no links into the dashboard");
    full_shot(&c, "customer-widget-desktop", 1200, 900).await;

    // Unsure: handed to the team.
    say(&c, "Can you engrave my name on the hoodie?").await;
    until(
        &c,
        "the hand-over",
        "Array.from(document.querySelectorAll('.krake-from-agent')).some(e => e.textContent.includes('passed your question to the Lunavo team'))",
    )
    .await;

    // A person answers on the dashboard (another browser session, signed in).
    let (status, body) = api(
        port,
        &token,
        "GET",
        "/api/v1/inbox?kind=escalation",
        &Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["threads"][0]["id"].as_i64().unwrap();
    let team = browser(driver_port).await;
    let base = format!("http://127.0.0.1:{port}");
    sign_in(&team, &base).await;
    team.goto(&format!("{base}/threads/{id}")).await.unwrap();
    until(
        &team,
        "the reply form",
        "document.querySelector('#reply-text')",
    )
    .await;
    team.find(Locator::Id("reply-text"))
        .await
        .unwrap()
        .send_keys("Yes: engraving costs 5 euros, add it at checkout.")
        .await
        .unwrap();
    team.find(Locator::Css("form.reply:not(.reject) button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &team,
        "the reply on the thread page",
        "document.body.textContent.includes('engraving costs 5 euros')",
    )
    .await;
    team.close().await.unwrap();
    until(
        &c,
        "the team's answer in the visitor's chat",
        "Array.from(document.querySelectorAll('.krake-from-team')).some(e => e.textContent.includes('engraving costs 5 euros'))",
    )
    .await;
    assert!(
        texts(&c, ".krake-name").await.contains("ana"),
        "under the person's name"
    );

    // A reload resumes the conversation, each message once.
    c.refresh().await.unwrap();
    open_chat(&c).await;
    until(
        &c,
        "the conversation back",
        "Array.from(document.querySelectorAll('.krake-from-team')).length === 1 && document.querySelectorAll('.krake-you').length === 5",
    )
    .await;
    c.set_window_size(390, 844).await.unwrap();
    shot(&c, "customer-widget-phone").await;
    c.set_window_size(1200, 900).await.unwrap();

    // Revoked: the chat says so and takes no more input.
    let (ok, _, err) = run(krake(dir.path()).args(["key", "revoke", &key[..11]]));
    assert!(ok, "{err}");
    c.refresh().await.unwrap();
    open_chat(&c).await;
    until(
        &c,
        "the revoked key's message",
        "document.body.textContent.includes('no longer available') && document.querySelector('.krake-input').disabled",
    )
    .await;
    c.close().await.unwrap();
}
