//! The recovery pass after a crash: actions interrupted mid-call are failed and escalated,
//! never retried; decisions left unhandled are handled; undecided approvals expire.

use super::{Run, RunId, RunOutcome, RunStatus, RunStep, Runner};
use crate::actor::{Actor, Role};
use crate::inbox::{Approvers, NewThread, Origin, Thread, ThreadId, ThreadKind, ThreadStatus};
use crate::ports::{RepoError, WriteCtx};
use crate::text::one_line;
use crate::time::Timestamp;

/// What one recovery pass found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// Runs left `executing` past their lease (a crash while calling out), now failed and
    /// escalated: their action may or may not have happened, so it is never tried again.
    pub interrupted: Vec<RunId>,
    /// Approved or rejected runs whose decision was never handled (a crash right after the
    /// decision), handled now: the action was never started, so it is carried out once.
    pub decided: Vec<RunId>,
    /// Runs whose approval expired undecided, now `expired`.
    pub expired: Vec<RunId>,
    /// Delegated runs abandoned when their parent ended without them (workers never claim a
    /// delegated run: its parent drives it), now failed.
    pub orphaned: Vec<RunId>,
}

impl Runner {
    /// A reply by Krake in a thread (the outcome of its action, for everyone who sees it).
    pub(super) async fn note_on_thread(
        &self,
        thread: ThreadId,
        text: &str,
    ) -> Result<(), RepoError> {
        let ctx = WriteCtx {
            actor: Actor::system(),
            inbound: None,
            now: self.clock.now(),
        };
        self.inbox.reply(thread, text, &ctx).await?;
        Ok(())
    }

    /// Opens the escalation (for the workspace owner) of an action that failed or may not
    /// have happened; once per run.
    pub(super) async fn escalate_execution(
        &self,
        run: &Run,
        thread: &Thread,
        body: &str,
    ) -> Result<ThreadId, RepoError> {
        let mut new = NewThread::new(
            run.workspace.clone(),
            ThreadKind::Escalation,
            format!("Approved but not done: {}", one_line(&thread.title, 60)),
            body.to_owned(),
        );
        new.origin = Origin::Agent;
        new.agent = Some(run.agent.clone());
        new.approvers = Approvers::Role { role: Role::Owner };
        new.origin_key = Some(format!("run:{}:execute-failed", run.id.0));
        new.post_to = self.routes.for_workspace(&run.workspace).to_vec();
        let ctx = WriteCtx {
            actor: Actor::system(),
            inbound: None,
            now: self.clock.now(),
        };
        Ok(self.inbox.create(&new, &ctx).await?.id)
    }

    /// The recovery pass (`krake serve` runs it at start and every few seconds): runs stuck
    /// `executing` for longer than the lease are marked failed and escalated, never executed
    /// again (money must not move twice); approvals decided while their run was left waiting
    /// (a crash between the decision and its handling) are handled now.
    pub async fn recover(&self) -> Result<Recovered, RepoError> {
        let mut out = Recovered::default();
        let now = self.clock.now();
        let before = Timestamp::from_millis(
            now.as_millis()
                .saturating_sub(i64::try_from(self.limits.lease.as_millis()).unwrap_or(i64::MAX)),
        );
        for run in self
            .runs
            .runs_with_status(RunStatus::Executing, before, 100)
            .await?
        {
            let why = "Krake stopped while carrying out this action, so it may or may not have \
                       happened. It is not tried again: please check by hand (e.g. in the shop's \
                       admin) and finish it there if needed.";
            let outcome = RunOutcome {
                status: RunStatus::Failed,
                result: None,
                error: Some(why.to_owned()),
                thread: None,
            };
            if !self
                .runs
                .finish_run(run.id, RunStatus::Executing, &outcome, now)
                .await?
            {
                continue;
            }
            self.runs
                .add_step(
                    run.id,
                    &RunStep {
                        at: now,
                        kind: "interrupted".into(),
                        detail: why.to_owned(),
                    },
                    now,
                )
                .await?;
            let thread = match run.thread {
                Some(t) => self.inbox.get(t).await?,
                None => None,
            };
            let body = format!("Task: {}\n{why}\n({})", run.task, run.id);
            match &thread {
                Some(th) => {
                    self.note_on_thread(th.id, &format!("Not confirmed: {why}"))
                        .await?;
                    self.escalate_execution(&run, th, &format!("#{}: {body}", th.id.0))
                        .await?;
                }
                None => {
                    let mut new = NewThread::new(
                        run.workspace.clone(),
                        ThreadKind::Escalation,
                        format!(
                            "{}'s action may not have happened: {}",
                            run.agent,
                            one_line(&run.task, 50)
                        ),
                        body,
                    );
                    new.origin = Origin::Agent;
                    new.agent = Some(run.agent.clone());
                    new.approvers = Approvers::Role { role: Role::Owner };
                    new.origin_key = Some(format!("run:{}:execute-failed", run.id.0));
                    new.post_to = self.routes.for_workspace(&run.workspace).to_vec();
                    let ctx = WriteCtx {
                        actor: Actor::system(),
                        inbound: None,
                        now,
                    };
                    let th = self.inbox.create(&new, &ctx).await?;
                    self.runs
                        .finish_run(
                            run.id,
                            RunStatus::Failed,
                            &RunOutcome {
                                status: RunStatus::Failed,
                                result: None,
                                error: Some(why.to_owned()),
                                thread: Some(th.id),
                            },
                            now,
                        )
                        .await?;
                }
            }
            tracing::warn!(
                run = run.id.0,
                "an action was interrupted; failed and escalated"
            );
            out.interrupted.push(run.id);
        }
        for run in self
            .runs
            .runs_with_status(RunStatus::Running, before, 100)
            .await?
            .into_iter()
            .filter(|r| r.trigger == super::DELEGATION)
        {
            let Some(p) = run.parent else { continue };
            let parent = self.runs.run(p).await?;
            if parent
                .as_ref()
                .is_some_and(|p| p.status == RunStatus::Running)
            {
                // A live or resumable parent takes its child over.
                continue;
            }
            let why = format!(
                "its parent {p} ended ({}) before this sub-task finished; nothing more was done",
                parent.map_or("gone", |p| p.status.as_str())
            );
            let outcome = RunOutcome {
                status: RunStatus::Failed,
                result: None,
                error: Some(why),
                thread: None,
            };
            if self
                .runs
                .finish_run(run.id, RunStatus::Running, &outcome, now)
                .await?
            {
                out.orphaned.push(run.id);
            }
        }
        for run in self
            .runs
            .runs_with_status(RunStatus::AwaitingApproval, now, 500)
            .await?
        {
            let Some(t) = run.thread else { continue };
            let Some(th) = self.inbox.get(t).await? else {
                continue;
            };
            if th.status == ThreadStatus::Expired {
                let outcome = RunOutcome {
                    status: RunStatus::Expired,
                    result: None,
                    error: Some(format!(
                        "nobody decided #{} before it expired; nothing was done",
                        th.id.0
                    )),
                    thread: None,
                };
                if self
                    .runs
                    .finish_run(run.id, RunStatus::AwaitingApproval, &outcome, now)
                    .await?
                {
                    out.expired.push(run.id);
                }
                continue;
            }
            let decided = matches!(th.status, ThreadStatus::Approved | ThreadStatus::Rejected);
            if !decided || th.updated_at > before {
                continue;
            }
            let by = th
                .decided_by
                .as_ref()
                .map_or_else(|| "someone".to_owned(), |u| u.to_string());
            if self.decision(&th, &by).await?.is_some() {
                out.decided.push(run.id);
            }
        }
        Ok(out)
    }
}
