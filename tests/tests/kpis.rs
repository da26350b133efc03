//! KPIs end to end on the real `krake` binary: metrics pushed over the API and the CLI
//! (idempotent, bad input refused with the reason, other workspaces' and viewers' tokens
//! refused), derived KPIs with a zero divisor, folder KPIs, one alert thread per streak, the
//! overview showing only what a person may see, and the demo's history.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_tests::{chat_with_config, krake, raw_http, run, spawn_serve, stop};
use serde_json::{Value, json};
use std::path::Path;

/// A token for a new user with `role` (in `workspace` only, when given).
fn token(dir: &Path, config: &Path, user: &str, role: &str, workspace: Option<&str>) -> String {
    let mut add = krake(dir);
    add.arg("--config")
        .arg(config)
        .args(["user", "add", user, "--role", role]);
    if let Some(w) = workspace {
        add.args(["--workspace", w]);
    }
    let (ok, _, err) = run(&mut add);
    assert!(ok, "{err}");
    let (ok, out, err) = run(krake(dir)
        .arg("--config")
        .arg(config)
        .args(["user", "token", user]));
    assert!(ok, "{err}");
    out.trim().to_owned()
}

/// One API call: the status and the JSON body (`Null` when there is none).
async fn call(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = Vec::new();
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let raw = raw_http(port, method, path, &headers, &bytes).await;
    let status: u16 = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {raw}"));
    let text = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(text).unwrap_or(Value::Null))
}

fn today() -> String {
    // The server's days are UTC here (no schedule_timezone in the config).
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    day_from_days(secs / 86_400)
}

fn days_ago(n: u64) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    day_from_days(secs / 86_400 - n)
}

/// Days since 1970-01-01 as `YYYY-MM-DD` (civil-from-days).
fn day_from_days(days: u64) -> String {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn figure<'a>(kpis: &'a Value, key: &str) -> &'a Value {
    kpis["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == key)
        .unwrap_or_else(|| panic!("no figure {key} in {kpis}"))
}

const CONFIG: &str = r#"
[[kpis]]
workspace = "monarch"
key = "sessions_per_download"
name = "Sessions per download"
formula = "app_sessions / downloads"
unit = "ratio"

[[kpis]]
workspace = "hard-life-mode"
key = "post_reach"
name = "Post reach"
source = "folder:soshie/posts.reach@posted"
period = "week"

