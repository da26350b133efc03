//! Fronts that survive their platform, with the real `krake serve` and the local fake Bot API:
//! Telegram away at start (its port refuses connections, then opens) leaves health, web chat
//! and readiness working and is answered once it comes up; a refused token is reported on
//! `/readyz` and never retried in a loop; the webhook route answers 503 until the front is up;
//! a refused Discord token leaves the interactions endpoint and Telegram serving.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use futures_util::{SinkExt, StreamExt};
use krake_tests::fake_telegram::{FakeTelegram, TOKEN};
use krake_tests::stop;
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

/// `krake serve` with the Telegram front pointed at `api_url`; returns the child, its port and
/// its stderr lines.
async fn serve(dir: &Path, api_url: &str, extra_toml: &str) -> (Child, u16, Receiver<String>) {
    let config = dir.join("krake.toml");
    std::fs::write(
        &config,
        format!("[telegram]\napi_url = \"{api_url}\"\npoll_timeout_secs = 1\n{extra_toml}\n"),
    )
    .unwrap();
    let mut cmd = krake_tests::krake(dir);
    cmd.arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KRAKE_TELEGRAM_TOKEN", TOKEN)
        .env("KRAKE_LOG", "info");
    krake_tests::spawn_serve(cmd).await
}

/// One HTTP/1.1 request; returns the status and the body.
async fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let out = krake_tests::raw_http(port, method, path, headers, body).await;
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_owned())
}

