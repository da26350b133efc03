//! # krake-llm
//!
//! Krake's model access: core's [`ChatModel`] port over any OpenAI-compatible chat completions
//! server (OpenAI, Ollama, vLLM, llama.cpp server, …), chosen by base URL.
//!
//! - [`ProviderConfig`] / [`LlmConfig`]: providers in order (name, base URL, API key from an
//!   environment variable, models, prices per million tokens), timeouts and retry limits.
//! - [`OpenAiCompatible`]: the [`ChatModel`]: a per-call timeout; retries with exponential
//!   backoff and full jitter on 429, 5xx and timeouts, honouring `retry-after-ms` and
//!   `retry-after`; fail-over to the next provider; usage read from every response (JSON or
//!   the last SSE chunk with `stream_options.include_usage`); streamed tool-call fragments
//!   joined by index.
//! - Context windows per model: configured, or read once from llama.cpp's `/props` or Ollama's
//!   `/api/show` (see `context.rs`), so core can fit a prompt before the call.
//! - [`embeddings`]: OpenAI-compatible embeddings (`POST /v1/embeddings`) with the same retries.
//!
//! The wire format is async-openai's: requests are checked against its
//! `CreateChatCompletionRequest` and responses read as its `CreateChatCompletionResponse` and
//! `CreateChatCompletionStreamResponse`. The HTTP exchange itself is done here with reqwest,
//! because async-openai's client drops the response headers of an error, and a 429's
//! `retry-after` lives there.

mod context;
pub mod embeddings;
mod wire;

pub use context::OLLAMA_DEFAULT_CONTEXT;

use async_trait::async_trait;
use krake_core::model::{ChatModel, ChatRequest, ChatResponse, ModelError, OnPartial, Price};
use krake_core::secret::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// One provider as configured (`[[llm.providers]]`).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// A name for logs and the cost ledger (`openai`, `local`).
    pub name: String,
    /// The API base, up to and including `/v1` (`https://api.openai.com/v1`,
    /// `http://127.0.0.1:11434/v1` for Ollama).
    pub base_url: String,
    /// The environment variable holding the API key (`OPENAI_API_KEY`); none for local servers.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// The models it serves, the default first. A request naming another model gets the first.
    pub models: Vec<String>,
    /// Price per million input tokens, US dollars.
    #[serde(default)]
    pub input_price_per_million: f64,
    /// Price per million output tokens, US dollars.
    #[serde(default)]
    pub output_price_per_million: f64,
    /// Prices of particular models, overriding the two above.
    #[serde(default)]
    pub model_prices: BTreeMap<String, Price>,
    /// Stream responses (SSE) instead of waiting for the whole JSON.
    #[serde(default)]
    pub stream: bool,
    /// The context window of its models in tokens (prompt and answer together). Unset, it is
    /// read from the server where it says (llama.cpp `/props`, Ollama `/api/show`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
    /// Context windows of particular models, overriding `context_window`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub model_context_windows: BTreeMap<String, u64>,
}

impl ProviderConfig {
    /// The price of `model` at this provider.
    pub fn price(&self, model: &str) -> Price {
        self.model_prices.get(model).copied().unwrap_or(Price {
            input_per_million: self.input_price_per_million,
            output_per_million: self.output_price_per_million,
        })
    }
}

/// The model access settings (`[llm]`).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// Providers, tried in order: the next takes over when one keeps failing.
    pub providers: Vec<ProviderConfig>,
    /// Seconds one HTTP call may take (a slow server counts as failed and is retried).
    pub timeout_secs: f64,
    /// Retries per provider after the first try (429, 5xx, timeouts, connection errors).
    pub max_retries: u32,
    /// The first backoff, in milliseconds; it doubles per retry, with full jitter.
    pub backoff_base_ms: u64,
    /// The longest wait before a retry, in milliseconds; a longer `retry-after` moves on to the
    /// next provider instead.
    pub backoff_max_ms: u64,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            providers: Vec::new(),
            timeout_secs: 60.0,
            max_retries: 3,
            backoff_base_ms: 500,
            backoff_max_ms: 30_000,
        }
    }
}

