//! The durable record of a run ([`Run`], its [`RunStatus`] and steps) and its storage port,
//! [`RunRepo`].

use crate::inbox::ThreadId;
use crate::outbox::{Destination, KeyedOutbound};
use crate::ports::RepoError;
use crate::time::Timestamp;
use crate::workspace::WorkspaceSlug;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// A run's id (`run 12`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RunId(pub i64);

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "run {}", self.0)
    }
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for a worker.
    Queued,
    /// A worker holds it (under a lease).
    Running,
    /// Its proposal waits in an approval thread.
    AwaitingApproval,
    /// Its action is being carried out (set by compare-and-set before calling out, so it is
    /// carried out once); a crash leaves it here and the recovery pass fails and escalates it.
    Executing,
    /// Finished: acted, or approved and executed.
    Done,
    /// Its proposal was rejected (a reason starts a revision run).
    Rejected,
    /// Handed to a person in an escalation thread.
    Escalated,
    /// Failed (and escalated, so a person knows).
    Failed,
    /// Not started or stopped: the budget would be crossed.
    Refused,
    /// Its approval expired undecided (`approval_expiry_hours`).
    Expired,
    /// A person stopped it (`/cancel`): no model call and no action after that.
    Cancelled,
}

impl RunStatus {
    /// Every status.
    pub const ALL: [RunStatus; 11] = [
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::AwaitingApproval,
        RunStatus::Executing,
        RunStatus::Done,
        RunStatus::Rejected,
        RunStatus::Escalated,
        RunStatus::Failed,
        RunStatus::Refused,
        RunStatus::Expired,
        RunStatus::Cancelled,
    ];

    /// The name used in storage and replies.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::AwaitingApproval => "awaiting_approval",
            RunStatus::Executing => "executing",
            RunStatus::Done => "done",
            RunStatus::Rejected => "rejected",
            RunStatus::Escalated => "escalated",
            RunStatus::Failed => "failed",
            RunStatus::Refused => "refused",
            RunStatus::Expired => "expired",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether a person may still cancel a run in this status: it has not ended and its
    /// action is not being carried out.
    pub fn cancellable(self) -> bool {
        matches!(
            self,
            RunStatus::Queued | RunStatus::Running | RunStatus::AwaitingApproval
        )
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// One recorded step of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStep {
    /// When.
    pub at: Timestamp,
    /// What (`retrieved`, `model`, `tool`, `refused_tool`, `correction`, `verdict`, …).
    pub kind: String,
    /// Details for people.
    pub detail: String,
}

/// What is needed to start a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRun {
    /// The workspace it works in (knowledge, budget, threads).
    pub workspace: WorkspaceSlug,
    /// The agent.
    pub agent: String,
    /// The task.
    pub task: String,
    /// What started it (`command`, `schedule`, `event`, `revision`).
    pub trigger: String,
    /// Who asked (a user name, `system`).
    pub requested_by: String,
    /// The run this one revises.
    pub parent: Option<RunId>,
    /// What a person said about the earlier attempt (a rejection reason), shown to the model.
    pub feedback: Option<String>,
    /// Where the answer goes as it is produced and when it is final: the chat, channel or web
    /// session it was asked in (`None`: only the thread the run opens).
    pub answer_to: Option<Destination>,
}

/// A recorded run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    /// Its id.
    pub id: RunId,
    /// The workspace.
    pub workspace: WorkspaceSlug,
    /// The agent.
    pub agent: String,
    /// The task.
    pub task: String,
    /// What started it.
    pub trigger: String,
    /// Who asked.
    pub requested_by: String,
    /// Where it stands.
    pub status: RunStatus,
    /// The steps so far, oldest first.
    pub steps: Vec<RunStep>,
    /// The result, once there is one.
    pub result: Option<String>,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// How many times a worker claimed it.
    pub attempts: i32,
    /// The thread it opened (approval, escalation or notice).
    pub thread: Option<ThreadId>,
    /// The run it revises.
    pub parent: Option<RunId>,
    /// Feedback on the earlier attempt.
    pub feedback: Option<String>,
    /// Where its answer goes (see [`NewRun::answer_to`]).
    pub answer_to: Option<Destination>,
    /// The platform's id of the message its answer is streamed into, once one was opened.
    pub stream_message: Option<String>,
    /// Created.
    pub created_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
}

/// How a run ends (or waits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The new status.
    pub status: RunStatus,
    /// The result.
    pub result: Option<String>,
    /// The error.
    pub error: Option<String>,
    /// The thread opened.
    pub thread: Option<ThreadId>,
}

