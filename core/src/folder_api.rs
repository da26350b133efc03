//! Typed reads of agents' folders for structured fronts (the HTTP API, the dashboard), under
//! the `/folder` commands' rule: an agent's folders are readable by whoever sees one of the
//! agent's workspaces.

use crate::actor::Actor;
use crate::folder::{Entry, Folder};
use crate::service::Krake;
use crate::thread_api::ThreadError;

impl Krake {
    fn may_read_folders_of(&self, actor: &Actor, agent: &str) -> bool {
        self.directory
            .agent(agent)
            .is_some_and(|a| a.workspaces.iter().any(|w| actor.can_see(w)))
    }

    /// The folders the actor may read, of one agent or of all, by agent and name.
    pub async fn folders_for(
        &self,
        actor: &Actor,
        agent: Option<&str>,
    ) -> Result<Vec<Folder>, ThreadError> {
        let repo = self
            .folders
            .clone()
            .ok_or_else(|| ThreadError::NotFound("folders are not available here".into()))?;
        if let Some(a) = agent {
            if self.directory.agent(a).is_none() {
                return Err(ThreadError::NotFound(format!("there is no agent `{a}`")));
            }
            if !self.may_read_folders_of(actor, a) {
                return Err(ThreadError::Forbidden(format!(
                    "{} sees none of the workspaces {a} works in",
                    actor.user
                )));
            }
        }
        let all = repo.folders(agent).await?;
        Ok(all
            .into_iter()
            .filter(|f| self.may_read_folders_of(actor, &f.agent))
            .collect())
    }

    /// One folder with its entries, if the actor may read it.
    pub async fn folder_for(
        &self,
        actor: &Actor,
        agent: &str,
        name: &str,
    ) -> Result<(Folder, Vec<Entry>), ThreadError> {
        let repo = self
            .folders
            .clone()
            .ok_or_else(|| ThreadError::NotFound("folders are not available here".into()))?;
        let canonical = self
            .directory
            .agent(agent)
            .map(|a| a.name.to_string())
            .ok_or_else(|| ThreadError::NotFound(format!("there is no agent `{agent}`")))?;
        if !self.may_read_folders_of(actor, agent) {
            return Err(ThreadError::Forbidden(format!(
                "{} sees none of the workspaces {canonical} works in",
                actor.user
            )));
        }
        let folder = repo
            .folder(&canonical, name)
            .await?
            .ok_or_else(|| ThreadError::NotFound(format!("{canonical} has no folder `{name}`")))?;
        let entries = repo.entries(folder.id).await?;
        Ok((folder, entries))
    }
}
