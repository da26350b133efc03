//! The knowledge base put together: a vector store, the embedder `[rag]` chooses (with the
//! on-disk embedding cache), BM25, the [`Ingestor`] and the [`HybridRetriever`]; and
//! [`OnDemandKnowledge`], core's `Retriever` and `KnowledgeBase` over it for `krake serve`.

use crate::cache::CachedEmbedder;
use crate::chunk::Chunker;
use crate::edge::EdgeStore;
use crate::embed::Embedder;
use crate::ingest::Ingestor;
use crate::minilm::{FETCH_COMMAND, MiniLm};
use crate::retrieve::HybridRetriever;
use crate::server::QdrantStore;
use crate::settings::{DIMENSIONS, EmbedderChoice, RagSettings, StoreChoice};
use crate::sparse::Bm25;
use crate::store::VectorStore;
use krake_core::knowledge::{
    Document, DocumentSet, KnowledgeBase, KnowledgeError, KnowledgeQuery, Passage, RetrieveError,
    Retriever, SyncCounts,
};
use krake_llm::embeddings::OpenAiEmbedder;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why the knowledge base cannot be opened: says which part and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OpenError(pub String);

static SAID_SPARSE_ONLY: AtomicBool = AtomicBool::new(false);

/// The local embedder with an on-disk cache in `cache`, or `None` (said once per process)
/// when its weights are missing. Damaged weights are an error.
pub fn cached_embedder(
    models: &Path,
    cache: &Path,
) -> Result<Option<Arc<dyn Embedder>>, OpenError> {
    let Some(e) = embedder(models)? else {
        return Ok(None);
    };
    Ok(Some(Arc::new(CachedEmbedder::open(e, cache).map_err(
        |e| OpenError(format!("the embedding cache cannot be opened: {e}")),
    )?)))
}

/// The local embedder, or `None` (said once per process) when its weights are missing.
/// Damaged weights are an error.
pub fn embedder(models: &Path) -> Result<Option<Arc<dyn Embedder>>, OpenError> {
    if !MiniLm::present(models) {
        if !SAID_SPARSE_ONLY.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "the local embedder's weights are not in {}: knowledge retrieval runs on BM25 \
                 only; run `{FETCH_COMMAND} {}` to fetch them",
                models.display(),
                models.display()
            );
        }
        return Ok(None);
    }
    let m = MiniLm::load(models)
        .map_err(|e| OpenError(format!("the local embedder cannot be loaded: {e}")))?;
    Ok(Some(Arc::new(m)))
}

/// The embedder `rag` chooses, with the on-disk cache in `paths.cache`; `None` when the local
/// one's weights are missing.
pub fn configured_embedder(
    paths: &KnowledgePaths,
    rag: &RagSettings,
) -> Result<Option<Arc<dyn Embedder>>, OpenError> {
    match &rag.embedder {
        EmbedderChoice::Local => cached_embedder(&paths.models, &paths.cache),
        EmbedderChoice::OpenAi(config) => {
            let remote = OpenAiEmbedder::new(config, |v| std::env::var(v).ok())
                .map_err(|e| OpenError(format!("rag.openai: {e}")))?;
            let cached = CachedEmbedder::open(Arc::new(remote), &paths.cache)
                .map_err(|e| OpenError(format!("the embedding cache cannot be opened: {e}")))?;
            Ok(Some(Arc::new(cached)))
        }
    }
}

/// Where a knowledge base's local files live.
#[derive(Debug, Clone)]
pub struct KnowledgePaths {
    /// The embedded store's directory (unused with a Qdrant server).
    pub dir: PathBuf,
    /// The local embedder's model files.
    pub models: PathBuf,
    /// The embedding cache.
    pub cache: PathBuf,
}

/// The knowledge base's parts.
#[derive(Clone)]
pub struct Knowledge {
    /// The store.
    pub store: Arc<dyn VectorStore>,
    /// Ingests documents.
    pub ingestor: Ingestor,
    /// Retrieves passages.
    pub retriever: HybridRetriever,
}

impl std::fmt::Debug for Knowledge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Knowledge")
            .field("retriever", &self.retriever)
            .finish()
    }
}

impl Knowledge {
    fn assemble(store: Arc<dyn VectorStore>, embedder: Option<Arc<dyn Embedder>>) -> Self {
        let bm25 = Arc::new(Bm25::default());
        Self {
            ingestor: Ingestor::new(
                store.clone(),
                embedder.clone(),
                bm25.clone(),
                Chunker::default(),
            ),
            retriever: HybridRetriever::new(store.clone(), embedder, bm25),
            store,
        }
    }

