//! The inbox's rules, once for every caller: who may reply in, decide or archive a thread,
//! and what follows a change. Chat commands, button presses, the dashboard and the REST API
//! all come through here; each only renders the typed outcome its own way (chat text in
//! [`chat::text`](crate::chat::text), status codes in [`api`](super::api)).
//!
//! What follows a change is an inbox event — [`InboxEvent::Decided`] or
//! [`InboxEvent::Replied`] — handed to the [`InboxListener`] (the agents' desk): an approval
//! made anywhere starts the approved action at once.

use super::{Decision, DecisionOutcome, Thread, ThreadId, ThreadKind};
use crate::actor::{Actor, Role};
use crate::ports::{ArchiveOutcome, RepoError, WriteCtx};
use crate::service::Krake;
use async_trait::async_trait;

/// Why an inbox change was refused before anything was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// There is no such thread.
    NotFound,
    /// The thread belongs to a workspace the actor may not see.
    Hidden(Box<Thread>),
    /// The platform account is not linked to a Krake user.
    NotLinked,
    /// The actor is a guest or a viewer in the thread's workspace.
    RoleTooLow {
        /// The thread.
        thread: Box<Thread>,
        /// The actor's role there.
        role: Role,
    },
    /// The thread cannot be decided: it is not an approval.
    NotApproval(Box<Thread>),
    /// The thread's approvers do not include the actor.
    NotApprover(Box<Thread>),
    /// A reply without text.
    EmptyReply,
}

/// Something that happened in the inbox that others act on.
#[derive(Debug, Clone, Copy)]
pub enum InboxEvent<'a> {
    /// A thread was decided (approved or rejected).
    Decided(&'a Thread),
    /// A person replied in a thread (its replies, the new one last).
    Replied(&'a Thread),
}

/// Who acts on inbox events (the agents: an approved proposal runs, a reply continues a run).
#[async_trait]
pub trait InboxListener: Send + Sync {
    /// Reacts to an event; the text, if any, tells the actor what follows.
    async fn on_inbox_event(
        &self,
        event: InboxEvent<'_>,
        actor: &Actor,
    ) -> Result<Option<String>, RepoError>;
}

/// A change and what followed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followed<T> {
    /// The change.
    pub value: T,
    /// What the listener said follows (e.g. "Penn is on it."), if anything.
    pub follow_up: Option<String>,
}

/// The outcome of a checked change: done, or refused with the reason.
pub type Checked<T> = Result<Result<T, Refusal>, RepoError>;

impl Krake {
    /// The thread `id` if the actor may see it.
    async fn visible_thread(&self, actor: &Actor, id: ThreadId) -> Checked<Thread> {
        Ok(match self.inbox.get(id).await? {
            None => Err(Refusal::NotFound),
            Some(th) if !actor.can_see(&th.workspace) => Err(Refusal::Hidden(Box::new(th))),
            Some(th) => Ok(th),
        })
    }

    /// The thread `id` if the actor may change it as a member of its workspace.
    async fn member_thread(&self, actor: &Actor, id: ThreadId) -> Checked<Thread> {
        let th = match self.visible_thread(actor, id).await? {
            Ok(th) => th,
            Err(r) => return Ok(Err(r)),
        };
        if actor.unlinked {
            return Ok(Err(Refusal::NotLinked));
        }
        let role = actor.role_in(&th.workspace);
        Ok(if role < Role::Member {
            Err(Refusal::RoleTooLow {
                thread: Box::new(th),
                role,
            })
        } else {
            Ok(th)
        })
    }

    /// Tells every listener about an event; what they say follows is joined.
    async fn tell(
        &self,
        event: InboxEvent<'_>,
        actor: &Actor,
    ) -> Result<Option<String>, RepoError> {
        let mut said: Vec<String> = Vec::new();
        for l in &self.listeners {
            if let Some(s) = l.on_inbox_event(event, actor).await? {
                said.push(s);
            }
        }
        Ok((!said.is_empty()).then(|| said.join(" ")))
    }

    /// Replies in a thread as `ctx.actor` (an open question becomes answered); the listener
    /// hears of it.
    pub async fn reply_checked(
        &self,
        id: ThreadId,
        text: &str,
        ctx: &WriteCtx,
    ) -> Checked<Followed<Thread>> {
        if text.trim().is_empty() {
            return Ok(Err(Refusal::EmptyReply));
        }
        if let Err(r) = self.member_thread(&ctx.actor, id).await? {
            return Ok(Err(r));
        }
        let Some(th) = self.inbox.reply(id, text, ctx).await? else {
            return Ok(Err(Refusal::NotFound));
        };
        let follow_up = self.tell(InboxEvent::Replied(&th), &ctx.actor).await?;
        Ok(Ok(Followed {
            value: th,
            follow_up,
        }))
    }

    /// Decides an approval as `ctx.actor` (a compare-and-set on its status, and on `version`
    /// when a button or a client carried one); a decided thread is told to the listener.
    pub async fn decide_checked(
        &self,
        id: ThreadId,
        decision: &Decision,
        version: Option<i64>,
        ctx: &WriteCtx,
    ) -> Checked<Followed<DecisionOutcome>> {
        let actor = &ctx.actor;
        let th = match self.visible_thread(actor, id).await? {
            Ok(th) => th,
            Err(r) => return Ok(Err(r)),
        };
        if actor.unlinked {
            return Ok(Err(Refusal::NotLinked));
        }
        if th.kind != ThreadKind::Approval {
            return Ok(Err(Refusal::NotApproval(Box::new(th))));
        }
        if !th
            .approvers
            .allows(&actor.user, actor.role_in(&th.workspace))
        {
            return Ok(Err(Refusal::NotApprover(Box::new(th))));
        }
        let Some(outcome) = self.inbox.decide(id, decision, version, ctx).await? else {
            return Ok(Err(Refusal::NotFound));
        };
        let follow_up = match &outcome {
            DecisionOutcome::Decided(th) => self.tell(InboxEvent::Decided(th), actor).await?,
            _ => None,
        };
        Ok(Ok(Followed {
            value: outcome,
            follow_up,
        }))
    }

    /// Archives (`true`) or unarchives (`false`) a thread as `ctx.actor`.
    pub async fn archive_checked(
        &self,
        id: ThreadId,
        archived: bool,
        ctx: &WriteCtx,
    ) -> Checked<ArchiveOutcome> {
        if let Err(r) = self.member_thread(&ctx.actor, id).await? {
            return Ok(Err(r));
        }
        Ok(match self.inbox.set_archived(id, archived, ctx).await? {
            Some(o) => Ok(o),
            None => Err(Refusal::NotFound),
        })
    }
}
