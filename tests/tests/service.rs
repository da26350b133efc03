//! The core service over a real SQLite store: idempotent messages, permissions, buttons.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use krake_core::Krake;
use krake_core::actor::{Actor, Front, Role, UserName};
use krake_core::config::Directory;
use krake_core::inbound::{Content, IdempotencyKey, Inbound, InboundRecord, Recorded};
use krake_core::inbox::{Approvers, NewThread, ThreadKind, ThreadStatus};
use krake_core::ports::{InboundRepo, InboxRepo};
use krake_core::reply::{ButtonAction, ButtonPayload, Reply, Tone};
use krake_core::time::{Clock, ManualClock, Timestamp};
use krake_core::workspace::WorkspaceSlug;
use krake_store::Store;
use std::sync::Arc;
use std::time::Duration;

struct App {
    krake: Krake,
    store: Store,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

async fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&Store::sqlite_url(&dir.path().join("k.db")))
        .await
        .unwrap();
    store.migrate(|_| {}).await.unwrap();
    let clock = Arc::new(ManualClock::new(Timestamp::from_millis(1_795_503_000_000)));
    let krake = Krake::new(
        Arc::new(store.clone()),
        Arc::new(store.clone()),
        clock.clone(),
        Directory::default(),
    )
    .with_users(Arc::new(store.clone()));
    App {
        krake,
        store,
        clock,
        _dir: dir,
    }
}

fn user(name: &str, role: Role, front: Front) -> Actor {
    Actor::new(UserName::parse(name).unwrap(), front, role)
}

fn msg(key: &str, actor: &Actor, text: &str) -> Inbound {
    Inbound {
        source: actor.front,
        key: IdempotencyKey::parse(key).unwrap(),
        actor: actor.clone(),
        conversation: "chat:1".into(),
        reply_to: None,
        answer_to: None,
        content: Content::Text(text.into()),
    }
}

/// A button press through the accept path, as a front sends it (its own key per press).
async fn press(app: &App, actor: &Actor, key: &str, payload: ButtonPayload) -> Reply {
    app.krake
        .accept(Inbound {
            source: actor.front,
            key: IdempotencyKey::parse(key).unwrap(),
            actor: actor.clone(),
            conversation: "chat:1".into(),
            reply_to: None,
            answer_to: None,
            content: Content::Button(payload),
        })
        .await
        .reply
}

async fn approval(app: &App, approvers: Approvers) -> i64 {
    let mut n = NewThread::new(
        WorkspaceSlug::parse("lunavo").unwrap(),
        ThreadKind::Approval,
        "Post it",
        "",
    );
    n.approvers = approvers;
    app.krake
        .create_thread(&Actor::system(), &n)
        .await
        .unwrap()
        .id
        .0
}

