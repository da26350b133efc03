//! Hybrid retrieval: dense and BM25 searches within the workspace, fused; then the context for
//! a prompt: duplicates pruned, lowest scores dropped to fit a token budget, each passage with
//! its citation. [`HybridRetriever`] fills core's [`Retriever`] port.

use crate::chunk::estimate_tokens;
use crate::embed::Embedder;
use crate::sparse::Bm25;
use crate::store::{Hit, HybridQuery, Scope, StoreError, VectorStore};
use async_trait::async_trait;
use krake_core::knowledge::{KnowledgeQuery, Passage, RetrieveError, Retriever};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Which searches run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// BM25 only.
    Sparse,
    /// Embeddings only.
    Dense,
    /// Both, fused.
    Hybrid,
}

/// How two ranked lists become one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fusion {
    /// Weighted reciprocal-rank fusion: `Σ weight / (k + rank)`.
    Rrf {
        /// The rank constant (60 in the original paper).
        k: f32,
        /// Weight of the dense list.
        dense: f32,
        /// Weight of the sparse list.
        sparse: f32,
    },
    /// Convex combination of min-max normalised scores: `alpha·dense + (1-alpha)·sparse`.
    Convex {
        /// Weight of the dense scores, 0 to 1.
        alpha: f32,
    },
    /// Reciprocal-rank fusion of documents rather than chunks: each list ranks sources by their
    /// best chunk, the sources are fused, and a chunk scores its source's fused score (ties
    /// within a source broken by the chunk's own fused score). A document whose one chunk
    /// matches the words and another the meaning is rewarded for both.
    SourceRrf {
        /// The rank constant.
        k: f32,
        /// Weight of the dense list.
        dense: f32,
        /// Weight of the sparse list.
        sparse: f32,
    },
    /// [`Fusion::Convex`] of each source's best normalised score per list, chunks ranked
    /// within their source as in [`Fusion::SourceRrf`].
    SourceConvex {
        /// Weight of the dense scores, 0 to 1.
        alpha: f32,
    },
    /// [`Fusion::Convex`], then each candidate chunk gains `sentences` times its best
    /// sentence's cosine similarity to the query (min-max normalised over the candidates) and
    /// the candidates are ranked again. A chunk embedding blurs a passage's sentences
    /// together; a claim is usually matched by one of them. The sentences' vectors come from
    /// the embedding cache, filled when the chunks were ingested.
    ConvexSentences {
        /// Weight of the dense scores, 0 to 1.
        alpha: f32,
        /// Weight of the best-sentence similarity.
        sentences: f32,
    },
}

impl std::fmt::Display for Fusion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fusion::Rrf { k, dense, sparse } => write!(f, "rrf k={k} d={dense} s={sparse}"),
            Fusion::Convex { alpha } => write!(f, "convex a={alpha}"),
            Fusion::SourceRrf { k, dense, sparse } => {
                write!(f, "source rrf k={k} d={dense} s={sparse}")
            }
            Fusion::SourceConvex { alpha } => write!(f, "source convex a={alpha}"),
            Fusion::ConvexSentences { alpha, sentences } => {
                write!(f, "convex a={alpha} + sentences {sentences}")
            }
        }
    }
}

impl Fusion {
    /// Plain reciprocal-rank fusion, `k = 60`, equal weights (what a Qdrant server fuses itself).
    pub const RRF: Fusion = Fusion::Rrf {
        k: 60.0,
        dense: 1.0,
        sparse: 1.0,
    };
}

impl Default for Fusion {
    /// Convex combination (0.4 dense, 0.6 BM25) plus 0.4 times each chunk's best sentence.
    /// Chosen on SciFact's 809 training queries (`krake eval rag --split train --sweep`):
    /// nDCG@10 0.7455 against 0.7432 for the convex combination alone, 0.7255 for RRF k = 60 and
    /// 0.7293 for the best RRF; see docs/benchmarks.md (Knowledge).
    fn default() -> Self {
        Fusion::ConvexSentences {
            alpha: 0.4,
            sentences: 0.4,
        }
    }
}

