//! `krake bench`: the benchmarks the issues name, each beside a baseline measured in the same
//! run (see ../shared/BENCHMARKS.md). Durability: SQLite runs in WAL with `synchronous=NORMAL`
//! (a commit survives a process crash, `kill -9`; the last commits may be lost on power loss);
//! PostgreSQL runs with the server's settings (`synchronous_commit=on` by default).

use crate::cli::BenchCmd;
use crate::settings::Settings;
use anyhow::Context;
use hdrhistogram::Histogram;
use krake_core::Krake;
use krake_core::actor::Actor;
use krake_core::inbox::{NewThread, ThreadKind};
use krake_core::outbox::{Destination, NewOutbound, OutboxPayload};
use krake_core::ports::OutboxRepo;
use krake_core::reply::Reply;
use krake_core::time::{Clock, SystemClock};
use krake_core::workspace::WorkspaceSlug;
use krake_store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Runs one benchmark.
pub async fn run(settings: Settings, cmd: BenchCmd) -> anyhow::Result<()> {
    print_conditions();
    match cmd {
        BenchCmd::Inbox { iterations } => inbox(settings, iterations).await,
        BenchCmd::Rag(args) => crate::rag::bench(settings, args).await,
        BenchCmd::Webhooks {
            seconds,
            connections,
        } => webhooks(seconds, connections).await,
        BenchCmd::Discord {
            requests,
            concurrency,
        } => crate::discord::bench(requests, concurrency).await,
        BenchCmd::Outbox {
            jobs,
            batch,
            postgres,
        } => {
            let dir = tempfile::tempdir()?;
            let store = scratch_sqlite(&dir).await?;
            outbox("sqlite (WAL, synchronous=NORMAL)", &store, jobs, batch).await?;
            if let Some(admin) = postgres {
                let (store, name) = scratch_postgres(&admin).await?;
                let r = outbox("postgresql", &store, jobs, batch).await;
                store.pool().close().await;
                drop_postgres(&admin, &name).await;
                r?;
            }
            Ok(())
        }
        BenchCmd::Telegram { updates } => telegram(settings, updates).await,
        BenchCmd::Web {
            sessions,
            fanout,
            rounds,
            seconds,
        } => crate::bench_web::run(sessions, fanout, rounds, seconds).await,
        BenchCmd::Schedules {
            schedules,
            ticks,
            days,
            postgres,
        } => crate::bench_schedules::run(&settings, schedules, ticks, days, postgres).await,
        BenchCmd::Agents {
            runs,
            concurrent,
            rounds,
            delay_ms,
            in_process,
        } => crate::bench_agents::run(runs, concurrent, rounds, delay_ms, in_process).await,
    }
}

fn print_conditions() {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "build: {profile}; load average: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

pub(crate) async fn scratch_sqlite(dir: &tempfile::TempDir) -> anyhow::Result<Store> {
    let store = Store::open(&Store::sqlite_url(&dir.path().join("bench.db"))).await?;
    store.migrate(|_| {}).await?;
    Ok(store)
}

pub(crate) async fn scratch_postgres(admin: &str) -> anyhow::Result<(Store, String)> {
    let name = format!("krake_bench_{}", std::process::id());
    let a = Store::open(admin)
        .await
        .context("cannot reach the PostgreSQL server given to --postgres")?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(a.pool())
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(a.pool())
        .await?;
    a.pool().close().await;
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
    let store = Store::open(&format!("{base}/{name}")).await?;
    store.migrate(|_| {}).await?;
    Ok((store, name))
}

pub(crate) async fn drop_postgres(admin: &str, name: &str) {
    if let Ok(a) = Store::open(admin).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(a.pool())
            .await;
        a.pool().close().await;
    }
}

