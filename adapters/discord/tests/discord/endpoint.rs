//! `POST /discord/interactions`: signatures (the real Discord PING and the RFC 8032 vectors),
//! the documented slash-command and button payloads re-signed and driven through core,
//! deferral of slow work, and bad input.

use crate::{APP, World, fixture, fixture_json, sign, world};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use krake_core::actor::Actor;
use krake_core::inbox::{NewThread, ThreadKind, ThreadStatus};
use krake_core::ports::InboxRepo;
use krake_core::reply::{ButtonAction, ButtonPayload};
use krake_core::workspace::WorkspaceSlug;
use krake_discord::front::DiscordFront;
use krake_discord::interactions::router;
use krake_discord::verify::SignatureVerifier;
use krake_discord::{DiscordConfig, snowflake};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

async fn post(
    app: axum::Router,
    sig: Option<&str>,
    ts: Option<&str>,
    body: impl Into<Vec<u8>>,
) -> (StatusCode, Value) {
    let mut req = Request::post("/discord/interactions").header("content-type", "application/json");
    if let Some(s) = sig {
        req = req.header("X-Signature-Ed25519", s);
    }
    if let Some(t) = ts {
        req = req.header("X-Signature-Timestamp", t);
    }
    let res = app
        .oneshot(req.body(Body::from(body.into())).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// Signs `body` with the RFC 8032 key and posts it.
async fn signed(w: &World, body: &Value) -> (StatusCode, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let ts = "1795503000";
    post(
        w.endpoint(),
        Some(&sign(&w.key, ts, &bytes)),
        Some(ts),
        bytes,
    )
    .await
}

/// An endpoint that knows only the real Discord application's public key (no REST needed),
/// accepting signature timestamps up to `skew` from the world's clock.
async fn real_key_endpoint(w: &World, public_key: &str, skew: Duration) -> axum::Router {
    let front = Arc::new(DiscordFront::new(
        w.krake.clone(),
        Arc::new(w.store.clone()),
        DiscordConfig {
            max_signature_skew: skew,
            ..DiscordConfig::default()
        },
        None,
    ));
    router(front, SignatureVerifier::from_hex(public_key).unwrap())
}

/// From the real PING's timestamp (July 2022) to the test clock (November 2026), and a day.
const SINCE_THE_REAL_PING: Duration = Duration::from_secs(5 * 365 * 86_400);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_discord_ping_verifies_and_gets_pong() {
    let w = world().await;
    let headers = fixture_json("real_ping_request_headers.json");
    let body = std::fs::read(fixture("real_ping_request_body.json")).unwrap();
    let key = headers["public_key_hex"].as_str().unwrap();
    let sig = headers["headers"]["X-Signature-Ed25519"].as_str().unwrap();
    let ts = headers["headers"]["X-Signature-Timestamp"]
        .as_str()
        .unwrap();
    // The signature is from 2022: it verifies when the endpoint allows for its age...
    let app = real_key_endpoint(&w, key, SINCE_THE_REAL_PING).await;
    let (status, answer) = post(app.clone(), Some(sig), Some(ts), body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, fixture_json("interaction_responses.json")["pong"]);
    // ...and is refused as a replay at the default 5 minutes (Discord never retries).
    let strict = real_key_endpoint(&w, key, DiscordConfig::default().max_signature_skew).await;
    let (status, answer) = post(strict, Some(sig), Some(ts), body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer["error"], "stale request timestamp");

    // Every tampered variant of the published vectors is refused with 401.
    let v = fixture_json("ssmmiles_verify_vectors_data.json");
    let s = |k: &str| v[k].as_str().unwrap().to_owned();
    for (sig, ts, body) in [
        (
            s("SIGNATURE_VALID"),
            s("TIMESTAMP_INVALID"),
            s("BODY_VALID"),
        ),
        (
            s("SIGNATURE_VALID"),
            s("TIMESTAMP_VALID"),
            s("BODY_INVALID"),
        ),
        (
            s("SIGNATURE_INVALID"),
            s("TIMESTAMP_VALID"),
            s("BODY_VALID"),
        ),
        (
            s("SIGNATURE_VALID"),
            s("TIMESTAMP_VALID"),
            format!("{} ", s("BODY_VALID")),
        ),
        ("zz".repeat(64), s("TIMESTAMP_VALID"), s("BODY_VALID")),
        (String::new(), s("TIMESTAMP_VALID"), s("BODY_VALID")),
    ] {
        let (status, answer) = post(app.clone(), Some(&sig), Some(&ts), body).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer["error"], "invalid request signature");
    }
    let (status, _) = post(
        app.clone(),
        None,
        Some(&s("TIMESTAMP_VALID")),
        s("BODY_VALID"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = post(
        app.clone(),
        Some(&s("SIGNATURE_VALID")),
        None,
        s("BODY_VALID"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The valid set still passes after all that.
    let (status, _) = post(app, Some(sig), Some(ts), body).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rfc8032_vectors_pass_and_fail_as_listed() {
    // The vectors were signed with 2023 timestamps: allow for their age.
    let w = crate::world_with(|c| c.max_signature_skew = SINCE_THE_REAL_PING).await;
    let v = fixture_json("generated_ed25519_vectors_rfc8032_key.json");
    for case in v["vectors"].as_array().unwrap() {
        let (status, answer) = post(
            w.endpoint(),
            case["signature_hex"].as_str(),
            case["timestamp"].as_str(),
            case["body"].as_str().unwrap().to_owned(),
        )
        .await;
        if case["expected"] == true {
            assert_eq!(status, StatusCode::OK, "{case}");
            // The signed PING gets PONG; the signed foreign command gets an ephemeral note.
            assert!(
                answer["type"] == 1 || answer["data"]["flags"] == 64,
                "{answer}"
            );
        } else {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_slash_command_drives_core() {
    let w = world().await;
    let lunavo = WorkspaceSlug::parse("lunavo").unwrap();
    w.krake
        .create_thread(
            &Actor::system(),
            &NewThread::new(lunavo, ThreadKind::Approval, "Post the hoodie launch", ""),
        )
        .await
        .unwrap();
    // As documented: another application's command, refused with an ephemeral explanation.
    let doc = fixture_json("docs_application_command_slash_with_options.json");
    let (status, answer) = signed(&w, &doc).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["type"], 4);
    assert_eq!(answer["data"]["flags"], 64);
    assert!(
        answer["data"]["content"]
            .as_str()
            .unwrap()
            .contains("not one of Krake's commands"),
        "{answer}"
    );
    // The same payload carrying Krake's /todo with a workspace choice.
    let mut todo = doc.clone();
    todo["data"] = json!({
        "type": 1, "name": "todo", "id": "771825006014889985",
        "options": [{ "type": 3, "name": "workspace", "value": "lunavo" }]
    });
    // In the documented channel, which no workspace is mapped to, an unlinked user sees no
    // Lunavo threads: core says why.
    let (status, answer) = signed(&w, &todo).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        answer["data"]["content"]
            .as_str()
            .unwrap()
            .contains("not a member of lunavo"),
        "{answer}"
    );
    // In Lunavo's channel they read Lunavo's threads.
    todo["id"] = json!("786008729715212339");
    todo["channel_id"] = json!(crate::LUNAVO_CHANNEL.to_string());
    let (status, answer) = signed(&w, &todo).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["type"], 4);
    let content = answer["data"]["content"].as_str().unwrap();
    assert!(
        content.contains("Open threads in Lunavo (1)")
            && content.contains("Post the hoodie launch"),
        "{content}"
    );
    assert_eq!(answer["data"]["allowed_mentions"], json!({ "parse": [] }));
    // Handled once: the interaction id is the idempotency key.
    let (_, again) = signed(&w, &todo).await;
    assert_eq!(again["data"]["content"], answer["data"]["content"]);
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM inbound WHERE idempotency_key = 'discord:interaction:786008729715212339'")
        .fetch_one(w.store.pool())
        .await
        .unwrap();
    assert_eq!(events, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buttons_are_decoded_and_checked() {
    let w = world().await;
    let t = w
        .krake
        .create_thread(
            &Actor::system(),
            &NewThread::new(
                WorkspaceSlug::parse("lunavo").unwrap(),
                ThreadKind::Approval,
                "Refund order 1001",
                "",
            ),
        )
        .await
        .unwrap();
    // As documented: `click_one` is not a Krake button.
    let doc = fixture_json("docs_message_component_button_click.json");
    let (status, answer) = signed(&w, &doc).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["data"]["flags"], 64);
    assert!(
        answer["data"]["content"]
            .as_str()
            .unwrap()
            .contains("not one of Krake's"),
        "{answer}"
    );
    // Krake's own Approve button, pressed in the Lunavo channel by a Discord user who has not
    // linked an account: an ephemeral refusal saying why; nothing changes.
    let approve = ButtonPayload {
        thread: t.id,
        action: ButtonAction::Approve,
        version: t.version,
    }
    .encode();
    let (status, answer) = crate::press(&w, "53908232506183680", &approve).await;
    assert_eq!(status, 200);
    assert_eq!(answer["type"], 4);
    assert_eq!(answer["data"]["flags"], 64, "the refusal is ephemeral");
    assert!(
        answer["data"]["content"]
            .as_str()
            .unwrap()
            .contains("not linked"),
        "{answer}"
    );
    let after = w.store.get(t.id).await.unwrap().unwrap();
    assert_eq!(after.status, ThreadStatus::Open);
    let mut press = doc.clone();
    // A forged payload for a thread that does not exist changes nothing either.
    press["data"]["custom_id"] = json!("k1:a:999999:1");
    let (status, answer) = signed(&w, &press).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["data"]["flags"], 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_commands_are_deferred_and_finished_by_follow_up() {
    let w = crate::world_with(|c| c.defer_after = std::time::Duration::from_millis(50)).await;
    // Hold the work: the inbound event cannot be recorded until the test says so.
    w.gate.forget_permits(tokio::sync::Semaphore::MAX_PERMITS);
    let doc = fixture_json("docs_application_command_slash_with_options.json");
    let mut cmd = doc.clone();
    cmd["data"] = json!({ "type": 1, "name": "workspaces", "id": "1" });
    let (status, answer) = signed(&w, &cmd).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        answer,
        fixture_json("interaction_responses.json")["deferred_channel_message_with_source"]
    );
    assert!(w.fake.with(|s| s.webhooks.is_empty()));
    w.gate.add_permits(1);
    w.fake.until(|s| !s.webhooks.is_empty()).await;
    let (method, path, body) = w.fake.with(|s| s.webhooks[0].clone());
    assert_eq!(method, "PATCH");
    assert_eq!(
        path,
        format!("/api/v10/webhooks/{APP}/A_UNIQUE_TOKEN/messages/@original")
    );
    assert!(
        body["content"].as_str().unwrap().contains("Hard Life Mode"),
        "{body}"
    );
}

/// The same interaction delivered twice (a retried request) while its work is slow: both
/// requests are answered "thinking…", and the reply reaches Discord once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_interaction_twice_gives_one_reply() {
    let w = crate::world_with(|c| c.defer_after = std::time::Duration::from_millis(50)).await;
    w.gate.forget_permits(tokio::sync::Semaphore::MAX_PERMITS);
    let doc = fixture_json("docs_application_command_slash_with_options.json");
    let mut cmd = doc.clone();
    cmd["data"] = json!({ "type": 1, "name": "workspaces", "id": "1" });
    for _ in 0..2 {
        let (status, answer) = signed(&w, &cmd).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            answer,
            fixture_json("interaction_responses.json")["deferred_channel_message_with_source"]
        );
    }
    w.gate.add_permits(2);
    w.fake.until(|s| !s.webhooks.is_empty()).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let replies = w.fake.with(|s| s.webhooks.clone());
    assert_eq!(replies.len(), 1, "one reply: {replies:?}");
    assert!(
        replies[0].2["content"]
            .as_str()
            .unwrap()
            .contains("Hard Life Mode")
    );
    // Delivered a third time when all is done: the stored reply, inline, and nothing sent.
    w.gate.add_permits(1);
    let (status, answer) = signed(&w, &cmd).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        answer["data"]["content"]
            .as_str()
            .unwrap()
            .contains("Hard Life Mode"),
        "{answer}"
    );
    assert_eq!(w.fake.with(|s| s.webhooks.len()), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_statuses() {
    let w = world().await;
    // Signed but not JSON.
    let ts = "1795503000";
    let junk = b"not json at all".to_vec();
    let (status, answer) = post(w.endpoint(), Some(&sign(&w.key, ts, &junk)), Some(ts), junk).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(answer["error"], "malformed interaction");
    // Signed, JSON, but not an interaction (no id / type).
    let (status, _) = signed(&w, &json!({ "hello": "world" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Unknown interaction types.
    for kind in [5, 99] {
        let (status, answer) = signed(&w, &json!({ "id": "1", "type": kind, "token": "t" })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("unsupported interaction type")
        );
    }
    // Autocomplete (the sample body) gets an empty choice list, not an error.
    let sample = fixture_json("discord_interactions_js_sample_bodies.json");
    let (status, answer) = signed(&w, &sample["autocomplete"]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["type"], 8);
    // A command without data, a button without custom_id: ephemeral notes.
    for body in [&sample["application_command"], &sample["message_component"]] {
        let (status, answer) = signed(&w, body).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["data"]["flags"], 64, "{answer}");
    }
    // Oversized bodies are refused before anything else.
    let big = vec![b' '; 70 * 1024];
    let (status, _) = post(w.endpoint(), Some(&sign(&w.key, ts, &big)), Some(ts), big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(snowflake("1").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correctly_signed_interaction_from_long_ago_is_refused() {
    let w = world().await;
    let ping = br#"{"id":"787053080478613555","token":"ThisIsATokenFromDiscordThatIsVeryLong","type":1,"version":1}"#.to_vec();
    // The test clock stands at 1795503000; 5 minutes either way is accepted.
    for (ts, want) in [
        ("1795503000", StatusCode::OK),
        ("1795502700", StatusCode::OK),
        ("1795503300", StatusCode::OK),
        ("1795502699", StatusCode::UNAUTHORIZED),
        ("1795489000", StatusCode::UNAUTHORIZED),
        ("1795599000", StatusCode::UNAUTHORIZED),
    ] {
        let (status, answer) = post(
            w.endpoint(),
            Some(&sign(&w.key, ts, &ping)),
            Some(ts),
            ping.clone(),
        )
        .await;
        assert_eq!(status, want, "{ts}: {answer}");
    }
    // The tolerance is configurable.
    let w = crate::world_with(|c| c.max_signature_skew = Duration::from_secs(60)).await;
    let (status, _) = post(
        w.endpoint(),
        Some(&sign(&w.key, "1795502700", &ping)),
        Some("1795502700"),
        ping.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// `/runs` and `/cancel` as Discord slash commands: the same core path as every front, the
/// answer in the interaction's response.
#[tokio::test]
async fn runs_are_listed_and_cancelled_by_slash_command() {
    use krake_core::run::{NewRun, RunRepo};
    use krake_core::time::Clock;
    let w = world().await;
    crate::link(&w, "777000111", "bo").await;
    for task in ["the tagline", "the newsletter"] {
        w.store
            .create_run(
                &NewRun {
                    workspace: WorkspaceSlug::parse("lunavo").unwrap(),
                    agent: "Penn".into(),
                    task: task.into(),
                    trigger: "command".into(),
                    requested_by: "ana".into(),
                    parent: None,
                    feedback: None,
                    answer_to: None,
                },
                w.clock.now(),
            )
            .await
            .unwrap();
    }
    let slash = |id: &str, name: &str, args: &str| {
        let mut cmd = fixture_json("docs_application_command_slash_with_options.json");
        cmd["id"] = Value::from(id);
        cmd["member"]["user"]["id"] = Value::from("777000111");
        cmd["data"] = json!({
            "type": 1, "name": name, "id": "1",
            "options": [{ "type": 3, "name": "args", "value": args }]
        });
        cmd
    };
    let (status, answer) = crate::signed(&w, &slash("91", "runs", "lunavo penn")).await;
    assert_eq!(status, 200);
    let content = answer["data"]["content"].as_str().unwrap();
    assert!(content.contains("Runs of Penn in lunavo (2):"), "{content}");
    assert!(
        content.contains("the newsletter") && content.contains("queued"),
        "{content}"
    );
    let (_, answer) = crate::signed(&w, &slash("92", "cancel", "1 wrong brief")).await;
    let content = answer["data"]["content"].as_str().unwrap();
    assert!(
        content.contains("Cancelled run 1 (Penn: the tagline)"),
        "{content}"
    );
    let run = w
        .store
        .run(krake_core::run::RunId(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.error.as_deref(), Some("cancelled by bo: wrong brief"));
    let (_, answer) = crate::signed(&w, &slash("93", "run", "1")).await;
    let content = answer["data"]["content"].as_str().unwrap();
    assert!(
        content.contains("Run 1 — Penn in lunavo: cancelled"),
        "{content}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delegated_runs_show_their_parent_and_their_own_costs_by_slash_command() {
    use krake_core::model::{Scripted, ScriptedModel};
    use krake_core::run::{NewRun, Runner};
    use std::sync::Arc;
    let w = world().await;
    crate::link(&w, "777000111", "bo").await;
    let call = |name: &str, args: Value| Scripted::Tools(vec![(name.into(), args.to_string())]);
    let model = Arc::new(ScriptedModel::new(vec![
        call(
            "delegate",
            json!({"agent": "milli", "task": "which colour sells best?"}),
        ),
        call(
            "delegate",
            json!({"agent": "data analyst", "task": "sales by colour"}),
        ),
        call(
            "reply",
            json!({"text": "Navy: 42 of 60.", "confidence": 0.9}),
        ),
        call(
            "reply",
            json!({"text": "Navy sells best.", "confidence": 0.85}),
        ),
        call(
            "reply",
            json!({"text": "Lead with navy.", "confidence": 0.9}),
        ),
    ]));
    let s = Arc::new(w.store.clone());
    let runner = Runner::new(
        s.clone(),
        s.clone(),
        s.clone(),
        Some(model),
        Arc::new(krake_core::knowledge::NoKnowledge),
        Arc::new(krake_core::run::RecordingExecutor::default()),
        w.clock.clone(),
        krake_core::config::Directory::default(),
    );
    runner
        .start(&NewRun {
            workspace: WorkspaceSlug::parse("lunavo").unwrap(),
            agent: "Penn".into(),
            task: "plan the launch post".into(),
            trigger: "command".into(),
            requested_by: "bo".into(),
            parent: None,
            feedback: None,
            answer_to: None,
        })
        .await
        .unwrap();
    runner.work_once("t", 1).await.unwrap();
    let slash = |id: &str, args: &str| {
        let mut cmd = fixture_json("docs_application_command_slash_with_options.json");
        cmd["id"] = Value::from(id);
        cmd["member"]["user"]["id"] = Value::from("777000111");
        cmd["data"] = json!({
            "type": 1, "name": "run", "id": "1",
            "options": [{ "type": 3, "name": "args", "value": args }]
        });
        cmd
    };
    let (_, answer) = crate::signed(&w, &slash("94", "2")).await;
    let milli = answer["data"]["content"].as_str().unwrap();
    assert!(milli.contains("Run 2 — Milli in lunavo: done"), "{milli}");
    assert!(milli.contains("Delegated by run 1"), "{milli}");
    assert!(milli.contains("Model calls: 2;"), "{milli}");
    assert!(milli.contains("to Dexter (run 3)"), "{milli}");
    let (_, answer) = crate::signed(&w, &slash("95", "3")).await;
    let dexter = answer["data"]["content"].as_str().unwrap();
    assert!(dexter.contains("Delegated by run 2"), "{dexter}");
    assert!(dexter.contains("Model calls: 1;"), "{dexter}");
    let (_, answer) = crate::signed(&w, &slash("96", "1")).await;
    let penn = answer["data"]["content"].as_str().unwrap();
    assert!(
        penn.contains("Model calls: 2;") && penn.contains("to Milli (run 2)"),
        "{penn}"
    );
}
