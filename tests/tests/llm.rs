//! krake-llm against the local OpenAI-compatible fake: JSON and SSE, tool calls, usage and
//! cost, 429 with retry headers, 500s, slow answers and timeouts, fail-over, bad answers.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_core::model::{ChatMessage, ChatModel, ChatRequest, FinishReason, ModelError, ToolSpec};
use krake_llm::{LlmConfig, OpenAiCompatible, ProviderConfig};
use krake_tests::fake_openai::{Answer, FakeOpenAi};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn provider(name: &str, fake: &FakeOpenAi, stream: bool) -> ProviderConfig {
    ProviderConfig {
        name: name.into(),
        base_url: fake.base_url.clone(),
        api_key_env: Some("FAKE_KEY".into()),
        models: vec!["gpt-test".into()],
        input_price_per_million: 2.5,
        output_price_per_million: 10.0,
        model_prices: BTreeMap::new(),
        stream,
        context_window: None,
        model_context_windows: BTreeMap::new(),
    }
}

fn model(providers: Vec<ProviderConfig>, timeout_secs: f64, retries: u32) -> OpenAiCompatible {
    let cfg = LlmConfig {
        providers,
        timeout_secs,
        max_retries: retries,
        backoff_base_ms: 20,
        backoff_max_ms: 2_000,
    };
    OpenAiCompatible::with_env(&cfg, |_| Some("sk-test-secret".into()))
        .unwrap()
        .unwrap()
}

fn request() -> ChatRequest {
    ChatRequest {
        model: Some("gpt-test".into()),
        messages: vec![
            ChatMessage::system("be brief"),
            ChatMessage::user("tagline?"),
        ],
        tools: vec![ToolSpec {
            name: "reply".into(),
            description: "answer".into(),
            parameters: json!({"type": "object", "properties": {"text": {"type": "string"}}}),
        }],
        temperature: Some(0.3),
        max_tokens: Some(256),
    }
}

#[tokio::test]
async fn json_tool_calls_usage_and_cost() {
    let fake = FakeOpenAi::start(vec![Answer::reply("Glow up.", 0.9)]).await;
    let m = model(vec![provider("main", &fake, false)], 5.0, 0);
    let r = m.chat(&request()).await.unwrap();
    assert_eq!(r.finish, FinishReason::ToolCalls);
    assert_eq!(r.tool_calls.len(), 1);
    assert_eq!(r.tool_calls[0].name, "reply");
    assert_eq!(r.tool_calls[0].id, "call_0");
    let args: serde_json::Value = serde_json::from_str(&r.tool_calls[0].arguments).unwrap();
    assert_eq!(args["text"], "Glow up.");
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (120, 30));
    // 120 × 2.5 + 30 × 10 micro-dollars.
    assert_eq!(r.cost_micros, 600);
    assert_eq!(r.provider, "main");
    let sent = &fake.requests()[0];
    assert_eq!(sent["model"], "gpt-test");
    assert_eq!(sent["tools"][0]["function"]["name"], "reply");
    assert_eq!(sent["messages"][0]["role"], "system");
    assert!(sent.get("stream").is_none());
}

