//! Ingestion: documents to chunks with vectors, kept in step with their sources by content
//! hash. Re-ingesting an unchanged document does nothing; a changed one has its chunks
//! replaced; [`Ingestor::sync`] also removes the documents of a scope that are gone.

use crate::chunk::{Chunk, Chunker};
use crate::embed::{EmbedError, Embedder};
use crate::sparse::Bm25;
use crate::store::{ChunkMeta, ChunkRecord, Scope, StoreError, VectorStore};
use krake_core::knowledge::{DocumentSet, KnowledgeBase, KnowledgeError, SyncCounts};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;

/// Documents embedded together during a sync.
const GROUP: usize = 64;

/// Passages of one learned file embedded and stored together (progress is shown per group,
/// and the embedded store is opened for each, so queries go on between them).
pub const LEARN_GROUP: usize = 32;

/// A document to ingest (core's type: the knowledge rules make them).
pub use krake_core::knowledge::Document;

/// What ingesting one document did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It was new; this many chunks were stored.
    Added(usize),
    /// It had changed; its chunks were replaced by this many.
    Replaced(usize),
    /// It had not changed: nothing was done.
    Unchanged,
}

/// Counts of a sync.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// New documents.
    pub added: usize,
    /// Changed documents.
    pub replaced: usize,
    /// Unchanged documents.
    pub unchanged: usize,
    /// Documents removed because their source is gone.
    pub removed: usize,
    /// Chunks written.
    pub chunks: usize,
}

/// An ingestion failure.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The embedder failed.
    #[error(transparent)]
    Embed(#[from] EmbedError),
}

/// Chunks, embeds and stores documents.
#[derive(Clone)]
pub struct Ingestor {
    store: Arc<dyn VectorStore>,
    embedder: Option<Arc<dyn Embedder>>,
    bm25: Arc<Bm25>,
    chunker: Chunker,
}

impl std::fmt::Debug for Ingestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingestor")
            .field(
                "embedder",
                &self.embedder.as_ref().map(|e| e.id().to_owned()),
            )
            .field("chunker", &self.chunker)
            .finish()
    }
}

/// A chunk's stable point id: the first 8 bytes of SHA-256 over its identity.
pub fn chunk_id(workspace: &str, source_kind: &str, source: &str, position: u32) -> u64 {
    let mut h = Sha256::new();
    for part in [workspace, source_kind, source] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    h.update(position.to_le_bytes());
    let d = h.finalize();
    let mut b = [0u8; 8];
    b.copy_from_slice(&d[..8]);
    // Qdrant ids are unsigned; keep them below 2^63 so every client can represent them.
    u64::from_le_bytes(b) >> 1
}

/// The text a chunk is indexed by: document title, heading trail, then the chunk.
pub fn indexed_text(title: &str, heading: &str, text: &str) -> String {
    let mut s = String::new();
    for part in [title, heading] {
        if !part.is_empty() && !text.starts_with(part) {
            s.push_str(part);
            s.push('\n');
        }
    }
    s.push_str(text);
    s
}

impl Ingestor {
    /// An ingestor writing to `store`; without an embedder chunks get only BM25 vectors.
    pub fn new(
        store: Arc<dyn VectorStore>,
        embedder: Option<Arc<dyn Embedder>>,
        bm25: Arc<Bm25>,
        chunker: Chunker,
    ) -> Self {
        Self {
            store,
            embedder,
            bm25,
            chunker,
        }
    }

    /// The content hash of a document as this ingestor would store it (the embedder's id is
    /// part of it, so a new model re-embeds everything; so is whether sentence vectors are
    /// cached, so documents ingested before that are ingested again once).
    pub fn hash(&self, doc: &Document) -> String {
        let mut h = Sha256::new();
        h.update(
            self.embedder
                .as_ref()
                .map_or("sparse", |e| e.id())
                .as_bytes(),
        );
        if self.embedder.is_some() {
            h.update(b"+sentences");
        }
        h.update([0]);
        h.update(doc.title.as_bytes());
        h.update([0]);
        h.update(doc.text.as_bytes());
        hex::encode(&h.finalize()[..16])
    }

