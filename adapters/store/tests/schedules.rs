//! Schedules, the coordinator and folders on the real store, each test body run against a
//! fresh SQLite file and a fresh PostgreSQL database (127.0.0.1:5432, or
//! `KRAKE_TEST_POSTGRES_URL`). Time comes from a manual clock; nothing sleeps.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[macro_use]
mod common;
use common::Db;

use krake_core::Krake;
use krake_core::actor::{Actor, Front, Role, UserName};
use krake_core::config::Directory;
use krake_core::coordinator::Coordinator;
use krake_core::folder::{FolderRepo, Name};
use krake_core::inbox::{ThreadFilter, ThreadKind};
use krake_core::ports::{InboxRepo, WriteCtx};
use krake_core::reply::Tone;
use krake_core::schedule::{
    Assignment, Cadence, CatchUp, NewSchedule, RunTrigger, ScheduleId, ScheduleRepo, parse_timezone,
};
use krake_core::time::{Clock, ManualClock, Timestamp};
use krake_core::workspace::WorkspaceSlug;
use krake_store::Store;
use std::sync::Arc;
use std::time::Duration;

on_both_db!(
    schedule_lifecycle_from_chat,
    bad_timing_changes_nothing,
    due_occurrence_runs_once_and_records_assignment,
    catch_up_once_after_downtime,
    catch_up_skip_after_downtime,
    two_coordinators_run_each_occurrence_once,
    dst_days_run_through_the_coordinator,
    redelivered_messages_create_nothing_twice,
    workspace_roles_limit_schedules_and_folders,
    config_schedules_sync_and_prune,
    folder_crud_and_typed_entries,
    csv_round_trip_and_all_or_nothing_import,
);

/// Monday 2026-11-23 08:00:00 UTC (09:00 in Berlin).
const MON_0800Z: i64 = 1_795_420_800_000;

fn at(ms: i64) -> Timestamp {
    Timestamp::from_millis(ms)
}

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

fn member() -> Actor {
    Actor::new(UserName::parse("ana").unwrap(), Front::Cli, Role::Member)
}

fn krake(s: &Store, clock: Arc<ManualClock>) -> Krake {
    let s = Arc::new(s.clone());
    Krake::new(s.clone(), s.clone(), clock, Directory::default())
        .with_schedules(s.clone(), parse_timezone("Europe/Berlin").unwrap())
        .with_folders(s)
}

fn coordinator(s: &Store, clock: Arc<ManualClock>) -> Coordinator {
    Coordinator::new(
        Arc::new(s.clone()),
        clock,
        Directory::default(),
        Duration::from_secs(60),
    )
}

fn new_schedule(expr: &str, tz: &str, next: Option<Timestamp>, catch_up: CatchUp) -> NewSchedule {
    NewSchedule {
        name: None,
        workspace: WorkspaceSlug::parse("lunavo").unwrap(),
        assignment: Assignment {
            agent: "Dexter".into(),
            role: None,
            reason: "named in the task".into(),
        },
        task: "summarise sales".into(),
        cadence: Cadence::new(expr, parse_timezone(tz).unwrap()).unwrap(),
        description: format!("cron `{expr}`"),
        catch_up,
        created_by: "ana".into(),
        next_run_at: next,
    }
}

fn sys_ctx(now: Timestamp) -> WriteCtx {
    WriteCtx {
        actor: Actor::system(),
        inbound: None,
        now,
    }
}

