//! Workspaces: the businesses or projects Krake works for (Lunavo, Monarch, …).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A workspace slug: lowercase ASCII letters, digits and single dashes, 1–40 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WorkspaceSlug(String);

/// Why a text is not a workspace slug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    /// The text was empty.
    #[error("a workspace slug cannot be empty")]
    Empty,
    /// The text was longer than 40 characters.
    #[error("a workspace slug has at most 40 characters")]
    TooLong,
    /// The text had a character other than a-z, 0-9 or `-`, or a misplaced dash.
    #[error(
        "a workspace slug uses only a-z, 0-9 and single dashes inside, like `hard-life-mode`: got `{0}`"
    )]
    Invalid(String),
}

impl WorkspaceSlug {
    /// Parses a slug.
    pub fn parse(s: &str) -> Result<Self, SlugError> {
        if s.is_empty() {
            return Err(SlugError::Empty);
        }
        if s.len() > 40 {
            return Err(SlugError::TooLong);
        }
        let ok_chars = s
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok_chars || s.starts_with('-') || s.ends_with('-') || s.contains("--") {
            return Err(SlugError::Invalid(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    /// The slug as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for WorkspaceSlug {
    type Error = SlugError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<WorkspaceSlug> for String {
    fn from(s: WorkspaceSlug) -> Self {
        s.0
    }
}

impl fmt::Display for WorkspaceSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// A workspace: a slug and a display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    /// Stable identifier used in commands, URLs and storage.
    pub slug: WorkspaceSlug,
    /// Name shown to people.
    pub name: String,
}

impl Workspace {
    /// Builds a workspace from a display name, deriving the slug (`Hard Life Mode` → `hard-life-mode`).
    pub fn from_name(name: &str) -> Result<Self, SlugError> {
        let slug: String = name
            .trim()
            .to_lowercase()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        Ok(Self {
            slug: WorkspaceSlug::parse(&slug)?,
            name: name.trim().to_owned(),
        })
    }
}

/// The default workspaces: Lunavo, Monarch, Lunabots, Hard Life Mode, Management.
pub fn default_workspaces() -> Vec<Workspace> {
    [
        "Lunavo",
        "Monarch",
        "Lunabots",
        "Hard Life Mode",
        "Management",
    ]
    .iter()
    .filter_map(|n| Workspace::from_name(n).ok())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_slugs() {
        let slugs: Vec<String> = default_workspaces()
            .into_iter()
            .map(|w| w.slug.to_string())
            .collect();
        assert_eq!(
            slugs,
            [
                "lunavo",
                "monarch",
                "lunabots",
                "hard-life-mode",
                "management"
            ]
        );
    }

    #[test]
    fn rejects_bad_slugs() {
        assert_eq!(WorkspaceSlug::parse(""), Err(SlugError::Empty));
        assert!(matches!(
            WorkspaceSlug::parse("Lunavo"),
            Err(SlugError::Invalid(_))
        ));
        assert!(matches!(
            WorkspaceSlug::parse("-x"),
            Err(SlugError::Invalid(_))
        ));
        assert!(matches!(
            WorkspaceSlug::parse("a--b"),
            Err(SlugError::Invalid(_))
        ));
        assert_eq!(
            WorkspaceSlug::parse(&"a".repeat(41)),
            Err(SlugError::TooLong)
        );
        assert!(WorkspaceSlug::parse("hard-life-mode").is_ok());
    }
}
