//! `visitors`: the customer widget against a real `krake serve` child process on a scratch
//! SQLite database, loaded from this process over loopback with the `Origin` header a shop's
//! page sends.
//!
//! 1. Connected visitors: the server's `VmRSS` before and after N visitors opened
//!    `/ws/visitor` (each said hello with one of four publishable keys and got its welcome, a
//!    new conversation), divided by N.
//! 2. Round trip with no model: Q of those visitors each send a question; the time from the
//!    send to the message telling them a person will answer (the question filed as a thread
//!    for the team, the message kept in the conversation and pushed), p50/p99/max.

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
use krake_core::actor::Actor;
use krake_core::visitor::{NewKey, Visitors};
use krake_core::workspace::WorkspaceSlug;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const ORIGIN: &str = "http://shop.bench:8081";
const KEYS: usize = 4;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Runs the customer widget benchmark against `krake_bin` started as `krake serve`.
pub async fn run(
    krake_bin: &std::path::Path,
    visitors: usize,
    questions: usize,
) -> anyhow::Result<()> {
    let want = visitors as u64 + 1024;
    let limit = rlimit::increase_nofile_limit(want).context("cannot raise RLIMIT_NOFILE")?;
    if limit < want {
        bail!(
            "RLIMIT_NOFILE is {limit}, {want} are needed: raise the hard limit (ulimit -Hn) or use fewer --visitors"
        );
    }
    let dir = tempfile::tempdir()?;
    let store = crate::common::scratch_sqlite(&dir).await?;
    let directory = krake_core::config::Directory::new(
        krake_core::workspace::default_workspaces(),
        krake_core::agent::default_agents(),
    )?;
    let rules = Visitors::new(
        Arc::new(store.clone()),
        Arc::new(directory),
        Arc::new(krake_core::time::SystemClock),
    );
    let mut keys = Vec::new();
    for i in 0..KEYS {
        let key = format!("kpub_bench{i:02}{}", "0123456789abcdef0123456789");
        let new = NewKey {
            workspace: WorkspaceSlug::parse("lunavo")?,
            agent: None,
            origins: vec![ORIGIN.to_owned()],
        };
        rules.create_key(&Actor::local(), &new, &key).await?;
        keys.push(key);
    }
    store.pool().close().await;
    // Every visitor comes from this one loopback address: its request limit is lifted (the
    // visitors' own limits, per visitor and per key, still apply).
    let config = dir.path().join("krake.toml");
    std::fs::write(
        &config,
        "[http]\nrequests_per_minute_per_address = 1000000\nburst_per_address = 100000\n",
    )?;
    let (mut child, port) = crate::common::spawn_serve(krake_bin, dir.path(), Some(&config), &[])?;
    let result = measure(child.id(), port, &keys, visitors, questions).await;
    let _ = child.kill();
    let _ = child.wait();
    result
}

use crate::web::{pct, rss_kib};

async fn open(port: u16, key: &str) -> anyhow::Result<Ws> {
    let mut req = format!("ws://127.0.0.1:{port}/ws/visitor").into_client_request()?;
    req.headers_mut().insert("origin", ORIGIN.parse()?);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    let hello = serde_json::json!({"type": "hello", "key": key});
    ws.send(Message::Text(hello.to_string().into())).await?;
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.contains("\"welcome\"") => Ok(ws),
        other => bail!("no welcome: {other:?}"),
    }
}

async fn open_many(port: u16, keys: &[String], n: usize) -> anyhow::Result<Vec<Ws>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let batch = (n - out.len()).min(200);
        let base = out.len();
        let opened = futures_util::future::join_all(
            (0..batch).map(|i| open(port, &keys[(base + i) % keys.len()])),
        )
        .await;
        for ws in opened {
            out.push(ws?);
        }
    }
    Ok(out)
}

async fn ask(ws: &mut Ws, n: usize) -> anyhow::Result<Duration> {
    let say = serde_json::json!({"type": "say", "id": format!("q{n}"), "text": format!("Do you ship order {n} to Norway?")});
    let start = Instant::now();
    ws.send(Message::Text(say.to_string().into())).await?;
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains("\"message\"") => {
                return Ok(start.elapsed());
            }
            Ok(Some(Ok(_))) => {}
            other => bail!("no answer: {other:?}"),
        }
    }
}

async fn measure(
    pid: u32,
    port: u16,
    keys: &[String],
    visitors: usize,
    questions: usize,
) -> anyhow::Result<()> {
    // Warm the server's pools and caches first.
    drop(open_many(port, keys, 8).await?);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(pid)?;
    let started = Instant::now();
    let mut open = open_many(port, keys, visitors).await?;
    let took = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_kib(pid)?;
    println!(
        "  connected visitors: {visitors} opened in {:.1} s; server VmRSS {before} KiB → {after} KiB: {:.1} KB per visitor",
        took.as_secs_f64(),
        (after.saturating_sub(before)) as f64 * 1.024 / visitors as f64
    );
    let q = questions.min(open.len());
    let mut times = Vec::with_capacity(q);
    for (n, ws) in open.iter_mut().take(q).enumerate() {
        times.push(ask(ws, n).await?);
    }
    times.sort_unstable();
    println!(
        "  question → \"a person will answer\" (no model; filed as a thread), {q} visitors one after another: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(&times, 0.5).as_secs_f64() * 1e3,
        pct(&times, 0.99).as_secs_f64() * 1e3,
        times.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    drop(open);
    Ok(())
}
