//! `[rag]` in the config file: where the knowledge base's vectors live (embedded Qdrant under
//! the data directory by default, or a Qdrant server) and which embedder makes them (the local
//! MiniLM, or an OpenAI-compatible embeddings server), read with their `KRAKE_RAG_STORE`,
//! `KRAKE_QDRANT_URL` and `KRAKE_QDRANT_API_KEY` overrides, and written back for `krake config`.

use crate::server::ServerConfig;
use krake_core::settings::{SettingsError, env_or};
use krake_llm::embeddings::{EmbeddingsConfig, OpenAiEmbeddings};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The local embedder's vector size (the store is made for it even while the weights are
/// missing, so fetching them later needs no new store).
pub const DIMENSIONS: usize = 384;

/// The default of `[rag] sync_interval_secs`.
pub const DEFAULT_SYNC_INTERVAL_SECS: u64 = 300;

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
    /// The largest file learned from chat or an upload, in megabytes (default 20). Larger
    /// ones are refused before download where the platform says the size.
    pub max_file_mb: Option<u64>,
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
    pub sync_every: Option<Duration>,
    /// The largest file learned from chat or an upload, in bytes.
    pub max_file_bytes: u64,
}

impl Default for RagSettings {
    fn default() -> Self {
        Self {
            store: StoreChoice::Edge,
            embedder: EmbedderChoice::Local,
            sync_every: Some(Duration::from_secs(DEFAULT_SYNC_INTERVAL_SECS)),
            max_file_bytes: krake_core::knowledge::learn::DEFAULT_MAX_FILE_BYTES,
        }
    }
}

impl RagFile {
    /// Reads `[rag]` with its environment overrides.
    pub fn resolve(&self) -> Result<RagSettings, SettingsError> {
        let err = |m: String| Err(SettingsError::new(m));
        let store = match env_or("KRAKE_RAG_STORE", self.store.as_ref()).as_deref() {
            None | Some("edge") => StoreChoice::Edge,
            Some("qdrant") => {
                let Some(url) = env_or("KRAKE_QDRANT_URL", self.qdrant_url.as_ref()) else {
                    return err(
                        "rag.store is `qdrant` but no server is named: set rag.qdrant_url (or \
                         KRAKE_QDRANT_URL) to its gRPC URL, e.g. http://127.0.0.1:6334"
                            .into(),
                    );
                };
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return err(format!(
                        "rag.qdrant_url `{url}` must start with http:// or https://"
                    ));
                }
                StoreChoice::Qdrant(ServerConfig {
                    url,
                    collection: self
                        .qdrant_collection
                        .clone()
                        .filter(|c| !c.trim().is_empty())
                        .unwrap_or_else(|| "krake".to_owned()),
                    api_key: env_or("KRAKE_QDRANT_API_KEY", None),
                })
            }
            Some(other) => {
                return err(format!(
                    "rag.store must be `edge` or `qdrant`, not `{other}`"
                ));
            }
        };
        let embedder = match self.embedder.as_deref().map(str::trim) {
            None | Some("local") => EmbedderChoice::Local,
            Some("openai") => {
                if self.openai.dimensions.is_none_or(|d| d == 0) {
                    return err(
                        "rag.embedder is `openai`: set rag.openai.dimensions to the model's \
                         vector size (e.g. 1536 for text-embedding-3-small), the store is made \
                         for it"
                            .into(),
                    );
                }
                // Checked now (URL, model, key variable) so a bad config fails at start.
                if let Err(e) = OpenAiEmbeddings::new(&self.openai, |v| std::env::var(v).ok()) {
                    return err(format!("rag.openai: {e}"));
                }
                EmbedderChoice::OpenAi(self.openai.clone())
            }
            Some(other) => {
                return err(format!(
                    "rag.embedder must be `local` or `openai`, not `{other}`"
                ));
            }
        };
        let sync_every = match self
            .sync_interval_secs
            .unwrap_or(DEFAULT_SYNC_INTERVAL_SECS)
        {
            0 => None,
            secs => Some(Duration::from_secs(secs)),
        };
        let max_file_bytes = match self.max_file_mb {
            Some(0) => return err("rag.max_file_mb must be at least 1".into()),
            Some(mb) if mb > 1024 => {
                return err(format!(
                    "rag.max_file_mb is {mb}; at most 1024 (larger files go through `krake ingest`)"
                ));
            }
            Some(mb) => mb * 1024 * 1024,
            None => krake_core::knowledge::learn::DEFAULT_MAX_FILE_BYTES,
        };
        Ok(RagSettings {
            store,
            embedder,
            sync_every,
            max_file_bytes,
        })
    }

    /// The settings in effect, as they would be written in the file (the Qdrant API key is read
    /// from `KRAKE_QDRANT_API_KEY` only, so it is never written).
    pub fn effective(rag: &RagSettings) -> Self {
        let (store, qdrant_url, qdrant_collection) = match &rag.store {
            StoreChoice::Edge => ("edge", None, None),
            StoreChoice::Qdrant(s) => ("qdrant", Some(s.url.clone()), Some(s.collection.clone())),
        };
        let (embedder, openai) = match &rag.embedder {
            EmbedderChoice::Local => ("local", EmbeddingsConfig::default()),
            EmbedderChoice::OpenAi(c) => ("openai", c.clone()),
        };
        Self {
            store: Some(store.to_owned()),
            qdrant_url,
            qdrant_collection,
            embedder: Some(embedder.to_owned()),
            openai,
            sync_interval_secs: Some(rag.sync_every.map_or(0, |d| d.as_secs())),
            max_file_mb: Some(rag.max_file_bytes / (1024 * 1024)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use krake_core::knowledge::embed::Embedder;
    use krake_llm::embeddings::OpenAiEmbedder;

    fn settings(f: &RagFile) -> Result<RagSettings, SettingsError> {
        f.resolve()
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
}
