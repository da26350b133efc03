//! `stream`: how soon a streamed answer's first words reach the web socket after the model
//! wrote them, in process.
//!
//! One process holds everything: the store (scratch SQLite), the run engine with a model that
//! notes the instant it hands over its first piece of text, the web front served on
//! 127.0.0.1, and a WebSocket client signed in to it. Each of `answers` runs is queued with
//! the client's session as its answer destination; the figure is the time from the model's
//! first piece to the client reading the first `answer` frame. The baseline in the same run
//! is the floor of that path: a frame pushed straight into the same session (no engine, no
//! stream pump) until the client reads it.

use anyhow::{Context, bail};
use async_trait::async_trait;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use krake_core::Krake;
use krake_core::actor::{Role, UserName};
use krake_core::config::Directory;
use krake_core::model::{
    ChatModel, ChatRequest, ChatResponse, FinishReason, ModelError, OnPartial, Partial, Price,
    ToolCall, Usage,
};
use krake_core::ports::{TokenRepo, UserRepo};
use krake_core::run::{NewRun, Runner};
use krake_core::time::{Clock, SystemClock};
use krake_core::workspace::WorkspaceSlug;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// The answer every run gives, written in pieces.
const ANSWER: &str = "Lead with the navy hoodie: it sold 42 of 60 last month.";

/// A model that streams [`ANSWER`] as a `reply` call, seven characters at a time, 1 ms apart,
/// noting when it hands over the first piece that shows words.
struct FirstToken {
    first: Mutex<Option<Instant>>,
}

fn reply_args() -> String {
    serde_json::json!({"text": ANSWER, "confidence": 0.9}).to_string()
}

fn response(args: String) -> ChatResponse {
    ChatResponse {
        content: None,
        tool_calls: vec![ToolCall {
            id: "call_0".into(),
            name: "reply".into(),
            arguments: args,
        }],
        finish: FinishReason::ToolCalls,
        usage: Usage {
            input_tokens: 100,
            output_tokens: 20,
        },
        provider: "bench".into(),
        model: "bench".into(),
        cost_micros: 0,
    }
}

#[async_trait]
impl ChatModel for FirstToken {
    async fn chat(&self, _request: &ChatRequest) -> Result<ChatResponse, ModelError> {
        Ok(response(reply_args()))
    }

    async fn chat_streaming(
        &self,
        _request: &ChatRequest,
        on: OnPartial<'_>,
    ) -> Result<ChatResponse, ModelError> {
        let args = reply_args();
        let chars: Vec<char> = args.chars().collect();
        let mut so_far = String::new();
        for piece in chars.chunks(7) {
            so_far.extend(piece);
            let call = [ToolCall {
                id: "call_0".into(),
                name: "reply".into(),
                arguments: so_far.clone(),
            }];
            let shows_words = krake_core::run::stream::visible(Partial {
                content: "",
                tool_calls: &call,
            })
            .is_some();
            if shows_words
                && let Ok(mut f) = self.first.lock()
                && f.is_none()
            {
                *f = Some(Instant::now());
            }
            on(Partial {
                content: "",
                tool_calls: &call,
            });
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(response(args))
    }

    fn streams(&self, _model: Option<&str>) -> bool {
        true
    }

    fn price(&self, _model: Option<&str>) -> Price {
        Price::default()
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next JSON frame (10 s at most).
async fn next_frame(ws: &mut Socket) -> anyhow::Result<Value> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Ok(serde_json::from_str(t.as_str())?),
            Ok(Some(Ok(_))) => continue,
            other => bail!("the web socket gave no frame: {other:?}"),
        }
    }
}