/// Fuses a dense and a sparse result list (each best first) into one, best first.
pub fn fuse(fusion: Fusion, dense: Vec<Hit>, sparse: Vec<Hit>) -> Vec<Hit> {
    match fusion {
        Fusion::SourceRrf {
            k,
            dense: wd,
            sparse: ws,
        } => {
            let chunks = fuse(
                Fusion::Rrf {
                    k,
                    dense: wd,
                    sparse: ws,
                },
                dense.clone(),
                sparse.clone(),
            );
            let mut by_source: HashMap<String, f32> = HashMap::new();
            for (hits, w) in [(&dense, wd), (&sparse, ws)] {
                let mut rank = 0usize;
                let mut seen = std::collections::HashSet::new();
                for h in hits {
                    if seen.insert(h.meta.source.as_str()) {
                        *by_source.entry(h.meta.source.clone()).or_default() +=
                            w / (k + rank as f32 + 1.0);
                        rank += 1;
                    }
                }
            }
            return by_source_order(chunks, &by_source);
        }
        Fusion::SourceConvex { alpha } => {
            let chunks = fuse(Fusion::Convex { alpha }, dense.clone(), sparse.clone());
            let mut by_source: HashMap<String, f32> = HashMap::new();
            for (hits, w) in [(&dense, alpha), (&sparse, 1.0 - alpha)] {
                let (min, span) = score_range(hits);
                let mut best: HashMap<&str, f32> = HashMap::new();
                for h in hits {
                    let s = (h.score - min) / span;
                    let e = best.entry(h.meta.source.as_str()).or_insert(s);
                    *e = e.max(s);
                }
                for (source, s) in best {
                    *by_source.entry(source.to_owned()).or_default() += w * s;
                }
            }
            return by_source_order(chunks, &by_source);
        }
        _ => {}
    }
    let mut fused: HashMap<u64, Hit> = HashMap::new();
    let mut add = |hits: Vec<Hit>, score: &dyn Fn(usize, f32) -> f32| {
        for (rank, mut h) in hits.into_iter().enumerate() {
            let s = score(rank, h.score);
            fused
                .entry(h.id)
                .and_modify(|e| e.score += s)
                .or_insert_with(|| {
                    h.score = s;
                    h
                });
        }
    };
    match fusion {
        Fusion::Rrf {
            k,
            dense: wd,
            sparse: ws,
        } => {
            add(dense, &|rank, _| wd / (k + rank as f32 + 1.0));
            add(sparse, &|rank, _| ws / (k + rank as f32 + 1.0));
        }
        Fusion::Convex { alpha } => {
            let (dmin, dspan) = score_range(&dense);
            let (smin, sspan) = score_range(&sparse);
            add(dense, &|_, s| alpha * (s - dmin) / dspan);
            add(sparse, &|_, s| (1.0 - alpha) * (s - smin) / sspan);
        }
        Fusion::ConvexSentences { alpha, .. } => {
            return fuse(Fusion::Convex { alpha }, dense, sparse);
        }
        Fusion::SourceRrf { .. } | Fusion::SourceConvex { .. } => {}
    }
    let mut hits: Vec<Hit> = fused.into_values().collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    hits
}

/// The most sentence vectors a query may embed itself (sentences of chunks ingested before
/// their sentences were cached); with more missing, the fused order is kept as it is.
pub const MAX_SENTENCES_TO_EMBED: usize = 32;

/// [`Fusion::ConvexSentences`]'s second step: adds `weight` times each hit's best sentence
/// similarity to `query` (min-max normalised over `hits`) to its score and sorts again. The
/// vectors come from the embedder's cache; when more than [`MAX_SENTENCES_TO_EMBED`] are
/// missing, or embedding fails, `hits` come back unchanged (and the reason is logged).
pub async fn rerank_by_sentences(
    embedder: &dyn Embedder,
    query: &[f32],
    mut hits: Vec<Hit>,
    weight: f32,
) -> Vec<Hit> {
    // Every candidate's sentences in one list, with where each candidate's start.
    let mut flat: Vec<String> = Vec::new();
    let mut starts = Vec::with_capacity(hits.len() + 1);
    for h in &hits {
        starts.push(flat.len());
        flat.extend(crate::chunk::sentences(&h.meta.text));
    }
    starts.push(flat.len());
    let mut sims = embedder.cached_similarities(&flat, query);
    let missing: Vec<usize> = (0..flat.len()).filter(|&i| sims[i].is_none()).collect();
    if missing.len() > MAX_SENTENCES_TO_EMBED {
        tracing::debug!(
            missing = missing.len(),
            "sentence vectors not cached (ingest again to cache them); keeping the fused order"
        );
        return hits;
    }
    if !missing.is_empty() {
        let todo: Vec<String> = missing.iter().map(|&i| flat[i].clone()).collect();
        match embedder.embed(&todo).await {
            Ok(vs) if vs.len() == todo.len() => {
                for (&i, v) in missing.iter().zip(vs) {
                    sims[i] = Some(crate::embed::dot(&v, query));
                }
            }
            Ok(_) => return hits,
            Err(e) => {
                tracing::warn!(error = %e, "cannot embed sentences; keeping the fused order");
                return hits;
            }
        }
    }
    let best: Vec<Option<f32>> = starts
        .windows(2)
        .map(|w| sims[w[0]..w[1]].iter().flatten().copied().reduce(f32::max))
        .collect();
    let (min, span) = value_range(best.iter().flatten().copied());
    for (h, b) in hits.iter_mut().zip(best) {
        if let Some(b) = b {
            h.score += weight * (b - min) / span;
        }
    }
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
    hits
}

