//! `/search`: a workspace's knowledge base, from any front, for the workspaces a person sees.

use crate::actor::Actor;
use crate::chat::text::link_hint;
use crate::ports::RepoError;
use crate::reply::Reply;
use crate::service::Krake;
use crate::workspace::WorkspaceSlug;

impl Krake {
    /// `/search`: the knowledge of a workspace the person sees.
    pub(crate) async fn search(
        &self,
        actor: &Actor,
        workspace: Option<WorkspaceSlug>,
        text: &str,
    ) -> Result<Reply, RepoError> {
        let Some(ws) = workspace.or_else(|| {
            self.directory
                .workspaces()
                .iter()
                .map(|w| w.slug.clone())
                .find(|w| actor.can_see(w))
        }) else {
            return Ok(Reply::warning(format!(
                "You see no workspace yet.{}",
                link_hint(actor)
            )));
        };
        if !actor.can_see(&ws) {
            return Ok(Reply::warning(format!(
                "You are not a member of {ws}, so its knowledge is hidden from you.{}",
                link_hint(actor)
            )));
        }
        match &self.agents {
            Some(a) => a.search(&ws, text).await,
            None => Ok(Reply::info("Knowledge search is not available here.")),
        }
    }
}
