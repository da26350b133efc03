//! The Schedules, Costs and Folders pages in headless Chromium against the real `krake serve`
//! (with a local fake model provider): a schedule made in chat listed and paused and resumed
//! with the page's buttons; a month's cost of a model run with the agent's budget used; a
//! folder entry added, edited and deleted (after a confirmation page) with the forms, and a CSV
//! with one bad row imported (the row's line and error shown, the good rows listed). Screenshots
//! of the three pages at desktop (1200x900) and phone (390x844) size with `KRAKE_SCREENSHOTS`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use fantoccini::{Client, Locator};
use krake_tests::browser::*;
use krake_tests::fake_openai::{Answer, FakeOpenAi};
use krake_tests::{chat_with_config, krake, listening_port};
use serde_json::json;
use std::path::Path;
use std::process::Stdio;

/// `krake serve` with the fake provider at `base_url` priced at $1,000 / $2,000 per million
/// tokens (its 120 + 30 tokens cost $0.18), lunavo's monthly budget at $6 and Penn's at $5.
fn serve_priced(dir: &Path, base_url: &str) -> (Killed, u16, std::path::PathBuf) {
    let cfg = dir.join("krake.toml");
    std::fs::write(
        &cfg,
        format!(
            "[llm]\nmax_retries = 0\n\n[[llm.providers]]\nname = \"fake\"\nbase_url = \"{base_url}\"\nmodels = [\"fake-model\"]\ninput_price_per_million = 1000.0\noutput_price_per_million = 2000.0\n\n[budgets.workspaces]\nlunavo = 6.0\n\n[budgets.agents]\npenn = 5.0\n"
        ),
    )
    .unwrap();
    let mut child = krake(dir)
        .arg("--config")
        .arg(&cfg)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let port = listening_port(&mut child);
    (Killed(child), port, cfg)
}

