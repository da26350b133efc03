//! Knowledge from chat, on the accept path: a sent file filed to be learned, `/sources`,
//! `/source` and `/forget`, for every front alike.

use super::KnowledgeBase;
use super::documents::FILE;
use super::learn::{FileBody, LearnRepo, NewLearn, SentFile, Source, megabytes};
use crate::actor::{Actor, Role};
use crate::chat::text::link_hint;
use crate::inbound::{Change, Inbound};
use crate::ports::{RepoError, WriteCtx};
use crate::reply::Reply;
use crate::service::Krake;
use crate::workspace::WorkspaceSlug;
use std::sync::Arc;

/// What learning from chat needs: the job queue, the knowledge base and the size limit.
#[derive(Clone)]
pub struct Learning {
    /// The learn jobs and sources.
    pub repo: Arc<dyn LearnRepo>,
    /// The knowledge base (forgetting, passages).
    pub knowledge: Arc<dyn KnowledgeBase>,
    /// The largest file accepted, in bytes.
    pub max_bytes: u64,
}

impl std::fmt::Debug for Learning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Learning")
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

const KINDS: &str = "Markdown, text, HTML, CSV or PDF with a text layer";

impl Krake {
    /// The workspace a knowledge change goes to, if `actor` may change it (member role).
    pub(crate) fn knowledge_workspace(
        &self,
        actor: &Actor,
        workspace: Option<WorkspaceSlug>,
        what: &str,
    ) -> Result<WorkspaceSlug, Reply> {
        let ws = self.workspace_for(actor, workspace, "knowledge is")?;
        if actor.unlinked || actor.role_in(&ws) < Role::Member {
            return Err(Reply::warning(format!(
                "Only members of {ws} can {what} its knowledge; you are {} there.{}",
                if actor.unlinked {
                    "a guest"
                } else {
                    match actor.role_in(&ws) {
                        Role::Viewer => "a viewer",
                        _ => "a guest",
                    }
                },
                link_hint(actor)
            )));
        }
        Ok(ws)
    }

    /// A file someone sent: checked (role, announced size) and filed as a learn job in the
    /// event's own transaction.
    pub(crate) async fn learn(
        &self,
        inbound: &Inbound,
        file: &SentFile,
        workspace: Option<WorkspaceSlug>,
        ctx: &WriteCtx,
    ) -> Result<Reply, RepoError> {
        let Some(learning) = &self.learning else {
            return Ok(Reply::info(
                "Learning files is not available here; ask an owner to run `krake ingest`.",
            ));
        };
        let ws = match self.knowledge_workspace(&inbound.actor, workspace, "add to") {
            Ok(ws) => ws,
            Err(refused) => return Ok(refused),
        };
        let size = match &file.body {
            FileBody::Bytes(b) => Some(b.len() as u64),
            FileBody::Remote(_) => file.size,
        };
        if let Some(size) = size.filter(|s| *s > learning.max_bytes) {
            return Ok(Reply::warning(format!(
                "{} is {}; the limit is {} per file. Split it, or ask an owner to run `krake ingest`.",
                file.name,
                megabytes(size),
                megabytes(learning.max_bytes)
            )));
        }
        if matches!(&file.body, FileBody::Bytes(b) if b.is_empty()) {
            return Ok(Reply::warning(format!("{} is empty.", file.name)));
        }
        let new = NewLearn {
            workspace: ws.clone(),
            file: file.clone(),
            added_by: inbound.actor.user.to_string(),
            front: inbound.actor.front,
            answer_to: inbound.answer_to.clone(),
        };
        let said = queued(&file.name, &ws, inbound.answer_to.is_some());
        let reply = said.clone();
        let ctx = ctx.answering(move |c| match c {
            Change::Queued(_) => Some(reply.clone()),
            _ => None,
        });
        learning.repo.enqueue_learn(&new, &ctx).await?;
        Ok(said)
    }

    /// `/sources`: what a workspace's knowledge holds.
    pub(crate) async fn sources(
        &self,
        actor: &Actor,
        workspace: Option<WorkspaceSlug>,
    ) -> Result<Reply, RepoError> {
        let Some(learning) = &self.learning else {
            return Ok(Reply::info("Knowledge sources are not available here."));
        };
        let ws = match self.workspace_for(actor, workspace, "knowledge is") {
            Ok(ws) => ws,
            Err(refused) => return Ok(refused),
        };
        let sources = learning.repo.sources(&ws).await?;
        Ok(Reply::info(render_sources(&ws, &sources, self.clock.now())))
    }

