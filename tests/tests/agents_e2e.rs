//! Agents in the real `krake serve` against the local OpenAI-compatible fake: `ask` in chat
//! queues a run, the server is killed with SIGKILL while the model is answering, and after a
//! restart the run resumes and ends in the inbox, charged in the ledger and shown by
//! `GET /api/v1/costs` and `/costs`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_tests::fake_openai::{Answer, FakeOpenAi};
use krake_tests::fake_shopify::FakeShopify;
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

/// Polls `ask` until its answer contains `want` (a pass of `krake serve` may hold the embedded
/// knowledge base for a moment, and `ask` then says it is busy).
fn ask_until(dir: &Path, line: &str, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = krake_tests::chat(dir, &[line]);
        if out.contains(want) || Instant::now() > deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn threads_and_folders_become_knowledge_through_ingest_store_and_serve() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = run(krake(dir.path()).arg("demo"));
    assert!(ok, "{out}{err}");
    let out = krake_tests::chat(
        dir.path(),
        &[
            "/folder create soshie suppliers",
            "/folder addcol soshie suppliers note text",
            "/folder add soshie suppliers note=\"Glow ink comes from Lumiprint in Porto\"",
        ],
    );
    assert!(!out.contains("Error") && !out.contains("error"), "{out}");
    let (ok, out, err) = run(krake(dir.path()).args(["ingest", "--store"]));
    assert!(ok, "{out}{err}");
    // Eight demo threads; Soshie's folder in each of her three workspaces.
    assert!(
        out.contains("8 threads and 3 folder documents written, 0 removed"),
        "{out}"
    );
    let out = krake_tests::chat(
        dir.path(),
        &["ask cassie was the torn print damaged in transit?"],
    );
    assert!(out.contains("Offline answer"), "{out}");
    assert!(
        out.contains("Gelato confirms the parcel was damaged in transit"),
        "{out}"
    );
    assert!(out.contains("thread #"), "the thread is cited: {out}");
    let out = krake_tests::chat(
        dir.path(),
        &["ask soshie where does the glow ink come from?"],
    );
    assert!(out.contains("Lumiprint in Porto"), "{out}");
    assert!(
        out.contains("Soshie/suppliers"),
        "the folder is cited: {out}"
    );
    // Monarch (Milli's first workspace) has no demo thread about the print.
    let out = krake_tests::chat(
        dir.path(),
        &["ask milli was the torn print damaged in transit?"],
    );
    assert!(!out.contains("torn print"), "{out}");
    // Nothing changed (the tasks those asks filed hold only their questions and stay out):
    // nothing is written again.
    let (ok, out, err) = run(krake(dir.path()).args(["ingest", "--store"]));
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("0 threads and 0 folder documents written, 0 removed"),
        "{out}"
    );

    // `krake serve` syncs on its own: a reply added while it runs becomes knowledge.
    let cfg = dir.path().join("krake.toml");
    std::fs::write(&cfg, "[rag]\nsync_interval_secs = 1\n").unwrap();
    let mut server = start(dir.path(), &cfg, free_port());
    let out = krake_tests::chat_with_config(
        dir.path(),
        &cfg,
        &["/reply 2 The courier agreed to refund the postage for the torn print"],
    );
    assert!(!out.contains("rror"), "{out}");
    let out = ask_until(
        dir.path(),
        "ask cassie who refunds the postage for the torn print?",
        "courier agreed to refund the postage",
    );
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(
        out.contains("courier agreed to refund the postage"),
        "{out}"
    );
}

// ---- Executing approved actions against the local fake of Shopify's Admin API ----

const SHOP_TOKEN: &str = "shpat_fake_admin_token_0123456789";

fn proposal(action: serde_json::Value, confidence: f64) -> Answer {
    Answer::Tools(vec![(
        "request_approval".into(),
        serde_json::json!({"summary": "As asked", "confidence": confidence, "action": action})
            .to_string(),
    )])
}

struct ShopWorld {
    _rt: tokio::runtime::Runtime,
    _openai: FakeOpenAi,
    shop: FakeShopify,
    dir: tempfile::TempDir,
    cfg: PathBuf,
    env: Vec<(String, String)>,
}

