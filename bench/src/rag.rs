//! `rag`: filtered query latency in embedded Qdrant over many chunks (sparse, dense, hybrid
//! and hybrid with the best-sentence step; embedding excluded), and the local embedder's
//! ingestion throughput (scripts/bench-embed-pytorch.py is its PyTorch baseline: the same
//! generator and word list).

use anyhow::{Context, bail};
use krake_bot::rag::models_dir;
use krake_bot::settings::Settings;
use krake_rag::cache::CachedEmbedder;
use krake_rag::edge::EdgeStore;
use krake_rag::embed::{Embedder, HashEmbedder};
use krake_rag::knowledge::embedder;
use krake_rag::minilm::{FETCH_COMMAND, MiniLm};
use krake_rag::retrieve::HybridRetriever;
use krake_rag::settings::DIMENSIONS;
use krake_rag::sparse::Bm25;
use std::sync::Arc;

/// `rag` flags.
#[derive(Debug, clap::Args)]
pub struct BenchRagArgs {
    /// Chunks in the store (spread over four workspaces; queries filter to the largest, which
    /// holds half of them).
    #[arg(long, default_value_t = 100_000)]
    pub chunks: usize,
    /// Timed queries per mode.
    #[arg(long, default_value_t = 1000)]
    pub queries: usize,
    /// Sentences (about 60 word pieces) to embed for the ingestion figure (0 skips).
    #[arg(long, default_value_t = 256)]
    pub sentences: usize,
    /// Chunks of 256 word pieces to embed for the ingestion figure (0 skips).
    #[arg(long, default_value_t = 64)]
    pub long_chunks: usize,
    /// A Qdrant server's gRPC URL (`http://127.0.0.1:6334`) to measure instead of embedded
    /// Qdrant (a scratch collection, deleted at the end).
    #[arg(long)]
    pub qdrant_url: Option<String>,
}

/// A small deterministic generator (xorshift), so every run stores the same data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

const WORDS: &[&str] = &[
    "order",
    "hoodie",
    "refund",
    "shipping",
    "return",
    "size",
    "print",
    "partner",
    "invoice",
    "customer",
    "delay",
    "stock",
    "warehouse",
    "label",
    "campaign",
    "discount",
    "review",
    "payment",
    "tracking",
    "parcel",
    "colour",
    "fabric",
    "cotton",
    "poster",
    "mug",
    "sticker",
    "design",
    "artwork",
    "proof",
    "approval",
    "budget",
    "schedule",
    "newsletter",
    "audience",
    "conversion",
    "checkout",
    "cart",
    "abandoned",
    "coupon",
    "wholesale",
    "supplier",
    "quality",
    "complaint",
    "exchange",
    "damaged",
    "lost",
    "customs",
    "duty",
    "express",
    "standard",
];

fn sentence(rng: &mut Rng, words: usize) -> String {
    let mut s: Vec<&str> = Vec::with_capacity(words);
    for _ in 0..words {
        s.push(WORDS[(rng.next_u64() % WORDS.len() as u64) as usize]);
    }
    s.join(" ")
}