    /// `/source FILE §N`: one passage of a learned file.
    pub(crate) async fn source(
        &self,
        actor: &Actor,
        workspace: Option<WorkspaceSlug>,
        name: &str,
        position: u32,
    ) -> Result<Reply, RepoError> {
        let Some(learning) = &self.learning else {
            return Ok(Reply::info("Knowledge sources are not available here."));
        };
        let ws = match self.workspace_for(actor, workspace, "knowledge is") {
            Ok(ws) => ws,
            Err(refused) => return Ok(refused),
        };
        let Some((source, text)) = learning.repo.source_text(&ws, name).await? else {
            return Ok(Reply::warning(format!(
                "{ws} has learned no file called {name}. /sources {ws} lists what it knows."
            )));
        };
        let passages = learning.knowledge.passages(&text);
        let Some(passage) = passages.get(position.saturating_sub(1) as usize) else {
            return Ok(Reply::warning(format!(
                "{name} has {} passage{}; ask for §1 to §{}.",
                passages.len(),
                if passages.len() == 1 { "" } else { "s" },
                passages.len().max(1)
            )));
        };
        Ok(Reply::info(format!(
            "{} §{position} of {} ({}):\n{passage}",
            source.name,
            passages.len(),
            source.title
        )))
    }

    /// `/forget FILE`: removes a learned file (member role), audited.
    pub(crate) async fn forget(
        &self,
        workspace: Option<WorkspaceSlug>,
        name: &str,
        ctx: &WriteCtx,
    ) -> Result<Reply, RepoError> {
        let Some(learning) = &self.learning else {
            return Ok(Reply::info("Knowledge sources are not available here."));
        };
        let ws = match self.knowledge_workspace(&ctx.actor, workspace, "remove from") {
            Ok(ws) => ws,
            Err(refused) => return Ok(refused),
        };
        if learning.repo.source_text(&ws, name).await?.is_none() {
            return Ok(Reply::warning(format!(
                "{ws} has learned no file called {name}. /sources {ws} lists what it knows."
            )));
        }
        // The passages go first: a crash after this leaves the source listed, and forgetting
        // it again finishes the job.
        if let Err(e) = learning.knowledge.forget(ws.as_str(), FILE, name).await {
            return Ok(Reply::warning(format!(
                "{name} cannot be forgotten now: {e}. Try again shortly."
            )));
        }
        let said = Reply::success(format!("Forgot {name}: {ws}'s agents no longer know it."));
        let reply = said.clone();
        let ctx = ctx.answering(move |c| match c {
            Change::Forgot => Some(reply.clone()),
            _ => None,
        });
        Ok(match learning.repo.forget_source(&ws, name, &ctx).await? {
            Some(_) => said,
            None => Reply::warning(format!("{name} was already forgotten.")),
        })
    }
}

fn queued(name: &str, ws: &WorkspaceSlug, answered_there: bool) -> Reply {
    Reply::info(format!(
        "Reading {name} into {ws}'s knowledge ({KINDS}).{}",
        if answered_there {
            " I'll say here when it is learned."
        } else {
            " /sources shows it once it is learned."
        }
    ))
}

/// `/sources`' text: each learned (or waiting) file with who sent it, from where, its
/// passages and when.
pub fn render_sources(
    ws: &WorkspaceSlug,
    sources: &[Source],
    now: crate::time::Timestamp,
) -> String {
    if sources.is_empty() {
        return format!(
            "{ws}'s knowledge holds no files yet. Send one here ({KINDS}) and Krake learns it."
        );
    }
    let mut out = format!(
        "{ws} knows {} file{}:",
        sources.len(),
        if sources.len() == 1 { "" } else { "s" }
    );
    for s in sources {
        let what = match s.status {
            super::learn::SourceStatus::Queued => "being read".to_owned(),
            _ => format!(
                "{} passage{}",
                s.passages,
                if s.passages == 1 { "" } else { "s" }
            ),
        };
        // The title when it says more than the file name (a heading, an HTML title).
        let stem = s
            .name
            .rsplit_once('.')
            .map_or(s.name.as_str(), |(stem, _)| stem);
        let title = if s.title.is_empty() || s.title == s.name || s.title == stem {
            String::new()
        } else {
            format!("{}, ", s.title)
        };
        out.push_str(&format!(
            "\n• {} — {title}{}, {what}, added by {} on {}, {} ago",
            s.name,
            if s.kind.is_empty() { "file" } else { &s.kind },
            s.added_by,
            s.front,
            crate::kpi::age(now, s.created_at)
        ));
    }
    out.push_str("\n/source NAME §1 shows a passage; /forget NAME removes a file.");
    out
}