impl ShopWorld {
    /// `krake serve` with the model proposing `action` for `agent`; the run is left awaiting
    /// approval and the server stopped (the approval is then decided from `krake chat`).
    fn proposed(agent: &str, task: &str, action: serde_json::Value, token: &str) -> (Self, String) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let openai = rt.block_on(FakeOpenAi::start(vec![proposal(action, 0.95)]));
        let shop = rt.block_on(FakeShopify::start(
            SHOP_TOKEN,
            "EUR",
            9_007_199_254_740_995,
            "shopify_payments",
            "120.00",
        ));
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &openai.base_url);
        let env = vec![
            ("KRAKE_SHOPIFY_ADMIN_URL".to_owned(), shop.base_url.clone()),
            (
                "KRAKE_SHOPIFY_ADMIN_TOKEN_LUNAVO".to_owned(),
                token.to_owned(),
            ),
        ];
        let w = ShopWorld {
            _rt: rt,
            _openai: openai,
            shop,
            dir,
            cfg,
            env,
        };
        let port = free_port();
        let mut server = krake(w.dir.path())
            .arg("--config")
            .arg(&w.cfg)
            .envs(w.env.iter().cloned())
            .env("KRAKE_LOG", "warn")
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        krake_tests::listening_port(&mut server);
        let out = w.chat(&format!("ask {agent} to {task}"));
        assert!(out.contains("is on it (run 1"), "{out}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let s = query(w.dir.path(), "SELECT status FROM agent_runs WHERE id = 1");
            if s == "awaiting_approval" {
                break;
            }
            assert!(Instant::now() < deadline, "run stuck in {s}");
            std::thread::sleep(Duration::from_millis(50));
        }
        server.kill().unwrap();
        server.wait().unwrap();
        let thread = query(
            w.dir.path(),
            "SELECT CAST(thread_id AS TEXT) FROM agent_runs WHERE id = 1",
        );
        (w, thread)
    }

    fn chat(&self, line: &str) -> String {
        let out = krake(self.dir.path())
            .arg("--config")
            .arg(&self.cfg)
            .envs(self.env.iter().cloned())
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

    fn q(&self, sql: &str) -> String {
        query(self.dir.path(), sql)
    }
}