pub(crate) fn report(label: &str, h: &Histogram<u64>) {
    println!(
        "  {label:<34} n={:<6} p50={:>7.1} µs  p99={:>7.1} µs  max={:>8.1} µs",
        h.len(),
        h.value_at_quantile(0.50) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
}

async fn inbox(settings: Settings, iterations: u32) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = scratch_sqlite(&dir).await?;
    let krake = Krake::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        Arc::new(SystemClock),
        settings.directory.clone(),
    );
    let ws = WorkspaceSlug::parse("lunavo")?;
    for i in 0..50 {
        krake
            .create_thread(
                &Actor::system(),
                &NewThread::new(
                    ws.clone(),
                    ThreadKind::Approval,
                    format!("Benchmark thread {i}"),
                    "body",
                ),
            )
            .await?;
    }
    let actor = Actor::local();
    let check = krake.handle_text(&actor, "/todo").await;
    anyhow::ensure!(
        check.text.contains("(50)"),
        "the listing should show 50 threads: {}",
        check.text
    );
    let mut h_cmd = Histogram::<u64>::new(3)?;
    let mut h_raw = Histogram::<u64>::new(3)?;
    for _ in 0..200 {
        let _ = krake.handle_text(&actor, "/todo").await;
    }
    for _ in 0..iterations {
        let t = Instant::now();
        let r = krake.handle_text(&actor, "/todo").await;
        h_cmd.record(t.elapsed().as_nanos() as u64)?;
        std::hint::black_box(r);
        let t = Instant::now();
        let rows = sqlx::query("SELECT id, workspace, kind, status, title FROM threads WHERE status = 'open' ORDER BY id DESC LIMIT 50")
            .fetch_all(store.pool())
            .await?;
        h_raw.record(t.elapsed().as_nanos() as u64)?;
        std::hint::black_box(rows);
    }
    println!("inbox list of 50 threads, SQLite, in process (target: p99 < 2 ms):");
    report("parse + execute `/todo`", &h_cmd);
    report("baseline: raw SELECT of 50 rows", &h_raw);
    println!(
        "  ratio p99 command/raw: {:.2}",
        h_cmd.value_at_quantile(0.99) as f64 / h_raw.value_at_quantile(0.99).max(1) as f64
    );
    Ok(())
}

async fn drain(store: &Store, jobs: u32, batch: u32, batched: bool) -> anyhow::Result<()> {
    let now = SystemClock.now();
    let mut done = 0u32;
    while done < jobs {
        let claimed = store
            .claim_outbox(
                None,
                "bench",
                now,
                Duration::from_secs(60),
                batch.min(jobs - done),
            )
            .await?;
        anyhow::ensure!(
            !claimed.is_empty(),
            "the outbox ran dry after {done} of {jobs} jobs"
        );
        if batched {
            let ids: Vec<_> = claimed
                .iter()
                .map(|j| (j.id, Some("m".to_owned())))
                .collect();
            let n = store.complete_outbox_many(&ids, "bench", now).await?;
            anyhow::ensure!(n == ids.len(), "lost a lease");
            done += u32::try_from(n).unwrap_or(0);
        } else {
            for j in claimed {
                anyhow::ensure!(
                    store.complete_outbox(j.id, "bench", Some("m"), now).await?,
                    "lost a lease"
                );
                done += 1;
            }
        }
    }
    Ok(())
}