/// Why the model access cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmConfigError {
    /// A provider names no model.
    #[error("provider `{0}` lists no models; add `models = [\"…\"]`")]
    NoModels(String),
    /// The API key variable is not set.
    #[error(
        "provider `{provider}` reads its API key from `{var}`, which is not set; export it or remove api_key_env"
    )]
    MissingKey {
        /// The provider.
        provider: String,
        /// The variable.
        var: String,
    },
    /// The base URL is not an http(s) URL.
    #[error("provider `{0}` has base_url `{1}`; it must start with http:// or https://")]
    BadUrl(String, String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Http(String),
    /// A negative, infinite or zero timeout.
    #[error("llm.timeout_secs must be a positive number of seconds")]
    Timeout,
}

struct Provider {
    config: ProviderConfig,
    key: Option<Secret>,
}

/// The [`ChatModel`] over OpenAI-compatible providers.
pub struct OpenAiCompatible {
    providers: Vec<Provider>,
    http: reqwest::Client,
    config: LlmConfig,
    /// Context windows read from the servers, by (provider, model); `None` when it did not say.
    windows: tokio::sync::Mutex<BTreeMap<(usize, String), Option<u64>>>,
}

impl std::fmt::Debug for OpenAiCompatible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiCompatible")
            .field(
                "providers",
                &self
                    .providers
                    .iter()
                    .map(|p| p.config.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// One failed HTTP attempt.
#[derive(Debug)]
pub(crate) enum Attempt {
    /// Worth retrying (429, 5xx, timeout, connection); the server may say when.
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// Not worth retrying at this provider.
    Fatal(ModelError),
}

impl OpenAiCompatible {
    /// Builds the model access from config, reading API keys from the environment. `None`
    /// when no provider is configured (offline mode).
    pub fn from_config(config: &LlmConfig) -> Result<Option<Self>, LlmConfigError> {
        Self::with_env(config, |v| std::env::var(v).ok())
    }

    /// Like [`from_config`](Self::from_config) with the environment given (tests).
    pub fn with_env(
        config: &LlmConfig,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, LlmConfigError> {
        if config.providers.is_empty() {
            return Ok(None);
        }
        if !(config.timeout_secs.is_finite() && config.timeout_secs > 0.0) {
            return Err(LlmConfigError::Timeout);
        }
        let mut providers = Vec::new();
        for p in &config.providers {
            if p.models.is_empty() {
                return Err(LlmConfigError::NoModels(p.name.clone()));
            }
            if !(p.base_url.starts_with("http://") || p.base_url.starts_with("https://")) {
                return Err(LlmConfigError::BadUrl(p.name.clone(), p.base_url.clone()));
            }
            let key = match &p.api_key_env {
                Some(var) => Some(Secret::new(env(var).filter(|k| !k.is_empty()).ok_or_else(
                    || LlmConfigError::MissingKey {
                        provider: p.name.clone(),
                        var: var.clone(),
                    },
                )?)),
                None => None,
            };
            providers.push(Provider {
                config: p.clone(),
                key,
            });
        }
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| LlmConfigError::Http(e.to_string()))?;
        Ok(Some(Self {
            providers,
            http,
            config: config.clone(),
            windows: tokio::sync::Mutex::new(BTreeMap::new()),
        }))
    }

    fn backoff(&self, retry: u32) -> Duration {
        wire::backoff(
            self.config.backoff_base_ms,
            self.config.backoff_max_ms,
            retry,
        )
    }

    /// One completion over the providers in order (fail-over), streaming to `on` if given.
    #[tracing::instrument(skip_all, fields(model = request.model.as_deref().unwrap_or("default")))]
    async fn complete(
        &self,
        request: &ChatRequest,
        on: Option<OnPartial<'_>>,
    ) -> Result<ChatResponse, ModelError> {
        let mut errors = Vec::new();
        let mut any_retryable = false;
        for p in &self.providers {
            match self.try_provider(p, request, on).await {
                Ok(r) => return Ok(r),
                Err((e, retryable)) => {
                    tracing::warn!(provider = %p.config.name, error = %e, "provider failed; trying the next");
                    any_retryable |= retryable;
                    errors.push((p.config.name.clone(), e));
                }
            }
        }
        // The kind's words once: "the model provider refused the request: 400 …", and with
        // several providers each one's name and what it said.
        let summary = match errors.as_slice() {
            [(_, only)] => only.detail().to_owned(),
            many => many
                .iter()
                .map(|(name, e)| format!("{name}: {}", e.detail()))
                .collect::<Vec<_>>()
                .join("; "),
        };
        Err(match errors.pop() {
            None => ModelError::NotConfigured,
            Some(_) if any_retryable => ModelError::Unavailable(summary),
            Some((_, ModelError::Malformed(_))) => ModelError::Malformed(summary),
            Some(_) => ModelError::Rejected(summary),
        })
    }

    /// The model provider `p` serves for a request naming `model`.
    fn model_at(p: &Provider, model: Option<&str>) -> String {
        match model {
            Some(m) if p.config.models.iter().any(|x| x == m) => m.to_owned(),
            _ => p.config.models.first().cloned().unwrap_or_default(),
        }
    }

    /// Provider `i`'s window for `model`: configured, or read from the server once.
    async fn window_at(&self, i: usize, model: &str) -> Option<u64> {
        let p = &self.providers[i];
        if let Some(n) = p.config.model_context_windows.get(model) {
            return Some(*n);
        }
        if let Some(n) = p.config.context_window {
            return Some(n);
        }
        let key = (i, model.to_owned());
        let mut cache = self.windows.lock().await;
        if let Some(known) = cache.get(&key) {
            return *known;
        }
        let found = context::probe(&self.http, &p.config.base_url, p.key.as_ref(), model).await;
        tracing::info!(provider = %p.config.name, model, window = ?found, "context window");
        cache.insert(key, found);
        found
    }

    async fn try_provider(
        &self,
        p: &Provider,
        request: &ChatRequest,
        on: Option<OnPartial<'_>>,
    ) -> Result<ChatResponse, (ModelError, bool)> {
        let model = Self::model_at(p, request.model.as_deref());
        let body = wire::request_body(request, &model, p.config.stream)
            .map_err(|e| (ModelError::Rejected(e), false))?;
        let timeout = Duration::from_secs_f64(self.config.timeout_secs);
        let max_wait = Duration::from_millis(self.config.backoff_max_ms);
        let mut last = String::new();
        for attempt in 0..=self.config.max_retries {
            let call = wire::call(
                &self.http,
                &p.config.base_url,
                p.key.as_ref(),
                &body,
                p.config.stream,
                on,
            );
            let outcome = match tokio::time::timeout(timeout, call).await {
                Ok(r) => r,
                Err(_) => Err(Attempt::Retry {
                    why: format!("no answer within {:.1}s", self.config.timeout_secs),
                    after: None,
                }),
            };
            match outcome {
                Ok(mut r) => {
                    if r.usage.input_tokens == 0 && r.usage.output_tokens == 0 {
                        // Some servers omit usage: charge an estimate rather than nothing.
                        r.usage.input_tokens = request.estimated_input_tokens();
                        r.usage.output_tokens = krake_core::model::estimate_tokens(
                            &(r.content.clone().unwrap_or_default()
                                + &r.tool_calls
                                    .iter()
                                    .map(|c| c.arguments.as_str())
                                    .collect::<String>()),
                        );
                        tracing::debug!(provider = %p.config.name, "no usage in the response; charged an estimate");
                    }
                    r.provider = p.config.name.clone();
                    // The answering model's own price if it has one, else the requested one's.
                    let priced = if p.config.model_prices.contains_key(&r.model) {
                        r.model.as_str()
                    } else {
                        model.as_str()
                    };
                    r.cost_micros = p.config.price(priced).cost_micros(r.usage);
                    return Ok(r);
                }
                Err(Attempt::Fatal(e)) => return Err((e, false)),
                Err(Attempt::Retry { why, after }) => {
                    tracing::warn!(provider = %p.config.name, attempt, %why, "model call failed; retrying");
                    last = why;
                    if attempt == self.config.max_retries {
                        break;
                    }
                    let wait = match after {
                        Some(a) if a > max_wait => {
                            // The server asks for a longer pause than we wait: fail over now.
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
        Err((
            ModelError::Unavailable(format!("{}: {last}", p.config.name)),
            true,
        ))
    }
}

#[async_trait]
impl ChatModel for OpenAiCompatible {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        self.complete(request, None).await
    }

    async fn chat_streaming(
        &self,
        request: &ChatRequest,
        on: OnPartial<'_>,
    ) -> Result<ChatResponse, ModelError> {
        self.complete(request, Some(on)).await
    }

    /// Whether the provider a call goes to first streams (`stream = true`).
    fn streams(&self, _model: Option<&str>) -> bool {
        self.providers.first().is_some_and(|p| p.config.stream)
    }

    /// The smallest window among the providers a call may reach (any of them may answer it
    /// after a fail-over), counting only those that know theirs.
    async fn context_window(&self, model: Option<&str>) -> Option<u64> {
        let mut smallest: Option<u64> = None;
        for (i, p) in self.providers.iter().enumerate() {
            let m = Self::model_at(p, model);
            if let Some(n) = self.window_at(i, &m).await {
                smallest = Some(smallest.map_or(n, |s| s.min(n)));
            }
        }
        smallest
    }

    fn price(&self, model: Option<&str>) -> Price {
        let p = model
            .and_then(|m| {
                self.providers
                    .iter()
                    .find(|p| p.config.models.iter().any(|x| x == m))
            })
            .or_else(|| self.providers.first());
        match p {
            Some(p) => p
                .config
                .price(model.unwrap_or_else(|| p.config.models.first().map_or("", String::as_str))),
            None => Price::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(name: &str) -> ProviderConfig {
        ProviderConfig {
            name: name.into(),
            base_url: "http://127.0.0.1:1/v1".into(),
            api_key_env: Some("KEY".into()),
            models: vec!["m".into()],
            input_price_per_million: 1.0,
            output_price_per_million: 2.0,
            model_prices: BTreeMap::new(),
            stream: false,
            context_window: None,
            model_context_windows: BTreeMap::new(),
        }
    }

    #[test]
    fn config_errors_say_what_to_do() {
        let cfg = LlmConfig {
            providers: vec![provider("a")],
            ..LlmConfig::default()
        };
        let err = OpenAiCompatible::with_env(&cfg, |_| None).unwrap_err();
        assert!(err.to_string().contains("`KEY`"), "{err}");
        assert!(
            OpenAiCompatible::with_env(&cfg, |_| Some("sk".into()))
                .unwrap()
                .is_some()
        );
        assert!(
            OpenAiCompatible::with_env(&LlmConfig::default(), |_| None)
                .unwrap()
                .is_none()
        );
        let mut bad = provider("b");
        bad.models.clear();
        let cfg = LlmConfig {
            providers: vec![bad],
            ..LlmConfig::default()
        };
        assert!(matches!(
            OpenAiCompatible::with_env(&cfg, |_| Some("k".into())),
            Err(LlmConfigError::NoModels(_))
        ));
    }

    #[test]
    fn backoff_doubles_with_jitter_under_the_cap() {
        let cfg = LlmConfig {
            providers: vec![provider("a")],
            backoff_base_ms: 100,
            backoff_max_ms: 1000,
            ..LlmConfig::default()
        };
        let m = OpenAiCompatible::with_env(&cfg, |_| Some("k".into()))
            .unwrap()
            .unwrap();
        for _ in 0..50 {
            let b0 = m.backoff(0).as_millis();
            assert!((50..=100).contains(&b0), "{b0}");
            let b2 = m.backoff(2).as_millis();
            assert!((200..=400).contains(&b2), "{b2}");
            assert!(m.backoff(10).as_millis() <= 1000);
        }
    }
}
