//! The Telegram front end to end: krake-telegram against a local fake of the Bot API (real
//! wire protocol), over a real SQLite store, fed with the real update payloads in
//! ../shared/fixtures/telegram. Time is a manual clock: nothing waits on the wall clock.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_core::Krake;
use krake_core::actor::{Actor, Role, UserName};
use krake_core::chat::command::COMMANDS;
use krake_core::config::Directory;
use krake_core::delivery::{Deliverer, Routes};
use krake_core::inbox::{NewThread, ThreadId, ThreadKind, ThreadStatus};
use krake_core::outbox::{NewOutbound, OutboxPayload};
use krake_core::ports::{FrontStateRepo, InboxRepo, OutboxRepo, UserRepo};
use krake_core::reply::{Reply, Tone};
use krake_core::time::{Clock, ManualClock, Timestamp};
use krake_core::workspace::WorkspaceSlug;
use krake_store::Store;
use krake_telegram::front::{FrontPorts, Handled, SECRET_HEADER, WEBHOOK_PATH};
use krake_telegram::sender::Limits;
use krake_telegram::{
    BotToken, ChatRoute, Mode, Place, TelegramConfig, TelegramFront, TelegramSender, WebhookSecret,
};
use krake_tests::fake_telegram::{BOT_USERNAME, FakeTelegram, TOKEN};
use krake_tests::stop;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt;

/// The forum supergroup of the fixtures, and its topic 4: lunavo's inbox.
const GROUP: i64 = -1001847508954;
const TOPIC: i64 = 4;
const T0: i64 = 1_795_503_000_000;

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/../../shared/fixtures/telegram/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn lunavo() -> WorkspaceSlug {
    WorkspaceSlug::parse("lunavo").unwrap()
}

struct World {
    fake: FakeTelegram,
    store: Store,
    clock: Arc<ManualClock>,
    krake: Krake,
    config: TelegramConfig,
    front: Arc<TelegramFront>,
    deliverer: Deliverer,
    _dir: tempfile::TempDir,
}

fn test_limits() -> Limits {
    Limits {
        per_chat: Duration::ZERO,
        group_max: 10_000,
        group_window: Duration::from_secs(60),
        max_wait: Duration::ZERO,
    }
}

impl World {
    async fn new(mode: Mode) -> World {
        let fake = FakeTelegram::start().await;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&Store::sqlite_url(&dir.path().join("k.db")))
            .await
            .unwrap();
        store.migrate(|_| {}).await.unwrap();
        let clock = Arc::new(ManualClock::new(Timestamp::from_millis(T0)));
        let config = TelegramConfig {
            token: BotToken::parse(TOKEN).unwrap(),
            api_url: Some(fake.url.clone()),
            mode,
            chats: vec![ChatRoute {
                workspace: lunavo(),
                place: Place::topic(GROUP, i32::try_from(TOPIC).unwrap()),
            }],
        };
        let mut routes = Routes::new();
        config.add_routes(&mut routes);
        let s = Arc::new(store.clone());
        let krake = Krake::new(s.clone(), s.clone(), clock.clone(), Directory::default())
            .with_routes(routes)
            .with_users(s.clone());
        let front = Arc::new(Self::start_front(&krake, &config, &store).await);
        let deliverer = Self::deliverer(&config, &store, &clock, "telegram-1");
        World {
            fake,
            store,
            clock,
            krake,
            config,
            front,
            deliverer,
            _dir: dir,
        }
    }

    async fn polling() -> World {
        Self::new(Mode::Polling { timeout_secs: 0 }).await
    }

    async fn start_front(krake: &Krake, config: &TelegramConfig, store: &Store) -> TelegramFront {
        let s = Arc::new(store.clone());
        TelegramFront::start(krake.clone(), config.clone(), FrontPorts { state: s })
            .await
            .unwrap()
    }

    /// A fresh sender and deliverer, as after a restart.
    fn deliverer(
        config: &TelegramConfig,
        store: &Store,
        clock: &Arc<ManualClock>,
        owner: &str,
    ) -> Deliverer {
        let s = Arc::new(store.clone());
        let sender = TelegramSender::with_limits(
            krake_telegram::front::bot(config).unwrap(),
            s.clone(),
            clock.clone(),
            test_limits(),
        );
        Deliverer::new(s.clone(), s, Arc::new(sender), clock.clone(), owner)
    }

    async fn handle(&self, update: &Value) -> Handled {
        self.front
            .handle_json(&serde_json::to_vec(update).unwrap())
            .await
            .unwrap()
    }

    /// Delivers everything due (one message per destination per pass, so several passes).
    async fn deliver(&self) -> usize {
        let mut total = 0;
        loop {
            let s = self.deliverer.run_once().await.unwrap();
            total += s.delivered;
            if s.delivered + s.retried + s.dead + s.lost == 0 {
                return total;
            }
        }
    }

    async fn approval(&self, title: &str) -> ThreadId {
        self.krake
            .create_thread(
                &Actor::system(),
                &NewThread::new(lunavo(), ThreadKind::Approval, title, "Proposed by Penn."),
            )
            .await
            .unwrap()
            .id
    }

    /// Links Telegram user `tg_user` to a new Krake user `name` with `role`, through `/link`.
    async fn link(&self, tg_user: u64, name: &str, role: Role) {
        let user = UserName::parse(name).unwrap();
        self.store
            .upsert_user(&user, role, None, self.clock.now())
            .await
            .unwrap();
        let code = format!("CODE{tg_user}");
        self.store
            .create_link_code(
                &user,
                &code,
                self.clock.now().plus(Duration::from_secs(900)),
            )
            .await
            .unwrap();
        let h = self
            .handle(&private_text(
                900_000 + tg_user,
                tg_user,
                &format!("/link {code}"),
            ))
            .await;
        match h {
            Handled::Replied(r) => assert_eq!(r.tone, Tone::Success, "{}", r.text),
            other => panic!("{other:?}"),
        }
    }
}

