//! `schedules`: the coordinator with many active schedules.
//!
//! 1. Per-tick cost with nothing due (one indexed query on `next_run_at`), beside a raw
//!    `SELECT` of the same rows as baseline.
//! 2. Per-tick cost with 10 occurrences due (each claimed by compare-and-set and posted to
//!    the inbox in one transaction).
//! 3. Drift over a simulated week on a manual clock ticking every second: for every
//!    occurrence, when it ran (simulated tick time plus the real time the tick took until
//!    then) minus when it was due. Seconds in which nothing is due are skipped, since their
//!    tick would find nothing (that is what `next_due` says); the week starts on
//!    2026-10-22 so Europe's fall-back (25 October) is inside it.

use crate::common::{drop_postgres, report, scratch_postgres, scratch_sqlite};
use hdrhistogram::Histogram;
use krake_bot::settings::Settings;
use krake_core::Actor;
use krake_core::coordinator::Coordinator;
use krake_core::ports::WriteCtx;
use krake_core::schedule::{
    Assignment, Cadence, CatchUp, NewSchedule, ScheduleRepo, parse_timezone,
};
use krake_core::time::{Clock, ManualClock, Timestamp};
use krake_core::workspace::WorkspaceSlug;
use krake_store::Store;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// 2026-10-22 00:00:00 UTC.
const START: i64 = 1_792_540_800_000;

/// Runs the schedule benchmark on SQLite, and on PostgreSQL when an admin URL is given.
pub async fn run(
    settings: &Settings,
    schedules: u32,
    ticks: u32,
    days: u32,
    postgres: Option<String>,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = scratch_sqlite(&dir).await?;
    one(
        settings,
        "sqlite (WAL, synchronous=NORMAL)",
        &store,
        schedules,
        ticks,
        days,
    )
    .await?;
    if let Some(admin) = postgres {
        let (store, name) = scratch_postgres(&admin).await?;
        // The simulated week runs on SQLite only: on PostgreSQL it takes minutes per run.
        let r = one(settings, "postgresql", &store, schedules, ticks, 0).await;
        store.pool().close().await;
        drop_postgres(&admin, &name).await;
        r?;
    }
    Ok(())
}

/// A small deterministic generator, so every run builds the same schedules.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

