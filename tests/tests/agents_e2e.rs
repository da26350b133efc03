//! Agents in the real `krake serve` against the local OpenAI-compatible fake: `ask` in chat
//! queues a run, the server is killed with SIGKILL while the model is answering, and after a
//! restart the run resumes and ends in the inbox, charged in the ledger and shown by
//! `GET /api/v1/costs` and `/costs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_tests::fake_openai::{Answer, FakeOpenAi};
use krake_tests::{krake, run};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn config(dir: &Path, base_url: &str) -> PathBuf {
    let cfg = dir.join("krake.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[llm]
timeout_secs = 60
max_retries = 0

[[llm.providers]]
name = "fake"
base_url = "{base_url}"
models = ["fake-model"]
input_price_per_million = 2.5
output_price_per_million = 10.0

[agent_runs]
lease_secs = 2

[budgets.workspaces]
lunavo = 5.0
"#
        ),
    )
    .unwrap();
    cfg
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start(dir: &Path, cfg: &Path, port: u16) -> Child {
    let mut child = krake(dir)
        .arg("--config")
        .arg(cfg)
        .env("KRAKE_LOG", "warn")
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    krake_tests::listening_port(&mut child);
    child
}

fn get(port: u16, path: &str, token: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = out.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

fn query(dir: &Path, sql: &str) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store =
            krake_store::Store::open(&krake_store::Store::sqlite_url(&dir.join("krake.db")))
                .await
                .unwrap();
        let v: String = sqlx::query_scalar(sql)
            .fetch_one(store.pool())
            .await
            .unwrap();
        store.pool().close().await;
        v
    })
}

