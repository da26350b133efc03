//! The schedule hand-off: the occurrences a coordinator tick ran become agent runs. Each one
//! queues the schedule's task for the assigned agent and replies on the occurrence's question
//! thread naming the run (which answers it). The occurrence's thread is written first, in the
//! claim's transaction, so a failure between the two leaves the task in the inbox for a person,
//! never lost.

use crate::actor::Actor;
use crate::coordinator::TickReport;
use crate::inbox::ThreadId;
use crate::ports::{InboxRepo, RepoError, WriteCtx};
use crate::run::{NewRun, Runner};
use crate::schedule::{ScheduleId, ScheduleRepo};
use crate::time::Clock;
use std::sync::Arc;

/// Turns ran occurrences into agent runs.
#[derive(Clone)]
pub struct ScheduleHandOff {
    runner: Runner,
    schedules: Arc<dyn ScheduleRepo>,
    inbox: Arc<dyn InboxRepo>,
    clock: Arc<dyn Clock>,
}

impl ScheduleHandOff {
    /// The hand-off, when `runner` has a model (without one the tasks stay in the inbox).
    pub fn new(
        runner: &Runner,
        schedules: Arc<dyn ScheduleRepo>,
        inbox: Arc<dyn InboxRepo>,
        clock: Arc<dyn Clock>,
    ) -> Option<Self> {
        runner.has_model().then(|| Self {
            runner: runner.clone(),
            schedules,
            inbox,
            clock,
        })
    }

    /// Starts one run per occurrence in the report (a failure is logged; its task stays in
    /// the inbox).
    pub async fn start_runs(&self, report: &TickReport) {
        for (id, _, thread) in &report.ran {
            if let Err(e) = self.start_one(*id, *thread).await {
                tracing::warn!(schedule = id.0, thread = thread.0, error = %e, "could not start the agent run of a schedule; the task stays in the inbox");
            }
        }
    }

    async fn start_one(&self, id: ScheduleId, thread: ThreadId) -> Result<(), RepoError> {
        let Some(s) = self.schedules.get_schedule(id).await? else {
            return Ok(());
        };
        let th = self.inbox.get(thread).await?;
        let agent = th
            .as_ref()
            .and_then(|t| t.agent.clone())
            .unwrap_or_else(|| s.assignment.agent.clone());
        let run = self
            .runner
            .start(&NewRun {
                workspace: s.workspace.clone(),
                agent: agent.clone(),
                task: s.task.clone(),
                trigger: "schedule".into(),
                requested_by: "krake".into(),
                parent: None,
                feedback: None,
                answer_to: None,
            })
            .await?;
        let ctx = WriteCtx {
            actor: Actor::system(),
            inbound: None,
            now: self.clock.now(),
        };
        self.inbox
            .reply(
                thread,
                &format!(
                    "{agent} is on it ({}); the result comes as a new thread.",
                    run.id
                ),
                &ctx,
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Directory;
    use crate::inbox::Origin;
    use crate::knowledge::NoKnowledge;
    use crate::knowledge::documents::tests::thread;
    use crate::ledger::MemoryLedger;
    use crate::model::ScriptedModel;
    use crate::run::{RecordingExecutor, RunStatus};
    use crate::schedule::{Assignment, Cadence, CatchUp, Schedule};
    use crate::test_fakes::{FakeInbox, FakeRuns, FakeSchedules};
    use crate::time::{ManualClock, Timestamp};
    use crate::workspace::WorkspaceSlug;

    struct World {
        runs: Arc<FakeRuns>,
        inbox: Arc<FakeInbox>,
        schedules: Arc<FakeSchedules>,
        clock: Arc<ManualClock>,
    }

    fn world() -> World {
        World {
            runs: Arc::new(FakeRuns::default()),
            inbox: Arc::new(FakeInbox::default()),
            schedules: Arc::new(FakeSchedules::default()),
            clock: Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000))),
        }
    }

    fn runner(w: &World, with_model: bool) -> Runner {
        Runner::new(
            w.runs.clone(),
            w.inbox.clone(),
            Arc::new(MemoryLedger::default()),
            with_model.then(|| Arc::new(ScriptedModel::new(Vec::new())) as _),
            Arc::new(NoKnowledge),
            Arc::new(RecordingExecutor::default()),
            w.clock.clone(),
            Directory::default(),
        )
    }

    fn schedule(id: i64, agent: &str, task: &str) -> Schedule {
        Schedule {
            id: ScheduleId(id),
            name: None,
            workspace: WorkspaceSlug::parse("lunavo").expect("slug"),
            assignment: Assignment {
                agent: agent.to_owned(),
                role: None,
                reason: "named in the task".to_owned(),
            },
            task: task.to_owned(),
            cadence: Cadence::new("0 9 * * 1", chrono_tz::UTC).expect("cadence"),
            description: "every Monday at 09:00".to_owned(),
            catch_up: CatchUp::Once,
            paused: false,
            next_run_at: None,
            last_run_at: None,
            created_by: "ana".to_owned(),
        }
    }

    fn handoff(w: &World, r: &Runner) -> Option<ScheduleHandOff> {
        ScheduleHandOff::new(r, w.schedules.clone(), w.inbox.clone(), w.clock.clone())
    }

    #[tokio::test]
    async fn without_a_model_there_is_no_hand_off() {
        let w = world();
        assert!(handoff(&w, &runner(&w, false)).is_none());
    }

    #[tokio::test]
    async fn each_ran_occurrence_becomes_a_run_and_its_thread_names_it() {
        let w = world();
        let h = handoff(&w, &runner(&w, true)).expect("hand-off");
        w.schedules
            .put(schedule(1, "Dexter", "Weekly KPI report for lunavo"));
        w.schedules.put(schedule(2, "Dexter", "Check refunds"));
        w.inbox
            .put(thread(10, "lunavo", Origin::System, "Weekly KPI report"));
        // The occurrence's thread names another agent (reassigned): that one runs it.
        let mut reassigned = thread(11, "lunavo", Origin::System, "Check refunds");
        reassigned.agent = Some("Cassie".to_owned());
        w.inbox.put(reassigned);
        w.clock.advance(std::time::Duration::from_secs(60));
        let now = w.clock.now();
        h.start_runs(&TickReport {
            ran: vec![
                (ScheduleId(1), now, ThreadId(10)),
                (ScheduleId(2), now, ThreadId(11)),
                // A schedule deleted since: nothing to do.
                (ScheduleId(3), now, ThreadId(12)),
            ],
            skipped: 0,
            lost: 0,
        })
        .await;
        let runs = w.runs.all();
        assert_eq!(runs.len(), 2, "{runs:?}");
        assert_eq!(
            (runs[0].agent.as_str(), runs[0].task.as_str()),
            ("Dexter", "Weekly KPI report for lunavo")
        );
        assert_eq!(runs[0].trigger, "schedule");
        assert_eq!(runs[0].requested_by, "krake");
        assert_eq!(runs[0].status, RunStatus::Queued);
        assert_eq!(runs[0].created_at, now, "on the injected clock");
        assert_eq!(runs[1].agent, "Cassie");
        let replied = w.inbox.thread(10).expect("thread").replies;
        assert_eq!(replied.len(), 1);
        assert_eq!(
            replied[0].text,
            "Dexter is on it (run 1); the result comes as a new thread."
        );
        assert_eq!(replied[0].author.to_string(), "krake");
        assert_eq!(replied[0].at, now);
        assert_eq!(
            w.inbox.thread(11).expect("thread").replies[0].text,
            "Cassie is on it (run 2); the result comes as a new thread."
        );
    }
}
