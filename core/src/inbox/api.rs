//! Typed inbox operations for fronts that speak structured data (the HTTP API, the web
//! dashboard) instead of chat text. The rules are the chat commands' rules, in
//! [`rules`](super::rules): who may see a thread, who may reply, decide or archive, and what
//! follows; only the answers are typed, so a front can map them to status codes.

use super::rules::Refusal;
use crate::actor::Actor;
use crate::inbox::{AuditEntry, Decision, DecisionOutcome, Thread, ThreadFilter, ThreadId};
use crate::ports::{ArchiveOutcome, RepoError, WriteCtx};
use crate::service::Krake;
use crate::workspace::WorkspaceSlug;

/// Why a typed inbox operation did not happen. Nothing changed in any case.
#[derive(Debug, thiserror::Error)]
pub enum ThreadError {
    /// No such thread (or workspace).
    #[error("{0}")]
    NotFound(String),
    /// The actor may not do this here (another workspace, a viewer deciding, an unlinked user).
    #[error("{0}")]
    Forbidden(String),
    /// The thread is not in a state that allows this (already decided); carries its state now.
    #[error("{message}")]
    Conflict {
        /// What happened, for people.
        message: String,
        /// The thread as it is now.
        thread: Box<Thread>,
    },
    /// The request makes no sense for this thread (approving a question, an empty reply).
    #[error("{0}")]
    Invalid(String),
    /// Something of that name exists already (a folder or a column).
    #[error("{0}")]
    Exists(String),
    /// The store failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}

/// What a decision did, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decided {
    /// The thread is decided now.
    Decided(Thread),
    /// The approval counted towards a quorum; `missing` more are needed.
    Counted {
        /// The thread after counting.
        thread: Thread,
        /// Approvals still missing.
        missing: u32,
    },
    /// This user had approved already; nothing changed.
    AlreadyCounted(Thread),
}

impl Decided {
    /// The thread after the decision.
    pub fn thread(&self) -> &Thread {
        match self {
            Decided::Decided(t) | Decided::AlreadyCounted(t) => t,
            Decided::Counted { thread, .. } => thread,
        }
    }
}

impl Krake {
    fn write_ctx(&self, actor: &Actor) -> WriteCtx {
        WriteCtx {
            actor: actor.clone(),
            inbound: None,
            now: self.clock.now(),
        }
    }

    /// One thread with its replies, if the actor may see its workspace.
    pub async fn thread_for(&self, actor: &Actor, id: ThreadId) -> Result<Thread, ThreadError> {
        // A thread in a workspace the actor may not see is "not found", word for word as an
        // unknown one, as on the chat fronts: the answer must not tell that it exists.
        self.inbox
            .get(id)
            .await?
            .filter(|th| actor.can_see(&th.workspace))
            .ok_or_else(|| no_thread(id))
    }

    /// Threads matching `filter` among the workspaces the actor may see, newest first. Asking
    /// for a workspace the actor may not see is forbidden; an unknown one is not found.
    pub async fn threads_for(
        &self,
        actor: &Actor,
        mut filter: ThreadFilter,
    ) -> Result<Vec<Thread>, ThreadError> {
        if let Some(w) = &filter.workspace {
            self.known_workspace(w)?;
            if !actor.can_see(w) {
                return Err(ThreadError::Forbidden(format!(
                    "{} is not a member of {w}",
                    actor.user
                )));
            }
        }
        filter.visible = actor.visible(self.directory.workspaces().iter().map(|w| &w.slug));
        Ok(self.inbox.list(&filter).await?)
    }

    fn known_workspace(&self, w: &WorkspaceSlug) -> Result<(), ThreadError> {
        match self.directory.workspace(w) {
            Some(_) => Ok(()),
            None => Err(ThreadError::NotFound(format!(
                "there is no workspace `{w}`"
            ))),
        }
    }

    /// Replies in a thread (an open question becomes answered); what follows (an agent's
    /// turn) starts at once, as from chat.
    pub async fn reply_to(
        &self,
        actor: &Actor,
        id: ThreadId,
        text: &str,
    ) -> Result<Thread, ThreadError> {
        match self
            .reply_checked(id, text.trim(), &self.write_ctx(actor))
            .await?
        {
            Ok(f) => Ok(f.value),
            Err(r) => Err(api_refusal(actor, id, r, "reply")),
        }
    }

