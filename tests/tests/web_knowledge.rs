//! A workspace's knowledge over the REST API, end to end on the real `krake serve`: a
//! Markdown upload is accepted (202) and learned by the server's learner, listed with its
//! passages, found by a question with its citation and score, and forgotten; viewers may list
//! but not add or forget, another workspace's member is refused, a file over `[rag]
//! max_file_mb` is refused with 413 before it is read, and the OpenAPI document lists it all.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_tests::{krake, raw_http, run, spawn_serve, stop};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// A token for a new user with `role` in `workspace`.
fn token(dir: &Path, config: &Path, user: &str, role: &str, workspace: &str) -> String {
    let (ok, _, err) = run(krake(dir).arg("--config").arg(config).args([
        "user",
        "add",
        user,
        "--role",
        role,
        "--workspace",
        workspace,
    ]));
    assert!(ok, "{err}");
    let (ok, out, err) = run(krake(dir)
        .arg("--config")
        .arg(config)
        .args(["user", "token", user]));
    assert!(ok, "{err}");
    out.trim().to_owned()
}

/// The status and JSON body of a raw HTTP response.
fn parse(raw: &str) -> (u16, Value) {
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {raw:?}"));
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// One API call with a bearer token and no body.
async fn call(port: u16, method: &str, path: &str, token: &str) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    parse(&raw_http(port, method, path, &[("Authorization", &auth)], b"").await)
}

