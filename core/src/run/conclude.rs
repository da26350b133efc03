//! How a run ends: the policy's verdict on its result (act, ask for approval, escalate), the
//! thread it opens once, and failures escalated with what was tried.

use super::tools::Final;
use super::{Run, RunOutcome, RunStatus, Runner};
use crate::actor::{Actor, Role};
use crate::agent::Agent;
use crate::inbox::{Approvers, NewThread, Origin, ProposedAction, ThreadId, ThreadKind};
use crate::outbox::{KeyedOutbound, NewOutbound, OutboxPayload};
use crate::policy::{AgentPolicy, Verdict, action_kind};
use crate::ports::{RepoError, WriteCtx};
use crate::reply::Reply;
use crate::text::one_line;
use std::fmt::Write as _;

impl Runner {
    pub(super) async fn conclude(
        &self,
        run: &Run,
        agent: &Agent,
        policy: &AgentPolicy,
        f: Final,
        delegations: &[String],
    ) -> Result<RunStatus, RepoError> {
        // What sub-runs did, shown in this run's thread.
        let mut asked = String::new();
        if !delegations.is_empty() {
            asked.push_str("\nAsked other agents:");
            for d in delegations {
                let _ = write!(asked, "\n  {d}");
            }
        }
        let (text, confidence, action) = match f {
            Final::Escalate { reason } => {
                if !self
                    .step(run, "verdict", format!("the agent escalated: {reason}"))
                    .await?
                {
                    return Ok(RunStatus::Cancelled);
                }
                let th = self
                    .open(
                        run,
                        ThreadKind::Escalation,
                        format!("{} needs help: {}", agent.name, one_line(&run.task, 60)),
                        format!("{} could not finish the task and asks for a person.\nTask: {}\nReason: {reason}{asked}", agent.name, run.task),
                        None,
                    )
                    .await?;
                return self
                    .end(
                        run,
                        RunStatus::Running,
                        RunStatus::Escalated,
                        Some(reason),
                        None,
                        Some(th),
                    )
                    .await;
            }
            Final::Result {
                text,
                confidence,
                action,
            } => (text, Some(confidence), action),
            Final::Plain { text } => (text, None, None),
        };
        if run.trigger == super::DELEGATION && action.is_none() {
            // A sub-run's answer goes back to the agent that asked, which decides what to do
            // with it: no thread of its own.
            let said = confidence.map_or_else(|| "unknown".to_owned(), |c| format!("{c:.2}"));
            let parent = run.parent.map(|p| p.to_string()).unwrap_or_default();
            if !self
                .step(
                    run,
                    "verdict",
                    format!("answer returned to {parent} at confidence {said}"),
                )
                .await?
            {
                return Ok(RunStatus::Cancelled);
            }
            return self
                .end(
                    run,
                    RunStatus::Running,
                    RunStatus::Done,
                    Some(text),
                    None,
                    None,
                )
                .await;
        }
        // A plain-text answer has no confidence: a person approves it, it is never acted on.
        let verdict = match confidence {
            Some(c) => policy.decide(c, action.as_ref()),
            None => Verdict::Approve,
        };
        let said = match (confidence, &action) {
            (_, Some(ProposedAction::CallTool { .. })) => {
                "not asked (the tool's policy has a person approve each call)".to_owned()
            }
            (Some(c), _) => format!("{c:.2}"),
            (None, _) => "unknown (a plain-text answer)".to_owned(),
        };
        let live = self
            .step(
                run,
                "verdict",
                format!(
                    "{verdict:?} at confidence {said}{}",
                    action
                        .as_ref()
                        .map(|a| format!(" for {}", action_kind(a)))
                        .unwrap_or_default()
                ),
            )
            .await?;
        if !live {
            // Cancelled: no thread, no action.
            return Ok(RunStatus::Cancelled);
        }
        match verdict {
            Verdict::Act => {
                let mut done = String::new();
                if let Some(a) = &action {
                    // Executing first (compare-and-set): a resumed or concurrent worker never
                    // carries the action out a second time.
                    let claimed = self
                        .runs
                        .finish_run(
                            run.id,
                            RunStatus::Running,
                            &RunOutcome {
                                status: RunStatus::Executing,
                                result: Some(text.clone()),
                                error: None,
                                thread: None,
                            },
                            self.clock.now(),
                        )
                        .await?;
                    if !claimed {
                        tracing::warn!(
                            run = run.id.0,
                            "run changed under this worker; its action was not carried out here"
                        );
                        return Ok(RunStatus::Executing);
                    }
                    self.step(run, "executing", a.describe()).await?;
                    match self
                        .executor
                        .execute(&run.workspace, a, &format!("run:{}", run.id.0))
                        .await
                    {
                        Ok(d) => {
                            self.step(run, "executed", d.clone()).await?;
                            done = d;
                        }
                        Err(e) => {
                            return self
                                .escalate_end_from(
                                    run,
                                    &format!("executing {} failed: {e}", a.describe()),
                                    RunStatus::Failed,
                                    RunStatus::Executing,
                                )
                                .await;
                        }
                    }
                }
                let mut body = format!("{}\n\nTask: {}\nConfidence: {said}{asked}", text, run.task);
                if !done.is_empty() {
                    let _ = write!(body, "\nDone: {done}");
                }
                let th = self
                    .open(
                        run,
                        ThreadKind::Notice,
                        format!("{}: {}", agent.name, one_line(&run.task, 70)),
                        body,
                        None,
                    )
                    .await?;
                let from = if action.is_some() {
                    RunStatus::Executing
                } else {
                    RunStatus::Running
                };
                self.end(run, from, RunStatus::Done, Some(text), None, Some(th))
                    .await
            }
            Verdict::Approve => {
                let th = self
                    .open(
                        run,
                        ThreadKind::Approval,
                        format!("{} proposes: {}", agent.name, one_line(&text, 70)),
                        format!(
                            "{text}\n\nTask: {}\nConfidence: {said}{asked}\nApprove to carry it out; reject with a reason and {} revises it.",
                            run.task, agent.name
                        ),
                        action,
                    )
                    .await?;
                self.end(
                    run,
                    RunStatus::Running,
                    RunStatus::AwaitingApproval,
                    Some(text),
                    None,
                    Some(th),
                )
                .await
            }
            Verdict::Escalate => {
                let th = self
                    .open(
                        run,
                        ThreadKind::Escalation,
                        format!("{} is unsure: {}", agent.name, one_line(&run.task, 60)),
                        format!(
                            "{} answered with confidence {said}, below its escalation threshold {:.2}, so a person should decide.\nTask: {}\nIts answer: {text}{}{asked}",
                            agent.name,
                            policy.escalate_threshold,
                            run.task,
                            action
                                .as_ref()
                                .map(|a| format!("\nIt proposed: {}", a.describe()))
                                .unwrap_or_default()
                        ),
                        None,
                    )
                    .await?;
                self.end(
                    run,
                    RunStatus::Running,
                    RunStatus::Escalated,
                    Some(text),
                    None,
                    Some(th),
                )
                .await
            }
        }
    }

