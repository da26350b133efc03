//! One shared test body (`krake_rag::store::conformance`) against every vector store: embedded
//! Qdrant (qdrant-edge) for real, the Qdrant server adapter against the local gRPC fake (which
//! also checks the requests and mappings), and a real Qdrant server started from
//! `KRAKE_QDRANT_BIN` (scripts/test finds one; `fake` asks for the gRPC fake instead): the
//! collection as the server holds it, and a server killed mid-ingestion.
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

use krake_tests::real_qdrant::{RealQdrant, qdrant_bin};

/// The shared checks against a real Qdrant server (`KRAKE_QDRANT_BIN`), then what only the
/// real server can show: the collection as created (named dense vector, sparse BM25 vector with
/// the IDF modifier, keyword payload indexes) read back from the server itself.
#[tokio::test]
async fn qdrant_server_adapter_passes_the_shared_checks_against_a_real_server() {
    let Some(bin) = qdrant_bin() else {
        let fake = FakeQdrant::start().await;
        let store = QdrantStore::open(&config(&fake.url, "krake", None), 16)
            .await
            .expect("open");
        conformance::run(&store).await;
        return;
    };
    let q = RealQdrant::start(bin).await;
    let store = QdrantStore::open(&config(&q.url(), "krake", None), 16)
        .await
        .expect("open");
    conformance::run(&store).await;
    let client = qdrant_client::Qdrant::from_url(&q.url())
        .skip_compatibility_check()
        .build()
        .expect("client");
    let info = client
        .collection_info("krake")
        .await
        .expect("collection info")
        .result
        .expect("info");
    let params = info.config.expect("config").params.expect("params");
    let Some(q::vectors_config::Config::ParamsMap(m)) =
        params.vectors_config.and_then(|v| v.config)
    else {
        panic!("named vectors expected");
    };
    assert_eq!(m.map["dense"].size, 16);
    assert_eq!(m.map["dense"].distance, q::Distance::Cosine as i32);
    let sparse = &params.sparse_vectors_config.expect("sparse").map["bm25"];
    assert_eq!(sparse.modifier, Some(q::Modifier::Idf as i32));
    for field in ["workspace", "source_kind", "source"] {
        let schema = info
            .payload_schema
            .get(field)
            .unwrap_or_else(|| panic!("{field} is indexed: {:?}", info.payload_schema.keys()));
        assert_eq!(
            schema.data_type,
            q::PayloadSchemaType::Keyword as i32,
            "{field}"
        );
    }
}

/// A Qdrant server killed (SIGKILL) in the middle of an ingestion: the ingestion fails with a
/// clear error, and once the server is back, ingesting the same documents again stores what was
/// missing and nothing twice (every chunk once, as a clean ingestion stores them).
#[tokio::test]
async fn ingestion_resumes_after_the_qdrant_server_is_killed_and_loses_nothing() {
    use krake_rag::chunk::Chunker;
    use krake_rag::embed::HashEmbedder;
    use krake_rag::ingest::{Document, Ingestor, Outcome};
    use krake_rag::sparse::Bm25;
    use krake_rag::store::MemoryStore;
    use std::sync::Arc;

    let Some(bin) = qdrant_bin() else {
        eprintln!("KRAKE_QDRANT_BIN=fake: the restart check needs a real server");
        return;
    };
    let docs: Vec<Document> = (0..120)
        .map(|i| Document {
            workspace: "lunavo".into(),
            source_kind: "file".into(),
            source: format!("docs/{i}.md"),
            title: format!("Document {i}"),
            text: format!(
                "# Returns {i}\n\n{}\n\n## Shipping {i}\n\n{}",
                "Hoodies can be returned within thirty days of delivery. ".repeat(12),
                "Orders ship from Berlin within two working days. ".repeat(12)
            ),
            time: 1_700_000_000 + i,
        })
        .collect();
    let ingestor = |store: Arc<dyn VectorStore>| {
        Ingestor::new(
            store,
            Some(Arc::new(HashEmbedder::new(16))),
            Arc::new(Bm25::default()),
            Chunker::default(),
        )
    };
    // What a clean ingestion stores.
    let reference = Arc::new(MemoryStore::new());
    for d in &docs {
        ingestor(reference.clone())
            .ingest(d)
            .await
            .expect("reference");
    }
    let expected = reference.count().await.expect("count");

    let mut q = RealQdrant::start(bin).await;
    let store: Arc<dyn VectorStore> = Arc::new(
        QdrantStore::open(&config(&q.url(), "kb", None), 16)
            .await
            .expect("open"),
    );
    let first = ingestor(store.clone());
    for d in &docs[..50] {
        first.ingest(d).await.expect("ingest before the crash");
    }
    q.kill();
    let err = first
        .ingest(&docs[50])
        .await
        .expect_err("the server is down");
    assert!(err.to_string().contains("qdrant"), "{err}");
    q.up().await;

    // Resumed against the restarted server (a new client, as a restarted Krake would open).
    let store: Arc<dyn VectorStore> = Arc::new(
        QdrantStore::open(&config(&q.url(), "kb", None), 16)
            .await
            .expect("reopen"),
    );
    let again = ingestor(store.clone());
    let (mut unchanged, mut added) = (0, 0);
    for d in &docs {
        match again.ingest(d).await.expect("ingest after the restart") {
            Outcome::Unchanged => unchanged += 1,
            Outcome::Added(_) => added += 1,
            Outcome::Replaced(_) => panic!("{} was stored half", d.source),
        }
    }
    assert_eq!(
        (unchanged, added),
        (50, 70),
        "what was acknowledged survived the kill"
    );
    assert_eq!(
        store.count().await.expect("count"),
        expected,
        "every chunk once"
    );
}

