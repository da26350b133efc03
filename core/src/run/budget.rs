//! Monthly budgets around model calls: a hold before each call (so concurrent runs cannot
//! cross a budget together), the ledger charge after it, and the 80% / 100% notices.

use super::{Run, RunId, Runner};
use crate::actor::{Actor, Role};
use crate::inbox::{Approvers, NewThread, ThreadKind};
use crate::ledger::{BudgetHold, BudgetScope, CallRecord, dollars, month_of, percent};
use crate::model::Usage;
use crate::ports::{RepoError, WriteCtx};
use crate::workspace::WorkspaceSlug;

/// Budget held for one call in flight (in the ledger, so every process sees it).
pub(super) struct Held {
    id: Option<String>,
}

impl Runner {
    /// Holds `estimate` of the budgets that apply for one call, or says why it would cross
    /// one (counting what calls in flight hold, in every process). Release it after charging.
    pub(super) async fn reserve(
        &self,
        workspace: &WorkspaceSlug,
        agent: &str,
        estimate: i64,
    ) -> Result<Result<Held, String>, RepoError> {
        let shown = agent;
        let agent = agent.to_lowercase();
        let workspace_budget = self.budgets.workspaces.get(workspace.as_str()).copied();
        let agent_budget = self.budgets.agents.get(&agent).copied();
        if workspace_budget.is_none() && agent_budget.is_none() {
            return Ok(Ok(Held { id: None }));
        }
        let now = self.clock.now();
        let hold = BudgetHold {
            id: format!(
                "{:016x}{:016x}",
                crate::backoff::random(),
                crate::backoff::random()
            ),
            workspace: workspace.clone(),
            agent,
            month: month_of(now),
            amount: estimate,
            workspace_budget,
            agent_budget,
            now,
            // Outlives any call (timeouts and retries included); a process that died mid-call
            // stops holding the budget then.
            expires: now.plus(self.limits.lease.max(std::time::Duration::from_secs(600))),
        };
        Ok(match self.ledger.hold(&hold).await? {
            Ok(()) => Ok(Held { id: Some(hold.id) }),
            Err(over) => {
                let who = match over.scope {
                    BudgetScope::Workspace => workspace.to_string(),
                    BudgetScope::Agent => shown.to_owned(),
                };
                let held = if over.held > 0 {
                    format!(" ({} of it held by calls in flight)", dollars(over.held))
                } else {
                    String::new()
                };
                Err(format!(
                    "{who}'s monthly model budget is {}; {} is spent{held} and this call would cost about {} more",
                    dollars(over.budget),
                    dollars(over.spent + over.held),
                    dollars(estimate)
                ))
            }
        })
    }

    /// Gives the call's hold back (a failure only delays it until it expires).
    pub(super) async fn release(&self, h: Held) {
        if let Some(id) = h.id
            && let Err(e) = self.ledger.release_hold(&id).await
        {
            tracing::warn!("a budget hold was not released (it expires by itself): {e}");
        }
    }

    /// Records a call in the ledger and posts the 80% notice / 100% escalation once a month.
    pub(super) async fn charge(
        &self,
        run: &Run,
        provider: &str,
        model: &str,
        usage: Usage,
        cost: i64,
    ) -> Result<(), RepoError> {
        self.charge_call(
            Some(run.id),
            &run.workspace,
            &run.agent,
            provider,
            model,
            usage,
            cost,
        )
        .await
    }

    /// Records a model call made for `agent` in `workspace` and posts budget notices.
    #[allow(clippy::too_many_arguments)]
    pub async fn charge_call(
        &self,
        run: Option<RunId>,
        workspace: &WorkspaceSlug,
        agent: &str,
        provider: &str,
        model: &str,
        usage: Usage,
        cost: i64,
    ) -> Result<(), RepoError> {
        let now = self.clock.now();
        let call = CallRecord {
            run: run.map(|r| r.0),
            workspace: workspace.clone(),
            agent: agent.to_owned(),
            provider: provider.to_owned(),
            model: model.to_owned(),
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cost_micros: cost,
            at: now,
        };
        self.ledger.record_call(&call).await?;
        let month = month_of(now);
        let mut checks = Vec::new();
        if let Some(b) = self.budgets.workspaces.get(workspace.as_str()) {
            let spent = self.ledger.spent(workspace, None, &month).await?;
            checks.push((format!("workspace {workspace}"), *b, spent));
        }
        if let Some(b) = self.budgets.agents.get(&agent.to_lowercase()) {
            let spent = self.ledger.spent_by_agent(agent, &month).await?;
            checks.push((format!("agent {agent}"), *b, spent));
        }
        for (scope, budget, spent) in checks {
            let pct = percent(spent, budget);
            let level = if pct >= 100 {
                100
            } else if pct >= 80 {
                80
            } else {
                continue;
            };
            let (kind, title) = if level == 100 {
                (
                    ThreadKind::Escalation,
                    format!("Model budget spent: {scope} ({month})"),
                )
            } else {
                (
                    ThreadKind::Notice,
                    format!("Model budget at 80%: {scope} ({month})"),
                )
            };
            let mut new = NewThread::new(
                workspace.clone(),
                kind,
                title,
                format!(
                    "{scope} has spent {} of its {} monthly model budget ({pct}%).{}",
                    dollars(spent),
                    dollars(budget),
                    if level == 100 {
                        " Runs that would spend more are stopped until next month or until the budget is raised in the config."
                    } else {
                        " At 100% runs stop."
                    }
                ),
            );
            if level == 100 {
                new.approvers = Approvers::Role { role: Role::Owner };
            }
            new.origin_key = Some(format!("budget:{scope}:{month}:{level}"));
            new.post_to = self.routes.for_workspace(workspace).to_vec();
            let ctx = WriteCtx {
                actor: Actor::system(),
                inbound: None,
                now,
            };
            self.inbox.create(&new, &ctx).await?;
        }
        Ok(())
    }
}
