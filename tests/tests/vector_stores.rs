//! One shared test body (`krake_rag::store::conformance`) against every vector store: embedded
//! Qdrant (qdrant-edge) for real, the Qdrant server adapter against the local gRPC fake (which
//! also checks the requests and mappings), and a real Qdrant server when
//! `KRAKE_TEST_QDRANT_URL` is set (e.g. `http://127.0.0.1:6334`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use krake_rag::edge::EdgeStore;
use krake_rag::server::{QdrantStore, ServerConfig};
use krake_rag::store::{Scope, VectorStore, conformance};
use krake_tests::fake_qdrant::FakeQdrant;
use qdrant_client::qdrant as q;

fn config(url: &str, collection: &str, api_key: Option<&str>) -> ServerConfig {
    ServerConfig {
        url: url.to_owned(),
        collection: collection.to_owned(),
        api_key: api_key.map(str::to_owned),
    }
}

#[tokio::test]
async fn edge_store_passes_the_shared_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EdgeStore::open(&dir.path().join("kb"), 16).expect("open");
    conformance::run(&store).await;
}

#[tokio::test]
async fn qdrant_server_adapter_passes_the_shared_checks_against_the_fake() {
    let fake = FakeQdrant::start().await;
    let store = QdrantStore::open(&config(&fake.url, "krake", Some("s3cret")), 16)
        .await
        .expect("open");
    conformance::run(&store).await;

    let s = fake.state();
    let c = &s.collections["krake"];
    // The collection: a named dense vector (16, cosine) and a sparse BM25 vector with IDF.
    let Some(q::vectors_config::Config::ParamsMap(m)) = c
        .create
        .vectors_config
        .as_ref()
        .and_then(|v| v.config.clone())
    else {
        panic!("named vectors expected: {:?}", c.create.vectors_config);
    };
    assert_eq!(m.map["dense"].size, 16);
    assert_eq!(m.map["dense"].distance, q::Distance::Cosine as i32);
    let sparse = &c.create.sparse_vectors_config.as_ref().expect("sparse").map["bm25"];
    assert_eq!(sparse.modifier, Some(q::Modifier::Idf as i32));
    // Keyword payload indexes on workspace, source kind and source.
    for field in ["workspace", "source_kind", "source"] {
        assert_eq!(
            c.indexes.get(field),
            Some(&(q::FieldType::Keyword as i32)),
            "{field}: {:?}",
            c.indexes
        );
    }
    // Payload mapping: every field a chunk carries, with its type.
    let p = c.points.values().next().expect("a point");
    for key in [
        "workspace",
        "source_kind",
        "source",
        "title",
        "doc_hash",
        "text",
    ] {
        assert!(
            matches!(
                p.payload.get(key).and_then(|v| v.kind.as_ref()),
                Some(q::value::Kind::StringValue(_))
            ),
            "{key}: {:?}",
            p.payload
        );
    }
    for key in ["position", "time"] {
        assert!(
            matches!(
                p.payload.get(key).and_then(|v| v.kind.as_ref()),
                Some(q::value::Kind::IntegerValue(_))
            ),
            "{key}: {:?}",
            p.payload
        );
    }
    assert_eq!(p.dense["dense"].len(), 16);
    assert!(!p.sparse["bm25"].is_empty());
    // Every search is filtered by workspace (exact keyword match; the fake refuses any other
    // kind of match, so a full-text filter would have failed the checks above).
    assert!(!s.queries.is_empty());
    for query in &s.queries {
        let f = query.filter.as_ref().expect("a filter on every query");
        assert!(
            f.must.iter().any(|c| matches!(
                &c.condition_one_of,
                Some(q::condition::ConditionOneOf::Field(fc)) if fc.key == "workspace"
            )),
            "{f:?}"
        );
        assert_eq!(
            query
                .with_payload
                .as_ref()
                .and_then(|w| w.selector_options.clone()),
            Some(q::with_payload_selector::SelectorOptions::Enable(true))
        );
    }
    // The hybrid query: two prefetches (dense and bm25) fused by RRF on the server.
    let hybrid = s
        .queries
        .iter()
        .find(|q| !q.prefetch.is_empty())
        .expect("a hybrid query");
    let using: Vec<_> = hybrid
        .prefetch
        .iter()
        .map(|p| p.using.clone().unwrap_or_default())
        .collect();
    assert_eq!(using, ["dense", "bm25"]);
    assert!(matches!(
        hybrid.query.as_ref().and_then(|q| q.variant.clone()),
        Some(q::query::Variant::Rrf(q::Rrf { k: Some(61), .. }))
    ));
    // The API key goes with every request.
    assert!(
        s.api_keys.iter().all(|k| k.as_deref() == Some("s3cret")),
        "{:?}",
        s.api_keys
    );
}

#[tokio::test]
async fn qdrant_server_adapter_reuses_a_collection_and_refuses_another_vector_size() {
    let fake = FakeQdrant::start().await;
    let store = QdrantStore::open(&config(&fake.url, "kb", None), 16)
        .await
        .expect("open");
    conformance::run(&store).await;
    drop(store);
    // Reopening keeps what is there (no second create).
    let again = QdrantStore::open(&config(&fake.url, "kb", None), 16)
        .await
        .expect("reopen");
    assert_eq!(again.count().await.expect("count"), 3);
    let docs = again
        .documents(&Scope {
            workspace: "lunavo".into(),
            source_kind: None,
        })
        .await
        .expect("documents");
    assert_eq!(docs.len(), 2, "{docs:?}");
    assert_eq!(
        fake.state()
            .calls
            .iter()
            .filter(|c| *c == "collections/create")
            .count(),
        1
    );
    let err = QdrantStore::open(&config(&fake.url, "kb", None), 384)
        .await
        .expect_err("other size");
    assert!(err.to_string().contains("another collection"), "{err}");
}

#[tokio::test]
async fn an_unreachable_qdrant_server_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let err = QdrantStore::open(&config(&url, "kb", None), 16)
        .await
        .expect_err("nothing listens");
    assert!(err.to_string().contains(&url), "{err}");
}

/// Runs only when `KRAKE_TEST_QDRANT_URL` names a real Qdrant server (gRPC port); uses a fresh
/// collection and deletes it afterwards.
#[tokio::test]
async fn qdrant_server_adapter_passes_the_shared_checks_against_a_real_server() {
    let Ok(url) = std::env::var("KRAKE_TEST_QDRANT_URL") else {
        eprintln!("KRAKE_TEST_QDRANT_URL is not set: skipping the real Qdrant server test");
        return;
    };
    let collection = format!(
        "krake_test_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
    );
    let api_key = std::env::var("KRAKE_TEST_QDRANT_API_KEY").ok();
    let store = QdrantStore::open(&config(&url, &collection, api_key.as_deref()), 16)
        .await
        .expect("open");
    conformance::run(&store).await;
    let mut client = qdrant_client::Qdrant::from_url(&url).skip_compatibility_check();
    if let Some(k) = api_key {
        client = client.api_key(k);
    }
    client
        .build()
        .expect("client")
        .delete_collection(&collection)
        .await
        .expect("delete the test collection");
}
