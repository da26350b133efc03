//! The real `krake` binary, end to end, on temporary data directories.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_tests::{chat, krake, krake_bench, replies, run};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

#[test]
fn demo_then_decide_then_restart_keeps_state() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, _) = run(krake(dir.path()).arg("demo"));
    assert!(ok);
    assert!(out.contains("Added 8 demo threads"), "{out}");
    let (ok, out, _) = run(krake(dir.path()).arg("demo"));
    assert!(
        ok && out.contains("already has threads"),
        "demo is added once: {out}"
    );

    let out = chat(
        dir.path(),
        &[
            "/todo",
            "what's open in lunavo?",
            "approve 1",
            "/reject 2 too expensive",
            "archive #7",
            "approve 1",
            "approve 999",
            "/frobnicate",
        ],
    );
    let r = replies(&out);
    assert_eq!(r.len(), 8, "{out}");
    assert!(r[0].starts_with("Open threads (8):"), "{}", r[0]);
    assert!(r[1].starts_with("Open threads in Lunavo (2):"), "{}", r[1]);
    assert!(
        r[1].contains("#1") && r[1].contains("#2") && !r[1].contains("#3 "),
        "{}",
        r[1]
    );
    assert!(r[2].contains("Approved #1"), "{}", r[2]);
    assert!(r[3].contains("Rejected (too expensive) #2"), "{}", r[3]);
    assert!(r[4].contains("Archived #7"), "{}", r[4]);
    assert!(
        r[5].contains("#1 was already approved by local; nothing changed"),
        "{}",
        r[5]
    );
    assert!(r[6].contains("no thread #999"), "{}", r[6]);
    assert!(
        r[7].contains("no command `/frobnicate`") && r[7].contains("/help"),
        "{}",
        r[7]
    );

    // A new process sees the same state.
    let out = chat(dir.path(), &["/todo all", "/show 2", "/todo archived"]);
    let r = replies(&out);
    assert!(
        r[0].contains("#1    lunavo          approval   approved"),
        "{}",
        r[0]
    );
    assert!(
        r[0].contains("#2    lunavo          approval   rejected"),
        "{}",
        r[0]
    );
    assert!(
        !r[0].contains("#7 "),
        "archived threads are hidden from `all`: {}",
        r[0]
    );
    assert!(r[1].contains("Decided by local: too expensive"), "{}", r[1]);
    assert!(r[2].contains("#7"), "{}", r[2]);
}

#[test]
fn corrupt_config_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("krake.toml");
    std::fs::write(
        &cfg,
        "listen = \"127.0.0.1:8080\"\nsweep_interval_secs = \"often\"\n",
    )
    .unwrap();
    let (ok, _, err) = run(krake(dir.path()).arg("--config").arg(&cfg).arg("config"));
    assert!(!ok);
    assert!(
        err.contains("krake.toml") && err.contains("line 2") && err.contains("sweep_interval_secs"),
        "{err}"
    );
    let (ok, _, err) = run(krake(dir.path())
        .arg("--config")
        .arg(dir.path().join("missing.toml"))
        .arg("config"));
    assert!(!ok && err.contains("cannot read config file"), "{err}");
}

#[test]
fn unopenable_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(krake(dir.path()).args([
        "--database-url",
        "postgres://krake:pw-secret@127.0.0.1:1/none",
        "migrate",
    ]));
    assert!(!ok);
    assert!(err.contains("the database cannot be opened"), "{err}");
    assert!(!err.contains("pw-secret"), "password printed: {err}");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let (ok, _, err) = run(krake(&file.join("sub")).arg("migrate"));
    assert!(
        !ok && err.contains("cannot create the data directory"),
        "{err}"
    );
}

#[test]
fn config_prints_effective_settings_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, _) = run(krake(dir.path()).arg("config").env(
        "KRAKE_DATABASE_URL",
        "postgres://krake:topsecret@db:5432/krake",
    ));
    assert!(ok);
    assert!(out.contains("postgres://krake:***@db:5432/krake"), "{out}");
    assert!(!out.contains("topsecret"), "{out}");
    assert!(out.contains("slug = \"hard-life-mode\""), "{out}");
    assert!(out.contains("[agents.soshie]"), "{out}");
}

#[test]
fn migrate_reports_progress() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(krake(dir.path()).arg("migrate"));
    assert!(
        ok && err.contains("applying ") && err.contains("database migration(s)"),
        "{err}"
    );
    let (ok, _, err) = run(krake(dir.path()).arg("migrate"));
    assert!(ok && err.contains("up to date"), "{err}");
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf
}

