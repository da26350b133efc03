//! Who is acting: a user name, the front they came through, and their role.

use serde::{Deserialize, Serialize};
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
    /// Krake itself (sweepers, schedules, webhooks).
    System,
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
            Front::System => "system",
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
            "system" => Front::System,
            _ => return None,
        })
    }
}

impl fmt::Display for Front {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// A role in a workspace, from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
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
    /// Their role (fronts resolve it from accounts; the local terminal user is an owner).
    pub role: Role,
}

impl Actor {
    /// The person at the terminal: user `local`, front cli, owner.
    pub fn local() -> Self {
        Self {
            user: UserName::local(),
            front: Front::Cli,
            role: Role::Owner,
        }
    }

    /// Krake itself, for sweepers and schedules.
    pub fn system() -> Self {
        Self {
            user: UserName("krake".to_owned()),
            front: Front::System,
            role: Role::Owner,
        }
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
    fn roles_order_and_parse() {
        assert!(Role::Owner > Role::Member);
        assert!(Role::Viewer < Role::Member);
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
