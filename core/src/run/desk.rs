//! [`AgentDesk`]: what the core service asks of the agents (`ask`, decisions, replies, costs,
//! natural-language routing), and the [`Runner`]'s answer to it.

use super::tools::render_passages;
use super::{NewRun, ROUTER, Runner};
use crate::actor::Actor;
use crate::agent::Agent;
use crate::chat::command::CommandParser;
use crate::inbox::Thread;
use crate::knowledge::KnowledgeQuery;
use crate::ledger::month_of;
use crate::model::Usage;
use crate::outbox::Destination;
use crate::ports::RepoError;
use crate::reply::Reply;
use crate::workspace::WorkspaceSlug;
use async_trait::async_trait;
use std::fmt::Write as _;

/// What the core service asks of the agents (so `ask`, decisions and `/costs` reach them).
#[async_trait]
pub trait AgentDesk: Send + Sync {
    /// Gives `agent` a task in `workspace` for `actor` (authorised already); the reply says
    /// what happens next. The answer streams to `answer_to`, where the task was asked.
    async fn ask(
        &self,
        actor: &Actor,
        agent: &Agent,
        workspace: &WorkspaceSlug,
        text: &str,
        answer_to: Option<Destination>,
    ) -> Result<Reply, RepoError>;
    /// A thread was decided (approved or rejected); an agent's proposal may follow.
    async fn decided(&self, thread: &Thread, actor: &Actor) -> Result<Option<String>, RepoError>;
    /// A person replied in `thread` (with its replies, the new one last): when a run opened
    /// it, the agent follows up with the thread's turns as its memory.
    async fn replied(&self, thread: &Thread, actor: &Actor) -> Result<Option<String>, RepoError> {
        let _ = (thread, actor);
        Ok(None)
    }
    /// The month's costs for one workspace or all the actor may see.
    async fn costs(
        &self,
        actor: &Actor,
        workspace: Option<&WorkspaceSlug>,
    ) -> Result<Reply, RepoError>;
    /// The costs of `month` (`YYYY-MM`, default this month) for one workspace, or for every
    /// workspace the actor sees; `None` when the actor may not see the workspace.
    async fn cost_report(
        &self,
        actor: &Actor,
        workspace: Option<&WorkspaceSlug>,
        month: Option<&str>,
    ) -> Result<Option<crate::ledger::CostReport>, RepoError>;
    /// Whether a model is configured (otherwise `ask` answers offline).
    fn has_model(&self) -> bool;
    /// The passages of `workspace`'s knowledge matching `text`, cited (no model involved;
    /// the caller checked the person may see the workspace).
    async fn search(&self, workspace: &WorkspaceSlug, text: &str) -> Result<Reply, RepoError>;
    /// The passages `search` shows, best first with their scores (the caller checked the
    /// person may see the workspace).
    async fn passages(
        &self,
        workspace: &WorkspaceSlug,
        text: &str,
    ) -> Result<Vec<crate::knowledge::Passage>, crate::knowledge::RetrieveError> {
        let _ = (workspace, text);
        Ok(Vec::new())
    }
    /// Every agent of a workspace `actor` sees: working or idle, this month's runs and cost
    /// against its budget, its last result and its tools.
    async fn agent_status(&self, actor: &Actor) -> Result<Vec<super::AgentStatus>, RepoError>;
    /// The monthly budgets in force (`[budgets]`): none unless configured.
    fn budgets(&self) -> crate::ledger::Budgets {
        crate::ledger::Budgets::default()
    }
    /// The runs `actor` may see that match `q`, newest first.
    async fn runs(&self, actor: &Actor, q: &super::RunQuery) -> Result<Vec<super::Run>, RepoError>;
    /// One run with its steps and usage, if `actor` may see it.
    async fn run(
        &self,
        actor: &Actor,
        id: super::RunId,
    ) -> Result<Option<super::RunView>, RepoError>;
    /// Cancels a run for `actor`, saying why.
    async fn cancel(
        &self,
        actor: &Actor,
        id: super::RunId,
        reason: Option<&str>,
    ) -> Result<super::Cancel, RepoError>;
    /// A typed command a model picked for text the grammar did not understand (natural
    /// language routing); `None` without a model, over budget, or when it picked nothing valid.
    async fn route(
        &self,
        actor: &Actor,
        parser: &CommandParser,
        text: &str,
    ) -> Result<Option<crate::chat::command::Command>, RepoError>;
}