    /// Opens (or creates) an embedded knowledge base in `dir` with models from `models` and
    /// the embedding cache in `cache`.
    pub fn open_at(dir: &Path, models: &Path, cache: &Path) -> Result<Self, OpenError> {
        let store = Arc::new(EdgeStore::open(dir, DIMENSIONS).map_err(|e| {
            OpenError(format!(
                "the knowledge base in {} cannot be opened: {e}",
                dir.display()
            ))
        })?);
        Ok(Self::assemble(store, cached_embedder(models, cache)?))
    }

    /// Opens the knowledge base `rag` names (the embedded one in `paths.dir`, or a Qdrant
    /// server's collection, created when absent).
    pub async fn open_with(paths: &KnowledgePaths, rag: &RagSettings) -> Result<Self, OpenError> {
        let embedder = configured_embedder(paths, rag)?;
        let dims = embedder.as_ref().map_or(DIMENSIONS, |e| e.dimensions());
        match &rag.store {
            StoreChoice::Edge => {
                let dir = &paths.dir;
                let store = EdgeStore::open(dir, dims).map_err(|e| {
                    OpenError(format!(
                        "the knowledge base in {} cannot be opened: {e}",
                        dir.display()
                    ))
                })?;
                Ok(Self::assemble(Arc::new(store), embedder))
            }
            StoreChoice::Qdrant(server) => {
                let store = QdrantStore::open(server, dims).await.map_err(|e| {
                    OpenError(format!(
                        "the knowledge base on the Qdrant server {} (collection `{}`) cannot be \
                         opened: {e}",
                        server.url, server.collection
                    ))
                })?;
                Ok(Self::assemble(Arc::new(store), embedder))
            }
        }
    }
}

/// The configured knowledge base. The embedded one (qdrant-edge) is opened for each query and
/// closed after it: qdrant-edge holds an exclusive lock on its directory while open, so a
/// `krake serve` that kept it open would stop `krake ingest` (and `krake chat`) from opening
/// it. When it is empty or missing, queries find nothing; when it is locked by another process
/// (an ingest in progress), the query fails with an error that says so. A Qdrant server has no
/// such lock and is shared by every replica: it is opened once (one gRPC client and one
/// embedder, shared by the clones of this value) and kept; an open that fails is tried again
/// on the next call. Writes (core's knowledge sync and run memory) open it the same way.
#[derive(Clone)]
pub struct OnDemandKnowledge {
    paths: KnowledgePaths,
    rag: RagSettings,
    /// The open Qdrant server knowledge base, once opened.
    shared: Arc<tokio::sync::OnceCell<Knowledge>>,
}

impl std::fmt::Debug for OnDemandKnowledge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnDemandKnowledge")
            .field("paths", &self.paths)
            .field("rag", &self.rag)
            .field("open", &self.shared.initialized())
            .finish()
    }
}

