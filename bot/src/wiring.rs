//! Opening the store and building the core service from settings.

use crate::settings::Settings;
use anyhow::Context;
use krake_core::Krake;
use krake_core::time::SystemClock;
use krake_store::{MigrationProgress, Store};
use std::sync::Arc;

/// Opens the database (creating the data directory for SQLite) and applies migrations,
/// printing progress to stderr when `verbose`.
pub async fn open_store(settings: &Settings, verbose: bool) -> anyhow::Result<Store> {
    if settings.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                settings.data_dir.display()
            )
        })?;
    }
    let store = Store::open(&settings.database_url).await.context(
        "the database cannot be opened; check --database-url / KRAKE_DATABASE_URL and --data-dir",
    )?;
    store
        .migrate(|p| match p {
            MigrationProgress::Pending(0) if verbose => eprintln!("database is up to date"),
            MigrationProgress::Pending(n) if n > 0 => {
                eprintln!("applying {n} database migration(s)…")
            }
            MigrationProgress::Done { applied, version } if applied > 0 => {
                eprintln!("applied {applied} migration(s); schema version {version}")
            }
            _ => {}
        })
        .await
        .context("migrations failed; nothing was changed by the failed step")?;
    Ok(store)
}

/// Builds the core service on a store.
pub fn krake(store: &Store, settings: &Settings) -> Krake {
    krake_with_agents(store, settings).0
}

/// Builds the core service and the agent run engine it hands tasks to (`krake serve` runs
/// the engine's worker; other commands only queue runs).
pub fn krake_with_agents(store: &Store, settings: &Settings) -> (Krake, krake_core::run::Runner) {
    let store_ref = store;
    let store = Arc::new(store.clone());
    // New threads are posted where the fronts' configurations say.
    let mut routes = krake_core::delivery::Routes::new();
    if let Some(t) = &settings.telegram {
        t.add_routes(&mut routes);
    }
    crate::discord::add_routes(&settings.discord, &mut routes);
    crate::web::add_routes(&settings.directory, &mut routes);
    // Fronts add their senders here as they start; runs stream answers through them.
    let live = krake_core::delivery::LiveSenders::new();
    let kpis = Arc::new(krake_core::kpi::KpiDesk::new(
        settings.kpi_defs.clone(),
        settings.kpi.clone(),
        store.clone(),
    ));
    let agents = crate::agents::runner(
        store_ref,
        &settings.agents,
        &settings.directory,
        routes.clone(),
        Arc::new(crate::rag::on_demand(settings)),
    )
    .with_streaming(live.clone(), store.clone())
    .with_kpis(krake_core::kpi::KpiReader::new(
        kpis.clone(),
        Arc::new(settings.directory.clone()),
        Some(store.clone()),
        Some(store.clone()),
        Arc::new(SystemClock),
        settings.schedule_timezone,
    ));
    let krake = Krake::new(
        store.clone(),
        store.clone(),
        Arc::new(SystemClock),
        settings.directory.clone(),
    )
    .with_agents(Arc::new(agents.clone()))
    .with_live(live)
    .with_listener(Arc::new(krake_metrics::ApprovalLatency))
    .with_outbox(store.clone())
    .with_routes(routes)
    .with_users(store.clone())
    .with_commerce(store.clone())
    .with_schedules(store.clone(), settings.schedule_timezone)
    .with_kpis(kpis)
    .with_learning(krake_core::knowledge::chat::Learning {
        repo: store.clone(),
        knowledge: Arc::new(crate::rag::on_demand(settings)),
        max_bytes: settings.rag.max_file_bytes,
    })
    .with_visitors(krake_core::visitor::Visitors::new(
        store.clone(),
        Arc::new(settings.directory.clone()),
        Arc::new(SystemClock),
    ))
    .with_folders(store);
    (krake, agents)
}
