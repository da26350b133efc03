//! `krake user add … --password-stdin` / `KRAKE_USER_PASSWORD`: a short password is refused
//! and changes nothing; a good one is stored (only as an argon2 hash) and never printed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_tests::{krake, run};
use std::io::Write;
use std::process::Stdio;

fn add_with_stdin(dir: &std::path::Path, name: &str, password: &str) -> (bool, String, String) {
    let mut child = krake(dir)
        .args(["user", "add", name, "--role", "member", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn passwords_are_checked_stored_hashed_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = add_with_stdin(dir.path(), "bo", "short");
    assert!(!ok);
    assert!(err.contains("too short"), "{err}");
    let (_, list, _) = run(krake(dir.path()).args(["user", "list"]));
    assert!(!list.contains("bo"), "nothing was changed: {list}");

    let secret = "a much longer passphrase";
    let (ok, out, err) = add_with_stdin(dir.path(), "bo", secret);
    assert!(ok, "{err}");
    assert!(out.contains("can sign in"), "{out}");
    assert!(!out.contains(secret) && !err.contains(secret));

    let (ok, out, err) = run(krake(dir.path())
        .args(["user", "add", "cy", "--role", "viewer"])
        .env("KRAKE_USER_PASSWORD", "another long passphrase"));
    assert!(ok, "{err}");
    assert!(out.contains("can sign in"), "{out}");

    let db = std::fs::read(dir.path().join("krake.db")).unwrap();
    let text = String::from_utf8_lossy(&db);
    assert!(text.contains("$argon2id$"), "an argon2id hash is stored");
    assert!(!text.contains(secret), "the password itself is not stored");
}

/// Resident memory of a process now and at its peak, in MiB (`VmRSS`, `VmHWM`).
fn resident_mib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .unwrap_or(0)
            / 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// One HTTP/1.1 request to 127.0.0.1:`port`; returns the whole response as text.
async fn http(port: u16, request: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_parallel_sign_ins_keep_resident_memory_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(krake(dir.path())
        .args(["user", "add", "ana", "--role", "owner"])
        .env("KRAKE_USER_PASSWORD", "a much longer passphrase"));
    assert!(ok, "{err}");
    // The per-address and per-name limits are lifted: this measures the password checks alone.
    let config = dir.path().join("krake.toml");
    std::fs::write(
        &config,
        "[web]\nlogin_per_address_per_minute = 10000\nlogin_per_user_per_minute = 10000\nlogin_attempts = 10000\n",
    )
    .unwrap();
    let mut cmd = krake(dir.path());
    cmd.arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let (child, port, _lines) = krake_tests::spawn_serve(cmd).await;
    let pid = child.id();
    let page = http(
        port,
        "GET /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".into(),
    )
    .await;
    let token = page
        .split("krake_login_csrf=")
        .nth(1)
        .and_then(|r| r.get(..64))
        .expect("the sign-in page sets its CSRF cookie")
        .to_owned();
    let (idle, _) = resident_mib(pid);
    let tries: Vec<_> = (0..64)
        .map(|i| {
            // Known and unknown names alike: both cost one argon2 check.
            let user = if i % 2 == 0 { "ana".to_owned() } else { format!("nobody{i}") };
            let body = format!("user={user}&password=wrong+guess+{i}&csrf={token}");
            let req = format!(
                "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nCookie: krake_login_csrf={token}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            tokio::spawn(http(port, req))
        })
        .collect();
    let mut statuses = std::collections::BTreeMap::<String, u32>::new();
    for t in tries {
        let res = t.await.unwrap();
        let status = res.split(' ').nth(1).unwrap_or("none").to_owned();
        *statuses.entry(status).or_default() += 1;
    }
    let (after, peak) = resident_mib(pid);
    println!(
        "64 parallel sign-ins: resident {idle} MiB idle, {after} MiB after, {peak} MiB at the peak; answers {statuses:?}"
    );
    krake_tests::stop(child);
    assert_eq!(statuses.values().sum::<u32>(), 64);
    assert!(
        statuses.keys().all(|s| s == "401" || s == "503"),
        "every try is refused (wrong password) or turned away (busy): {statuses:?}"
    );
    assert!(
        peak < 150,
        "peak resident memory {peak} MiB (idle {idle} MiB)"
    );
}