impl OnDemandKnowledge {
    /// The knowledge base in `paths` that `rag` names.
    pub fn new(paths: KnowledgePaths, rag: RagSettings) -> Self {
        Self {
            paths,
            rag,
            shared: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// The knowledge base: the kept one on a Qdrant server, a fresh one when embedded.
    async fn knowledge(&self) -> Result<Knowledge, OpenError> {
        match self.rag.store {
            StoreChoice::Qdrant(_) => self
                .shared
                .get_or_try_init(|| Knowledge::open_with(&self.paths, &self.rag))
                .await
                .cloned(),
            StoreChoice::Edge => Knowledge::open_with(&self.paths, &self.rag).await,
        }
    }

    /// Whether a Qdrant server knowledge base answers now (for `/readyz`); the embedded one
    /// is checked by its queries, since another process may hold it.
    pub async fn ready(&self) -> Result<(), String> {
        let StoreChoice::Qdrant(c) = &self.rag.store else {
            return Ok(());
        };
        let k = self
            .knowledge()
            .await
            .map_err(|e| format!("Qdrant server at {} unavailable: {e}", c.url))?;
        k.store
            .health()
            .await
            .map_err(|e| format!("Qdrant server at {} unavailable: {e}", c.url))
    }

    async fn open(&self) -> Result<Knowledge, KnowledgeError> {
        self.knowledge()
            .await
            .map_err(|e| KnowledgeError::Unavailable(e.to_string()))
    }
}

#[async_trait::async_trait]
impl Retriever for OnDemandKnowledge {
    async fn retrieve(&self, query: &KnowledgeQuery) -> Result<Vec<Passage>, RetrieveError> {
        if matches!(self.rag.store, StoreChoice::Edge)
            && !self.paths.dir.join("edge_config.json").exists()
        {
            return Ok(Vec::new());
        }
        let k = self
            .knowledge()
            .await
            .map_err(|e| match self.rag.store {
                StoreChoice::Edge => RetrieveError::Unavailable(format!(
                    "{e} (another process, such as `krake ingest`, may be using it; try again when it ends)"
                )),
                StoreChoice::Qdrant(_) => RetrieveError::Unavailable(e.to_string()),
            })?;
        k.retriever.retrieve(query).await
    }
}

#[async_trait::async_trait]
impl KnowledgeBase for OnDemandKnowledge {
    async fn ingest(&self, docs: &[Document]) -> Result<usize, KnowledgeError> {
        KnowledgeBase::ingest(&self.open().await?.ingestor, docs).await
    }

    async fn sync(&self, sets: &[DocumentSet]) -> Result<Vec<SyncCounts>, KnowledgeError> {
        KnowledgeBase::sync(&self.open().await?.ingestor, sets).await
    }

    fn read_file(
        &self,
        name: &str,
        bytes: &[u8],
    ) -> Result<krake_core::knowledge::FileText, String> {
        crate::extract::read_bytes(name, bytes)
    }

    /// Learns in groups, opening the knowledge base for each (the embedded one is released
    /// between them, so questions are answered while a long file is learned).
    async fn learn(
        &self,
        doc: &Document,
        progress: &(dyn Fn(usize, usize) + Send + Sync),
    ) -> Result<usize, KnowledgeError> {
        crate::ingest::learn_with(|| async { Ok(self.open().await?.ingestor) }, doc, progress).await
    }

    async fn forget(
        &self,
        workspace: &str,
        source_kind: &str,
        source: &str,
    ) -> Result<(), KnowledgeError> {
        KnowledgeBase::forget(&self.open().await?.ingestor, workspace, source_kind, source).await
    }

    fn passages(&self, text: &str) -> Vec<String> {
        crate::ingest::passages(&crate::chunk::Chunker::default(), text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use krake_core::workspace::WorkspaceSlug;

    fn query(workspace: &str, text: &str) -> KnowledgeQuery {
        KnowledgeQuery {
            workspace: WorkspaceSlug::parse(workspace).expect("slug"),
            text: text.to_owned(),
            limit: 5,
            token_budget: 1000,
            source_kind: None,
        }
    }

    #[tokio::test]
    async fn without_weights_retrieval_is_bm25_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let k = Knowledge::open_at(
            &dir.path().join("kb"),
            &dir.path().join("no-models"),
            &dir.path().join("cache"),
        )
        .expect("open");
        assert!(!k.retriever.has_embedder());
        k.ingestor
            .ingest(&Document {
                workspace: "lunavo".into(),
                source_kind: "thread".into(),
                source: "thread #4".into(),
                title: "Late parcel".into(),
                text: "The parcel for order 1042 is late.".into(),
                time: 0,
            })
            .await
            .expect("ingest");
        let found = k
            .retriever
            .retrieve(&query("lunavo", "late parcel"))
            .await
            .expect("retrieve");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].citation(), "thread #4 §1");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn on_demand_knowledge_releases_the_lock_and_says_when_another_holds_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let on_demand = OnDemandKnowledge::new(
            KnowledgePaths {
                dir: dir.path().join("kb"),
                models: dir.path().join("no-models"),
                cache: dir.path().join("cache"),
            },
            RagSettings::default(),
        );
        // Before any ingest: nothing, and nothing created.
        assert!(
            on_demand
                .retrieve(&query("lunavo", "late"))
                .await
                .expect("retrieve")
                .is_empty()
        );
        let open = || {
            Knowledge::open_at(
                &on_demand.paths.dir,
                &on_demand.paths.models,
                &on_demand.paths.cache,
            )
        };
        let held = open().expect("open");
        held.ingestor
            .ingest(&Document {
                workspace: "lunavo".into(),
                source_kind: "file".into(),
                source: "late.md".into(),
                title: "Late".into(),
                text: "The parcel for order 1042 is late.".into(),
                time: 0,
            })
            .await
            .expect("ingest");
        // While another holder (an ingest) has the directory, a query says so.
        let err = on_demand
            .retrieve(&query("lunavo", "late parcel"))
            .await
            .expect_err("locked");
        assert!(err.to_string().contains("another process"), "{err}");
        drop(held);
        // Released: the query finds the passage, and does not keep the lock itself.
        let found = on_demand
            .retrieve(&query("lunavo", "late parcel"))
            .await
            .expect("retrieve");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(open().is_ok(), "the query released the directory");
    }
}