#[test]
fn an_approved_refund_is_carried_out_in_shopify_once_with_exact_ids() {
    let (w, thread) = ShopWorld::proposed(
        "cassie",
        "refund 45 EUR on order 9007199254740993",
        serde_json::json!({"type": "refund", "order_id": "9007199254740993", "amount_minor": 4500, "currency": "EUR"}),
        SHOP_TOKEN,
    );
    assert!(w.shop.requests().is_empty(), "nothing before approval");
    let out = w.chat(&format!("/approve {thread}"));
    assert!(
        out.contains(
            "Done: refunded 45.00 EUR on order 9007199254740993 in Shopify (refund 929361467)"
        ),
        "{out}"
    );
    let reqs = w.shop.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(
        reqs[0].path,
        "/admin/api/2024-10/orders/9007199254740993/refunds/calculate.json"
    );
    assert_eq!(
        reqs[1].path,
        "/admin/api/2024-10/orders/9007199254740993/refunds.json"
    );
    let body = &reqs[1].body;
    // The calculated transaction's id, digit for digit (beyond 2^53).
    assert!(body.contains(r#""parent_id":9007199254740995"#), "{body}");
    assert!(body.contains(r#""amount":"45.00""#), "{body}");
    assert!(body.contains(r#""kind":"refund""#), "{body}");
    assert!(body.contains(r#""gateway":"shopify_payments""#), "{body}");
    assert_eq!(w.q("SELECT status FROM agent_runs WHERE id = 1"), "done");
    let replied = w.q(&format!(
        "SELECT text FROM thread_replies WHERE thread_id = {thread} ORDER BY id DESC LIMIT 1"
    ));
    assert!(replied.starts_with("Done: refunded 45.00 EUR"), "{replied}");
    // Approving again moves no money.
    w.chat(&format!("/approve {thread}"));
    assert_eq!(w.shop.requests().len(), 2);
}

#[test]
fn an_approved_price_change_updates_the_variant_in_shopify() {
    let (w, thread) = ShopWorld::proposed(
        "commet",
        "set the hoodie to 39 EUR",
        serde_json::json!({"type": "change_price", "product": "variant:9007199254740997", "price_minor": 3900, "currency": "EUR"}),
        SHOP_TOKEN,
    );
    let out = w.chat(&format!("/approve {thread}"));
    assert!(
        out.contains("Done: price of variant 9007199254740997 set to 39.00 EUR in Shopify"),
        "{out}"
    );
    let reqs = w.shop.requests();
    assert_eq!(reqs.len(), 2, "{reqs:?}");
    assert_eq!(
        (reqs[0].method.as_str(), reqs[0].path.as_str()),
        ("GET", "/admin/api/2024-10/shop.json")
    );
    assert_eq!(reqs[1].method, "PUT");
    assert_eq!(
        reqs[1].path,
        "/admin/api/2024-10/variants/9007199254740997.json"
    );
    assert!(
        reqs[1].body.contains(r#""id":9007199254740997"#),
        "{}",
        reqs[1].body
    );
    assert!(
        reqs[1].body.contains(r#""price":"39.00""#),
        "{}",
        reqs[1].body
    );
    assert_eq!(w.q("SELECT status FROM agent_runs WHERE id = 1"), "done");
}

#[test]
fn a_refund_shopify_refuses_with_401_fails_escalates_and_is_not_retried() {
    let (w, thread) = ShopWorld::proposed(
        "cassie",
        "refund 45 EUR on order 450789469",
        serde_json::json!({"type": "refund", "order_id": "450789469", "amount_minor": 4500, "currency": "EUR"}),
        "shpat_wrong_token",
    );
    let out = w.chat(&format!("/approve {thread}"));
    assert!(out.contains("Executing failed"), "{out}");
    assert!(out.contains("401"), "{out}");
    assert!(!out.contains("shpat_"), "the token never shows: {out}");
    assert_eq!(w.shop.requests().len(), 1, "stopped at the calculation");
    assert_eq!(w.q("SELECT status FROM agent_runs WHERE id = 1"), "failed");
    assert_eq!(
        w.q("SELECT CAST(COUNT(*) AS TEXT) FROM threads WHERE kind = 'escalation' AND title LIKE 'Approved but not done%'"),
        "1"
    );
    w.chat(&format!("/approve {thread}"));
    assert_eq!(w.shop.requests().len(), 1, "no second attempt");
}

#[test]
fn a_refund_shopify_rejects_with_422_shows_why_and_is_not_retried() {
    let (w, thread) = ShopWorld::proposed(
        "cassie",
        "refund 45 EUR on order 450789469",
        serde_json::json!({"type": "refund", "order_id": "450789469", "amount_minor": 4500, "currency": "EUR"}),
        SHOP_TOKEN,
    );
    w.shop.fail_writes(
        serde_json::json!({"base": ["Refund amount cannot exceed the refundable amount"]}),
    );
    let out = w.chat(&format!("/approve {thread}"));
    assert!(out.contains("422"), "{out}");
    assert!(out.contains("cannot exceed the refundable amount"), "{out}");
    assert_eq!(w.shop.requests().len(), 2);
    assert_eq!(w.q("SELECT status FROM agent_runs WHERE id = 1"), "failed");
    let replied = w.q(&format!(
        "SELECT text FROM thread_replies WHERE thread_id = {thread} ORDER BY id DESC LIMIT 1"
    ));
    assert!(replied.starts_with("Executing failed"), "{replied}");
    assert_eq!(
        w.q("SELECT CAST(COUNT(*) AS TEXT) FROM threads WHERE kind = 'escalation'"),
        "1"
    );
    w.chat(&format!("/approve {thread}"));
    assert_eq!(w.shop.requests().len(), 2, "no second attempt");
}

#[test]
fn an_approved_post_is_delivered_to_the_workspace_chat_labelled_to_publish_by_hand() {
    let (w, thread) = ShopWorld::proposed(
        "soshie",
        "post the hoodie launch",
        serde_json::json!({"type": "publish_post", "channel": "instagram", "text": "Meet the moon hoodie."}),
        SHOP_TOKEN,
    );
    let out = w.chat(&format!("/approve {thread}"));
    assert!(out.contains("for a person to publish"), "{out}");
    let queued = w.q(
        "SELECT CAST(COUNT(*) AS TEXT) FROM outbox WHERE payload LIKE '%Post to publish on instagram%Meet the moon hoodie.%'",
    );
    assert_ne!(queued, "0", "delivered through the outbox");
    assert_eq!(w.q("SELECT status FROM agent_runs WHERE id = 1"), "done");
}
