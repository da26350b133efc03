//! Knowledge (RAG) wiring: the vector store (embedded Qdrant under the data directory by
//! default, or a Qdrant server, `[rag] store`), the local embedder when its weights are present
//! (BM25-only retrieval, said once, when not), the [`Retriever`] that agents and `ask` use, and
//! the `krake ingest` and `krake eval rag` commands (`krake-bench rag` measures it).

use crate::settings::Settings;
use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use krake_core::knowledge::{
    Document, DocumentSet, KnowledgeBase, KnowledgeError, KnowledgeSync, Retriever, RunMemory,
    StoreDocuments, SyncCounts,
};
use krake_core::settings::env_or;
use krake_core::workspace::WorkspaceSlug;
use krake_llm::embeddings::{EmbeddingsConfig, OpenAiEmbedder, OpenAiEmbeddings};
use krake_rag::cache::CachedEmbedder;
use krake_rag::chunk::Chunker;
use krake_rag::edge::EdgeStore;
use krake_rag::embed::Embedder;
use krake_rag::eval::{Dataset, evaluate};
use krake_rag::extract::{file_documents, files};
use krake_rag::ingest::Ingestor;
use krake_rag::minilm::{FETCH_COMMAND, MiniLm};
use krake_rag::retrieve::{Fusion, HybridRetriever};
use krake_rag::server::{QdrantStore, ServerConfig};
use krake_rag::sparse::Bm25;
use krake_rag::store::VectorStore;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The local embedder's vector size (the store is made for it even while the weights are
/// missing, so fetching them later needs no new store).
pub const DIMENSIONS: usize = 384;

/// `[rag]` in the config file.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RagFile {
    /// `edge` (embedded Qdrant in the data directory, the default) or `qdrant` (a Qdrant
    /// server); `KRAKE_RAG_STORE` overrides it.
    pub store: Option<String>,
    /// The Qdrant server's gRPC URL, e.g. `http://127.0.0.1:6334` (`KRAKE_QDRANT_URL`). Its
    /// API key comes from `KRAKE_QDRANT_API_KEY` only.
    pub qdrant_url: Option<String>,
    /// The collection on the server; default `krake`.
    pub qdrant_collection: Option<String>,
    /// `local` (all-MiniLM-L6-v2 on this machine, the default) or `openai` (an
    /// OpenAI-compatible embeddings server, `[rag.openai]`).
    pub embedder: Option<String>,
    /// The OpenAI-compatible embeddings server.
    #[serde(default, skip_serializing_if = "is_default")]
    pub openai: EmbeddingsConfig,
    /// How often `krake serve` brings inbox threads and agent folders into the knowledge
    /// base, in seconds (default 300; 0 turns it off: `krake ingest --store` still does it).
    pub sync_interval_secs: Option<u64>,
}

fn is_default(c: &EmbeddingsConfig) -> bool {
    *c == EmbeddingsConfig::default()
}

/// Which embedder turns text into vectors.
#[derive(Debug, Clone)]
pub enum EmbedderChoice {
    /// The local model (BM25 only while its weights are missing).
    Local,
    /// An OpenAI-compatible embeddings server.
    OpenAi(EmbeddingsConfig),
}

/// Where the knowledge base's vectors live.
#[derive(Debug, Clone)]
pub enum StoreChoice {
    /// Embedded Qdrant under the data directory.
    Edge,
    /// A Qdrant server.
    Qdrant(ServerConfig),
}

/// The effective `[rag]` settings.
#[derive(Debug, Clone)]
pub struct RagSettings {
    /// The vector store.
    pub store: StoreChoice,
    /// The embedder.
    pub embedder: EmbedderChoice,
    /// How often `krake serve` syncs threads and folders into the knowledge base (`None`: never).
    pub sync_every: Option<std::time::Duration>,
}

/// The default of `[rag] sync_interval_secs`.
pub const DEFAULT_SYNC_INTERVAL_SECS: u64 = 300;

impl Default for RagSettings {
    fn default() -> Self {
        Self {
            store: StoreChoice::Edge,
            embedder: EmbedderChoice::Local,
            sync_every: Some(std::time::Duration::from_secs(DEFAULT_SYNC_INTERVAL_SECS)),
        }
    }
}

