//! `kpis`: the Management overview (`/overview`) and one workspace's board (`/kpi`) in
//! process, over the five default workspaces with a year of daily history for every metric
//! their KPIs read (the demo's generator), on a fresh SQLite file (and PostgreSQL when given);
//! then the overview right after a point is pushed to one workspace, which reads that
//! workspace's days again.

use crate::common::{drop_postgres, report, scratch_postgres, scratch_sqlite};
use hdrhistogram::Histogram;
use krake_bot::settings::Settings;
use krake_core::Actor;
use krake_core::time::Clock as _;
use krake_core::workspace::WorkspaceSlug;
use krake_store::Store;
use std::time::Instant;

/// Runs the KPI benchmark.
pub async fn run(
    settings: &Settings,
    days: u32,
    iterations: u32,
    postgres: Option<String>,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = scratch_sqlite(&dir).await?;
    one(settings, "sqlite", &store, days, iterations).await?;
    if let Some(admin) = postgres {
        let (store, name) = scratch_postgres(&admin).await?;
        let r = one(settings, "postgresql", &store, days, iterations).await;
        store.pool().close().await;
        drop_postgres(&admin, &name).await;
        r?;
    }
    Ok(())
}

async fn one(
    settings: &Settings,
    label: &str,
    store: &Store,
    days: u32,
    iterations: u32,
) -> anyhow::Result<()> {
    let krake = krake_bot::wiring::krake(store, settings);
    let started = Instant::now();
    let points = krake_core::kpi::demo::fill_history(&krake, days).await?;
    krake_core::inbox::demo::fill_if_empty(&krake, krake_core::time::SystemClock.now()).await?;
    println!(
        "kpis on {label}: {} workspaces, {days} days of history, {points} points stored in {:.1} s",
        settings.directory.workspaces().len(),
        started.elapsed().as_secs_f64()
    );
    let owner = Actor::local();
    let lunavo = WorkspaceSlug::parse("lunavo")?;
    // Warm-up: the first queries prepare their statements.
    for _ in 0..20 {
        krake.overview(&owner).await?;
    }
    let mut overview = Histogram::<u64>::new(3)?;
    let mut board = Histogram::<u64>::new(3)?;
    for _ in 0..iterations {
        let t = Instant::now();
        let o = krake.overview(&owner).await?;
        overview.record(t.elapsed().as_nanos() as u64)?;
        anyhow::ensure!(
            o.is_some_and(|o| o.rows.len() == settings.directory.workspaces().len()),
            "the overview lost a workspace"
        );
        let t = Instant::now();
        krake.kpi_board(&owner, &lunavo).await?;
        board.record(t.elapsed().as_nanos() as u64)?;
    }
    // The same after each change: a point pushed to one workspace (its KPI version raised,
    // so its days are read again; the other four are kept) before every overview.
    let mut changed = Histogram::<u64>::new(3)?;
    let pushes = iterations.min(200);
    let names = [
        "visitors",
        "daily_active_users",
        "reach_per_post",
        "affiliate_revenue",
    ];
    let slugs: Vec<WorkspaceSlug> = settings
        .directory
        .workspaces()
        .iter()
        .map(|w| w.slug.clone())
        .collect();
    for i in 0..pushes {
        let at = usize::try_from(i).unwrap_or_default();
        let point = krake_core::kpi::PointInput {
            name: names[at % names.len()].to_owned(),
            value: f64::from(i),
            at: None,
            key: None,
        };
        let pushed = krake
            .push_metrics(&owner, slugs[at % slugs.len()].as_str(), &[point])
            .await?;
        anyhow::ensure!(pushed.is_ok(), "a push was refused: {pushed:?}");
        let t = Instant::now();
        krake.overview(&owner).await?;
        changed.record(t.elapsed().as_nanos() as u64)?;
    }
    report("/overview (5 workspaces)", &overview);
    report("/kpi lunavo (one board)", &board);
    report("/overview after a push", &changed);
    Ok(())
}
