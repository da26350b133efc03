//! What the benchmarks share: the conditions line, scratch stores, histogram lines, a
//! loopback server, `wrk`, and the `krake` binary for benchmarks against a running Krake.

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use krake_store::Store;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::Stdio;

/// Prints the build profile and the load average (every benchmark starts with it).
pub fn print_conditions() {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "build: {profile}; load average: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
}

/// A migrated SQLite store in `dir`.
pub async fn scratch_sqlite(dir: &tempfile::TempDir) -> anyhow::Result<Store> {
    let store = Store::open(&Store::sqlite_url(&dir.path().join("bench.db"))).await?;
    store.migrate(|_| {}).await?;
    Ok(store)
}

/// A migrated scratch database on the PostgreSQL server at `admin` (an admin URL), and its
/// name (drop it with [`drop_postgres`]).
pub async fn scratch_postgres(admin: &str) -> anyhow::Result<(Store, String)> {
    let name = format!("krake_bench_{}", std::process::id());
    let a = Store::open(admin)
        .await
        .context("cannot reach the PostgreSQL server given to --postgres")?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(a.pool())
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(a.pool())
        .await?;
    a.pool().close().await;
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(admin);
    let store = Store::open(&format!("{base}/{name}")).await?;
    store.migrate(|_| {}).await?;
    Ok((store, name))
}

/// Drops a scratch database made by [`scratch_postgres`].
pub async fn drop_postgres(admin: &str, name: &str) {
    if let Ok(a) = Store::open(admin).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(a.pool())
            .await;
        a.pool().close().await;
    }
}

/// Prints one histogram (nanoseconds) as a p50/p99/max line in microseconds.
pub fn report(label: &str, h: &Histogram<u64>) {
    println!(
        "  {label:<34} n={:<6} p50={:>7.1} µs  p99={:>7.1} µs  max={:>8.1} µs",
        h.len(),
        h.value_at_quantile(0.50) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0
    );
}

/// Serves `app` on 127.0.0.1 (port 0) until the returned sender is used or dropped.
pub async fn serve_on(
    app: axum::Router,
) -> anyhow::Result<(std::net::SocketAddr, tokio::sync::oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.await;
            })
            .await;
    });
    Ok((addr, tx))
}

/// Runs wrk against `url` and returns (requests/s, non-2xx count, latency lines).
pub async fn wrk(
    url: &str,
    script: &std::path::Path,
    seconds: u32,
    connections: u32,
) -> anyhow::Result<(f64, u64, String)> {
    let out = tokio::process::Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(url)
        .output()
        .await
        .context("could not run `wrk`: install it with `apt-get install wrk`")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    anyhow::ensure!(
        out.status.success(),
        "wrk failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rps = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .context("no Requests/sec in wrk's output")?;
    let non2xx = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Non-2xx or 3xx responses:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let latency: Vec<&str> = text
        .lines()
        .filter(|l| l.trim_start().starts_with(['5', '9']) && l.contains('%'))
        .map(str::trim)
        .collect();
    Ok((rps, non2xx, latency.join("  ")))
}

/// The `krake` binary to start: `given` (`--krake-bin`, `KRAKE_BIN`), else `krake` beside this
/// binary (cargo puts both in target/<profile>/).
pub fn krake_bin(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p.to_owned());
    }
    let exe = std::env::current_exe().context("cannot find this binary's path")?;
    let bin = exe.with_file_name("krake");
    if !bin.exists() {
        bail!(
            "{} does not exist: build it with `cargo build --release --bin krake`, or give --krake-bin",
            bin.display()
        );
    }
    Ok(bin)
}

/// Starts `krake serve --listen 127.0.0.1:0` on a data directory whose SQLite file is
/// `bench.db`, with no `KRAKE_` variables from the surrounding environment except `env`, and
/// returns it with the port it listens on (read from its start-up line).
pub fn spawn_serve(
    bin: &Path,
    dir: &Path,
    config: Option<&Path>,
    env: &[(&str, &str)],
) -> anyhow::Result<(std::process::Child, u16)> {
    let mut cmd = std::process::Command::new(bin);
    for (k, _) in std::env::vars() {
        if k.starts_with("KRAKE_") {
            cmd.env_remove(k);
        }
    }
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .env("KRAKE_LOG", "warn")
        .arg("--data-dir")
        .arg(dir)
        .args(["--database-url"])
        .arg(Store::sqlite_url(&dir.join("bench.db")))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{} serve`", bin.display()))?;
    let stderr = child.stderr.take().context("no stderr")?;
    let mut lines = std::io::BufReader::new(stderr).lines();
    let port = loop {
        let Some(line) = lines.next() else {
            let _ = child.wait();
            bail!("krake serve exited before listening");
        };
        let line = line?;
        if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
            break rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap_or_default()
                .parse::<u16>()?;
        }
    };
    // Keep draining so the child never blocks on a full pipe; warnings still show.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("krake serve: {line}");
        }
    });
    Ok((child, port))
}
