//! `agents`: the agent run engine's own cost and its behaviour under load.
//!
//! 1. Overhead per run, model time excluded: runs on a scratch SQLite store against a model
//!    that answers at once, in process (the engine alone) and over loopback HTTP through
//!    krake-llm (engine + client), with a raw `INSERT` of a run row as the baseline.
//! 2. Concurrency: rounds of N runs at once against a local OpenAI-compatible server that
//!    takes 1 s per call; every run must end `done`, and the process's resident memory is
//!    read after each round (growth would show from round to round).

use crate::common::{report, scratch_sqlite};
use axum::Router;
use axum::routing::post;
use hdrhistogram::Histogram;
use krake_core::config::Directory;
use krake_core::knowledge::NoKnowledge;
use krake_core::ledger::Budgets;
use krake_core::model::{ChatModel, ScriptedModel};
use krake_core::run::{NewRun, RecordingExecutor, RunLimits, RunRepo, RunStatus, Runner};
use krake_core::time::SystemClock;
use krake_core::workspace::WorkspaceSlug;
use krake_llm::{LlmConfig, OpenAiCompatible, ProviderConfig};
use krake_store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn runner(store: &Store, model: Arc<dyn ChatModel>) -> Runner {
    let s = Arc::new(store.clone());
    Runner::new(
        s.clone(),
        s.clone(),
        s.clone(),
        Some(model),
        Arc::new(NoKnowledge),
        Arc::new(RecordingExecutor::default()),
        Arc::new(SystemClock),
        Directory::default(),
    )
    .with_budgets(Budgets {
        workspaces: BTreeMap::from([("lunavo".to_owned(), 1_000_000_000)]),
        ..Budgets::default()
    })
    .with_limits(RunLimits {
        lease: Duration::from_secs(300),
        ..RunLimits::default()
    })
}

fn new_run(i: u32) -> NewRun {
    NewRun {
        workspace: WorkspaceSlug::parse("lunavo").unwrap_or_else(|_| unreachable_slug()),
        agent: "Penn".into(),
        task: format!("draft tagline number {i} for the hoodie"),
        trigger: "bench".into(),
        requested_by: "bench".into(),
        parent: None,
        feedback: None,
        answer_to: None,
    }
}

// `lunavo` is a valid slug; this only satisfies the no-unwrap rule.
fn unreachable_slug() -> WorkspaceSlug {
    krake_core::workspace::default_workspaces().remove(0).slug
}

