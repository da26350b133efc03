//! A local fake of an OpenAI-compatible chat completions server (`POST /v1/chat/completions`),
//! scripted per test, on 127.0.0.1 port 0.
//!
//! It speaks the real protocol: `chat.completion` JSON objects with `choices[].message`
//! (`content`, `tool_calls[]` of `{"id","type":"function","function":{"name","arguments"}}`),
//! `finish_reason` (`stop`, `tool_calls`, `length`), `usage` (`prompt_tokens`,
//! `completion_tokens`, `total_tokens`); with `"stream": true`, `chat.completion.chunk` SSE
//! events whose tool-call arguments arrive in fragments by `index`, a final chunk with empty
//! `choices` and the usage (when `stream_options.include_usage`), then `data: [DONE]`. Errors
//! are `{"error":{"message","type","param","code"}}` with their status, and 429s carry
//! `retry-after` / `retry-after-ms` headers.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A completion with text.
    Text(String),
    /// A completion calling tools: (name, arguments JSON text).
    Tools(Vec<(String, String)>),
    /// An error status with an OpenAI-style error body and extra headers.
    Status {
        /// The HTTP status.
        code: u16,
        /// Headers such as `retry-after`.
        headers: Vec<(String, String)>,
    },
    /// Wait this long, then give the inner answer (a slow server; a client timeout cuts it).
    Slow(Duration, Box<Answer>),
    /// A 200 whose body is not a chat completion.
    Garbage,
}

impl Answer {
    /// A `reply` tool call with text and confidence.
    pub fn reply(text: &str, confidence: f64) -> Self {
        Answer::Tools(vec![(
            "reply".into(),
            json!({"text": text, "confidence": confidence}).to_string(),
        )])
    }

    /// A 429 asking to retry after `ms` milliseconds (`retry-after-ms`, and `retry-after` in
    /// whole seconds, as OpenAI sends both).
    pub fn rate_limited(ms: u64) -> Self {
        Answer::Status {
            code: 429,
            headers: vec![
                ("retry-after-ms".into(), ms.to_string()),
                ("retry-after".into(), ms.div_ceil(1000).to_string()),
            ],
        }
    }
}

struct Inner {
    script: Mutex<VecDeque<Answer>>,
    requests: Mutex<Vec<Value>>,
    keep_requests: bool,
    default_delay: Duration,
    usage: (u64, u64),
    served: AtomicUsize,
    server: Server,
    /// With `"stream": true`, the pause between two SSE events (zero: all at once).
    stream_gap: Mutex<Duration>,
}

/// Which server the fake also imitates beyond the OpenAI API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// The OpenAI API only (no way to ask for a context window).
    OpenAi,
    /// llama.cpp's server with a context of `n_ctx` tokens per slot: `GET /props` says so,
    /// and a request whose prompt plus `max_tokens` exceeds it gets llama.cpp's 400
    /// (`exceed_context_size_error`). Prompt tokens are counted as characters / 4.
    LlamaCpp {
        /// Tokens per slot.
        n_ctx: u64,
    },
    /// Ollama: `POST /api/show` gives the model's trained `context_length` and, if set, the
    /// Modelfile's `num_ctx`.
    Ollama {
        /// `num_ctx` in the Modelfile's parameters, if it sets one.
        num_ctx: Option<u64>,
        /// The model's trained context length.
        trained: u64,
    },
}

/// The fake server.
#[derive(Clone)]
pub struct FakeOpenAi {
    /// The API base to configure (`http://127.0.0.1:PORT/v1`).
    pub base_url: String,
    inner: Arc<Inner>,
}

impl FakeOpenAi {
    /// Starts the fake with a script; when the script runs out it answers `reply("Done.", 0.9)`.
    pub async fn start(script: Vec<Answer>) -> Self {
        Self::start_with(script, Duration::ZERO, true).await
    }

    /// Starts the fake taking `delay` for every unscripted answer, optionally forgetting
    /// requests (benchmarks).
    pub async fn start_with(script: Vec<Answer>, delay: Duration, keep_requests: bool) -> Self {
        Self::start_as(script, delay, keep_requests, Server::OpenAi).await
    }

