//! `inbox`: parse and execute `/todo` over 50 threads beside a raw SELECT; `outbox`: claim +
//! complete throughput beside a raw INSERT loop.

use crate::common::{drop_postgres, report, scratch_postgres, scratch_sqlite};
use hdrhistogram::Histogram;
use krake_bot::settings::Settings;
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

/// `inbox`: the listing of 50 threads through the command path, in process on SQLite.
pub async fn inbox(settings: Settings, iterations: u32) -> anyhow::Result<()> {
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

/// `outbox`: on SQLite, then on PostgreSQL when `postgres` (an admin URL) is given.
pub async fn outbox(jobs: u32, batch: u32, postgres: Option<String>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = scratch_sqlite(&dir).await?;
    outbox_on("sqlite (WAL, synchronous=NORMAL)", &store, jobs, batch).await?;
    if let Some(admin) = postgres {
        let (store, name) = scratch_postgres(&admin).await?;
        let r = outbox_on("postgresql", &store, jobs, batch).await;
        store.pool().close().await;
        drop_postgres(&admin, &name).await;
        r?;
    }
    Ok(())
}

async fn outbox_on(label: &str, store: &Store, jobs: u32, batch: u32) -> anyhow::Result<()> {
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