/// Reads `[rag]` with its environment overrides (`KRAKE_RAG_STORE`, `KRAKE_QDRANT_URL`,
/// `KRAKE_QDRANT_API_KEY`).
pub fn settings(file: &RagFile) -> anyhow::Result<RagSettings> {
    let store = match env_or("KRAKE_RAG_STORE", file.store.as_ref()).as_deref() {
        None | Some("edge") => StoreChoice::Edge,
        Some("qdrant") => {
            let Some(url) = env_or("KRAKE_QDRANT_URL", file.qdrant_url.as_ref()) else {
                bail!(
                    "rag.store is `qdrant` but no server is named: set rag.qdrant_url (or \
                     KRAKE_QDRANT_URL) to its gRPC URL, e.g. http://127.0.0.1:6334"
                );
            };
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("rag.qdrant_url `{url}` must start with http:// or https://");
            }
            StoreChoice::Qdrant(ServerConfig {
                url,
                collection: file
                    .qdrant_collection
                    .clone()
                    .filter(|c| !c.trim().is_empty())
                    .unwrap_or_else(|| "krake".to_owned()),
                api_key: env_or("KRAKE_QDRANT_API_KEY", None),
            })
        }
        Some(other) => bail!("rag.store must be `edge` or `qdrant`, not `{other}`"),
    };
    let embedder = match file.embedder.as_deref().map(str::trim) {
        None | Some("local") => EmbedderChoice::Local,
        Some("openai") => {
            if file.openai.dimensions.is_none_or(|d| d == 0) {
                bail!(
                    "rag.embedder is `openai`: set rag.openai.dimensions to the model's vector \
                     size (e.g. 1536 for text-embedding-3-small), the store is made for it"
                );
            }
            // Checked now (URL, model, key variable) so a bad config fails at start.
            OpenAiEmbeddings::new(&file.openai, |v| std::env::var(v).ok())
                .map_err(|e| anyhow::anyhow!("rag.openai: {e}"))?;
            EmbedderChoice::OpenAi(file.openai.clone())
        }
        Some(other) => bail!("rag.embedder must be `local` or `openai`, not `{other}`"),
    };
    let sync_every = match file
        .sync_interval_secs
        .unwrap_or(DEFAULT_SYNC_INTERVAL_SECS)
    {
        0 => None,
        secs => Some(std::time::Duration::from_secs(secs)),
    };
    Ok(RagSettings {
        store,
        embedder,
        sync_every,
    })
}

/// The `[rag]` settings in effect, as they would be written in the file (the Qdrant API key
/// is read from `KRAKE_QDRANT_API_KEY` only, so it is never written).
pub fn effective(rag: &RagSettings) -> RagFile {
    let (store, qdrant_url, qdrant_collection) = match &rag.store {
        StoreChoice::Edge => ("edge", None, None),
        StoreChoice::Qdrant(s) => ("qdrant", Some(s.url.clone()), Some(s.collection.clone())),
    };
    let (embedder, openai) = match &rag.embedder {
        EmbedderChoice::Local => ("local", EmbeddingsConfig::default()),
        EmbedderChoice::OpenAi(c) => ("openai", c.clone()),
    };
    RagFile {
        store: Some(store.to_owned()),
        qdrant_url,
        qdrant_collection,
        embedder: Some(embedder.to_owned()),
        openai,
        sync_interval_secs: Some(rag.sync_every.map_or(0, |d| d.as_secs())),
    }
}

/// The embedder `rag` chooses, with the on-disk cache in `paths.cache`; `None` when the local
/// one's weights are missing.
pub fn configured_embedder(
    paths: &KnowledgePaths,
    rag: &RagSettings,
) -> anyhow::Result<Option<Arc<dyn Embedder>>> {
    match &rag.embedder {
        EmbedderChoice::Local => cached_embedder(&paths.models, &paths.cache),
        EmbedderChoice::OpenAi(config) => Ok(Some(Arc::new(
            CachedEmbedder::open(
                Arc::new(
                    OpenAiEmbedder::new(config, |v| std::env::var(v).ok())
                        .map_err(|e| anyhow::anyhow!("rag.openai: {e}"))?,
                ),
                &paths.cache,
            )
            .context("the embedding cache cannot be opened")?,
        ))),
    }
}

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

static SAID_SPARSE_ONLY: AtomicBool = AtomicBool::new(false);

/// Where embeddings are cached: `DATA_DIR/embedding-cache`.
pub fn cache_dir(settings: &Settings) -> PathBuf {
    settings.data_dir.join("embedding-cache")
}