    /// Starts the fake imitating `server` too.
    pub async fn start_as(
        script: Vec<Answer>,
        delay: Duration,
        keep_requests: bool,
        server: Server,
    ) -> Self {
        let inner = Arc::new(Inner {
            script: Mutex::new(script.into()),
            requests: Mutex::new(Vec::new()),
            keep_requests,
            default_delay: delay,
            usage: (120, 30),
            served: AtomicUsize::new(0),
            server,
            stream_gap: Mutex::new(Duration::ZERO),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(completions))
            .route("/props", axum::routing::get(props))
            .route("/api/show", post(show))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeOpenAi {
            base_url: format!("http://{addr}/v1"),
            inner,
        }
    }

    /// Streams every later answer one SSE event at a time, `gap` apart (a model writing).
    pub fn stream_slowly(&self, gap: Duration) {
        *self.inner.stream_gap.lock().unwrap() = gap;
    }

    /// Adds answers to the script.
    pub fn push(&self, answers: Vec<Answer>) {
        self.inner.script.lock().unwrap().extend(answers);
    }

    /// The request bodies received, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.inner.requests.lock().unwrap().clone()
    }

    /// How many requests were answered (any status).
    pub fn served(&self) -> usize {
        self.inner.served.load(Ordering::SeqCst)
    }
}

async fn completions(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                400,
                &format!("invalid JSON: {e}"),
                "invalid_request_error",
                &[],
            );
        }
    };
    if req["model"].as_str().is_none() || !req["messages"].is_array() {
        return error(
            400,
            "model and messages are required",
            "invalid_request_error",
            &[],
        );
    }
    let _auth = headers.get("authorization").cloned();
    if let Server::LlamaCpp { n_ctx } = inner.server {
        let chars: usize = req["messages"]
            .as_array()
            .map(|m| m.iter().map(|x| x.to_string().len()).sum())
            .unwrap_or(0)
            + req["tools"].to_string().len();
        let n_prompt = (chars / 4) as u64;
        let predict = req["max_tokens"].as_u64().unwrap_or(0);
        if n_prompt + predict > n_ctx {
            inner.served.fetch_add(1, Ordering::SeqCst);
            // llama.cpp's own words and fields.
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": {"code": 400,
                    "message": "the request exceeds the available context size, try increasing it",
                    "type": "exceed_context_size_error",
                    "n_prompt_tokens": n_prompt, "n_ctx": n_ctx}})),
            )
                .into_response();
        }
    }
    if inner.keep_requests {
        inner.requests.lock().unwrap().push(req.clone());
    }
    let next = inner.script.lock().unwrap().pop_front();
    let mut answer = match next {
        Some(a) => a,
        None => {
            if !inner.default_delay.is_zero() {
                tokio::time::sleep(inner.default_delay).await;
            }
            Answer::reply("Done.", 0.9)
        }
    };
    while let Answer::Slow(d, inner_answer) = answer {
        tokio::time::sleep(d).await;
        answer = *inner_answer;
    }
    inner.served.fetch_add(1, Ordering::SeqCst);
    let model = req["model"].as_str().unwrap_or("fake").to_owned();
    let stream = req["stream"].as_bool().unwrap_or(false);
    let include_usage = req["stream_options"]["include_usage"]
        .as_bool()
        .unwrap_or(false);
    let (content, calls) = match answer {
        Answer::Text(t) => (Some(t), Vec::new()),
        Answer::Tools(c) => (None, c),
        Answer::Status { code, headers } => {
            let (msg, kind) = match code {
                429 => ("Rate limit reached for requests", "rate_limit_error"),
                500..=599 => (
                    "The server had an error while processing your request",
                    "server_error",
                ),
                401 => ("Incorrect API key provided", "invalid_request_error"),
                _ => ("Bad request", "invalid_request_error"),
            };
            return error(code, msg, kind, &headers);
        }
        Answer::Garbage => {
            return (
                StatusCode::OK,
                [("content-type", "application/json")],
                "{\"hello\": 1}",
            )
                .into_response();
        }
        Answer::Slow(..) => unreachable!("unwrapped above"),
    };
    let (prompt, completion) = inner.usage;
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion});
    let finish = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    if !stream {
        let tool_calls: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, (name, args))| {
                json!({"id": format!("call_{i}"), "type": "function",
                       "function": {"name": name, "arguments": args}})
            })
            .collect();
        let mut message = json!({"role": "assistant", "content": content, "refusal": null});
        if !tool_calls.is_empty() {
            message["tool_calls"] = Value::Array(tool_calls);
        }
        return axum::Json(json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": 1_764_000_000,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
            "usage": usage,
        }))
        .into_response();
    }
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_764_000_000,
               "model": model, "system_fingerprint": "fp_fake",
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    if let Some(t) = content {
        // Text in small pieces, as servers stream it.
        let chars: Vec<char> = t.chars().collect();
        for piece in chars.chunks(4) {
            events.push(chunk(
                json!({"content": piece.iter().collect::<String>()}),
                Value::Null,
            ));
        }
    }
    for (i, (name, args)) in calls.iter().enumerate() {
        events.push(chunk(
            json!({"tool_calls": [{"index": i, "id": format!("call_{i}"), "type": "function",
                                   "function": {"name": name, "arguments": ""}}]}),
            Value::Null,
        ));
        let chars: Vec<char> = args.chars().collect();
        for piece in chars.chunks(7) {
            events.push(chunk(
                json!({"tool_calls": [{"index": i, "function": {"arguments": piece.iter().collect::<String>()}}]}),
                Value::Null,
            ));
        }
    }
    events.push(chunk(json!({}), json!(finish)));
    let mut body = String::new();
    for e in events {
        body.push_str(&format!("data: {e}\n\n"));
    }
    if include_usage {
        body.push_str(&format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1_764_000_000,
                   "model": model, "choices": [], "usage": usage})
        ));
    }
    body.push_str("data: [DONE]\n\n");
    let gap = *inner.stream_gap.lock().unwrap();
    if !gap.is_zero() {
        // One event at a time, as a model writes.
        let events: Vec<String> = body.split_inclusive("\n\n").map(str::to_owned).collect();
        let stream = futures_util::stream::unfold(events.into_iter(), move |mut rest| async move {
            let next = rest.next()?;
            tokio::time::sleep(gap).await;
            Some((Ok::<_, std::io::Error>(next), rest))
        });
        return Response::builder()
            .status(200)
            .header("content-type", "text/event-stream")
            .header("cache-control", "no-cache")
            .body(Body::from_stream(stream))
            .unwrap();
    }
    // Sent in two parts so the client must join an event cut in the middle.
    let (a, b) = body.split_at(body.len() / 2);
    let parts: Vec<Result<String, std::io::Error>> = vec![Ok(a.to_owned()), Ok(b.to_owned())];
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(Body::from_stream(futures_util::stream::iter(parts)))
        .unwrap()
}