/// Uploads `bytes` as `name` (multipart, field `file`), with an idempotency key when given.
async fn upload(
    port: u16,
    ws: &str,
    token: &str,
    name: &str,
    bytes: &[u8],
    key: Option<&str>,
) -> (u16, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let boundary = "krake-test-boundary-7d1f";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let key = key
        .map(|k| format!("Idempotency-Key: {k}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST /api/v1/workspaces/{ws}/knowledge HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n{key}Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    // A refused upload is answered before its body is through.
    let _ = s.write_all(&body).await;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    parse(&String::from_utf8_lossy(&out))
}

/// Polls `f` until it is true (60 s at most: the learner loads its embedder first).
async fn eventually(mut f: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..600 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

const SHIPPING: &str = "# Shipping\n\nWe ship hoodies to Porto with DHL within 3 days.\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_uploaded_over_the_api_are_learned_listed_searched_and_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("krake.toml");
    std::fs::write(&config, "[rag]\nmax_file_mb = 1\n").unwrap();
    let ana = token(dir.path(), &config, "ana", "member", "lunavo");
    let vi = token(dir.path(), &config, "vi", "viewer", "lunavo");
    let bo = token(dir.path(), &config, "bo", "member", "monarch");
    let mut cmd = krake(dir.path());
    cmd.arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let (child, port, _logs) = spawn_serve(cmd).await;
    let base = "/api/v1/workspaces/lunavo/knowledge";

    // Uploaded: 202 with chat's words; the same upload retried with its key counts once.
    let (status, body) = upload(
        port,
        "lunavo",
        &ana,
        "shipping.md",
        SHIPPING.as_bytes(),
        Some("up-1"),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["name"], "shipping.md");
    assert!(
        body["reply"]
            .as_str()
            .unwrap()
            .starts_with("Reading shipping.md into lunavo's knowledge"),
        "{body}"
    );
    let (status, again) = upload(
        port,
        "lunavo",
        &ana,
        "shipping.md",
        SHIPPING.as_bytes(),
        Some("up-1"),
    )
    .await;
    assert_eq!((status, &again["reply"]), (202, &body["reply"]));

    // Learned by the learner in `krake serve`, then listed with its passages (a viewer may).
    let mut listed = Value::Null;
    let learned = eventually(async || {
        let (status, body) = call(port, "GET", base, &vi).await;
        assert_eq!(status, 200, "{body}");
        listed = body;
        listed["sources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "shipping.md" && s["status"] == "learned")
    })
    .await;
    assert!(learned, "never learned: {listed}");
    let sources = listed["sources"].as_array().unwrap();
    assert_eq!(
        sources.len(),
        1,
        "the retried upload counted once: {listed}"
    );
    let s = &sources[0];
    assert!(s["passages"].as_i64().unwrap() > 0, "{s}");
    assert_eq!(s["kind"], "markdown");
    assert_eq!(s["added_by"], "ana");
    assert_eq!(s["front"], "api");
    assert_eq!(s["size"], SHIPPING.len());

    // A question finds the passage, with its citation and score.
    let (status, found) = call(
        port,
        "GET",
        &format!("{base}/search?q=which%20courier%20goes%20to%20Porto"),
        &vi,
    )
    .await;
    assert_eq!(status, 200, "{found}");
    let first = &found["passages"][0];
    assert_eq!(first["source"], "shipping.md", "{found}");
    assert_eq!(first["citation"], "shipping.md §1");
    assert_eq!(first["position"], 1);
    assert!(first["text"].as_str().unwrap().contains("DHL"), "{found}");
    assert!(first["score"].as_f64().unwrap() > 0.0, "{found}");
    let (status, _) = call(port, "GET", &format!("{base}/search?q="), &vi).await;
    assert_eq!(status, 400);

    // A viewer may neither add nor forget; another workspace's member sees nothing here.
    let (status, body) = upload(port, "lunavo", &vi, "notes.md", b"# Notes\n\nhi", None).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("you are a viewer there"),
        "{body}"
    );
    let (status, _) = call(port, "DELETE", &format!("{base}/shipping.md"), &vi).await;
    assert_eq!(status, 403);
    for (method, path) in [
        ("GET", base.to_owned()),
        ("GET", format!("{base}/search?q=Porto")),
        ("DELETE", format!("{base}/shipping.md")),
    ] {
        let (status, body) = call(port, method, &path, &bo).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
    }
    let (status, _) = upload(port, "lunavo", &bo, "x.md", b"# X\n\nx", None).await;
    assert_eq!(status, 403);
    let (status, _) = call(port, "GET", "/api/v1/workspaces/nope/knowledge", &ana).await;
    assert_eq!(status, 404);

    // Over `[rag] max_file_mb` (1 MB): 413 with the reason, nothing filed.
    let big = vec![b'a'; 3 * 1024 * 1024];
    let (status, body) = upload(port, "lunavo", &ana, "big.md", &big, None).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("larger than 1.0 MB"),
        "{body}"
    );
    // Just over it, with the form around it fitting the slack: refused while it is read.
    let over = vec![b'a'; 1024 * 1024 + 10];
    let (status, _) = upload(port, "lunavo", &ana, "over.md", &over, None).await;
    assert_eq!(status, 413);
    let (_, body) = call(port, "GET", base, &ana).await;
    assert_eq!(body["sources"].as_array().unwrap().len(), 1, "{body}");

    // Forgotten: gone from the list and from search; forgetting it again is 404.
    let (status, body) = call(port, "DELETE", &format!("{base}/shipping.md"), &ana).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["reply"],
        "Forgot shipping.md: lunavo's agents no longer know it."
    );
    let (_, body) = call(port, "GET", base, &ana).await;
    assert_eq!(body["sources"], serde_json::json!([]), "{body}");
    let (_, found) = call(port, "GET", &format!("{base}/search?q=Porto%20DHL"), &ana).await;
    assert!(
        !found["passages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["source"] == "shipping.md"),
        "{found}"
    );
    let (status, _) = call(port, "DELETE", &format!("{base}/shipping.md"), &ana).await;
    assert_eq!(status, 404);

    // The OpenAPI document lists the four.
    let (status, doc) = call(port, "GET", "/api/v1/openapi.json", &ana).await;
    assert_eq!(status, 200);
    let paths = &doc["paths"];
    let k = &paths["/api/v1/workspaces/{slug}/knowledge"];
    assert!(k["get"].is_object() && k["post"].is_object(), "{k}");
    assert!(paths["/api/v1/workspaces/{slug}/knowledge/{name}"]["delete"].is_object());
    assert!(paths["/api/v1/workspaces/{slug}/knowledge/search"]["get"].is_object());
    stop(child);
}