/// The lowest score of a list and its span (never zero), for min-max normalising.
fn score_range(hits: &[Hit]) -> (f32, f32) {
    value_range(hits.iter().map(|h| h.score))
}

/// The lowest of some values and their span (never zero), for min-max normalising.
fn value_range(values: impl Iterator<Item = f32> + Clone) -> (f32, f32) {
    let max = values.clone().fold(f32::MIN, f32::max);
    let min = values.fold(f32::MAX, f32::min);
    (min, (max - min).max(1e-6))
}

/// Orders fused chunks by their source's score, then by their own; a chunk's score becomes its
/// source's.
fn by_source_order(chunks: Vec<Hit>, by_source: &HashMap<String, f32>) -> Vec<Hit> {
    let mut ranked: Vec<(f32, usize, Hit)> = chunks
        .into_iter()
        .enumerate()
        .map(|(own, h)| {
            let s = by_source.get(&h.meta.source).copied().unwrap_or(0.0);
            (s, own, h)
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(a.2.meta.source.cmp(&b.2.meta.source))
            .then(a.1.cmp(&b.1))
    });
    ranked
        .into_iter()
        .map(|(s, _, mut h)| {
            h.score = s;
            h
        })
        .collect()
}

/// How many chunks a hybrid search takes from each list before fusing them. Deeper lists
/// give the min-max normalisation and the fusion more to work with: on SciFact's training
/// queries the default fusion's nDCG@10 rises from 0.7331 (20) through 0.7339 (50), 0.7372 (100)
/// and 0.7396 (150) to 0.7432 (300), for a few milliseconds more per query.
pub const DEFAULT_CANDIDATES: usize = 300;

/// Searches a [`VectorStore`] with BM25 and, when an embedder is configured, embeddings.
#[derive(Clone)]
pub struct HybridRetriever {
    store: Arc<dyn VectorStore>,
    embedder: Option<Arc<dyn Embedder>>,
    bm25: Arc<Bm25>,
    fusion: Fusion,
    /// Candidates fetched from each list before fusion.
    candidates: usize,
}

impl std::fmt::Debug for HybridRetriever {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HybridRetriever")
            .field(
                "embedder",
                &self.embedder.as_ref().map(|e| e.id().to_owned()),
            )
            .field("fusion", &self.fusion)
            .finish()
    }
}

impl HybridRetriever {
    /// A retriever; without an embedder it searches BM25 only.
    pub fn new(
        store: Arc<dyn VectorStore>,
        embedder: Option<Arc<dyn Embedder>>,
        bm25: Arc<Bm25>,
    ) -> Self {
        Self {
            store,
            embedder,
            bm25,
            fusion: Fusion::default(),
            candidates: DEFAULT_CANDIDATES,
        }
    }

    /// Uses this fusion.
    pub fn with_fusion(mut self, fusion: Fusion) -> Self {
        self.fusion = fusion;
        self
    }

    /// Fetches this many candidates from each list before fusing (at least `limit`).
    pub fn with_candidates(mut self, candidates: usize) -> Self {
        self.candidates = candidates.max(1);
        self
    }

    /// The store's rank constant when the fusion is unweighted RRF with a whole constant (which
    /// the store can run itself): ours adds 1 to the 0-based rank, Qdrant's does not.
    fn store_fusion(&self) -> Option<u32> {
        match self.fusion {
            Fusion::Rrf { k, dense, sparse }
                if dense == 1.0 && sparse == 1.0 && k >= 0.0 && k.fract() == 0.0 =>
            {
                Some(k as u32 + 1)
            }
            _ => None,
        }
    }

