//! What fronts show of a workspace's knowledge beside chat (the web's Knowledge page and
//! `/api/v1/workspaces/{slug}/knowledge`): the files it holds, one of them, the passages a
//! question retrieves with their scores, and whether a person may add to it or forget from it.
//! The rights are chat's (`/sources`, `/search`: viewer; a file or `/forget`: member); adding
//! and forgetting themselves go through [`Krake::accept`](crate::Krake::accept).

use super::Passage;
use super::learn::Source;
use crate::actor::Actor;
use crate::ports::RepoError;
use crate::service::Krake;
use crate::workspace::WorkspaceSlug;

/// Why a look at a workspace's knowledge is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KnowledgeRefused {
    /// There is no such workspace.
    #[error("there is no workspace `{0}`")]
    NoWorkspace(String),
    /// The person may not see (or not change) the workspace's knowledge; says why.
    #[error("{0}")]
    Forbidden(String),
    /// The workspace has learned no file of that name.
    #[error("{workspace} has learned no file called {name}")]
    NoSuchFile {
        /// The workspace.
        workspace: WorkspaceSlug,
        /// The name asked for.
        name: String,
    },
    /// Knowledge (learning files, searching) is not set up here, or cannot answer now.
    #[error("{0}")]
    Unavailable(String),
}

impl Krake {
    /// The workspace, if it exists and `actor` may see it.
    fn visible_knowledge(
        &self,
        actor: &Actor,
        workspace: &WorkspaceSlug,
    ) -> Result<WorkspaceSlug, KnowledgeRefused> {
        if self.directory.workspace(workspace).is_none() {
            return Err(KnowledgeRefused::NoWorkspace(workspace.to_string()));
        }
        self.workspace_for(actor, Some(workspace.clone()), "knowledge is")
            .map_err(|r| KnowledgeRefused::Forbidden(r.text))
    }

    /// The files `workspace`'s knowledge holds (learned or being read), newest first, for
    /// anyone who sees the workspace.
    pub async fn knowledge_sources(
        &self,
        actor: &Actor,
        workspace: &WorkspaceSlug,
    ) -> Result<Result<Vec<Source>, KnowledgeRefused>, RepoError> {
        let ws = match self.visible_knowledge(actor, workspace) {
            Ok(ws) => ws,
            Err(e) => return Ok(Err(e)),
        };
        let Some(learning) = &self.learning else {
            return Ok(Err(unavailable()));
        };
        Ok(Ok(learning.repo.sources(&ws).await?))
    }

    /// One learned file of `workspace`, for anyone who sees the workspace.
    pub async fn knowledge_source(
        &self,
        actor: &Actor,
        workspace: &WorkspaceSlug,
        name: &str,
    ) -> Result<Result<Source, KnowledgeRefused>, RepoError> {
        let ws = match self.visible_knowledge(actor, workspace) {
            Ok(ws) => ws,
            Err(e) => return Ok(Err(e)),
        };
        let Some(learning) = &self.learning else {
            return Ok(Err(unavailable()));
        };
        Ok(match learning.repo.source_text(&ws, name).await? {
            Some((source, _)) => Ok(source),
            None => Err(KnowledgeRefused::NoSuchFile {
                workspace: ws,
                name: name.to_owned(),
            }),
        })
    }

    /// Whether `actor` may add files to `workspace`'s knowledge and forget them (member role),
    /// with chat's words when not. The accept path checks it again.
    pub fn may_change_knowledge(
        &self,
        actor: &Actor,
        workspace: &WorkspaceSlug,
    ) -> Result<(), KnowledgeRefused> {
        let ws = self.visible_knowledge(actor, workspace)?;
        if self.learning.is_none() {
            return Err(unavailable());
        }
        self.knowledge_workspace(actor, Some(ws), "add to")
            .map(|_| ())
            .map_err(|r| KnowledgeRefused::Forbidden(r.text))
    }

    /// The passages of `workspace`'s knowledge that `text` retrieves, best first with their
    /// scores: what an agent asked the same would be given. For anyone who sees the workspace.
    pub async fn knowledge_search(
        &self,
        actor: &Actor,
        workspace: &WorkspaceSlug,
        text: &str,
    ) -> Result<Vec<Passage>, KnowledgeRefused> {
        let ws = self.visible_knowledge(actor, workspace)?;
        let Some(agents) = &self.agents else {
            return Err(KnowledgeRefused::Unavailable(
                "Knowledge search is not available here.".into(),
            ));
        };
        agents.passages(&ws, text).await.map_err(|e| {
            KnowledgeRefused::Unavailable(format!(
                "The knowledge base cannot be searched now: {e}. Try again shortly."
            ))
        })
    }
}

fn unavailable() -> KnowledgeRefused {
    KnowledgeRefused::Unavailable("Learning files is not available here.".into())
}