    /// Opens a thread for a run, once: a resumed run finds the thread it opened before.
    async fn open(
        &self,
        run: &Run,
        kind: ThreadKind,
        title: String,
        body: String,
        action: Option<ProposedAction>,
    ) -> Result<ThreadId, RepoError> {
        let mut new = NewThread::new(run.workspace.clone(), kind, title, body);
        new.origin = Origin::Agent;
        new.agent = Some(run.agent.clone());
        new.action = action;
        if kind == ThreadKind::Escalation {
            new.approvers = Approvers::Role { role: Role::Owner };
        }
        if kind == ThreadKind::Approval {
            new.expires_at = Some(self.clock.now().plus(self.limits.approval_expiry));
        }
        new.origin_key = Some(format!("run:{}:{}", run.id.0, kind));
        new.post_to = self.routes.for_workspace(&run.workspace).to_vec();
        if run.trigger == super::VISITOR
            && let Some(to) = &run.answer_to
        {
            // Shown in the visitor's conversation: the team's replies there reach them.
            new.post_to.push(to.clone());
        }
        let ctx = WriteCtx {
            actor: Actor::system(),
            inbound: None,
            now: self.clock.now(),
        };
        Ok(self.inbox.create(&new, &ctx).await?.id)
    }

    async fn end(
        &self,
        run: &Run,
        from: RunStatus,
        status: RunStatus,
        result: Option<String>,
        error: Option<String>,
        thread: Option<ThreadId>,
    ) -> Result<RunStatus, RepoError> {
        let answer = self.final_answer(run, status, result.as_deref(), error.as_deref(), thread);
        let outcome = RunOutcome {
            status,
            result,
            error,
            thread,
        };
        let finished = match (answer, &run.answer_to) {
            (Some(reply), Some(to)) => {
                // The stream stops; the final text replaces the streamed message, or is a
                // message of its own, queued with the run's end in one transaction.
                let streamed = self
                    .close_stream(run.id)
                    .await
                    .or_else(|| run.stream_message.clone());
                let payload = match streamed {
                    Some(message_id) => OutboxPayload::Replace { message_id, reply },
                    None => OutboxPayload::Send { reply },
                };
                let answer = KeyedOutbound {
                    message: NewOutbound {
                        destination: to.clone(),
                        payload,
                    },
                    key: format!("run:{}:answer", run.id.0),
                };
                self.runs
                    .finish_run_answering(run.id, from, &outcome, &answer, self.clock.now())
                    .await?
            }
            _ => {
                self.runs
                    .finish_run(run.id, from, &outcome, self.clock.now())
                    .await?
            }
        };
        if !finished {
            tracing::warn!(
                run = run.id.0,
                "run changed under this worker; its end was not recorded twice"
            );
        }
        tracing::info!(run = run.id.0, status = %status, thread = thread.map(|t| t.0), "run ended");
        Ok(status)
    }

