//! Schedules as stored ([`Schedule`], its runs) and their storage port, [`ScheduleRepo`].

use super::Cadence;
use crate::inbox::{NewThread, ThreadId};
use crate::ports::RepoError;
use crate::time::Timestamp;
use crate::workspace::WorkspaceSlug;
use async_trait::async_trait;
use std::fmt;

/// A schedule's short numeric id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScheduleId(pub i64);

impl fmt::Display for ScheduleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a schedule does when occurrences were missed while no Krake was running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CatchUp {
    /// Run once for all the missed occurrences (the default).
    #[default]
    Once,
    /// Skip missed occurrences; wait for the next one.
    Skip,
}

impl CatchUp {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CatchUp::Once => "once",
            CatchUp::Skip => "skip",
        }
    }

    /// Parses `once` or `skip`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "once" => Some(CatchUp::Once),
            "skip" => Some(CatchUp::Skip),
            _ => None,
        }
    }
}

impl fmt::Display for CatchUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Who runs a schedule's task and why: the coordinator's choice, recorded on the schedule and
/// on every run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The agent's name.
    pub agent: String,
    /// The role asked for, if the task named a role rather than an agent.
    pub role: Option<String>,
    /// Why this agent: "named in the task", "the data analyst in lunavo", ….
    pub reason: String,
}

/// A schedule as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Short id.
    pub id: ScheduleId,
    /// The config key for schedules defined in the config file; `None` for chat-made ones.
    pub name: Option<String>,
    /// The workspace the task belongs to.
    pub workspace: WorkspaceSlug,
    /// Who runs it.
    pub assignment: Assignment,
    /// What to do.
    pub task: String,
    /// When.
    pub cadence: Cadence,
    /// "every Monday at 09:00".
    pub description: String,
    /// What happens to occurrences missed while Krake was down.
    pub catch_up: CatchUp,
    /// Paused schedules do not run.
    pub paused: bool,
    /// The next occurrence, when active.
    pub next_run_at: Option<Timestamp>,
    /// When it last ran.
    pub last_run_at: Option<Timestamp>,
    /// Who created it.
    pub created_by: String,
}

/// What is needed to create a schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSchedule {
    /// The config key (config-defined schedules only).
    pub name: Option<String>,
    /// The workspace.
    pub workspace: WorkspaceSlug,
    /// Who runs it.
    pub assignment: Assignment,
    /// What to do.
    pub task: String,
    /// When.
    pub cadence: Cadence,
    /// For people.
    pub description: String,
    /// Missed-occurrence policy.
    pub catch_up: CatchUp,
    /// Who creates it.
    pub created_by: String,
    /// The first occurrence.
    pub next_run_at: Option<Timestamp>,
}

/// Why an occurrence ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunTrigger {
    /// It was due.
    Due,
    /// It was missed while Krake was down and runs once now.
    CatchUp,
    /// Someone asked for it (`/schedule run 3`).
    Manual,
}

impl RunTrigger {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunTrigger::Due => "due",
            RunTrigger::CatchUp => "catch-up",
            RunTrigger::Manual => "manual",
        }
    }
}

/// One run of a schedule: the occurrence, the inbox thread it posted and the assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRun {
    /// The schedule.
    pub schedule: ScheduleId,
    /// The occurrence it ran for (for manual runs, when asked).
    pub occurrence_at: Timestamp,
    /// When it ran.
    pub ran_at: Timestamp,
    /// Why.
    pub trigger: RunTrigger,
    /// The agent it was assigned to.
    pub agent: String,
    /// Why that agent.
    pub reason: String,
    /// The inbox thread posted.
    pub thread: Option<ThreadId>,
}

/// Schedules' storage.
#[async_trait]
pub trait ScheduleRepo: Send + Sync {
    /// Stores a new schedule, marking `ctx.inbound` applied and writing its answer
    /// ([`InboundMark::answer`](crate::inbound::InboundMark::answer)) in the same transaction.
    async fn create_schedule(
        &self,
        new: &NewSchedule,
        ctx: &crate::ports::WriteCtx,
    ) -> Result<Schedule, RepoError>;
    /// Creates or updates the config-defined schedule `new.name`, keeping its paused state and,
    /// when its timing is unchanged, its next run. Returns it.
    async fn sync_config_schedule(
        &self,
        new: &NewSchedule,
        now: Timestamp,
    ) -> Result<Schedule, RepoError>;
    /// Deletes config-defined schedules whose names are not in `keep`; returns how many.
    async fn prune_config_schedules(&self, keep: &[String]) -> Result<u64, RepoError>;
    /// One schedule.
    async fn get_schedule(&self, id: ScheduleId) -> Result<Option<Schedule>, RepoError>;
    /// Every schedule, by id.
    async fn list_schedules(&self) -> Result<Vec<Schedule>, RepoError>;
    /// Pauses (`next_run_at = None`) or resumes (with the next run given). `None` if absent.
    async fn set_schedule_paused(
        &self,
        id: ScheduleId,
        paused: bool,
        next_run_at: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Option<Schedule>, RepoError>;
    /// Deletes a schedule and its run history. `false` if absent.
    async fn delete_schedule(&self, id: ScheduleId) -> Result<bool, RepoError>;
    /// Active schedules whose next run is at or before `now`, earliest first.
    async fn due_schedules(&self, now: Timestamp, limit: u32) -> Result<Vec<Schedule>, RepoError>;
    /// The earliest next run of any active schedule.
    async fn next_due(&self) -> Result<Option<Timestamp>, RepoError>;
    /// Claims the occurrence `expected` of schedule `id` by moving its next run to `next`
    /// (a compare-and-set: it fails if another process moved it first), and in the same
    /// transaction records `run` and creates `thread` (if any) in the inbox. Returns `None`
    /// when the claim was lost, else the thread created.
    async fn claim_occurrence(
        &self,
        id: ScheduleId,
        expected: Timestamp,
        next: Option<Timestamp>,
        run: Option<(&ScheduleRun, &NewThread)>,
        now: Timestamp,
    ) -> Result<Option<Option<ThreadId>>, RepoError>;
    /// Records a manual run and creates its thread, without moving the next run; marks
    /// `ctx.inbound` applied and writes its answer in the same transaction.
    async fn record_manual_run(
        &self,
        run: &ScheduleRun,
        thread: &NewThread,
        ctx: &crate::ports::WriteCtx,
    ) -> Result<ThreadId, RepoError>;
    /// The latest runs of a schedule, newest first.
    async fn schedule_runs(
        &self,
        id: ScheduleId,
        limit: u32,
    ) -> Result<Vec<ScheduleRun>, RepoError>;
}