fn error(code: u16, message: &str, kind: &str, headers: &[(String, String)]) -> Response {
    let mut r = (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(
            json!({"error": {"message": message, "type": kind, "param": null, "code": null}}),
        ),
    )
        .into_response();
    for (k, v) in headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(v),
        ) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

/// llama.cpp's `GET /props` (trimmed to the fields clients read).
async fn props(State(inner): State<Arc<Inner>>) -> Response {
    match inner.server {
        Server::LlamaCpp { n_ctx } => axum::Json(json!({
            "default_generation_settings": {"n_ctx": n_ctx, "params": {"n_predict": -1}},
            "total_slots": 1,
            "model_path": "models/qwen2.5-0.5b-instruct-q4_k_m.gguf",
            "chat_template": "{% for message in messages %}…{% endfor %}",
            "build_info": "b6000-fake"
        }))
        .into_response(),
        _ => (StatusCode::NOT_FOUND, "File Not Found").into_response(),
    }
}

/// Ollama's `POST /api/show`.
async fn show(State(inner): State<Arc<Inner>>, body: axum::body::Bytes) -> Response {
    let Server::Ollama { num_ctx, trained } = inner.server else {
        return (StatusCode::NOT_FOUND, "404 page not found").into_response();
    };
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "invalid request"})),
        )
            .into_response();
    };
    let mut parameters = "stop \"<|im_start|>\"\nstop \"<|im_end|>\"".to_owned();
    if let Some(n) = num_ctx {
        parameters.push_str(&format!("\nnum_ctx {n}"));
    }
    axum::Json(json!({
        "modelfile": format!("FROM {}", req["model"].as_str().unwrap_or("")),
        "parameters": parameters,
        "template": "{{ .Prompt }}",
        "details": {"format": "gguf", "family": "qwen2", "parameter_size": "494.03M", "quantization_level": "Q4_K_M"},
        "model_info": {"general.architecture": "qwen2", "qwen2.context_length": trained, "qwen2.embedding_length": 896},
        "capabilities": ["completion", "tools"]
    }))
    .into_response()
}
