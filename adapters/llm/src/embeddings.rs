//! OpenAI-compatible embeddings: `POST {base_url}/embeddings` with async-openai's
//! `CreateEmbeddingRequest`, answers read as its `CreateEmbeddingResponse` (`data[].embedding`
//! by `index`, `usage`). 429, 408, 5xx and connection failures are retried with backoff
//! (honouring `retry-after-ms` / `retry-after`); other statuses fail at once. As for chat, the
//! HTTP exchange is done with reqwest so a 429's headers can be read. [`OpenAiEmbedder`] is
//! the client as core's `Embedder` port.

use crate::wire::refusal;
use async_openai::types::embeddings::{
    CreateEmbeddingRequest, CreateEmbeddingResponse, EmbeddingInput,
};
use krake_core::knowledge::embed::{EmbedError, Embedder, normalise};
use krake_core::secret::Secret;
use serde::Deserialize;
use std::time::Duration;

/// `[rag.openai]`: where and how to embed.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddingsConfig {
    /// The API base, up to and including `/v1`.
    pub base_url: String,
    /// The model, e.g. `text-embedding-3-small`.
    pub model: String,
    /// The vectors' length; sent as `dimensions` (text-embedding-3 shortens to it) and checked
    /// on every answer.
    pub dimensions: Option<u32>,
    /// The environment variable holding the API key; none for local servers.
    pub api_key_env: Option<String>,
    /// Texts per request.
    pub batch_size: usize,
    /// Seconds one HTTP call may take.
    pub timeout_secs: f64,
    /// Retries after the first try (429, 408, 5xx, timeouts, connection errors).
    pub max_retries: u32,
    /// The first backoff, in milliseconds; it doubles per retry, with full jitter.
    pub backoff_base_ms: u64,
    /// The longest wait before a retry, in milliseconds.
    pub backoff_max_ms: u64,
}

impl Default for EmbeddingsConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.openai.com/v1".to_owned(),
            model: "text-embedding-3-small".to_owned(),
            dimensions: None,
            api_key_env: None,
            batch_size: 64,
            timeout_secs: 60.0,
            max_retries: 3,
            backoff_base_ms: 500,
            backoff_max_ms: 30_000,
        }
    }
}

/// An embeddings failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmbeddingsError {
    /// The configuration is incomplete or wrong.
    #[error("embeddings configuration: {0}")]
    Config(String),
    /// The server kept failing (or could not be reached) through every retry.
    #[error("the embeddings server is unavailable: {0}")]
    Unavailable(String),
    /// The server refused the request (4xx other than 408/429).
    #[error("the embeddings server refused the request: {0}")]
    Rejected(String),
    /// The answer is not what was asked for.
    #[error("the embeddings server's answer is malformed: {0}")]
    Malformed(String),
}

enum Attempt {
    Retry {
        why: String,
        after: Option<Duration>,
    },
    Fatal(EmbeddingsError),
}

/// An OpenAI-compatible embeddings client.
pub struct OpenAiEmbeddings {
    config: EmbeddingsConfig,
    key: Option<Secret>,
    http: reqwest::Client,
}

impl std::fmt::Debug for OpenAiEmbeddings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiEmbeddings")
            .field("base_url", &self.config.base_url)
            .field("model", &self.config.model)
            .finish_non_exhaustive()
    }
}

