//! OpenAI-compatible embeddings against the local fake (`POST /v1/embeddings`): order, usage,
//! the API key, batching, 429 retried, 500 a clear error; and end to end, `krake ingest` and
//! `ask` with `[rag] embedder = "openai"` and a Qdrant server (`store = "qdrant"`, the gRPC
//! fake), so no model weights are involved.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use krake_llm::embeddings::{EmbeddingsConfig, EmbeddingsError, OpenAiEmbeddings};
use krake_tests::fake_embeddings::{Failure, FakeEmbeddings, vector};
use krake_tests::fake_qdrant::FakeQdrant;
use krake_tests::{krake, run};

fn config(base_url: &str) -> EmbeddingsConfig {
    EmbeddingsConfig {
        base_url: base_url.to_owned(),
        model: "text-embedding-3-small".to_owned(),
        dimensions: Some(8),
        api_key_env: Some("FAKE_EMBEDDINGS_KEY".to_owned()),
        batch_size: 2,
        max_retries: 2,
        backoff_base_ms: 1,
        backoff_max_ms: 50,
        ..EmbeddingsConfig::default()
    }
}

fn client(c: &EmbeddingsConfig) -> OpenAiEmbeddings {
    OpenAiEmbeddings::new(c, |v| {
        (v == "FAKE_EMBEDDINGS_KEY").then(|| "sk-test".to_owned())
    })
    .expect("client")
}