    /// What the person who asked sees when the run ends: the answer itself, or what became of
    /// the task. The same text whether it was streamed or not.
    fn final_answer(
        &self,
        run: &Run,
        status: RunStatus,
        result: Option<&str>,
        error: Option<&str>,
        thread: Option<ThreadId>,
    ) -> Option<Reply> {
        if run.trigger == super::DELEGATION {
            return None;
        }
        if run.trigger == super::VISITOR {
            // A visitor sees no thread numbers, steps or reasons: the answer, or who answers.
            return match status {
                RunStatus::Done => Some(Reply::info(result.unwrap_or("Done.").to_owned())),
                RunStatus::AwaitingApproval
                | RunStatus::Escalated
                | RunStatus::Failed
                | RunStatus::Refused => Some(Reply::info(format!(
                    "I'm not certain about this one, so I've passed your question to the {} team. A person will answer here.",
                    self.workspace_name(&run.workspace)
                ))),
                _ => None,
            };
        }
        let at = thread
            .map(|t| format!(" (#{}, /show {})", t.0, t.0))
            .unwrap_or_default();
        let agent = &run.agent;
        Some(match status {
            RunStatus::Done => Reply::info(result.unwrap_or("Done.").to_owned()),
            RunStatus::AwaitingApproval => Reply::info(format!(
                "{}\n\n{agent} asks for approval before doing this{at}.",
                result.unwrap_or_default()
            )),
            RunStatus::Escalated => Reply::warning(format!(
                "{agent} handed this to a person{at}: {}",
                result.or(error).unwrap_or("no reason given")
            )),
            RunStatus::Failed | RunStatus::Refused => Reply::warning(format!(
                "{agent} could not finish this{at}: {}",
                error.unwrap_or("no reason given")
            )),
            _ => return None,
        })
    }

    /// Marks a run failed and opens an escalation for the workspace owner with what was tried.
    pub(super) async fn fail(&self, run: &Run, why: &str) -> Result<RunStatus, RepoError> {
        self.escalate_end(run, why, RunStatus::Failed).await
    }

    pub(super) async fn refuse(&self, run: &Run, why: &str) -> Result<RunStatus, RepoError> {
        self.escalate_end(run, why, RunStatus::Refused).await
    }

    async fn escalate_end(
        &self,
        run: &Run,
        why: &str,
        status: RunStatus,
    ) -> Result<RunStatus, RepoError> {
        self.escalate_end_from(run, why, status, RunStatus::Running)
            .await
    }

    async fn escalate_end_from(
        &self,
        run: &Run,
        why: &str,
        status: RunStatus,
        from: RunStatus,
    ) -> Result<RunStatus, RepoError> {
        self.step(run, status.as_str(), why.to_owned()).await?;
        let tried = self
            .runs
            .run(run.id)
            .await?
            .map(|r| {
                r.steps
                    .iter()
                    .map(|s| format!("  {} {}: {}", s.at.to_utc_string(), s.kind, s.detail))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        let title = match status {
            RunStatus::Refused => format!(
                "{}'s run stopped by budget: {}",
                run.agent,
                one_line(&run.task, 50)
            ),
            _ => format!("{}'s run failed: {}", run.agent, one_line(&run.task, 60)),
        };
        let th = self
            .open(
                run,
                ThreadKind::Escalation,
                title,
                format!(
                    "Task: {}\nWhy: {why}\nWhat was tried ({}):\n{tried}",
                    run.task, run.id
                ),
                None,
            )
            .await?;
        self.end(run, from, status, None, Some(why.to_owned()), Some(th))
            .await
    }
}