async fn schedule_lifecycle_from_chat(db: &Db) {
    let s = &db.store;
    let clock = Arc::new(ManualClock::new(at(MON_0800Z - DAY))); // Sunday 08:00Z
    let k = krake(s, clock.clone());
    let r = k
        .handle_text(
            &member(),
            "/schedule dexter \"summarise last week's sales\" every monday 09:00 Europe/Berlin",
        )
        .await;
    assert_eq!(r.tone, Tone::Success, "{}", r.text);
    assert!(
        r.text.contains("Scheduled 1: Dexter (data analyst)"),
        "{}",
        r.text
    );
    assert!(r.text.contains("Mon 2026-11-23 09:00 CET"), "{}", r.text);
    let sched = s.get_schedule(ScheduleId(1)).await.unwrap().unwrap();
    assert_eq!(sched.next_run_at, Some(at(MON_0800Z)));
    assert_eq!(sched.workspace.as_str(), "management", "Dexter's home");

    let r = k
        .handle_text(
            &member(),
            "every weekday at 8 have Soshie draft today's post",
        )
        .await;
    assert_eq!(r.tone, Tone::Success, "{}", r.text);
    assert!(
        r.text.contains("Soshie (social media) in lunavo"),
        "{}",
        r.text
    );
    let r = k
        .handle_text(
            &member(),
            "/schedule seo in lunabots \"check rankings\" cron 0 7 * * 1 UTC",
        )
        .await;
    assert!(r.text.contains("Seomi"), "{}", r.text);
    assert!(r.text.contains("picked by role"), "{}", r.text);

    let r = k.handle_text(&member(), "/schedules").await;
    assert!(r.text.starts_with("Schedules (3):"), "{}", r.text);
    assert!(
        r.text.contains("next: Mon 2026-11-23 09:00 CET"),
        "{}",
        r.text
    );

    let r = k.handle_text(&member(), "pause schedule 2").await;
    assert_eq!(r.tone, Tone::Success, "{}", r.text);
    let p = s.get_schedule(ScheduleId(2)).await.unwrap().unwrap();
    assert!(p.paused && p.next_run_at.is_none());
    assert!(
        s.due_schedules(at(MON_0800Z + 7 * DAY), 100)
            .await
            .unwrap()
            .iter()
            .all(|x| x.id != ScheduleId(2))
    );
    let r = k.handle_text(&member(), "/schedule resume 2").await;
    assert!(
        r.text
            .contains("Resumed schedule 2; next run Mon 2026-11-23 08:00 CET"),
        "{}",
        r.text
    );

    let r = k.handle_text(&member(), "/schedule run 1").await;
    assert_eq!(r.tone, Tone::Success, "{}", r.text);
    let thread = r.thread.unwrap();
    let th = s.get(thread).await.unwrap().unwrap();
    assert_eq!(th.kind, ThreadKind::Question);
    assert_eq!(th.agent.as_deref(), Some("Dexter"));
    assert!(th.body.contains("run now on request"), "{}", th.body);
    let runs = s.schedule_runs(ScheduleId(1), 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].trigger, RunTrigger::Manual);
    assert_eq!(
        s.get_schedule(ScheduleId(1))
            .await
            .unwrap()
            .unwrap()
            .next_run_at,
        Some(at(MON_0800Z)),
        "a manual run leaves the regular next run"
    );

    let r = k.handle_text(&member(), "/schedule delete 3").await;
    assert_eq!(r.tone, Tone::Success, "{}", r.text);
    assert!(s.get_schedule(ScheduleId(3)).await.unwrap().is_none());
    let r = k.handle_text(&member(), "/schedule delete 3").await;
    assert_eq!(r.tone, Tone::Warning, "{}", r.text);
    let viewer = Actor {
        role: Role::Viewer,
        ..member()
    };
    let r = k.handle_text(&viewer, "/schedule pause 1").await;
    assert_eq!(r.tone, Tone::Warning);
    assert!(!s.get_schedule(ScheduleId(1)).await.unwrap().unwrap().paused);
}

async fn bad_timing_changes_nothing(db: &Db) {
    let s = &db.store;
    let k = krake(s, Arc::new(ManualClock::new(at(MON_0800Z))));
    for (text, needle) in [
        ("/schedule dexter \"x\" cron 0 25 * * *", "0 25 * * *"),
        (
            "/schedule dexter \"x\" every monday 09:00 Europe/Berln",
            "Europe/Berlin",
        ),
        (
            "/schedule dexter \"x\" cron 0 9 * * 1 Mars/Olympus",
            "Mars/Olympus",
        ),
        ("/schedule nobody \"x\" every day at 9", "no agent or role"),
    ] {
        let r = k.handle_text(&member(), text).await;
        assert_eq!(r.tone, Tone::Warning, "{text}: {}", r.text);
        assert!(r.text.contains(needle), "{text}: {}", r.text);
    }
    assert!(s.list_schedules().await.unwrap().is_empty());
}