async fn text(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .text()
        .await
        .unwrap()
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn fill(c: &Client, css: &str, value: &str) {
    let field = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    field.clear().await.unwrap();
    field.send_keys(value).await.unwrap();
}

/// Screenshots of the page at `path` at desktop and phone size (whole page), named `name`.
async fn both_sizes(c: &Client, base: &str, path: &str, name: &str, ready: &str) {
    for (suffix, w, h) in [("", 1200, 900), ("-phone", 390, 844)] {
        c.set_window_size(w, h).await.unwrap();
        c.goto(&format!("{base}{path}")).await.unwrap();
        until(c, name, ready).await;
        full_shot(c, &format!("{name}{suffix}"), w, h).await;
        if suffix == "-phone" {
            // Nothing sticks out sideways on a phone: the page is as wide as the screen.
            let wide = c
                .execute(
                    "return document.documentElement.scrollWidth <= window.innerWidth + 1;",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(wide, json!(true), "{path} is wider than a phone screen");
        }
    }
    c.set_window_size(1200, 900).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_costs_and_folders_pages_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    owner_with_password(dir.path());
    let fake = FakeOpenAi::start(vec![Answer::reply("Moon hoodie: wear the night.", 0.95)]).await;
    let (_server, port, cfg) = serve_priced(dir.path(), &fake.base_url);
    let (_driver, driver_port) = chromedriver();
    let c = browser(driver_port).await;
    let base = format!("http://127.0.0.1:{port}");
    sign_in(&c, &base).await;

    // Empty states first.
    c.goto(&format!("{base}/schedules")).await.unwrap();
    let empty = until(
        &c,
        "the schedules' empty state",
        "document.querySelector('#no-schedules') && document.querySelector('#no-schedules').textContent",
    )
    .await;
    assert!(
        empty.as_str().unwrap().contains("/schedule dexter"),
        "{empty}"
    );
    shot(&c, "schedules-empty").await;
    c.goto(&format!("{base}/costs")).await.unwrap();
    until(
        &c,
        "the costs' empty state",
        "document.querySelector('#no-costs')",
    )
    .await;
    shot(&c, "costs-empty").await;

    // Made in chat (another process, the same store): a schedule, a model run, a folder.
    let out = chat_with_config(
        dir.path(),
        &cfg,
        &[
            "/schedule dexter \"summarise last week's sales\" every monday 09:00 Europe/Berlin",
            "/schedule run 1",
            "ask penn to draft a hoodie tagline",
            "/folder create soshie calendar",
            "/folder addcol soshie calendar title text",
            "/folder addcol soshie calendar status status draft,scheduled,posted",
            "/folder addcol soshie calendar reach number",
            "/folder addcol soshie calendar day date",
        ],
    );
    assert!(out.contains("Scheduled 1"), "{out}");
    assert!(out.contains("run 1"), "{out}");

    // Schedules: listed with its cadence, cron and the run made by hand; paused and resumed.
    c.goto(&format!("{base}/schedules")).await.unwrap();
    until(
        &c,
        "schedule 1",
        "document.querySelector('[data-schedule=\"1\"]')",
    )
    .await;
    let row = text(&c, "[data-schedule=\"1\"]").await;
    for part in [
        "management",
        "Dexter",
        "summarise last week's sales",
        "0 0 9 * * MON",
        "Europe/Berlin",
        "in the inbox",
        "Active",
    ] {
        assert!(row.contains(part), "{part}: {row}");
    }
    click(&c, "[data-schedule=\"1\"] button[value=\"pause\"]").await;
    let flash = until(
        &c,
        "the pause message",
        "document.querySelector('#flash') && document.querySelector('#flash').textContent",
    )
    .await;
    assert!(
        flash.as_str().unwrap().contains("Paused schedule 1"),
        "{flash}"
    );
    assert_eq!(
        text(&c, "[data-schedule=\"1\"] td.next").await,
        "paused",
        "no next run while paused"
    );
    until(
        &c,
        "the row paused",
        "document.querySelector('[data-schedule=\"1\"]').dataset.state === 'paused'",
    )
    .await;
    shot(&c, "schedules-paused").await;
    click(&c, "[data-schedule=\"1\"] button[value=\"resume\"]").await;
    let flash = until(
        &c,
        "the resume message",
        "document.querySelector('#flash') && document.querySelector('#flash').textContent.includes('Resumed')",
    )
    .await;
    assert_eq!(flash, json!(true));
    until(
        &c,
        "the row active",
        "document.querySelector('[data-schedule=\"1\"]').dataset.state === 'active'",
    )
    .await;

    // Costs: Penn's run, once done, costs $0.18 of its $5 budget.
    c.goto(&format!("{base}/runs")).await.unwrap();
    until(
        &c,
        "run 1 done",
        "document.querySelector('[data-run=\"1\"] .status') && document.querySelector('[data-run=\"1\"] .status').textContent === 'done'",
    )
    .await;
    c.goto(&format!("{base}/costs")).await.unwrap();
    until(&c, "the costs", "document.querySelector('#cost-total')").await;
    assert!(text(&c, "#cost-total").await.contains("$0.18"));
    let penn = text(&c, "#by-agent [data-key=\"Penn\"]").await;
    for part in ["$0.18", "3% of $5.00", "120", "30"] {
        assert!(penn.contains(part), "{part}: {penn}");
    }
    let lunavo = text(&c, "#by-workspace [data-key=\"lunavo\"]").await;
    assert!(lunavo.contains("3% of $6.00"), "{lunavo}");
    // The previous month is empty and links back.
    click(&c, "#previous-month").await;
    until(&c, "last month", "document.querySelector('#no-costs')").await;
    click(&c, "#next-month").await;
    until(
        &c,
        "this month again",
        "document.querySelector('#cost-total')",
    )
    .await;

    // Folders: add, edit, delete with the forms.
    let folder = format!("{base}/folders/Soshie/calendar");
    c.goto(&folder).await.unwrap();
    until(&c, "the add form", "document.querySelector('#add form')").await;
    fill(&c, "#add [name=\"col.title\"]", "Moon hoodie launch").await;
    c.execute(
        "document.querySelector('#add [name=\"col.status\"]').value = 'draft';",
        vec![],
    )
    .await
    .unwrap();
    fill(&c, "#add [name=\"col.reach\"]", "1200").await;
    click(&c, "#add button[type=submit]").await;
    let flash = until(
        &c,
        "the added message",
        "document.querySelector('#flash') && document.querySelector('#flash').textContent",
    )
    .await;
    assert!(
        flash.as_str().unwrap().contains("Added entry #1."),
        "{flash}"
    );
    assert!(
        text(&c, "[data-entry=\"1\"]")
            .await
            .contains("Moon hoodie launch")
    );
    click(&c, "[data-entry=\"1\"] a[href*=\"edit=1\"]").await;
    until(&c, "the edit form", "document.querySelector('#edit form')").await;
    fill(
        &c,
        "#edit [name=\"col.title\"]",
        "Moon hoodie: wear the night",
    )
    .await;
    c.execute(
        "document.querySelector('#edit [name=\"col.status\"]').value = 'posted';",
        vec![],
    )
    .await
    .unwrap();
    click(&c, "#edit button[value=\"save\"]").await;
    until(
        &c,
        "the saved message",
        "document.querySelector('#flash') && document.querySelector('#flash').textContent.includes('Saved entry #1.')",
    )
    .await;
    let row = text(&c, "[data-entry=\"1\"]").await;
    assert!(
        row.contains("wear the night") && row.contains("posted"),
        "{row}"
    );
    click(&c, "[data-entry=\"1\"] a[href*=\"delete=1\"]").await;
    until(&c, "the confirmation", "document.querySelector('#confirm')").await;
    assert!(text(&c, "#confirm").await.contains("Delete entry #1?"));
    shot(&c, "folder-confirm").await;
    click(&c, "#confirm button[value=\"delete\"]").await;
    until(
        &c,
        "the deleted message",
        "document.querySelector('#flash') && document.querySelector('#flash').textContent.includes('Deleted entry #1.')",
    )
    .await;
    assert_eq!(
        c.execute(
            "return document.querySelector('[data-entry=\"1\"]') === null;",
            vec![]
        )
        .await
        .unwrap(),
        json!(true)
    );

    // A CSV with one bad row: its line and error shown, the good rows listed.
    let csv = dir.path().join("posts.csv");
    std::fs::write(
        &csv,
        "title,status,reach,day\nScarf drop,draft,300,2026-12-10\nBeanie restock,maybe,120,2026-12-11\nSocks teaser,scheduled,80,2026-12-12\n",
    )
    .unwrap();
    c.find(Locator::Css("#csv-file"))
        .await
        .unwrap()
        .send_keys(csv.to_str().unwrap())
        .await
        .unwrap();
    click(&c, "#import button[type=submit]").await;
    let flash = until(
        &c,
        "the import message",
        "document.querySelector('#row-errors') && document.querySelector('#flash').textContent",
    )
    .await;
    let flash = flash.as_str().unwrap();
    assert!(
        flash.contains("Added 2 entries from posts.csv; 1 row was left out"),
        "{flash}"
    );
    let bad = text(&c, "#row-errors li[data-line=\"3\"]").await;
    assert!(
        bad.contains("Line 3") && bad.contains("maybe is not one of"),
        "{bad}"
    );
    let table = text(&c, "#entries").await;
    assert!(
        table.contains("Scarf drop") && table.contains("Socks teaser"),
        "{table}"
    );
    assert!(!table.contains("Beanie"), "{table}");
    full_shot(&c, "folder-import", 1200, 900).await;

    // Every page at desktop and phone size.
    both_sizes(
        &c,
        &base,
        "/schedules",
        "schedules",
        "document.querySelector('#schedules')",
    )
    .await;
    both_sizes(
        &c,
        &base,
        "/costs",
        "costs",
        "document.querySelector('#cost-total')",
    )
    .await;
    both_sizes(
        &c,
        &base,
        "/folders",
        "folders",
        "document.querySelector('#folders')",
    )
    .await;
    both_sizes(
        &c,
        &base,
        "/folders/Soshie/calendar?edit=2",
        "folder",
        "document.querySelector('#edit form')",
    )
    .await;
    c.close().await.unwrap();
}
