//! A local fake of an OpenAI-compatible embeddings server (`POST /v1/embeddings`), on
//! 127.0.0.1 port 0.
//!
//! It speaks the real protocol: the request's `model`, `input` (a string or an array of
//! strings) and optional `dimensions`; the answer `{"object":"list","data":[{"object":
//! "embedding","index":i,"embedding":[…]}],"model":…,"usage":{"prompt_tokens","total_tokens"}}`
//! (here in reverse index order, as nothing promises the order). Vectors are word hashes
//! (similar texts, similar vectors). Errors are `{"error":{"message","type","param","code"}}`
//! with their status; 429s carry `retry-after-ms` and `retry-after`. Scripted failures are
//! served first, then every request succeeds.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// A scripted failure.
#[derive(Debug, Clone, Copy)]
pub enum Failure {
    /// 429 asking to retry after this many milliseconds.
    RateLimited(u64),
    /// This HTTP status with an OpenAI-style error body.
    Status(u16),
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The JSON body.
    pub body: Value,
    /// The `authorization` header.
    pub authorization: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    failures: VecDeque<Failure>,
    always: Option<u16>,
    seen: Vec<Seen>,
}

/// A running fake.
#[derive(Debug, Clone)]
pub struct FakeEmbeddings {
    /// `http://127.0.0.1:PORT/v1`, the base URL to configure.
    pub base_url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeEmbeddings {
    /// Starts the fake; it runs until the test's runtime ends.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/v1/embeddings", post(embeddings))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base_url = format!("http://{}/v1", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base_url, inner }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves these failures first, in order.
    pub fn fail_first(&self, failures: &[Failure]) {
        self.lock().failures.extend(failures.iter().copied());
    }

    /// Answers every request with this status from now on.
    pub fn fail_always(&self, status: u16) {
        self.lock().always = Some(status);
    }

    /// The requests received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }
}

/// The fake's vector for a text: lower-cased words hashed into `dims` buckets.
pub fn vector(text: &str, dims: usize) -> Vec<f32> {
    let mut v = vec![0.0f32; dims.max(1)];
    for w in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let h = w
            .to_lowercase()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
            });
        let len = v.len() as u64;
        v[(h % len) as usize] += 1.0;
    }
    v
}

fn error(status: u16, headers: &[(&str, String)]) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (kind, message) = match status {
        429 => ("requests", "Rate limit reached for requests".to_owned()),
        s if s >= 500 => ("server_error", "The server had an error".to_owned()),
        _ => (
            "invalid_request_error",
            format!("request refused ({status})"),
        ),
    };
    let mut resp = (
        code,
        axum::Json(
            json!({"error": {"message": message, "type": kind, "param": null, "code": null}}),
        ),
    )
        .into_response();
    for (k, v) in headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(v),
        ) {
            resp.headers_mut().insert(name, value);
        }
    }
    resp
}

async fn embeddings(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let body: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return error(400, &[]),
    };
    let failure = {
        let mut s = inner.lock().unwrap_or_else(|e| e.into_inner());
        s.seen.push(Seen {
            body: body.clone(),
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
        s.failures.pop_front().or(s.always.map(Failure::Status))
    };
    match failure {
        Some(Failure::RateLimited(ms)) => {
            return error(
                429,
                &[
                    ("retry-after-ms", ms.to_string()),
                    ("retry-after", (ms.div_ceil(1000)).to_string()),
                ],
            );
        }
        Some(Failure::Status(s)) => return error(s, &[]),
        None => {}
    }
    let inputs: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => return error(400, &[]),
    };
    let Some(model) = body["model"].as_str() else {
        return error(400, &[]);
    };
    if inputs.iter().any(String::is_empty) {
        return error(400, &[]);
    }
    let dims = body["dimensions"].as_u64().unwrap_or(8) as usize;
    let tokens: usize = inputs.iter().map(|t| t.split_whitespace().count()).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": vector(t, dims)}))
        .collect();
    axum::Json(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
    }))
    .into_response()
}
