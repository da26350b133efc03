//! A visitor's message on the accept path: kept in their conversation, never a command, a
//! question for the key's agent; offline (no model) a thread the team answers.

use super::{MAX_MESSAGE_CHARS, NewVisitorMessage, Speaker, Visitor, VisitorId, Visitors};
use crate::inbound::{Change, Content, Inbound, InboundMark};
use crate::inbox::{NewThread, Origin, ThreadKind};
use crate::ports::{RepoError, WriteCtx};
use crate::reply::Reply;
use crate::service::Krake;
use crate::text::one_line;

/// The reply that shows nothing: a visitor's question handed to the agent, whose answer
/// follows on its own (the widget shows "typing" meanwhile). The web front's visitor sender
/// keeps no message for an empty text.
fn silent() -> Reply {
    Reply::info(String::new())
}

impl Krake {
    /// The same service letting visitors of shops' pages chat (the customer widget).
    pub fn with_visitors(mut self, visitors: Visitors) -> Self {
        self.visitors = Some(visitors);
        self
    }

    /// The customer widget's rules, when visitors may chat.
    pub fn visitors(&self) -> Option<&Visitors> {
        self.visitors.as_ref()
    }

    /// Handles what a visitor wrote (see the [module](super) docs).
    pub(crate) async fn visit(
        &self,
        inbound: &Inbound,
        mark: &InboundMark,
    ) -> Result<Reply, RepoError> {
        let Some(visitors) = &self.visitors else {
            return Ok(Reply::warning("This chat is not available."));
        };
        let id = inbound
            .actor
            .external_id
            .as_deref()
            .and_then(|s| s.parse().ok())
            .map(VisitorId);
        let visitor = match id {
            Some(id) => visitors.repo().visitor(id).await?,
            None => None,
        };
        let Some(visitor) = visitor else {
            return Ok(Reply::warning(
                "This conversation is not known here; reload the page to start again.",
            ));
        };
        if let Err(r) = visitors.still_allowed(&visitor).await? {
            return Ok(Reply::warning(r.to_string()));
        }
        let text = match &inbound.content {
            Content::Text(t) | Content::TextReplyingTo { text: t, .. } => t.trim(),
            _ => return Ok(Reply::warning("Only text messages can be sent here.")),
        };
        if text.is_empty() {
            return Ok(Reply::info("Write your question, and I'll answer here."));
        }
        if text.chars().count() > MAX_MESSAGE_CHARS {
            return Ok(Reply::warning(format!(
                "That message is too long: write at most {MAX_MESSAGE_CHARS} characters."
            )));
        }
        let now = self.clock.now();
        visitors
            .repo()
            .append_message(
                visitor.id,
                &NewVisitorMessage {
                    from: Speaker::Visitor,
                    name: None,
                    text,
                },
                &format!("in:{}", inbound.key.as_str()),
                now,
            )
            .await?;
        let title = self
            .directory
            .workspace(&visitor.workspace)
            .map_or_else(|| visitor.workspace.to_string(), |w| w.name.clone());
        if text.starts_with('/') {
            // A visitor never runs a command: no inbox, no KPIs, no approvals.
            return Ok(Reply::info(format!(
                "I can answer questions about {title} here (orders, shipping, returns, products). Commands are only for the {title} team."
            )));
        }
        let agent = self.directory.agent(&visitor.agent).cloned();
        match (&self.agents, agent) {
            (Some(desk), Some(agent)) if desk.has_model() => {
                let task = format!(
                    "A customer on {title}'s website asks (answer them directly and politely, from the knowledge base only, citing the sources; if the knowledge base does not answer it or you are unsure, escalate so a person of the team answers):\n{text}"
                );
                desk.ask(
                    &inbound.actor,
                    &agent,
                    &visitor.workspace,
                    &task,
                    visitor.id.destination(),
                )
                .await?;
                Ok(silent())
            }
            _ => {
                self.file_for_team(&visitor, &title, text, inbound, mark)
                    .await
            }
        }
    }

    /// Offline (no model, or the key's agent is gone): the question becomes a thread the team
    /// answers, shown to the visitor's conversation so a reply there reaches them.
    async fn file_for_team(
        &self,
        visitor: &Visitor,
        title: &str,
        text: &str,
        inbound: &Inbound,
        mark: &InboundMark,
    ) -> Result<Reply, RepoError> {
        let mut new = NewThread::new(
            visitor.workspace.clone(),
            ThreadKind::Question,
            format!("Website visitor asks: {}", one_line(text, 80)),
            format!(
                "A visitor of {title}'s website (visitor {}) asked:\n{text}\n\nReply here: your reply goes to their chat.",
                visitor.id
            ),
        );
        new.origin = Origin::User;
        new.agent = Some(visitor.agent.clone());
        new.origin_key = Some(format!("visitor:{}", inbound.key.as_str()));
        let mut new = self.routed(&new);
        if let Some(d) = visitor.id.destination() {
            new.post_to.push(d);
        }
        let told = format!(
            "Thanks! Nobody can answer automatically right now, so I've passed your question to the {title} team. A person will reply here."
        );
        let reply = told.clone();
        let ctx = WriteCtx {
            actor: inbound.actor.clone(),
            inbound: Some(mark.clone()),
            now: self.clock.now(),
        }
        .answering(move |c| match c {
            Change::Created(_) => Some(Reply::info(reply.clone())),
            _ => None,
        });
        self.inbox.create(&new, &ctx).await?;
        Ok(Reply::info(told))
    }
}