/// The backup documented in docs/operations.md: a snapshot of the collection, taken over
/// Qdrant's HTTP API while it serves, restores into a fresh server (`--snapshot PATH:NAME` at
/// start) with every chunk, answering the same query the same way.
#[tokio::test]
async fn a_qdrant_snapshot_restores_into_a_fresh_server() {
    use krake_rag::chunk::Chunker;
    use krake_rag::embed::HashEmbedder;
    use krake_rag::ingest::{Document, Ingestor};
    use krake_rag::retrieve::{HybridRetriever, Mode};
    use krake_rag::sparse::Bm25;
    use std::sync::Arc;

    let Some(bin) = qdrant_bin() else {
        eprintln!("KRAKE_QDRANT_BIN=fake: snapshots need a real server");
        return;
    };
    let q = RealQdrant::start(bin.clone()).await;
    let store: Arc<dyn VectorStore> = Arc::new(
        QdrantStore::open(&config(&q.url(), "krake", None), 16)
            .await
            .expect("open"),
    );
    let bm25 = Arc::new(Bm25::default());
    let ingestor = Ingestor::new(
        store.clone(),
        Some(Arc::new(HashEmbedder::new(16))),
        bm25.clone(),
        Chunker::default(),
    );
    for (i, text) in [
        "Hoodies can be returned within thirty days of delivery.",
        "Orders ship from Berlin within two working days.",
        "Gift cards never expire and cannot be refunded.",
    ]
    .iter()
    .enumerate()
    {
        ingestor
            .ingest(&Document {
                workspace: "lunavo".into(),
                source_kind: "file".into(),
                source: format!("policy-{i}.md"),
                title: format!("Policy {i}"),
                text: (*text).to_owned(),
                time: 1_700_000_000,
            })
            .await
            .expect("ingest");
    }
    let count = store.count().await.expect("count");
    let scope = Scope {
        workspace: "lunavo".into(),
        source_kind: None,
    };
    let ask = |store: Arc<dyn VectorStore>| {
        let bm25 = bm25.clone();
        let scope = scope.clone();
        async move {
            let dense = krake_rag::embed::Embedder::embed(
                &HashEmbedder::new(16),
                &["can I return a hoodie".to_owned()],
            )
            .await
            .expect("embed")
            .remove(0);
            HybridRetriever::new(store, None, bm25)
                .search_with(
                    &scope,
                    "can I return a hoodie",
                    Some(&dense),
                    3,
                    Mode::Hybrid,
                )
                .await
                .expect("search")
                .into_iter()
                .map(|h| h.meta.source)
                .collect::<Vec<_>>()
        }
    };
    let answer = ask(store.clone()).await;
    assert_eq!(answer.len(), 3, "{answer:?}");

    let resp = krake_tests::raw_http(
        q.http,
        "POST",
        "/collections/krake/snapshots?wait=true",
        &[],
        b"",
    )
    .await;
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {resp}"));
    let name = v["result"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("{resp}"));
    let file = q.dir.path().join("snapshots/krake").join(name);
    assert!(file.exists(), "{}", file.display());
    let kept = tempfile::tempdir().expect("tempdir");
    let copy = kept.path().join(name);
    std::fs::copy(&file, &copy).expect("copy the snapshot");
    drop(q);

    let fresh = RealQdrant::start_with(
        bin,
        vec!["--snapshot".into(), format!("{}:krake", copy.display())],
    )
    .await;
    let restored: Arc<dyn VectorStore> = Arc::new(
        QdrantStore::open(&config(&fresh.url(), "krake", None), 16)
            .await
            .expect("open the restored collection"),
    );
    assert_eq!(restored.count().await.expect("count"), count);
    assert_eq!(ask(restored).await, answer);
}