/// Storage of runs.
#[async_trait]
pub trait RunRepo: Send + Sync {
    /// Records a queued run.
    async fn create_run(&self, new: &NewRun, now: Timestamp) -> Result<Run, RepoError>;
    /// Leases up to `limit` runs that are queued, or running under an expired lease (a worker
    /// died), to `owner` until `now + lease`, counting an attempt on each.
    async fn claim_runs(
        &self,
        owner: &str,
        now: Timestamp,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<Run>, RepoError>;
    /// Extends a running run's lease to `lease_until` without a step (a worker waiting on a
    /// long model call); `false` once the run is no longer running.
    async fn extend_lease(&self, id: RunId, lease_until: Timestamp) -> Result<bool, RepoError>;
    /// Appends a step and, while the run is running, extends its lease to `lease_until`.
    /// `false` when the run is no longer running (cancelled, say): the engine stops there.
    async fn add_step(
        &self,
        id: RunId,
        step: &RunStep,
        lease_until: Timestamp,
    ) -> Result<bool, RepoError>;
    /// Cancels a run that is queued, running or awaiting approval (compare-and-set), with a
    /// `cancelled` step saying who and why, in one transaction. The run as it is afterwards
    /// (unchanged when it could not be cancelled); `None` if there is no such run.
    async fn cancel_run(
        &self,
        id: RunId,
        by: &str,
        reason: Option<&str>,
        now: Timestamp,
    ) -> Result<Option<Run>, RepoError>;
    /// Records the message a run's answer is streamed into (a resumed run edits it too).
    async fn set_stream_message(&self, id: RunId, message_id: &str) -> Result<(), RepoError>;
    /// Like [`finish_run`](Self::finish_run), queuing `answer` (once, by its key) in the same
    /// transaction: the answer a person waits for is never lost between the two.
    async fn finish_run_answering(
        &self,
        id: RunId,
        from: RunStatus,
        outcome: &RunOutcome,
        answer: &KeyedOutbound,
        now: Timestamp,
    ) -> Result<bool, RepoError>;
    /// Moves a run from `from` to the outcome's status (compare-and-set); `false` if the run
    /// was not in `from`.
    async fn finish_run(
        &self,
        id: RunId,
        from: RunStatus,
        outcome: &RunOutcome,
        now: Timestamp,
    ) -> Result<bool, RepoError>;
    /// One run with its steps.
    async fn run(&self, id: RunId) -> Result<Option<Run>, RepoError>;
    /// The run that opened `thread`.
    async fn run_for_thread(&self, thread: ThreadId) -> Result<Option<Run>, RepoError>;
    /// Queues one run (trigger `event`) for each thread created at or after `since` whose
    /// `origin_key` starts with `prefix` and that names an agent; the thread's title and body
    /// are the task. The thread's key is stored on the run and is unique, so each thread starts
    /// one run, once, across processes and restarts. Returns the runs queued.
    async fn queue_from_threads(
        &self,
        prefix: &str,
        since: Timestamp,
        now: Timestamp,
        limit: u32,
    ) -> Result<Vec<RunId>, RepoError>;
    /// Runs in `status` last changed at or before `updated_before`, oldest first, without
    /// their steps (the recovery pass looks for runs stuck executing or awaiting a decision
    /// that was taken).
    async fn runs_with_status(
        &self,
        status: RunStatus,
        updated_before: Timestamp,
        limit: u32,
    ) -> Result<Vec<Run>, RepoError>;
    /// Runs matching the filter, newest first, without their steps.
    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<Run>, RepoError>;
    /// Starts (or takes back) the sub-run a parent run delegates, keyed by `key` so a resumed
    /// parent finds the child it started before instead of starting a second one. A new child
    /// is recorded running under `owner`'s lease until `now + lease`; an existing one is taken
    /// over the same way when it is queued or its lease ran out (the process driving it died).
    /// Delegated runs are never claimed by workers: their parent drives them.
    async fn start_delegated(
        &self,
        new: &NewRun,
        key: &str,
        owner: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<Delegated, RepoError>;
}

/// The trigger of a sub-run an agent delegated (`delegate` tool).
pub const DELEGATION: &str = "delegation";

/// The trigger of a run answering a shop's visitor (the customer widget): it may only search
/// the knowledge base, answer or escalate ([`VISITOR_TOOLS`]), its threads are shown in the
/// visitor's conversation, and a reply there starts no follow-up run.
pub const VISITOR: &str = "visitor";

/// The tools of a run answering a visitor, whatever the agent's own policy allows.
pub const VISITOR_TOOLS: &[&str] = &["reply", "escalate", "search_knowledge"];

/// What [`RunRepo::start_delegated`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delegated {
    /// The child is now running under the caller's lease (new, or taken over).
    Started(Run),
    /// The child exists and is not the caller's to run: it ended, or another live worker
    /// holds it.
    Existing(Run),
}

/// Which runs to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunFilter {
    /// Only these workspaces (the ones a person may see); `None` for all.
    pub visible: Option<Vec<WorkspaceSlug>>,
    /// Only this workspace.
    pub workspace: Option<WorkspaceSlug>,
    /// Only this agent (any spelling).
    pub agent: Option<String>,
    /// Only this status.
    pub status: Option<RunStatus>,
    /// Only runs started by this run (revisions and delegated sub-runs).
    pub parent: Option<RunId>,
    /// Only runs with a smaller id (paging).
    pub before: Option<RunId>,
    /// At most this many (1–1000).
    pub limit: u32,
}

impl RunFilter {
    /// The newest `limit` runs of every workspace.
    pub fn recent(limit: u32) -> Self {
        Self {
            visible: None,
            workspace: None,
            agent: None,
            status: None,
            parent: None,
            before: None,
            limit,
        }
    }
}