    /// Ingests one document: nothing if unchanged, its chunks replaced if changed.
    pub async fn ingest(&self, doc: &Document) -> Result<Outcome, IngestError> {
        let scope = Scope {
            workspace: doc.workspace.clone(),
            source_kind: Some(doc.source_kind.clone()),
        };
        let existing = self
            .store
            .documents(&scope)
            .await?
            .into_iter()
            .find(|d| d.source == doc.source)
            .map(|d| d.doc_hash);
        self.ingest_known(doc, existing.as_deref()).await
    }

    async fn ingest_known(
        &self,
        doc: &Document,
        existing: Option<&str>,
    ) -> Result<Outcome, IngestError> {
        let hash = self.hash(doc);
        if existing == Some(hash.as_str()) {
            return Ok(Outcome::Unchanged);
        }
        let records = self.records(doc, &hash).await?;
        let n = records.len();
        if existing.is_some() {
            self.store
                .delete_document(&doc.workspace, &doc.source_kind, &doc.source)
                .await?;
        }
        self.store.upsert(records).await?;
        Ok(if existing.is_some() {
            Outcome::Replaced(n)
        } else {
            Outcome::Added(n)
        })
    }

    /// Chunks, vectors and payloads of a document (nothing is stored).
    pub async fn records(
        &self,
        doc: &Document,
        hash: &str,
    ) -> Result<Vec<ChunkRecord>, IngestError> {
        Ok(self
            .records_many(&[(doc, hash)])
            .await?
            .pop()
            .unwrap_or_default())
    }

    /// [`Self::records`] for several documents, embedded together.
    pub async fn records_many(
        &self,
        docs: &[(&Document, &str)],
    ) -> Result<Vec<Vec<ChunkRecord>>, IngestError> {
        let split: Vec<Vec<Chunk>> = docs
            .iter()
            .map(|(d, _)| self.chunker.split(&d.text))
            .collect();
        self.records_of(docs, split).await
    }

    /// The passages a text becomes, in order (a chunk with its heading trail, as stored).
    pub fn passages(&self, text: &str) -> Vec<String> {
        passages(&self.chunker, text)
    }

    /// Stores `chunks` of `doc` (split by this ingestor's chunker, hashed as `hash`), flushed;
    /// returns how many.
    pub async fn write_chunks(
        &self,
        doc: &Document,
        hash: &str,
        chunks: Vec<Chunk>,
    ) -> Result<usize, IngestError> {
        let n = chunks.len();
        let records = self
            .records_of(&[(doc, hash)], vec![chunks])
            .await?
            .pop()
            .unwrap_or_default();
        self.store.upsert(records).await?;
        self.store.flush().await?;
        Ok(n)
    }

    /// Removes a document's chunks, flushed.
    pub async fn remove(&self, doc: &Document) -> Result<(), IngestError> {
        self.store
            .delete_document(&doc.workspace, &doc.source_kind, &doc.source)
            .await?;
        self.store.flush().await?;
        Ok(())
    }

    /// The chunks of `doc` this ingestor stores.
    pub fn split(&self, doc: &Document) -> Vec<Chunk> {
        self.chunker.split(&doc.text)
    }

