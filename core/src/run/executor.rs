//! The [`ActionExecutor`] port that carries out approved actions, and an in-memory one.

use crate::inbox::ProposedAction;
use crate::workspace::WorkspaceSlug;
use async_trait::async_trait;

/// Carries out an approved (or confidently proposed) action. The runner calls it at most once
/// per action (guarded by the run's `executing` status); `key` is unique to the action (e.g.
/// `run:12`), for executors that can make their own writes idempotent.
#[async_trait]
pub trait ActionExecutor: Send + Sync {
    /// Executes `action` for `workspace`; `Ok` says what was done, `Err` why not.
    async fn execute(
        &self,
        workspace: &WorkspaceSlug,
        action: &ProposedAction,
        key: &str,
    ) -> Result<String, String>;
}

/// An [`ActionExecutor`] that records actions in memory (tests, benchmarks).
#[derive(Debug, Default)]
pub struct RecordingExecutor(std::sync::Mutex<Vec<(WorkspaceSlug, ProposedAction)>>);

impl RecordingExecutor {
    /// The actions executed so far.
    pub fn executed(&self) -> Vec<(WorkspaceSlug, ProposedAction)> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl ActionExecutor for RecordingExecutor {
    async fn execute(
        &self,
        workspace: &WorkspaceSlug,
        action: &ProposedAction,
        _key: &str,
    ) -> Result<String, String> {
        self.0
            .lock()
            .map_err(|_| "executor lock poisoned".to_owned())?
            .push((workspace.clone(), action.clone()));
        Ok(format!("executed: {}", action.describe()))
    }
}