async fn one(
    settings: &Settings,
    label: &str,
    store: &Store,
    n: u32,
    ticks: u32,
    days: u32,
) -> anyhow::Result<()> {
    let start = Timestamp::from_millis(START);
    let clock = Arc::new(ManualClock::new(start));
    let zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"];
    let agents: Vec<String> = settings
        .directory
        .agents()
        .iter()
        .map(|a| a.name.to_string())
        .collect();
    anyhow::ensure!(!agents.is_empty(), "no agents configured");
    let ws = WorkspaceSlug::parse("management")?;
    let mut rng = Lcg(42);
    let ctx = WriteCtx {
        actor: Actor::system(),
        inbound: None,
        now: start,
    };
    let t = Instant::now();
    let (mut hourly, mut daily, mut weekly) = (0, 0, 0);
    for i in 0..n {
        let (h, m) = (rng.next(24), rng.next(60));
        let expr = if i % 20 == 0 {
            hourly += 1;
            format!("{m} * * * *")
        } else if i % 2 == 0 {
            daily += 1;
            format!("{m} {h} * * *")
        } else {
            weekly += 1;
            format!("{m} {h} * * {}", rng.next(7))
        };
        let tz = parse_timezone(zones[i as usize % zones.len()])?;
        let cadence = Cadence::new(&expr, tz)?;
        let agent = agents[i as usize % agents.len()].clone();
        store
            .create_schedule(
                &NewSchedule {
                    name: None,
                    workspace: ws.clone(),
                    assignment: Assignment {
                        agent,
                        role: None,
                        reason: "benchmark".into(),
                    },
                    task: format!("benchmark task {i}"),
                    next_run_at: cadence.next_after(start),
                    description: format!("cron `{expr}`"),
                    cadence,
                    catch_up: CatchUp::Once,
                    created_by: "bench".into(),
                },
                &ctx,
            )
            .await?;
    }
    println!(
        "schedules on {label}: {n} active ({hourly} hourly, {daily} daily, {weekly} weekly; zones {}), created in {:.1} s",
        zones.join(", "),
        t.elapsed().as_secs_f64()
    );
    let coordinator = Coordinator::new(
        Arc::new(store.clone()),
        clock.clone(),
        settings.directory.clone(),
        Duration::from_secs(60),
    );

    // 1. Nothing due.
    let mut h_idle = Histogram::<u64>::new(3)?;
    let mut h_raw = Histogram::<u64>::new(3)?;
    for _ in 0..100 {
        coordinator.tick().await?;
    }
    for _ in 0..ticks {
        let t = Instant::now();
        let r = coordinator.tick().await?;
        h_idle.record(t.elapsed().as_nanos() as u64)?;
        anyhow::ensure!(r.ran.is_empty(), "nothing should be due at the start");
        let t = Instant::now();
        let rows = sqlx::query("SELECT id FROM schedules WHERE paused = 0 AND next_run_at IS NOT NULL AND next_run_at <= $1 ORDER BY next_run_at LIMIT 200")
            .bind(start.as_millis())
            .fetch_all(store.pool())
            .await?;
        h_raw.record(t.elapsed().as_nanos() as u64)?;
        std::hint::black_box(rows);
    }
    println!("  coordinator tick, target < 1 ms:");
    report("tick, nothing due", &h_idle);
    report("baseline: raw indexed SELECT", &h_raw);

    // 2. Ten due per tick: make ten schedules due now, then tick.
    let mut h_due = Histogram::<u64>::new(3)?;
    let rounds = ticks.min(300);
    let mut ran = 0;
    for r in 0..rounds {
        // Each round is a new second, so each occurrence is a new one.
        clock.advance(Duration::from_secs(1));
        let now = clock.now();
        let first = i64::from(r * 10 % n.max(1)) + 1;
        sqlx::query("UPDATE schedules SET next_run_at = $1 WHERE id >= $2 AND id < $3")
            .bind(now.as_millis())
            .bind(first)
            .bind(first + 10)
            .execute(store.pool())
            .await?;
        let t = Instant::now();
        let rep = coordinator.tick().await?;
        h_due.record(t.elapsed().as_nanos() as u64)?;
        ran += rep.ran.len();
    }
    anyhow::ensure!(ran > 0, "no occurrence ran");
    report("tick, 10 due (10 claims + posts)", &h_due);
    println!(
        "  per occurrence (p50 / 10): {:.1} µs",
        h_due.value_at_quantile(0.5) as f64 / 10_000.0
    );

    if days == 0 {
        return Ok(());
    }
    // 3. A simulated week, ticking every second.
    sqlx::query("DELETE FROM schedule_runs")
        .execute(store.pool())
        .await?;
    let all = store.list_schedules().await?;
    let end = start.plus(Duration::from_secs(u64::from(days) * 86_400));
    let mut expected = 0usize;
    for s in &all {
        // Reset every schedule to its first occurrence after the start.
        let next = s.cadence.next_after(start);
        sqlx::query("UPDATE schedules SET next_run_at = $1 WHERE id = $2")
            .bind(next.map(Timestamp::as_millis))
            .bind(s.id.0)
            .execute(store.pool())
            .await?;
        if let Some(x) = next.filter(|x| *x <= end) {
            expected += 1 + s.cadence.count_between(x, end, 100_000);
        }
    }
    let clock = Arc::new(ManualClock::new(start));
    let sim = Coordinator::new(
        Arc::new(store.clone()),
        clock.clone(),
        settings.directory.clone(),
        Duration::from_secs(60),
    );
    let mut h_drift = Histogram::<u64>::new(3)?;
    let mut ticked = 0u64;
    let mut total = 0usize;
    // The slowest ticks: (milliseconds, occurrences run, simulated time), to see a tail's cause.
    let mut worst: Vec<(i64, usize, Timestamp)> = Vec::new();
    let wall = Instant::now();
    let mut now = start;
    loop {
        let Some(due) = store.next_due().await? else {
            break;
        };
        if due > end {
            break;
        }
        // The next one-second tick at or after `due`.
        let secs = (due.as_millis() - START + 999).div_euclid(1000);
        let tick_at = Timestamp::from_millis(START + secs * 1000);
        if tick_at > now {
            clock.advance(Duration::from_millis(
                u64::try_from(tick_at.as_millis() - now.as_millis()).unwrap_or(0),
            ));
            now = tick_at;
        }
        let t = Instant::now();
        let rep = sim.tick().await?;
        let took = t.elapsed().as_millis() as i64;
        ticked += 1;
        worst.push((took, rep.ran.len(), now));
        if worst.len() > 64 {
            worst.sort_by_key(|w| std::cmp::Reverse(w.0));
            worst.truncate(5);
        }
        for (_, occurrence, _) in &rep.ran {
            // Conservative: every run counts the whole tick's processing time.
            let drift = now.as_millis() + took - occurrence.as_millis();
            h_drift.record(u64::try_from(drift.max(0)).unwrap_or(0))?;
        }
        total += rep.ran.len();
    }
    println!(
        "  simulated {days} days from 2026-10-22 00:00 UTC (Europe falls back on 10-25), tick every 1 s, manual clock:"
    );
    println!(
        "  occurrences run: {total} (expected {expected}), ticks with work: {ticked}, wall time {:.1} s",
        wall.elapsed().as_secs_f64()
    );
    println!(
        "  drift (ran - due), n={}: p50={} ms  p99={} ms  max={} ms  (target: max < 1000 ms)",
        h_drift.len(),
        h_drift.value_at_quantile(0.5),
        h_drift.value_at_quantile(0.99),
        h_drift.max()
    );
    worst.sort_by_key(|w| std::cmp::Reverse(w.0));
    for (ms, n, at) in worst.iter().take(3) {
        println!(
            "  slow tick: {ms} ms for {n} occurrence(s) at simulated {}",
            at.as_millis()
        );
    }
    anyhow::ensure!(
        total == expected,
        "{total} occurrences ran, {expected} were due"
    );
    Ok(())
}