async fn readyz(port: u16) -> (u16, Value) {
    let (status, body) = request(port, "GET", "/readyz", &[], b"").await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Polls `/readyz` (up to 10 s, then panics) until the Telegram front is in `state`.
async fn wait_for_state(port: u16, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = readyz(port).await;
        assert_eq!(status, 200, "ready whatever Telegram does: {body}");
        if body["fronts"]["telegram"]["state"] == state {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "telegram never became {state}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The value of `krake_front_up{front="…"}` in `/metrics`.
async fn front_up(port: u16, front: &str) -> Option<f64> {
    let (_, metrics) = request(port, "GET", "/metrics", &[], b"").await;
    let label = format!("front=\"{front}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with("krake_front_up{") && l.contains(&label))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

fn private_text(update_id: u64, user: u64, text: &str) -> Value {
    json!({"update_id": update_id, "message": {
        "message_id": update_id + 100, "date": 1_795_503_000,
        "chat": {"id": user, "type": "private", "first_name": "Ana"},
        "from": {"id": user, "is_bot": false, "first_name": "Ana"},
        "text": text,
        "entities": [{"type": "bot_command", "offset": 0, "length": text.len()}]
    }})
}

fn logged(logs: &Receiver<String>, seen: &mut Vec<String>, what: &str) -> usize {
    seen.extend(logs.try_iter());
    seen.iter().filter(|l| l.contains(what)).count()
}

/// A personal API token for a new owner `ana`, made with the CLI on the data directory.
fn owner_token(dir: &Path) -> String {
    let (ok, _, err) =
        krake_tests::run(krake_tests::krake(dir).args(["user", "add", "ana", "--role", "owner"]));
    assert!(ok, "{err}");
    let (ok, token, err) = krake_tests::run(krake_tests::krake(dir).args(["user", "token", "ana"]));
    assert!(ok, "{err}");
    token.trim().to_owned()
}

/// Says `/help` in the web chat and waits for the reply.
async fn web_chat_answers(port: u16, token: &str) {
    let reply = web_chat(port, token, "/help").await;
    assert!(reply.contains("/todo"), "{reply}");
}

/// Says `text` in lunavo's web chat with `token` and returns the reply's text.
async fn web_chat(port: u16, token: &str, text: &str) -> String {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws/chat"))
        .await
        .unwrap();
    let hello = json!({"type": "hello", "workspace": "lunavo", "token": token});
    ws.send(Message::text(hello.to_string())).await.unwrap();
    let say = json!({"type": "say", "id": "c1", "text": text});
    let mut welcomed = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(Instant::now() < deadline, "the web chat did not answer");
        let frame = match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str::<Value>(t.as_str()).unwrap(),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no frame from the web chat: {other:?}"),
        };
        match frame["type"].as_str() {
            Some("welcome") if !welcomed => {
                welcomed = true;
                ws.send(Message::text(say.to_string())).await.unwrap();
            }
            Some("reply") => {
                assert_eq!(frame["re"], "c1", "{frame}");
                return frame["text"].as_str().unwrap().to_owned();
            }
            Some("error") => panic!("the web chat refused: {frame}"),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_serving_while_telegram_is_down_and_answers_once_it_is_up() {
    let pending = FakeTelegram::reserve();
    let dir = tempfile::tempdir().unwrap();
    let token = owner_token(dir.path());
    let started = Instant::now();
    let (child, port, logs) = serve(dir.path(), &pending.url, "").await;
    let mut seen = Vec::new();

    // Telegram refuses connections: everything else serves.
    let (status, body) = request(port, "GET", "/healthz", &[], b"").await;
    assert_eq!(status, 200, "{body}");
    let ready = wait_for_state(port, "retrying").await;
    let error = ready["fronts"]["telegram"]["error"].as_str().unwrap();
    assert!(!error.is_empty(), "{ready}");
    assert!(!error.contains(TOKEN.split_once(':').unwrap().1), "{error}");
    assert_eq!(ready["fronts"]["web"]["state"], "up", "{ready}");
    web_chat_answers(port, &token).await;
    assert_eq!(front_up(port, "telegram").await, Some(0.0));

    // The Bot API comes up about two seconds after Krake.
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(started.elapsed())).await;
    let fake = pending.open();
    fake.push_update(private_text(1, 42, "/help"));
    fake.wait_sent(1).await;
    let sent = fake.sent();
    assert_eq!(sent[0].0["chat_id"], json!(42));
    assert!(sent[0].0["text"].as_str().unwrap().contains("/todo"));
    wait_for_state(port, "up").await;
    assert_eq!(front_up(port, "telegram").await, Some(1.0));
    // The offset is confirmed past update 1: nothing is answered twice.
    fake.wait_calls("getUpdates", 3).await;
    assert_eq!(fake.sent().len(), 1, "exactly one reply: {:?}", fake.sent());
    assert_eq!(fake.calls_of("getMe").len(), 1, "started once");
    assert_eq!(
        logged(&logs, &mut seen, "front cannot reach its platform"),
        1,
        "the outage is logged once, not once per attempt: {seen:#?}"
    );
    assert_eq!(
        logged(&logs, &mut seen, "front up"),
        2,
        "web, then telegram: {seen:#?}"
    );
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_reported_and_not_retried_in_a_loop() {
    let fake = FakeTelegram::start().await;
    fake.refuse_token();
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port, logs) = serve(dir.path(), &fake.url, "").await;
    let ready = wait_for_state(port, "unauthorized").await;
    let error = ready["fronts"]["telegram"]["error"].as_str().unwrap();
    assert!(
        error.contains("refused the bot token") && error.contains("KRAKE_TELEGRAM_TOKEN"),
        "says what is wrong and what to do: {error}"
    );
    // A few seconds later: still serving, still one getMe.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(child.try_wait().unwrap().is_none(), "serve keeps running");
    let (status, _) = request(port, "GET", "/healthz", &[], b"").await;
    assert_eq!(status, 200);
    let (status, body) = readyz(port).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["fronts"]["telegram"]["state"], "unauthorized",
        "{body}"
    );
    assert!(
        fake.calls_of("getMe").len() <= 2,
        "no hot loop: {} getMe calls",
        fake.calls_of("getMe").len()
    );
    assert!(fake.calls_of("getUpdates").is_empty());
    assert_eq!(front_up(port, "telegram").await, Some(0.0));
    let mut seen = Vec::new();
    assert_eq!(
        logged(&logs, &mut seen, "front refused by its platform"),
        1,
        "{seen:#?}"
    );
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_answers_503_until_the_front_is_up() {
    let pending = FakeTelegram::reserve();
    let dir = tempfile::tempdir().unwrap();
    let (child, port, _logs) = serve(
        dir.path(),
        &pending.url,
        "mode = \"webhook\"\nwebhook_secret = \"hook-Secret_42\"\nwebhook_url = \"https://krake.example/telegram/webhook\"\n",
    )
    .await;
    let body = serde_json::to_vec(&private_text(7, 43, "/help")).unwrap();
    let hook = |secret: &'static str| {
        let body = body.clone();
        async move {
            request(
                port,
                "POST",
                "/telegram/webhook",
                &[(SECRET_HEADER, secret)],
                &body,
            )
            .await
            .0
        }
    };
    wait_for_state(port, "retrying").await;
    assert_eq!(hook("nope").await, 401, "the secret is checked first");
    assert_eq!(
        hook("hook-Secret_42").await,
        503,
        "Telegram keeps the update and sends it again"
    );
    let fake = pending.open();
    fake.wait_calls("setWebhook", 1).await;
    wait_for_state(port, "up").await;
    assert_eq!(hook("hook-Secret_42").await, 200);
    fake.wait_sent(1).await;
    assert_eq!(fake.sent()[0].0["chat_id"], json!(43));
    stop(child);
}

/// A stand-in for Discord's REST API that refuses every token with 401, counting requests.
async fn discord_refusing_tokens() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            (
                axum::http::StatusCode::UNAUTHORIZED,
                axum::Json(json!({"message": "401: Unauthorized", "code": 0})),
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, hits)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_discord_token_leaves_the_interactions_endpoint_and_telegram_running() {
    let fixtures =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/discord");
    let headers: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("real_ping_request_headers.json")).unwrap(),
    )
    .unwrap();
    let ping = std::fs::read(fixtures.join("real_ping_request_body.json")).unwrap();
    let (discord, hits) = discord_refusing_tokens().await;
    let telegram = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("krake.toml");
    std::fs::write(
        &config,
        format!(
            // The real PING was signed in 2022: Discord never retries, so Krake refuses old
            // timestamps; this test widens the window to use the real signed request.
            "[telegram]\napi_url = \"{}\"\npoll_timeout_secs = 1\n[discord]\nmax_signature_age_secs = 630720000\n",
            telegram.url
        ),
    )
    .unwrap();
    let mut child = krake_tests::krake(dir.path())
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KRAKE_TELEGRAM_TOKEN", TOKEN)
        .env("KRAKE_DISCORD_TOKEN", "MTIz.NDU2.s3cret-token")
        .env("KRAKE_DISCORD_API_URL", &discord)
        .env(
            "KRAKE_DISCORD_PUBLIC_KEY",
            headers["public_key_hex"].as_str().unwrap(),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let port = krake_tests::listening_port(&mut child);
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        let (status, body) = readyz(port).await;
        assert_eq!(status, 200, "{body}");
        if body["fronts"]["discord"]["state"] == "unauthorized"
            && body["fronts"]["telegram"]["state"] == "up"
        {
            break body;
        }
        assert!(Instant::now() < deadline, "{body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let error = body["fronts"]["discord"]["error"].as_str().unwrap();
    assert!(error.contains("KRAKE_DISCORD_TOKEN"), "{error}");
    assert!(!error.contains("s3cret"), "{error}");
    // The endpoint needs nothing from Discord: it still answers the signed PING.
    let (status, pong) = request(
        port,
        "POST",
        "/discord/interactions",
        &[
            (
                "X-Signature-Ed25519",
                headers["headers"]["X-Signature-Ed25519"].as_str().unwrap(),
            ),
            (
                "X-Signature-Timestamp",
                headers["headers"]["X-Signature-Timestamp"]
                    .as_str()
                    .unwrap(),
            ),
        ],
        &ping,
    )
    .await;
    assert!(
        status == 200 && pong.ends_with(r#"{"type":1}"#),
        "{status} {pong}"
    );
    // Telegram answers meanwhile.
    telegram.push_update(private_text(1, 42, "/help"));
    telegram.wait_sent(1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let n = hits.load(std::sync::atomic::Ordering::SeqCst);
    assert!(n <= 2, "no hot loop against Discord: {n} requests");
    assert_eq!(front_up(port, "discord").await, Some(0.0));
    assert_eq!(front_up(port, "telegram").await, Some(1.0));
    stop(child);
}

/// Runs are listed and cancelled the same way from the web chat, Telegram and the terminal:
/// one core path, each front only renders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_listed_and_cancelled_from_the_web_chat_telegram_and_the_terminal() {
    use krake_core::run::{NewRun, RunRepo};
    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = owner_token(dir.path());
    let (ok, code, err) =
        krake_tests::run(krake_tests::krake(dir.path()).args(["user", "link-code", "ana"]));
    assert!(ok, "{err}");
    // Three queued runs (no model is configured here, so none starts).
    let store = krake_store::Store::open(&krake_store::Store::sqlite_url(
        &dir.path().join("krake.db"),
    ))
    .await
    .unwrap();
    for task in ["the tagline", "the newsletter", "the launch post"] {
        store
            .create_run(
                &NewRun {
                    workspace: krake_core::workspace::WorkspaceSlug::parse("lunavo").unwrap(),
                    agent: "Penn".into(),
                    task: task.into(),
                    trigger: "command".into(),
                    requested_by: "ana".into(),
                    parent: None,
                    feedback: None,
                    answer_to: None,
                },
                krake_core::time::Timestamp::from_millis(1_795_503_000_000),
            )
            .await
            .unwrap();
    }
    let (child, port, _logs) = serve(dir.path(), &fake.url, "").await;

    let listed = web_chat(port, &token, "/runs lunavo").await;
    assert!(listed.starts_with("Runs in lunavo (3):"), "{listed}");
    let cancelled = web_chat(port, &token, "/cancel 1 from the web").await;
    assert!(
        cancelled.starts_with("Cancelled run 1 (Penn: the tagline)"),
        "{cancelled}"
    );

    fake.push_update(private_text(1, 42, &format!("/link {}", code.trim())));
    fake.wait_sent(1).await;
    fake.push_update(private_text(2, 42, "/runs cancelled"));
    fake.wait_sent(2).await;
    fake.push_update(private_text(3, 42, "/cancel 2 from telegram"));
    fake.wait_sent(3).await;
    let sent: Vec<String> = fake
        .sent()
        .iter()
        .map(|(m, _)| m["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        sent[1].contains("Cancelled runs (1):") && sent[1].contains("run 1"),
        "{sent:?}"
    );
    assert!(
        sent[2].contains("Cancelled run 2 (Penn: the newsletter)"),
        "{sent:?}"
    );
    stop(child);

    let out = krake_tests::chat(
        dir.path(),
        &["/cancel 3 from the terminal", "/run 2", "/runs"],
    );
    assert!(
        out.contains("Cancelled run 3 (Penn: the launch post)"),
        "{out}"
    );
    assert!(out.contains("cancelled by ana: from telegram"), "{out}");
    let rows: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("Runs (3):"))
        .filter(|l| l.trim_start().starts_with("run "))
        .collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert!(
        rows.iter().all(|r| r.contains(" cancelled ")),
        "every run cancelled: {out}"
    );
}

/// A 240-character answer, streamed a tool-argument fragment at a time.
const LAUNCH_POST: &str = "Meet the moon hoodie: heavyweight organic cotton, a navy as deep as the night sky, and a fit that stays soft wash after wash. Made to order, shipped in four days, and warm enough for every late walk home. Pre-orders open Friday.";

/// `krake serve` with the Telegram front and a streaming model whose every SSE event comes
/// `gap` after the last.
async fn serve_streaming(
    dir: &Path,
    telegram: &FakeTelegram,
    script: Vec<krake_tests::fake_openai::Answer>,
    gap: Duration,
) -> (Child, u16, krake_tests::fake_openai::FakeOpenAi) {
    let model = krake_tests::fake_openai::FakeOpenAi::start(script).await;
    model.stream_slowly(gap);
    let extra = format!(
        "[llm]\nmax_retries = 0\n[[llm.providers]]\nname = \"fake\"\nbase_url = \"{}\"\nmodels = [\"fake-model\"]\nstream = true\n",
        model.base_url
    );
    let (child, port, _logs) = serve(dir, &telegram.url, &extra).await;
    (child, port, model)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_streams_into_telegram_edited_at_most_once_a_second() {
    use krake_tests::fake_openai::Answer;
    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    owner_token(dir.path());
    let (ok, code, err) =
        krake_tests::run(krake_tests::krake(dir.path()).args(["user", "link-code", "ana"]));
    assert!(ok, "{err}");
    // About six seconds of writing: the chat's earlier messages take the first two seconds.
    let (child, _port, _model) = serve_streaming(
        dir.path(),
        &fake,
        vec![Answer::reply(LAUNCH_POST, 0.9)],
        Duration::from_millis(150),
    )
    .await;
    fake.push_update(private_text(1, 42, &format!("/link {}", code.trim())));
    fake.wait_sent(1).await;
    // Telegram's limit, enforced (with room for network jitter): a message or edit closer
    // than that to the chat's last one gets a 429.
    fake.enforce_per_chat(Duration::from_millis(900));
    fake.push_update(private_text(2, 42, "/ask penn write the launch post"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fake.edits().iter().any(|(b, _)| b["text"] == LAUNCH_POST) {
        assert!(
            Instant::now() < deadline,
            "no final edit: {:?}",
            fake.calls()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let calls = fake.calls();
    // The streamed message: opened with the answer's first words.
    let (opened, stream_id) = fake
        .sent()
        .into_iter()
        .find(|(b, _)| {
            let t = b["text"].as_str().unwrap_or_default();
            !t.is_empty() && LAUNCH_POST.starts_with(t) && t != LAUNCH_POST
        })
        .expect("a message opened with the first words");
    assert!(opened["text"].as_str().unwrap().len() < LAUNCH_POST.len());
    let typing = calls
        .iter()
        .position(|c| c.method == "sendchataction")
        .expect("a typing indicator");
    assert_eq!(calls[typing].body["action"], "typing");
    let first_open = calls
        .iter()
        .position(|c| c.method == "sendmessage" && c.body["text"] == opened["text"])
        .unwrap();
    assert!(typing < first_open, "typing shows before the first words");
    // Edited in place, each edit at least ~a second after the one before, never refused.
    let edits: Vec<&krake_tests::fake_telegram::Call> = calls
        .iter()
        .filter(|c| c.method == "editmessagetext" && c.body["message_id"] == stream_id)
        .collect();
    let t0 = calls[0].at;
    let trace: Vec<String> = calls
        .iter()
        .filter(|c| c.method != "getupdates")
        .map(|c| {
            format!(
                "{:?} {} {}",
                c.at.duration_since(t0),
                c.method,
                c.body["text"]
                    .as_str()
                    .unwrap_or("")
                    .chars()
                    .take(30)
                    .collect::<String>()
            )
        })
        .collect();
    assert!(edits.len() >= 2, "{} edits: {trace:#?}", edits.len());
    for pair in edits.windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(gap >= Duration::from_millis(900), "edits {gap:?} apart");
    }
    assert_eq!(fake.too_many(), 0, "Telegram never had to refuse an edit");
    for e in &edits {
        let t = e.body["text"].as_str().unwrap();
        assert!(
            LAUNCH_POST.starts_with(t),
            "every edit shows the answer so far: {t}"
        );
    }
    // The final text is the whole answer, in that same message, and nowhere else.
    assert_eq!(edits.last().unwrap().body["text"], LAUNCH_POST);
    assert!(
        fake.sent().iter().all(|(b, _)| b["text"] != LAUNCH_POST),
        "the answer is not sent a second time as a message of its own"
    );
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_streams_to_the_web_chat_frame_by_frame() {
    use krake_tests::fake_openai::Answer;
    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = owner_token(dir.path());
    let (child, port, _model) = serve_streaming(
        dir.path(),
        &fake,
        vec![Answer::reply(LAUNCH_POST, 0.9)],
        Duration::from_millis(80),
    )
    .await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws/chat"))
        .await
        .unwrap();
    let hello = json!({"type": "hello", "workspace": "lunavo", "token": token});
    ws.send(Message::text(hello.to_string())).await.unwrap();
    let mut frames: Vec<Value> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "no final answer: {frames:?}");
        let frame = match tokio::time::timeout(Duration::from_secs(20), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str::<Value>(t.as_str()).unwrap(),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no frame from the web chat: {other:?}"),
        };
        if frame["type"] == "welcome" {
            let say = json!({"type": "say", "id": "c1", "text": "/ask penn write the launch post"});
            ws.send(Message::text(say.to_string())).await.unwrap();
        }
        let done = frame["type"] == "answer" && frame["final"] == true;
        frames.push(frame);
        if done {
            break;
        }
    }
    let reply = frames.iter().find(|f| f["type"] == "reply").unwrap();
    assert!(
        reply["text"]
            .as_str()
            .unwrap()
            .contains("The answer follows here"),
        "{reply}"
    );
    let typing = frames
        .iter()
        .position(|f| f["type"] == "typing")
        .expect("typing");
    let answers: Vec<&Value> = frames.iter().filter(|f| f["type"] == "answer").collect();
    let first = frames.iter().position(|f| f["type"] == "answer").unwrap();
    assert!(typing < first);
    // Frames as the tokens arrive: the first with the words so far, then what was added.
    let partial: Vec<&&Value> = answers.iter().filter(|f| f["final"] != true).collect();
    assert!(partial.len() >= 5, "{} frames", partial.len());
    assert!(
        partial[1..].iter().all(|f| f["append"].is_string()),
        "{partial:?}"
    );
    let mut shown = String::new();
    for f in &partial {
        match f["append"].as_str() {
            Some(a) => shown.push_str(a),
            None => shown = f["text"].as_str().unwrap().to_owned(),
        }
        assert!(LAUNCH_POST.starts_with(&shown), "{shown}");
    }
    let last = answers.last().unwrap();
    assert_eq!(
        last["text"], LAUNCH_POST,
        "the final text is the whole answer"
    );
    assert!(
        answers.iter().all(|f| f["id"] == last["id"]),
        "one answer, one message"
    );
    stop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegation_two_levels_deep_shows_on_every_front_with_each_runs_costs() {
    use krake_tests::fake_openai::{Answer, FakeOpenAi};
    let tools = |name: &str, args: Value| Answer::Tools(vec![(name.into(), args.to_string())]);
    let model = FakeOpenAi::start(vec![
        tools(
            "delegate",
            json!({"agent": "milli", "task": "which hoodie colour sells best?"}),
        ),
        tools(
            "delegate",
            json!({"agent": "data analyst", "task": "hoodie sales by colour"}),
        ),
        Answer::reply("Navy: 42 of 60 hoodies sold.", 0.9),
        Answer::reply("Navy sells best (Dexter: 42 of 60).", 0.85),
        Answer::reply("Lead the launch post with the navy hoodie.", 0.9),
    ])
    .await;
    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = owner_token(dir.path());
    let (ok, code, err) =
        krake_tests::run(krake_tests::krake(dir.path()).args(["user", "link-code", "ana"]));
    assert!(ok, "{err}");
    let extra = format!(
        "[llm]\nmax_retries = 0\n[[llm.providers]]\nname = \"fake\"\nbase_url = \"{}\"\nmodels = [\"fake-model\"]\ninput_price_per_million = 2.5\noutput_price_per_million = 10.0\n",
        model.base_url
    );
    let (child, port, _logs) = serve(dir.path(), &fake.url, &extra).await;

    // Asked in the web chat; Penn asks Milli, who asks Dexter.
    let asked = web_chat(port, &token, "/ask penn plan the launch post").await;
    assert!(asked.contains("Penn is on it (run 1"), "{asked}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let parent = loop {
        let shown = web_chat(port, &token, "/run 1").await;
        if shown.contains(": done") {
            break shown;
        }
        assert!(Instant::now() < deadline, "run 1 never ended: {shown}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(parent.contains("Model calls: 2;"), "{parent}");
    assert!(parent.contains("to Milli (run 2)"), "{parent}");

    // Telegram: Milli's run, delegated by run 1, with its own two calls.
    fake.push_update(private_text(1, 42, &format!("/link {}", code.trim())));
    fake.wait_sent(1).await;
    fake.push_update(private_text(2, 42, "/run 2"));
    fake.wait_sent(2).await;
    let milli = fake.sent()[1].0["text"].as_str().unwrap().to_owned();
    assert!(milli.contains("Milli in lunavo: done"), "{milli}");
    assert!(milli.contains("Delegated by run 1"), "{milli}");
    assert!(milli.contains("Model calls: 2;"), "{milli}");
    assert!(milli.contains("to Dexter (run 3)"), "{milli}");

    // REST: Dexter's run, two levels down, charged its one call.
    let (status, body) = request(
        port,
        "GET",
        "/api/v1/runs/3",
        &[("Authorization", &format!("Bearer {token}"))],
        b"",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let dexter: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(dexter["agent"], "Dexter");
    assert_eq!(dexter["trigger"], "delegation");
    assert_eq!(dexter["parent"], 2);
    assert_eq!(dexter["model_calls"], 1);
    assert!(dexter["cost_micros"].as_i64().unwrap() > 0);
    stop(child);

    // The terminal: the parent's thread lists what it asked.
    let out = krake_tests::chat(dir.path(), &["/run 3", "/todo"]);
    assert!(out.contains("Delegated by run 2"), "{out}");
    let notice = krake_tests::chat(dir.path(), &["/show 1"]);
    assert!(notice.contains("Asked other agents:"), "{notice}");
    assert!(
        notice.contains("Milli (run 2), done: Navy sells best"),
        "{notice}"
    );
}