async fn due_occurrence_runs_once_and_records_assignment(db: &Db) {
    let s = &db.store;
    let clock = Arc::new(ManualClock::new(at(MON_0800Z - HOUR)));
    let k = krake(s, clock.clone());
    let r = k
        .handle_text(
            &member(),
            "/schedule social media in lunavo \"draft the post\" every day at 9",
        )
        .await;
    assert_eq!(r.tone, Tone::Success, "{}", r.text);
    let c = coordinator(s, clock.clone());
    assert!(c.tick().await.unwrap().ran.is_empty(), "not due yet");
    clock.advance(Duration::from_millis(HOUR as u64 + 400));
    let rep = c.tick().await.unwrap();
    assert_eq!(rep.ran.len(), 1);
    assert_eq!(rep.ran[0].1, at(MON_0800Z));
    assert!(c.tick().await.unwrap().ran.is_empty(), "once");
    let th = s.get(rep.ran[0].2).await.unwrap().unwrap();
    assert_eq!(th.workspace.as_str(), "lunavo");
    assert_eq!(th.agent.as_deref(), Some("Soshie"));
    assert!(
        th.body
            .contains("picked by role: the social media in lunavo"),
        "{}",
        th.body
    );
    let runs = s.schedule_runs(ScheduleId(1), 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].agent, "Soshie");
    assert_eq!(runs[0].trigger, RunTrigger::Due);
    assert!(runs[0].reason.contains("social media"));
    let next = s
        .get_schedule(ScheduleId(1))
        .await
        .unwrap()
        .unwrap()
        .next_run_at;
    assert_eq!(next, Some(at(MON_0800Z + DAY)));
}

async fn catch_up_once_after_downtime(db: &Db) {
    let s = &db.store;
    let clock = Arc::new(ManualClock::new(at(MON_0800Z - HOUR)));
    s.create_schedule(
        &new_schedule(
            "0 9 * * *",
            "Europe/Berlin",
            Some(at(MON_0800Z)),
            CatchUp::Once,
        ),
        &sys_ctx(clock.now()),
    )
    .await
    .unwrap();
    // Down from Monday 07:00Z until Thursday 12:00Z: Mon, Tue, Wed and Thu 09:00 were missed.
    clock.advance(Duration::from_millis((3 * DAY + 5 * HOUR) as u64));
    let c = coordinator(s, clock.clone());
    let rep = c.tick().await.unwrap();
    assert_eq!(rep.ran.len(), 1, "one run for all missed occurrences");
    assert!(c.tick().await.unwrap().ran.is_empty());
    let th = s.get(rep.ran[0].2).await.unwrap().unwrap();
    assert!(th.body.contains("4 occurrences were missed"), "{}", th.body);
    let runs = s.schedule_runs(ScheduleId(1), 10).await.unwrap();
    assert_eq!(runs[0].trigger, RunTrigger::CatchUp);
    assert_eq!(
        s.get_schedule(ScheduleId(1))
            .await
            .unwrap()
            .unwrap()
            .next_run_at,
        Some(at(MON_0800Z + 4 * DAY)),
        "Friday 09:00 Berlin"
    );
}

async fn catch_up_skip_after_downtime(db: &Db) {
    let s = &db.store;
    let clock = Arc::new(ManualClock::new(at(MON_0800Z - HOUR)));
    s.create_schedule(
        &new_schedule(
            "0 9 * * *",
            "Europe/Berlin",
            Some(at(MON_0800Z)),
            CatchUp::Skip,
        ),
        &sys_ctx(clock.now()),
    )
    .await
    .unwrap();
    clock.advance(Duration::from_millis((2 * DAY) as u64));
    let c = coordinator(s, clock.clone());
    let rep = c.tick().await.unwrap();
    assert!(rep.ran.is_empty());
    assert_eq!(rep.skipped, 2, "Monday and Tuesday");
    assert!(s.schedule_runs(ScheduleId(1), 10).await.unwrap().is_empty());
    assert_eq!(
        s.get_schedule(ScheduleId(1))
            .await
            .unwrap()
            .unwrap()
            .next_run_at,
        Some(at(MON_0800Z + 2 * DAY))
    );
    // A tick a few seconds late is not downtime: it runs.
    clock.advance(Duration::from_millis((HOUR + 5_000) as u64));
    assert_eq!(c.tick().await.unwrap().ran.len(), 1);
}

