//! `reply`: how long a Telegram message waits for its reply, through a running `krake serve`.
//!
//! A local fake of the Bot API (getMe, setMyCommands, sendMessage, … on 127.0.0.1) stands in
//! for Telegram; `krake serve` (SQLite, webhook mode) points at it. This process plays
//! Telegram: at a fixed rate (open loop: a late answer never delays the next update) it POSTs
//! a `/help` update in a new private chat to `/telegram/webhook`, and times each one from just
//! before the POST until the first `sendMessage` for that chat reaches the fake.
//!
//! Baseline, in the same run and at the same rates: this process POSTs `sendMessage` straight
//! to the same fake, timed until the fake receives it: the floor of one HTTP hop on loopback
//! with this client and server (Krake's path has two: the webhook in, the send out).

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// `reply` flags.
#[derive(Debug, clap::Args)]
pub struct ReplyArgs {
    /// Rates to measure, in messages per second (comma-separated).
    #[arg(long, value_delimiter = ',', default_values_t = [5u32, 50])]
    pub rates: Vec<u32>,
    /// Seconds per rate (each rate sends rate × seconds updates, each in a new chat).
    #[arg(long, default_value_t = 10)]
    pub seconds: u32,
}

/// The bot token Krake is given; the fake accepts only it.
const TOKEN: &str = "123456:bench-token";
/// The webhook secret Krake is given.
const SECRET: &str = "bench-Secret_1";
/// Where Krake takes Telegram's webhook calls, and the header carrying the secret (the Bot
/// API's own name).
const WEBHOOK_PATH: &str = "/telegram/webhook";
const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

/// When the fake first received a `sendMessage` for each chat.
#[derive(Default)]
struct FakeState {
    first_send: HashMap<i64, Instant>,
    sends: u64,
    next_message_id: i64,
}

/// The fake Bot API: records the arrival of every `sendMessage`.
#[derive(Clone)]
struct FakeBotApi {
    state: Arc<Mutex<FakeState>>,
    arrived: Arc<Notify>,
}

impl FakeBotApi {
    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until every chat of `chats` got a message, or `limit` passed; returns the
    /// arrival times found.
    async fn wait_for(&self, chats: &[i64], limit: Duration) -> HashMap<i64, Instant> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.arrived.notified();
            let found: HashMap<i64, Instant> = {
                let state = self.lock();
                chats
                    .iter()
                    .filter_map(|c| state.first_send.get(c).map(|t| (*c, *t)))
                    .collect()
            };
            if found.len() == chats.len()
                || tokio::time::timeout_at(deadline, notified).await.is_err()
            {
                return found;
            }
        }
    }
}

fn ok(result: Value) -> Response {
    axum::Json(json!({"ok": true, "result": result})).into_response()
}

async fn api(
    State(fake): State<FakeBotApi>,
    Path((bot, method)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let arrived = Instant::now();
    if bot != format!("bot{TOKEN}") {
        return (
            axum::http::StatusCode::NOT_FOUND,
            axum::Json(json!({"ok": false, "error_code": 404, "description": "Not Found"})),
        )
            .into_response();
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    match method.to_lowercase().as_str() {
        "getme" => ok(json!({
            "id": 123456, "is_bot": true, "first_name": "Krake", "username": "krake_bench_bot",
            "can_join_groups": true, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "can_connect_to_business": false,
            "has_main_web_app": false
        })),
        "sendmessage" => {
            let chat = body["chat_id"].as_i64().unwrap_or(0);
            let id = {
                let mut state = fake.lock();
                state.first_send.entry(chat).or_insert(arrived);
                state.sends += 1;
                state.next_message_id += 1;
                state.next_message_id
            };
            fake.arrived.notify_waiters();
            ok(json!({
                "message_id": id,
                "date": 1_795_503_000,
                "chat": {"id": chat, "type": "private", "first_name": "Ana"},
                "from": {"id": 123456, "is_bot": true, "first_name": "Krake", "username": "krake_bench_bot"},
                "text": body["text"].clone(),
            }))
        }
        "editmessagetext" => ok(json!(true)),
        "getwebhookinfo" => {
            ok(json!({"url": "", "has_custom_certificate": false, "pending_update_count": 0}))
        }
        _ => ok(json!(true)),
    }
}

/// A private `/help` message from user `chat` in their chat with the bot.
fn update(update_id: i64, chat: i64) -> String {
    json!({
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "from": {"id": chat, "is_bot": false, "first_name": "Ana", "username": format!("u{chat}")},
            "chat": {"id": chat, "first_name": "Ana", "username": format!("u{chat}"), "type": "private"},
            "date": 1_795_503_000,
            "text": "/help",
            "entities": [{"type": "bot_command", "offset": 0, "length": 5}]
        }
    })
    .to_string()
}

/// Where the timed requests go.
#[derive(Clone, Copy)]
enum Target {
    /// Krake's webhook (the reply comes back through the fake).
    Krake(u16),
    /// The fake's sendMessage, directly.
    Direct,
}

/// One open-loop run: `n` requests at `rate` per second, each for a new chat from `first`.
/// Returns the latencies (request start to the fake's receipt) and how many requests failed.
async fn run_rate(
    client: &reqwest::Client,
    fake: &FakeBotApi,
    fake_url: &str,
    target: Target,
    rate: u32,
    n: u32,
    first: i64,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let started = tokio::time::Instant::now();
    let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
    let mut tasks = Vec::with_capacity(n as usize);
    for i in 0..n {
        tokio::time::sleep_until(started + period * i).await;
        let chat = first + i64::from(i);
        let client = client.clone();
        let url = match target {
            Target::Krake(port) => format!("http://127.0.0.1:{port}{WEBHOOK_PATH}"),
            Target::Direct => format!("{fake_url}bot{TOKEN}/sendMessage"),
        };
        let body = match target {
            Target::Krake(_) => update(chat, chat),
            Target::Direct => {
                json!({"chat_id": chat, "text": "Krake's help, in a few lines."}).to_string()
            }
        };
        tasks.push(tokio::spawn(async move {
            let t0 = Instant::now();
            let ok = client
                .post(&url)
                .header("Content-Type", "application/json")
                .header(SECRET_HEADER, SECRET)
                .body(body)
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            (chat, t0, ok)
        }));
    }
    let mut sent = HashMap::with_capacity(tasks.len());
    let mut failed = 0;
    for t in tasks {
        let (chat, t0, ok) = t.await?;
        if !ok {
            failed += 1;
        }
        sent.insert(chat, t0);
    }
    let chats: Vec<i64> = sent.keys().copied().collect();
    let arrived = fake.wait_for(&chats, Duration::from_secs(30)).await;
    let mut latencies: Vec<Duration> = arrived
        .iter()
        .filter_map(|(chat, at)| sent.get(chat).map(|t0| at.saturating_duration_since(*t0)))
        .collect();
    latencies.sort();
    failed += chats.len() - arrived.len();
    Ok((latencies, failed))
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn line(label: &str, rate: u32, sorted: &[Duration], failed: usize) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "  {rate:>3}/s  {label:<38} n={:<5} p50={:>7.2} ms  p99={:>7.2} ms  max={:>7.2} ms{}",
        sorted.len(),
        ms(pct(sorted, 0.5)),
        ms(pct(sorted, 0.99)),
        ms(sorted.last().copied().unwrap_or_default()),
        if failed > 0 {
            format!("  ({failed} failed or unanswered)")
        } else {
            String::new()
        }
    );
}

