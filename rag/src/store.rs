//! The [`VectorStore`] port: chunks with a dense and a BM25 sparse vector, searched within one
//! workspace (and optionally one kind of source). [`MemoryStore`] is the in-memory
//! implementation for tests; [`crate::edge::EdgeStore`] (embedded Qdrant) is the default.

use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

/// A sparse vector: sorted dimensions and their weights.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SparseVector {
    /// Dimensions, ascending and distinct.
    pub indices: Vec<u32>,
    /// One weight per dimension.
    pub values: Vec<f32>,
}

/// What a chunk says and where it comes from (stored as the point's payload).
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkMeta {
    /// The workspace that owns it.
    pub workspace: String,
    /// `file`, `thread`, `agent_result`, `folder`, …
    pub source_kind: String,
    /// The document it belongs to (a path, `thread #12`, …).
    pub source: String,
    /// The document's title.
    pub title: String,
    /// 0-based position within the document.
    pub position: u32,
    /// When the document was ingested (Unix seconds).
    pub time: i64,
    /// The document's content hash (the same on all its chunks).
    pub doc_hash: String,
    /// The chunk's text.
    pub text: String,
}

/// A chunk to store.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkRecord {
    /// A stable id (derived from workspace, source kind, source and position).
    pub id: u64,
    /// Payload.
    pub meta: ChunkMeta,
    /// The dense embedding, absent when no embedder is configured.
    pub dense: Option<Vec<f32>>,
    /// The BM25 term weights.
    pub sparse: SparseVector,
}

/// Where to search: always one workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The workspace.
    pub workspace: String,
    /// Only this kind of source, if given.
    pub source_kind: Option<String>,
}

/// A search result.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The chunk's id.
    pub id: u64,
    /// The store's score (cosine for dense, BM25 for sparse).
    pub score: f32,
    /// The chunk.
    pub meta: ChunkMeta,
}

/// A stored document: its identity and content hash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoredDocument {
    /// Kind of source.
    pub source_kind: String,
    /// The source.
    pub source: String,
    /// Content hash.
    pub doc_hash: String,
}

/// A hybrid query: the best `candidates` by dense and by BM25 search, fused by reciprocal rank
/// (`Σ 1 / (rrf_k + i)` over both lists, `i` the 0-based rank: Qdrant's definition).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HybridQuery<'a> {
    /// The query's embedding.
    pub dense: &'a [f32],
    /// The query's BM25 weights.
    pub sparse: &'a SparseVector,
    /// How many results each search contributes.
    pub candidates: usize,
    /// The fusion's rank constant (at least 1).
    pub rrf_k: u32,
    /// How many fused results to return.
    pub limit: usize,
}

/// A vector store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store failed; the message says how.
    #[error("vector store: {0}")]
    Backend(String),
}

