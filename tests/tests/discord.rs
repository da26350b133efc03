//! The Discord front in the real `krake` binary: `krake serve` answers the real Discord-signed
//! PING on `/discord/interactions`, the token never prints, and registration explains what it
//! needs.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_tests::{krake, run};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

fn fixture(name: &str) -> PathBuf {
    std::env::var("KRAKE_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"))
        .join("discord")
        .join(name)
}

fn post(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    buf
}

#[test]
fn serve_answers_the_real_discord_ping_and_refuses_forgeries() {
    let headers: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("real_ping_request_headers.json")).unwrap(),
    )
    .unwrap();
    let body = std::fs::read(fixture("real_ping_request_body.json")).unwrap();
    let key = headers["public_key_hex"].as_str().unwrap();
    let sig = headers["headers"]["X-Signature-Ed25519"].as_str().unwrap();
    let ts = headers["headers"]["X-Signature-Timestamp"]
        .as_str()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The real PING was signed in 2022: allow for its age (the default is 5 minutes, and
    // refuses it; the adapter's tests show both).
    let config = dir.path().join("krake.toml");
    std::fs::write(&config, "[discord]\nmax_signature_age_secs = 630720000\n").unwrap();
    let mut child = krake(dir.path())
        .env("KRAKE_DISCORD_PUBLIC_KEY", key)
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let port = krake_tests::listening_port(&mut child);
    let ok = post(
        port,
        "/discord/interactions",
        &[("X-Signature-Ed25519", sig), ("X-Signature-Timestamp", ts)],
        &body,
    );
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.ends_with(r#"{"type":1}"#), "{ok}");
    let forged = post(
        port,
        "/discord/interactions",
        &[
            ("X-Signature-Ed25519", sig),
            ("X-Signature-Timestamp", "1657322079"),
        ],
        &body,
    );
    assert!(forged.starts_with("HTTP/1.1 401"), "{forged}");
    let unsigned = post(port, "/discord/interactions", &[], &body);
    assert!(unsigned.starts_with("HTTP/1.1 401"), "{unsigned}");
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn the_discord_token_never_prints_and_register_says_what_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, _) = run(krake(dir.path())
        .env("KRAKE_DISCORD_TOKEN", "MTIz.NDU2.s3cret-token")
        .arg("config"));
    assert!(ok);
    assert!(!out.contains("s3cret"), "{out}");
    assert!(out.contains("[discord]\ntoken = \"***\""), "{out}");
    let (ok, _, err) = run(krake(dir.path()).args(["discord", "register"]));
    assert!(!ok);
    assert!(err.contains("KRAKE_DISCORD_TOKEN"), "{err}");
    let (ok, _, err) = run(krake(dir.path())
        .env("KRAKE_DISCORD_TOKEN", "MTIz.NDU2.s3cret-token")
        .args(["discord", "register", "--guild", "42"]));
    assert!(!ok);
    assert!(err.contains("KRAKE_DISCORD_APPLICATION_ID"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    let (ok, _, err) = run(krake(dir.path())
        .env("KRAKE_DISCORD_PUBLIC_KEY", "not-a-key")
        .arg("config"));
    assert!(!ok);
    assert!(err.contains("public key"), "{err}");
}