    /// Approves or rejects an approval thread. `version`, when given, must be the thread's
    /// current version (a stale view is refused). A thread decided before is a conflict. An
    /// approved action starts at once, as from chat.
    pub async fn decide_thread(
        &self,
        actor: &Actor,
        id: ThreadId,
        decision: Decision,
        version: Option<i64>,
    ) -> Result<Decided, ThreadError> {
        let outcome = match self
            .decide_checked(id, &decision, version, &self.write_ctx(actor))
            .await?
        {
            Ok(f) => f.value,
            Err(r) => return Err(api_refusal(actor, id, r, "decide")),
        };
        match outcome {
            DecisionOutcome::Decided(t) => Ok(Decided::Decided(t)),
            DecisionOutcome::Counted { thread, missing } => {
                Ok(Decided::Counted { thread, missing })
            }
            DecisionOutcome::AlreadyCounted(t) => Ok(Decided::AlreadyCounted(t)),
            DecisionOutcome::Refused(t) => {
                let by = t
                    .decided_by
                    .as_ref()
                    .map(|u| format!(" by {u}"))
                    .unwrap_or_default();
                let message = if t.status == crate::inbox::ThreadStatus::Open {
                    format!(
                        "#{} changed since version {}; it is at version {} now: look again",
                        id.0,
                        version.unwrap_or_default(),
                        t.version
                    )
                } else {
                    format!("#{} is already {}{by}; nothing changed", id.0, t.status)
                };
                Err(ThreadError::Conflict {
                    message,
                    thread: Box::new(t),
                })
            }
        }
    }

    /// Archives (`true`) or unarchives (`false`) a thread. Doing it twice changes nothing and
    /// returns the thread as it is.
    pub async fn archive_thread(
        &self,
        actor: &Actor,
        id: ThreadId,
        archived: bool,
    ) -> Result<Thread, ThreadError> {
        let what = if archived {
            "archive them"
        } else {
            "unarchive them"
        };
        match self
            .archive_checked(id, archived, &self.write_ctx(actor))
            .await?
        {
            Ok(ArchiveOutcome::Changed(t) | ArchiveOutcome::Unchanged(t)) => Ok(t),
            Err(r) => Err(api_refusal(actor, id, r, what)),
        }
    }

    /// The audit log of a thread the actor may see, oldest first.
    pub async fn audit_for(
        &self,
        actor: &Actor,
        id: ThreadId,
    ) -> Result<Vec<AuditEntry>, ThreadError> {
        self.thread_for(actor, id).await?;
        Ok(self.inbox.audit(id).await?)
    }
}

/// The one answer for a thread that does not exist or that the actor may not see.
fn no_thread(id: ThreadId) -> ThreadError {
    ThreadError::NotFound(format!("there is no thread #{}", id.0))
}

/// A refused inbox change as a typed API error; `what` is what the actor tried.
fn api_refusal(actor: &Actor, id: ThreadId, r: Refusal, what: &str) -> ThreadError {
    match r {
        // Hidden reads as unknown (see `thread_for`).
        Refusal::NotFound | Refusal::Hidden(_) => no_thread(id),
        Refusal::NotLinked if what == "decide" => ThreadError::Forbidden(
            "this account is not linked to a Krake user, so it cannot decide".into(),
        ),
        Refusal::NotLinked => ThreadError::Forbidden(
            "this account is not linked to a Krake user, so it cannot act on threads".into(),
        ),
        Refusal::RoleTooLow { thread, role } => ThreadError::Forbidden(format!(
            "{} is a {role} in {}: viewers can read threads but not {what}; ask a workspace admin for the member role",
            actor.user, thread.workspace
        )),
        Refusal::NotApproval(th) => ThreadError::Invalid(format!(
            "#{} is a {}, not an approval: there is nothing to approve or reject",
            id.0, th.kind
        )),
        Refusal::NotApprover(th) => ThreadError::Forbidden(format!(
            "{} cannot decide #{}: it needs {}",
            actor.user,
            id.0,
            th.approvers.describe()
        )),
        Refusal::EmptyReply => ThreadError::Invalid("a reply needs some text".into()),
    }
}
