//! Runs people can watch and steer, once for every caller (chat, REST, the dashboard): the
//! runs a person may see, one run with its steps and what its model calls used, and
//! cancelling one. Each caller only renders the typed outcome its own way.

use super::{Run, RunFilter, RunId, RunStatus, Runner};
use crate::actor::{Actor, Role};
use crate::ledger::RunUsage;
use crate::ports::RepoError;
use crate::workspace::WorkspaceSlug;
use serde::Serialize;

/// Which runs a person asks for (`/runs lunavo penn running`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunQuery {
    /// Only this workspace.
    pub workspace: Option<WorkspaceSlug>,
    /// Only this agent.
    pub agent: Option<String>,
    /// Only this status.
    pub status: Option<RunStatus>,
    /// Only runs older than this one (paging).
    pub before: Option<RunId>,
    /// At most this many (default 20, at most 200).
    pub limit: Option<u32>,
}

/// One run as a person sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunView {
    /// The run with its steps.
    pub run: Run,
    /// What its model calls used (tokens, cost).
    pub usage: RunUsage,
}

/// What cancelling a run gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancel {
    /// Cancelled now: no model call and no action after this.
    Cancelled(Box<Run>),
    /// It had already ended (or was cancelled before); nothing changed.
    Ended(Box<Run>),
    /// Its approved action is being carried out; it cannot be stopped half-way.
    Executing(Box<Run>),
    /// No such run, or one of a workspace the person may not see.
    NotFound,
    /// The platform account is not linked to a Krake user.
    NotLinked,
    /// Cancelling needs the member role in the run's workspace.
    RoleTooLow {
        /// The run.
        run: Box<Run>,
        /// The person's role there.
        role: Role,
    },
}

impl Runner {
    /// The runs `actor` may see that match `q`, newest first, without their steps.
    pub async fn runs_for(&self, actor: &Actor, q: &RunQuery) -> Result<Vec<Run>, RepoError> {
        let visible = actor.visible(self.directory.workspaces().iter().map(|w| &w.slug));
        self.runs
            .list_runs(&RunFilter {
                visible,
                workspace: q.workspace.clone(),
                agent: q.agent.clone(),
                status: q.status,
                parent: None,
                before: q.before,
                limit: q.limit.unwrap_or(20).clamp(1, 200),
            })
            .await
    }

    /// One run with its steps and usage, if `actor` may see it.
    pub async fn run_for(&self, actor: &Actor, id: RunId) -> Result<Option<RunView>, RepoError> {
        match self.runs.run(id).await? {
            Some(run) if actor.can_see(&run.workspace) => {
                let usage = self.ledger.run_usage(run.id.0).await?;
                Ok(Some(RunView { run, usage }))
            }
            _ => Ok(None),
        }
    }

    /// Cancels a run for `actor` (a member of its workspace), saying why. A cancelled run
    /// makes no further model call and never carries out an action; a model call in flight
    /// is still charged, and the run stops at its next step. An approval thread it opened is
    /// told, so nobody approves it in vain.
    pub async fn cancel(
        &self,
        actor: &Actor,
        id: RunId,
        reason: Option<&str>,
    ) -> Result<Cancel, RepoError> {
        let run = match self.runs.run(id).await? {
            Some(r) if actor.can_see(&r.workspace) => r,
            _ => return Ok(Cancel::NotFound),
        };
        if actor.unlinked {
            return Ok(Cancel::NotLinked);
        }
        let role = actor.role_in(&run.workspace);
        if role < Role::Member {
            return Ok(Cancel::RoleTooLow {
                run: Box::new(run),
                role,
            });
        }
        if run.status == RunStatus::Executing {
            return Ok(Cancel::Executing(Box::new(run)));
        }
        if !run.status.cancellable() {
            return Ok(Cancel::Ended(Box::new(run)));
        }
        let now = self.clock.now();
        let Some(after) = self
            .runs
            .cancel_run(id, actor.user.as_str(), reason, now)
            .await?
        else {
            return Ok(Cancel::NotFound);
        };
        if after.status != RunStatus::Cancelled {
            return Ok(match after.status {
                RunStatus::Executing => Cancel::Executing(Box::new(after)),
                _ => Cancel::Ended(Box::new(after)),
            });
        }
        self.cancel_children(&after, actor.user.as_str()).await?;
        if run.status == RunStatus::AwaitingApproval
            && let Some(th) = after.thread
        {
            self.note_on_thread(
                th,
                &format!(
                    "{} was cancelled by {}; approving this thread carries out nothing now.",
                    after.id, actor.user
                ),
            )
            .await?;
        }
        Ok(Cancel::Cancelled(Box::new(after)))
    }
}

/// One agent as people see it: what it is doing, what it cost this month against its
/// budget, what it last finished, and its tools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentStatus {
    /// The agent (`Penn`).
    pub name: String,
    /// Its role.
    pub role: String,
    /// The runs it is working on now (newest first); empty when idle.
    pub working_on: Vec<RunId>,
    /// Runs started this month (UTC) in the workspaces the person sees.
    pub runs_this_month: usize,
    /// Micro-dollars its model calls cost this month in those workspaces.
    pub spent_micros: i64,
    /// Its monthly budget (`[budgets.agents]`), in micro-dollars.
    pub budget_micros: Option<i64>,
    /// Its latest finished run with a result.
    pub last_result: Option<(RunId, String)>,
    /// The tools it is offered.
    pub tools: Vec<String>,
}

/// How far back the month's run count looks (runs per agent).
const MONTH_WINDOW: u32 = 1000;

impl Runner {
    /// Every agent working in a workspace `actor` sees, with its status.
    pub async fn agent_status(&self, actor: &Actor) -> Result<Vec<AgentStatus>, RepoError> {
        let visible = actor.visible(self.directory.workspaces().iter().map(|w| &w.slug));
        let month = crate::ledger::month_of(self.clock.now());
        let mut out = Vec::new();
        for agent in self.directory.agents() {
            let seen: Vec<&WorkspaceSlug> = agent
                .workspaces
                .iter()
                .filter(|w| actor.can_see(w))
                .collect();
            if seen.is_empty() {
                continue;
            }
            let filter = RunFilter {
                visible: visible.clone(),
                agent: Some(agent.name.to_string()),
                ..RunFilter::recent(MONTH_WINDOW)
            };
            let recent = self.runs.list_runs(&filter).await?;
            let working_on = recent
                .iter()
                .filter(|r| r.status == RunStatus::Running)
                .map(|r| r.id)
                .collect();
            let runs_this_month = recent
                .iter()
                .filter(|r| crate::ledger::month_of(r.created_at) == month)
                .count();
            let last_result = recent
                .iter()
                .find(|r| r.status == RunStatus::Done && r.result.is_some())
                .and_then(|r| r.result.clone().map(|t| (r.id, t)));
            let mut spent_micros = 0;
            for w in &seen {
                spent_micros += self
                    .ledger
                    .spent(w, Some(agent.name.as_str()), &month)
                    .await?;
            }
            let policy = self.policy(agent.name.as_str());
            out.push(AgentStatus {
                name: agent.name.to_string(),
                role: agent.role.clone(),
                working_on,
                runs_this_month,
                spent_micros,
                budget_micros: self
                    .budgets
                    .agents
                    .get(&agent.name.as_str().to_lowercase())
                    .copied(),
                last_result,
                tools: self
                    .tools_for(&policy)
                    .into_iter()
                    .map(|t| t.name)
                    .collect(),
            });
        }
        Ok(out)
    }
}
