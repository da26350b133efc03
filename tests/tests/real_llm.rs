//! A scripted scenario (ask, a tool call, an approval, a streamed answer) against a real
//! OpenAI-compatible model server, opt-in: set `KRAKE_TEST_LLM_URL` (the API base, up to and
//! including `/v1`) and `KRAKE_TEST_LLM_MODEL`, e.g. a llama.cpp server built from source:
//!
//! ```sh
//! llama-server -m qwen2.5-0.5b-instruct-q4_k_m.gguf -c 2048 --jinja --port 8081 &
//! KRAKE_TEST_LLM_URL=http://127.0.0.1:8081/v1 KRAKE_TEST_LLM_MODEL=qwen \
//!   cargo test -p krake-tests --test real_llm -- --nocapture
//! ```
//!
//! Unset, the real-server test is skipped (and says so); it is the one test allowed to skip,
//! because no model server can be started here without downloading a model. The same
//! scenario always runs against the local fake, answering the way small real models do: tool
//! calls with extra whitespace, text instead of a tool call, a call to a tool that does not
//! exist. Every run must end in a reasoned state (an answer, an approval, an escalation, or a
//! failure that says why and opened a thread), never a panic or a hang.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_core::Krake;
use krake_core::actor::Actor;
use krake_core::config::Directory;
use krake_core::knowledge::NoKnowledge;
use krake_core::model::ChatModel;
use krake_core::ports::InboxRepo;
use krake_core::run::{NewRun, RecordingExecutor, Run, RunRepo, RunStatus, Runner};
use krake_core::time::SystemClock;
use krake_core::workspace::WorkspaceSlug;
use krake_llm::{LlmConfig, OpenAiCompatible, ProviderConfig};
use krake_store::Store;
use krake_tests::fake_openai::{Answer, FakeOpenAi};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How long one run may take on a slow CPU-only server before the test calls it a hang.
const RUN_LIMIT: Duration = Duration::from_secs(600);

struct Scene {
    store: Store,
    runner: Runner,
    krake: Krake,
    exec: Arc<RecordingExecutor>,
    _dir: tempfile::TempDir,
}

async fn scene(base_url: &str, model: &str, stream: bool) -> Scene {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Store::sqlite_url(&dir.path().join("k.db")))
        .await
        .unwrap();
    store.migrate(|_| {}).await.unwrap();
    let cfg = LlmConfig {
        providers: vec![ProviderConfig {
            name: "real".into(),
            base_url: base_url.into(),
            api_key_env: None,
            models: vec![model.into()],
            input_price_per_million: 0.1,
            output_price_per_million: 0.2,
            model_prices: BTreeMap::new(),
            stream,
            context_window: None,
            model_context_windows: BTreeMap::new(),
        }],
        timeout_secs: 300.0,
        max_retries: 1,
        backoff_base_ms: 200,
        backoff_max_ms: 2_000,
    };
    let llm: Arc<dyn ChatModel> =
        Arc::new(OpenAiCompatible::with_env(&cfg, |_| None).unwrap().unwrap());
    let s = Arc::new(store.clone());
    let exec = Arc::new(RecordingExecutor::default());
    let runner = Runner::new(
        s.clone(),
        s.clone(),
        s.clone(),
        Some(llm),
        Arc::new(NoKnowledge),
        exec.clone(),
        Arc::new(SystemClock),
        Directory::default(),
    )
    .with_commerce(s.clone());
    let krake = Krake::new(
        s.clone(),
        s.clone(),
        Arc::new(SystemClock),
        Directory::default(),
    )
    .with_agents(Arc::new(runner.clone()));
    Scene {
        store,
        runner,
        krake,
        exec,
        _dir: dir,
    }
}

impl Scene {
    async fn run(&self, agent: &str, task: &str) -> Run {
        let run = self
            .runner
            .start(&NewRun {
                workspace: WorkspaceSlug::parse("lunavo").unwrap(),
                agent: agent.into(),
                task: task.into(),
                trigger: "command".into(),
                requested_by: "local".into(),
                parent: None,
                feedback: None,
                answer_to: None,
            })
            .await
            .unwrap();
        tokio::time::timeout(RUN_LIMIT, self.runner.work_once("test", 1))
            .await
            .expect("the run ended in time")
            .unwrap();
        let run = self.store.run(run.id).await.unwrap().unwrap();
        reasoned(&run);
        run
    }
}

