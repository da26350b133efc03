//! The domain part of configuration: which workspaces exist and who the agents are, and
//! ([`file`]) how the config file names them.

pub mod file;

use crate::agent::{Agent, default_agents};
use crate::workspace::{Workspace, WorkspaceSlug, default_workspaces};

/// The workspaces and agents Krake knows, validated together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directory {
    workspaces: Vec<Workspace>,
    agents: Vec<Agent>,
}

/// Why a directory is inconsistent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// No workspace at all.
    #[error("at least one workspace must be configured")]
    NoWorkspaces,
    /// Two workspaces share a slug.
    #[error("workspace `{0}` is configured twice")]
    DuplicateWorkspace(String),
    /// Two agents share a name.
    #[error("agent `{0}` is configured twice")]
    DuplicateAgent(String),
    /// An agent works in a workspace that does not exist.
    #[error("agent `{agent}` works in `{workspace}`, which is not a configured workspace")]
    UnknownWorkspace {
        /// The agent.
        agent: String,
        /// The missing workspace.
        workspace: String,
    },
}

impl Default for Directory {
    fn default() -> Self {
        Self {
            workspaces: default_workspaces(),
            agents: default_agents(),
        }
    }
}

impl Directory {
    /// Checks and builds a directory.
    pub fn new(workspaces: Vec<Workspace>, agents: Vec<Agent>) -> Result<Self, DirectoryError> {
        if workspaces.is_empty() {
            return Err(DirectoryError::NoWorkspaces);
        }
        for (i, w) in workspaces.iter().enumerate() {
            if workspaces[..i].iter().any(|o| o.slug == w.slug) {
                return Err(DirectoryError::DuplicateWorkspace(w.slug.to_string()));
            }
        }
        for (i, a) in agents.iter().enumerate() {
            if agents[..i].iter().any(|o| o.name.matches(a.name.as_str())) {
                return Err(DirectoryError::DuplicateAgent(a.name.to_string()));
            }
            for w in &a.workspaces {
                if !workspaces.iter().any(|x| &x.slug == w) {
                    return Err(DirectoryError::UnknownWorkspace {
                        agent: a.name.to_string(),
                        workspace: w.to_string(),
                    });
                }
            }
        }
        Ok(Self { workspaces, agents })
    }

    /// The workspaces, in configured order.
    pub fn workspaces(&self) -> &[Workspace] {
        &self.workspaces
    }

    /// The agents, in configured order.
    pub fn agents(&self) -> &[Agent] {
        &self.agents
    }

    /// The workspace with this slug.
    pub fn workspace(&self, slug: &WorkspaceSlug) -> Option<&Workspace> {
        self.workspaces.iter().find(|w| &w.slug == slug)
    }

    /// The agent with this name (case-insensitive).
    pub fn agent(&self, name: &str) -> Option<&Agent> {
        self.agents.iter().find(|a| a.name.matches(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_consistent() {
        let d = Directory::default();
        assert!(Directory::new(d.workspaces().to_vec(), d.agents().to_vec()).is_ok());
        assert!(d.agent("PENN").is_some());
    }

    #[test]
    fn rejects_inconsistencies() {
        let d = Directory::default();
        assert_eq!(
            Directory::new(vec![], vec![]),
            Err(DirectoryError::NoWorkspaces)
        );
        let only_mgmt: Vec<Workspace> = d
            .workspaces()
            .iter()
            .filter(|w| w.slug.as_str() == "management")
            .cloned()
            .collect();
        assert!(matches!(
            Directory::new(only_mgmt, d.agents().to_vec()),
            Err(DirectoryError::UnknownWorkspace { .. })
        ));
        let mut twice = d.workspaces().to_vec();
        twice.push(twice[0].clone());
        assert!(matches!(
            Directory::new(twice, vec![]),
            Err(DirectoryError::DuplicateWorkspace(_))
        ));
    }
}
