//! Dead letters people can see and act on: what could not be delivered, where and why, for
//! the owners; sent again or given up, from chat, REST or the dashboard alike.

use crate::actor::{Actor, Role};
use crate::outbox::{Destination, OutboxId};
use crate::ports::RepoError;
use crate::service::Krake;

/// One message that could not be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// Its id in the outbox.
    pub id: OutboxId,
    /// Where it was going.
    pub destination: Destination,
    /// Why it failed, the last time.
    pub error: String,
}

/// What a person asked of the dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadLetterCommand {
    /// List them, newest first.
    List,
    /// Send one again.
    Retry(OutboxId),
    /// Give up on one.
    Discard(OutboxId),
}

/// What the dead letters said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeadLetterOutcome {
    /// The newest dead letters (at most 100).
    Listed(Vec<DeadLetter>),
    /// Queued again.
    Retried(OutboxId),
    /// Given up.
    Discarded(OutboxId),
    /// No dead letter with this id.
    NotFound(OutboxId),
    /// Only owners see dead letters (they may hold any workspace's messages).
    NotOwner,
    /// This process has no outbox to look at.
    Unavailable,
}

/// Whether `actor` may see and act on dead letters: an owner of some workspace.
pub fn may_manage(actor: &Actor, workspaces: &[crate::workspace::Workspace]) -> bool {
    !actor.unlinked
        && (actor.role == Role::Owner
            || workspaces
                .iter()
                .any(|w| actor.role_in(&w.slug) == Role::Owner))
}

impl Krake {
    /// Runs a dead-letter command for `actor` (owners only).
    pub async fn dead_letters(
        &self,
        actor: &Actor,
        cmd: DeadLetterCommand,
    ) -> Result<DeadLetterOutcome, RepoError> {
        let Some(outbox) = &self.outbox else {
            return Ok(DeadLetterOutcome::Unavailable);
        };
        if !may_manage(actor, self.directory.workspaces()) {
            return Ok(DeadLetterOutcome::NotOwner);
        }
        Ok(match cmd {
            DeadLetterCommand::List => DeadLetterOutcome::Listed(
                outbox
                    .dead_letters(100)
                    .await?
                    .into_iter()
                    .map(|(id, destination, error)| DeadLetter {
                        id,
                        destination,
                        error,
                    })
                    .collect(),
            ),
            DeadLetterCommand::Retry(id) => {
                if outbox.retry_dead_letter(id, self.clock.now()).await? {
                    tracing::info!(id = id.0, by = %actor.user, "dead letter sent again");
                    DeadLetterOutcome::Retried(id)
                } else {
                    DeadLetterOutcome::NotFound(id)
                }
            }
            DeadLetterCommand::Discard(id) => {
                if outbox.discard_dead_letter(id).await? {
                    tracing::info!(id = id.0, by = %actor.user, "dead letter discarded");
                    DeadLetterOutcome::Discarded(id)
                } else {
                    DeadLetterOutcome::NotFound(id)
                }
            }
        })
    }
}
