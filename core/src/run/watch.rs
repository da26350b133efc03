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
