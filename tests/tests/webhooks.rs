//! Webhooks against the real `krake serve`: a burst of 10,000 Shopify deliveries from clients
//! that retry until they get 200 (as Shopify does), with `kill -9` in the middle; afterwards
//! every webhook is processed exactly once and the KPIs match. Plus the KPI API and `/kpi`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_tests::{chat, krake, run};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const SECRET: &str = "burst-secret";

fn config(dir: &Path, top: &str) -> std::path::PathBuf {
    let cfg = dir.join("krake.toml");
    std::fs::write(
        &cfg,
        format!("{top}[shopify.shops]\n\"lunavo.myshopify.com\" = \"lunavo\"\n"),
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

fn start(dir: &Path, port: u16) -> Child {
    start_with(dir, port, "")
}

/// Starts `krake serve` with `top` (settings lines) above the shop table of its config.
fn start_with(dir: &Path, port: u16, top: &str) -> Child {
    let mut child = krake(dir)
        .arg("--config")
        .arg(config(dir, top))
        .env("KRAKE_SHOPIFY_WEBHOOK_SECRET", SECRET)
        .env("KRAKE_LOG", "warn")
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    krake_tests::listening_port(&mut child);
    child
}

/// One HTTP/1.1 request on a fresh connection; the status code, or None on any I/O failure.
fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

fn order_body(i: usize) -> Vec<u8> {
    format!(
        r##"{{"id":{},"name":"#{i}","created_at":"2026-11-24T10:{:02}:00+01:00","updated_at":"2026-11-24T10:{:02}:00+01:00","currency":"EUR","total_price":"{}.{:02}","financial_status":"paid","email":"c{i}@example.com"}}"##,
        900_000_000_000_000_000u64 + i as u64,
        i % 60,
        i % 60,
        10 + i % 7,
        i % 100
    )
    .into_bytes()
}

fn sign(body: &[u8]) -> String {
    krake_commerce::shopify::sign(SECRET.as_bytes(), body)
}

fn deliver_until_ok(port: u16, i: usize) {
    let body = order_body(i);
    let headers = [
        ("X-Shopify-Hmac-Sha256", sign(&body)),
        ("X-Shopify-Topic", "orders/create".to_owned()),
        ("X-Shopify-Shop-Domain", "lunavo.myshopify.com".to_owned()),
        ("X-Shopify-Webhook-Id", format!("burst-{i}")),
        ("Content-Type", "application/json".to_owned()),
    ];
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some((200, _)) = request(port, "POST", "/webhooks/shopify", &headers, &body) {
            return;
        }
        assert!(Instant::now() < deadline, "webhook {i} never got a 200");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn sqlite_count(dir: &Path, sql: &str) -> i64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store =
            krake_store::Store::open(&krake_store::Store::sqlite_url(&dir.join("krake.db")))
                .await
                .unwrap();
        let n: i64 = sqlx::query_scalar(sql)
            .fetch_one(store.pool())
            .await
            .unwrap();
        store.pool().close().await;
        n
    })
}