/// Chunks with dense and sparse vectors, searched per workspace.
#[async_trait]
pub trait VectorStore: Send + Sync {
    /// Inserts or replaces chunks (by id).
    async fn upsert(&self, chunks: Vec<ChunkRecord>) -> Result<(), StoreError>;
    /// Deletes every chunk of one document.
    async fn delete_document(
        &self,
        workspace: &str,
        source_kind: &str,
        source: &str,
    ) -> Result<(), StoreError>;
    /// The documents stored in `scope`, each once.
    async fn documents(&self, scope: &Scope) -> Result<Vec<StoredDocument>, StoreError>;
    /// The chunks nearest to `vector` (cosine), best first.
    async fn search_dense(
        &self,
        scope: &Scope,
        vector: &[f32],
        limit: usize,
    ) -> Result<Vec<Hit>, StoreError>;
    /// The chunks with the highest BM25 score (query weights times IDF), best first.
    async fn search_sparse(
        &self,
        scope: &Scope,
        vector: &SparseVector,
        limit: usize,
    ) -> Result<Vec<Hit>, StoreError>;
    /// Dense and sparse search fused by reciprocal rank, best first. The default runs both
    /// searches and fuses here; stores that fuse themselves (Qdrant's prefetch) override it.
    async fn search_hybrid(
        &self,
        scope: &Scope,
        query: &HybridQuery<'_>,
    ) -> Result<Vec<Hit>, StoreError> {
        let dense = self
            .search_dense(scope, query.dense, query.candidates)
            .await?;
        let sparse = self
            .search_sparse(scope, query.sparse, query.candidates)
            .await?;
        let mut hits = crate::retrieve::fuse(
            crate::retrieve::Fusion::Rrf {
                k: query.rrf_k.max(1) as f32 - 1.0,
                dense: 1.0,
                sparse: 1.0,
            },
            dense,
            sparse,
        );
        hits.truncate(query.limit);
        Ok(hits)
    }
    /// How many chunks are stored (all workspaces).
    async fn count(&self) -> Result<usize, StoreError>;
    /// Whether the store answers now (a server's health check; an embedded store is there).
    async fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Makes what was written durable (after a batch of writes). Servers need nothing.
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Builds search indexes for what was added (in the background, after ingestion). Servers
    /// index by themselves.
    async fn optimize(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// An in-memory [`VectorStore`] (brute force), for tests and small runs.
#[derive(Debug, Default)]
pub struct MemoryStore {
    points: RwLock<BTreeMap<u64, ChunkRecord>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u64, ChunkRecord>> {
        self.points.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<u64, ChunkRecord>> {
        self.points.write().unwrap_or_else(|e| e.into_inner())
    }
}

fn in_scope(meta: &ChunkMeta, scope: &Scope) -> bool {
    meta.workspace == scope.workspace
        && scope
            .source_kind
            .as_ref()
            .is_none_or(|k| *k == meta.source_kind)
}

fn top(mut hits: Vec<Hit>, limit: usize) -> Vec<Hit> {
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    hits.truncate(limit);
    hits
}

#[async_trait]
impl VectorStore for MemoryStore {
    async fn upsert(&self, chunks: Vec<ChunkRecord>) -> Result<(), StoreError> {
        let mut points = self.write();
        for c in chunks {
            points.insert(c.id, c);
        }
        Ok(())
    }

    async fn delete_document(
        &self,
        workspace: &str,
        source_kind: &str,
        source: &str,
    ) -> Result<(), StoreError> {
        self.write().retain(|_, c| {
            !(c.meta.workspace == workspace
                && c.meta.source_kind == source_kind
                && c.meta.source == source)
        });
        Ok(())
    }

    async fn documents(&self, scope: &Scope) -> Result<Vec<StoredDocument>, StoreError> {
        let mut docs: Vec<StoredDocument> = self
            .read()
            .values()
            .filter(|c| in_scope(&c.meta, scope))
            .map(|c| StoredDocument {
                source_kind: c.meta.source_kind.clone(),
                source: c.meta.source.clone(),
                doc_hash: c.meta.doc_hash.clone(),
            })
            .collect();
        docs.sort();
        docs.dedup();
        Ok(docs)
    }

    async fn search_dense(
        &self,
        scope: &Scope,
        vector: &[f32],
        limit: usize,
    ) -> Result<Vec<Hit>, StoreError> {
        let hits = self
            .read()
            .values()
            .filter(|c| in_scope(&c.meta, scope))
            .filter_map(|c| {
                let d = c.dense.as_ref()?;
                Some(Hit {
                    id: c.id,
                    score: cosine(d, vector),
                    meta: c.meta.clone(),
                })
            })
            .collect();
        Ok(top(hits, limit))
    }

    async fn search_sparse(
        &self,
        scope: &Scope,
        vector: &SparseVector,
        limit: usize,
    ) -> Result<Vec<Hit>, StoreError> {
        let points = self.read();
        // IDF over the whole collection, as Qdrant's `idf` modifier does.
        let mut df: HashMap<u32, usize> = HashMap::new();
        for c in points.values() {
            for i in &c.sparse.indices {
                if vector.indices.binary_search(i).is_ok() {
                    *df.entry(*i).or_default() += 1;
                }
            }
        }
        let n = points.len();
        let hits = points
            .values()
            .filter(|c| in_scope(&c.meta, scope))
            .filter_map(|c| {
                let mut score = 0.0;
                let mut matched = false;
                for (i, w) in c.sparse.indices.iter().zip(&c.sparse.values) {
                    if let Ok(p) = vector.indices.binary_search(i) {
                        let idf = crate::sparse::idf(n, df.get(i).copied().unwrap_or(0));
                        score += w * vector.values[p] * idf;
                        matched = true;
                    }
                }
                matched.then(|| Hit {
                    id: c.id,
                    score,
                    meta: c.meta.clone(),
                })
            })
            .collect();
        Ok(top(hits, limit))
    }

    async fn count(&self) -> Result<usize, StoreError> {
        Ok(self.read().len())
    }
}

/// Cosine similarity.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot = crate::embed::dot(a, b);
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// One test body for every [`VectorStore`]: workspace isolation, source-kind filter, dense,
/// sparse and hybrid ranking, document listing and deletion. Public with the `test-support`
/// feature so the end-to-end tests run it against the Qdrant server adapter too.
#[cfg(any(test, feature = "test-support"))]
#[allow(clippy::expect_used, clippy::unwrap_used, missing_docs)]
pub mod conformance {
    use super::*;

    fn record(id: u64, workspace: &str, kind: &str, source: &str, text: &str) -> ChunkRecord {
        let bm25 = crate::sparse::Bm25::default();
        let dense = crate::embed::HashEmbedder::new(16).vector(text);
        ChunkRecord {
            id,
            meta: ChunkMeta {
                workspace: workspace.to_owned(),
                source_kind: kind.to_owned(),
                source: source.to_owned(),
                title: format!("title of {source}"),
                position: 0,
                time: 1_700_000_000,
                doc_hash: format!("hash-{source}"),
                text: text.to_owned(),
            },
            dense: Some(dense),
            sparse: bm25.document(text),
        }
    }

    /// Runs the shared checks against `store`, which must be empty and have 16 dimensions.
    pub async fn run(store: &dyn VectorStore) {
        let bm25 = crate::sparse::Bm25::default();
        let emb = crate::embed::HashEmbedder::new(16);
        store
            .upsert(vec![
                record(
                    1,
                    "lunavo",
                    "file",
                    "faq.md",
                    "Refunds take five days after the return arrives",
                ),
                record(
                    2,
                    "lunavo",
                    "thread",
                    "thread #3",
                    "Customer asks where the hoodie order is",
                ),
                record(
                    3,
                    "monarch",
                    "file",
                    "faq.md",
                    "Refunds at Monarch take thirty days",
                ),
                record(
                    4,
                    "lunavo",
                    "file",
                    "sizes.md",
                    "Hoodie sizes run small; order one size up",
                ),
            ])
            .await
            .expect("upsert");
        assert_eq!(store.count().await.expect("count"), 4);
        let lunavo = Scope {
            workspace: "lunavo".into(),
            source_kind: None,
        };
        let q = bm25.query("refunds");
        let hits = store.search_sparse(&lunavo, &q, 10).await.expect("sparse");
        assert_eq!(
            hits.iter().map(|h| h.id).collect::<Vec<_>>(),
            vec![1],
            "workspace filter"
        );
        assert_eq!(hits[0].meta.source, "faq.md");
        assert_eq!(hits[0].meta.title, "title of faq.md");
        let hoodie = store
            .search_sparse(&lunavo, &bm25.query("hoodie order"), 10)
            .await
            .expect("sparse");
        assert_eq!(hoodie.len(), 2);
        let files = Scope {
            workspace: "lunavo".into(),
            source_kind: Some("file".into()),
        };
        let only_files = store
            .search_sparse(&files, &bm25.query("hoodie order"), 10)
            .await
            .expect("sparse");
        assert_eq!(only_files.iter().map(|h| h.id).collect::<Vec<_>>(), vec![4]);
        let dense = store
            .search_dense(
                &lunavo,
                &emb.vector("Refunds take five days after the return arrives"),
                2,
            )
            .await
            .expect("dense");
        assert_eq!(dense[0].id, 1);
        assert!(
            (dense[0].score - 1.0).abs() < 1e-3,
            "cosine {}",
            dense[0].score
        );
        assert_eq!(dense.len(), 2);
        let refund_text = emb.vector("Refunds take five days after the return arrives");
        let hybrid_sparse = bm25.query("refunds");
        let hybrid = store
            .search_hybrid(
                &lunavo,
                &HybridQuery {
                    dense: &refund_text,
                    sparse: &hybrid_sparse,
                    candidates: 10,
                    rrf_k: 61,
                    limit: 10,
                },
            )
            .await
            .expect("hybrid");
        assert_eq!(hybrid[0].id, 1, "first in both lists: {hybrid:?}");
        assert!(
            hybrid.iter().all(|h| h.meta.workspace == "lunavo"),
            "{hybrid:?}"
        );
        assert_eq!(hybrid.len(), 3, "every lunavo chunk is a dense candidate");
        // Reciprocal rank: first in both lists scores 2 / 61.
        assert!(
            (hybrid[0].score - 2.0 / 61.0).abs() < 1e-4,
            "score {}",
            hybrid[0].score
        );
        let limited = store
            .search_hybrid(
                &files,
                &HybridQuery {
                    dense: &refund_text,
                    sparse: &hybrid_sparse,
                    candidates: 10,
                    rrf_k: 61,
                    limit: 1,
                },
            )
            .await
            .expect("hybrid");
        assert_eq!(limited.iter().map(|h| h.id).collect::<Vec<_>>(), vec![1]);
        let docs = store.documents(&files).await.expect("documents");
        assert_eq!(
            docs.iter().map(|d| d.source.as_str()).collect::<Vec<_>>(),
            vec!["faq.md", "sizes.md"]
        );
        store
            .delete_document("lunavo", "file", "faq.md")
            .await
            .expect("delete");
        assert!(
            store
                .search_sparse(&lunavo, &q, 10)
                .await
                .expect("sparse")
                .is_empty()
        );
        // Monarch's faq.md is untouched.
        let monarch = Scope {
            workspace: "monarch".into(),
            source_kind: None,
        };
        assert_eq!(
            store
                .search_sparse(&monarch, &q, 10)
                .await
                .expect("sparse")
                .len(),
            1
        );
        assert_eq!(store.count().await.expect("count"), 3);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_store_passes_the_shared_checks() {
        conformance::run(&MemoryStore::new()).await;
    }
}