/// Starts `krake serve --listen 127.0.0.1:0` and returns the child and its port.
fn serve(dir: &std::path::Path, extra: &[&str]) -> (std::process::Child, u16) {
    let mut child = krake(dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let port = krake_tests::listening_port(&mut child);
    (child, port)
}

#[test]
fn serve_answers_probes_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = serve(dir.path(), &[]);
    let health = http_get(port, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let ready = http_get(port, "/readyz");
    assert!(
        ready.starts_with("HTTP/1.1 200") && ready.contains("ready"),
        "{ready}"
    );
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
}

#[test]
fn nothing_is_lost_on_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port) = serve(dir.path(), &["--demo"]);
    assert!(http_get(port, "/readyz").starts_with("HTTP/1.1 200"));
    // Decide while the server runs (another process on the same SQLite file), then kill -9 it.
    let out = chat(dir.path(), &["approve 1"]);
    assert!(out.contains("Approved #1"), "{out}");
    child.kill().unwrap();
    child.wait().unwrap();
    let out = chat(dir.path(), &["/todo all"]);
    assert!(
        out.contains("Open threads") || out.contains("in any status"),
        "{out}"
    );
    assert!(out.contains("(8)"), "all demo threads survive: {out}");
    assert!(out.contains("approved"), "{out}");
}

#[test]
fn piped_chat_handles_noise_without_dumping_errors() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(9000);
    let out = chat(
        dir.path(),
        &[
            "\u{0}\u{1}garbage",
            &long,
            "/approve",
            "/reject abc",
            "ask nobody to do it",
            "/help approve",
        ],
    );
    let r = replies(&out);
    assert_eq!(r.len(), 6, "{out}");
    for reply in &r[..5] {
        assert!(reply.starts_with('!'), "a refusal, not an error: {reply}");
        assert!(
            !reply.to_lowercase().contains("panic") && !reply.contains("Error("),
            "{reply}"
        );
    }
    assert!(r[1].contains("too long"), "{}", r[1]);
    assert!(
        r[2].contains("needs a thread number") && r[2].contains("/approve 12"),
        "{}",
        r[2]
    );
    assert!(r[5].contains("/approve <id>"), "{}", r[5]);
}

#[test]
fn users_and_link_codes_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, _) = run(krake(dir.path()).args(["user", "add", "ana", "--role", "owner"]));
    assert!(
        ok && out.contains("ana is owner in every workspace"),
        "{out}"
    );
    let (ok, out, _) = run(krake(dir.path()).args([
        "user",
        "add",
        "bo",
        "--role",
        "member",
        "--workspace",
        "monarch",
    ]));
    assert!(ok && out.contains("bo is member in monarch"), "{out}");
    let (ok, _, err) = run(krake(dir.path()).args(["user", "add", "cy", "--role", "boss"]));
    assert!(!ok && err.contains("not a role"), "{err}");
    let (ok, _, err) = run(krake(dir.path()).args(["user", "add", "cy", "--workspace", "narnia"]));
    assert!(!ok && err.contains("no workspace `narnia`"), "{err}");
    let (ok, out, _) = run(krake(dir.path()).args(["user", "list"]));
    assert!(
        ok && out.contains("ana") && out.contains("member in monarch"),
        "{out}"
    );
    let (ok, code, err) = run(krake(dir.path()).args(["user", "link-code", "ana"]));
    assert!(ok, "{err}");
    assert_eq!(code.trim().len(), 8, "{code}");
    assert!(err.contains("/link"), "{err}");
    let (ok, _, err) = run(krake(dir.path()).args(["user", "link-code", "nobody"]));
    assert!(!ok && err.contains("no user `nobody`"), "{err}");
}

#[test]
fn bench_rag_measures_every_retrieval_mode_on_a_small_store() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = run(krake_bench(dir.path()).args([
        "rag",
        "--chunks",
        "400",
        "--queries",
        "20",
        "--sentences",
        "0",
        "--long-chunks",
        "0",
    ]));
    assert!(ok, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("store: 400 chunks"), "{out}");
    for mode in ["sparse", "dense", "hybrid (convex)", "hybrid + sentence"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("{mode} ")))
            .unwrap_or_else(|| panic!("no {mode} row in:\n{out}"));
        let figures: Vec<f64> = line[mode.len()..]
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        // p50 <= p99 <= max, all measured (a query takes some time).
        assert_eq!(figures.len(), 3, "{line}");
        assert!(
            figures[0] > 0.0 && figures[0] <= figures[1] && figures[1] <= figures[2],
            "{line}"
        );
    }
}

#[test]
fn bench_reply_times_webhook_updates_until_their_replies_reach_the_fake_bot_api() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) =
        run(krake_bench(dir.path()).args(["reply", "--rates", "10", "--seconds", "1"]));
    assert!(ok, "stdout: {out}\nstderr: {err}");
    for label in [
        "webhook -> sendMessage through Krake",
        "baseline: direct POST to the fake",
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(label))
            .unwrap_or_else(|| panic!("no `{label}` row in:\n{out}"));
        // Every update of the run was answered: ten samples, none failed.
        assert!(line.contains("n=10 "), "{line}");
        assert!(!line.contains("failed"), "{line}");
    }
}

#[test]
fn krake_has_no_bench_subcommand_any_more() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(krake(dir.path()).args(["bench", "inbox"]));
    assert!(!ok, "`krake bench` moved to krake-bench: {err}");
}