#[test]
fn a_burst_survives_kill_9_and_is_processed_exactly_once() {
    const N: usize = 10_000;
    const CLIENTS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start(dir.path(), port);
    let acked = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let acked = acked.clone();
            std::thread::spawn(move || {
                for i in (c..N).step_by(CLIENTS) {
                    deliver_until_ok(port, i);
                    acked.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    while acked.load(Ordering::SeqCst) < N / 3 {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill().unwrap(); // SIGKILL, mid-burst
    server.wait().unwrap();
    let at_kill = acked.load(Ordering::SeqCst);
    assert!(at_kill < N, "the kill came during the burst");
    let mut server = start(dir.path(), port);
    for c in clients {
        c.join().unwrap();
    }
    // Wait for the processor to apply everything.
    let deadline = Instant::now() + Duration::from_secs(90);
    while sqlite_count(
        dir.path(),
        "SELECT COUNT(*) FROM inbound WHERE source = 'shopify' AND processed_at IS NULL",
    ) > 0
    {
        assert!(Instant::now() < deadline, "processing did not finish");
        std::thread::sleep(Duration::from_millis(200));
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let n = N as i64;
    assert_eq!(
        sqlite_count(
            dir.path(),
            "SELECT COUNT(*) FROM inbound WHERE source = 'shopify'"
        ),
        n,
        "every webhook stored once"
    );
    assert_eq!(
        sqlite_count(dir.path(), "SELECT COUNT(*) FROM commerce_orders"),
        n
    );
    assert_eq!(
        sqlite_count(dir.path(), "SELECT SUM(orders) FROM kpi_daily"),
        n,
        "the KPIs count each order once"
    );
    let expected: i64 = (0..N).map(|i| ((10 + i % 7) * 100 + i % 100) as i64).sum();
    assert_eq!(
        sqlite_count(dir.path(), "SELECT SUM(revenue_minor) FROM kpi_daily"),
        expected,
        "revenue adds up"
    );
    assert_eq!(
        sqlite_count(
            dir.path(),
            "SELECT COUNT(*) FROM threads WHERE kind = 'approval'"
        ),
        n,
        "one thank-you thread per order, none twice"
    );
}

#[test]
fn an_intake_replica_stores_webhooks_and_another_process_applies_them() {
    const N: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut intake = start_with(dir.path(), port, "commerce_workers = 0\n");
    for i in 0..N {
        deliver_until_ok(port, i);
    }
    // An applying process would have taken them within milliseconds; this one leaves them.
    std::thread::sleep(Duration::from_millis(1500));
    let count = |sql: &str| sqlite_count(dir.path(), sql);
    assert_eq!(
        count("SELECT COUNT(*) FROM inbound WHERE source = 'shopify'"),
        N as i64
    );
    assert_eq!(
        count("SELECT COUNT(*) FROM inbound WHERE processed_at IS NOT NULL"),
        0,
        "the intake replica stores and does not apply"
    );
    assert_eq!(count("SELECT COUNT(*) FROM commerce_orders"), 0);
    intake.kill().unwrap();
    intake.wait().unwrap();

    let mut worker = start(dir.path(), port);
    let deadline = Instant::now() + Duration::from_secs(60);
    while count("SELECT COUNT(*) FROM inbound WHERE processed_at IS NULL") > 0 {
        assert!(
            Instant::now() < deadline,
            "the stored backlog was not applied"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    worker.kill().unwrap();
    worker.wait().unwrap();
    assert_eq!(count("SELECT COUNT(*) FROM commerce_orders"), N as i64);
    assert_eq!(count("SELECT SUM(orders) FROM kpi_daily"), N as i64);
}

#[test]
fn kpis_in_chat_and_over_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start(dir.path(), port);
    for i in 0..3 {
        deliver_until_ok(port, i);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while sqlite_count(dir.path(), "SELECT COUNT(*) FROM commerce_orders") < 3 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    let (ok, out, _) = run(krake(dir.path()).args([
        "user",
        "add",
        "ana",
        "--role",
        "viewer",
        "--workspace",
        "lunavo",
    ]));
    assert!(ok, "{out}");
    let (ok, token, _) = run(krake(dir.path()).args(["user", "token", "ana"]));
    assert!(ok);
    let token = token.trim().to_owned();
    assert!(token.starts_with("krk_"));
    let auth = [("Authorization", format!("Bearer {token}"))];
    let (status, body) =
        request(port, "GET", "/api/v1/workspaces/lunavo/kpis", &auth, b"").unwrap();
    assert_eq!(status, 200, "{body}");
    let k: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(k["days"][0]["orders"], 3, "{body}");
    assert_eq!(k["days"][0]["day"], "2026-11-24");
    let (status, body) = request(port, "GET", "/api/v1/workspaces/lunavo/kpis", &[], b"").unwrap();
    assert_eq!(status, 401);
    let err: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(err["error"]["code"], "unauthenticated", "{body}");
    let (status, _) = request(port, "GET", "/api/v1/workspaces/monarch/kpis", &auth, b"").unwrap();
    assert_eq!(status, 403, "a lunavo viewer may not see monarch");
    let (status, _) = request(port, "GET", "/api/v1/workspaces/narnia/kpis", &auth, b"").unwrap();
    assert_eq!(status, 404);
    let out = chat(dir.path(), &["/kpi lunavo"]);
    assert!(
        out.contains("Lunavo") && out.contains("orders") && out.contains("EUR"),
        "{out}"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}
