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