/// Runs the benchmark: `answers` streamed answers, and as many direct pushes.
pub async fn run(answers: u32) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = crate::common::scratch_sqlite(&dir).await?;
    let s = Arc::new(store.clone());
    let now = SystemClock.now();
    let user = UserName::parse("bench")?;
    store.upsert_user(&user, Role::Owner, None, now).await?;
    store
        .create_api_token(
            &user,
            &krake_web::hash_token("krk_bench_stream"),
            "bench",
            now,
        )
        .await?;
    let model = Arc::new(FirstToken {
        first: Mutex::new(None),
    });
    let live = krake_core::delivery::LiveSenders::new();
    let runner = Runner::new(
        s.clone(),
        s.clone(),
        s.clone(),
        Some(model.clone()),
        Arc::new(krake_core::knowledge::NoKnowledge),
        Arc::new(krake_core::run::RecordingExecutor::default()),
        Arc::new(SystemClock),
        Directory::default(),
    )
    .with_streaming(live.clone(), s.clone());
    let krake = Krake::new(
        s.clone(),
        s.clone(),
        Arc::new(SystemClock),
        Directory::default(),
    )
    .with_users(s.clone())
    .with_agents(Arc::new(runner.clone()))
    .with_live(live.clone());
    let state = krake_web::front::WebState::new(
        krake,
        s.clone(),
        s.clone(),
        s.clone(),
        Arc::new(SystemClock),
        krake_web::front::WebConfig::default(),
    );
    let web = Arc::new(krake_web::live::WebSender::new(state.hub.clone()));
    live.add(web.clone());
    // The final text leaves through the outbox, as in `krake serve`.
    let deliverer = krake_core::delivery::Deliverer::new(
        s.clone(),
        s.clone(),
        web,
        Arc::new(SystemClock),
        "bench-web",
    );
    let hub = state.hub.clone();
    let (addr, _stop) = crate::common::serve_on(krake_web::front::router(state)).await?;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws/chat"))
        .await
        .context("cannot open the web socket")?;
    let hello =
        serde_json::json!({"type": "hello", "workspace": "lunavo", "token": "krk_bench_stream"});
    ws.send(Message::text(hello.to_string())).await?;
    let welcome = next_frame(&mut ws).await?;
    let Some(session) = welcome["session"].as_str().map(str::to_owned) else {
        bail!("no welcome: {welcome}");
    };
    let to = krake_core::outbox::Destination::parse(&format!("web:session:{session}"))?;
    let lunavo = WorkspaceSlug::parse("lunavo")?;
    println!("stream: {answers} streamed answers to one web socket, in process");

    let mut first = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3)?;
    for _ in 0..answers {
        if let Ok(mut f) = model.first.lock() {
            *f = None;
        }
        runner
            .start(&NewRun {
                workspace: lunavo.clone(),
                agent: "Penn".into(),
                task: "what should the launch post lead with?".into(),
                trigger: "command".into(),
                requested_by: "bench".into(),
                parent: None,
                feedback: None,
                answer_to: Some(to.clone()),
            })
            .await?;
        let work = {
            let runner = runner.clone();
            tokio::spawn(async move { runner.work_once("bench", 1).await })
        };
        let mut seen_first = None;
        while seen_first.is_none() {
            let f = next_frame(&mut ws).await?;
            if f["type"] == "answer" {
                seen_first = Some(Instant::now());
            }
        }
        work.await??;
        deliverer.run_once().await?;
        loop {
            let f = next_frame(&mut ws).await?;
            if f["type"] == "answer" && f["final"] == true {
                break;
            }
        }
        let wrote = model
            .first
            .lock()
            .ok()
            .and_then(|f| *f)
            .context("the model wrote nothing")?;
        let shown = seen_first.context("no answer frame")?;
        first.record(u64::try_from(
            shown.saturating_duration_since(wrote).as_nanos(),
        )?)?;
    }

    // The floor: a frame pushed straight into the same session.
    let mut floor = Histogram::<u64>::new_with_bounds(1_000, 60_000_000_000, 3)?;
    let live_session = hub.session(&session).context("the session is gone")?;
    for i in 0..answers {
        let at = Instant::now();
        live_session.push_json(
            "answer",
            serde_json::json!({"id": format!("floor{i}"), "text": "x", "final": true}),
        );
        loop {
            let f = next_frame(&mut ws).await?;
            if f["type"] == "answer" {
                break;
            }
        }
        floor.record(u64::try_from(at.elapsed().as_nanos())?)?;
    }
    crate::common::report("first words, model → web socket", &first);
    crate::common::report("baseline: a frame pushed directly", &floor);
    println!(
        "  target: first visible token p99 < 20 ms: {}",
        if first.value_at_quantile(0.99) < 20_000_000 {
            "met"
        } else {
            "missed"
        }
    );
    Ok(())
}