fn private_text(update_id: u64, user: u64, text: &str) -> Value {
    let mut u = fixture("update_message_private_text.json");
    u["update_id"] = json!(update_id);
    u["message"]["from"]["id"] = json!(user);
    u["message"]["chat"]["id"] = json!(user);
    u["message"]["text"] = json!(text);
    u
}

/// A callback query as Telegram sends it for a button on `message` (a message the bot sent).
fn press(update_id: u64, user: u64, data: &str, message: &Value) -> Value {
    json!({
        "update_id": update_id,
        "callback_query": {
            "id": format!("q{update_id}"),
            "from": {"id": user, "is_bot": false, "first_name": "Someone", "username": format!("user{user}")},
            "chat_instance": "-4242",
            "data": data,
            "message": message,
        }
    })
}

/// The message the fake confirmed for a sendMessage body (what Telegram would give back).
fn as_message(body: &Value, id: i64) -> Value {
    let mut m = json!({
        "message_id": id,
        "date": 1_795_503_000,
        "chat": {"id": body["chat_id"], "type": "supergroup", "title": "twest", "is_forum": true},
        "from": {"id": 123456, "is_bot": true, "first_name": "Krake", "username": BOT_USERNAME},
        "text": body["text"],
        "reply_markup": body["reply_markup"],
    });
    if let Some(t) = body.get("message_thread_id") {
        m["message_thread_id"] = t.clone();
        m["is_topic_message"] = json!(true);
    }
    m
}