impl Runner {
    /// The answer `ask` gives without a model: the retrieved passages alone, labelled, cited.
    pub async fn offline_answer(
        &self,
        workspace: &WorkspaceSlug,
        agent: &Agent,
        text: &str,
    ) -> Reply {
        let q = KnowledgeQuery {
            workspace: workspace.clone(),
            text: text.to_owned(),
            limit: self.limits.knowledge_passages,
            token_budget: self.limits.knowledge_tokens,
            source_kind: None,
        };
        match self.retriever.retrieve(&q).await {
            Ok(p) if !p.is_empty() => Reply::info(format!(
                "Offline answer (no model is configured, so {} did not run): the knowledge of {workspace} says:\n{}",
                agent.name,
                render_passages(&p)
            )),
            Ok(_) => Reply::info(format!(
                "Offline (no model is configured, so {} did not run), and the knowledge of {workspace} has nothing on this. Add a model provider under [[llm.providers]] to let agents work.",
                agent.name
            )),
            Err(e) => Reply::warning(format!(
                "Offline (no model is configured), and the knowledge base cannot be searched: {e}"
            )),
        }
    }
}

#[async_trait]
impl AgentDesk for Runner {
    async fn ask(
        &self,
        actor: &Actor,
        agent: &Agent,
        workspace: &WorkspaceSlug,
        text: &str,
        answer_to: Option<Destination>,
    ) -> Result<Reply, RepoError> {
        if !self.has_model() {
            return Ok(self.offline_answer(workspace, agent, text).await);
        }
        let run = self
            .start(&NewRun {
                workspace: workspace.clone(),
                agent: agent.name.to_string(),
                task: text.to_owned(),
                trigger: if actor.front == crate::actor::Front::Visitor {
                    super::VISITOR.into()
                } else {
                    "command".into()
                },
                requested_by: actor.user.to_string(),
                parent: None,
                feedback: None,
                answer_to: answer_to.clone(),
            })
            .await?;
        Ok(Reply::success(if answer_to.is_some() {
            format!(
                "{} is on it ({} in {workspace}). The answer follows here, and in the To Do inbox.",
                agent.name, run.id
            )
        } else {
            format!(
                "{} is on it ({} in {workspace}). The result comes to the To Do inbox.",
                agent.name, run.id
            )
        }))
    }

    async fn decided(&self, thread: &Thread, actor: &Actor) -> Result<Option<String>, RepoError> {
        self.on_decision(thread, actor).await
    }

    async fn replied(&self, thread: &Thread, actor: &Actor) -> Result<Option<String>, RepoError> {
        self.on_reply(thread, actor).await
    }

    fn has_model(&self) -> bool {
        self.model.is_some()
    }

    async fn passages(
        &self,
        workspace: &WorkspaceSlug,
        text: &str,
    ) -> Result<Vec<crate::knowledge::Passage>, crate::knowledge::RetrieveError> {
        let q = KnowledgeQuery {
            workspace: workspace.clone(),
            text: text.to_owned(),
            limit: self.limits.knowledge_passages,
            token_budget: self.limits.knowledge_tokens,
            source_kind: None,
        };
        self.retriever.retrieve(&q).await
    }

    async fn search(&self, workspace: &WorkspaceSlug, text: &str) -> Result<Reply, RepoError> {
        Ok(match self.passages(workspace, text).await {
            Ok(p) if !p.is_empty() => Reply::info(format!(
                "The knowledge of {workspace} on \"{}\":\n{}",
                crate::text::one_line(text, 80),
                render_passages(&p)
            )),
            Ok(_) => Reply::info(format!(
                "Nothing in the knowledge of {workspace} matches \"{}\". Add documents with `krake ingest`.",
                crate::text::one_line(text, 80)
            )),
            Err(e) => Reply::warning(format!(
                "The knowledge base cannot be searched now: {e}. Try again shortly."
            )),
        })
    }

    fn budgets(&self) -> crate::ledger::Budgets {
        Runner::budgets(self).clone()
    }

    async fn agent_status(&self, actor: &Actor) -> Result<Vec<super::AgentStatus>, RepoError> {
        Runner::agent_status(self, actor).await
    }

    async fn runs(&self, actor: &Actor, q: &super::RunQuery) -> Result<Vec<super::Run>, RepoError> {
        self.runs_for(actor, q).await
    }

    async fn run(
        &self,
        actor: &Actor,
        id: super::RunId,
    ) -> Result<Option<super::RunView>, RepoError> {
        self.run_for(actor, id).await
    }