/// Runs the benchmark against `krake_bin` started as `krake serve`.
pub async fn run(krake_bin: &std::path::Path, args: ReplyArgs) -> anyhow::Result<()> {
    let fake = FakeBotApi {
        state: Arc::new(Mutex::new(FakeState {
            next_message_id: 1000,
            ..FakeState::default()
        })),
        arrived: Arc::new(Notify::new()),
    };
    let app = Router::new()
        .route("/{bot}/{method}", post(api))
        .with_state(fake.clone());
    let (addr, _stop_fake) = crate::common::serve_on(app).await?;
    let fake_url = format!("http://{addr}/");

    let dir = tempfile::tempdir()?;
    let config = dir.path().join("krake.toml");
    std::fs::write(
        &config,
        format!(
            "[telegram]\napi_url = \"{fake_url}\"\nmode = \"webhook\"\nwebhook_secret = \"{SECRET}\"\n"
        ),
    )?;
    let (mut child, port) = crate::common::spawn_serve(
        krake_bin,
        dir.path(),
        Some(&config),
        &[("KRAKE_TELEGRAM_TOKEN", TOKEN)],
    )?;
    let result = measure(&fake, &fake_url, port, &args).await;
    let _ = child.kill();
    let _ = child.wait();
    result
}

async fn measure(
    fake: &FakeBotApi,
    fake_url: &str,
    port: u16,
    args: &ReplyArgs,
) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .context("cannot build the HTTP client")?;
    // The webhook may answer 503 until the Telegram front has started: wait for a 200.
    let url = format!("http://127.0.0.1:{port}{WEBHOOK_PATH}");
    let ready = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = client
            .post(&url)
            .header("Content-Type", "application/json")
            .header(SECRET_HEADER, SECRET)
            .body(update(0, 0))
            .send()
            .await
            .map(|r| r.status());
        match status {
            Ok(s) if s.is_success() => break,
            _ if tokio::time::Instant::now() < ready => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => bail!("Krake's Telegram webhook does not answer 200: {other:?}"),
        }
    }
    // Warm up both paths (connections, caches, the first SQLite pages).
    let (warm, failed) = run_rate(&client, fake, fake_url, Target::Krake(port), 20, 20, 1).await?;
    if failed > 0 || warm.len() != 20 {
        bail!("Krake did not answer the warm-up updates ({failed} failed or unanswered)");
    }
    run_rate(&client, fake, fake_url, Target::Direct, 20, 20, 1_000_001).await?;
    println!(
        "reply latency: Telegram webhook update (`/help`, a new private chat each) -> first \
         sendMessage at a local fake Bot API; krake serve on SQLite (WAL, synchronous=NORMAL), \
         127.0.0.1, {} s per rate (target: p99 < 50 ms at 50/s):",
        args.seconds
    );
    let mut next_chat = 10_000_000i64;
    for &rate in &args.rates {
        let n = rate.max(1) * args.seconds.max(1);
        let (base, base_failed) = run_rate(
            &client,
            fake,
            fake_url,
            Target::Direct,
            rate,
            n,
            next_chat + 5_000_000,
        )
        .await?;
        let (krake, failed) = run_rate(
            &client,
            fake,
            fake_url,
            Target::Krake(port),
            rate,
            n,
            next_chat,
        )
        .await?;
        next_chat += 10_000_000;
        line("webhook -> sendMessage through Krake", rate, &krake, failed);
        line(
            "baseline: direct POST to the fake",
            rate,
            &base,
            base_failed,
        );
    }
    let sends = fake.lock().sends;
    println!("  sendMessage calls received in all: {sends}");
    Ok(())
}
