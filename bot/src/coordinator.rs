//! The coordinator's loop inside `krake serve`: syncs config-defined schedules at start, then
//! ticks every `coordinator_tick_secs` until shutdown (mirrors the expiry sweeper).

use crate::settings::Settings;
use krake_core::coordinator::Coordinator;
use krake_core::schedule::{NewSchedule, ScheduleRepo};
use krake_core::time::{Clock, SystemClock};
use krake_store::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Creates or updates the config-defined schedules and removes those no longer in the file.
pub async fn sync_config_schedules(
    store: &Store,
    settings: &Settings,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let now = clock.now();
    for s in &settings.schedules {
        let new = NewSchedule {
            name: Some(s.name.clone()),
            workspace: s.workspace.clone(),
            assignment: s.assignment.clone(),
            task: s.task.clone(),
            cadence: s.cadence.clone(),
            description: s.description.clone(),
            catch_up: s.catch_up,
            created_by: "config".to_owned(),
            next_run_at: s.cadence.next_after(now),
        };
        // Two processes starting at once may race on the unique name: one retry settles it.
        if store.sync_config_schedule(&new, now).await.is_err() {
            store.sync_config_schedule(&new, now).await?;
        }
    }
    let keep: Vec<String> = settings.schedules.iter().map(|s| s.name.clone()).collect();
    let removed = store.prune_config_schedules(&keep).await?;
    if removed > 0 {
        tracing::info!(
            removed,
            "config schedules removed from the file were deleted"
        );
    }
    Ok(())
}

/// The coordinator on the system clock.
pub fn coordinator(store: &Store, settings: &Settings) -> Coordinator {
    Coordinator::new(
        Arc::new(store.clone()),
        Arc::new(SystemClock),
        settings.directory.clone(),
        Duration::from_secs(settings.schedule_grace_secs),
    )
}

/// Ticks until `stop` changes; each occurrence run also becomes an agent run when `agents`
/// has a model.
pub async fn run_loop(
    coordinator: Coordinator,
    every: Duration,
    mut stop: watch::Receiver<bool>,
    agents: Option<krake_core::schedule_handoff::ScheduleHandOff>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                match coordinator.tick().await {
                    Ok(r) => {
                        if let Some(a) = &agents {
                            a.start_runs(&r).await;
                        }
                        for (outcome, n) in [("ran", r.ran.len()), ("skipped", r.skipped), ("lost", r.lost)] {
                            if n > 0 {
                                metrics::counter!(krake_metrics::SCHEDULE_RUNS, "outcome" => outcome)
                                    .increment(n as u64);
                            }
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "coordinator tick failed; will retry"),
                }
            }
            _ = stop.changed() => return,
        }
    }
}
