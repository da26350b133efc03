//! The knowledge base wired as `krake serve` and `krake ingest` wire it: core's knowledge sync
//! over the store, `krake ingest` of files, and run memory, into the embedded store.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_bot::rag::{IngestArgs, ingest, knowledge_sync, open};
use krake_bot::settings::{Overrides, Settings};
use krake_core::knowledge::RunMemory;
use krake_core::knowledge::{KnowledgeQuery, Retriever, StoreSync};
use krake_core::workspace::WorkspaceSlug;
use krake_rag::knowledge::{Knowledge, KnowledgePaths, OnDemandKnowledge};
use std::sync::Arc;

fn query(workspace: &str, text: &str) -> KnowledgeQuery {
    KnowledgeQuery {
        workspace: WorkspaceSlug::parse(workspace).expect("slug"),
        text: text.to_owned(),
        limit: 5,
        token_budget: 1000,
        source_kind: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_serve_pass_syncs_threads_and_folders_when_they_change_and_per_workspace() {
    use krake_core::Actor;
    use krake_core::inbox::{NewThread, ThreadKind};
    use krake_core::reply::Tone;
    let data = tempfile::tempdir().expect("tempdir");
    let overrides = Overrides {
        data_dir: Some(data.path().to_owned()),
        ..Overrides::default()
    };
    let settings = Settings::load(&overrides, None).expect("settings");
    let store = krake_bot::wiring::open_store(&settings, false)
        .await
        .expect("store");
    let krake = krake_bot::wiring::krake(&store, &settings);
    let ws = |s: &str| WorkspaceSlug::parse(s).expect("slug");
    let porto = krake
        .create_thread(
            &Actor::system(),
            &NewThread::new(
                ws("lunavo"),
                ThreadKind::Question,
                "Which courier for Porto?",
                "Customers in Porto ask which courier delivers their hoodies.",
            ),
        )
        .await
        .expect("thread");
    krake
        .create_thread(
            &Actor::system(),
            &NewThread::new(
                ws("monarch"),
                ThreadKind::Question,
                "Payroll date",
                "Payroll runs on the 25th of each month.",
            ),
        )
        .await
        .expect("thread");
    let local = Actor::local();
    for line in [
        "/folder create soshie suppliers",
        "/folder addcol soshie suppliers note text",
        "/folder add soshie suppliers note=\"Glow ink comes from Lumiprint\"",
    ] {
        let r = krake.handle_text(&local, line).await;
        assert!(
            matches!(r.tone, Tone::Info | Tone::Success),
            "{line}: {}",
            r.text
        );
    }
    let mut sync = knowledge_sync(&store, &settings);
    let first = sync.pass().await.expect("pass");
    // Soshie's folder goes to each of her three workspaces.
    assert_eq!(
        first,
        Some(StoreSync {
            threads: 2,
            folders: 3,
            removed: 0
        })
    );
    let again = sync.pass().await.expect("pass");
    assert_eq!(
        again, None,
        "nothing changed, the knowledge base is not opened"
    );
    let r = krake
        .handle_text(
            &local,
            &format!("/reply {} DHL delivers to Porto", porto.id),
        )
        .await;
    assert!(matches!(r.tone, Tone::Info | Tone::Success), "{}", r.text);
    let after = sync.pass().await.expect("pass");
    assert_eq!(
        after,
        Some(StoreSync {
            threads: 1,
            folders: 0,
            removed: 0
        })
    );
    let k = open(&settings).await.expect("open");
    let found = k
        .retriever
        .retrieve(&query("lunavo", "which courier delivers to Porto"))
        .await
        .expect("retrieve");
    assert_eq!(found[0].source, format!("thread {}", porto.id), "{found:?}");
    assert_eq!(found[0].source_kind, "thread");
    assert!(found[0].text.contains("DHL delivers to Porto"), "{found:?}");
    let folder = k
        .retriever
        .retrieve(&query("lunabots", "glow ink Lumiprint"))
        .await
        .expect("retrieve");
    assert!(
        folder
            .iter()
            .any(|p| p.source_kind == "folder" && p.text.contains("Lumiprint")),
        "{folder:?}"
    );
    let monarch = k
        .retriever
        .retrieve(&query("monarch", "which courier delivers to Porto"))
        .await
        .expect("retrieve");
    assert!(
        monarch
            .iter()
            .all(|p| p.source != format!("thread {}", porto.id) && !p.text.contains("Lumiprint")),
        "lunavo's thread and Soshie's folder stay out of monarch: {monarch:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ingest_adds_replaces_and_removes_files_in_one_workspace() {
    let data = tempfile::tempdir().expect("tempdir");
    let docs = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        docs.path().join("returns.md"),
        "# Returns\n\nLunavo refunds hoodies within 30 days.",
    )
    .expect("write");
    std::fs::write(
        docs.path().join("sizes.html"),
        "<h1>Sizes</h1><p>Our hoodies run small.</p>",
    )
    .expect("write");
    std::fs::write(docs.path().join("photo.jpg"), [0u8]).expect("write");
    let overrides = Overrides {
        data_dir: Some(data.path().to_owned()),
        ..Overrides::default()
    };
    let settings = Settings::load(&overrides, None).expect("settings");
    let args = || IngestArgs {
        path: Some(docs.path().to_owned()),
        workspace: Some("lunavo".to_owned()),
        store: false,
    };
    ingest(Settings::load(&overrides, None).expect("settings"), args())
        .await
        .expect("ingest");
    {
        let k = open(&settings).await.expect("open");
        let found = k
            .retriever
            .retrieve(&query("lunavo", "refund"))
            .await
            .expect("retrieve");
        // With the embedder, dense search ranks every chunk; the relevant one comes first.
        assert!(!found.is_empty() && found.len() <= 2, "{found:?}");
        assert!(found[0].source.ends_with("returns.md"), "{found:?}");
        assert_eq!(found[0].title, "Returns");
        assert_eq!(found[0].source_kind, "file");
        let other = k
            .retriever
            .retrieve(&query("monarch", "refund"))
            .await
            .expect("retrieve");
        assert!(
            other.is_empty(),
            "another workspace sees nothing: {other:?}"
        );
    }
    std::fs::write(
        docs.path().join("returns.md"),
        "# Returns\n\nLunavo refunds hoodies within 60 days.",
    )
    .expect("write");
    std::fs::remove_file(docs.path().join("sizes.html")).expect("rm");
    ingest(Settings::load(&overrides, None).expect("settings"), args())
        .await
        .expect("ingest again");
    let k = open(&settings).await.expect("open");
    let found = k
        .retriever
        .retrieve(&query("lunavo", "hoodies"))
        .await
        .expect("retrieve");
    assert_eq!(
        found.len(),
        1,
        "sizes.html is gone, photo.jpg was skipped: {found:?}"
    );
    assert!(found[0].text.contains("60 days"), "{found:?}");
    let bad = ingest(
        Settings::load(&overrides, None).expect("settings"),
        IngestArgs {
            path: Some(docs.path().to_owned()),
            workspace: Some("nowhere".to_owned()),
            store: false,
        },
    )
    .await
    .expect_err("unknown workspace");
    assert!(
        bad.to_string().contains("lunavo"),
        "lists the workspaces: {bad}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_finished_runs_result_becomes_knowledge_of_its_workspace() {
    use krake_core::run::{NewRun, RunOutcome, RunRepo, RunStatus};
    use krake_core::time::Timestamp;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = krake_store::Store::open(&krake_store::Store::sqlite_url(
        &dir.path().join("bench.db"),
    ))
    .await
    .expect("store");
    store.migrate(|_| {}).await.expect("migrate");
    let new = |task: &str| NewRun {
        workspace: WorkspaceSlug::parse("lunavo").expect("slug"),
        agent: "cassie".into(),
        task: task.into(),
        trigger: "command".into(),
        requested_by: "ana".into(),
        parent: None,
        feedback: None,
        answer_to: None,
    };
    let now = Timestamp::from_millis(1_700_000_000_000);
    let done = store
        .create_run(&new("find why order 1042 is late"), now)
        .await
        .expect("run");
    let outcome = |status, result: &str| RunOutcome {
        status,
        result: Some(result.to_owned()),
        error: None,
        thread: None,
    };
    assert!(
        store
            .finish_run(
                done.id,
                RunStatus::Queued,
                &outcome(
                    RunStatus::Done,
                    "Order 1042 waits for the Gelato print partner in Latvia."
                ),
                now
            )
            .await
            .expect("finish")
    );
    let failed = store
        .create_run(&new("check the warehouse"), now)
        .await
        .expect("run");
    store
        .finish_run(
            failed.id,
            RunStatus::Queued,
            &outcome(RunStatus::Failed, "warehouse unreachable"),
            now,
        )
        .await
        .expect("finish");
    let paths = KnowledgePaths {
        dir: dir.path().join("kb"),
        models: dir.path().join("no-models"),
        cache: dir.path().join("cache"),
    };
    let memory = RunMemory::new(Arc::new(OnDemandKnowledge::new(
        paths.clone(),
        krake_rag::settings::RagSettings::default(),
    )));
    assert_eq!(
        memory.remember_recent(&store, 50).await.expect("remember"),
        1,
        "only the done run"
    );
    assert_eq!(
        memory.remember_recent(&store, 50).await.expect("again"),
        0,
        "unchanged: nothing written"
    );
    let k = Knowledge::open_at(&paths.dir, &paths.models, &paths.cache).expect("open");
    let mut q = query("lunavo", "why is order 1042 late gelato");
    q.source_kind = Some("agent_result".into());
    let found = k.retriever.retrieve(&q).await.expect("retrieve");
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].source_kind, "agent_result");
    assert_eq!(found[0].source, format!("run #{}", done.id.0));
    assert!(
        found[0].text.contains("print partner in Latvia"),
        "{found:?}"
    );
    assert!(found[0].title.starts_with("cassie: find why"), "{found:?}");
    let warehouse = k
        .retriever
        .retrieve(&query("lunavo", "warehouse unreachable"))
        .await
        .expect("retrieve");
    assert!(
        warehouse.iter().all(|p| p.source_kind != "agent_result"),
        "a failed run is not remembered: {warehouse:?}"
    );
    let other = k
        .retriever
        .retrieve(&query("monarch", "order 1042 gelato"))
        .await
        .expect("retrieve");
    assert!(other.is_empty(), "{other:?}");
}

/// On a Qdrant server the agents' knowledge base is opened once and kept (one gRPC client and
/// one embedder for every query, and for every clone), not opened per query as the embedded
/// store must be; an open that fails is tried again on the next query.
#[tokio::test]
async fn a_qdrant_server_knowledge_base_is_opened_once_and_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = KnowledgePaths {
        dir: dir.path().join("kb"),
        models: dir.path().join("no-models"),
        cache: dir.path().join("cache"),
    };
    let settings = |url: &str| krake_rag::settings::RagSettings {
        store: krake_rag::settings::StoreChoice::Qdrant(krake_rag::server::ServerConfig {
            url: url.to_owned(),
            collection: "krake".into(),
            api_key: None,
        }),
        ..krake_rag::settings::RagSettings::default()
    };
    let query = KnowledgeQuery {
        workspace: WorkspaceSlug::parse("lunavo").expect("slug"),
        text: "returns".into(),
        limit: 5,
        token_budget: 1000,
        source_kind: None,
    };
    // Nothing listens yet: the query fails, and nothing is kept.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let nowhere = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let down = OnDemandKnowledge::new(paths.clone(), settings(&nowhere));
    assert!(down.retrieve(&query).await.is_err());

    let fake = krake_tests::fake_qdrant::FakeQdrant::start().await;
    let kb = OnDemandKnowledge::new(paths, settings(&fake.url));
    let clone = kb.clone();
    for k in [&kb, &clone, &kb, &clone, &kb] {
        k.retrieve(&query).await.expect("retrieve");
    }
    let calls = fake.state().calls.clone();
    let opens = calls.iter().filter(|c| *c == "collections/exists").count();
    assert_eq!(opens, 1, "one open for five queries: {calls:?}");
    assert!(
        calls.iter().filter(|c| c.starts_with("points/")).count() >= 5,
        "{calls:?}"
    );
}