async fn two_coordinators_run_each_occurrence_once(db: &Db) {
    let s = &db.store;
    // A second, independent store on the same database: another `krake serve` process.
    let other = Store::open(&db.url).await.unwrap();
    let clock = Arc::new(ManualClock::new(at(MON_0800Z - MIN)));
    for _ in 0..40 {
        s.create_schedule(
            &new_schedule("* * * * *", "UTC", Some(at(MON_0800Z)), CatchUp::Once),
            &sys_ctx(clock.now()),
        )
        .await
        .unwrap();
    }
    let a = coordinator(s, clock.clone());
    let b = coordinator(&other, clock.clone());
    let mut total = 0;
    for round in 0..3 {
        clock.advance(Duration::from_secs(60));
        let (ra, rb) = tokio::join!(
            tokio::spawn({
                let a = a.clone();
                async move { a.tick().await.unwrap() }
            }),
            tokio::spawn({
                let b = b.clone();
                async move { b.tick().await.unwrap() }
            })
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(ra.ran.len() + rb.ran.len(), 40, "round {round}");
        total += ra.ran.len() + rb.ran.len();
    }
    assert_eq!(total, 120);
    let runs: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM schedule_runs")
        .fetch_one(s.pool())
        .await
        .unwrap();
    let distinct: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT DISTINCT schedule_id, occurrence_at FROM schedule_runs) x",
    )
    .fetch_one(s.pool())
    .await
    .unwrap();
    let threads = s
        .list(&ThreadFilter {
            limit: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!((runs, distinct, threads.len()), (120, 120, 120));
    other.pool().close().await;
}

async fn config_schedules_sync_and_prune(db: &Db) {
    let s = &db.store;
    let now = at(MON_0800Z - HOUR);
    let mut n = new_schedule(
        "0 9 * * *",
        "Europe/Berlin",
        Some(at(MON_0800Z)),
        CatchUp::Once,
    );
    n.name = Some("daily-sales".into());
    let first = s.sync_config_schedule(&n, now).await.unwrap();
    let again = s.sync_config_schedule(&n, now).await.unwrap();
    assert_eq!(first.id, again.id);
    s.set_schedule_paused(first.id, true, None, now)
        .await
        .unwrap();
    n.task = "summarise sales and returns".into();
    let updated = s.sync_config_schedule(&n, now).await.unwrap();
    assert_eq!(updated.id, first.id);
    assert!(updated.paused, "a pause from chat survives a restart");
    assert_eq!(updated.task, "summarise sales and returns");
    s.create_schedule(
        &new_schedule("0 9 * * *", "UTC", Some(at(MON_0800Z)), CatchUp::Once),
        &sys_ctx(now),
    )
    .await
    .unwrap();
    assert_eq!(s.prune_config_schedules(&[]).await.unwrap(), 1);
    let left = s.list_schedules().await.unwrap();
    assert_eq!(left.len(), 1);
    assert!(left[0].name.is_none(), "chat-made schedules are not pruned");
}

async fn folder_crud_and_typed_entries(db: &Db) {
    let s = &db.store;
    let k = krake(s, Arc::new(ManualClock::new(at(MON_0800Z))));
    let say = |t: &'static str| {
        let k = k.clone();
        async move { k.handle_text(&member(), t).await }
    };
    let r = say("/folder create soshie \"Content calendar\"").await;
    assert_eq!(r.tone, Tone::Success, "{}", r.text);
    assert_eq!(
        say("/folder create SOSHIE \"content calendar\"").await.tone,
        Tone::Warning
    );
    for cmd in [
        "/folder addcol soshie \"content calendar\" title text",
        "/folder addcol soshie \"content calendar\" date date",
        "/folder addcol soshie \"content calendar\" state status draft,scheduled,posted",
        "/folder addcol soshie \"content calendar\" reach number",
        "/folder addcol soshie \"content calendar\" link url",
    ] {
        let r = say(cmd).await;
        assert_eq!(r.tone, Tone::Success, "{cmd}: {}", r.text);
    }
    let r = say("/folder add soshie \"content calendar\" title=\"Hoodie launch\" date=2026-12-01 state=Draft").await;
    assert_eq!(r.tone, Tone::Success, "{}", r.text);
    assert!(r.text.contains("Added #1"), "{}", r.text);
    let r =
        say("/folder add soshie \"content calendar\" title=x date=2026-13-01 state=maybe").await;
    assert_eq!(r.tone, Tone::Warning);
    assert!(
        r.text.contains("2026-13-01") && r.text.contains("maybe"),
        "{}",
        r.text
    );
    let r = say("/folder update soshie \"content calendar\" 1 state=posted reach=1200").await;
    assert_eq!(r.tone, Tone::Success, "{}", r.text);
    let r = say("/folder renamecol soshie \"content calendar\" state to status").await;
    assert_eq!(r.tone, Tone::Success, "{}", r.text);
    let r = say("/folder show soshie \"content calendar\"").await;
    assert!(r.text.contains("| status"), "{}", r.text);
    assert!(
        r.text
            .contains("#1 | Hoodie launch | 2026-12-01 | posted | 1200"),
        "{}",
        r.text
    );
    let r = say("/folder dropcol soshie \"content calendar\" link").await;
    assert_eq!(r.tone, Tone::Success);
    let r = say("/folder rename soshie \"content calendar\" to Calendar").await;
    assert_eq!(r.tone, Tone::Success, "{}", r.text);
    let r = say("/folders soshie").await;
    assert!(
        r.text.contains("Calendar") && r.text.contains("4 column(s), 1 entry"),
        "{}",
        r.text
    );
    assert_eq!(
        say("/folder remove soshie calendar 1").await.tone,
        Tone::Success
    );
    assert_eq!(
        say("/folder remove soshie calendar 1").await.tone,
        Tone::Warning
    );
    let r = say("/folder delete soshie calendar").await;
    assert_eq!(r.tone, Tone::Success, "{}", r.text);
    assert!(s.folders(None).await.unwrap().is_empty());
}

