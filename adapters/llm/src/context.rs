//! Each model's context window (prompt and answer together, in tokens): configured per
//! provider (`context_window`) or per model (`model_context_windows`), else read once from the
//! server where it says so:
//!
//! - llama.cpp's server: `GET /props` → `default_generation_settings.n_ctx` (the context of one
//!   slot, which is what one request gets);
//! - Ollama: `POST /api/show {"model": …}` → `num_ctx` in `parameters` when the Modelfile sets
//!   it, else Ollama's default of 2,048 tokens (never more than the model's own
//!   `*.context_length`).
//!
//! A server that says neither (OpenAI, vLLM, …) leaves the window unknown and the prompt is
//! only held to `[agent_runs] prompt_tokens`. Both probes are bounded (3 s, 64 KiB).

use krake_core::secret::Secret;
use serde_json::Value;
use std::time::Duration;

/// Ollama's context when a model does not set `num_ctx` (the server's own default).
pub const OLLAMA_DEFAULT_CONTEXT: u64 = 2048;

const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
const PROBE_MAX_BYTES: usize = 64 * 1024;

/// The server's root: the base URL without its `/v1`.
fn root(base_url: &str) -> &str {
    let b = base_url.trim_end_matches('/');
    b.strip_suffix("/v1").unwrap_or(b)
}

/// Asks the server behind `base_url` for `model`'s context window.
pub(crate) async fn probe(
    http: &reqwest::Client,
    base_url: &str,
    key: Option<&Secret>,
    model: &str,
) -> Option<u64> {
    let root = root(base_url);
    let auth = |r: reqwest::RequestBuilder| match key {
        Some(k) => r.bearer_auth(k.expose()),
        None => r,
    };
    if let Some(props) = fetch(auth(http.get(format!("{root}/props")))).await
        && let Some(n) = llama_cpp_context(&props)
    {
        return Some(n);
    }
    let show = auth(
        http.post(format!("{root}/api/show"))
            .json(&serde_json::json!({"model": model})),
    );
    fetch(show).await.and_then(|v| ollama_context(&v))
}

async fn fetch(req: reqwest::RequestBuilder) -> Option<Value> {
    let resp = tokio::time::timeout(PROBE_TIMEOUT, req.send())
        .await
        .ok()?
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    if resp
        .content_length()
        .is_some_and(|n| n > PROBE_MAX_BYTES as u64)
    {
        return None;
    }
    let bytes = tokio::time::timeout(PROBE_TIMEOUT, resp.bytes())
        .await
        .ok()?
        .ok()?;
    if bytes.len() > PROBE_MAX_BYTES {
        return None;
    }
    serde_json::from_slice(&bytes).ok()
}

/// `n_ctx` from llama.cpp's `/props`.
pub(crate) fn llama_cpp_context(props: &Value) -> Option<u64> {
    props["default_generation_settings"]["n_ctx"]
        .as_u64()
        .or_else(|| props["n_ctx"].as_u64())
        .filter(|n| *n > 0)
}

/// The context from Ollama's `/api/show`: `num_ctx` if set, else Ollama's default, never
/// more than the model's trained length.
pub(crate) fn ollama_context(show: &Value) -> Option<u64> {
    let trained = show["model_info"].as_object().and_then(|info| {
        info.iter()
            .find(|(k, _)| k.ends_with(".context_length"))
            .and_then(|(_, v)| v.as_u64())
    });
    let set = show["parameters"].as_str().and_then(|p| {
        p.lines().find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("num_ctx"))
                .then(|| w.next().and_then(|n| n.parse::<u64>().ok()))
                .flatten()
        })
    });
    if trained.is_none() && set.is_none() {
        // Not an Ollama answer.
        return None;
    }
    let n = set.unwrap_or(OLLAMA_DEFAULT_CONTEXT);
    Some(trained.map_or(n, |t| n.min(t))).filter(|n| *n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn windows_are_read_from_what_each_server_says() {
        assert_eq!(root("http://h:8080/v1/"), "http://h:8080");
        assert_eq!(root("http://h:11434"), "http://h:11434");
        let props = json!({"default_generation_settings": {"n_ctx": 2048, "n_predict": -1}, "total_slots": 1});
        assert_eq!(llama_cpp_context(&props), Some(2048));
        assert_eq!(llama_cpp_context(&json!({"error": "nope"})), None);
        let show = json!({
            "parameters": "stop \"<|im_end|>\"\nnum_ctx 8192\ntemperature 0.7",
            "model_info": {"qwen2.context_length": 32768, "general.architecture": "qwen2"}
        });
        assert_eq!(ollama_context(&show), Some(8192));
        let unset = json!({"parameters": "stop \"<|im_end|>\"", "model_info": {"llama.context_length": 131072}});
        assert_eq!(ollama_context(&unset), Some(OLLAMA_DEFAULT_CONTEXT));
        let tiny = json!({"model_info": {"phi.context_length": 1024}});
        assert_eq!(ollama_context(&tiny), Some(1024));
        assert_eq!(ollama_context(&json!({"object": "list"})), None);
    }
}