/// `krake chat` with the config, one line in, its output.
fn chat_with(dir: &Path, cfg: &Path, line: &str) -> String {
    let out = krake(dir)
        .arg("--config")
        .arg(cfg)
        .arg("chat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            writeln!(c.stdin.take().unwrap(), "{line}")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_run_killed_mid_call_resumes_after_restart_and_is_charged() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The first call hangs (the process is killed during it); the resumed run gets an answer.
    let fake = rt.block_on(FakeOpenAi::start(vec![
        Answer::Slow(
            Duration::from_secs(120),
            Box::new(Answer::reply("never", 0.9)),
        ),
        Answer::reply("Glow in the dark, sleep in comfort.", 0.92),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &fake.base_url);
    let port = free_port();
    let mut server = start(dir.path(), &cfg, port);
    let out = chat_with(
        dir.path(),
        &cfg,
        "ask penn to draft a tagline for the hoodie",
    );
    assert!(out.contains("Penn is on it (run 1"), "{out}");
    // Wait until the model is answering, then kill -9.
    let deadline = Instant::now() + Duration::from_secs(20);
    while fake.requests().is_empty() {
        assert!(Instant::now() < deadline, "the run never called the model");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        query(dir.path(), "SELECT status FROM agent_runs WHERE id = 1"),
        "running"
    );
    server.kill().unwrap();
    server.wait().unwrap();
    // Restart: after the 2 s lease the run is claimed again and finishes.
    let mut server = start(dir.path(), &cfg, port);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = query(dir.path(), "SELECT status FROM agent_runs WHERE id = 1");
        if status == "done" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the run was not resumed: {status}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        query(
            dir.path(),
            "SELECT CAST(attempts AS TEXT) FROM agent_runs WHERE id = 1"
        ),
        "2"
    );
    assert!(
        query(
            dir.path(),
            "SELECT group_concat(kind, ',') FROM agent_run_steps WHERE run_id = 1"
        )
        .contains("resumed")
    );
    assert!(
        query(
            dir.path(),
            "SELECT body FROM threads WHERE kind = 'notice' AND agent = 'Penn'"
        )
        .contains("Glow in the dark")
    );
    // Charged: 120 prompt tokens at $2.5/M + 30 at $10/M = 600 micro-dollars.
    assert_eq!(
        query(
            dir.path(),
            "SELECT CAST(SUM(cost_micros) AS TEXT) FROM model_calls"
        ),
        "600"
    );
    let (ok, _, err) = run(krake(dir.path()).args(["user", "add", "ana", "--role", "owner"]));
    assert!(ok, "{err}");
    let (ok, token, _) = run(krake(dir.path()).args(["user", "token", "ana"]));
    assert!(ok);
    let (status, body) = get(port, "/api/v1/costs?workspace=lunavo", token.trim());
    assert_eq!(status, 200, "{body}");
    let r: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(r["total"]["cost_micros"], 600, "{body}");
    assert_eq!(r["by_agent"]["Penn"]["calls"], 1, "{body}");
    let (status, _) = get(port, "/api/v1/costs", "krk_wrong");
    assert_eq!(status, 401);
    let (status, _) = get(port, "/api/v1/costs?month=2026-13", token.trim());
    assert_eq!(status, 404);
    let costs = chat_with(dir.path(), &cfg, "/costs lunavo");
    assert!(costs.contains("$0.0006"), "{costs}");
    assert!(costs.contains("of $5.00 budget"), "{costs}");
    // /metrics of the process that finished the run: the run by agent and status, the call's
    // tokens and cost by provider and model.
    let (status, m) = get(port, "/metrics", "");
    assert_eq!(status, 200, "{m}");
    let series = |name: &str| -> Vec<(String, String)> {
        m.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
            .filter_map(|l| l.rsplit_once(' '))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    let runs = series("krake_agent_runs_total");
    assert!(
        runs.iter().any(|(k, v)| k.contains(r#"agent="Penn""#)
            && k.contains(r#"status="done""#)
            && v == "1"),
        "{m}"
    );
    let tokens = series("krake_model_tokens_total");
    for (kind, n) in [("input", "120"), ("output", "30")] {
        assert!(
            tokens.iter().any(|(k, v)| k.contains(r#"provider="fake""#)
                && k.contains(r#"model="fake-model""#)
                && k.contains(&format!(r#"kind="{kind}""#))
                && v == n),
            "{kind} tokens: {m}"
        );
    }
    let cost = series("krake_model_cost_microdollars_total");
    assert!(
        cost.iter().any(|(k, v)| k.contains(r#"provider="fake""#)
            && k.contains(r#"model="fake-model""#)
            && v == "600"),
        "{m}"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn a_due_schedule_becomes_an_agent_run() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(FakeOpenAi::start(vec![]));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &fake.base_url);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str(
        "\n[schedules.digest]\nagent = \"dexter\"\ntask = \"summarise today's sales\"\nwhen = \"cron */2 * * * * *\"\n",
    );
    std::fs::write(&cfg, text).unwrap();
    let mut server = start(dir.path(), &cfg, free_port());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = query(
            dir.path(),
            "SELECT CAST(COUNT(*) AS TEXT) FROM agent_runs WHERE trigger_kind = 'schedule' AND status = 'done' AND agent = 'Dexter' AND task = 'summarise today''s sales'",
        );
        if done != "0" {
            break;
        }
        assert!(Instant::now() < deadline, "no scheduled run finished");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The occurrence's question thread names the run and is answered.
    assert!(
        query(
            dir.path(),
            "SELECT text FROM thread_replies ORDER BY id LIMIT 1"
        )
        .contains("Dexter is on it (run ")
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn a_shop_event_rule_becomes_an_agent_run() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fake = rt.block_on(FakeOpenAi::start(vec![]));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &fake.base_url);
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[shopify.shops]\n\"lunavo.myshopify.com\" = \"lunavo\"\n");
    std::fs::write(&cfg, text).unwrap();
    let port = free_port();
    let mut server = {
        let mut child = krake(dir.path())
            .arg("--config")
            .arg(&cfg)
            .env("KRAKE_SHOPIFY_WEBHOOK_SECRET", "event-secret")
            .env("KRAKE_LOG", "warn")
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        while !lines.next().unwrap().unwrap().contains("Krake is running") {}
        std::thread::spawn(move || for _ in lines {});
        child
    };
    let body = br##"{"id":820982911946154508,"name":"#1042","created_at":"2026-11-24T10:00:00+01:00","updated_at":"2026-11-24T10:00:00+01:00","currency":"EUR","total_price":"45.00","financial_status":"paid","email":"ana@example.com"}"##;
    let sig = krake_commerce::shopify::sign(b"event-secret", body);
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /webhooks/shopify HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nX-Shopify-Hmac-Sha256: {sig}\r\nX-Shopify-Topic: orders/create\r\nX-Shopify-Shop-Domain: lunavo.myshopify.com\r\nX-Shopify-Webhook-Id: ev-1\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = query(
            dir.path(),
            "SELECT CAST(COUNT(*) AS TEXT) FROM agent_runs WHERE trigger_kind = 'event' AND agent = 'Cassie' AND status = 'done'",
        );
        if done == "1" {
            break;
        }
        assert!(Instant::now() < deadline, "the event's run did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
    let first = &fake.requests()[0];
    assert!(
        first["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("#1042"),
        "the task carries the event: {first}"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn offline_ask_answers_from_what_krake_ingest_put_in_and_only_in_its_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(
        docs.join("returns.md"),
        "# Returns\n\nLunavo refunds hoodies within 30 days of delivery.\n",
    )
    .unwrap();
    let (ok, out, err) = run(krake(dir.path())
        .arg("ingest")
        .arg(&docs)
        .args(["--workspace", "lunavo"]));
    assert!(ok, "{out}{err}");
    // No provider is configured: `ask` answers from the knowledge base alone, with a citation.
    let out = krake_tests::chat(dir.path(), &["ask cassie how long do refunds take?"]);
    assert!(out.contains("Offline answer"), "{out}");
    assert!(out.contains("refunds hoodies within 30 days"), "{out}");
    assert!(out.contains("returns.md §1"), "{out}");
    // Milli works in monarch first: lunavo's knowledge stays out.
    let out = krake_tests::chat(dir.path(), &["ask milli how long do refunds take?"]);
    assert!(!out.contains("refunds hoodies"), "{out}");
    assert!(out.contains("monarch has nothing on this"), "{out}");
}