async fn csv_round_trip_and_all_or_nothing_import(db: &Db) {
    let s = &db.store;
    let k = krake(s, Arc::new(ManualClock::new(at(MON_0800Z))));
    for name in ["leads", "copy"] {
        s.create_folder("Milli", &Name::parse(name).unwrap(), at(MON_0800Z))
            .await
            .unwrap()
            .unwrap();
        for cmd in [
            format!("/folder addcol milli {name} company text"),
            format!("/folder addcol milli {name} value number"),
            format!("/folder addcol milli {name} stage status new,won,lost"),
            format!("/folder addcol milli {name} site url"),
            format!("/folder addcol milli {name} next date"),
        ] {
            assert_eq!(k.handle_text(&member(), &cmd).await.tone, Tone::Success);
        }
    }
    let csv = "company,value,stage,site,next\n\"Acme, Inc.\",1200.50,new,https://acme.test,2026-12-01\n\"Line\nbreak\",,won,,\nZeta,7,lost,http://zeta.test/x?a=1,\n";
    let r = k
        .handle_text(&member(), &format!("/folder import milli leads\n{csv}"))
        .await;
    assert_eq!(r.tone, Tone::Success, "{}", r.text);
    assert!(r.text.contains("Imported 3 entries"), "{}", r.text);
    let out = k.handle_text(&member(), "/folder export milli leads").await;
    assert_eq!(out.text, csv.trim_end());
    // Round trip: export, import into an empty folder with the same columns, export again.
    let r = k
        .handle_text(
            &member(),
            &format!("/folder import milli copy\n{}", out.text),
        )
        .await;
    assert_eq!(r.tone, Tone::Success, "{}", r.text);
    let again = k.handle_text(&member(), "/folder export milli copy").await;
    assert_eq!(again.text, out.text);

    let bad = "company,value,stage\nGood,1,new\nBad value,lots,new\nBad stage,2,maybe\nShort,3\nAlso good,4,won\n";
    let r = k
        .handle_text(&member(), &format!("/folder import milli leads\n{bad}"))
        .await;
    assert_eq!(r.tone, Tone::Warning);
    assert!(
        r.text.starts_with("Imported nothing: 3 bad rows"),
        "{}",
        r.text
    );
    for needle in ["line 3", "lots", "line 4", "maybe", "line 5"] {
        assert!(r.text.contains(needle), "{needle}: {}", r.text);
    }
    let leads = s.folder("milli", "leads").await.unwrap().unwrap();
    assert_eq!(
        s.entries(leads.id).await.unwrap().len(),
        3,
        "nothing imported"
    );
    let r = k
        .handle_text(
            &member(),
            "/folder import milli leads\ncompany,colour\nx,red",
        )
        .await;
    assert!(r.text.contains("colour"), "{}", r.text);
}

