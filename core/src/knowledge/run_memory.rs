//! Agent results as long-term memory: finished runs ingested into their workspace's knowledge
//! (source kind `agent_result`), so later runs and `ask` can find them.

use super::documents::run_document;
use super::{Document, KnowledgeBase, KnowledgeError};
use crate::run::{Run, RunRepo};
use std::sync::Arc;

/// Remembers finished runs in the knowledge base.
#[derive(Clone)]
pub struct RunMemory {
    knowledge: Arc<dyn KnowledgeBase>,
}

impl std::fmt::Debug for RunMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunMemory").finish_non_exhaustive()
    }
}

impl RunMemory {
    /// A memory writing to `knowledge`.
    pub fn new(knowledge: Arc<dyn KnowledgeBase>) -> Self {
        Self { knowledge }
    }

    /// Ingests the finished runs among `runs` (unchanged ones cost a hash); returns how many
    /// were written. The knowledge base is not touched when none is finished.
    pub async fn remember(&self, runs: &[Run]) -> Result<usize, KnowledgeError> {
        let docs: Vec<Document> = runs.iter().filter_map(run_document).collect();
        if docs.is_empty() {
            return Ok(0);
        }
        self.knowledge.ingest(&docs).await
    }

    /// Ingests the `limit` most recent finished runs (those an approval finished outside the
    /// worker included).
    pub async fn remember_recent(
        &self,
        runs: &dyn RunRepo,
        limit: u32,
    ) -> Result<usize, KnowledgeError> {
        let recent = runs
            .list_runs(&crate::run::RunFilter::recent(limit))
            .await?;
        self.remember(&recent).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::MemoryKnowledge;
    use crate::knowledge::documents::tests::run;
    use crate::run::RunStatus;
    use crate::test_fakes::FakeRuns;

    #[tokio::test]
    async fn only_done_runs_are_remembered_once_in_their_workspace() {
        let kb = Arc::new(MemoryKnowledge::new());
        let memory = RunMemory::new(kb.clone());
        let runs = FakeRuns::default();
        runs.put(run(
            1,
            RunStatus::Done,
            Some("Order 1042 waits for the Gelato print partner in Latvia."),
        ));
        runs.put(run(2, RunStatus::Failed, Some("warehouse unreachable")));
        assert_eq!(
            memory.remember_recent(&runs, 50).await.expect("remember"),
            1,
            "only the done run"
        );
        assert_eq!(
            memory.remember_recent(&runs, 50).await.expect("again"),
            0,
            "unchanged: nothing written"
        );
        let docs = kb.documents();
        assert_eq!(docs.len(), 1, "{docs:?}");
        assert_eq!(docs[0].workspace, "lunavo");
        assert_eq!(docs[0].source_kind, "agent_result");
        assert_eq!(docs[0].source, "run #1");
        assert!(docs[0].text.contains("print partner in Latvia"));
    }

    #[tokio::test]
    async fn without_a_finished_run_the_knowledge_base_is_not_opened() {
        let kb = Arc::new(MemoryKnowledge::new());
        let memory = RunMemory::new(kb.clone());
        let n = memory
            .remember(&[run(1, RunStatus::Running, None)])
            .await
            .expect("remember");
        assert_eq!((n, kb.calls()), (0, 0));
    }
}