fn callback_data(body: &Value, button: usize) -> String {
    body["reply_markup"]["inline_keyboard"][0][button]["callback_data"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn utf16(s: &str) -> usize {
    s.encode_utf16().count()
}

#[tokio::test]
async fn start_registers_core_commands() {
    let w = World::polling().await;
    assert_eq!(w.fake.calls_of("getMe").len(), 1);
    let set = w.fake.calls_of("setMyCommands");
    assert_eq!(set.len(), 1);
    let names: Vec<&str> = set[0].body["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["command"].as_str().unwrap())
        .collect();
    let core: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
    assert_eq!(names, core, "the menu is core's command list");
}

#[tokio::test]
async fn private_text_is_answered_in_the_private_chat() {
    let w = World::polling().await;
    w.fake
        .push_update(fixture("update_message_private_text.json"));
    assert_eq!(w.front.poll_once(0).await.unwrap(), 1);
    assert_eq!(w.deliver().await, 1);
    let sent = w.fake.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0["chat_id"], json!(218485655));
    assert!(sent[0].0.get("message_thread_id").is_none());
    assert!(
        sent[0].0.get("parse_mode").is_none(),
        "plain text, nothing to escape"
    );
    assert!(!sent[0].0["text"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn group_commands_mentions_and_reply_threads() {
    let w = World::polling().await;
    // A real command in a reply thread of an ordinary (non-forum) supergroup: answered in the
    // chat (reply threads are not topics).
    let real = fixture("update_message_bot_command_reply_thread_supergroup.json");
    match w.handle(&real).await {
        Handled::Replied(r) => assert!(r.text.contains("report"), "{}", r.text),
        other => panic!("{other:?}"),
    }
    // The same with this bot's name, and with another bot's.
    let mut mine = real.clone();
    mine["update_id"] = json!(439432601);
    mine["message"]["text"] = json!(format!("/todo@{BOT_USERNAME}"));
    mine["message"]["entities"][0]["length"] = json!(5 + 1 + BOT_USERNAME.len());
    assert!(matches!(w.handle(&mine).await, Handled::Replied(_)));
    let mut other = real.clone();
    other["update_id"] = json!(439432602);
    other["message"]["text"] = json!("/todo@some_other_bot");
    assert!(matches!(w.handle(&other).await, Handled::Skipped(_)));
    // Chatter not meant for the bot is ignored; a mention is not.
    let mut chatter = real.clone();
    chatter["update_id"] = json!(439432603);
    chatter["message"]["text"] = json!("lunch?");
    chatter["message"]
        .as_object_mut()
        .unwrap()
        .remove("entities");
    assert!(matches!(w.handle(&chatter).await, Handled::Skipped(_)));
    let mut mention = chatter.clone();
    mention["update_id"] = json!(439432604);
    mention["message"]["text"] = json!(format!("@{BOT_USERNAME} agents"));
    match w.handle(&mention).await {
        Handled::Replied(r) => assert!(r.text.contains("Agents"), "{}", r.text),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.deliver().await, 3);
    for (body, _) in w.fake.sent() {
        assert_eq!(body["chat_id"], json!(-1001293752024i64));
        assert!(body.get("message_thread_id").is_none(), "{body}");
    }
}

#[tokio::test]
async fn a_command_in_a_forum_topic_is_answered_in_that_topic() {
    let w = World::polling().await;
    let message = fixture("message_forum_topic_message.json");
    // The real topic message ("blah") is not for the bot.
    let plain = json!({"update_id": 1, "message": message.clone()});
    assert!(matches!(w.handle(&plain).await, Handled::Skipped(_)));
    let mut cmd = plain.clone();
    cmd["update_id"] = json!(2);
    cmd["message"]["text"] = json!("/todo");
    cmd["message"]["entities"] = json!([{"type": "bot_command", "offset": 0, "length": 5}]);
    match w.handle(&cmd).await {
        Handled::Replied(r) => assert!(
            r.text.contains("All clear") || r.text.contains("open"),
            "{}",
            r.text
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(w.deliver().await, 1);
    let sent = w.fake.sent();
    assert_eq!(sent[0].0["chat_id"], json!(GROUP));
    assert_eq!(sent[0].0["message_thread_id"], json!(TOPIC));
}

#[tokio::test]
async fn approvals_need_a_linked_member_and_every_press_is_answered() {
    let w = World::polling().await;
    let t = w.approval("Post the launch tagline").await;
    // The new thread is posted in lunavo's topic with [Approve] [Reject].
    assert_eq!(w.deliver().await, 1);
    let (post, message_id) = w.fake.sent()[0].clone();
    assert_eq!(post["chat_id"], json!(GROUP));
    assert_eq!(post["message_thread_id"], json!(TOPIC));
    let approve = callback_data(&post, 0);
    let reject = callback_data(&post, 1);
    assert!(approve.len() <= 64 && approve.starts_with("k1:a:"));
    let copies = w.store.copies(t).await.unwrap();
    assert_eq!(copies[0].message_id, message_id.to_string());
    let message = as_message(&post, message_id);

    // An unlinked user may not decide, and is told why.
    match w.handle(&press(10, 555, &approve, &message)).await {
        Handled::Answered(r) => {
            assert_eq!(r.tone, Tone::Warning);
            assert!(r.text.to_lowercase().contains("link"), "{}", r.text);
        }
        other => panic!("{other:?}"),
    }
    let answers = w.fake.calls_of("answerCallbackQuery");
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].body["callback_query_id"], json!("q10"));
    assert_eq!(answers[0].body["show_alert"], json!(true));
    assert_eq!(
        w.store.get(t).await.unwrap().unwrap().status,
        ThreadStatus::Open
    );

    // Once linked, the same person approves; the posted message is edited to say who decided.
    w.link(555, "ana", Role::Member).await;
    match w.handle(&press(11, 555, &approve, &message)).await {
        Handled::Answered(r) => assert_eq!(r.tone, Tone::Success, "{}", r.text),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        w.store.get(t).await.unwrap().unwrap().status,
        ThreadStatus::Approved
    );
    w.deliver().await;
    let edits = w.fake.edits();
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].1, message_id);
    let text = edits[0].0["text"].as_str().unwrap();
    assert!(text.contains("Decided by ana"), "{text}");
    assert!(text.contains("approved"), "{text}");
    assert_eq!(
        edits[0].0["reply_markup"]["inline_keyboard"],
        json!([]),
        "a decided thread has no buttons"
    );

    // A second decision, from any front, is refused with the current state.
    w.link(556, "bo", Role::Member).await;
    match w.handle(&press(12, 556, &reject, &message)).await {
        Handled::Answered(r) => {
            assert_eq!(r.tone, Tone::Warning);
            assert!(r.text.contains("approved"), "{}", r.text);
        }
        other => panic!("{other:?}"),
    }
    let cli = w
        .krake
        .handle_text(&Actor::local(), &format!("reject {}", t.0))
        .await;
    assert_eq!(cli.tone, Tone::Warning, "{}", cli.text);

    // Forged and foreign callback data are refused, and still answered.
    for (i, data) in ["garbage", "k1:a:99999:1", "k1:z:1:1"].iter().enumerate() {
        let id = 20 + u64::try_from(i).unwrap();
        match w.handle(&press(id, 555, data, &message)).await {
            Handled::Answered(r) => assert_eq!(r.tone, Tone::Warning, "{data}: {}", r.text),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(w.fake.calls_of("answerCallbackQuery").len(), 6);
    assert_eq!(
        w.store.get(t).await.unwrap().unwrap().status,
        ThreadStatus::Approved
    );
}

#[tokio::test]
async fn a_decision_on_another_front_edits_the_telegram_copy() {
    let w = World::polling().await;
    let t = w.approval("Mirror me").await;
    w.deliver().await;
    let (_, message_id) = w.fake.sent()[0].clone();
    w.krake
        .handle_text(&Actor::local(), &format!("reject {} off-brand", t.0))
        .await;
    w.deliver().await;
    let edits = w.fake.edits();
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].1, message_id);
    assert!(
        edits[0].0["text"]
            .as_str()
            .unwrap()
            .contains("Decided by local: off-brand")
    );
}

#[tokio::test]
async fn replying_to_a_thread_message_replies_in_the_thread() {
    let w = World::polling().await;
    let t = w
        .krake
        .create_thread(
            &Actor::system(),
            &NewThread::new(
                lunavo(),
                ThreadKind::Question,
                "Which colour?",
                "Red or blue?",
            ),
        )
        .await
        .unwrap()
        .id;
    w.deliver().await;
    let (post, message_id) = w.fake.sent()[0].clone();
    w.link(700, "cy", Role::Member).await;
    let mut reply =
        json!({"update_id": 30, "message": fixture("message_forum_topic_message.json")});
    reply["message"]["from"]["id"] = json!(700);
    reply["message"]["text"] = json!("blue, clearly");
    reply["message"]["reply_to_message"] = as_message(&post, message_id);
    match w.handle(&reply).await {
        Handled::Replied(r) => assert_eq!(r.tone, Tone::Success, "{}", r.text),
        other => panic!("{other:?}"),
    }
    let th = w.store.get(t).await.unwrap().unwrap();
    assert_eq!(th.replies.len(), 1);
    assert_eq!(th.replies[0].text, "blue, clearly");
    assert_eq!(th.replies[0].author.as_str(), "cy");
}

#[tokio::test]
async fn unknown_kinds_old_shapes_and_malformed_updates_are_skipped_without_error() {
    let w = World::polling().await;
    let mut cases = vec![
        (
            "update_unknown_kind.json",
            fixture("update_unknown_kind.json"),
        ),
        (
            "update_my_chat_member_private_kicked.json",
            fixture("update_my_chat_member_private_kicked.json"),
        ),
        (
            "update_message_story_supergroup.json",
            fixture("update_message_story_supergroup.json"),
        ),
        (
            "update_message_pinned_supergroup.json",
            fixture("update_message_pinned_supergroup.json"),
        ),
        (
            "message_forum_topic_created.json",
            json!({"update_id": 77, "message": fixture("message_forum_topic_created.json")}),
        ),
    ];
    for name in [
        "callback_query_inline_message.json",
        "edited_message.json",
        "message_text_start.json",
        "message_with_entities.json",
        "message_with_reply.json",
    ] {
        cases.push((name, fixture(&format!("official_webhook_guide/{name}"))));
    }
    for (name, update) in &cases {
        let h = w
            .front
            .handle_json(&serde_json::to_vec(update).unwrap())
            .await;
        assert!(h.is_ok(), "{name}: {h:?}");
        if *name == "message_text_start.json" {
            // The old-shape `/start` (its sender lacks `is_bot`) is read and answered with help.
            match h.unwrap() {
                Handled::Replied(r) => assert!(r.text.contains("/todo"), "{}", r.text),
                other => panic!("{other:?}"),
            }
        }
    }
    let skipped = |name: &str| {
        let u = &cases.iter().find(|(n, _)| *n == name).unwrap().1;
        (w.front.clone(), serde_json::to_vec(u).unwrap())
    };
    for name in [
        "update_unknown_kind.json",
        "update_my_chat_member_private_kicked.json",
        "update_message_story_supergroup.json",
        "edited_message.json",
    ] {
        let (front, body) = skipped(name);
        assert!(
            matches!(front.handle_json(&body).await.unwrap(), Handled::Skipped(_)),
            "{name}"
        );
    }
    // The old inline-message callback (no chat_instance) cannot be read, but is answered.
    let (front, body) = skipped("callback_query_inline_message.json");
    match front.handle_json(&body).await.unwrap() {
        Handled::Answered(r) => assert_eq!(r.tone, Tone::Warning),
        other => panic!("{other:?}"),
    }
    let answers = w.fake.calls_of("answerCallbackQuery");
    assert!(
        answers
            .iter()
            .all(|a| a.body["callback_query_id"] == json!("4382bfdwdsb323b2d9"))
    );
    assert_eq!(answers.len(), 2, "answered each time it came");
    for body in [&b"not json"[..], b"{}", b"{\"update_id\":\"x\"}", b"[]"] {
        assert!(matches!(
            w.front.handle_json(body).await.unwrap(),
            Handled::Skipped(_)
        ));
    }
}

#[tokio::test]
async fn polling_reads_past_an_unreadable_update() {
    let w = World::polling().await;
    w.fake.push_update(json!({"update_id": 5, "message": 17}));
    w.fake.push_update(json!({"message": {"text": "no id"}}));
    w.fake.push_update(private_text(6, 42, "help"));
    let n = w.front.poll_once(0).await.unwrap();
    assert_eq!(n, 2);
    assert_eq!(w.store.cursor("telegram").await.unwrap(), Some(7));
    assert_eq!(w.deliver().await, 1);
}

#[tokio::test]
async fn the_offset_survives_a_restart() {
    let w = World::polling().await;
    w.fake
        .push_update(fixture("update_message_private_text.json"));
    w.fake
        .push_update(fixture("update_message_private_text_2.json"));
    assert_eq!(w.front.poll_once(0).await.unwrap(), 2);
    let cursor = w.store.cursor("telegram").await.unwrap().unwrap();
    // Restart: a new front over the same database asks for updates after the saved offset.
    let front = World::start_front(&w.krake, &w.config, &w.store).await;
    assert_eq!(front.poll_once(0).await.unwrap(), 0);
    let last = w.fake.calls_of("getUpdates").last().unwrap().body.clone();
    assert_eq!(last["offset"], json!(cursor));
    assert_eq!(w.deliver().await, 2, "each update answered once");
}

#[tokio::test]
async fn a_redelivered_update_changes_nothing_twice() {
    let w = World::polling().await;
    let t = w.approval("Once only").await;
    w.link(555, "ana", Role::Member).await;
    let approve = private_text(40, 555, &format!("/approve {}", t.0));
    assert!(matches!(w.handle(&approve).await, Handled::Replied(_)));
    assert!(matches!(w.handle(&approve).await, Handled::Replied(_)));
    let audit = w.store.audit(t).await.unwrap();
    let decisions = audit.iter().filter(|a| a.action == "approved").count();
    assert_eq!(decisions, 1, "{audit:?}");
}

#[tokio::test]
async fn a_429_is_honoured_then_the_message_goes_out() {
    let w = World::polling().await;
    w.store
        .enqueue(
            &[NewOutbound {
                destination: Place::chat(42).destination(),
                payload: OutboxPayload::Send {
                    reply: Reply::info("hello"),
                },
            }],
            w.clock.now(),
        )
        .await
        .unwrap();
    w.fake.rate_limit("sendMessage", 1, 3);
    let s = w.deliverer.run_once().await.unwrap();
    assert_eq!((s.delivered, s.retried), (0, 1));
    w.clock.advance(Duration::from_secs(2));
    assert_eq!(w.deliver().await, 0, "not before retry_after");
    w.clock.advance(Duration::from_secs(1));
    assert_eq!(w.deliver().await, 1);
    assert_eq!(w.fake.calls_of("sendMessage").len(), 2);
    assert_eq!(w.fake.sent().len(), 1);
}

#[tokio::test]
async fn long_texts_are_split_on_utf16_boundaries() {
    let w = World::polling().await;
    let text = format!("a{}", "😀".repeat(2500)); // 5001 UTF-16 units, 2501 characters
    w.store
        .enqueue(
            &[NewOutbound {
                destination: Place::chat(42).destination(),
                payload: OutboxPayload::Send {
                    reply: Reply::info(text.clone()),
                },
            }],
            w.clock.now(),
        )
        .await
        .unwrap();
    assert_eq!(w.deliver().await, 1);
    let parts: Vec<String> = w
        .fake
        .sent()
        .iter()
        .map(|(b, _)| b["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(parts.len(), 2);
    assert!(parts.iter().all(|p| utf16(p) <= 4096));
    assert_eq!(parts.concat(), text);
}

#[tokio::test]
async fn a_restart_mid_delivery_neither_loses_nor_repeats_a_message() {
    let w = World::polling().await;
    let text = "x".repeat(5000);
    let ids = w
        .store
        .enqueue(
            &[NewOutbound {
                destination: Place::chat(42).destination(),
                payload: OutboxPayload::Send {
                    reply: Reply::info(text.clone()),
                },
            }],
            w.clock.now(),
        )
        .await
        .unwrap();
    // The first part goes out; the process dies while the second is in flight.
    w.fake.hold_sends_after(Some(1));
    let first = World::deliverer(&w.config, &w.store, &w.clock, "telegram-a");
    let run = tokio::spawn(async move { first.run_once().await });
    w.fake.wait_calls("sendMessage", 2).await;
    run.abort();
    assert!(run.await.is_err(), "killed");
    assert_eq!(w.fake.sent().len(), 1);
    assert_eq!(w.store.sent_parts(ids[0]).await.unwrap().len(), 1);

    // A new process takes the message over once the lease has run out.
    w.fake.hold_sends_after(None);
    w.clock.advance(Duration::from_secs(61));
    let second = World::deliverer(&w.config, &w.store, &w.clock, "telegram-b");
    assert_eq!(second.run_once().await.unwrap().delivered, 1);
    let parts: Vec<String> = w
        .fake
        .sent()
        .iter()
        .map(|(b, _)| b["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(parts.len(), 2, "each part shown exactly once");
    assert_eq!(parts.concat(), text);
    assert_eq!(w.store.outbox_depth().await.unwrap(), 0);
}

#[tokio::test]
async fn a_crash_after_sending_but_before_completing_sends_nothing_again() {
    let w = World::polling().await;
    let t = w.approval("Posted once").await;
    // Deliver, then forget the completion (as if the process died just before recording it):
    // the lease runs out and another worker takes the job.
    let jobs = w
        .store
        .claim_outbox(
            Some("telegram"),
            "dead-worker",
            w.clock.now(),
            Duration::from_secs(60),
            10,
        )
        .await
        .unwrap();
    assert_eq!(jobs.len(), 1);
    let sender = TelegramSender::with_limits(
        krake_telegram::front::bot(&w.config).unwrap(),
        Arc::new(w.store.clone()),
        w.clock.clone(),
        test_limits(),
    );
    let thread = w.store.get(t).await.unwrap().unwrap();
    use krake_core::delivery::{Delivery, Sender};
    sender
        .send_keyed(jobs[0].id, &jobs[0].destination, &Delivery::Post { thread })
        .await
        .unwrap();
    assert_eq!(w.fake.sent().len(), 1);
    w.clock.advance(Duration::from_secs(61));
    assert_eq!(w.deliver().await, 1);
    assert_eq!(w.fake.sent().len(), 1, "not posted twice");
    let copies = w.store.copies(t).await.unwrap();
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].message_id, w.fake.sent()[0].1.to_string());
}

#[tokio::test]
async fn a_permanent_failure_is_dead_lettered_and_the_chat_moves_on() {
    let w = World::polling().await;
    let to = Place::chat(42).destination();
    let msgs: Vec<NewOutbound> = ["first", "second"]
        .iter()
        .map(|t| NewOutbound {
            destination: to.clone(),
            payload: OutboxPayload::Send {
                reply: Reply::info(*t),
            },
        })
        .collect();
    w.store.enqueue(&msgs, w.clock.now()).await.unwrap();
    w.fake
        .fail_once("sendMessage", 403, "Forbidden: bot was blocked by the user");
    let s = w.deliverer.run_once().await.unwrap();
    assert_eq!(s.dead, 1);
    assert_eq!(w.deliver().await, 1);
    assert_eq!(w.fake.sent()[0].0["text"], json!("second"));
}

#[tokio::test]
async fn webhook_checks_the_secret() {
    let secret = WebhookSecret::parse("s3cret-Token_1").unwrap();
    let w = World::new(Mode::Webhook {
        secret,
        url: Some("https://krake.example/telegram/webhook".into()),
    })
    .await;
    assert_eq!(w.fake.calls_of("setWebhook").len(), 1);
    let app = w.front.clone().webhook_router();
    let body = serde_json::to_vec(&fixture("update_message_private_text.json")).unwrap();
    let call = |secret: Option<&str>, body: Vec<u8>| {
        let mut req =
            axum::http::Request::post(WEBHOOK_PATH).header("content-type", "application/json");
        if let Some(s) = secret {
            req = req.header(SECRET_HEADER, s);
        }
        app.clone()
            .oneshot(req.body(axum::body::Body::from(body)).unwrap())
    };
    let status = |r: axum::response::Response| r.status().as_u16();
    assert_eq!(status(call(None, body.clone()).await.unwrap()), 401);
    assert_eq!(
        status(call(Some("wrong"), body.clone()).await.unwrap()),
        401
    );
    assert_eq!(
        status(call(Some("s3cret-Token_"), body.clone()).await.unwrap()),
        401
    );
    assert_eq!(
        status(call(Some("s3cret-Token_1"), body.clone()).await.unwrap()),
        200
    );
    assert_eq!(
        status(
            call(Some("s3cret-Token_1"), b"{not json".to_vec())
                .await
                .unwrap()
        ),
        200,
        "a malformed update is logged and skipped"
    );
    assert_eq!(w.deliver().await, 1, "one update, one reply");
}

/// `krake serve` (the real binary) with the Telegram front on, against the fake.
async fn serve_with_telegram(
    fake: &FakeTelegram,
    dir: &std::path::Path,
    extra_toml: &str,
) -> (std::process::Child, u16, std::sync::mpsc::Receiver<String>) {
    let config = dir.join("krake.toml");
    std::fs::write(
        &config,
        format!(
            "[telegram]\napi_url = \"{}\"\npoll_timeout_secs = 1\n{extra_toml}\n[[telegram.chats]]\nworkspace = \"lunavo\"\nchat_id = {GROUP}\ntopic = {TOPIC}\n",
            fake.url
        ),
    )
    .unwrap();
    let mut cmd = krake_tests::krake(dir);
    cmd.args(["--config"])
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("KRAKE_TELEGRAM_TOKEN", TOKEN)
        .env("KRAKE_LOG", "info");
    krake_tests::spawn_serve(cmd).await
}

async fn post(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> String {
    krake_tests::raw_http(port, "POST", path, headers, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn krake_serve_polls_answers_and_posts_threads() {
    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (child, _port, logs) = serve_with_telegram(&fake, dir.path(), "").await;
    fake.wait_calls("setMyCommands", 1).await;
    fake.push_update(private_text(1, 42, "/help"));
    fake.wait_sent(1).await;
    let sent = fake.sent();
    assert_eq!(sent[0].0["chat_id"], json!(42));
    assert!(sent[0].0["text"].as_str().unwrap().contains("/todo"));
    // The offset was confirmed: the next getUpdates asks past update 1.
    fake.wait_calls("getUpdates", 3).await;
    let last = fake.calls_of("getUpdates").last().unwrap().body.clone();
    assert_eq!(last["offset"], json!(2));
    stop(child);
    let logs: Vec<String> = logs.try_iter().collect();
    let secret = TOKEN.split_once(':').unwrap().1;
    assert!(
        logs.iter().all(|l| !l.contains(secret)),
        "the token never appears in logs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn krake_serve_webhook_checks_the_secret() {
    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let (child, port, _logs) = serve_with_telegram(
        &fake,
        dir.path(),
        "mode = \"webhook\"\nwebhook_secret = \"hook-Secret_42\"\nwebhook_url = \"https://krake.example/telegram/webhook\"\n",
    )
    .await;
    fake.wait_calls("setWebhook", 1).await;
    let body = serde_json::to_vec(&private_text(7, 43, "/help")).unwrap();
    let wrong = post(port, WEBHOOK_PATH, &[(SECRET_HEADER, "nope")], &body).await;
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    let none = post(port, WEBHOOK_PATH, &[], &body).await;
    assert!(none.starts_with("HTTP/1.1 401"), "{none}");
    let ok = post_when_up(port, &body).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    fake.wait_sent(1).await;
    assert_eq!(fake.sent()[0].0["chat_id"], json!(43));
    assert!(
        fake.calls_of("getUpdates").is_empty(),
        "no polling in webhook mode"
    );
    stop(child);
}

#[tokio::test]
async fn unlinked_users_see_only_their_chats_workspace_and_are_told_why() {
    let w = World::polling().await;
    let secret = w
        .krake
        .create_thread(
            &Actor::system(),
            &NewThread::new(
                WorkspaceSlug::parse("monarch").unwrap(),
                ThreadKind::Approval,
                "Monarch's secret plan",
                "",
            ),
        )
        .await
        .unwrap()
        .id;
    let in_topic = |update_id: u64, text: &str| {
        let mut u =
            json!({"update_id": update_id, "message": fixture("message_forum_topic_message.json")});
        u["message"]["from"]["id"] = json!(555);
        u["message"]["text"] = json!(text);
        u["message"]["entities"] = json!([{"type": "bot_command", "offset": 0, "length": text.split(' ').next().unwrap().len()}]);
        u
    };
    match w.handle(&in_topic(1, "/todo monarch")).await {
        Handled::Replied(r) => {
            assert_eq!(r.tone, Tone::Warning, "{}", r.text);
            assert!(r.text.contains("/link"), "told how to link: {}", r.text);
        }
        other => panic!("{other:?}"),
    }
    match w.handle(&in_topic(2, &format!("/show {}", secret.0))).await {
        Handled::Replied(r) => assert!(!r.text.contains("secret plan"), "{}", r.text),
        other => panic!("{other:?}"),
    }
    // Their chat's own workspace is readable.
    match w.handle(&in_topic(3, "/todo lunavo")).await {
        Handled::Replied(r) => assert_ne!(r.tone, Tone::Warning, "{}", r.text),
        other => panic!("{other:?}"),
    }
    // Linked as a member of every workspace, they see it.
    w.link(555, "ana", Role::Member).await;
    match w.handle(&in_topic(4, &format!("/show {}", secret.0))).await {
        Handled::Replied(r) => assert!(r.text.contains("secret plan"), "{}", r.text),
        other => panic!("{other:?}"),
    }
}

/// A backlog across many chats goes out at the per-chat limit, in order, with no 429. The limit
/// is scaled down (100 ms instead of 1 s per chat) so the test takes about a second; the
/// fake enforces it (with some slack for network jitter) and answers 429 when it is broken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_goes_out_at_the_limit_in_order_without_429() {
    const CHATS: i64 = 100;
    const EACH: usize = 10;
    let w = World::polling().await;
    let interval = Duration::from_millis(100);
    w.fake.enforce_per_chat(interval * 8 / 10);
    let mut msgs = Vec::new();
    for i in 0..EACH {
        for c in 1..=CHATS {
            msgs.push(NewOutbound {
                destination: Place::chat(c).destination(),
                payload: OutboxPayload::Send {
                    reply: Reply::info(format!("{c}:{i}")),
                },
            });
        }
    }
    w.store.enqueue(&msgs, w.clock.now()).await.unwrap();
    let s = Arc::new(w.store.clone());
    let clock: Arc<dyn Clock> = Arc::new(krake_core::time::SystemClock);
    let sender = TelegramSender::with_limits(
        krake_telegram::front::bot(&w.config).unwrap(),
        s.clone(),
        clock.clone(),
        Limits {
            per_chat: interval,
            ..Limits::default()
        },
    );
    let deliverer = Deliverer::new(s.clone(), s, Arc::new(sender), clock, "bench");
    let started = std::time::Instant::now();
    let mut delivered = 0;
    while delivered < msgs.len() {
        let st = deliverer.run_once().await.unwrap();
        assert_eq!(st.dead, 0);
        delivered += st.delivered;
    }
    let took = started.elapsed();
    assert_eq!(w.fake.too_many(), 0, "no 429: the sender kept to the limit");
    let sent = w.fake.sent();
    assert_eq!(sent.len(), msgs.len());
    for c in 1..=CHATS {
        let texts: Vec<String> = sent
            .iter()
            .filter(|(b, _)| b["chat_id"] == json!(c))
            .map(|(b, _)| b["text"].as_str().unwrap().to_owned())
            .collect();
        let want: Vec<String> = (0..EACH).map(|i| format!("{c}:{i}")).collect();
        assert_eq!(texts, want, "order kept in chat {c}");
    }
    // The floor is (EACH - 1) intervals; report how close the run came to the limit.
    let floor = interval * u32::try_from(EACH - 1).unwrap();
    assert!(took >= floor, "{took:?} < {floor:?}: faster than the limit");
    eprintln!(
        "backlog of {} replies across {CHATS} chats: {took:?} (limit floor {floor:?}); {:.0} msg/s against a limit of {:.0} msg/s",
        msgs.len(),
        msgs.len() as f64 / took.as_secs_f64(),
        CHATS as f64 / interval.as_secs_f64()
    );
}

#[test]
fn krake_config_shows_the_token_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let out = krake_tests::krake(dir.path())
        .arg("config")
        .env("KRAKE_TELEGRAM_TOKEN", TOKEN)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[telegram]\ntoken = \"***\""), "{text}");
    let secret = TOKEN.split_once(':').unwrap().1;
    assert!(!text.contains(secret), "{text}");
    let bad = krake_tests::krake(dir.path())
        .arg("config")
        .env("KRAKE_TELEGRAM_TOKEN", "not-a-token")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("KRAKE_TELEGRAM_TOKEN"), "{err}");
    assert!(
        !err.contains("not-a-token"),
        "even a bad token is not echoed: {err}"
    );
}

/// The guarantee across a crash: an update accepted (answered 200) by `krake serve` whose
/// reply has not reached Telegram yet is answered exactly once after `kill -9` and a restart,
/// and the update delivered again afterwards changes and sends nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_accepted_before_a_kill_is_answered_once_after_the_restart() {
    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let webhook = "mode = \"webhook\"\nwebhook_secret = \"hook-Secret_42\"\nwebhook_url = \"https://krake.example/telegram/webhook\"\n";
    // Telegram is failing every send: the reply is accepted and stored, never sent.
    for _ in 0..1000 {
        fake.fail_once("sendMessage", 502, "Bad Gateway");
    }
    let (mut child, port, _logs) = serve_with_telegram(&fake, dir.path(), webhook).await;
    fake.wait_calls("setWebhook", 1).await;
    let body = serde_json::to_vec(&private_text(7, 43, "/help")).unwrap();
    let ok = post_when_up(port, &body).await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    // Accepted; not sent. The process dies without a chance to clean up.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        fake.sent().is_empty(),
        "nothing reached Telegram before the kill"
    );
    fake.clear_failures();
    let (child, port, _logs) = serve_with_telegram(&fake, dir.path(), webhook).await;
    fake.wait_sent(1).await;
    // Telegram delivers the update again (it never saw our 200, say): nothing more happens.
    let again = post(
        port,
        WEBHOOK_PATH,
        &[(SECRET_HEADER, "hook-Secret_42")],
        &body,
    )
    .await;
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let sent = fake.sent();
    assert_eq!(sent.len(), 1, "exactly one reply: {sent:?}");
    assert_eq!(sent[0].0["chat_id"], json!(43));
    assert!(sent[0].0["text"].as_str().unwrap().contains("/todo"));
    stop(child);
}

/// Each way Telegram delivers an update, delivered twice, gives one reply at the Bot API.
#[tokio::test]
async fn the_same_update_twice_gives_one_reply_by_polling_and_by_webhook() {
    let w = World::polling().await;
    let update = private_text(31, 42, "/help");
    // Polling: the update comes twice in one batch (as after a crash before the offset was
    // confirmed).
    w.fake.push_update(update.clone());
    w.fake.push_update(update.clone());
    assert_eq!(w.front.poll_once(0).await.unwrap(), 2);
    assert_eq!(w.deliver().await, 1);
    assert_eq!(w.fake.sent().len(), 1, "one reply by polling");
    // Webhook: the same update posted twice.
    let secret = WebhookSecret::parse("s3cret-Token_1").unwrap();
    let w = World::new(Mode::Webhook { secret, url: None }).await;
    let app = w.front.clone().webhook_router();
    let body = serde_json::to_vec(&update).unwrap();
    for _ in 0..2 {
        let req = axum::http::Request::post(WEBHOOK_PATH)
            .header("content-type", "application/json")
            .header(SECRET_HEADER, "s3cret-Token_1")
            .body(axum::body::Body::from(body.clone()))
            .unwrap();
        let r = app.clone().oneshot(req).await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    assert_eq!(w.deliver().await, 1);
    assert_eq!(w.fake.sent().len(), 1, "one reply by webhook");
}

/// Posts an update with the right secret once the front is up: the webhook answers 503 until
/// then (it marks itself up just after setWebhook returns), and Telegram would retry.
async fn post_when_up(port: u16, body: &[u8]) -> String {
    let mut answer = String::new();
    for _ in 0..50 {
        answer = post(
            port,
            WEBHOOK_PATH,
            &[(SECRET_HEADER, "hook-Secret_42")],
            body,
        )
        .await;
        if !answer.starts_with("HTTP/1.1 503") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    answer
}
