//! What follows a person's answer in a thread a run opened: a decision (approve executes the
//! action once, reject with a reason queues a revision) or a reply (a follow-up run).

use super::{NewRun, RunOutcome, RunStatus, RunStep, Runner};
use crate::actor::Actor;
use crate::inbox::{ProposedAction, Thread, ThreadKind, ThreadStatus};
use crate::ports::RepoError;
use std::fmt::Write as _;

impl Runner {
    /// A reply in a thread a run opened (its notice or escalation, or an approval already
    /// decided) starts a follow-up run whose memory is the thread: the earlier result and every
    /// reply, summarised when long. Open approvals wait for their decision instead.
    pub async fn on_reply(
        &self,
        thread: &Thread,
        actor: &Actor,
    ) -> Result<Option<String>, RepoError> {
        if self.model.is_none() || thread.is_decidable() {
            return Ok(None);
        }
        let Some(run) = self.runs.run_for_thread(thread.id).await? else {
            return Ok(None);
        };
        if matches!(run.status, RunStatus::Queued | RunStatus::Running)
            || run.trigger == super::VISITOR
        {
            // A visitor's thread: the team's reply is the answer (it goes to their chat).
            return Ok(None);
        }
        let mut memory = String::new();
        if let Some(prev) = &run.feedback {
            let _ = writeln!(memory, "{prev}");
        }
        let _ = writeln!(
            memory,
            "Attempt ({}): {}",
            run.id,
            run.result
                .as_deref()
                .or(run.error.as_deref())
                .unwrap_or("no result")
        );
        for r in &thread.replies {
            let _ = writeln!(memory, "{} replied: {}", r.author, r.text);
        }
        let next = self
            .start(&NewRun {
                workspace: run.workspace.clone(),
                agent: run.agent.clone(),
                task: run.task.clone(),
                trigger: "reply".into(),
                requested_by: actor.user.to_string(),
                parent: Some(run.id),
                feedback: Some(memory.trim_end().to_owned()),
                answer_to: None,
            })
            .await?;
        Ok(Some(format!(
            "{} follows up on your reply ({}).",
            run.agent, next.id
        )))
    }

    /// Handles the decision on an approval a run opened: Approve executes the proposed action
    /// once (the run moves to `executing` by compare-and-set first, so a second call, from a
    /// retry, another front or the recovery pass, does nothing); the outcome is replied in the
    /// thread, and a failure opens an escalation. Reject with a reason queues a revision run
    /// that sees the reason.
    pub async fn on_decision(
        &self,
        thread: &Thread,
        actor: &Actor,
    ) -> Result<Option<String>, RepoError> {
        self.decision(thread, actor.user.as_str()).await
    }