    async fn cancel(
        &self,
        actor: &Actor,
        id: super::RunId,
        reason: Option<&str>,
    ) -> Result<super::Cancel, RepoError> {
        Runner::cancel(self, actor, id, reason).await
    }

    async fn cost_report(
        &self,
        actor: &Actor,
        workspace: Option<&WorkspaceSlug>,
        month: Option<&str>,
    ) -> Result<Option<crate::ledger::CostReport>, RepoError> {
        let month = month.map_or_else(|| month_of(self.clock.now()), str::to_owned);
        if let Some(w) = workspace {
            if !actor.can_see(w) || self.directory.workspace(w).is_none() {
                return Ok(None);
            }
            return Ok(Some(self.ledger.report(Some(w), &month).await?));
        }
        let visible: Vec<WorkspaceSlug> = self
            .directory
            .workspaces()
            .iter()
            .map(|w| w.slug.clone())
            .filter(|w| actor.can_see(w))
            .collect();
        if visible.len() == self.directory.workspaces().len() {
            return Ok(Some(self.ledger.report(None, &month).await?));
        }
        let mut all = crate::ledger::CostReport {
            month: month.clone(),
            ..crate::ledger::CostReport::default()
        };
        for w in &visible {
            all.merge(&self.ledger.report(Some(w), &month).await?);
        }
        Ok(Some(all))
    }

    async fn route(
        &self,
        actor: &Actor,
        parser: &CommandParser,
        text: &str,
    ) -> Result<Option<crate::chat::command::Command>, RepoError> {
        let Some(model) = &self.model else {
            return Ok(None);
        };
        // Charged to the first workspace the person sees (routing belongs to no agent run).
        let Some(ws) = self
            .directory
            .workspaces()
            .iter()
            .map(|w| w.slug.clone())
            .find(|w| actor.can_see(w))
            .or_else(|| self.directory.workspaces().first().map(|w| w.slug.clone()))
        else {
            return Ok(None);
        };
        let policy = self.policy(ROUTER);
        let request = crate::router::request(text, policy.model.clone());
        let estimate = model.price(policy.model.as_deref()).cost_micros(Usage {
            input_tokens: request.estimated_input_tokens(),
            output_tokens: 200,
        });
        let hold = match self.reserve(&ws, ROUTER, estimate).await? {
            Ok(h) => h,
            Err(why) => {
                tracing::info!(%why, "natural-language routing skipped: budget");
                return Ok(None);
            }
        };
        let response = match model.chat(&request).await {
            Ok(r) => r,
            Err(e) => {
                self.release(hold).await;
                tracing::warn!(error = %e, "natural-language routing: the model failed");
                return Ok(None);
            }
        };
        let charged = self
            .charge_call(
                None,
                &ws,
                ROUTER,
                &response.provider,
                &response.model,
                response.usage,
                response.cost_micros,
            )
            .await;
        self.release(hold).await;
        charged?;
        Ok(match crate::router::interpret(&response, parser) {
            crate::router::Routed::Command(c) => Some(c),
            crate::router::Routed::Invalid(line) => {
                tracing::info!(%line, "the model routed to an invalid command; not run");
                None
            }
            crate::router::Routed::Nothing => None,
        })
    }

    async fn costs(
        &self,
        actor: &Actor,
        workspace: Option<&WorkspaceSlug>,
    ) -> Result<Reply, RepoError> {
        let month = month_of(self.clock.now());
        match workspace {
            Some(w) if !actor.can_see(w) || self.directory.workspace(w).is_none() => Ok(
                Reply::warning(format!("You see no workspace `{w}`. See /workspaces.")),
            ),
            Some(w) => {
                let r = self.ledger.report(Some(w), &month).await?;
                Ok(Reply::info(crate::ledger::render_report(&r, &self.budgets)))
            }
            None => {
                let visible: Vec<WorkspaceSlug> = self
                    .directory
                    .workspaces()
                    .iter()
                    .map(|w| w.slug.clone())
                    .filter(|w| actor.can_see(w))
                    .collect();
                let all = self.ledger.report(None, &month).await?;
                if visible.len() == self.directory.workspaces().len() {
                    return Ok(Reply::info(crate::ledger::render_report(
                        &all,
                        &self.budgets,
                    )));
                }
                let mut t = String::new();
                for w in &visible {
                    let r = self.ledger.report(Some(w), &month).await?;
                    let _ = writeln!(t, "{}", crate::ledger::render_report(&r, &self.budgets));
                }
                if visible.is_empty() {
                    t.push_str("You see no workspace yet.");
                }
                Ok(Reply::info(t.trim_end()))
            }
        }
    }
}