#[tokio::test]
async fn a_redelivered_message_changes_nothing_twice() {
    let app = app().await;
    let id = approval(&app, Approvers::AnyMember).await;
    let ana = user("ana", Role::Member, Front::Telegram);
    let first = app
        .krake
        .accept(msg(
            "telegram:update:1",
            &ana,
            &format!("/reply {id} ship it"),
        ))
        .await
        .reply;
    let again = app
        .krake
        .accept(msg(
            "telegram:update:1",
            &ana,
            &format!("/reply {id} ship it"),
        ))
        .await
        .reply;
    assert_eq!(first.tone, Tone::Success, "{first:?}");
    assert_eq!(first, again, "the stored reply is returned");
    let t = app
        .store
        .get(krake_core::inbox::ThreadId(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(t.replies.len(), 1);
}

#[tokio::test]
async fn a_message_recorded_before_a_crash_is_applied_once() {
    let app = app().await;
    let id = approval(&app, Approvers::AnyMember).await;
    let ana = user("ana", Role::Member, Front::Discord);
    // The front stored the event and acknowledged it, then the process died before handling.
    let ev = InboundRecord {
        source: "discord".into(),
        idempotency_key: IdempotencyKey::parse("discord:msg:77").unwrap(),
        actor: ana.user.clone(),
        conversation: "c".into(),
        content: format!("approve {id}"),
        received_at: Timestamp::from_millis(0),
    };
    assert!(matches!(
        app.store.record_inbound(&ev).await.unwrap(),
        Recorded::New(_)
    ));
    let r = app
        .krake
        .accept(msg("discord:msg:77", &ana, &format!("approve {id}")))
        .await
        .reply;
    assert!(r.text.contains("Approved"), "{r:?}");
    let r2 = app
        .krake
        .accept(msg("discord:msg:77", &ana, &format!("approve {id}")))
        .await
        .reply;
    assert_eq!(r, r2);
    let audit = app
        .store
        .audit(krake_core::inbox::ThreadId(id))
        .await
        .unwrap();
    assert_eq!(audit.iter().filter(|e| e.action == "approved").count(), 1);
}

#[tokio::test]
async fn who_may_decide() {
    let app = app().await;
    let id = approval(&app, Approvers::AnyMember).await;
    let viewer = user("vic", Role::Viewer, Front::Web);
    let r = app
        .krake
        .handle_text(&viewer, &format!("approve {id}"))
        .await;
    assert_eq!(r.tone, Tone::Warning);
    assert!(r.text.contains("needs any member"), "{}", r.text);
    let only_bo = approval(
        &app,
        Approvers::Users {
            users: vec![UserName::parse("bo").unwrap()],
        },
    )
    .await;
    let ana = user("ana", Role::Owner, Front::Web);
    let r = app
        .krake
        .handle_text(&ana, &format!("/reject {only_bo} no"))
        .await;
    assert!(r.text.contains("one of bo"), "{}", r.text);
    let bo = user("bo", Role::Member, Front::Web);
    let r = app
        .krake
        .handle_text(&bo, &format!("/reject {only_bo} no"))
        .await;
    assert!(r.text.starts_with("Rejected (no)"), "{}", r.text);
    let r = app
        .krake
        .handle_text(&viewer, &format!("/reply {id} hi"))
        .await;
    assert!(r.text.contains("Viewers"), "{}", r.text);
}

#[tokio::test]
async fn buttons_carry_version_and_go_stale() {
    let app = app().await;
    let id = approval(&app, Approvers::Quorum { n: 2 }).await;
    let ana = user("ana", Role::Member, Front::Discord);
    let shown = app.krake.handle_text(&ana, &format!("/show {id}")).await;
    assert_eq!(shown.buttons.len(), 2);
    let approve = shown
        .buttons
        .iter()
        .find(|b| b.payload.action == ButtonAction::Approve)
        .unwrap()
        .payload;
    let r = press(&app, &ana, "press:1", approve).await;
    assert!(r.text.contains("1 more needed"), "{}", r.text);
    let bo = user("bo", Role::Member, Front::Discord);
    let r = press(&app, &bo, "press:2", approve).await;
    assert!(r.text.contains("out of date"), "{}", r.text);
    let fresh = app
        .krake
        .handle_text(&bo, &format!("/show {id}"))
        .await
        .buttons[0]
        .payload;
    let r = press(&app, &bo, "press:3", fresh).await;
    assert!(r.text.starts_with("Approved"), "{}", r.text);
    let decided = app.krake.handle_text(&bo, &format!("/show {id}")).await;
    assert!(
        decided.buttons.is_empty(),
        "a decided thread has no buttons"
    );
}

#[tokio::test]
async fn only_approvals_are_decided() {
    let app = app().await;
    let q = app
        .krake
        .create_thread(
            &Actor::system(),
            &NewThread::new(
                WorkspaceSlug::parse("monarch").unwrap(),
                ThreadKind::Question,
                "Which?",
                "",
            ),
        )
        .await
        .unwrap();
    let r = app
        .krake
        .handle_text(&Actor::local(), &format!("approve {}", q.id.0))
        .await;
    assert!(r.text.contains("a question, not an approval"), "{}", r.text);
}

#[tokio::test]
async fn ask_files_the_task_in_the_agents_home() {
    let app = app().await;
    let r = app
        .krake
        .handle_text(
            &Actor::local(),
            "ask penn to draft a tagline for the hoodie",
        )
        .await;
    let id = r.thread.expect("a thread");
    let t = app.store.get(id).await.unwrap().unwrap();
    assert_eq!(t.workspace.as_str(), "lunavo");
    assert_eq!(t.kind, ThreadKind::Question);
    assert_eq!(t.agent.as_deref(), Some("Penn"));
    assert!(t.body.contains("draft a tagline for the hoodie"));
}

#[tokio::test]
async fn expired_approvals_escalate_via_the_service_clock() {
    let app = app().await;
    let mut n = NewThread::new(
        WorkspaceSlug::parse("lunavo").unwrap(),
        ThreadKind::Approval,
        "Refund",
        "",
    );
    n.expires_at = Some(Timestamp::from_millis(1_795_503_000_000 + 60_000));
    let t = app.krake.create_thread(&Actor::system(), &n).await.unwrap();
    assert!(app.krake.sweep_expired().await.unwrap().is_empty());
    app.clock.advance(Duration::from_secs(61));
    let done = app.krake.sweep_expired().await.unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(
        app.store.get(t.id).await.unwrap().unwrap().status,
        ThreadStatus::Expired
    );
    let r = app
        .krake
        .handle_text(&Actor::local(), "show me the escalations")
        .await;
    assert!(r.text.contains("Expired undecided"), "{}", r.text);
}

#[tokio::test]
async fn unlinked_guests_chat_but_do_not_act_then_link() {
    use krake_core::ports::UserRepo;
    let app = app().await;
    let lunavo = WorkspaceSlug::parse("lunavo").unwrap();
    let id = approval(&app, Approvers::AnyMember).await;
    let other = app
        .krake
        .create_thread(
            &Actor::system(),
            &NewThread::new(
                WorkspaceSlug::parse("monarch").unwrap(),
                ThreadKind::Approval,
                "Monarch secret",
                "",
            ),
        )
        .await
        .unwrap();
    let guest = app
        .krake
        .identify(Front::Telegram, "4242", "Ana T.", Some(&lunavo))
        .await
        .unwrap();
    assert_eq!(guest.role, Role::Guest);
    let r = app
        .krake
        .handle_text(&guest, &format!("approve {id}"))
        .await;
    assert!(
        r.text.contains("not linked") && r.text.contains("/link"),
        "{}",
        r.text
    );
    let r = app.krake.handle_text(&guest, "/todo").await;
    assert!(
        r.text.contains("Post it") && !r.text.contains("Monarch secret"),
        "sees only the chat's workspace: {}",
        r.text
    );
    let r = app.krake.handle_text(&guest, "/todo monarch").await;
    assert!(r.text.contains("not a member of monarch"), "{}", r.text);
    let r = app
        .krake
        .handle_text(&guest, &format!("/show {}", other.id.0))
        .await;
    assert!(
        r.text.contains("no thread"),
        "another workspace's thread does not exist for a guest: {}",
        r.text
    );
    let r = app.krake.handle_text(&guest, "/help").await;
    assert_eq!(r.tone, Tone::Info, "guests may chat");

    let ana = UserName::parse("ana").unwrap();
    app.store
        .upsert_user(&ana, Role::Member, Some(&lunavo), app.clock.now())
        .await
        .unwrap();
    app.store
        .create_link_code(
            &ana,
            "K7M2Q9XD",
            app.clock.now().plus(Duration::from_secs(900)),
        )
        .await
        .unwrap();
    let r = app
        .krake
        .accept(msg("telegram:update:9", &guest, "/link k7m2q9xd"))
        .await
        .reply;
    assert!(r.text.contains("you now act as `ana`"), "{}", r.text);
    let ana_tg = app
        .krake
        .identify(Front::Telegram, "4242", "Ana T.", Some(&lunavo))
        .await
        .unwrap();
    assert_eq!(ana_tg.user, ana);
    assert_eq!(ana_tg.role_in(&lunavo), Role::Member);
    let r = app
        .krake
        .handle_text(&ana_tg, &format!("approve {id}"))
        .await;
    assert!(r.text.starts_with("Approved"), "{}", r.text);
    let r = app
        .krake
        .handle_text(&ana_tg, &format!("approve {}", other.id.0))
        .await;
    assert!(
        r.text.contains("no thread"),
        "a lunavo member cannot act in monarch: {}",
        r.text
    );
    let again = app
        .krake
        .accept(msg("telegram:update:10", &guest, "/link K7M2Q9XD"))
        .await
        .reply;
    assert!(again.text.contains("already used"), "{}", again.text);
}

/// "approve 13 14 15" handles every thread and reports each outcome; each part is its own
/// event, so a redelivery (after a crash part-way, or a platform retry) changes nothing twice.
#[tokio::test]
async fn several_threads_in_one_command_are_each_handled_once_and_reported() {
    let app = app().await;
    let a = approval(&app, Approvers::AnyMember).await;
    let b = approval(&app, Approvers::AnyMember).await;
    let missing = b + 100;
    let ana = user("ana", Role::Member, Front::Telegram);
    let text = format!("approve {a} {b} {missing}");
    // The process died after the first part: its own event is already applied.
    let first_part = app
        .krake
        .accept(Inbound {
            key: IdempotencyKey::parse("telegram:update:50/1").unwrap(),
            content: Content::Command(krake_core::Command::Approve(krake_core::inbox::ThreadId(a))),
            ..msg("telegram:update:50", &ana, &text)
        })
        .await;
    assert!(first_part.fresh);
    let r = app
        .krake
        .accept(msg("telegram:update:50", &ana, &text))
        .await;
    assert!(r.fresh);
    let lines: Vec<&str> = r.reply.text.lines().collect();
    assert_eq!(lines[0], "2 of 3 done:", "{}", r.reply.text);
    assert!(
        lines[1].starts_with(&format!("• Approved #{a}")),
        "{}",
        r.reply.text
    );
    assert!(
        r.reply.text.contains(&format!("• Approved #{b}")),
        "{}",
        r.reply.text
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("• ") && l.contains(&format!("#{missing}"))),
        "the missing thread is reported, not dropped: {}",
        r.reply.text
    );
    assert_eq!(r.reply.tone, Tone::Warning, "a refusal among them shows");
    for id in [a, b] {
        let th = app
            .store
            .get(krake_core::inbox::ThreadId(id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(th.status, ThreadStatus::Approved);
        let audit = app
            .store
            .audit(krake_core::inbox::ThreadId(id))
            .await
            .unwrap();
        assert_eq!(
            audit.iter().filter(|e| e.action == "approved").count(),
            1,
            "#{id} approved once"
        );
    }
    let again = app
        .krake
        .accept(msg("telegram:update:50", &ana, &text))
        .await;
    assert_eq!(again.reply, r.reply);
    assert!(!again.fresh);
}

/// `/stats`: this month's time to a decision, per workspace and kind, for the workspaces the
/// person sees.
#[tokio::test]
async fn stats_show_how_fast_threads_are_decided() {
    let app = app().await;
    let ana = user("ana", Role::Member, Front::Telegram);
    let empty = app.krake.handle_text(&ana, "/stats").await;
    assert!(
        empty
            .text
            .starts_with("No thread was decided or answered in 2026-"),
        "{}",
        empty.text
    );
    for wait in [10, 30, 50] {
        let id = approval(&app, Approvers::AnyMember).await;
        app.clock.advance(Duration::from_secs(wait * 60));
        let r = app
            .krake
            .accept(msg(
                &format!("telegram:update:s{id}"),
                &ana,
                &format!("/approve {id}"),
            ))
            .await;
        assert!(r.reply.text.starts_with("Approved"), "{:?}", r.reply);
    }
    let r = app.krake.handle_text(&ana, "/stats lunavo").await;
    let row = r
        .text
        .lines()
        .find(|l| l.contains("lunavo"))
        .unwrap_or_default();
    let words: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        words,
        [
            "lunavo", "approval", "3", "done", "median", "30", "min", "p95", "50", "min"
        ],
        "{}",
        r.text
    );
    let bad = app.krake.handle_text(&ana, "/stats atlantis").await;
    assert!(
        bad.text.contains("`atlantis` is not a workspace"),
        "{}",
        bad.text
    );
}
