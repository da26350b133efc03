//! Schedules as a person sees them on a page ([`Krake::schedules_for`]): every schedule of a
//! workspace they see, its last occurrence and the agent run it started, and whether they may
//! pause or resume it (the member role in its workspace, the `/schedule` commands' rule).

use super::{Schedule, ScheduleRun};
use crate::actor::{Actor, Role};
use crate::ports::RepoError;
use crate::run::{Run, RunQuery};
use crate::service::Krake;

/// One schedule with what it last did.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleStatus {
    /// The schedule.
    pub schedule: Schedule,
    /// Its latest occurrence (due, caught up or run by hand), if it ran.
    pub last: Option<ScheduleRun>,
    /// The agent run that occurrence started, once found (without a model there is none:
    /// the task waits in the inbox thread of [`ScheduleRun::thread`]).
    pub run: Option<Run>,
    /// Whether the person may pause, resume, delete or run it.
    pub may_change: bool,
}

/// How many of an agent's latest runs are searched for the one a schedule started.
const RUNS_SEARCHED: u32 = 50;

impl Krake {
    /// The schedules of every workspace `actor` sees, by id, each with its last occurrence
    /// and run; `None` when schedules are not available here.
    pub async fn schedules_for(
        &self,
        actor: &Actor,
    ) -> Result<Option<Vec<ScheduleStatus>>, RepoError> {
        let Some(repo) = self.schedules.clone() else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for s in repo.list_schedules().await? {
            if !actor.can_see(&s.workspace) {
                continue;
            }
            let last = repo.schedule_runs(s.id, 1).await?.into_iter().next();
            let run = match (&last, &self.agents) {
                (Some(l), Some(agents)) => {
                    let q = RunQuery {
                        workspace: Some(s.workspace.clone()),
                        agent: Some(l.agent.clone()),
                        status: None,
                        before: None,
                        limit: Some(RUNS_SEARCHED),
                    };
                    agents
                        .runs(actor, &q)
                        .await?
                        .into_iter()
                        .find(|r| started_by(r, &s, l))
                }
                _ => None,
            };
            let may_change = !actor.unlinked && actor.role_in(&s.workspace) >= Role::Member;
            out.push(ScheduleStatus {
                schedule: s,
                last,
                run,
                may_change,
            });
        }
        Ok(Some(out))
    }
}

/// Whether `r` is the agent run occurrence `last` of schedule `s` started: a schedule-started
/// run of its task, for the agent it was assigned to, created when the occurrence ran or after
/// (runs come newest first, so the first match is the latest).
fn started_by(r: &Run, s: &Schedule, last: &ScheduleRun) -> bool {
    r.trigger == "schedule"
        && r.task == s.task
        && r.agent.eq_ignore_ascii_case(&last.agent)
        && r.created_at >= last.ran_at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunStatus;
    use crate::schedule::{Assignment, Cadence, CatchUp, RunTrigger, ScheduleId};
    use crate::time::Timestamp;
    use crate::workspace::WorkspaceSlug;

    fn schedule() -> Schedule {
        Schedule {
            id: ScheduleId(1),
            name: None,
            workspace: WorkspaceSlug::parse("lunavo").unwrap(),
            assignment: Assignment {
                agent: "Dexter".into(),
                role: None,
                reason: "named in the task".into(),
            },
            task: "summarise sales".into(),
            cadence: Cadence::new("0 9 * * 1", chrono_tz::UTC).unwrap(),
            description: "every Monday at 09:00".into(),
            catch_up: CatchUp::Once,
            paused: false,
            next_run_at: None,
            last_run_at: None,
            created_by: "ana".into(),
        }
    }

    fn run(task: &str, trigger: &str, agent: &str, at: i64) -> Run {
        Run {
            id: crate::run::RunId(7),
            workspace: WorkspaceSlug::parse("lunavo").unwrap(),
            agent: agent.into(),
            task: task.into(),
            trigger: trigger.into(),
            requested_by: "krake".into(),
            status: RunStatus::Done,
            steps: Vec::new(),
            result: None,
            error: None,
            attempts: 1,
            thread: None,
            parent: None,
            feedback: None,
            answer_to: None,
            stream_message: None,
            created_at: Timestamp::from_millis(at),
            updated_at: Timestamp::from_millis(at),
        }
    }

    #[test]
    fn the_run_of_an_occurrence_is_its_task_for_its_agent_after_it_ran() {
        let s = schedule();
        let last = ScheduleRun {
            schedule: s.id,
            occurrence_at: Timestamp::from_millis(1_000),
            ran_at: Timestamp::from_millis(2_000),
            trigger: RunTrigger::Due,
            agent: "Dexter".into(),
            reason: "named in the task".into(),
            thread: None,
        };
        assert!(started_by(
            &run("summarise sales", "schedule", "dexter", 2_000),
            &s,
            &last
        ));
        assert!(!started_by(
            &run("summarise sales", "schedule", "Dexter", 1_999),
            &s,
            &last
        ));
        assert!(!started_by(
            &run("summarise sales", "command", "Dexter", 3_000),
            &s,
            &last
        ));
        assert!(!started_by(
            &run("something else", "schedule", "Dexter", 3_000),
            &s,
            &last
        ));
        assert!(!started_by(
            &run("summarise sales", "schedule", "Soshie", 3_000),
            &s,
            &last
        ));
    }
}
