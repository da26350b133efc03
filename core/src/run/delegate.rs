//! The `delegate` tool: an agent hands a sub-task to another agent (by name or role).
//!
//! The child is a run of its own (trigger `delegation`, its parent recorded) in the parent's
//! workspace, so it counts against the same budget and is charged on its own run. The parent
//! drives it in place (workers never claim delegated runs), keeps its own lease alive while it
//! waits, and gets the child's end as the tool's result. The child is offered only its own
//! tools; a chain is at most [`RunLimits::max_delegation_depth`](super::RunLimits) deep and
//! never returns to an agent already in it. A resumed parent finds the child it started
//! before (same agent and task) instead of starting a second one.

use super::repo::{DELEGATION, Delegated};
use super::tools::{DelegateArgs, non_empty};
use super::{NewRun, Run, RunFilter, RunStatus, Runner};
use crate::agent::Agent;
use crate::ports::RepoError;
use crate::text::one_line;
use std::future::Future;
use std::pin::Pin;

/// What a `delegate` call gave back.
pub(super) enum Delegation {
    /// The child's end, for the model, and a line for the parent's thread.
    Answer {
        /// The tool's result.
        answer: String,
        /// What the parent's thread shows.
        note: String,
    },
    /// Refused (unknown agent, too deep, a cycle): the model is told why.
    Error(String),
    /// The parent was cancelled meanwhile.
    Cancelled,
}

type DriveFuture<'a> = Pin<Box<dyn Future<Output = Result<bool, RepoError>> + Send + 'a>>;

impl Runner {
    /// The agents above `run` in its delegation chain, nearest first (empty for a run a
    /// person or a schedule started).
    pub(super) async fn lineage(&self, run: &Run) -> Result<Vec<String>, RepoError> {
        let mut chain = Vec::new();
        let mut cur = run.clone();
        // Bounded: a chain is never deeper than the configured limit (at most 5).
        for _ in 0..8 {
            if cur.trigger != DELEGATION {
                break;
            }
            let Some(p) = cur.parent else { break };
            let Some(parent) = self.runs.run(p).await? else {
                break;
            };
            chain.push(parent.agent.clone());
            cur = parent;
        }
        Ok(chain)
    }

    /// Whether `run` may still delegate (its depth is under the limit).
    pub(super) async fn may_delegate(&self, run: &Run) -> Result<bool, RepoError> {
        let depth = self.lineage(run).await?.len();
        Ok((depth as u32) < self.limits.max_delegation_depth)
    }

    fn find_agent(&self, who: &str) -> Option<Agent> {
        let who = who.trim();
        self.directory.agent(who).cloned().or_else(|| {
            self.directory
                .agents()
                .iter()
                .find(|a| a.role.eq_ignore_ascii_case(who))
                .cloned()
        })
    }

    /// Runs the `delegate` tool for `run`.
    pub(super) async fn delegate(
        &self,
        run: &Run,
        a: DelegateArgs,
    ) -> Result<Delegation, RepoError> {
        let task = match non_empty("task", &a.task) {
            Ok(t) => t,
            Err(e) => return Ok(Delegation::Error(e)),
        };
        let Some(target) = self.find_agent(&a.agent) else {
            let names: Vec<String> = self
                .directory
                .agents()
                .iter()
                .map(|x| format!("{} ({})", x.name, x.role))
                .collect();
            return Ok(Delegation::Error(format!(
                "there is no agent or role `{}`; the agents are: {}",
                one_line(&a.agent, 40),
                names.join(", ")
            )));
        };
        let lineage = self.lineage(run).await?;
        if lineage.len() as u32 >= self.limits.max_delegation_depth {
            return Ok(Delegation::Error(format!(
                "delegation goes at most {} level(s) deep and this run is already {} down; do this part yourself or escalate",
                self.limits.max_delegation_depth,
                lineage.len()
            )));
        }
        let mut chain: Vec<&str> = lineage.iter().rev().map(String::as_str).collect();
        chain.push(&run.agent);
        if chain.iter().any(|n| target.name.matches(n)) {
            return Ok(Delegation::Error(format!(
                "{} is already part of this task ({}); handing it back would go round in a circle",
                target.name,
                chain.join(" → ")
            )));
        }
        let new = NewRun {
            workspace: run.workspace.clone(),
            agent: target.name.to_string(),
            task: task.clone(),
            trigger: DELEGATION.to_owned(),
            requested_by: run.agent.clone(),
            parent: Some(run.id),
            feedback: None,
            answer_to: None,
        };
        let key = format!(
            "delegate:{}:{}:{:016x}",
            run.id.0,
            target.name.as_str().to_lowercase(),
            fnv1a(&task)
        );
        let now = self.clock.now();
        let owner = format!("delegate:{}", run.id.0);
        let child = match self
            .runs
            .start_delegated(&new, &key, &owner, now, self.limits.lease)
            .await?
        {
            Delegated::Started(child) => {
                if !self
                    .step(
                        run,
                        "delegated",
                        format!(
                            "to {} ({}): {}",
                            child.agent,
                            child.id,
                            one_line(&task, 200)
                        ),
                    )
                    .await?
                {
                    self.runs
                        .cancel_run(
                            child.id,
                            "system",
                            Some("its parent run was cancelled"),
                            now,
                        )
                        .await?;
                    return Ok(Delegation::Cancelled);
                }
                tracing::info!(run = run.id.0, child = child.id.0, agent = %child.agent, "delegated");
                let id = child.id;
                if !self.drive(run, child).await? {
                    return Ok(Delegation::Cancelled);
                }
                self.runs.run(id).await?
            }
            Delegated::Existing(child) => Some(child),
        };
        let Some(child) = child else {
            return Ok(Delegation::Error("the sub-run disappeared".into()));
        };
        Ok(outcome(&child))
    }