    /// Whether dense search is available.
    pub fn has_embedder(&self) -> bool {
        self.embedder.is_some()
    }

    /// The query's dense vector, when an embedder is configured.
    pub async fn embed_query(&self, text: &str) -> Result<Option<Vec<f32>>, RetrieveError> {
        let Some(e) = &self.embedder else {
            return Ok(None);
        };
        let mut v = e
            .embed(&[text.to_owned()])
            .await
            .map_err(|e| RetrieveError::Unavailable(e.to_string()))?;
        Ok(v.pop())
    }

    /// The best chunks for `text` in `scope`, best first (dense falls back to BM25 when there
    /// is no embedder). `dense` is the query's embedding, if already computed.
    pub async fn search_with(
        &self,
        scope: &Scope,
        text: &str,
        dense: Option<&[f32]>,
        limit: usize,
        mode: Mode,
    ) -> Result<Vec<Hit>, StoreError> {
        let use_dense = dense.is_some() && mode != Mode::Sparse;
        let use_sparse = mode != Mode::Dense || !use_dense;
        // Fusion needs each list deeper than what is kept; one list alone does not.
        let n = if use_dense && use_sparse {
            self.candidates.max(limit)
        } else {
            limit
        };
        if let (Some(v), Mode::Hybrid, Some(rrf_k)) = (dense, mode, self.store_fusion()) {
            // Plain RRF is what Qdrant fuses itself (prefetch), in one round trip.
            let sparse = self.bm25.query(text);
            return self
                .store
                .search_hybrid(
                    scope,
                    &HybridQuery {
                        dense: v,
                        sparse: &sparse,
                        candidates: n,
                        rrf_k,
                        limit,
                    },
                )
                .await;
        }
        let d = match dense {
            Some(v) if use_dense => self.store.search_dense(scope, v, n).await?,
            _ => Vec::new(),
        };
        let s = if use_sparse {
            self.store
                .search_sparse(scope, &self.bm25.query(text), n)
                .await?
        } else {
            Vec::new()
        };
        let mut hits = match (use_dense, use_sparse) {
            (true, true) => fuse(self.fusion, d, s),
            (true, false) => d,
            _ => s,
        };
        if let (Fusion::ConvexSentences { sentences, .. }, Some(q), Some(e), true) =
            (self.fusion, dense, &self.embedder, use_dense && use_sparse)
        {
            hits = rerank_by_sentences(e.as_ref(), q, hits, sentences).await;
        }
        hits.truncate(limit);
        Ok(hits)
    }

    /// [`Self::search_with`], embedding the query first.
    pub async fn search(
        &self,
        scope: &Scope,
        text: &str,
        limit: usize,
        mode: Mode,
    ) -> Result<Vec<Hit>, RetrieveError> {
        let dense = if mode == Mode::Sparse {
            None
        } else {
            self.embed_query(text).await?
        };
        self.search_with(scope, text, dense.as_deref(), limit, mode)
            .await
            .map_err(|e| RetrieveError::Unavailable(e.to_string()))
    }
}

/// Whether two passages say nearly the same (word-set Jaccard of 0.8 or more).
fn near_duplicate(a: &str, b: &str) -> bool {
    let words = |s: &str| -> BTreeSet<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let (wa, wb) = (words(a), words(b));
    if wa.is_empty() || wb.is_empty() {
        return wa == wb;
    }
    let inter = wa.intersection(&wb).count() as f32;
    let union = wa.union(&wb).count() as f32;
    inter / union >= 0.8
}

/// The context for a prompt: best first, near-duplicates of a better passage dropped, then
/// passages added while they fit `token_budget` (a passage that does not fit is skipped, so
/// the lowest-scoring go first), at most `limit`.
pub fn budget(hits: Vec<Hit>, limit: usize, token_budget: usize) -> Vec<Passage> {
    let mut kept: Vec<Hit> = Vec::new();
    let mut used = 0;
    for h in hits {
        if kept.len() >= limit {
            break;
        }
        if kept
            .iter()
            .any(|k| near_duplicate(&k.meta.text, &h.meta.text))
        {
            continue;
        }
        let t = estimate_tokens(&h.meta.text);
        if used + t > token_budget {
            continue;
        }
        used += t;
        kept.push(h);
    }
    kept.into_iter()
        .map(|h| Passage {
            text: h.meta.text,
            source_kind: h.meta.source_kind,
            source: h.meta.source,
            title: h.meta.title,
            position: h.meta.position,
            score: h.score,
        })
        .collect()
}

