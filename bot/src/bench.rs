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

async fn scratch_sqlite(dir: &tempfile::TempDir) -> anyhow::Result<Store> {
    let store = Store::open(&Store::sqlite_url(&dir.path().join("bench.db"))).await?;
    store.migrate(|_| {}).await?;
    Ok(store)
}

async fn scratch_postgres(admin: &str) -> anyhow::Result<(Store, String)> {
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

async fn drop_postgres(admin: &str, name: &str) {
    if let Ok(a) = Store::open(admin).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(a.pool())
            .await;
        a.pool().close().await;
    }
}

fn report(label: &str, h: &Histogram<u64>) {
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

    let t = Instant::now();
    let mut done = 0u32;
    while done < jobs {
        let claimed = store
            .claim_outbox(None, "bench", now, Duration::from_secs(60), batch)
            .await?;
        anyhow::ensure!(
            !claimed.is_empty(),
            "the outbox ran dry after {done} of {jobs} jobs"
        );
        for j in claimed {
            anyhow::ensure!(
                store.complete_outbox(j.id, "bench", Some("m"), now).await?,
                "lost a lease"
            );
            done += 1;
        }
    }
    let drain = t.elapsed();
    let rate = |d: Duration| f64::from(jobs) / d.as_secs_f64();
    println!(
        "outbox on {label}: {jobs} jobs over 100 destinations, claim batch {batch}, one commit per completion (target: ≥ 5,000 jobs/s):"
    );
    println!(
        "  claim + complete                   {:>9.0} jobs/s",
        rate(drain)
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
        "  ratio claim+complete / raw INSERT: {:.2}",
        raw.as_secs_f64() / drain.as_secs_f64()
    );
    Ok(())
}