    /// Executes a child in place while keeping the parent's lease (a step every third of a
    /// lease); `false` when the parent was cancelled meanwhile (the child is cancelled too).
    /// A named, boxed future: a child may delegate in turn, and a recursive future needs a
    /// known size and a declared `Send`.
    fn drive<'a>(&'a self, parent: &'a Run, child: Run) -> DriveFuture<'a> {
        Box::pin(async move {
            let id = child.id;
            let agent = child.agent.clone();
            let mut work = std::pin::pin!(self.execute(child));
            let every = (self.limits.lease / 3).max(std::time::Duration::from_millis(100));
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tokio::select! {
                    r = &mut work => {
                        r?;
                        return Ok(true);
                    }
                    _ = tick.tick() => {
                        let live = self
                            .step(parent, "waiting", format!("for {agent} ({id})"))
                            .await?;
                        if !live {
                            self.runs
                                .cancel_run(id, "system", Some("its parent run was cancelled"), self.clock.now())
                                .await?;
                        }
                    }
                }
            }
        })
    }

    /// Cancels the live sub-runs `parent` delegated (after `parent` was cancelled).
    pub(super) async fn cancel_children(&self, parent: &Run, by: &str) -> Result<(), RepoError> {
        let children = self
            .runs
            .list_runs(&RunFilter {
                parent: Some(parent.id),
                ..RunFilter::recent(100)
            })
            .await?;
        for c in children
            .into_iter()
            .filter(|c| c.trigger == DELEGATION && c.status.cancellable())
        {
            let why = format!("its parent {} was cancelled", parent.id);
            if let Some(after) = self
                .runs
                .cancel_run(c.id, by, Some(&why), self.clock.now())
                .await?
                && after.status == RunStatus::Cancelled
            {
                Box::pin(self.cancel_children(&after, by)).await?;
            }
        }
        Ok(())
    }
}

/// The child's end as the parent's tool result and thread line.
fn outcome(child: &Run) -> Delegation {
    let who = format!("{} ({})", child.agent, child.id);
    let result = child.result.as_deref().unwrap_or("");
    let error = child.error.as_deref().unwrap_or("");
    let thread = child
        .thread
        .map(|t| format!(" in thread #{}", t.0))
        .unwrap_or_default();
    let answer = match child.status {
        RunStatus::Done => format!("{who} answered: {result}"),
        RunStatus::AwaitingApproval => format!(
            "{who} proposed an action that now waits for a person's approval{thread}: {result}"
        ),
        RunStatus::Escalated => format!(
            "{who} handed the task to a person{thread}: {}",
            if result.is_empty() { error } else { result }
        ),
        RunStatus::Cancelled => format!("{who} was cancelled."),
        RunStatus::Running | RunStatus::Queued => {
            format!("{who} is still working elsewhere; its answer is not here yet.")
        }
        other => format!("{who} ended {other}: {error}"),
    };
    let note = format!(
        "{who}, {}: {}",
        child.status,
        one_line(if result.is_empty() { error } else { result }, 200)
    );
    Delegation::Answer { answer, note }
}

/// A stable 64-bit FNV-1a hash (the key of a sub-run must not change between releases).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