/// The local embedder with an on-disk cache in `cache`, or `None` (said once per process)
/// when its weights are missing. Damaged weights are an error.
pub fn cached_embedder(models: &Path, cache: &Path) -> anyhow::Result<Option<Arc<dyn Embedder>>> {
    let Some(e) = embedder(models)? else {
        return Ok(None);
    };
    Ok(Some(Arc::new(
        CachedEmbedder::open(e, cache).context("the embedding cache cannot be opened")?,
    )))
}

/// The local embedder, or `None` (said once per process) when its weights are missing.
/// Damaged weights are an error.
pub fn embedder(models: &Path) -> anyhow::Result<Option<Arc<dyn Embedder>>> {
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
    let m = MiniLm::load(models).context("the local embedder cannot be loaded")?;
    Ok(Some(Arc::new(m)))
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

impl KnowledgePaths {
    /// The paths the settings name.
    pub fn new(settings: &Settings) -> Self {
        Self {
            dir: knowledge_dir(settings),
            models: models_dir(settings),
            cache: cache_dir(settings),
        }
    }
}

/// The knowledge base's parts, built from settings.
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
    pub fn open_at(dir: &Path, models: &Path, cache: &Path) -> anyhow::Result<Self> {
        let store = Arc::new(EdgeStore::open(dir, DIMENSIONS).with_context(|| {
            format!("the knowledge base in {} cannot be opened", dir.display())
        })?);
        Ok(Self::assemble(store, cached_embedder(models, cache)?))
    }

    /// Opens the knowledge base `rag` names (the embedded one in `paths.dir`, or a Qdrant
    /// server's collection, created when absent).
    pub async fn open_with(paths: &KnowledgePaths, rag: &RagSettings) -> anyhow::Result<Self> {
        let embedder = configured_embedder(paths, rag)?;
        let dims = embedder.as_ref().map_or(DIMENSIONS, |e| e.dimensions());
        match &rag.store {
            StoreChoice::Edge => {
                let dir = &paths.dir;
                let store = EdgeStore::open(dir, dims).with_context(|| {
                    format!("the knowledge base in {} cannot be opened", dir.display())
                })?;
                Ok(Self::assemble(Arc::new(store), embedder))
            }
            StoreChoice::Qdrant(server) => {
                let store = QdrantStore::open(server, dims).await.with_context(|| {
                    format!(
                        "the knowledge base on the Qdrant server {} (collection `{}`) cannot be \
                         opened",
                        server.url, server.collection
                    )
                })?;
                Ok(Self::assemble(Arc::new(store), embedder))
            }
        }
    }

    /// Opens the knowledge base the settings name.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        Self::open_with(&KnowledgePaths::new(settings), &settings.rag).await
    }
}

/// The [`Retriever`] for agents and `ask`: hybrid retrieval over the configured knowledge base
/// (BM25 only while the embedder's weights are missing).
pub async fn retriever(settings: &Settings) -> anyhow::Result<Arc<dyn Retriever>> {
    Ok(Arc::new(Knowledge::open(settings).await?.retriever))
}

/// The configured knowledge base, opened for each query and closed after it: qdrant-edge
/// holds an exclusive lock on its directory while open, so a `krake serve` that kept it open
/// would stop `krake ingest` (and `krake chat`) from opening it. When the embedded one is
/// empty or missing, queries find nothing; when it is locked by another process (an ingest in
/// progress), the query fails with an error that says so. Writes (core's knowledge sync and
/// run memory) open it the same way, per call.
#[derive(Debug, Clone)]
pub struct OnDemandKnowledge {
    paths: KnowledgePaths,
    rag: RagSettings,
}

impl OnDemandKnowledge {
    /// The knowledge base the settings name.
    pub fn new(settings: &Settings) -> Self {
        Self {
            paths: KnowledgePaths::new(settings),
            rag: settings.rag.clone(),
        }
    }
}

#[async_trait::async_trait]
impl Retriever for OnDemandKnowledge {
    async fn retrieve(
        &self,
        query: &krake_core::knowledge::KnowledgeQuery,
    ) -> Result<Vec<krake_core::knowledge::Passage>, krake_core::knowledge::RetrieveError> {
        use krake_core::knowledge::RetrieveError;
        if matches!(self.rag.store, StoreChoice::Edge)
            && !self.paths.dir.join("edge_config.json").exists()
        {
            return Ok(Vec::new());
        }
        let k = Knowledge::open_with(&self.paths, &self.rag)
            .await
            .map_err(|e| match self.rag.store {
                StoreChoice::Edge => RetrieveError::Unavailable(format!(
                    "{e:#} (another process, such as `krake ingest`, may be using it; try again when it ends)"
                )),
                StoreChoice::Qdrant(_) => RetrieveError::Unavailable(format!("{e:#}")),
            })?;
        k.retriever.retrieve(query).await
    }
}

