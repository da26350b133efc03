//! `/search`: a workspace's knowledge base, from any front, for the workspaces a person sees.

use crate::actor::Actor;
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
        let ws = match self.workspace_for(actor, workspace, "knowledge is") {
            Ok(ws) => ws,
            Err(refused) => return Ok(refused),
        };
        match &self.agents {
            Some(a) => a.search(&ws, text).await,
            None => Ok(Reply::info("Knowledge search is not available here.")),
        }
    }
}
