//! Retrieval quality on SciFact-mini (BEIR format, ../shared/fixtures/rag/scifact-mini) through
//! the real pipeline: chunking, the local embedder, embedded Qdrant, fusion. The floors sit well
//! under the measured figures (docs/benchmarks.md) so that a regression fails and noise does not.

use krake_rag::cache::CachedEmbedder;
use krake_rag::chunk::Chunker;
use krake_rag::edge::EdgeStore;
use krake_rag::embed::Embedder;
use krake_rag::eval::{Dataset, evaluate};
use krake_rag::ingest::Ingestor;
use krake_rag::minilm::{MiniLm, test_models_dir};
use krake_rag::retrieve::{HybridRetriever, Mode};
use krake_rag::sparse::Bm25;
use std::path::PathBuf;
use std::sync::Arc;

fn fixtures() -> PathBuf {
    std::env::var("KRAKE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"))
}

#[tokio::test(flavor = "multi_thread")]
async fn scifact_mini_hybrid_beats_the_floor() {
    let dataset = Dataset::load(&fixtures().join("rag/scifact-mini")).expect("scifact-mini");
    let models = test_models_dir();
    let model: Arc<dyn Embedder> = Arc::new(
        MiniLm::load(&models)
            .unwrap_or_else(|e| panic!("{e}; run `scripts/fetch-model {}`", models.display())),
    );
    // Vectors are cached by (model, text) beside the models, so only the first run embeds.
    let cache = models.join("../embedding-cache");
    let embedder: Arc<dyn Embedder> =
        Arc::new(CachedEmbedder::open(model, &cache).expect("embedding cache"));
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(EdgeStore::open(&dir.path().join("kb"), 384).expect("store"));
    let bm25 = Arc::new(Bm25::default());
    let ingestor = Ingestor::new(
        store.clone(),
        Some(embedder.clone()),
        bm25.clone(),
        Chunker::default(),
    );
    let retriever = HybridRetriever::new(store.clone(), Some(embedder), bm25);
    let report = evaluate(&dataset, &ingestor, &retriever, &[], |_| {})
        .await
        .expect("evaluate");
    eprintln!("{report}");
    assert_eq!((report.documents, report.queries), (500, 50));
    let get = |m: Mode| {
        report
            .modes
            .iter()
            .find(|r| r.mode == m && r.label == format!("{m:?}").to_lowercase())
            .unwrap_or_else(|| panic!("{m:?} ran"))
            .clone()
    };
    let (sparse, dense, hybrid) = (get(Mode::Sparse), get(Mode::Dense), get(Mode::Hybrid));
    assert!(sparse.ndcg10 > 0.60, "sparse nDCG@10 {}", sparse.ndcg10);
    assert!(dense.ndcg10 > 0.60, "dense nDCG@10 {}", dense.ndcg10);
    assert!(hybrid.ndcg10 > 0.65, "hybrid nDCG@10 {}", hybrid.ndcg10);
    assert!(
        hybrid.recall100 > 0.9,
        "hybrid recall@100 {}",
        hybrid.recall100
    );
    // Re-ingesting the same corpus changes nothing.
    let again = ingestor
        .sync("eval", "file", &[], |_| false, |_, _| {})
        .await
        .expect("sync");
    assert_eq!(again.removed, 0);
}
