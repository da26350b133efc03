//! Shared helpers for Krake's end-to-end tests: finding and running the real `krake` binary
//! against a temporary data directory, and local fakes of the platforms' APIs
//! ([`fake_telegram`], [`fake_discord`], [`fake_openai`], [`fake_shopify`], [`fake_embeddings`], [`fake_qdrant`]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod fake_binance;
pub mod fake_discord;
pub mod fake_embeddings;
pub mod fake_openai;
pub mod fake_qdrant;
pub mod fake_shopify;
pub mod fake_telegram;
pub mod real_qdrant;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The `krake` binary built by `cargo build --bin krake` (scripts/test builds it first), or
/// `KRAKE_BIN` when set.
pub fn krake_bin() -> PathBuf {
    if let Ok(p) = std::env::var("KRAKE_BIN") {
        return PathBuf::from(p);
    }
    // Tests run from target/<profile>/deps/; the binary sits in target/<profile>/.
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = profile_dir.join("krake");
    assert!(
        bin.exists(),
        "{} does not exist: build it first with `cargo build --bin krake` (scripts/test does)",
        bin.display()
    );
    bin
}

/// The Python of a virtual environment with the MCP Python SDK (`KRAKE_MCP_PYTHON`, made by
/// scripts/test); the MCP tests fail, never skip, without it.
pub fn mcp_python() -> PathBuf {
    let p = std::env::var("KRAKE_MCP_PYTHON").unwrap_or_else(|_| {
        panic!("KRAKE_MCP_PYTHON is not set: it names the Python of a virtual environment with the `mcp` package (scripts/test makes one)")
    });
    assert!(
        Path::new(&p).exists(),
        "KRAKE_MCP_PYTHON={p} does not exist"
    );
    PathBuf::from(p)
}

/// The `krake-bench` binary built beside `krake` (`cargo build --workspace` builds both), or
/// `KRAKE_BENCH_BIN` when set.
pub fn krake_bench_bin() -> PathBuf {
    if let Ok(p) = std::env::var("KRAKE_BENCH_BIN") {
        return PathBuf::from(p);
    }
    let bin = krake_bin().with_file_name("krake-bench");
    assert!(
        bin.exists(),
        "{} does not exist: build it first with `cargo build --bin krake-bench` (scripts/test does)",
        bin.display()
    );
    bin
}

/// A `krake` command on a data directory, with no config file and no `KRAKE_` variables from
/// the surrounding environment.
pub fn krake(data_dir: &Path) -> Command {
    with_data_dir(Command::new(krake_bin()), data_dir)
}

/// A `krake-bench` command on a data directory, like [`krake`] (it starts the same `krake`
/// binary for benchmarks against a running Krake).
pub fn krake_bench(data_dir: &Path) -> Command {
    let mut c = with_data_dir(Command::new(krake_bench_bin()), data_dir);
    c.env("KRAKE_BIN", krake_bin());
    c
}

fn with_data_dir(mut c: Command, data_dir: &Path) -> Command {
    for (k, _) in std::env::vars() {
        if k.starts_with("KRAKE_") && k != "KRAKE_BIN" && k != "KRAKE_BENCH_BIN" {
            c.env_remove(k);
        }
    }
    c.arg("--data-dir").arg(data_dir);
    c
}

/// Runs `krake chat` with `lines` on stdin; returns stdout, failing the test on a non-zero exit.
pub fn chat(data_dir: &Path, lines: &[&str]) -> String {
    chat_command(krake(data_dir), lines)
}

/// [`chat`] with a config file.
pub fn chat_with_config(data_dir: &Path, config: &Path, lines: &[&str]) -> String {
    let mut c = krake(data_dir);
    c.arg("--config").arg(config);
    chat_command(c, lines)
}

fn chat_command(mut command: Command, lines: &[&str]) -> String {
    use std::io::Write;
    let mut child = command
        .arg("chat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn krake chat");
    {
        let mut stdin = child.stdin.take().expect("stdin");
        for l in lines {
            writeln!(stdin, "{l}").expect("write");
        }
    }
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "krake chat failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Waits until a spawned `krake serve` (stderr piped) says where it listens and returns the
/// port; stderr is drained afterwards so the child never blocks on a full pipe.
pub fn listening_port(child: &mut std::process::Child) -> u16 {
    use std::io::{BufRead, BufReader};
    let stderr = child.stderr.take().expect("serve's stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let port = loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .expect("stderr is text");
        if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
            break rest
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|p| p.parse::<u16>().ok())
                .expect("a port after http://127.0.0.1:");
        }
    };
    std::thread::spawn(move || for _ in lines {});
    port
}

/// Splits piped chat output into one reply per input line (replies are separated by blank lines).
pub fn replies(out: &str) -> Vec<String> {
    out.split("\n\n")
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Output of a finished command as (status ok, stdout, stderr).
pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("run krake");
    (
        status.success(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// Spawns `krake … serve` (`cmd`, with stderr piped by this function) and waits until it
/// listens: the child, its HTTP port and every stderr line (collected as they come, so the
/// child never blocks on a full pipe).
pub async fn spawn_serve(
    mut cmd: Command,
) -> (std::process::Child, u16, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let port = tokio::task::spawn_blocking(move || {
        let mut lines = std::io::BufReader::new(stderr).lines();
        let mut port = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            let _ = tx.send(line.clone());
            if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
                port = rest
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .and_then(|p| p.parse::<u16>().ok());
                break;
            }
        }
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        port
    })
    .await
    .unwrap()
    .expect("serve exited before listening");
    (child, port, rx)
}

/// Stops a `krake serve` child with SIGTERM and checks it shut down gracefully (exit 0).
pub fn stop(mut child: std::process::Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
}

/// Sends one raw HTTP/1.1 request to `127.0.0.1:port` (JSON content type, `Connection: close`)
/// and returns the whole response as text, status line and headers included: for tests that
/// need exact bytes on the wire or to see what a server answers before it is up.
pub async fn raw_http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}
