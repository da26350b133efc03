//! `web`: the web front's targets against a real `krake serve` child process on a
//! scratch SQLite database, loaded from this process over loopback.
//!
//! 1. Idle WebSocket chat sessions: the server's `VmRSS` before and after opening N sessions
//!    (each said hello and got its welcome), divided by N.
//! 2. Fan-out: M more sessions of a user who sees the changed thread (the idle ones do not); a
//!    thread is archived and unarchived through the REST API, and every session's receipt of
//!    the push is timed from the moment the request was sent (p50/p99/max over all receipts).
//! 3. REST inbox list of 50 threads with a bearer token, with `wrk`, beside `/healthz` on the
//!    same server.

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use krake_core::Krake;
use krake_core::actor::{Actor, Role, UserName};
use krake_core::inbox::{NewThread, ThreadKind};
use krake_core::ports::{TokenRepo, UserRepo};
use krake_core::time::{Clock, SystemClock};
use krake_core::workspace::WorkspaceSlug;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Runs the web benchmarks against `krake_bin` started as `krake serve`.
pub async fn run(
    krake_bin: &std::path::Path,
    sessions: usize,
    fanout: usize,
    rounds: usize,
    seconds: u32,
) -> anyhow::Result<()> {
    // This process and the server (which inherits the limit) each hold one end of every session.
    let want = (sessions + fanout) as u64 + 1024;
    let limit = rlimit::increase_nofile_limit(want).context("cannot raise RLIMIT_NOFILE")?;
    if limit < want {
        bail!(
            "RLIMIT_NOFILE is {limit}, {want} are needed: raise the hard limit (ulimit -Hn) or use fewer --sessions"
        );
    }
    let dir = tempfile::tempdir()?;
    let store = crate::common::scratch_sqlite(&dir).await?;
    let now = SystemClock.now();
    let lunavo = WorkspaceSlug::parse("lunavo")?;
    let management = WorkspaceSlug::parse("management")?;
    let idle = UserName::parse("idle")?;
    let watcher = UserName::parse("watcher")?;
    store
        .upsert_user(&idle, Role::Member, Some(&management), now)
        .await?;
    store.upsert_user(&watcher, Role::Owner, None, now).await?;
    store
        .create_api_token(
            &idle,
            &krake_web::hash_token("krk_bench_idle"),
            "bench",
            now,
        )
        .await?;
    store
        .create_api_token(
            &watcher,
            &krake_web::hash_token("krk_bench_watch"),
            "bench",
            now,
        )
        .await?;
    let s = Arc::new(store.clone());
    let krake = Krake::new(
        s.clone(),
        s.clone(),
        Arc::new(SystemClock),
        krake_core::config::Directory::new(
            krake_core::workspace::default_workspaces(),
            krake_core::agent::default_agents(),
        )?,
    );
    let mut last = None;
    for i in 0..50 {
        let t = krake
            .create_thread(
                &Actor::system(),
                &NewThread::new(
                    lunavo.clone(),
                    ThreadKind::Approval,
                    format!("Benchmark approval {i}: publish post {i}"),
                    "A realistic body of a few words.",
                ),
            )
            .await?;
        last = Some(t.id);
    }
    let target = last.context("no thread")?;
    store.pool().close().await;

    // Every session comes from this one loopback address: its request limit is lifted (the
    // sessions stand for people at many addresses).
    let config = dir.path().join("krake.toml");
    std::fs::write(
        &config,
        "[http]\nrequests_per_minute_per_address = 1000000\nburst_per_address = 100000\nrequests_per_minute_per_token = 1000000\nburst_per_token = 100000\n",
    )?;
    let (mut child, port) = crate::common::spawn_serve(krake_bin, dir.path(), Some(&config), &[])?;
    let pid = child.id();
    let result = measure(pid, port, sessions, fanout, rounds, seconds, target.0).await;
    let _ = child.kill();
    let _ = child.wait();
    result
}

pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS")
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open_session(port: u16, token: &str) -> anyhow::Result<Ws> {
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws/chat")).await?;
    ws.send(Message::Text(
        serde_json::json!({ "type": "hello", "token": token })
            .to_string()
            .into(),
    ))
    .await?;
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.contains("\"welcome\"") => Ok(ws),
        other => bail!("no welcome: {other:?}"),
    }
}

