//! Gelato signs no webhook, so `krake serve` confirms a status that makes it act (a cancelled
//! or failed order opens an escalation) with Gelato's Order API before acting. These tests run
//! the real binary against a local fake of that API (`GET /v4/orders/{id}`, `X-API-KEY`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use krake_tests::krake;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "gelato-path-token-5be1c0a7d9";
const API_KEY: &str = "gelato-api-key-71f0c2d4";

/// What the fake answers per order: a queue of (status code, fulfillmentStatus) answers (the
/// last one repeats), and the calls it got.
#[derive(Default)]
struct Orders {
    answers: HashMap<String, Vec<(u16, &'static str)>>,
    calls: Vec<(String, Option<String>)>,
}

type Shared = Arc<Mutex<Orders>>;

async fn get_order(
    State(orders): State<Shared>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> (StatusCode, axum::Json<Value>) {
    let mut o = orders.lock().unwrap();
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    o.calls.push((id.clone(), key.clone()));
    if key.as_deref() != Some(API_KEY) {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"message": "invalid api key"})),
        );
    }
    let answers = o.answers.entry(id.clone()).or_default();
    let (code, status) = match answers.len() {
        0 => (404, ""),
        1 => answers[0],
        _ => answers.remove(0),
    };
    let body = if code == 200 {
        json!({"id": id, "orderType": "order", "orderReferenceId": "r-1", "fulfillmentStatus": status, "financialStatus": "paid", "currency": "EUR"})
    } else {
        json!({"message": "no"})
    };
    (StatusCode::from_u16(code).unwrap(), axum::Json(body))
}

fn start_fake(rt: &tokio::runtime::Runtime, orders: Shared) -> String {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/v4/orders/{id}", get(get_order))
        .with_state(orders);
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

fn serve(dir: &Path, api_url: &str) -> (Child, u16, Arc<Mutex<String>>) {
    let cfg = dir.join("krake.toml");
    std::fs::write(
        &cfg,
        format!(
            "commerce_lease_secs = 1\n\n[gelato]\napi_url = \"{api_url}\"\n\n[gelato.tokens]\nlunavo = \"{TOKEN}\"\n"
        ),
    )
    .unwrap();
    let mut child = krake(dir)
        .arg("--config")
        .arg(&cfg)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KRAKE_GELATO_API_KEY", API_KEY)
        .env("KRAKE_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let log = Arc::new(Mutex::new(String::new()));
    let port = loop {
        let line = lines.next().expect("serve exited early").unwrap();
        log.lock().unwrap().push_str(&line);
        if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
            break rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap();
        }
    };
    let l = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let mut l = l.lock().unwrap();
            l.push_str(&line);
            l.push('\n');
        }
    });
    (child, port, log)
}

fn webhook(port: u16, id: &str, order: &str, status: &str) -> u16 {
    let body = json!({"id": id, "event": "order_status_updated", "orderId": order, "storeId": null,
        "orderReferenceId": format!("ref-{order}"), "fulfillmentStatus": status, "items": []})
    .to_string();
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "POST /webhooks/gelato/{TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split(' ').nth(1).unwrap().parse().unwrap()
}

fn query(dir: &Path, sql: &str) -> Vec<String> {
    let url = krake_store::Store::sqlite_url(&dir.join("krake.db"));
    let sql = sql.to_owned();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async move {
            let store = krake_store::Store::open(&url).await.unwrap();
            let rows: Vec<String> = sqlx::query_scalar(&sql)
                .fetch_all(store.pool())
                .await
                .unwrap();
            store.pool().close().await;
            rows
        })
}

fn processed(dir: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = query(
            dir,
            "SELECT CAST(COUNT(*) AS TEXT) FROM inbound WHERE source = 'gelato' AND processed_at IS NULL",
        );
        let all = query(
            dir,
            "SELECT CAST(COUNT(*) AS TEXT) FROM inbound WHERE source = 'gelato'",
        );
        if left == ["0"] && all == [n.to_string()] {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "gelato events not processed: {left:?} of {all:?} left"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn statuses_that_make_krake_act_are_confirmed_with_gelato_first() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let orders: Shared = Arc::default();
    {
        let mut o = orders.lock().unwrap();
        // The webhook says cancelled; Gelato says it shipped (a stale or forged event).
        o.answers.insert("o-stale".into(), vec![(200, "shipped")]);
        // Really failed.
        o.answers.insert("o-failed".into(), vec![(200, "failed")]);
        // Gelato is down once, then confirms the cancellation.
        o.answers
            .insert("o-flaky".into(), vec![(503, ""), (200, "canceled")]);
        // "o-unknown" has no answer: 404.
    }
    let url = start_fake(&rt, orders.clone());
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port, log) = serve(dir.path(), &url);
    assert_eq!(webhook(port, "e-1", "o-stale", "canceled"), 200);
    assert_eq!(webhook(port, "e-2", "o-failed", "failed"), 200);
    assert_eq!(webhook(port, "e-3", "o-unknown", "canceled"), 200);
    assert_eq!(webhook(port, "e-4", "o-flaky", "canceled"), 200);
    // A status that makes Krake do nothing is not looked up.
    assert_eq!(webhook(port, "e-5", "o-shipping", "shipped"), 200);
    processed(dir.path(), 5);
    let _ = child.kill();
    let _ = child.wait();
    let log = log.lock().unwrap().clone();

    let escalations = query(
        dir.path(),
        "SELECT title FROM threads WHERE kind = 'escalation' ORDER BY id",
    );
    assert_eq!(escalations.len(), 2, "{escalations:?}\n{log}");
    assert!(
        escalations.iter().any(|t| t.contains("o-failed")),
        "{escalations:?}"
    );
    assert!(
        escalations.iter().any(|t| t.contains("o-flaky")),
        "{escalations:?}"
    );
    assert_eq!(
        query(
            dir.path(),
            "SELECT status FROM fulfilment_orders WHERE order_id = 'o-stale'"
        ),
        ["shipped"],
        "Gelato's answer is stored, not the stale event's"
    );
    assert_eq!(
        query(
            dir.path(),
            "SELECT CAST(COUNT(*) AS TEXT) FROM fulfilment_orders WHERE order_id = 'o-unknown'"
        ),
        ["0"],
        "an order Gelato does not know changes nothing"
    );
    let calls = orders.lock().unwrap().calls.clone();
    assert!(
        calls.iter().all(|(_, k)| k.as_deref() == Some(API_KEY)),
        "every call carries the key: {calls:?}"
    );
    let asked = |id: &str| calls.iter().filter(|(o, _)| o == id).count();
    assert_eq!(asked("o-shipping"), 0);
    assert_eq!(asked("o-stale"), 1);
    assert_eq!(asked("o-flaky"), 2, "asked again after Gelato was down");
    assert!(!log.contains(API_KEY), "the API key is never logged");
}