impl OnDemandKnowledge {
    async fn open(&self) -> Result<Knowledge, KnowledgeError> {
        Knowledge::open_with(&self.paths, &self.rag)
            .await
            .map_err(|e| KnowledgeError::Unavailable(format!("{e:#}")))
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
    let knowledge = Knowledge::open(&settings).await?;
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
        Arc::new(OnDemandKnowledge::new(settings)),
        store.clone(),
        store,
        settings.directory.clone(),
    )
}

/// Core's run memory, into the knowledge base the settings name.
pub fn run_memory(settings: &Settings) -> RunMemory {
    RunMemory::new(Arc::new(OnDemandKnowledge::new(settings)))
}

/// `krake ingest --store`: threads and folders into the knowledge base now.
async fn ingest_store(settings: &Settings) -> anyhow::Result<()> {
    let store = crate::wiring::open_store(settings, false).await?;
    let docs = StoreDocuments::read(&store, &store, &settings.directory).await?;
    let knowledge = Knowledge::open(settings).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Overrides;
    use krake_core::knowledge::{KnowledgeQuery, StoreSync};

    fn query(workspace: &str, text: &str) -> KnowledgeQuery {
        KnowledgeQuery {
            workspace: WorkspaceSlug::parse(workspace).expect("slug"),
            text: text.to_owned(),
            limit: 5,
            token_budget: 1000,
            source_kind: None,
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_serve_pass_syncs_threads_and_folders_when_they_change_and_per_workspace() {
        use krake_core::Actor;
        use krake_core::inbox::{NewThread, ThreadKind};
        use krake_core::reply::Tone;
        let data = tempfile::tempdir().expect("tempdir");
        let overrides = Overrides {
            data_dir: Some(data.path().to_owned()),
            ..Overrides::default()
        };
        let settings = Settings::load(&overrides, None).expect("settings");
        let store = crate::wiring::open_store(&settings, false)
            .await
            .expect("store");
        let krake = crate::wiring::krake(&store, &settings);
        let ws = |s: &str| WorkspaceSlug::parse(s).expect("slug");
        let porto = krake
            .create_thread(
                &Actor::system(),
                &NewThread::new(
                    ws("lunavo"),
                    ThreadKind::Question,
                    "Which courier for Porto?",
                    "Customers in Porto ask which courier delivers their hoodies.",
                ),
            )
            .await
            .expect("thread");
        krake
            .create_thread(
                &Actor::system(),
                &NewThread::new(
                    ws("monarch"),
                    ThreadKind::Question,
                    "Payroll date",
                    "Payroll runs on the 25th of each month.",
                ),
            )
            .await
            .expect("thread");
        let local = Actor::local();
        for line in [
            "/folder create soshie suppliers",
            "/folder addcol soshie suppliers note text",
            "/folder add soshie suppliers note=\"Glow ink comes from Lumiprint\"",
        ] {
            let r = krake.handle_text(&local, line).await;
            assert!(
                matches!(r.tone, Tone::Info | Tone::Success),
                "{line}: {}",
                r.text
            );
        }
        let mut sync = knowledge_sync(&store, &settings);
        let first = sync.pass().await.expect("pass");
        // Soshie's folder goes to each of her three workspaces.
        assert_eq!(
            first,
            Some(StoreSync {
                threads: 2,
                folders: 3,
                removed: 0
            })
        );
        let again = sync.pass().await.expect("pass");
        assert_eq!(
            again, None,
            "nothing changed, the knowledge base is not opened"
        );
        let r = krake
            .handle_text(
                &local,
                &format!("/reply {} DHL delivers to Porto", porto.id),
            )
            .await;
        assert!(matches!(r.tone, Tone::Info | Tone::Success), "{}", r.text);
        let after = sync.pass().await.expect("pass");
        assert_eq!(
            after,
            Some(StoreSync {
                threads: 1,
                folders: 0,
                removed: 0
            })
        );
        let k = Knowledge::open(&settings).await.expect("open");
        let found = k
            .retriever
            .retrieve(&query("lunavo", "which courier delivers to Porto"))
            .await
            .expect("retrieve");
        assert_eq!(found[0].source, format!("thread {}", porto.id), "{found:?}");
        assert_eq!(found[0].source_kind, "thread");
        assert!(found[0].text.contains("DHL delivers to Porto"), "{found:?}");
        let folder = k
            .retriever
            .retrieve(&query("lunabots", "glow ink Lumiprint"))
            .await
            .expect("retrieve");
        assert!(
            folder
                .iter()
                .any(|p| p.source_kind == "folder" && p.text.contains("Lumiprint")),
            "{folder:?}"
        );
        let monarch = k
            .retriever
            .retrieve(&query("monarch", "which courier delivers to Porto"))
            .await
            .expect("retrieve");
        assert!(
            monarch.iter().all(
                |p| p.source != format!("thread {}", porto.id) && !p.text.contains("Lumiprint")
            ),
            "lunavo's thread and Soshie's folder stay out of monarch: {monarch:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn ingest_adds_replaces_and_removes_files_in_one_workspace() {
        let data = tempfile::tempdir().expect("tempdir");
        let docs = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            docs.path().join("returns.md"),
            "# Returns\n\nLunavo refunds hoodies within 30 days.",
        )
        .expect("write");
        std::fs::write(
            docs.path().join("sizes.html"),
            "<h1>Sizes</h1><p>Our hoodies run small.</p>",
        )
        .expect("write");
        std::fs::write(docs.path().join("photo.jpg"), [0u8]).expect("write");
        let overrides = Overrides {
            data_dir: Some(data.path().to_owned()),
            ..Overrides::default()
        };
        let settings = Settings::load(&overrides, None).expect("settings");
        let args = || IngestArgs {
            path: Some(docs.path().to_owned()),
            workspace: Some("lunavo".to_owned()),
            store: false,
        };
        ingest(Settings::load(&overrides, None).expect("settings"), args())
            .await
            .expect("ingest");
        {
            let k = Knowledge::open(&settings).await.expect("open");
            let found = k
                .retriever
                .retrieve(&query("lunavo", "refund"))
                .await
                .expect("retrieve");
            // With the embedder, dense search ranks every chunk; the relevant one comes first.
            assert!(!found.is_empty() && found.len() <= 2, "{found:?}");
            assert!(found[0].source.ends_with("returns.md"), "{found:?}");
            assert_eq!(found[0].title, "Returns");
            assert_eq!(found[0].source_kind, "file");
            let other = k
                .retriever
                .retrieve(&query("monarch", "refund"))
                .await
                .expect("retrieve");
            assert!(
                other.is_empty(),
                "another workspace sees nothing: {other:?}"
            );
        }
        std::fs::write(
            docs.path().join("returns.md"),
            "# Returns\n\nLunavo refunds hoodies within 60 days.",
        )
        .expect("write");
        std::fs::remove_file(docs.path().join("sizes.html")).expect("rm");
        ingest(Settings::load(&overrides, None).expect("settings"), args())
            .await
            .expect("ingest again");
        let k = Knowledge::open(&settings).await.expect("open");
        let found = k
            .retriever
            .retrieve(&query("lunavo", "hoodies"))
            .await
            .expect("retrieve");
        assert_eq!(
            found.len(),
            1,
            "sizes.html is gone, photo.jpg was skipped: {found:?}"
        );
        assert!(found[0].text.contains("60 days"), "{found:?}");
        let bad = ingest(
            Settings::load(&overrides, None).expect("settings"),
            IngestArgs {
                path: Some(docs.path().to_owned()),
                workspace: Some("nowhere".to_owned()),
                store: false,
            },
        )
        .await
        .expect_err("unknown workspace");
        assert!(
            bad.to_string().contains("lunavo"),
            "lists the workspaces: {bad}"
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_finished_runs_result_becomes_knowledge_of_its_workspace() {
        use krake_core::run::{NewRun, RunOutcome, RunRepo, RunStatus};
        use krake_core::time::Timestamp;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = krake_store::Store::open(&krake_store::Store::sqlite_url(
            &dir.path().join("bench.db"),
        ))
        .await
        .expect("store");
        store.migrate(|_| {}).await.expect("migrate");
        let new = |task: &str| NewRun {
            workspace: WorkspaceSlug::parse("lunavo").expect("slug"),
            agent: "cassie".into(),
            task: task.into(),
            trigger: "command".into(),
            requested_by: "ana".into(),
            parent: None,
            feedback: None,
        };
        let now = Timestamp::from_millis(1_700_000_000_000);
        let done = store
            .create_run(&new("find why order 1042 is late"), now)
            .await
            .expect("run");
        let outcome = |status, result: &str| RunOutcome {
            status,
            result: Some(result.to_owned()),
            error: None,
            thread: None,
        };
        assert!(
            store
                .finish_run(
                    done.id,
                    RunStatus::Queued,
                    &outcome(
                        RunStatus::Done,
                        "Order 1042 waits for the Gelato print partner in Latvia."
                    ),
                    now
                )
                .await
                .expect("finish")
        );
        let failed = store
            .create_run(&new("check the warehouse"), now)
            .await
            .expect("run");
        store
            .finish_run(
                failed.id,
                RunStatus::Queued,
                &outcome(RunStatus::Failed, "warehouse unreachable"),
                now,
            )
            .await
            .expect("finish");
        let paths = KnowledgePaths {
            dir: dir.path().join("kb"),
            models: dir.path().join("no-models"),
            cache: dir.path().join("cache"),
        };
        let memory = RunMemory::new(Arc::new(OnDemandKnowledge {
            paths: paths.clone(),
            rag: RagSettings::default(),
        }));
        assert_eq!(
            memory.remember_recent(&store, 50).await.expect("remember"),
            1,
            "only the done run"
        );
        assert_eq!(
            memory.remember_recent(&store, 50).await.expect("again"),
            0,
            "unchanged: nothing written"
        );
        let k = Knowledge::open_at(&paths.dir, &paths.models, &paths.cache).expect("open");
        let mut q = query("lunavo", "why is order 1042 late gelato");
        q.source_kind = Some("agent_result".into());
        let found = k.retriever.retrieve(&q).await.expect("retrieve");
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].source_kind, "agent_result");
        assert_eq!(found[0].source, format!("run #{}", done.id.0));
        assert!(
            found[0].text.contains("print partner in Latvia"),
            "{found:?}"
        );
        assert!(found[0].title.starts_with("cassie: find why"), "{found:?}");
        let warehouse = k
            .retriever
            .retrieve(&query("lunavo", "warehouse unreachable"))
            .await
            .expect("retrieve");
        assert!(
            warehouse.iter().all(|p| p.source_kind != "agent_result"),
            "a failed run is not remembered: {warehouse:?}"
        );
        let other = k
            .retriever
            .retrieve(&query("monarch", "order 1042 gelato"))
            .await
            .expect("retrieve");
        assert!(other.is_empty(), "{other:?}");
    }

    #[test]
    fn rag_settings_are_checked_and_the_api_key_never_printed() {
        let file = |toml_text: &str| -> RagFile { toml::from_str(toml_text).expect("toml") };
        let s = settings(&RagFile::default()).expect("default");
        assert!(matches!(s.store, StoreChoice::Edge));
        assert!(matches!(s.embedder, EmbedderChoice::Local));
        let s = settings(&file(
            "store = \"qdrant\"\nqdrant_url = \"http://127.0.0.1:6334\"\n",
        ))
        .expect("qdrant");
        let StoreChoice::Qdrant(server) = &s.store else {
            panic!("{s:?}");
        };
        assert_eq!(server.collection, "krake");
        let shown = format!(
            "{:?}",
            ServerConfig {
                api_key: Some("s3cret".into()),
                ..server.clone()
            }
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        for (bad, says) in [
            ("store = \"qdrant\"\n", "qdrant_url"),
            ("store = \"pinecone\"\n", "`edge` or `qdrant`"),
            (
                "store = \"qdrant\"\nqdrant_url = \"127.0.0.1:6334\"\n",
                "http://",
            ),
            ("embedder = \"openai\"\n", "dimensions"),
            ("embedder = \"bert\"\n", "`local` or `openai`"),
        ] {
            let e = format!("{:#}", settings(&file(bad)).expect_err(bad));
            assert!(e.contains(says), "{bad}: {e}");
        }
        let s = settings(&file(
            "embedder = \"openai\"\n[openai]\nbase_url = \"http://127.0.0.1:9/v1\"\n\
             model = \"m\"\ndimensions = 8\n",
        ))
        .expect("openai");
        let EmbedderChoice::OpenAi(c) = &s.embedder else {
            panic!("{s:?}");
        };
        assert_eq!(c.dimensions, Some(8));
        assert_eq!(
            OpenAiEmbedder::new(c, |v| std::env::var(v).ok())
                .expect("embedder")
                .id(),
            "openai:m:8"
        );
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
        let on_demand = OnDemandKnowledge {
            paths: KnowledgePaths {
                dir: dir.path().join("kb"),
                models: dir.path().join("no-models"),
                cache: dir.path().join("cache"),
            },
            rag: RagSettings::default(),
        };
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