async fn outbox(label: &str, store: &Store, jobs: u32, batch: u32) -> anyhow::Result<()> {
    let now = SystemClock.now();
    // Baseline: a raw INSERT loop, one autocommitted statement per row.
    sqlx::query("CREATE TABLE bench_raw (id BIGINT PRIMARY KEY, destination TEXT NOT NULL, payload TEXT NOT NULL)")
        .execute(store.pool())
        .await?;
    let t = Instant::now();
    for i in 0..i64::from(jobs) {
        sqlx::query("INSERT INTO bench_raw (id, destination, payload) VALUES ($1, $2, $3)")
            .bind(i)
            .bind(format!("web:{}", i % 100))
            .bind("{}")
            .execute(store.pool())
            .await?;
    }
    let raw = t.elapsed();

    let messages: Vec<NewOutbound> = (0..jobs)
        .map(|i| {
            Ok(NewOutbound {
                destination: Destination::parse(&format!("web:{}", i % 100))?,
                payload: OutboxPayload::Send {
                    reply: Reply::info(format!("message {i}")),
                },
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let t = Instant::now();
    for chunk in messages.chunks(500) {
        store.enqueue(chunk, now).await?;
    }
    let enqueue = t.elapsed();

    // Drain twice over the same kind of queue: one commit per completion (what a worker does
    // when each send must be recorded before the next), then one commit per claimed batch.
    let t = Instant::now();
    drain(store, jobs / 2, batch, false).await?;
    let drain_each = t.elapsed();
    let t = Instant::now();
    drain(store, jobs - jobs / 2, batch, true).await?;
    let drain_batched = t.elapsed();
    let rate = |d: Duration| f64::from(jobs) / d.as_secs_f64();
    let half = |d: Duration| f64::from(jobs / 2) / d.as_secs_f64();
    println!(
        "outbox on {label}: {jobs} jobs over 100 destinations, claim batch {batch} (target: ≥ 5,000 jobs/s):"
    );
    println!(
        "  claim + complete, commit per job   {:>9.0} jobs/s",
        half(drain_each)
    );
    println!(
        "  claim + complete, commit per batch {:>9.0} jobs/s",
        half(drain_batched)
    );
    println!(
        "  enqueue (500 per transaction)      {:>9.0} jobs/s",
        rate(enqueue)
    );
    println!(
        "  baseline: raw INSERT loop          {:>9.0} rows/s",
        rate(raw)
    );
    println!(
        "  ratio per-batch / raw INSERT:      {:.2}",
        half(drain_batched) / rate(raw)
    );
    Ok(())
}

const BENCH_SECRET: &str = "bench-secret";

/// A realistic orders/create body (about 1.5 KB).
fn bench_order() -> String {
    let items: Vec<String> = (0..4)
        .map(|i| format!(r#"{{"id":{},"title":"Night hoodie {i}","quantity":1,"price":"49.00","sku":"LNV-HD-{i}","vendor":"Lunavo"}}"#, 866_550_311_766_439_000u64 + i))
        .collect();
    format!(
        r##"{{"id":820982911946154508,"admin_graphql_api_id":"gid://shopify/Order/820982911946154508","name":"#9999","email":"jon@example.com","created_at":"2026-11-24T12:33:21+01:00","updated_at":"2026-11-24T12:33:22+01:00","currency":"EUR","total_price":"196.00","subtotal_price":"196.00","total_tax":"0.00","financial_status":"paid","fulfillment_status":null,"customer":{{"id":115310627314723954,"first_name":"Jon","last_name":"Doe","email":"jon@example.com"}},"line_items":[{}],"refunds":[]}}"##,
        items.join(",")
    )
}

pub(crate) async fn serve_on(
    app: axum::Router,
) -> anyhow::Result<(std::net::SocketAddr, tokio::sync::oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Ok((addr, tx))
}

/// Runs wrk against `url` and returns (requests/s, non-2xx count, latency lines).
pub(crate) async fn wrk(
    url: &str,
    script: &std::path::Path,
    seconds: u32,
    connections: u32,
) -> anyhow::Result<(f64, u64, String)> {
    let out = tokio::process::Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(url)
        .output()
        .await
        .context("could not run `wrk`: install it with `apt-get install wrk`")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    anyhow::ensure!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .context("no Requests/sec in wrk's output")?;
    let non2xx = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let latency: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with(['5', '9']) && l.contains('%'))
        .map(str::trim)
        .collect();
    Ok((rps, non2xx, latency.join("  ")))
}

async fn webhooks(seconds: u32, connections: u32) -> anyhow::Result<()> {
    use axum::routing::post;
    let dir = tempfile::tempdir()?;
    let body = bench_order();
    let hmac = krake_commerce::shopify::sign(BENCH_SECRET.as_bytes(), body.as_bytes());
    let script = dir.path().join("shopify.lua");
    let lua_body = body.replace('\\', "\\\\").replace('"', "\\\"");
    std::fs::write(
        &script,
        format!(
            r#"local counter = 0
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
wrk.method = "POST"
wrk.body = "{lua_body}"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Shopify-Hmac-Sha256"] = "{hmac}"
wrk.headers["X-Shopify-Topic"] = "orders/create"
wrk.headers["X-Shopify-Shop-Domain"] = "lunavo.myshopify.com"
request = function()
  counter = counter + 1
  wrk.headers["X-Shopify-Webhook-Id"] = "bench-" .. tostring(tid) .. "-" .. counter
  return wrk.format()
end
"#
        ),
    )?;

    // Baseline: a bare axum handler that reads the body and answers 200.
    let bare = axum::Router::new().route(
        "/webhooks/shopify",
        post(|_body: bytes::Bytes| async { axum::http::StatusCode::OK }),
    );
    let (addr, stop) = serve_on(bare).await?;
    let (bare_rps, bare_bad, bare_lat) = wrk(
        &format!("http://{addr}/webhooks/shopify"),
        &script,
        seconds,
        connections,
    )
    .await?;
    let _ = stop.send(());

    // Krake: verify the HMAC, parse, deduplicate, group-commit to SQLite, then answer 200.
    let store = scratch_sqlite(&dir).await?;
    let config = krake_commerce::WebhookConfig {
        shopify_secret: Some(krake_commerce::Secret::new(BENCH_SECRET)),
        shops: [(
            "lunavo.myshopify.com".to_owned(),
            WorkspaceSlug::parse("lunavo")?,
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    };
    let app = krake_commerce::router(
        config,
        Arc::new(krake_store::GroupCommit::start(store.clone(), 256)),
        Arc::new(SystemClock),
    );
    let (addr, stop) = serve_on(app).await?;
    let (rps, bad, lat) = wrk(
        &format!("http://{addr}/webhooks/shopify"),
        &script,
        seconds,
        connections,
    )
    .await?;
    let _ = stop.send(());
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbound")
        .fetch_one(store.pool())
        .await?;
    println!(
        "webhooks: wrk -t2 -c{connections} -d{seconds}s, {} byte orders/create body, 127.0.0.1 (target: Krake ≥ 0.5 × bare):",
        body.len()
    );
    println!(
        "  bare axum 200 handler      {bare_rps:>9.0} req/s  (non-2xx {bare_bad})  latency {bare_lat}"
    );
    println!("  POST /webhooks/shopify     {rps:>9.0} req/s  (non-2xx {bad})  latency {lat}");
    println!(
        "  ratio Krake / bare: {:.2}; events durably stored: {stored} (SQLite WAL, synchronous=NORMAL, group commit ≤ 256)",
        rps / bare_rps
    );
    Ok(())
}

/// A private-chat text update as Telegram sends it.
fn telegram_update(update_id: u32, user: u64, text: &str) -> Vec<u8> {
    serde_json::json!({
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "from": {"id": user, "is_bot": false, "first_name": "Ana", "username": "ana"},
            "chat": {"id": user, "first_name": "Ana", "username": "ana", "type": "private"},
            "date": 1_795_503_000,
            "text": text
        }
    })
    .to_string()
    .into_bytes()
}

async fn telegram(settings: Settings, updates: u32) -> anyhow::Result<()> {
    use krake_core::actor::Front;
    use krake_core::inbound::IdempotencyKey;
    use krake_core::inbound::{Content, Inbound};
    use krake_telegram::convert::BotIdentity;
    use krake_telegram::front::{FrontPorts, Handled};
    let dir = tempfile::tempdir()?;
    let store = scratch_sqlite(&dir).await?;
    let s = Arc::new(store.clone());
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let krake = Krake::new(
        s.clone(),
        s.clone(),
        clock.clone(),
        settings.directory.clone(),
    )
    .with_users(s.clone());
    let config =
        krake_telegram::TelegramConfig::polling(krake_telegram::BotToken::parse("1:benchmark")?);
    let front = krake_telegram::TelegramFront::offline(
        krake.clone(),
        config,
        FrontPorts { state: s },
        BotIdentity {
            id: 1,
            username: "krake_bench_bot".into(),
        },
    )?;
    let text = "/todo lunavo";
    let check = front.handle_json(&telegram_update(1, 42, text)).await?;
    anyhow::ensure!(
        matches!(check, Handled::Replied(_)),
        "the update should be answered: {check:?}"
    );
    let mut h_tg = Histogram::<u64>::new(3)?;
    let mut h_core = Histogram::<u64>::new(3)?;
    for i in 0..updates {
        let body = telegram_update(10 + 2 * i, 42, text);
        let t = Instant::now();
        let h = front.handle_json(&body).await?;
        h_tg.record(t.elapsed().as_nanos() as u64)?;
        std::hint::black_box(h);
        let actor = krake.identify(Front::Telegram, "42", "ana", None).await?;
        let msg = Inbound {
            source: Front::Cli,
            key: IdempotencyKey::parse(&format!("bench:{i}"))?,
            actor,
            conversation: "42".into(),
            reply_to: None,
            content: Content::Text(text.into()),
        };
        let t = Instant::now();
        let r = krake.accept(msg).await;
        h_core.record(t.elapsed().as_nanos() as u64)?;
        std::hint::black_box(r);
    }
    println!(
        "Telegram update in to reply queued, SQLite, in process, no network (target: p99 < 2 ms):"
    );
    report("update JSON -> reply in outbox", &h_tg);
    report("baseline: core accept (no outbox row)", &h_core);
    println!(
        "  ratio p99 telegram/core: {:.2} (the difference: JSON parsing, identity lookup, outbox insert)",
        h_tg.value_at_quantile(0.99) as f64 / h_core.value_at_quantile(0.99).max(1) as f64
    );
    Ok(())
}
