//! Who is acting: a user name, the front they came through, and their role.

use crate::workspace::WorkspaceSlug;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A Krake user name: 1–64 characters, no control characters, no surrounding spaces.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserName(String);

/// Why a text is not a user name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a user name has 1 to 64 characters without control characters: got `{0}`")]
pub struct UserNameError(String);

impl UserName {
    /// Parses a user name.
    pub fn parse(s: &str) -> Result<Self, UserNameError> {
        let t = s.trim();
        if t.is_empty() || t.chars().count() > 64 || t.chars().any(char::is_control) || t != s {
            return Err(UserNameError(s.chars().take(64).collect()));
        }
        Ok(Self(t.to_owned()))
    }

    /// The user called `local`: the person at the terminal running `krake chat`.
    pub fn local() -> Self {
        Self("local".to_owned())
    }

    /// The name given to a platform user whose id makes no valid user name.
    pub fn guest() -> Self {
        Self("guest".to_owned())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserName {
    type Error = UserNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<UserName> for String {
    fn from(u: UserName) -> Self {
        u.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// The front a change came through; recorded in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Front {
    /// The terminal (`krake chat`, `krake demo`).
    Cli,
    /// The web dashboard and web chat.
    Web,
    /// Telegram.
    Telegram,
    /// Discord.
    Discord,
    /// The HTTP API (tokens, scripts).
    Api,
    /// The Model Context Protocol (assistants calling Krake's tools).
    Mcp,
    /// Krake itself (sweepers, schedules, webhooks).
    System,
    /// An anonymous visitor of a shop's pages (the customer widget): never a command, only
    /// questions for the publishable key's agent.
    Visitor,
}

impl Front {
    /// The lowercase name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Front::Cli => "cli",
            Front::Web => "web",
            Front::Telegram => "telegram",
            Front::Discord => "discord",
            Front::Api => "api",
            Front::Mcp => "mcp",
            Front::System => "system",
            Front::Visitor => "visitor",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "cli" => Front::Cli,
            "web" => Front::Web,
            "telegram" => Front::Telegram,
            "discord" => Front::Discord,
            "api" => Front::Api,
            "mcp" => Front::Mcp,
            "system" => Front::System,
            "visitor" => Front::Visitor,
            _ => return None,
        })
    }
}

impl fmt::Display for Front {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A role in a workspace, from least to most powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Not a member: may chat with Krake, sees no threads (an unlinked platform user).
    Guest,
    /// Reads only.
    Viewer,
    /// Reads, replies, approves and rejects.
    Member,
    /// A member who also manages the workspace.
    Admin,
    /// Owns the workspace; receives escalations.
    Owner,
}

impl Role {
    /// Parses `owner`, `admin`, `member` or `viewer`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "owner" => Role::Owner,
            "admin" => Role::Admin,
            "member" => Role::Member,
            "viewer" => Role::Viewer,
            "guest" => Role::Guest,
            _ => return None,
        })
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Viewer => "viewer",
            Role::Guest => "guest",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// Someone (or something) acting on Krake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Who.
    pub user: UserName,
    /// Through which front.
    pub front: Front,
    /// Their role in every workspace not listed in `workspace_roles` (fronts resolve it from
    /// accounts; the local terminal user is an owner; an unlinked platform user a guest).
    pub role: Role,
    /// Roles that differ per workspace.
    pub workspace_roles: BTreeMap<WorkspaceSlug, Role>,
    /// The platform's id of the person (Telegram or Discord user id), when known.
    pub external_id: Option<String>,
    /// A platform user not linked to any Krake user: may chat, never act on threads.
    pub unlinked: bool,
}

impl Actor {
    /// An actor with one role everywhere.
    pub fn new(user: UserName, front: Front, role: Role) -> Self {
        Self {
            user,
            front,
            role,
            workspace_roles: BTreeMap::new(),
            external_id: None,
            unlinked: false,
        }
    }

    /// The person at the terminal: user `local`, front cli, owner.
    pub fn local() -> Self {
        Self::new(UserName::local(), Front::Cli, Role::Owner)
    }

    /// Krake itself, for sweepers and schedules.
    pub fn system() -> Self {
        Self::new(UserName("krake".to_owned()), Front::System, Role::Owner)
    }

    /// The actor's role in a workspace.
    pub fn role_in(&self, workspace: &WorkspaceSlug) -> Role {
        self.workspace_roles
            .get(workspace)
            .copied()
            .unwrap_or(self.role)
    }

    /// Whether the actor may see the workspace's threads (viewer or above there).
    pub fn can_see(&self, workspace: &WorkspaceSlug) -> bool {
        self.role_in(workspace) >= Role::Viewer
    }

    /// Of `all` workspaces, those the actor may see; `None` when that is every one of them.
    pub fn visible<'a>(
        &self,
        all: impl IntoIterator<Item = &'a WorkspaceSlug>,
    ) -> Option<Vec<WorkspaceSlug>> {
        let all: Vec<&WorkspaceSlug> = all.into_iter().collect();
        let seen: Vec<WorkspaceSlug> = all
            .iter()
            .filter(|w| self.can_see(w))
            .map(|w| (*w).clone())
            .collect();
        (seen.len() != all.len()).then_some(seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        assert!(UserName::parse("ana").is_ok());
        assert!(UserName::parse("").is_err());
        assert!(UserName::parse(" ana").is_err());
        assert!(UserName::parse("a\u{7}b").is_err());
        assert!(UserName::parse(&"x".repeat(65)).is_err());
    }

    #[test]
    fn per_workspace_roles_and_visibility() {
        let lunavo = WorkspaceSlug::parse("lunavo").unwrap();
        let monarch = WorkspaceSlug::parse("monarch").unwrap();
        let mut guest = Actor::new(
            UserName::parse("telegram:1").unwrap(),
            Front::Telegram,
            Role::Guest,
        );
        guest.workspace_roles.insert(lunavo.clone(), Role::Viewer);
        assert!(guest.can_see(&lunavo));
        assert!(!guest.can_see(&monarch));
        assert_eq!(
            guest.visible([&lunavo, &monarch]),
            Some(vec![lunavo.clone()])
        );
        assert_eq!(Actor::local().visible([&lunavo, &monarch]), None);
        assert_eq!(guest.role_in(&monarch), Role::Guest);
    }

    #[test]
    fn roles_order_and_parse() {
        assert!(Role::Owner > Role::Member);
        assert!(Role::Viewer < Role::Member);
        assert!(Role::Guest < Role::Viewer);
        assert_eq!(Role::parse("Admin"), Some(Role::Admin));
        assert_eq!(Role::parse("boss"), None);
        for f in [
            Front::Cli,
            Front::Web,
            Front::Telegram,
            Front::Discord,
            Front::Api,
            Front::System,
        ] {
            assert_eq!(Front::parse(f.as_str()), Some(f));
        }
    }
}