/// A run that ended (or waits for a person) with its reasons recorded.
fn reasoned(run: &Run) {
    let steps: Vec<String> = run
        .steps
        .iter()
        .map(|s| format!("{}: {}", s.kind, s.detail))
        .collect();
    println!(
        "{} ({}) {}:\n  {}",
        run.id,
        run.agent,
        run.status,
        steps.join("\n  ")
    );
    match run.status {
        RunStatus::Done | RunStatus::AwaitingApproval | RunStatus::Escalated => {
            assert!(run.result.is_some() || run.error.is_some() || run.thread.is_some())
        }
        RunStatus::Failed | RunStatus::Refused => {
            assert!(run.error.as_deref().is_some_and(|e| !e.is_empty()));
            assert!(run.thread.is_some(), "a failure is escalated");
        }
        other => panic!("{} did not end: {other}", run.id),
    }
    assert!(
        run.steps
            .iter()
            .any(|s| s.kind == "model" || s.kind == "failed")
    );
}

/// The scenario: an ask, a tool call, an approval, and a streamed answer.
async fn scenario(base_url: &str, model: &str) -> Vec<Run> {
    let s = scene(base_url, model, false).await;
    let mut runs = Vec::new();
    runs.push(
        s.run(
            "penn",
            "Write a one-line tagline for a navy hoodie. Answer with the reply tool.",
        )
        .await,
    );
    runs.push(
        s.run(
            "dexter",
            "Look up this workspace's KPIs with get_kpis, then reply with the number of orders.",
        )
        .await,
    );
    let refund = s
        .run(
            "commet",
            "Order 1042's hoodie arrived torn. Propose a refund of 45.00 EUR with request_approval.",
        )
        .await;
    if refund.status == RunStatus::AwaitingApproval {
        let th = refund.thread.unwrap();
        let reply = s
            .krake
            .handle_text(&Actor::local(), &format!("/approve {}", th.0))
            .await;
        println!("approve: {}", reply.text);
        let after = s.store.run(refund.id).await.unwrap().unwrap();
        assert!(
            matches!(after.status, RunStatus::Done | RunStatus::Failed),
            "an approved run carries out its action or says why not: {}",
            after.status
        );
        let th = s.store.get(th).await.unwrap().unwrap();
        assert!(th.decided_by.is_some(), "the thread was decided");
        let expected = usize::from(after.status == RunStatus::Done && th.action.is_some());
        assert_eq!(
            s.exec.executed().len(),
            expected,
            "an action is carried out once"
        );
    }
    runs.push(refund);
    let streamed = scene(base_url, model, true).await;
    runs.push(
        streamed
            .run("penn", "Write a two-word tagline for socks.")
            .await,
    );
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_model_server_takes_the_scenario_to_reasoned_ends() {
    let (Ok(url), Ok(model)) = (
        std::env::var("KRAKE_TEST_LLM_URL"),
        std::env::var("KRAKE_TEST_LLM_MODEL"),
    ) else {
        eprintln!(
            "skipped: set KRAKE_TEST_LLM_URL and KRAKE_TEST_LLM_MODEL to run the scenario against a real model server"
        );
        return;
    };
    let runs = scenario(&url, &model).await;
    assert_eq!(runs.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scenario_survives_what_small_models_answer() {
    let fake = FakeOpenAi::start(vec![
        // A tool name and arguments padded with whitespace and newlines.
        Answer::Tools(vec![(
            " reply\n".into(),
            "\n  { \"text\" :  \"Navy nights, warm days.\" ,\n  \"confidence\": 0.9 }\n".into(),
        )]),
        // A tool that does not exist, then the real one.
        Answer::Tools(vec![("lookup_orders".into(), "{}".into())]),
        Answer::Tools(vec![("get_kpis".into(), "{}".into())]),
        Answer::reply("0 orders so far.", 0.9),
        // Text instead of a tool call: an answer of unknown confidence, for approval.
        Answer::Text("I would refund the 45 EUR.".into()),
        Answer::Text("Warm toes.".into()),
    ])
    .await;
    let runs = scenario(&fake.base_url, "small-model").await;
    let st: Vec<RunStatus> = runs.iter().map(|r| r.status).collect();
    assert_eq!(
        st,
        [
            RunStatus::Done,
            RunStatus::Done,
            RunStatus::AwaitingApproval,
            RunStatus::AwaitingApproval
        ]
    );
    assert_eq!(runs[0].result.as_deref(), Some("Navy nights, warm days."));
    assert!(
        runs[1]
            .steps
            .iter()
            .any(|s| s.kind == "refused_tool" && s.detail.contains("lookup_orders")),
        "{:?}",
        runs[1].steps
    );
    let sent = fake.requests();
    assert_eq!(
        sent.last().unwrap()["stream"],
        json!(true),
        "the last run streamed"
    );
}