async fn dst_days_run_through_the_coordinator(db: &Db) {
    let s = &db.store;
    // Saturday 2026-03-28 12:00Z; Berlin springs forward on Sunday at 02:00.
    let start = 1_774_699_200_000;
    let clock = Arc::new(ManualClock::new(at(start)));
    let cadence = Cadence::new("30 2 * * *", parse_timezone("Europe/Berlin").unwrap()).unwrap();
    let mut n = new_schedule(
        "30 2 * * *",
        "Europe/Berlin",
        cadence.next_after(at(start)),
        CatchUp::Once,
    );
    n.cadence = cadence;
    s.create_schedule(&n, &sys_ctx(at(start))).await.unwrap();
    let c = coordinator(s, clock.clone());
    let mut ran = Vec::new();
    // Tick every minute for two days.
    for _ in 0..(2 * 24 * 60) {
        clock.advance(Duration::from_secs(60));
        for (_, occurrence, _) in c.tick().await.unwrap().ran {
            ran.push(occurrence);
        }
    }
    assert_eq!(
        ran,
        [at(1_774_746_000_000), at(1_774_830_600_000)],
        "03:00 CEST on the 29th (the gap's end), 02:30 CEST on the 30th"
    );
}

async fn redelivered_messages_create_nothing_twice(db: &Db) {
    use krake_core::inbound::IdempotencyKey;
    use krake_core::inbound::{Content, Inbound};
    let s = &db.store;
    let k = krake(s, Arc::new(ManualClock::new(at(MON_0800Z))));
    let msg = |key: &str, text: &str| Inbound {
        source: krake_core::Front::Telegram,
        key: IdempotencyKey::parse(key).unwrap(),
        actor: member(),
        conversation: "c1".into(),
        reply_to: None,
        answer_to: None,
        content: Content::Text(text.into()),
    };
    for _ in 0..2 {
        k.accept(msg(
            "k1",
            "/schedule penn \"write the newsletter\" every friday at 10",
        ))
        .await;
        k.accept(msg("k2", "/folder create penn drafts")).await;
        k.accept(msg("k3", "/folder addcol penn drafts title text"))
            .await;
        k.accept(msg("k4", "/folder import penn drafts\ntitle\nOne\nTwo"))
            .await;
    }
    assert_eq!(s.list_schedules().await.unwrap().len(), 1);
    let f = s.folder("penn", "drafts").await.unwrap().unwrap();
    assert_eq!(f.columns.len(), 1);
    assert_eq!(s.entries(f.id).await.unwrap().len(), 2);
}

async fn workspace_roles_limit_schedules_and_folders(db: &Db) {
    let s = &db.store;
    let k = krake(s, Arc::new(ManualClock::new(at(MON_0800Z))));
    let owner = Actor::local();
    let r = k
        .handle_text(
            &owner,
            "/schedule gigi \"plan the habit challenge\" every day at 7",
        )
        .await;
    assert_eq!(r.tone, Tone::Success, "{}", r.text);
    k.handle_text(&owner, "/folder create gigi habits").await;
    // Bo is a member of Monarch only: a guest elsewhere.
    let mut bo = Actor::new(UserName::parse("bo").unwrap(), Front::Telegram, Role::Guest);
    bo.workspace_roles
        .insert(WorkspaceSlug::parse("monarch").unwrap(), Role::Member);
    let r = k.handle_text(&bo, "/schedules").await;
    assert!(
        r.text.starts_with("No schedules"),
        "Gigi works in hard-life-mode only: {}",
        r.text
    );
    let r = k.handle_text(&bo, "/schedule pause 1").await;
    assert!(r.text.contains("no schedule 1"), "{}", r.text);
    assert!(!s.get_schedule(ScheduleId(1)).await.unwrap().unwrap().paused);
    let r = k
        .handle_text(&bo, "/schedule gigi \"x\" every day at 7")
        .await;
    assert_eq!(r.tone, Tone::Warning);
    assert!(r.text.contains("member role"), "{}", r.text);
    let r = k.handle_text(&bo, "/folder show gigi habits").await;
    assert!(r.text.contains("hidden"), "{}", r.text);
    let r = k.handle_text(&bo, "/folders").await;
    assert!(r.text.starts_with("No folders"), "{}", r.text);
    // Milli works in Monarch: Bo may keep her folders.
    let r = k.handle_text(&bo, "/folder create milli leads").await;
    assert_eq!(r.tone, Tone::Success, "{}", r.text);
    assert_eq!(s.list_schedules().await.unwrap().len(), 1);
}
