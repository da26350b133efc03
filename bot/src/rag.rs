//! Knowledge (RAG) in the binary: where the knowledge base's files live under the data
//! directory, core's knowledge sync and run memory over krake-rag's [`OnDemandKnowledge`], and
//! the `krake ingest` and `krake eval rag` commands (`krake-bench rag` measures it). `[rag]`
//! itself is krake-rag's (`krake_rag::settings`).

use crate::settings::Settings;
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use krake_core::knowledge::learn::Learner;
use krake_core::knowledge::{KnowledgeSync, RunMemory, StoreDocuments};
use krake_core::workspace::WorkspaceSlug;
use krake_rag::eval::{Dataset, evaluate};
use krake_rag::extract::{file_documents, files};
use krake_rag::knowledge::{Knowledge, KnowledgePaths, OnDemandKnowledge};
use krake_rag::minilm::FETCH_COMMAND;
use krake_rag::retrieve::Fusion;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `krake ingest` flags.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// A file or a folder (read recursively): Markdown, text, HTML, CSV, PDF (text layer).
    #[arg(required_unless_present = "store")]
    pub path: Option<PathBuf>,
    /// The workspace the knowledge belongs to (only it will see it).
    #[arg(long, required_unless_present = "store")]
    pub workspace: Option<String>,
    /// Instead of files: bring every inbox thread (with its replies and decision) and every
    /// agent folder into its workspace's knowledge now (`krake serve` does it every
    /// `[rag] sync_interval_secs`).
    #[arg(long, conflicts_with_all = ["path", "workspace"])]
    pub store: bool,
}

/// `krake eval …`.
#[derive(Debug, clap::Subcommand)]
pub enum EvalCmd {
    /// Retrieval quality on a BEIR-format dataset (corpus.jsonl, queries.jsonl,
    /// qrels/test.tsv): nDCG@10 and recall@100 for sparse, dense and hybrid, and query latency.
    Rag {
        /// The dataset directory.
        #[arg(long)]
        dataset: PathBuf,
        /// Also try a few other fusions (RRF constants and weights, convex combinations, each
        /// over chunks and over documents, and convex combinations with best-sentence weights).
        #[arg(long)]
        sweep: bool,
        /// The split to evaluate: `qrels/SPLIT.tsv` (tune fusions on `train`, report `test`).
        #[arg(long, default_value = "test")]
        split: String,
    },
}

/// Where the knowledge base lives: `DATA_DIR/knowledge`.
pub fn knowledge_dir(settings: &Settings) -> PathBuf {
    settings.data_dir.join("knowledge")
}

