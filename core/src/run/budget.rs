//! Monthly budgets around model calls: a hold before each call (so concurrent runs cannot
//! cross a budget together), the ledger charge after it, and the 80% / 100% notices.

use super::{Run, RunId, Runner};
use crate::actor::{Actor, Role};
use crate::inbox::{Approvers, NewThread, ThreadKind};
use crate::ledger::{CallRecord, dollars, month_of, percent};
use crate::model::Usage;
use crate::ports::{RepoError, WriteCtx};
use crate::workspace::WorkspaceSlug;

/// Budget held for one call in flight.
pub(super) struct Held {
    keys: Vec<String>,
    amount: i64,
}

impl Runner {
    /// Holds `estimate` of the budgets that apply for one call, or says why it would cross
    /// one (counting what calls in flight in this process hold). Release it after charging.
    pub(super) async fn reserve(
        &self,
        workspace: &WorkspaceSlug,
        agent: &str,
        estimate: i64,
    ) -> Result<Result<Held, String>, RepoError> {
        let mut keys = Vec::new();
        if self.budgets.workspaces.contains_key(workspace.as_str()) {
            keys.push(format!("ws:{workspace}"));
        }
        if self.budgets.agents.contains_key(&agent.to_lowercase()) {
            keys.push(format!("agent:{}", agent.to_lowercase()));
        }
        if keys.is_empty() {
            return Ok(Ok(Held { keys, amount: 0 }));
        }
        // Held across the ledger reads: checks in this process are serial, which is what
        // makes check-then-hold atomic.
        let mut reserved = self.reserved.lock().await;
        let held_ws = reserved
            .get(&format!("ws:{workspace}"))
            .copied()
            .unwrap_or(0);
        let held_agent = reserved
            .get(&format!("agent:{}", agent.to_lowercase()))
            .copied()
            .unwrap_or(0);
        if let Some(why) = self
            .over_budget(workspace, agent, estimate, held_ws, held_agent)
            .await?
        {
            return Ok(Err(why));
        }
        for k in &keys {
            *reserved.entry(k.clone()).or_default() += estimate;
        }
        Ok(Ok(Held {
            keys,
            amount: estimate,
        }))
    }

    pub(super) async fn release(&self, h: Held) {
        if h.amount == 0 {
            return;
        }
        let mut reserved = self.reserved.lock().await;
        for k in h.keys {
            if let Some(v) = reserved.get_mut(&k) {
                *v -= h.amount;
                if *v <= 0 {
                    reserved.remove(&k);
                }
            }
        }
    }

    /// Why spending `estimate` more now would cross a budget, if it would, with `held_*`
    /// already promised to calls in flight.
    async fn over_budget(
        &self,
        workspace: &WorkspaceSlug,
        agent: &str,
        estimate: i64,
        held_ws: i64,
        held_agent: i64,
    ) -> Result<Option<String>, RepoError> {
        let month = month_of(self.clock.now());
        if let Some(budget) = self.budgets.workspaces.get(workspace.as_str()) {
            let spent = self.ledger.spent(workspace, None, &month).await? + held_ws;
            if spent.saturating_add(estimate) > *budget {
                return Ok(Some(format!(
                    "{workspace}'s monthly model budget is {}; {} is spent and this call would cost about {} more",
                    dollars(*budget),
                    dollars(spent),
                    dollars(estimate)
                )));
            }
        }
        if let Some(budget) = self.budgets.agents.get(&agent.to_lowercase()) {
            let spent = self.ledger.spent_by_agent(agent, &month).await? + held_agent;
            if spent.saturating_add(estimate) > *budget {
                return Ok(Some(format!(
                    "{agent}'s monthly model budget is {}; {} is spent and this call would cost about {} more",
                    dollars(*budget),
                    dollars(spent),
                    dollars(estimate)
                )));
            }
        }
        Ok(None)
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