    async fn records_of(
        &self,
        docs: &[(&Document, &str)],
        split: Vec<Vec<Chunk>>,
    ) -> Result<Vec<Vec<ChunkRecord>>, IngestError> {
        let texts: Vec<String> = docs
            .iter()
            .zip(&split)
            .flat_map(|((d, _), chunks)| {
                chunks
                    .iter()
                    .map(|c| indexed_text(&d.title, &c.heading, &c.text))
            })
            .collect();
        let mut dense = match &self.embedder {
            Some(e) if !texts.is_empty() => Some(e.embed(&texts).await?.into_iter()),
            _ => None,
        };
        let mut texts = texts.into_iter();
        let mut out = Vec::with_capacity(docs.len());
        for ((doc, hash), chunks) in docs.iter().zip(split) {
            let mut recs = Vec::with_capacity(chunks.len());
            for c in chunks {
                let indexed = texts.next().unwrap_or_default();
                recs.push(ChunkRecord {
                    id: chunk_id(&doc.workspace, &doc.source_kind, &doc.source, c.position),
                    meta: ChunkMeta {
                        workspace: doc.workspace.clone(),
                        source_kind: doc.source_kind.clone(),
                        source: doc.source.clone(),
                        title: doc.title.clone(),
                        position: c.position,
                        time: doc.time,
                        doc_hash: (*hash).to_owned(),
                        text: chunk_text(c),
                    },
                    dense: dense.as_mut().and_then(|d| d.next()),
                    sparse: self.bm25.document(&indexed),
                });
            }
            out.push(recs);
        }
        // The sentences of every chunk, embedded now so that the embedding cache holds them
        // for `Fusion::ConvexSentences` at query time (the vectors themselves are not stored).
        if let Some(e) = &self.embedder {
            let sentences: Vec<String> = out
                .iter()
                .flatten()
                .flat_map(|r| crate::chunk::sentences(&r.meta.text))
                .collect();
            if !sentences.is_empty() {
                e.embed(&sentences).await?;
            }
        }
        Ok(out)
    }

    /// Makes the store hold exactly `docs` for one workspace and source kind, restricted to
    /// sources for which `owned` is true (so syncing one folder leaves others alone): new and
    /// changed documents are (re)ingested, documents no longer present are removed.
    /// `progress` is called after each document.
    pub async fn sync(
        &self,
        workspace: &str,
        source_kind: &str,
        docs: &[Document],
        owned: impl Fn(&str) -> bool,
        mut progress: impl FnMut(&Document, Outcome),
    ) -> Result<SyncReport, IngestError> {
        let scope = Scope {
            workspace: workspace.to_owned(),
            source_kind: Some(source_kind.to_owned()),
        };
        let stored: HashMap<String, String> = self
            .store
            .documents(&scope)
            .await?
            .into_iter()
            .map(|d| (d.source, d.doc_hash))
            .collect();
        let mut report = SyncReport::default();
        // Documents are embedded in groups so the embedder sees full batches.
        for group in docs.chunks(GROUP) {
            let mut todo = Vec::new();
            for doc in group {
                let hash = self.hash(doc);
                match stored.get(&doc.source) {
                    Some(h) if *h == hash => {
                        report.unchanged += 1;
                        progress(doc, Outcome::Unchanged);
                    }
                    existing => todo.push((doc, hash, existing.is_some())),
                }
            }
            let batch: Vec<(&Document, &str)> =
                todo.iter().map(|(d, h, _)| (*d, h.as_str())).collect();
            let records = self.records_many(&batch).await?;
            for ((doc, _, existed), recs) in todo.iter().zip(records) {
                let n = recs.len();
                if *existed {
                    self.store
                        .delete_document(&doc.workspace, &doc.source_kind, &doc.source)
                        .await?;
                }
                self.store.upsert(recs).await?;
                report.chunks += n;
                let outcome = if *existed {
                    report.replaced += 1;
                    Outcome::Replaced(n)
                } else {
                    report.added += 1;
                    Outcome::Added(n)
                };
                progress(doc, outcome);
            }
        }
        for source in stored.keys() {
            if owned(source) && !docs.iter().any(|d| &d.source == source) {
                self.store
                    .delete_document(workspace, source_kind, source)
                    .await?;
                report.removed += 1;
            }
        }
        Ok(report)
    }
}

/// The passages `chunker` makes of a text, in order, as stored (what `source §N` cites).
pub fn passages(chunker: &Chunker, text: &str) -> Vec<String> {
    chunker.split(text).into_iter().map(chunk_text).collect()
}

