//! Krake as an MCP server, driven by an MCP implementation the project did not write: the
//! official Python SDK (PyPI `mcp`, in a virtual environment `scripts/test` makes; its path in
//! `KRAKE_MCP_PYTHON`). Its client drives `krake mcp` over stdio and `/mcp` on `krake serve`
//! over Streamable HTTP: the tools are listed from the command table, a thread is approved
//! with the same audit as every front, KPIs are read, a viewer is refused. Raw requests check
//! what a stranger may send: no or a revoked token, a malformed JSON-RPC message, 10 MB.
//!
//! Fails, never skips, without the SDK (scripts/test installs it).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_core::actor::{Actor, Role, UserName};
use krake_core::inbox::{NewThread, ThreadKind, ThreadStatus};
use krake_core::ports::{InboxRepo, TokenRepo, UserRepo, WriteCtx};
use krake_core::time::{Clock, SystemClock};
use krake_core::workspace::WorkspaceSlug;
use serde_json::{Value, json};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn client_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp/client.py")
}

/// Runs the Python client; (exit ok, its JSON output, stderr).
fn client(args: &[&str], token: Option<&str>, calls: Value) -> (bool, Value, String) {
    let mut cmd = Command::new(krake_tests::mcp_python());
    cmd.arg(client_script())
        .args(args)
        .env_remove("KRAKE_MCP_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(t) = token {
        cmd.env("KRAKE_MCP_TOKEN", t);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(calls.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    (
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A data directory with ana (owner) and vic (viewer in lunavo), their tokens, and one
/// approval in lunavo; returns the approval's id.
async fn setup(dir: &Path) -> i64 {
    let store = krake_store::Store::open(&krake_store::Store::sqlite_url(&dir.join("krake.db")))
        .await
        .unwrap();
    store.migrate(|_| {}).await.unwrap();
    let now = SystemClock.now();
    let lunavo = WorkspaceSlug::parse("lunavo").unwrap();
    for (name, role, ws) in [
        ("ana", Role::Owner, None),
        ("vic", Role::Viewer, Some(&lunavo)),
    ] {
        let n = UserName::parse(name).unwrap();
        store.upsert_user(&n, role, ws, now).await.unwrap();
        store
            .create_api_token(
                &n,
                &krake_web::hash_token(&format!("krk_{name}")),
                "mcp",
                now,
            )
            .await
            .unwrap();
    }
    let th = store
        .create(
            &NewThread::new(
                lunavo,
                ThreadKind::Approval,
                "Refund order 1042",
                "The hoodie arrived torn.",
            ),
            &WriteCtx {
                actor: Actor::system(),
                inbound: None,
                now,
            },
        )
        .await
        .unwrap();
    store.pool().close().await;
    th.id.0
}

async fn thread_status(dir: &Path, id: i64) -> (ThreadStatus, Option<String>) {
    let store = krake_store::Store::open(&krake_store::Store::sqlite_url(&dir.join("krake.db")))
        .await
        .unwrap();
    let th = store
        .get(krake_core::inbox::ThreadId(id))
        .await
        .unwrap()
        .unwrap();
    let by = th.decided_by.map(|u| u.to_string());
    let sources: Vec<String> = sqlx::query_scalar("SELECT source FROM inbound ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap_or_default();
    assert!(sources.iter().all(|s| s == "mcp"), "{sources:?}");
    store.pool().close().await;
    (th.status, by)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_drives_krake_mcp_over_stdio() {
    let dir = tempfile::tempdir().unwrap();
    let id = setup(dir.path()).await;
    let bin = krake_tests::krake_bin();
    let data = dir.path().to_str().unwrap().to_owned();
    let calls = json!([
        ["todo", {"workspace": "lunavo"}],
        ["approve", {"id": id}],
        ["kpi", {"args": "lunavo"}],
        ["search", {"args": "lunavo return policy"}],
        ["reply", {"id": "twelve", "text": "x"}],
        ["no_such_tool", {}]
    ]);
    let (ok, out, err) = client(
        &["stdio", bin.to_str().unwrap(), &data],
        Some("krk_ana"),
        calls,
    );
    assert!(ok, "{err}");
    let tools: Vec<&str> = out["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for t in [
        "todo", "show", "approve", "reject", "reply", "archive", "ask", "runs", "cancel", "kpi",
        "costs", "folder", "search",
    ] {
        assert!(tools.contains(&t), "{t} in {tools:?}");
    }
    // Schemas come from the command table: a thread number is an integer, workspaces a choice.
    assert_eq!(
        out["schemas"]["approve"]["properties"]["id"]["type"],
        "integer"
    );
    assert!(
        out["schemas"]["todo"]["properties"]["workspace"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("lunavo"))
    );
    let calls = out["calls"].as_array().unwrap();
    assert!(
        calls[0]["text"]
            .as_str()
            .unwrap()
            .contains("Refund order 1042"),
        "{}",
        calls[0]
    );
    assert_eq!(calls[1]["is_error"], false, "{}", calls[1]);
    assert!(
        calls[1]["text"]
            .as_str()
            .unwrap()
            .contains(&format!("#{id}")),
        "{}",
        calls[1]
    );
    assert_eq!(calls[2]["is_error"], false, "{}", calls[2]);
    assert!(
        calls[2]["text"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("lunavo"),
        "{}",
        calls[2]
    );
    // Knowledge search answers (this store has no documents: it says so, and how to add some).
    assert_eq!(calls[3]["is_error"], false, "{}", calls[3]);
    assert!(
        calls[3]["text"]
            .as_str()
            .unwrap()
            .contains("knowledge of lunavo"),
        "{}",
        calls[3]
    );
    assert_eq!(
        calls[4]["is_error"], true,
        "a bad argument is refused: {}",
        calls[4]
    );
    assert_eq!(calls[5]["is_error"], true, "{}", calls[5]);
    let (status, by) = thread_status(dir.path(), id).await;
    assert_eq!(status, ThreadStatus::Approved);
    assert_eq!(by.as_deref(), Some("ana"), "the token's user decided");
    // Resources are listed after the calls: the approved thread is no longer an open one.
    let resources: Vec<&str> = out["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        resources
            .iter()
            .all(|r| *r != format!("krake://threads/{id}")),
        "only open threads: {resources:?}"
    );

    // No token, or one Krake does not know: `krake mcp` refuses to start, saying why.
    let (ok, _, err) = client(&["stdio", bin.to_str().unwrap(), &data], None, json!([]));
    assert!(!ok);
    let (ok, _, err2) = client(
        &["stdio", bin.to_str().unwrap(), &data],
        Some("krk_nobody"),
        json!([]),
    );
    assert!(!ok, "{err}{err2}");
}

async fn post(port: u16, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let mut h = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
    ];
    h.extend_from_slice(headers);
    let out = krake_tests::raw_http(port, "POST", "/mcp", &h, body).await;
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

/// Posts a body the server may refuse before it has all of it: the status it answered.
async fn post_big(port: u16, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer krk_ana\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // The server may answer and close before the body is through.
    let _ = s.write_all(body).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out)
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_drives_slash_mcp_over_http_with_each_tokens_rights() {
    let dir = tempfile::tempdir().unwrap();
    let id = setup(dir.path()).await;
    let mut cmd = krake_tests::krake(dir.path());
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    let (child, port, _logs) = krake_tests::spawn_serve(cmd).await;
    let url = format!("http://127.0.0.1:{port}/mcp");

    // A viewer sees the thread but may not decide it.
    let (ok, out, err) = client(
        &["http", &url, "krk_vic"],
        None,
        json!([["show", {"id": id}], ["approve", {"id": id}]]),
    );
    assert!(ok, "{err}");
    // The open thread is a resource, read with the viewer's rights.
    let uri = format!("krake://threads/{id}");
    assert!(
        out["resources"].as_array().unwrap().contains(&json!(uri)),
        "{}",
        out["resources"]
    );
    assert!(
        out["read"][&uri]
            .as_str()
            .unwrap()
            .contains("The hoodie arrived torn."),
        "{}",
        out["read"]
    );
    let calls = out["calls"].as_array().unwrap();
    assert_eq!(calls[0]["is_error"], false, "{}", calls[0]);
    assert_eq!(calls[1]["is_error"], true, "{}", calls[1]);
    assert!(
        calls[1]["text"].as_str().unwrap().contains("cannot decide"),
        "{}",
        calls[1]
    );
    // The owner approves.
    let (ok, out, err) = client(
        &["http", &url, "krk_ana"],
        None,
        json!([["approve", {"id": id}]]),
    );
    assert!(ok, "{err}");
    assert_eq!(out["calls"][0]["is_error"], false, "{out}");

    // Without a token the client cannot even start a session.
    let (ok, _, err) = client(&["http", &url, "-"], None, json!([]));
    assert!(!ok, "{err}");

    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-03-26", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}})
    .to_string();
    let (status, body) = post(port, &[], init.as_bytes()).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("krake user token"), "says what to do: {body}");
    let (status, _) = post(
        port,
        &[("Authorization", "Bearer krk_revoked")],
        init.as_bytes(),
    )
    .await;
    assert_eq!(status, 401);
    // A malformed message gets an error, and the endpoint answers the next one.
    let bearer = [("Authorization", "Bearer krk_ana")];
    let (status, body) = post(
        port,
        &bearer,
        b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\"",
    )
    .await;
    assert!((400..500).contains(&status), "{status}: {body}");
    let (status, body) = post(port, &bearer, init.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    // Ten megabytes are refused before they are read.
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"tools/list\",\"params\":{{\"pad\":\"{}\"}}}}",
        "x".repeat(10 * 1024 * 1024)
    );
    assert_eq!(post_big(port, big.as_bytes()).await, 413);
    krake_tests::stop(child);
    let (status, by) = thread_status(dir.path(), id).await;
    assert_eq!(
        (status, by.as_deref()),
        (ThreadStatus::Approved, Some("ana"))
    );
}