[[kpis]]
workspace = "lunavo"
key = "visitors"
target = 5000
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_metrics_feed_kpis_once_and_bad_pushes_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("krake.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let ana = token(dir.path(), &config, "ana", "owner", None);
    let bo = token(dir.path(), &config, "bo", "member", Some("monarch"));
    let vi = token(dir.path(), &config, "vi", "viewer", Some("lunavo"));
    let mut cmd = krake(dir.path());
    cmd.arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let (child, port, _logs) = spawn_serve(cmd).await;
    let push = json!({"points": [
        {"name": "visitors", "value": 1200, "at": today(), "key": "v-today"},
        {"name": "visitors", "value": 1000, "at": days_ago(1), "key": "v-yesterday"},
        {"name": "commerce.orders", "value": 30, "at": today(), "key": "o-today"},
    ]});
    let path = "/api/v1/workspaces/lunavo/metrics";
    let (status, body) = call(port, "POST", path, Some(&ana), &push).await;
    assert_eq!(
        (status, &body),
        (200, &json!({"stored": 3, "duplicates": 0}))
    );
    // The same push again (a retried cron job) stores nothing.
    let (status, body) = call(port, "POST", path, Some(&ana), &push).await;
    assert_eq!(
        (status, &body),
        (200, &json!({"stored": 0, "duplicates": 3}))
    );

    // Bad input: refused with the reason, nothing stored.
    for (points, why) in [
        (
            json!([{"name": "Bad Name", "value": 1}]),
            "point 0: `Bad Name` is not a metric name",
        ),
        (
            json!([{"name": "ok", "value": 1}, {"name": "visitors", "value": 1, "at": "yesterday"}]),
            "point 1: `at` `yesterday` is not a time",
        ),
        (
            json!([{"name": "visitors", "value": 1, "at": "2020-01-01"}]),
            "more than 400 days ago",
        ),
        (json!([{"name": "visitors", "value": "12"}]), "expected f64"),
        (
            json!([{"name": "visitors", "value": 1, "colour": "red"}]),
            "colour",
        ),
        (json!([]), "no points"),
        (
            json!(
                (0..1001)
                    .map(|i| json!({"name": "visitors", "value": i}))
                    .collect::<Vec<_>>()
            ),
            "at most 1000",
        ),
    ] {
        let (status, body) = call(port, "POST", path, Some(&ana), &json!({"points": points})).await;
        assert_eq!(status, 400, "{body}");
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(why), "{msg} should say {why}");
    }
    // Another workspace's member, a viewer, and nobody: refused.
    let (status, body) = call(port, "POST", path, Some(&bo), &push).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = call(port, "POST", path, Some(&vi), &push).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("member role"),
        "{body}"
    );
    let (status, _) = call(port, "POST", path, None, &push).await;
    assert_eq!(status, 401);
    let (status, _) = call(
        port,
        "POST",
        "/api/v1/workspaces/nowhere/metrics",
        Some(&ana),
        &push,
    )
    .await;
    assert_eq!(status, 404);

    // The KPIs: visitors today, conversion over the week (30 orders / 2,200 visitors).
    let (status, kpis) = call(
        port,
        "GET",
        "/api/v1/workspaces/lunavo/kpis",
        Some(&ana),
        &Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{kpis}");
    assert_eq!(figure(&kpis, "visitors")["value"], json!(1200.0));
    assert_eq!(figure(&kpis, "visitors")["previous"], json!(1000.0));
    let conv = figure(&kpis, "conversion_rate")["value"].as_f64().unwrap();
    assert!((conv - 100.0 * 30.0 / 2200.0).abs() < 1e-9, "{conv}");

    // Visitors are below their target of 5,000: one notice, however many points follow.
    for i in 0..3 {
        let more = json!({"points": [{"name": "visitors", "value": 10 + i, "at": today()}]});
        assert_eq!(call(port, "POST", path, Some(&ana), &more).await.0, 200);
    }
    let out = chat_with_config(dir.path(), &config, &["/todo lunavo", "/kpi lunavo"]);
    assert_eq!(out.matches("Visitors is off target").count(), 1, "{out}");
    assert!(out.contains("target 5,000 ✗ since"), "{out}");
    assert!(out.contains("Conversion rate"), "{out}");

    // The CLI pushes through the same rules.
    let mut cli = krake(dir.path());
    cli.arg("--config").arg(&config).args([
        "metric",
        "push",
        "lunavo",
        "email_signups",
        "12",
        "--key",
        "e1",
    ]);
    let (ok, out, err) = run(&mut cli);
    assert!(ok && out.contains("stored"), "{out}{err}");
    let (ok, out, _) = run(&mut cli);
    assert!(ok && out.contains("already stored"), "{out}");
    let (ok, _, err) = run(krake(dir.path())
        .arg("--config")
        .arg(&config)
        .args(["metric", "push", "lunavo", "Bad", "1"]));
    assert!(!ok && err.contains("not a metric name"), "{err}");
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn derived_and_folder_kpis_and_an_overview_of_only_what_a_person_may_see() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("krake.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let ana = token(dir.path(), &config, "ana", "owner", None);
    let bo = token(dir.path(), &config, "bo", "member", Some("monarch"));
    let mut cmd = krake(dir.path());
    cmd.arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let (child, port, _logs) = spawn_serve(cmd).await;
    // A division by zero shows no value, never NaN or infinity.
    let push = json!({"points": [
        {"name": "app_sessions", "value": 900, "at": today()},
        {"name": "downloads", "value": 0, "at": today()},
    ]});
    let (status, body) = call(
        port,
        "POST",
        "/api/v1/workspaces/monarch/metrics",
        Some(&bo),
        &push,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (_, kpis) = call(
        port,
        "GET",
        "/api/v1/workspaces/monarch/kpis",
        Some(&bo),
        &Value::Null,
    )
    .await;
    assert_eq!(figure(&kpis, "sessions_per_download")["value"], Value::Null);
    assert_eq!(figure(&kpis, "app_sessions")["value"], json!(900.0));
    let out = chat_with_config(dir.path(), &config, &["/kpi monarch"]);
    assert!(
        out.contains("Sessions per download") && out.contains('—'),
        "{out}"
    );
    assert!(!out.contains("NaN") && !out.contains("inf"), "{out}");

    // A folder KPI: the reach column of Soshie's posts, by the posted column's day.
    let folder = json!({"agent": "soshie", "name": "posts"});
    assert_eq!(
        call(port, "POST", "/api/v1/folders", Some(&ana), &folder)
            .await
            .0,
        201
    );
    for (name, kind) in [("reach", "number"), ("posted", "date")] {
        let col = json!({"name": name, "kind": kind});
        let (status, body) = call(
            port,
            "POST",
            "/api/v1/folders/soshie/posts/columns",
            Some(&ana),
            &col,
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    for (reach, posted) in [
        ("1500", today()),
        ("2500", days_ago(2)),
        ("999", days_ago(20)),
    ] {
        let entry = json!({"values": {"reach": reach, "posted": posted}});
        let (status, body) = call(
            port,
            "POST",
            "/api/v1/folders/soshie/posts/entries",
            Some(&ana),
            &entry,
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let (_, kpis) = call(
        port,
        "GET",
        "/api/v1/workspaces/hard-life-mode/kpis",
        Some(&ana),
        &Value::Null,
    )
    .await;
    let reach = figure(&kpis, "post_reach");
    assert_eq!(reach["value"], json!(4000.0), "this week's posts: {reach}");
    assert_eq!(reach["today"], json!(1500.0));

    // The overview: bo sees monarch only; ana sees every workspace.
    let (status, o) = call(port, "GET", "/api/v1/overview", Some(&bo), &Value::Null).await;
    assert_eq!(status, 200, "{o}");
    let slugs = |o: &Value| -> Vec<String> {
        o["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["board"]["workspace"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(slugs(&o), ["monarch"]);
    let (_, o) = call(port, "GET", "/api/v1/overview", Some(&ana), &Value::Null).await;
    assert_eq!(
        slugs(&o),
        [
            "lunavo",
            "monarch",
            "lunabots",
            "hard-life-mode",
            "management"
        ]
    );
    assert_eq!(o["currency"], "EUR");
    let out = chat_with_config(dir.path(), &config, &["/overview"]);
    assert!(
        out.contains("Revenue, 30 days") && out.contains("fixed rates from the config"),
        "{out}"
    );
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_fills_every_workspace_with_weeks_of_history_marked_as_demo() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("krake.toml");
    std::fs::write(&config, "").unwrap();
    let ana = token(dir.path(), &config, "ana", "owner", None);
    let mut first: Option<Vec<Value>> = None;
    for _ in 0..2 {
        let mut cmd = krake(dir.path());
        cmd.arg("--config")
            .arg(&config)
            .args(["serve", "--demo", "--listen", "127.0.0.1:0"]);
        let (child, port, _logs) = spawn_serve(cmd).await;
        for ws in [
            "lunavo",
            "monarch",
            "hard-life-mode",
            "lunabots",
            "management",
        ] {
            let (status, kpis) = call(
                port,
                "GET",
                &format!("/api/v1/workspaces/{ws}/kpis"),
                Some(&ana),
                &Value::Null,
            )
            .await;
            assert_eq!(status, 200, "{kpis}");
            assert_eq!(kpis["demo"], true, "{ws}: {kpis}");
            for f in kpis["figures"].as_array().unwrap() {
                assert!(f["value"].is_number(), "{ws}: {f}");
                let known = f["trend"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|v| v.is_number())
                    .count();
                assert!(known >= 25, "{ws}: a month of trend: {f}");
            }
        }
        // Started twice, stored once: the demo's keys make it idempotent.
        let (_, monarch) = call(
            port,
            "GET",
            "/api/v1/workspaces/monarch/kpis",
            Some(&ana),
            &Value::Null,
        )
        .await;
        let values: Vec<Value> = monarch["figures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["value"].clone())
            .collect();
        match &first {
            None => first = Some(values),
            Some(before) => assert_eq!(before, &values),
        }
        stop(child);
    }
    let out = chat_with_config(dir.path(), &config, &["/kpi monarch", "/overview"]);
    assert!(out.contains("demo data"), "{out}");
}

/// Waits up to 10 s for `f` to hold.
async fn eventually(mut f: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..100 {
        if f().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binance_portfolio_becomes_the_lunabots_kpi_and_a_trading_key_is_refused() {
    use krake_tests::fake_binance::{
        DOC_API_KEY, DOC_API_SECRET, FakeBinance, FakeBinanceState, balance, price,
    };
    let binance = FakeBinance::start(FakeBinanceState {
        balances: vec![
            balance("BTC", "0.5", "0.1"),
            balance("USDT", "250.00", "0"),
            balance("ETH", "2", "0"),
            balance("NOPE", "10", "0"),
        ],
        prices: vec![price("BTCUSDT", "60000.00"), price("ETHBTC", "0.05")],
        ..FakeBinanceState::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("krake.toml");
    std::fs::write(
        &config,
        format!(
            "[binance]\nbase_url = \"{}\"\npoll_secs = 60\n",
            binance.base_url
        ),
    )
    .unwrap();
    let ana = token(dir.path(), &config, "ana", "owner", None);
    let serve = |dir: &Path| {
        let mut cmd = krake(dir);
        cmd.arg("--config")
            .arg(&config)
            .env("KRAKE_BINANCE_API_KEY", DOC_API_KEY)
            .env("KRAKE_BINANCE_API_SECRET", DOC_API_SECRET)
            .args(["serve", "--listen", "127.0.0.1:0"]);
        cmd
    };
    let (child, port, logs) = spawn_serve(serve(dir.path())).await;
    // 0.6 BTC x 60,000 + 250 USDT + 2 ETH x 0.05 x 60,000; NOPE has no price and is left out.
    let expected = 0.6 * 60_000.0 + 250.0 + 2.0 * 0.05 * 60_000.0;
    let valued = eventually(async || {
        let (_, kpis) = call(
            port,
            "GET",
            "/api/v1/workspaces/lunabots/kpis",
            Some(&ana),
            &Value::Null,
        )
        .await;
        figure(&kpis, "portfolio_value")["value"]
            .as_f64()
            .is_some_and(|v| (v - expected).abs() < 1e-6)
    })
    .await;
    let seen: Vec<String> = logs.try_iter().collect();
    assert!(valued, "the portfolio was not valued: {seen:?}");
    assert!(
        seen.iter().any(|l| l.contains("NOPE")),
        "the unpriced asset is named: {seen:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|l| l.contains(DOC_API_SECRET) || l.contains(DOC_API_KEY)),
        "secrets never print"
    );
    let out = chat_with_config(dir.path(), &config, &["/kpi lunabots"]);
    assert!(
        out.contains("Finance bot (portfolio value)") && out.contains("42,250.00 USDT"),
        "{out}"
    );
    stop(child);
    assert!(
        binance.paths().iter().all(|p| !p.contains("order")),
        "{:?}",
        binance.paths()
    );

    // A key that can trade: refused before any balance is read, nothing stored.
    let mut trading = krake_tests::fake_binance::read_only_restrictions();
    trading["enableSpotAndMarginTrading"] = json!(true);
    binance.set_restrictions(trading);
    let fresh = tempfile::tempdir().unwrap();
    let ana = token(fresh.path(), &config, "ana", "owner", None);
    let before = binance.paths().len();
    let (child, port, logs) = spawn_serve(serve(fresh.path())).await;
    let refused = eventually(async || {
        logs.try_iter()
            .any(|l| l.contains("not read-only") && l.contains("enableSpotAndMarginTrading"))
    })
    .await;
    assert!(refused, "a trading key is refused with the reason");
    let asked: Vec<String> = binance.paths()[before..].to_vec();
    assert!(
        !asked.iter().any(|p| p.contains("/api/v3/account")),
        "no balance read: {asked:?}"
    );
    let (_, kpis) = call(
        port,
        "GET",
        "/api/v1/workspaces/lunabots/kpis",
        Some(&ana),
        &Value::Null,
    )
    .await;
    assert_eq!(figure(&kpis, "portfolio_value")["value"], Value::Null);
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_reads_every_kpi_of_its_workspace() {
    use krake_tests::fake_openai::{Answer, FakeOpenAi};
    let fake = FakeOpenAi::start(vec![
        Answer::Tools(vec![("get_kpis".into(), "{}".into())]),
        Answer::reply("Visitors are at 1,200 today.", 0.95),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("krake.toml");
    std::fs::write(
        &config,
        format!(
            "[[llm.providers]]\nname = \"fake\"\nbase_url = \"{}\"\nmodels = [\"fake-model\"]\n",
            fake.base_url
        ),
    )
    .unwrap();
    let (ok, _, err) = run(krake(dir.path())
        .arg("--config")
        .arg(&config)
        .args(["metric", "push", "lunavo", "visitors", "1200"]));
    assert!(ok, "{err}");
    let mut cmd = krake(dir.path());
    cmd.arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let (child, _port, _logs) = spawn_serve(cmd).await;
    let out = chat_with_config(
        dir.path(),
        &config,
        &["ask penn how many visitors lunavo had today"],
    );
    assert!(out.contains("Penn is on it"), "{out}");
    let answered = eventually(async || fake.requests().len() >= 2).await;
    assert!(answered, "the run never called the model twice");
    let second = fake.requests()[1].to_string();
    assert!(
        second.contains("Lunavo KPIs") && second.contains("Visitors") && second.contains("1,200"),
        "{second}"
    );
    stop(child);
}
