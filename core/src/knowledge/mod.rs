//! Knowledge: what agents and `ask` retrieve, and what Krake's own records become.
//!
//! - The [`Retriever`] port and its types (here): krake-rag fills it (chunks in Qdrant, hybrid
//!   dense and BM25 search, always filtered by workspace); until a knowledge base is
//!   configured, [`NoKnowledge`] answers with nothing.
//! - [`base`]: the [`KnowledgeBase`] port documents are written to, and [`MemoryKnowledge`].
//! - [`embed`]: the [`Embedder`](embed::Embedder) port (texts to vectors).
//! - [`documents`]: which documents inbox threads, agent folders and finished runs become.
//! - [`sync`]: the pass that keeps threads and folders in the knowledge base, only when they
//!   changed.
//! - [`run_memory`]: finished runs remembered as long-term memory.
//! - [`view`]: what fronts show of a workspace's knowledge (its files, the passages a
//!   question retrieves), with the same rights as chat.

pub mod base;
pub mod chat;
pub mod documents;
pub mod embed;
pub mod learn;
pub mod run_memory;
mod search;
pub mod sync;
pub mod view;

pub use base::{
    Document, DocumentSet, FileText, KnowledgeBase, KnowledgeError, MemoryKnowledge, SyncCounts,
};
pub use run_memory::RunMemory;
pub use sync::{KnowledgeSync, StoreDocuments, StoreSync};

use crate::workspace::WorkspaceSlug;
use async_trait::async_trait;

/// What to retrieve: text to match, in one workspace, within a budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnowledgeQuery {
    /// The workspace whose knowledge is searched; no other workspace's chunks are returned.
    pub workspace: WorkspaceSlug,
    /// The text to match (a task, a question).
    pub text: String,
    /// At most this many passages.
    pub limit: usize,
    /// At most about this many tokens of passage text in total (lowest scores pruned first).
    pub token_budget: usize,
    /// Only passages from this kind of source (`file`, `thread`, `agent_result`, `folder`).
    pub source_kind: Option<String>,
}

/// One retrieved passage, with where it came from so a reply can cite it.
#[derive(Debug, Clone, PartialEq)]
pub struct Passage {
    /// The passage text.
    pub text: String,
    /// The kind of source (`file`, `thread`, `agent_result`, `folder`).
    pub source_kind: String,
    /// The source (a file path, `thread #12`, …).
    pub source: String,
    /// The source's title, if it has one.
    pub title: String,
    /// The chunk's position within its source (0-based).
    pub position: u32,
    /// Relevance: higher is better; comparable only within one answer.
    pub score: f32,
}

impl Passage {
    /// A short citation: `source §position`.
    pub fn citation(&self) -> String {
        format!("{} §{}", self.source, self.position + 1)
    }
}

/// A retrieval failure.
#[derive(Debug, thiserror::Error)]
pub enum RetrieveError {
    /// The knowledge store could not be reached or failed.
    #[error("the knowledge base is unavailable: {0}")]
    Unavailable(String),
}

/// Finds passages relevant to a query.
#[async_trait]
pub trait Retriever: Send + Sync {
    /// The best passages for `query`, best first.
    async fn retrieve(&self, query: &KnowledgeQuery) -> Result<Vec<Passage>, RetrieveError>;
}

/// The retriever used when no knowledge base is configured: it finds nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoKnowledge;

#[async_trait]
impl Retriever for NoKnowledge {
    async fn retrieve(&self, _query: &KnowledgeQuery) -> Result<Vec<Passage>, RetrieveError> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_knowledge_finds_nothing() {
        let q = KnowledgeQuery {
            workspace: WorkspaceSlug::parse("lunavo").expect("slug"),
            text: "hoodie".to_owned(),
            limit: 5,
            token_budget: 500,
            source_kind: None,
        };
        assert!(NoKnowledge.retrieve(&q).await.expect("ok").is_empty());
    }

    #[test]
    fn citation_counts_from_one() {
        let p = Passage {
            text: "t".to_owned(),
            source_kind: "file".to_owned(),
            source: "docs/faq.md".to_owned(),
            title: "FAQ".to_owned(),
            position: 0,
            score: 1.0,
        };
        assert_eq!(p.citation(), "docs/faq.md §1");
    }
}