/// `count` sentences of `words` words, each capitalised and ending with a full stop, so that
/// [`krake_rag::chunk::sentences`] splits them apart.
fn paragraph(rng: &mut Rng, count: usize, words: usize) -> String {
    (0..count)
        .map(|_| {
            let s = sentence(rng, words);
            let mut chars = s.chars();
            let first: String = chars
                .next()
                .into_iter()
                .flat_map(char::to_uppercase)
                .collect();
            format!("{first}{}.", chars.as_str())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `rag`: filtered query latency in embedded Qdrant (or a Qdrant server) over many chunks (sparse,
/// dense, hybrid and hybrid with the best-sentence step; embedding excluded), and the local
/// embedder's ingestion throughput.
pub async fn bench(settings: Settings, args: BenchRagArgs) -> anyhow::Result<()> {
    use krake_rag::embed::normalise;
    use krake_rag::eval::percentile;
    use krake_rag::retrieve::Mode;
    use krake_rag::store::{ChunkMeta, ChunkRecord, Scope, VectorStore};
    use std::time::Instant;

    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let collection = format!("krake_bench_{}", std::process::id());
    let store: Arc<dyn VectorStore> = match &args.qdrant_url {
        Some(url) => {
            println!("store: the Qdrant server at {url}, collection {collection}");
            Arc::new(
                krake_rag::server::QdrantStore::open(
                    &krake_rag::server::ServerConfig {
                        url: url.clone(),
                        collection: collection.clone(),
                        api_key: None,
                    },
                    DIMENSIONS,
                )
                .await?,
            )
        }
        None => Arc::new(EdgeStore::open(&scratch.path().join("kb"), DIMENSIONS)?),
    };
    let bm25 = Arc::new(Bm25::default());
    // The best-sentence step reads sentence vectors from the embedding cache; a hashing
    // embedder fills it instantly (this measures the lookups and scoring, not a model).
    let sentence_cache: Arc<dyn Embedder> = Arc::new(CachedEmbedder::open(
        Arc::new(HashEmbedder::new(DIMENSIONS)),
        &scratch.path().join("embedding-cache"),
    )?);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let workspaces = ["lunavo", "monarch", "kiosk", "atlas"];
    let started = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    let mut pending_sentences = Vec::new();
    for i in 0..args.chunks {
        // Half of the chunks in lunavo, the rest spread over the others.
        let ws = if i % 2 == 0 {
            workspaces[0]
        } else {
            workspaces[1 + (i / 2) % 3]
        };
        let mut dense: Vec<f32> = (0..DIMENSIONS).map(|_| rng.unit()).collect();
        normalise(&mut dense);
        // Four sentences of ten words: about the shape of a 200-token chunk's sentences.
        let text = paragraph(&mut rng, 4, 10);
        // Only the queried workspace's chunks can be candidates, so only theirs are cached.
        if ws == workspaces[0] {
            pending_sentences.extend(krake_rag::chunk::sentences(&text));
        }
        let sparse = bm25.document(&text);
        batch.push(ChunkRecord {
            id: i as u64,
            meta: ChunkMeta {
                workspace: ws.to_owned(),
                source_kind: "file".to_owned(),
                source: format!("doc{}.md", i / 4),
                title: String::new(),
                position: (i % 4) as u32,
                time: 0,
                doc_hash: String::new(),
                text,
            },
            dense: Some(dense),
            sparse,
        });
        if batch.len() == 1000 {
            store.upsert(std::mem::take(&mut batch)).await?;
            sentence_cache
                .embed(&std::mem::take(&mut pending_sentences))
                .await?;
        }
    }
    store.upsert(batch).await?;
    sentence_cache.embed(&pending_sentences).await?;
    let loaded = started.elapsed();
    let started = Instant::now();
    store.optimize().await?;
    let optimized = started.elapsed();
    println!(
        "store: {} chunks of {DIMENSIONS} dimensions + BM25 in 4 workspaces; written in {:.1} s, \
         indexed (HNSW) in {:.1} s",
        store.count().await?,
        loaded.as_secs_f64(),
        optimized.as_secs_f64()
    );
    let without_sentences = HybridRetriever::new(store.clone(), None, bm25.clone());
    let with_sentences =
        HybridRetriever::new(store.clone(), Some(sentence_cache.clone()), bm25.clone());
    let scope = Scope {
        workspace: workspaces[0].to_owned(),
        source_kind: None,
    };
    println!(
        "queries: {} per mode, top 10, workspace filter (half of the chunks), embedding excluded",
        args.queries
    );
    println!("mode                p50 (ms)  p99 (ms)  max (ms)");
    for (label, mode, retriever) in [
        ("sparse", Mode::Sparse, &without_sentences),
        ("dense", Mode::Dense, &without_sentences),
        ("hybrid (convex)", Mode::Hybrid, &without_sentences),
        ("hybrid + sentence", Mode::Hybrid, &with_sentences),
    ] {
        let mut times = Vec::with_capacity(args.queries);
        for _ in 0..args.queries {
            let mut q: Vec<f32> = (0..DIMENSIONS).map(|_| rng.unit()).collect();
            normalise(&mut q);
            let text = sentence(&mut rng, 6);
            let dense = (mode != Mode::Sparse).then_some(q);
            let t = Instant::now();
            let hits = retriever
                .search_with(&scope, &text, dense.as_deref(), 10, mode)
                .await?;
            times.push(t.elapsed());
            if hits.iter().any(|h| h.meta.workspace != workspaces[0]) {
                bail!("a result from another workspace: the filter is broken");
            }
        }
        times.sort();
        println!(
            "{label:<18}  {:>8.3}  {:>8.3}  {:>8.3}",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            ms(times.last().copied().unwrap_or_default())
        );
    }
    drop((without_sentences, with_sentences, sentence_cache));
    drop(store);
    if let Some(url) = &args.qdrant_url {
        qdrant_client::Qdrant::from_url(url)
            .skip_compatibility_check()
            .build()?
            .delete_collection(&collection)
            .await?;
    }

    if args.sentences + args.long_chunks == 0 {
        return Ok(());
    }
    let models = models_dir(&settings);
    let Some(_) = embedder(&models)? else {
        println!(
            "ingestion: skipped, the local embedder is missing (run `{FETCH_COMMAND} {}`)",
            models.display()
        );
        return Ok(());
    };
    let model = MiniLm::load(&models)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "ingestion with the local embedder (candle, CPU, {threads} threads, batches of at most 32 texts and 2,048 word pieces):"
    );
    for (count, words, label) in [
        (args.sentences, 45, "sentences"),
        (args.long_chunks, 250, "256-token chunks"),
    ] {
        if count == 0 {
            continue;
        }
        let texts: Vec<String> = (0..count).map(|_| sentence(&mut rng, words)).collect();
        let tokens: usize = texts.iter().map(|t| model.token_count(t)).sum();
        let m = model.clone();
        let warm = texts[..texts.len().min(8)].to_vec();
        tokio::task::spawn_blocking(move || m.embed_blocking(&warm)).await??;
        let m = model.clone();
        let t = Instant::now();
        let texts2 = texts.clone();
        tokio::task::spawn_blocking(move || m.embed_blocking(&texts2)).await??;
        let took = t.elapsed();
        println!(
            "  {count} {label} (mean {:.0} word pieces): {:.1} per second",
            tokens as f64 / count as f64,
            count as f64 / took.as_secs_f64()
        );
    }
    Ok(())
}