#[tokio::test]
async fn streaming_joins_text_and_tool_call_fragments_and_reads_usage() {
    let fake = FakeOpenAi::start(vec![
        Answer::Tools(vec![
            (
                "reply".into(),
                json!({"text": "Sleep in the glow.", "confidence": 0.85}).to_string(),
            ),
            (
                "search_knowledge".into(),
                json!({"query": "hoodie fabric"}).to_string(),
            ),
        ]),
        Answer::Text("Plain streamed text answer".into()),
    ])
    .await;
    let m = model(vec![provider("main", &fake, true)], 5.0, 0);
    let r = m.chat(&request()).await.unwrap();
    assert_eq!(r.tool_calls.len(), 2);
    let a: serde_json::Value = serde_json::from_str(&r.tool_calls[0].arguments).unwrap();
    assert_eq!(a["confidence"], 0.85);
    assert_eq!(r.tool_calls[1].name, "search_knowledge");
    assert_eq!(r.tool_calls[1].id, "call_1");
    assert_eq!(r.finish, FinishReason::ToolCalls);
    assert_eq!(r.usage.input_tokens, 120, "usage from the last chunk");
    let t = m.chat(&request()).await.unwrap();
    assert_eq!(t.content.as_deref(), Some("Plain streamed text answer"));
    assert_eq!(t.finish, FinishReason::Stop);
    let sent = &fake.requests()[0];
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn rate_limits_are_retried_after_the_time_the_server_asks() {
    let fake = FakeOpenAi::start(vec![
        Answer::rate_limited(300),
        Answer::rate_limited(300),
        Answer::reply("ok", 0.9),
    ])
    .await;
    let m = model(vec![provider("main", &fake, false)], 5.0, 3);
    let start = Instant::now();
    let r = m.chat(&request()).await.unwrap();
    assert_eq!(r.tool_calls[0].name, "reply");
    assert_eq!(fake.served(), 3);
    assert!(
        start.elapsed() >= Duration::from_millis(600),
        "waited retry-after-ms twice: {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn server_errors_and_slow_answers_are_retried_with_backoff() {
    let fake = FakeOpenAi::start(vec![
        Answer::Status {
            code: 500,
            headers: vec![],
        },
        Answer::Slow(Duration::from_secs(3), Box::new(Answer::reply("late", 0.9))),
        Answer::reply("on time", 0.9),
    ])
    .await;
    let m = model(vec![provider("main", &fake, false)], 0.5, 3);
    let r = m.chat(&request()).await.unwrap();
    let a: serde_json::Value = serde_json::from_str(&r.tool_calls[0].arguments).unwrap();
    assert_eq!(
        a["text"], "on time",
        "the slow answer was cut by the timeout"
    );
}

#[tokio::test]
async fn a_failing_provider_fails_over_to_the_next() {
    let down = FakeOpenAi::start(vec![
        Answer::Status {
            code: 503,
            headers: vec![],
        },
        Answer::Status {
            code: 502,
            headers: vec![],
        },
    ])
    .await;
    let backup = FakeOpenAi::start(vec![Answer::reply("from backup", 0.9)]).await;
    let mut b = provider("backup", &backup, false);
    b.models = vec!["local-llama".into()];
    b.input_price_per_million = 0.0;
    b.output_price_per_million = 0.0;
    let m = model(vec![provider("main", &down, false), b], 5.0, 1);
    let r = m.chat(&request()).await.unwrap();
    assert_eq!(r.provider, "backup");
    assert_eq!(r.cost_micros, 0, "priced at the backup's price");
    assert_eq!(down.served(), 2, "1 try + 1 retry");
    assert_eq!(
        backup.requests()[0]["model"],
        "local-llama",
        "the backup's own model"
    );
}

#[tokio::test]
async fn a_retry_after_longer_than_we_wait_fails_over_at_once() {
    let busy = FakeOpenAi::start(vec![Answer::rate_limited(60_000)]).await;
    let backup = FakeOpenAi::start(vec![]).await;
    let m = model(
        vec![
            provider("busy", &busy, false),
            provider("backup", &backup, false),
        ],
        5.0,
        3,
    );
    let start = Instant::now();
    let r = m.chat(&request()).await.unwrap();
    assert_eq!(r.provider, "backup");
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn refusals_and_garbage_are_not_retried_and_say_so() {
    let fake = FakeOpenAi::start(vec![
        Answer::Status {
            code: 401,
            headers: vec![],
        },
        Answer::Garbage,
    ])
    .await;
    let m = model(vec![provider("main", &fake, false)], 5.0, 3);
    let e = m.chat(&request()).await.unwrap_err();
    assert!(
        matches!(e, ModelError::Rejected(ref s) if s.contains("401")),
        "{e}"
    );
    assert!(
        !e.to_string().contains("sk-test-secret"),
        "secrets never print"
    );
    assert_eq!(
        e.to_string().matches("refused the request").count(),
        1,
        "said once: {e}"
    );
    let e = m.chat(&request()).await.unwrap_err();
    assert!(matches!(e, ModelError::Malformed(_)), "{e}");
    assert_eq!(
        e.to_string().matches("unreadable").count(),
        1,
        "said once: {e}"
    );
    assert_eq!(fake.served(), 2);
}

#[tokio::test]
async fn everything_down_is_unavailable() {
    let m = model(
        vec![ProviderConfig {
            base_url: "http://127.0.0.1:9/v1".into(),
            ..provider("nowhere", &FakeOpenAi::start(vec![]).await, false)
        }],
        1.0,
        1,
    );
    let e = m.chat(&request()).await.unwrap_err();
    assert!(matches!(e, ModelError::Unavailable(_)), "{e}");
}

#[tokio::test]
async fn context_windows_come_from_config_or_the_server_that_says_them() {
    use krake_tests::fake_openai::Server;
    let llama = FakeOpenAi::start_as(
        vec![],
        Duration::ZERO,
        true,
        Server::LlamaCpp { n_ctx: 2048 },
    )
    .await;
    let m = model(vec![provider("local", &llama, false)], 5.0, 0);
    assert_eq!(m.context_window(None).await, Some(2048), "llama.cpp /props");
    // The real server refuses a prompt over its context with its own 400; Krake reports it
    // as a refusal, once, with the server's words.
    let mut big = request();
    big.messages.push(ChatMessage::user("word ".repeat(2000)));
    let err = m.chat(&big).await.unwrap_err();
    assert!(matches!(err, ModelError::Rejected(_)), "{err:?}");
    assert_eq!(
        err.to_string().matches("refused the request").count(),
        1,
        "{err}"
    );
    assert!(err.to_string().contains("context size"), "{err}");

    let ollama = |num_ctx| async move {
        FakeOpenAi::start_as(
            vec![],
            Duration::ZERO,
            true,
            Server::Ollama {
                num_ctx,
                trained: 32768,
            },
        )
        .await
    };
    let set = ollama(Some(8192)).await;
    let m = model(vec![provider("ollama", &set, false)], 5.0, 0);
    assert_eq!(m.context_window(Some("gpt-test")).await, Some(8192));
    let unset = ollama(None).await;
    let m = model(vec![provider("ollama", &unset, false)], 5.0, 0);
    assert_eq!(
        m.context_window(None).await,
        Some(krake_llm::OLLAMA_DEFAULT_CONTEXT),
        "Ollama's default when the Modelfile sets no num_ctx"
    );

    // OpenAI-style servers say nothing: unknown, and asked only once.
    let plain = FakeOpenAi::start(vec![]).await;
    let m = model(vec![provider("openai", &plain, false)], 5.0, 0);
    assert_eq!(m.context_window(None).await, None);
    assert_eq!(m.context_window(None).await, None);

    // Configuration wins, per model over per provider; with several providers the smallest
    // window counts (a fail-over may land on any of them).
    let mut a = provider("a", &plain, false);
    a.context_window = Some(16_000);
    a.model_context_windows.insert("gpt-test".into(), 128_000);
    let mut b = provider("b", &llama, false);
    b.context_window = Some(4096);
    let m = model(vec![a.clone()], 5.0, 0);
    assert_eq!(m.context_window(Some("gpt-test")).await, Some(128_000));
    let m = model(vec![a, b], 5.0, 0);
    assert_eq!(m.context_window(Some("gpt-test")).await, Some(4096));
}