#[async_trait]
impl Retriever for HybridRetriever {
    async fn retrieve(&self, query: &KnowledgeQuery) -> Result<Vec<Passage>, RetrieveError> {
        let scope = Scope {
            workspace: query.workspace.as_str().to_owned(),
            source_kind: query.source_kind.clone(),
        };
        // Fetch more than asked: duplicates and the budget remove some.
        let hits = self
            .search(
                &scope,
                &query.text,
                query.limit.saturating_mul(3).max(10),
                Mode::Hybrid,
            )
            .await?;
        Ok(budget(hits, query.limit, query.token_budget))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::Chunker;
    use crate::embed::HashEmbedder;
    use crate::ingest::{Document, Ingestor};
    use crate::store::{ChunkMeta, MemoryStore};
    use krake_core::workspace::WorkspaceSlug;

    fn hit(id: u64, score: f32, text: &str) -> Hit {
        Hit {
            id,
            score,
            meta: ChunkMeta {
                workspace: "lunavo".into(),
                source_kind: "file".into(),
                source: format!("doc{id}.md"),
                title: String::new(),
                position: 0,
                time: 0,
                doc_hash: String::new(),
                text: text.into(),
            },
        }
    }

    #[test]
    fn rrf_rewards_agreement() {
        let dense = vec![hit(2, 0.9, "b"), hit(1, 0.8, "a"), hit(3, 0.7, "c")];
        let sparse = vec![hit(3, 9.0, "c"), hit(2, 8.0, "b"), hit(4, 1.0, "d")];
        let fused = fuse(Fusion::RRF, dense.clone(), sparse.clone());
        assert_eq!(fused.iter().map(|h| h.id).collect::<Vec<_>>(), [2, 3, 1, 4]);
        let weighted = fuse(
            Fusion::Rrf {
                k: 1.0,
                dense: 0.0,
                sparse: 1.0,
            },
            dense.clone(),
            sparse.clone(),
        );
        assert_eq!(weighted[0].id, 3);
        let convex = fuse(Fusion::Convex { alpha: 1.0 }, dense, sparse);
        assert_eq!(convex[0].id, 2);
    }

    fn in_doc(id: u64, score: f32, source: &str) -> Hit {
        let mut h = hit(id, score, "text");
        h.meta.source = source.into();
        h
    }

    #[test]
    fn source_fusion_rewards_a_document_matched_by_different_chunks() {
        // Document "x" is second in both lists, through different chunks (1 and 2); chunk-level
        // RRF never sees agreement, document-level RRF does.
        let dense = vec![
            in_doc(10, 0.9, "y"),
            in_doc(1, 0.8, "x"),
            in_doc(30, 0.1, "z"),
        ];
        let sparse = vec![
            in_doc(20, 9.0, "w"),
            in_doc(2, 8.0, "x"),
            in_doc(31, 0.1, "z"),
        ];
        let chunk_level = fuse(Fusion::RRF, dense.clone(), sparse.clone());
        assert_ne!(chunk_level[0].meta.source, "x");
        let by_source = fuse(
            Fusion::SourceRrf {
                k: 60.0,
                dense: 1.0,
                sparse: 1.0,
            },
            dense.clone(),
            sparse.clone(),
        );
        let order: Vec<&str> = by_source.iter().map(|h| h.meta.source.as_str()).collect();
        assert_eq!(order[..2], ["x", "x"], "both chunks of x lead: {order:?}");
        assert_eq!(by_source.len(), 6, "no chunk is dropped");
        let convex = fuse(Fusion::SourceConvex { alpha: 0.5 }, dense, sparse);
        assert_eq!(convex[0].meta.source, "x");
    }

    #[test]
    fn budget_prunes_duplicates_then_lowest_scores() {
        let long = "word ".repeat(60);
        let hits = vec![
            hit(1, 3.0, "Refunds take five days."),
            hit(2, 2.9, "Refunds take five days!"),
            hit(3, 2.0, &long),
            hit(4, 1.0, "Sizes run small."),
        ];
        let passages = budget(hits.clone(), 10, 30);
        let ids: Vec<&str> = passages.iter().map(|p| p.source.as_str()).collect();
        assert_eq!(
            ids,
            ["doc1.md", "doc4.md"],
            "duplicate and the too-long one pruned"
        );
        assert_eq!(budget(hits, 1, 1000).len(), 1);
    }

    #[tokio::test]
    async fn retrieval_stays_in_its_workspace_and_cites_sources() {
        let store = Arc::new(MemoryStore::new());
        let embedder: Arc<dyn Embedder> = Arc::new(HashEmbedder::new(32));
        let bm25 = Arc::new(Bm25::default());
        let ing = Ingestor::new(
            store.clone(),
            Some(embedder.clone()),
            bm25.clone(),
            Chunker::default(),
        );
        for (ws, text) in [
            (
                "lunavo",
                "# Returns\n\nLunavo refunds hoodies within 30 days.",
            ),
            (
                "monarch",
                "# Returns\n\nMonarch refunds hoodies within 90 days.",
            ),
        ] {
            ing.ingest(&Document {
                workspace: ws.into(),
                source_kind: "file".into(),
                source: "policy.md".into(),
                title: "Policy".into(),
                text: text.into(),
                time: 0,
            })
            .await
            .expect("ingest");
        }
        let r = HybridRetriever::new(store, Some(embedder), bm25);
        let q = KnowledgeQuery {
            workspace: WorkspaceSlug::parse("lunavo").expect("slug"),
            text: "how long do hoodie refunds take".into(),
            limit: 5,
            token_budget: 500,
            source_kind: None,
        };
        let passages = r.retrieve(&q).await.expect("retrieve");
        assert_eq!(passages.len(), 1);
        assert!(passages[0].text.contains("30 days"), "{passages:?}");
        assert_eq!(passages[0].citation(), "policy.md §1");
        assert_eq!(passages[0].title, "Policy");
        let threads = KnowledgeQuery {
            source_kind: Some("thread".into()),
            ..q
        };
        assert!(r.retrieve(&threads).await.expect("retrieve").is_empty());
    }

    /// Two chunks: the first fused higher, the second holding a sentence that is the query.
    fn blurred_and_sharp() -> Vec<Hit> {
        vec![
            hit(
                1,
                1.0,
                "Penguins live in cold places. Cats like sun and warm windows.",
            ),
            hit(
                2,
                0.9,
                "Shipping labels print at noon. The invoice totals match the ledger.",
            ),
        ]
    }

    #[tokio::test]
    async fn a_chunk_with_a_sentence_like_the_query_rises() {
        let embedder = HashEmbedder::new(64);
        let q = embedder
            .embed(&["Shipping labels print at noon.".to_owned()])
            .await
            .expect("embed")
            .remove(0);
        let ids = |hits: &[Hit]| hits.iter().map(|h| h.id).collect::<Vec<_>>();
        let kept = rerank_by_sentences(&embedder, &q, blurred_and_sharp(), 0.0).await;
        assert_eq!(ids(&kept), [1, 2]);
        let reranked = rerank_by_sentences(&embedder, &q, blurred_and_sharp(), 0.4).await;
        assert_eq!(ids(&reranked), [2, 1]);
        // The best sentence is normalised to 1 over the candidates, the worst to 0.
        assert!((reranked[0].score - 1.3).abs() < 1e-4, "{reranked:?}");
        assert!((reranked[1].score - 1.0).abs() < 1e-4, "{reranked:?}");
    }

    #[tokio::test]
    async fn without_cached_sentences_a_query_keeps_the_fused_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cached =
            crate::cache::CachedEmbedder::open(Arc::new(HashEmbedder::new(64)), dir.path())
                .expect("cache");
        let q = cached
            .embed(&["Shipping labels print at noon.".to_owned()])
            .await
            .expect("embed")
            .remove(0);
        // More uncached sentences than a query embeds itself: the fused order stands.
        let mut many: Vec<Hit> = (0..MAX_SENTENCES_TO_EMBED as u64 + 1)
            .map(|i| hit(10 + i, 0.5, &format!("Filler sentence number {i} here.")))
            .collect();
        many.splice(0..0, blurred_and_sharp());
        let ids = |hits: &[Hit]| hits.iter().map(|h| h.id).collect::<Vec<_>>();
        let kept = rerank_by_sentences(&cached, &q, many.clone(), 0.4).await;
        assert_eq!(ids(&kept), ids(&many));
        assert!(cached.cached("Penguins live in cold places.").is_none());
        // Once their sentences are cached (as ingestion does), the same query reranks.
        let all: Vec<String> = many
            .iter()
            .flat_map(|h| crate::chunk::sentences(&h.meta.text))
            .collect();
        cached.embed(&all).await.expect("embed");
        let reranked = rerank_by_sentences(&cached, &q, many, 0.4).await;
        assert_eq!(reranked[0].id, 2, "{reranked:?}");
    }