    pub(super) async fn decision(
        &self,
        thread: &Thread,
        by: &str,
    ) -> Result<Option<String>, RepoError> {
        if thread.kind != ThreadKind::Approval {
            return Ok(None);
        }
        let Some(run) = self.runs.run_for_thread(thread.id).await? else {
            return Ok(None);
        };
        if run.status != RunStatus::AwaitingApproval {
            return Ok(None);
        }
        let now = self.clock.now();
        match thread.status {
            ThreadStatus::Approved => {
                let Some(a) = &thread.action else {
                    let done = self
                        .runs
                        .finish_run(
                            run.id,
                            RunStatus::AwaitingApproval,
                            &RunOutcome {
                                status: RunStatus::Done,
                                result: Some(format!("approved by {by}")),
                                error: None,
                                thread: Some(thread.id),
                            },
                            now,
                        )
                        .await?;
                    return Ok(done.then(|| "Accepted.".to_owned()));
                };
                // Claim the execution: only one caller gets past this.
                let claimed = self
                    .runs
                    .finish_run(
                        run.id,
                        RunStatus::AwaitingApproval,
                        &RunOutcome {
                            status: RunStatus::Executing,
                            result: None,
                            error: None,
                            thread: Some(thread.id),
                        },
                        now,
                    )
                    .await?;
                if !claimed {
                    return Ok(None);
                }
                self.runs
                    .add_step(
                        run.id,
                        &RunStep {
                            at: now,
                            kind: "approved".into(),
                            detail: format!("by {by}; executing {}", a.describe()),
                        },
                        now,
                    )
                    .await?;
                let outcome = match a {
                    // An outside tool is called by the engine (recorded and charged on the run).
                    ProposedAction::CallTool {
                        server,
                        tool,
                        arguments,
                    } => {
                        let args = arguments.as_object().cloned().unwrap_or_default();
                        self.call_server(&run, server, tool, &args).await?
                    }
                    _ => {
                        self.executor
                            .execute(&thread.workspace, a, &format!("run:{}", run.id.0))
                            .await
                    }
                };
                let now = self.clock.now();
                let answered = outcome.as_ref().ok().cloned();
                let (status, result, error, note) = match outcome {
                    Ok(done) => (
                        RunStatus::Done,
                        Some(format!("approved by {by}; {done}")),
                        None,
                        format!("Done: {done}"),
                    ),
                    Err(e) => (
                        RunStatus::Failed,
                        None,
                        Some(format!("approved by {by}, but executing failed: {e}")),
                        format!(
                            "Executing failed: {e}. It was not retried; the owner is asked to look."
                        ),
                    ),
                };
                self.runs
                    .add_step(
                        run.id,
                        &RunStep {
                            at: now,
                            kind: if status == RunStatus::Done {
                                "executed".into()
                            } else {
                                "execute_failed".into()
                            },
                            detail: note.clone(),
                        },
                        now,
                    )
                    .await?;
                self.runs
                    .finish_run(
                        run.id,
                        RunStatus::Executing,
                        &RunOutcome {
                            status,
                            result,
                            error,
                            thread: Some(thread.id),
                        },
                        now,
                    )
                    .await?;
                let mut note = note;
                if let (RunStatus::Done, ProposedAction::CallTool { .. }, Some(answer)) =
                    (status, a, &answered)
                {
                    let next = self.continue_after_call(&run, by, a, answer).await?;
                    note = format!("{note}\n{next}");
                }
                self.note_on_thread(thread.id, &note).await?;
                if status == RunStatus::Failed {
                    // A person approved it and it could not be done: the owner must know.
                    self.escalate_execution(
                        &run,
                        thread,
                        &format!(
                            "#{} was approved by {by}, but carrying it out failed.\n{note}\nTask: {}",
                            thread.id.0, run.task
                        ),
                    )
                    .await?;
                }
                Ok(Some(note))
            }
            ThreadStatus::Rejected => {
                let reason = thread.reason.clone();
                self.runs
                    .add_step(
                        run.id,
                        &RunStep {
                            at: now,
                            kind: "rejected".into(),
                            detail: format!(
                                "by {by}: {}",
                                reason.as_deref().unwrap_or("no reason")
                            ),
                        },
                        now,
                    )
                    .await?;
                let decided = self
                    .runs
                    .finish_run(
                        run.id,
                        RunStatus::AwaitingApproval,
                        &RunOutcome {
                            status: RunStatus::Rejected,
                            result: run.result.clone(),
                            error: reason.clone(),
                            thread: Some(thread.id),
                        },
                        now,
                    )
                    .await?;
                if !decided {
                    // Handled already (a retry, another front, or the recovery pass).
                    return Ok(None);
                }
                let Some(reason) = reason else {
                    return Ok(Some(format!(
                        "Without a reason {} does not revise it; the task ends here. To try again, ask with what should change (`ask {} …`).",
                        run.agent,
                        run.agent.to_lowercase()
                    )));
                };
                let mut feedback = String::new();
                if let Some(prev) = &run.feedback {
                    let _ = writeln!(feedback, "{prev}");
                }
                for r in &thread.replies {
                    let _ = writeln!(feedback, "{} replied: {}", r.author, r.text);
                }
                let _ = write!(
                    feedback,
                    "Attempt ({}): {}{}\nRejected by {by}: {reason}",
                    run.id,
                    run.result.as_deref().unwrap_or(""),
                    thread
                        .action
                        .as_ref()
                        .map(|a| format!(" [proposed: {}]", a.describe()))
                        .unwrap_or_default(),
                );
                let revision = self
                    .start(&NewRun {
                        workspace: run.workspace.clone(),
                        agent: run.agent.clone(),
                        task: run.task.clone(),
                        trigger: "revision".into(),
                        requested_by: by.to_owned(),
                        parent: Some(run.id),
                        feedback: Some(feedback),
                        answer_to: None,
                    })
                    .await?;
                Ok(Some(format!("{} revises it ({}).", run.agent, revision.id)))
            }
            _ => Ok(None),
        }
    }
}