/// Where model files live: `KRAKE_MODELS_DIR`, else `DATA_DIR/models`.
pub fn models_dir(settings: &Settings) -> PathBuf {
    std::env::var_os("KRAKE_MODELS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| settings.data_dir.join("models"))
}

/// Where embeddings are cached: `DATA_DIR/embedding-cache`.
pub fn cache_dir(settings: &Settings) -> PathBuf {
    settings.data_dir.join("embedding-cache")
}

/// The knowledge base's files under the settings' data directory.
pub fn paths(settings: &Settings) -> KnowledgePaths {
    KnowledgePaths {
        dir: knowledge_dir(settings),
        models: models_dir(settings),
        cache: cache_dir(settings),
    }
}

/// Opens the knowledge base the settings name.
pub async fn open(settings: &Settings) -> anyhow::Result<Knowledge> {
    Ok(Knowledge::open_with(&paths(settings), &settings.rag).await?)
}

/// The configured knowledge base: the embedded one opened per call, a Qdrant server's opened
/// once and kept (see [`OnDemandKnowledge`]).
pub fn on_demand(settings: &Settings) -> OnDemandKnowledge {
    OnDemandKnowledge::new(paths(settings), settings.rag.clone())
}

/// `krake ingest PATH --workspace W`: the files under PATH become the workspace's knowledge;
/// unchanged files are skipped, changed ones replaced, and files deleted under PATH since the
/// last run removed.
pub async fn ingest(settings: Settings, args: IngestArgs) -> anyhow::Result<()> {
    let (Some(path), Some(workspace)) = (&args.path, &args.workspace) else {
        return ingest_store(&settings).await;
    };
    let workspace = WorkspaceSlug::parse(workspace)
        .map_err(|e| anyhow::anyhow!("`{workspace}` is not a workspace slug: {e}"))?;
    if settings.directory.workspace(&workspace).is_none() {
        bail!(
            "there is no workspace `{workspace}`; the configured ones are: {}",
            settings
                .directory
                .workspaces()
                .iter()
                .map(|w| w.slug.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let root = path
        .canonicalize()
        .with_context(|| format!("{} does not exist", path.display()))?;
    let paths = files(&root)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let (docs, skipped) = file_documents(&paths, workspace.as_str(), now);
    let knowledge = open(&settings).await?;
    let bar = ProgressBar::new(docs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} files  {elapsed} (eta {eta})  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let prefix = root.display().to_string();
    let report = knowledge
        .ingestor
        .sync(
            workspace.as_str(),
            "file",
            &docs,
            |source| Path::new(source).starts_with(&prefix),
            |doc, _| {
                bar.set_message(
                    Path::new(&doc.source)
                        .file_name()
                        .map(|f| f.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                );
                bar.inc(1);
            },
        )
        .await
        .context("ingestion failed; what was stored before this file is kept, run it again")?;
    bar.finish_and_clear();
    knowledge.store.flush().await?;
    println!(
        "{workspace}: {} new, {} changed, {} unchanged, {} removed; {} chunks written{}",
        report.added,
        report.replaced,
        report.unchanged,
        report.removed,
        report.chunks,
        if knowledge.retriever.has_embedder() {
            ""
        } else {
            " (BM25 only: no local embedder)"
        }
    );
    for s in skipped {
        eprintln!("skipped {s}");
    }
    // HNSW for what was added: searches are right before it, only slower.
    knowledge.store.optimize().await?;
    Ok(())
}

/// `krake eval rag --dataset DIR`: ingests the dataset into a scratch knowledge base and prints
/// the figures.
pub async fn eval(settings: Settings, cmd: EvalCmd) -> anyhow::Result<()> {
    let EvalCmd::Rag {
        dataset,
        sweep,
        split,
    } = cmd;
    let others: Vec<Fusion> = if sweep {
        let mut v = Vec::new();
        for k in [10.0, 30.0, 60.0] {
            for (dense, sparse) in [(1.0, 1.0), (1.0, 1.5), (1.5, 1.0)] {
                v.push(Fusion::Rrf { k, dense, sparse });
                v.push(Fusion::SourceRrf { k, dense, sparse });
            }
        }
        for alpha in [0.3, 0.4, 0.5, 0.6, 0.7] {
            v.push(Fusion::Convex { alpha });
            v.push(Fusion::SourceConvex { alpha });
            for sentences in [0.2, 0.3, 0.4, 0.5] {
                v.push(Fusion::ConvexSentences { alpha, sentences });
            }
        }
        v
    } else {
        Vec::new()
    };
    let data = Dataset::load_split(&dataset, &split)?;
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let knowledge = Knowledge::open_at(
        &scratch.path().join("kb"),
        &models_dir(&settings),
        &cache_dir(&settings),
    )?;
    let bar = ProgressBar::new(data.corpus.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "ingesting {bar:40} {pos}/{len} documents  {elapsed} (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = evaluate(
        &data,
        &knowledge.ingestor,
        &knowledge.retriever,
        &others,
        |n| bar.set_position(n as u64),
    )
    .await?;
    bar.finish_and_clear();
    println!("dataset: {}", dataset.display());
    print!("{report}");
    if !knowledge.retriever.has_embedder() {
        println!(
            "dense and hybrid need the local embedder: run `{FETCH_COMMAND} {}`",
            models_dir(&settings).display()
        );
    }
    Ok(())
}

/// Core's knowledge sync over the store, into the knowledge base the settings name.
pub fn knowledge_sync(store: &krake_store::Store, settings: &Settings) -> KnowledgeSync {
    let store = Arc::new(store.clone());
    KnowledgeSync::new(
        Arc::new(on_demand(settings)),
        store.clone(),
        store,
        settings.directory.clone(),
    )
}

/// The learner of files sent in chat or uploaded, into the knowledge base the settings name,
/// fetching Telegram and Discord files with their fronts' fetchers when those are configured.
pub fn learner(
    store: &krake_store::Store,
    settings: &Settings,
    live: krake_core::delivery::LiveSenders,
) -> Learner {
    let mut learner = Learner::new(
        Arc::new(store.clone()),
        Arc::new(on_demand(settings)),
        Arc::new(krake_core::time::SystemClock),
        settings.rag.max_file_bytes,
    )
    .with_live(live);
    if let Some(t) = &settings.telegram {
        match krake_telegram::FileDownloads::new(t) {
            Ok(f) => learner = learner.with_fetcher(Arc::new(f)),
            Err(e) => tracing::warn!(error = %e, "files sent on Telegram cannot be fetched"),
        }
    }
    learner.with_fetcher(Arc::new(krake_discord::Attachments::new(&settings.discord)))
}

/// Core's run memory, into the knowledge base the settings name.
pub fn run_memory(settings: &Settings) -> RunMemory {
    RunMemory::new(Arc::new(on_demand(settings)))
}

/// `krake ingest --store`: threads and folders into the knowledge base now.
async fn ingest_store(settings: &Settings) -> anyhow::Result<()> {
    let store = crate::wiring::open_store(settings, false).await?;
    let docs = StoreDocuments::read(&store, &store, &settings.directory).await?;
    let knowledge = open(settings).await?;
    let done = docs
        .apply(&knowledge.ingestor)
        .await
        .context("ingestion failed; what was stored before is kept, run it again")?;
    println!(
        "threads and folders: {done}{}",
        if knowledge.retriever.has_embedder() {
            ""
        } else {
            " (BM25 only: no local embedder)"
        }
    );
    knowledge.store.optimize().await?;
    Ok(())
}