fn texts(t: &[&str]) -> Vec<String> {
    t.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn embeds_in_order_in_batches_with_usage_and_the_key() {
    let fake = FakeEmbeddings::start().await;
    let c = client(&config(&fake.base_url));
    let input = texts(&["refunds take five days", "hoodies run small", "late parcel"]);
    let (vectors, tokens) = c.embed(&input).await.expect("embed");
    assert_eq!(vectors.len(), 3);
    for (v, t) in vectors.iter().zip(&input) {
        assert_eq!(v, &vector(t, 8), "{t}");
    }
    assert_eq!(tokens, 9, "prompt tokens summed over the batches");
    let seen = fake.seen();
    assert_eq!(seen.len(), 2, "batches of two");
    assert_eq!(seen[0].body["model"], "text-embedding-3-small");
    assert_eq!(seen[0].body["dimensions"], 8);
    assert_eq!(
        seen[0].body["input"],
        serde_json::json!(["refunds take five days", "hoodies run small"])
    );
    assert_eq!(seen[1].body["input"], serde_json::json!(["late parcel"]));
    assert!(
        seen.iter()
            .all(|s| s.authorization.as_deref() == Some("Bearer sk-test"))
    );
}

#[tokio::test]
async fn as_cores_embedder_the_vectors_are_normalised() {
    use krake_core::knowledge::embed::Embedder;
    use krake_llm::embeddings::OpenAiEmbedder;
    let fake = FakeEmbeddings::start().await;
    let e = OpenAiEmbedder::new(&config(&fake.base_url), |v| {
        (v == "FAKE_EMBEDDINGS_KEY").then(|| "sk-test".to_owned())
    })
    .expect("embedder");
    assert_eq!(e.id(), "openai:text-embedding-3-small:8");
    let input = texts(&["late late parcel", "hoodies"]);
    let vectors = e.embed(&input).await.expect("embed");
    for (v, t) in vectors.iter().zip(&input) {
        let raw = vector(t, 8);
        let norm = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
        let want: Vec<f32> = raw.iter().map(|x| x / norm).collect();
        assert_eq!(v, &want, "{t}");
        let length = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((length - 1.0).abs() < 1e-6, "{t}: {length}");
    }
}

#[tokio::test]
async fn a_429_is_retried() {
    let fake = FakeEmbeddings::start().await;
    fake.fail_first(&[Failure::RateLimited(1), Failure::Status(503)]);
    let c = client(&config(&fake.base_url));
    let (vectors, _) = c.embed(&texts(&["late parcel"])).await.expect("embed");
    assert_eq!(vectors, vec![vector("late parcel", 8)]);
    assert_eq!(fake.seen().len(), 3, "429, 503, then the answer");
}

#[tokio::test]
async fn a_500_that_persists_is_a_clear_error() {
    let fake = FakeEmbeddings::start().await;
    fake.fail_always(500);
    let c = client(&config(&fake.base_url));
    let err = c
        .embed(&texts(&["late parcel"]))
        .await
        .expect_err("server error");
    let EmbeddingsError::Unavailable(why) = &err else {
        panic!("{err:?}");
    };
    assert!(why.contains("HTTP 500"), "{why}");
    assert!(why.contains("The server had an error"), "{why}");
    assert!(why.contains("after 3 tries"), "{why}");
    assert!(err.to_string().contains("embeddings server is unavailable"));
    assert_eq!(fake.seen().len(), 3);
}

#[tokio::test]
async fn a_400_is_not_retried_and_a_missing_key_is_a_config_error() {
    let fake = FakeEmbeddings::start().await;
    fake.fail_first(&[Failure::Status(400)]);
    let c = client(&config(&fake.base_url));
    let err = c.embed(&texts(&["x"])).await.expect_err("refused");
    assert!(matches!(err, EmbeddingsError::Rejected(_)), "{err:?}");
    assert_eq!(fake.seen().len(), 1);
    let err = OpenAiEmbeddings::new(&config(&fake.base_url), |_| None).expect_err("no key");
    assert!(err.to_string().contains("FAKE_EMBEDDINGS_KEY"), "{err}");
}

/// `krake ingest` and `ask` with OpenAI-compatible embeddings and a Qdrant server, both fakes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_and_ask_through_openai_embeddings_and_a_qdrant_server() {
    let emb = FakeEmbeddings::start().await;
    let qdrant = FakeQdrant::start().await;
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs");
    std::fs::create_dir(&docs).unwrap();
    std::fs::write(
        docs.join("returns.md"),
        "# Returns\n\nLunavo refunds hoodies within 30 days of delivery.\n",
    )
    .unwrap();
    let cfg = dir.path().join("krake.toml");
    std::fs::write(
        &cfg,
        format!(
            "[rag]\nstore = \"qdrant\"\nqdrant_url = \"{}\"\nqdrant_collection = \"kb\"\n\
             embedder = \"openai\"\n[rag.openai]\nbase_url = \"{}\"\nmodel = \"fake-embed\"\n\
             dimensions = 8\n",
            qdrant.url, emb.base_url
        ),
    )
    .unwrap();
    let data = dir.path().to_owned();
    let cfg2 = cfg.clone();
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        run(krake(&data)
            .arg("--config")
            .arg(&cfg2)
            .arg("ingest")
            .arg(&docs)
            .args(["--workspace", "lunavo"]))
    })
    .await
    .unwrap();
    assert!(ok, "{out}{err}");
    assert!(out.contains("1 new"), "{out}");
    assert!(!out.contains("BM25 only"), "{out}");
    assert!(
        emb.seen()
            .iter()
            .any(|s| s.body["model"] == "fake-embed" && s.body["dimensions"] == 8)
    );
    {
        let s = qdrant.state();
        let kb = &s.collections["kb"];
        assert!(!kb.points.is_empty());
        assert!(kb.points.values().all(|p| p.dense["dense"].len() == 8));
    }
    let data = dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        krake_tests::chat_with_config(&data, &cfg, &["ask cassie how long do refunds take?"])
    })
    .await
    .unwrap();
    assert!(out.contains("refunds hoodies within 30 days"), "{out}");
    assert!(out.contains("returns.md §1"), "{out}");
    // The default fusion (convex) runs both searches on the server and fuses them in Krake.
    let used: Vec<String> = qdrant
        .state()
        .queries
        .iter()
        .filter_map(|q| q.using.clone())
        .collect();
    assert!(
        used.iter().any(|u| u == "dense") && used.iter().any(|u| u == "bm25"),
        "ask searched both vectors on the server: {used:?}"
    );
}