/// A loopback OpenAI-compatible endpoint answering every call with a `reply` tool call after
/// `delay`; returns its base URL.
async fn model_server(delay: Duration) -> anyhow::Result<String> {
    let body = serde_json::json!({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1_764_000_000, "model": "bench",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": null, "message": {
            "role": "assistant", "content": null, "tool_calls": [{"id": "call_0", "type": "function",
            "function": {"name": "reply", "arguments": "{\"text\":\"Glow in the dark.\",\"confidence\":0.9}"}}]}}],
        "usage": {"prompt_tokens": 700, "completion_tokens": 30, "total_tokens": 730}
    });
    let app = Router::new().route(
        "/v1/chat/completions",
        post(move || {
            let body = body.clone();
            async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                axum::Json(body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}/v1"))
}

fn http_model(base_url: String, timeout_secs: f64) -> anyhow::Result<Arc<dyn ChatModel>> {
    let cfg = LlmConfig {
        providers: vec![ProviderConfig {
            name: "loopback".into(),
            base_url,
            api_key_env: None,
            models: vec!["bench".into()],
            input_price_per_million: 1.0,
            output_price_per_million: 2.0,
            model_prices: BTreeMap::new(),
            stream: false,
            context_window: None,
            model_context_windows: BTreeMap::new(),
        }],
        timeout_secs,
        ..LlmConfig::default()
    };
    let m = OpenAiCompatible::from_config(&cfg)?.ok_or_else(|| anyhow::anyhow!("no provider"))?;
    Ok(Arc::new(m))
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

async fn overhead(
    label: &str,
    store: &Store,
    model: Arc<dyn ChatModel>,
    runs: u32,
) -> anyhow::Result<Histogram<u64>> {
    let r = runner(store, model);
    let mut h = Histogram::<u64>::new(3)?;
    for i in 0..runs {
        let start = Instant::now();
        let run = r.start(&new_run(i)).await?;
        r.work_once("bench", 1).await?;
        h.record(start.elapsed().as_nanos() as u64)?;
        if i == 0
            && let Some(done) = store.run(run.id).await?
            && done.status != RunStatus::Done
        {
            anyhow::bail!("{label}: a run ended {} instead of done", done.status);
        }
    }
    report(label, &h);
    Ok(h)
}

/// Runs the benchmark.
pub async fn run(
    runs: u32,
    concurrent: u32,
    rounds: u32,
    delay_ms: u64,
    in_process: bool,
) -> anyhow::Result<()> {
    println!("agent runs: SQLite scratch store (WAL, synchronous=NORMAL), 1 model call per run");
    let dir = tempfile::tempdir()?;
    let store = scratch_sqlite(&dir).await?;
    // Baseline: the run row alone, inserted raw.
    let mut base = Histogram::<u64>::new(3)?;
    for i in 0..runs {
        let start = Instant::now();
        sqlx::query("INSERT INTO agent_runs (workspace, agent, task, trigger_kind, requested_by, status, attempts, created_at, updated_at) VALUES ('lunavo', 'Penn', $1, 'bench', 'bench', 'done', 1, 0, 0)")
            .bind(format!("raw {i}"))
            .execute(store.pool())
            .await?;
        base.record(start.elapsed().as_nanos() as u64)?;
    }
    report("baseline: raw INSERT of a run row", &base);
    let scripted: Arc<dyn ChatModel> = Arc::new(ScriptedModel::new(Vec::new()).forgetful());
    let engine = overhead("run, in-process model (0 ms)", &store, scripted, runs).await?;
    let url = model_server(Duration::ZERO).await?;
    let http = overhead(
        "run, HTTP model on loopback (0 ms)",
        &store,
        http_model(url, 30.0)?,
        runs,
    )
    .await?;
    println!(
        "  overhead p50: engine {:.2} ms ({:.1}× the raw insert), engine + HTTP client {:.2} ms; target < 5 ms",
        engine.value_at_quantile(0.5) as f64 / 1e6,
        engine.value_at_quantile(0.5) as f64 / base.value_at_quantile(0.5).max(1) as f64,
        http.value_at_quantile(0.5) as f64 / 1e6
    );

    println!(
        "\n{concurrent} concurrent runs against a model taking {delay_ms} ms per call, {rounds} rounds:"
    );
    let dir2 = tempfile::tempdir()?;
    let store = scratch_sqlite(&dir2).await?;
    let model: Arc<dyn ChatModel> = if in_process {
        println!("  (model in process, no HTTP)");
        Arc::new(
            ScriptedModel::new(Vec::new())
                .forgetful()
                .with_delay(Duration::from_millis(delay_ms)),
        )
    } else {
        http_model(model_server(Duration::from_millis(delay_ms)).await?, 60.0)?
    };
    let r = runner(&store, model);
    let mut first_rss = None;
    for round in 1..=rounds {
        let mut ids = Vec::with_capacity(concurrent as usize);
        for i in 0..concurrent {
            ids.push(r.start(&new_run(i)).await?.id);
        }
        let start = Instant::now();
        let mut claimed = 0;
        while claimed < concurrent as usize {
            claimed += r.work_once("bench", concurrent).await?;
        }
        let wall = start.elapsed();
        let mut done = 0;
        for id in &ids {
            if store
                .run(*id)
                .await?
                .is_some_and(|x| x.status == RunStatus::Done)
            {
                done += 1;
            }
        }
        let rss = rss_kib();
        let base_rss = *first_rss.get_or_insert(rss);
        println!(
            "  round {round}: {done}/{concurrent} done in {:.2} s; RSS {} KiB ({:+} KiB since round 1)",
            wall.as_secs_f64(),
            rss,
            rss as i64 - base_rss as i64
        );
        if done != concurrent {
            anyhow::bail!("{} runs were lost or failed", concurrent - done);
        }
    }
    Ok(())
}