async fn open_many(port: u16, token: &'static str, n: usize) -> anyhow::Result<Vec<Ws>> {
    let mut out = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let batch = left.min(250);
        let opened =
            futures_util::future::join_all((0..batch).map(|_| open_session(port, token))).await;
        for ws in opened {
            out.push(ws?);
        }
        left -= batch;
    }
    Ok(out)
}

pub(crate) fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

async fn measure(
    pid: u32,
    port: u16,
    sessions: usize,
    fanout: usize,
    rounds: usize,
    seconds: u32,
    thread: i64,
) -> anyhow::Result<()> {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "web: release build? {}; {} cores; load {}",
        !cfg!(debug_assertions),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    // Warm the server up (first connection, first hello) before the baseline reading.
    drop(open_many(port, "krk_bench_idle", 10).await?);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid)?;
    let started = Instant::now();
    let idle = open_many(port, "krk_bench_idle", sessions).await?;
    let opened_in = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid)?;
    let per = (after.saturating_sub(before) as f64 * 1024.0) / sessions as f64;
    println!(
        "  idle sessions: {sessions} opened in {:.1} s; server VmRSS {before} KiB → {after} KiB: {:.1} KB per session (target < 30 KB)",
        opened_in.as_secs_f64(),
        per / 1000.0
    );

    // Fan-out: `fanout` sessions that see the thread; each round is one change.
    let watchers = open_many(port, "krk_bench_watch", fanout).await?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let mut tasks = Vec::new();
    for mut ws in watchers {
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(m)) = ws.next().await {
                if let Message::Text(t) = m
                    && t.contains("\"type\":\"thread\"")
                {
                    let _ = tx.send(Instant::now());
                }
            }
        }));
    }
    let http = reqwest::Client::new();
    let mut lat = Vec::with_capacity(rounds * fanout);
    let mut spread = Vec::with_capacity(rounds * fanout);
    let mut lost = 0usize;
    for r in 0..rounds {
        let action = if r % 2 == 0 { "archive" } else { "unarchive" };
        let t0 = Instant::now();
        let res = http
            .post(format!(
                "http://127.0.0.1:{port}/api/v1/inbox/{thread}/{action}"
            ))
            .bearer_auth("krk_bench_watch")
            .send()
            .await?;
        if !res.status().is_success() {
            bail!("the change failed: {}", res.status());
        }
        let mut got = 0;
        let mut first = None;
        while got < fanout {
            match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                Ok(Some(at)) => {
                    lat.push(at.saturating_duration_since(t0));
                    let first = *first.get_or_insert(at);
                    spread.push(at.saturating_duration_since(first));
                    got += 1;
                }
                _ => {
                    lost += fanout - got;
                    break;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lat.sort();
    spread.sort();
    println!(
        "  fan-out: {rounds} changes × {fanout} sessions ({} receipts, {lost} missing), timed from sending the REST request: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 < 50 ms)",
        lat.len(),
        pct(&lat, 0.50).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    println!(
        "    of which the fan-out itself (each receipt after the round's first): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(&spread, 0.50).as_secs_f64() * 1e3,
        pct(&spread, 0.99).as_secs_f64() * 1e3,
        spread.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    for t in tasks {
        t.abort();
    }
    drop(idle);

    // REST: the inbox list of 50 threads vs /healthz, with wrk.
    let dir = tempfile::tempdir()?;
    let script = dir.path().join("auth.lua");
    std::fs::write(
        &script,
        "wrk.headers[\"Authorization\"] = \"Bearer krk_bench_watch\"\n",
    )?;
    let (h_rps, h_bad, h_lat) = crate::common::wrk(
        &format!("http://127.0.0.1:{port}/healthz"),
        &script,
        seconds,
        32,
    )
    .await?;
    let (rps, bad, lat) = crate::common::wrk(
        &format!("http://127.0.0.1:{port}/api/v1/inbox?workspace=lunavo&limit=50"),
        &script,
        seconds,
        32,
    )
    .await?;
    println!("  REST (wrk -t2 -c32 -d{seconds}s, same server):");
    println!("    GET /healthz                    {h_rps:>8.0} req/s (non-2xx {h_bad})  {h_lat}");
    println!(
        "    GET /api/v1/inbox (50 threads)  {rps:>8.0} req/s (non-2xx {bad})  {lat}  = {:.2} × /healthz (target ≥ 5,000 req/s)",
        rps / h_rps.max(1.0)
    );
    Ok(())
}
