//! The webhook intake: a verified shop or print-partner event is stored in the inbound log
//! under its idempotency key before the vendor gets its 200. Webhook fronts call this and
//! never the inbound repository; the [`CommerceProcessor`](super::CommerceProcessor) applies
//! what was taken.

use super::CommerceEnvelope;
use crate::actor::UserName;
use crate::inbound::{IdempotencyKey, InboundRecord, Recorded};
use crate::ports::{InboundRepo, RepoError};
use crate::time::Clock;
use std::sync::Arc;

/// What taking an event found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// First seen: stored, to be applied.
    New,
    /// Seen before (the vendor retried): nothing more is stored.
    Duplicate,
}

/// Stores verified webhook events, once each.
#[derive(Clone)]
pub struct CommerceIntake {
    inbound: Arc<dyn InboundRepo>,
    clock: Arc<dyn Clock>,
}

impl CommerceIntake {
    /// An intake writing to `inbound` (group-committed by the store).
    pub fn new(inbound: Arc<dyn InboundRepo>, clock: Arc<dyn Clock>) -> Self {
        Self { inbound, clock }
    }

    /// Stores `envelope` from `source` (`shopify`, `gelato`) under `key`, sent by `actor`
    /// (the shop's domain, say) about `conversation` (the workspace). A sender that is not a
    /// user name is stored as the guest.
    pub async fn take(
        &self,
        source: &str,
        key: IdempotencyKey,
        actor: &str,
        conversation: &str,
        envelope: &CommerceEnvelope,
    ) -> Result<Taken, RepoError> {
        let content = serde_json::to_string(envelope)
            .map_err(|e| RepoError::Corrupt(format!("could not encode the event: {e}")))?;
        let event = InboundRecord {
            source: source.to_owned(),
            idempotency_key: key,
            actor: UserName::parse(actor).unwrap_or_else(|_| UserName::guest()),
            conversation: conversation.to_owned(),
            content,
            received_at: self.clock.now(),
        };
        Ok(match self.inbound.record_inbound(&event).await? {
            Recorded::New(_) => Taken::New,
            Recorded::Duplicate { .. } => Taken::Duplicate,
        })
    }
}