/// A stored chunk's text: its heading trail on the first line, then the text.
fn chunk_text(c: Chunk) -> String {
    if c.heading.is_empty() {
        c.text
    } else {
        format!("{}\n{}", c.heading, c.text)
    }
}

/// Learns one whole document in groups of [`LEARN_GROUP`] passages through the ingestor
/// `open` gives for each step (the embedded store is opened per step and released between
/// them): what was stored under its source goes first (a part left by a crashed attempt
/// too), then each group is written and `progress(done, total)` called. Chunk ids are fixed
/// by position, so an attempt started again writes the same chunks once.
pub async fn learn_with<F, Fut>(
    open: F,
    doc: &Document,
    progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> Result<usize, KnowledgeError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Ingestor, KnowledgeError>>,
{
    let failed = |e: IngestError| KnowledgeError::Unavailable(e.to_string());
    let first = open().await?;
    let chunks = first.split(doc);
    let hash = first.hash(doc);
    first.remove(doc).await.map_err(failed)?;
    drop(first);
    let total = chunks.len();
    progress(0, total);
    let mut done = 0;
    for group in chunks.chunks(LEARN_GROUP) {
        let ingestor = open().await?;
        done += ingestor
            .write_chunks(doc, &hash, group.to_vec())
            .await
            .map_err(failed)?;
        progress(done, total);
    }
    Ok(total)
}

/// The ingestor fills core's [`KnowledgeBase`] port; each call ends with a flush, so what it
/// wrote is durable when it returns.
#[async_trait::async_trait]
impl KnowledgeBase for Ingestor {
    async fn ingest(&self, docs: &[Document]) -> Result<usize, KnowledgeError> {
        let failed = |e: IngestError| KnowledgeError::Ingest(e.to_string());
        let mut written = 0;
        for doc in docs {
            if Ingestor::ingest(self, doc).await.map_err(failed)? != Outcome::Unchanged {
                written += 1;
            }
        }
        self.store
            .flush()
            .await
            .map_err(|e| failed(IngestError::Store(e)))?;
        Ok(written)
    }

    async fn sync(&self, sets: &[DocumentSet]) -> Result<Vec<SyncCounts>, KnowledgeError> {
        let failed = |e: IngestError| KnowledgeError::Ingest(e.to_string());
        let mut out = Vec::with_capacity(sets.len());
        for set in sets {
            let r = Ingestor::sync(
                self,
                &set.workspace,
                &set.source_kind,
                &set.documents,
                |_| true,
                |_, _| {},
            )
            .await
            .map_err(failed)?;
            out.push(SyncCounts {
                added: r.added,
                replaced: r.replaced,
                unchanged: r.unchanged,
                removed: r.removed,
            });
        }
        self.store
            .flush()
            .await
            .map_err(|e| failed(IngestError::Store(e)))?;
        Ok(out)
    }

    fn read_file(
        &self,
        name: &str,
        bytes: &[u8],
    ) -> Result<krake_core::knowledge::FileText, String> {
        crate::extract::read_bytes(name, bytes)
    }

    async fn learn(
        &self,
        doc: &Document,
        progress: &(dyn Fn(usize, usize) + Send + Sync),
    ) -> Result<usize, KnowledgeError> {
        learn_with(|| std::future::ready(Ok(self.clone())), doc, progress).await
    }

    async fn forget(
        &self,
        workspace: &str,
        source_kind: &str,
        source: &str,
    ) -> Result<(), KnowledgeError> {
        let failed = |e: StoreError| KnowledgeError::Unavailable(e.to_string());
        self.store
            .delete_document(workspace, source_kind, source)
            .await
            .map_err(failed)?;
        self.store.flush().await.map_err(failed)
    }

    fn passages(&self, text: &str) -> Vec<String> {
        Ingestor::passages(self, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::HashEmbedder;
    use crate::store::MemoryStore;

    fn doc(source: &str, text: &str) -> Document {
        Document {
            workspace: "lunavo".into(),
            source_kind: "file".into(),
            source: source.into(),
            title: source.into(),
            text: text.into(),
            time: 0,
        }
    }

    fn ingestor(store: Arc<MemoryStore>) -> Ingestor {
        Ingestor::new(
            store,
            Some(Arc::new(HashEmbedder::new(8))),
            Arc::new(Bm25::default()),
            Chunker::default(),
        )
    }

    #[tokio::test]
    async fn unchanged_does_nothing_changed_replaces_deleted_disappears() {
        let store = Arc::new(MemoryStore::new());
        let ing = ingestor(store.clone());
        let a = doc(
            "a.md",
            "# A\n\nHoodies ship daily.\n\n# B\n\nReturns within 30 days.",
        );
        let b = doc("b.md", "Sizes run small.");
        let r = ing
            .sync(
                "lunavo",
                "file",
                &[a.clone(), b.clone()],
                |_| true,
                |_, _| {},
            )
            .await
            .expect("sync");
        assert_eq!((r.added, r.chunks), (2, 3));
        assert_eq!(store.count().await.expect("count"), 3);
        assert_eq!(ing.ingest(&a).await.expect("again"), Outcome::Unchanged);

        let a2 = doc("a.md", "Hoodies ship weekly now.");
        let r = ing
            .sync(
                "lunavo",
                "file",
                std::slice::from_ref(&a2),
                |_| true,
                |_, _| {},
            )
            .await
            .expect("sync");
        assert_eq!((r.replaced, r.removed, r.unchanged), (1, 1, 0));
        let texts: Vec<String> = store
            .search_sparse(
                &Scope {
                    workspace: "lunavo".into(),
                    source_kind: None,
                },
                &Bm25::default().query("hoodies ship returns sizes"),
                10,
            )
            .await
            .expect("search")
            .into_iter()
            .map(|h| h.meta.text)
            .collect();
        assert_eq!(texts, vec!["Hoodies ship weekly now."]);
    }

    #[tokio::test]
    async fn sync_leaves_sources_it_does_not_own() {
        let store = Arc::new(MemoryStore::new());
        let ing = ingestor(store.clone());
        ing.ingest(&doc("other/x.md", "Kept."))
            .await
            .expect("ingest");
        let r = ing
            .sync(
                "lunavo",
                "file",
                &[doc("docs/y.md", "New.")],
                |s| s.starts_with("docs/"),
                |_, _| {},
            )
            .await
            .expect("sync");
        assert_eq!((r.added, r.removed), (1, 0));
        assert_eq!(store.count().await.expect("count"), 2);
    }

    #[tokio::test]
    async fn as_cores_knowledge_base_it_counts_writes_and_syncs_whole_sets() {
        let store = Arc::new(MemoryStore::new());
        let kb: &dyn KnowledgeBase = &ingestor(store.clone());
        let (a, b) = (
            doc("a.md", "Hoodies ship daily."),
            doc("b.md", "Sizes run small."),
        );
        assert_eq!(kb.ingest(&[a.clone(), b.clone()]).await.expect("ingest"), 2);
        assert_eq!(kb.ingest(std::slice::from_ref(&a)).await.expect("again"), 0);
        let counts = kb
            .sync(&[DocumentSet {
                workspace: "lunavo".into(),
                source_kind: "file".into(),
                documents: vec![a, doc("c.md", "Returns within 30 days.")],
            }])
            .await
            .expect("sync");
        assert_eq!(
            counts,
            vec![SyncCounts {
                added: 1,
                replaced: 0,
                unchanged: 1,
                removed: 1
            }]
        );
        assert_eq!(store.count().await.expect("count"), 2);
    }

    #[test]
    fn chunk_ids_are_stable_and_distinct() {
        let a = chunk_id("lunavo", "file", "a.md", 0);
        assert_eq!(a, chunk_id("lunavo", "file", "a.md", 0));
        assert_ne!(a, chunk_id("monarch", "file", "a.md", 0));
        assert_ne!(a, chunk_id("lunavo", "file", "a.md", 1));
        assert!(a < (1 << 63));
    }
}