impl OpenAiEmbeddings {
    /// A client from config, reading the API key with `env` (`std::env::var` in production).
    pub fn new(
        config: &EmbeddingsConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, EmbeddingsError> {
        if !(config.base_url.starts_with("http://") || config.base_url.starts_with("https://")) {
            return Err(EmbeddingsError::Config(format!(
                "base_url `{}` must start with http:// or https://",
                config.base_url
            )));
        }
        if config.model.trim().is_empty() {
            return Err(EmbeddingsError::Config("model is empty".to_owned()));
        }
        if !(config.timeout_secs.is_finite() && config.timeout_secs > 0.0) {
            return Err(EmbeddingsError::Config(
                "timeout_secs must be a positive number of seconds".to_owned(),
            ));
        }
        let key = match &config.api_key_env {
            Some(var) => Some(Secret::new(env(var).filter(|k| !k.is_empty()).ok_or_else(
                || {
                    EmbeddingsError::Config(format!(
                        "the API key is read from `{var}`, which is not set; export it or \
                             remove api_key_env"
                    ))
                },
            )?)),
            None => None,
        };
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| EmbeddingsError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            config: config.clone(),
            key,
            http,
        })
    }

    /// The model.
    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// The configured vector length, if any.
    pub fn dimensions(&self) -> Option<u32> {
        self.config.dimensions
    }

    fn backoff(&self, retry: u32) -> Duration {
        crate::wire::backoff(
            self.config.backoff_base_ms,
            self.config.backoff_max_ms,
            retry,
        )
    }

    /// One vector per text, in order (batched), with the prompt tokens the server counted.
    pub async fn embed(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, u64), EmbeddingsError> {
        let mut out = Vec::with_capacity(texts.len());
        let mut tokens = 0u64;
        for batch in texts.chunks(self.config.batch_size.max(1)) {
            let (vectors, used) = self.embed_batch(batch).await?;
            out.extend(vectors);
            tokens += used;
        }
        Ok((out, tokens))
    }

    async fn embed_batch(&self, texts: &[String]) -> Result<(Vec<Vec<f32>>, u64), EmbeddingsError> {
        let body = CreateEmbeddingRequest {
            model: self.config.model.clone(),
            input: EmbeddingInput::StringArray(texts.to_vec()),
            encoding_format: None,
            user: None,
            dimensions: self.config.dimensions,
        };
        let timeout = Duration::from_secs_f64(self.config.timeout_secs);
        let max_wait = Duration::from_millis(self.config.backoff_max_ms);
        let mut last = String::new();
        let mut tries = 0;
        for attempt in 0..=self.config.max_retries {
            tries = attempt + 1;
            let outcome = match tokio::time::timeout(timeout, self.call(&body)).await {
                Ok(r) => r,
                Err(_) => Err(Attempt::Retry {
                    why: format!("no answer within {:.1}s", self.config.timeout_secs),
                    after: None,
                }),
            };
            match outcome {
                Ok(r) => return self.check(r, texts.len()),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry { why, after }) => {
                    tracing::warn!(attempt, %why, "embeddings call failed; retrying");
                    last = why;
                    if attempt == self.config.max_retries {
                        break;
                    }
                    let wait = match after {
                        Some(a) if a > max_wait => {
                            last = format!("{last} (asked to wait {}s)", a.as_secs());
                            break;
                        }
                        Some(a) => a,
                        None => self.backoff(attempt),
                    };
                    tokio::time::sleep(wait).await;
                }
            }
        }
        Err(EmbeddingsError::Unavailable(format!(
            "{}: {last} (after {tries} tries)",
            self.config.base_url
        )))
    }

    async fn call(
        &self,
        body: &CreateEmbeddingRequest,
    ) -> Result<CreateEmbeddingResponse, Attempt> {
        let url = format!("{}/embeddings", self.config.base_url.trim_end_matches('/'));
        let mut req = self.http.post(&url).json(body);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k.expose());
        }
        let resp = req.send().await.map_err(|e| Attempt::Retry {
            why: format!("cannot reach {url}: {}", e.without_url()),
            after: None,
        })?;
        if !resp.status().is_success() {
            let (why, after, retry) = refusal(resp).await;
            return if retry {
                Err(Attempt::Retry { why, after })
            } else {
                Err(Attempt::Fatal(EmbeddingsError::Rejected(why)))
            };
        }
        let bytes = resp.bytes().await.map_err(|e| Attempt::Retry {
            why: format!("the answer broke off: {}", e.without_url()),
            after: None,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Attempt::Fatal(EmbeddingsError::Malformed(format!(
                "not an embeddings list ({e}): {}",
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(200)
                    .collect::<String>()
            )))
        })
    }

    fn check(
        &self,
        mut r: CreateEmbeddingResponse,
        expected: usize,
    ) -> Result<(Vec<Vec<f32>>, u64), EmbeddingsError> {
        r.data.sort_by_key(|e| e.index);
        let indexes: Vec<usize> = r.data.iter().map(|e| e.index as usize).collect();
        if indexes != (0..expected).collect::<Vec<_>>() {
            return Err(EmbeddingsError::Malformed(format!(
                "{expected} texts sent, embeddings for indexes {indexes:?} received"
            )));
        }
        let want = self
            .config
            .dimensions
            .map(|d| d as usize)
            .or_else(|| r.data.first().map(|e| e.embedding.len()))
            .unwrap_or(0);
        if let Some(bad) = r
            .data
            .iter()
            .find(|e| e.embedding.len() != want || e.embedding.is_empty())
        {
            return Err(EmbeddingsError::Malformed(format!(
                "an embedding of {} dimensions, expected {want} (check rag.openai.dimensions \
                 against model `{}`)",
                bad.embedding.len(),
                self.config.model
            )));
        }
        Ok((
            r.data.into_iter().map(|e| e.embedding).collect(),
            u64::from(r.usage.prompt_tokens),
        ))
    }
}

/// OpenAI-compatible embeddings as core's [`Embedder`] port (the knowledge base's dense
/// vectors), normalised so cosine and dot product agree. Its id names the model and the
/// vector length, so changing either re-embeds everything.
pub struct OpenAiEmbedder {
    client: OpenAiEmbeddings,
    id: String,
    dimensions: usize,
}

impl std::fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("id", &self.id)
            .finish()
    }
}

impl OpenAiEmbedder {
    /// The embedder `config` describes (its API key read with `env`); `dimensions` is
    /// required, as the store is made for it.
    pub fn new(
        config: &EmbeddingsConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, EmbeddingsError> {
        let dimensions = config
            .dimensions
            .filter(|d| *d > 0)
            .ok_or_else(|| EmbeddingsError::Config("dimensions is required".to_owned()))?;
        let client = OpenAiEmbeddings::new(config, env)?;
        Ok(Self {
            id: format!("openai:{}:{dimensions}", config.model),
            dimensions: dimensions as usize,
            client,
        })
    }
}

#[async_trait::async_trait]
impl Embedder for OpenAiEmbedder {
    fn id(&self) -> &str {
        &self.id
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let (mut vectors, _tokens) = self
            .client
            .embed(texts)
            .await
            .map_err(|e| EmbedError::Run(e.to_string()))?;
        vectors.iter_mut().for_each(|v| normalise(v));
        Ok(vectors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedders_id_names_model_and_length_and_the_length_is_required() {
        let config = EmbeddingsConfig {
            base_url: "http://127.0.0.1:9/v1".to_owned(),
            model: "m".to_owned(),
            dimensions: Some(8),
            ..EmbeddingsConfig::default()
        };
        let e = OpenAiEmbedder::new(&config, |_| None).expect("embedder");
        assert_eq!((e.id(), e.dimensions()), ("openai:m:8", 8));
        for dimensions in [None, Some(0)] {
            let err = OpenAiEmbedder::new(
                &EmbeddingsConfig {
                    dimensions,
                    ..config.clone()
                },
                |_| None,
            )
            .expect_err("no length");
            assert!(err.to_string().contains("dimensions"), "{err}");
        }
    }
}
