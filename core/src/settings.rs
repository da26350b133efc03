//! What every part's config section shares: reading a `KRAKE_…` override before the file's
//! value, the error a bad setting gives, and checking a workspace a section names.
//!
//! Each adapter owns its section (`krake_telegram::settings::TelegramFile`, …): a serde type
//! that reads the file and writes the effective settings back for `krake config`. Secrets in
//! those types are [`Secret`](crate::secret::Secret)s, which serialise as `***`, so the one
//! redaction mechanism is serialisation itself.

use crate::config::Directory;
use crate::secret::Secret;
use crate::workspace::WorkspaceSlug;

/// Why a config section cannot be used: says which key and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

impl SettingsError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// A setting from the environment (preferred) or the config file, trimmed; empty values count
/// as unset. The one reader of `KRAKE_*` overrides.
pub fn env_or(env: &str, file: Option<&String>) -> Option<String> {
    std::env::var(env)
        .ok()
        .or_else(|| file.cloned())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// A secret from the environment (preferred) or the config file; empty values count as unset.
pub fn env_secret(env: &str, file: Option<&Secret>) -> Option<Secret> {
    let file = file.map(|s| s.expose().to_owned());
    env_or(env, file.as_ref()).map(Secret::new)
}

/// The environment variable of a per-workspace setting: `PREFIX_HARD_LIFE_MODE`.
pub fn workspace_env(prefix: &str, workspace: &WorkspaceSlug) -> String {
    format!(
        "{prefix}_{}",
        workspace.as_str().to_uppercase().replace('-', "_")
    )
}

/// The workspace a section names, when it is a configured one; `what` names the key.
pub fn known_workspace(
    directory: &Directory,
    slug: &str,
    what: &str,
) -> Result<WorkspaceSlug, SettingsError> {
    let ws = WorkspaceSlug::parse(slug)
        .map_err(|_| SettingsError::new(format!("{what}: `{slug}` is not a workspace slug")))?;
    if directory.workspace(&ws).is_none() {
        return Err(SettingsError::new(format!(
            "{what}: there is no workspace `{slug}`"
        )));
    }
    Ok(ws)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_workspace_must_exist() {
        let d = Directory::default();
        assert_eq!(
            known_workspace(&d, "lunavo", "[x]").map(|w| w.to_string()),
            Ok("lunavo".to_owned())
        );
        let e = known_workspace(&d, "narnia", "[x]").unwrap_err();
        assert!(e.0.contains("no workspace `narnia`"), "{e}");
        let e = known_workspace(&d, "Not A Slug!", "[x]").unwrap_err();
        assert!(e.0.contains("not a workspace slug"), "{e}");
        assert_eq!(
            workspace_env(
                "KRAKE_GELATO_TOKEN",
                &WorkspaceSlug::parse("hard-life-mode").unwrap()
            ),
            "KRAKE_GELATO_TOKEN_HARD_LIFE_MODE"
        );
    }

    #[test]
    fn empty_values_count_as_unset() {
        assert_eq!(
            env_or("KRAKE_TEST_SURELY_UNSET_1", Some(&"  ".into())),
            None
        );
        assert_eq!(
            env_or("KRAKE_TEST_SURELY_UNSET_1", Some(&" x ".into())).as_deref(),
            Some("x")
        );
        assert!(env_secret("KRAKE_TEST_SURELY_UNSET_1", None).is_none());
    }
}