    #[tokio::test]
    async fn ingestion_caches_every_chunk_sentence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cached = Arc::new(
            crate::cache::CachedEmbedder::open(Arc::new(HashEmbedder::new(16)), dir.path())
                .expect("cache"),
        );
        let store = Arc::new(MemoryStore::new());
        let ing = Ingestor::new(
            store.clone(),
            Some(cached.clone()),
            Arc::new(Bm25::default()),
            Chunker::default(),
        );
        let text = "# Returns\n\nLunavo refunds hoodies within 30 days. Monarch takes 90 days.";
        ing.ingest(&Document {
            workspace: "lunavo".into(),
            source_kind: "file".into(),
            source: "policy.md".into(),
            title: "Policy".into(),
            text: text.into(),
            time: 0,
        })
        .await
        .expect("ingest");
        let scope = Scope {
            workspace: "lunavo".into(),
            source_kind: None,
        };
        let hits = store
            .search_sparse(&scope, &Bm25::default().query("refunds"), 5)
            .await
            .expect("search");
        assert_eq!(hits.len(), 1);
        let sentences = crate::chunk::sentences(&hits[0].meta.text);
        assert_eq!(sentences.len(), 2, "{sentences:?}");
        for s in &sentences {
            assert!(cached.cached(s).is_some(), "{s} was not cached");
        }
    }

    /// A store that records how many chunks each search asks for.
    struct Depths {
        inner: MemoryStore,
        asked: std::sync::Mutex<Vec<(&'static str, usize)>>,
    }

    #[async_trait::async_trait]
    impl VectorStore for Depths {
        async fn upsert(&self, chunks: Vec<crate::store::ChunkRecord>) -> Result<(), StoreError> {
            self.inner.upsert(chunks).await
        }
        async fn delete_document(&self, w: &str, k: &str, s: &str) -> Result<(), StoreError> {
            self.inner.delete_document(w, k, s).await
        }
        async fn documents(
            &self,
            scope: &Scope,
        ) -> Result<Vec<crate::store::StoredDocument>, StoreError> {
            self.inner.documents(scope).await
        }
        async fn search_dense(
            &self,
            scope: &Scope,
            vector: &[f32],
            limit: usize,
        ) -> Result<Vec<Hit>, StoreError> {
            self.asked.lock().expect("lock").push(("dense", limit));
            self.inner.search_dense(scope, vector, limit).await
        }
        async fn search_sparse(
            &self,
            scope: &Scope,
            vector: &crate::store::SparseVector,
            limit: usize,
        ) -> Result<Vec<Hit>, StoreError> {
            self.asked.lock().expect("lock").push(("sparse", limit));
            self.inner.search_sparse(scope, vector, limit).await
        }
        async fn count(&self) -> Result<usize, StoreError> {
            self.inner.count().await
        }
    }

    #[tokio::test]
    async fn only_a_fused_search_fetches_deeper_lists_than_it_keeps() {
        let store = Arc::new(Depths {
            inner: MemoryStore::new(),
            asked: Default::default(),
        });
        let r = HybridRetriever::new(
            store.clone(),
            Some(Arc::new(HashEmbedder::new(8))),
            Arc::new(Bm25::default()),
        );
        let scope = Scope {
            workspace: "lunavo".into(),
            source_kind: None,
        };
        let v = [0.5f32; 8];
        for mode in [Mode::Hybrid, Mode::Dense, Mode::Sparse] {
            r.search_with(&scope, "refunds", Some(&v), 5, mode)
                .await
                .expect("search");
        }
        // Without an embedding a dense search falls back to BM25 and keeps what it asks for.
        r.search_with(&scope, "refunds", None, 7, Mode::Dense)
            .await
            .expect("search");
        assert_eq!(
            *store.asked.lock().expect("lock"),
            [
                ("dense", DEFAULT_CANDIDATES),
                ("sparse", DEFAULT_CANDIDATES),
                ("dense", 5),
                ("sparse", 5),
                ("sparse", 7),
            ]
        );
    }
}
