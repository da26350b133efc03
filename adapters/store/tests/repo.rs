//! The repository test bodies, each run against a fresh SQLite file and a fresh PostgreSQL
//! database (127.0.0.1:5432, or `KRAKE_TEST_POSTGRES_URL`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[macro_use]
mod common;
use common::Db;

use krake_core::actor::{Actor, Front, Role, UserName};
use krake_core::delivery::Routes;
use krake_core::inbound::{IdempotencyKey, InboundRecord, Recorded};
use krake_core::inbox::*;
use krake_core::outbox::{
    Destination, NewOutbound, OutboxId, OutboxPayload, RetryOutcome, RetryPolicy,
};
use krake_core::ports::{
    ArchiveOutcome, FrontStateRepo, InboundRepo, InboxRepo, OutboxRepo, RepoError, ThreadCopy,
    UserRepo, WriteCtx,
};
use krake_core::reply::Reply;
use krake_core::time::Timestamp;
use krake_core::workspace::WorkspaceSlug;
use krake_store::Store;
use std::sync::Arc;
use std::time::Duration;

on_both!(
    response_times_run_from_opening_to_a_decision_or_first_reply,
    inbox_lifecycle,
    reject_with_reason_and_refusals,
    question_is_answered_by_reply,
    quorum_needs_distinct_approvals,
    stale_button_is_refused,
    expiry_takes_its_route_exactly_once,
    inbound_is_idempotent_and_applies_once,
    outbox_orders_per_destination_and_retries,
    outbox_lease_expiry_returns_work,
    decisions_edit_every_copy,
    concurrent_decisions_one_wins,
    concurrent_claims_never_share_a_job,
    workspaces_are_isolated_in_listings,
    migrations_are_idempotent,
    users_roles_and_link_codes,
    front_state_and_copy_lookup,
    kpis_add_up_for_a_scripted_day,
);

fn ws(s: &str) -> WorkspaceSlug {
    WorkspaceSlug::parse(s).unwrap()
}

const T0: i64 = 1_795_503_000_000;

fn ctx(user: &str, front: Front) -> WriteCtx {
    WriteCtx {
        actor: Actor::new(UserName::parse(user).unwrap(), front, Role::Member),
        inbound: None,
        now: Timestamp::from_millis(T0),
    }
}

fn approval(w: &str, title: &str) -> NewThread {
    let mut n = NewThread::new(ws(w), ThreadKind::Approval, title, "details");
    n.origin = Origin::Agent;
    n.agent = Some("Penn".into());
    n.action = Some(ProposedAction::PublishPost {
        channel: "instagram".into(),
        text: "New hoodie!".into(),
    });
    n
}

fn decided(o: Option<DecisionOutcome>) -> Thread {
    match o {
        Some(DecisionOutcome::Decided(t)) => t,
        other => panic!("expected a decision, got {other:?}"),
    }
}

fn refused(o: Option<DecisionOutcome>) -> Thread {
    match o {
        Some(DecisionOutcome::Refused(t)) => t,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn inbox_lifecycle(s: &Store) {
    let c = ctx("ana", Front::Web);
    let a = s
        .create(&approval("lunavo", "Post the hoodie"), &c)
        .await
        .unwrap();
    let q = s
        .create(
            &NewThread::new(ws("monarch"), ThreadKind::Question, "Which supplier?", ""),
            &c,
        )
        .await
        .unwrap();
    assert_eq!(a.status, ThreadStatus::Open);
    assert_eq!(a.version, 1);
    assert!(q.id > a.id);
    assert_eq!(
        a.action,
        approval("lunavo", "").action,
        "proposed action round-trips"
    );

    let lunavo = s
        .list(&ThreadFilter {
            workspace: Some(ws("lunavo")),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(lunavo.iter().map(|t| t.id).collect::<Vec<_>>(), vec![a.id]);
    let questions = s
        .list(&ThreadFilter {
            kind: Some(ThreadKind::Question),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        questions.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![q.id]
    );
    let all = s.list(&ThreadFilter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![q.id, a.id],
        "newest first"
    );

    let replied = s
        .reply(a.id, "looks good", &ctx("bo", Front::Telegram))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(replied.replies.len(), 1);
    assert_eq!(replied.replies[0].author.as_str(), "bo");
    assert_eq!(replied.replies[0].front, Front::Telegram);
    assert_eq!(replied.status, ThreadStatus::Open);

    let t = decided(
        s.decide(a.id, &Decision::Approve, None, &ctx("ana", Front::Discord))
            .await
            .unwrap(),
    );
    assert_eq!(t.status, ThreadStatus::Approved);
    assert_eq!(t.decided_by.as_ref().map(UserName::as_str), Some("ana"));
    let open = s
        .list(&ThreadFilter {
            status: Some(ThreadStatus::Open),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(open.len(), 1);

    match s.set_archived(a.id, true, &c).await.unwrap() {
        Some(ArchiveOutcome::Changed(t)) => assert_eq!(t.status, ThreadStatus::Archived),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.set_archived(a.id, true, &c).await.unwrap(),
        Some(ArchiveOutcome::Unchanged(_))
    ));
    let listed = s.list(&ThreadFilter::default()).await.unwrap();
    assert!(
        !listed.iter().any(|t| t.id == a.id),
        "archived threads leave the default listing"
    );
    match s.set_archived(a.id, false, &c).await.unwrap() {
        Some(ArchiveOutcome::Changed(t)) => assert_eq!(
            t.status,
            ThreadStatus::Approved,
            "unarchive restores the status"
        ),
        other => panic!("{other:?}"),
    }

    let log = s.audit(a.id).await.unwrap();
    let actions: Vec<(&str, &str, Front)> = log
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str(), e.front))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("created", "ana", Front::Web),
            ("replied", "bo", Front::Telegram),
            ("approved", "ana", Front::Discord),
            ("archived", "ana", Front::Web),
            ("unarchived", "ana", Front::Web),
        ]
    );
    assert!(s.get(ThreadId(999_999)).await.unwrap().is_none());
    assert!(
        s.decide(ThreadId(999_999), &Decision::Approve, None, &c)
            .await
            .unwrap()
            .is_none()
    );
    assert!(s.reply(ThreadId(999_999), "x", &c).await.unwrap().is_none());
}

async fn reject_with_reason_and_refusals(s: &Store) {
    let c = ctx("ana", Front::Cli);
    let a = s
        .create(&approval("lunavo", "Discount 50%"), &c)
        .await
        .unwrap();
    let t = decided(
        s.decide(
            a.id,
            &Decision::Reject {
                reason: Some("too expensive".into()),
            },
            None,
            &c,
        )
        .await
        .unwrap(),
    );
    assert_eq!(t.status, ThreadStatus::Rejected);
    assert_eq!(t.reason.as_deref(), Some("too expensive"));
    let before = s.get(a.id).await.unwrap().unwrap();
    let r = refused(
        s.decide(a.id, &Decision::Approve, None, &ctx("bo", Front::Web))
            .await
            .unwrap(),
    );
    assert_eq!(r.status, ThreadStatus::Rejected);
    assert_eq!(r.decided_by.as_ref().map(UserName::as_str), Some("ana"));
    assert_eq!(
        s.get(a.id).await.unwrap().unwrap(),
        before,
        "a refused decision changes nothing"
    );
    let n = s
        .create(
            &NewThread::new(ws("lunavo"), ThreadKind::Notice, "FYI", ""),
            &c,
        )
        .await
        .unwrap();
    refused(s.decide(n.id, &Decision::Approve, None, &c).await.unwrap());
}

async fn question_is_answered_by_reply(s: &Store) {
    let c = ctx("ana", Front::Cli);
    let q = s
        .create(
            &NewThread::new(ws("monarch"), ThreadKind::Question, "Which supplier?", ""),
            &c,
        )
        .await
        .unwrap();
    let t = s.reply(q.id, "the cheaper one", &c).await.unwrap().unwrap();
    assert_eq!(t.status, ThreadStatus::Answered);
    assert_eq!(t.version, 2);
}

async fn quorum_needs_distinct_approvals(s: &Store) {
    let mut n = approval("management", "Hire a designer");
    n.approvers = Approvers::Quorum { n: 2 };
    let t = s.create(&n, &ctx("ana", Front::Cli)).await.unwrap();
    match s
        .decide(t.id, &Decision::Approve, None, &ctx("ana", Front::Web))
        .await
        .unwrap()
    {
        Some(DecisionOutcome::Counted { missing, thread }) => {
            assert_eq!(missing, 1);
            assert_eq!(thread.status, ThreadStatus::Open);
            assert_eq!(thread.approvals.len(), 1);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.decide(t.id, &Decision::Approve, None, &ctx("ana", Front::Telegram))
            .await
            .unwrap(),
        Some(DecisionOutcome::AlreadyCounted(_))
    ));
    let done = decided(
        s.decide(t.id, &Decision::Approve, None, &ctx("bo", Front::Discord))
            .await
            .unwrap(),
    );
    assert_eq!(done.status, ThreadStatus::Approved);
    assert_eq!(done.approvals.len(), 2);
}

async fn stale_button_is_refused(s: &Store) {
    let mut n = approval("lunavo", "Two approvals");
    n.approvers = Approvers::Quorum { n: 2 };
    let t = s.create(&n, &ctx("ana", Front::Cli)).await.unwrap();
    let v = t.version;
    s.decide(
        t.id,
        &Decision::Approve,
        Some(v),
        &ctx("ana", Front::Discord),
    )
    .await
    .unwrap();
    let r = refused(
        s.decide(
            t.id,
            &Decision::Approve,
            Some(v),
            &ctx("bo", Front::Discord),
        )
        .await
        .unwrap(),
    );
    assert_eq!(r.status, ThreadStatus::Open);
    let fresh = s.get(t.id).await.unwrap().unwrap();
    decided(
        s.decide(
            t.id,
            &Decision::Approve,
            Some(fresh.version),
            &ctx("bo", Front::Discord),
        )
        .await
        .unwrap(),
    );
}

async fn expiry_takes_its_route_exactly_once(s: &Store) {
    let c = ctx("ana", Front::Cli);
    let mut esc = approval("lunavo", "Escalate me");
    esc.expires_at = Some(Timestamp::from_millis(T0 + 1000));
    let mut rej = approval("lunavo", "Just expire");
    rej.expires_at = Some(Timestamp::from_millis(T0 + 1000));
    rej.timeout_route = TimeoutRoute::Expire;
    let mut later = approval("lunavo", "Not yet");
    later.expires_at = Some(Timestamp::from_millis(T0 + 60_000));
    let e = s.create(&esc, &c).await.unwrap();
    let r = s.create(&rej, &c).await.unwrap();
    let l = s.create(&later, &c).await.unwrap();

    let mut routes = Routes::new();
    routes.add(ws("lunavo"), Destination::parse("telegram:-100").unwrap());
    assert!(
        s.sweep_expired(Timestamp::from_millis(T0), 100, &routes)
            .await
            .unwrap()
            .is_empty()
    );
    let now = Timestamp::from_millis(T0 + 2000);
    // Two sweepers at once: each expiry still happens once.
    let (a, b) = tokio::join!(
        s.sweep_expired(now, 100, &routes),
        s.sweep_expired(now, 100, &routes)
    );
    let mut all = a.unwrap();
    all.extend(b.unwrap());
    all.sort_by_key(|x| x.thread);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0].thread, e.id);
    assert_eq!(all[0].route, TimeoutRoute::Escalate);
    let esc_id = all[0].escalation.expect("an escalation thread");
    assert_eq!(all[1].thread, r.id);
    assert_eq!(all[1].escalation, None);
    assert!(s.sweep_expired(now, 100, &routes).await.unwrap().is_empty());
    let posted = s
        .claim_outbox(Some("telegram"), "w", now, Duration::from_secs(5), 10)
        .await
        .unwrap();
    assert_eq!(
        posted.len(),
        1,
        "the escalation is posted to the workspace's route"
    );
    assert_eq!(
        posted[0].payload,
        OutboxPayload::PostThread { thread: esc_id }
    );

    let esc_thread = s.get(esc_id).await.unwrap().unwrap();
    assert_eq!(esc_thread.kind, ThreadKind::Escalation);
    assert_eq!(esc_thread.workspace, ws("lunavo"));
    assert!(esc_thread.title.contains(&format!("#{}", e.id.0)));
    assert_eq!(
        s.get(e.id).await.unwrap().unwrap().status,
        ThreadStatus::Expired
    );
    assert_eq!(
        s.get(l.id).await.unwrap().unwrap().status,
        ThreadStatus::Open
    );
    let escalations = s
        .list(&ThreadFilter {
            kind: Some(ThreadKind::Escalation),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(escalations.len(), 1);
    refused(s.decide(e.id, &Decision::Approve, None, &c).await.unwrap());
}

async fn inbound_is_idempotent_and_applies_once(s: &Store) {
    let ev = InboundRecord {
        source: "telegram".into(),
        idempotency_key: IdempotencyKey::parse("telegram:update:42").unwrap(),
        actor: UserName::parse("ana").unwrap(),
        conversation: "chat:1".into(),
        content: "/reply 1 ok".into(),
        received_at: Timestamp::from_millis(T0),
    };
    let Recorded::New(id) = s.record_inbound(&ev).await.unwrap() else {
        panic!("first record is new")
    };
    match s.record_inbound(&ev).await.unwrap() {
        Recorded::Duplicate {
            id: d,
            processed: false,
            response: None,
        } => assert_eq!(d, id),
        other => panic!("{other:?}"),
    }
    let t = s
        .create(&approval("lunavo", "x"), &ctx("ana", Front::Cli))
        .await
        .unwrap();
    let mut c = ctx("ana", Front::Telegram);
    c.inbound = Some(krake_core::inbound::InboundMark::new(id));
    s.reply(t.id, "ok", &c).await.unwrap();
    assert!(matches!(
        s.reply(t.id, "ok", &c).await,
        Err(RepoError::AlreadyApplied)
    ));
    assert_eq!(
        s.get(t.id).await.unwrap().unwrap().replies.len(),
        1,
        "applied once"
    );
    let reply = serde_json::to_string(&Reply::success("Replied")).unwrap();
    s.complete_inbound(id, Some(&reply), Timestamp::from_millis(T0))
        .await
        .unwrap();
    match s.record_inbound(&ev).await.unwrap() {
        Recorded::Duplicate {
            processed: true,
            response: Some(r),
            ..
        } => assert_eq!(r, reply),
        other => panic!("{other:?}"),
    }

    // Durable work: unprocessed events are claimed with a lease.
    let mut hook = ev.clone();
    hook.source = "shopify".into();
    hook.idempotency_key = IdempotencyKey::parse("shopify:abc").unwrap();
    s.record_inbound(&hook).await.unwrap();
    let now = Timestamp::from_millis(T0);
    let got = s
        .claim_inbound("shopify", "w1", now, Duration::from_secs(30), 10)
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert!(
        s.claim_inbound("shopify", "w2", now, Duration::from_secs(30), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let later = Timestamp::from_millis(T0 + 31_000);
    let again = s
        .claim_inbound("shopify", "w2", later, Duration::from_secs(30), 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "an expired lease returns the event");
    assert_eq!(again[0].attempts, 2);
    s.complete_inbound(again[0].id, None, later).await.unwrap();
    assert!(
        s.claim_inbound(
            "shopify",
            "w3",
            Timestamp::from_millis(T0 + 99_000),
            Duration::from_secs(30),
            10
        )
        .await
        .unwrap()
        .is_empty()
    );
}

fn msg(dest: &str, text: &str) -> NewOutbound {
    NewOutbound {
        destination: Destination::parse(dest).unwrap(),
        payload: OutboxPayload::Send {
            reply: Reply::info(text),
        },
    }
}

fn text_of(p: &OutboxPayload) -> String {
    match p {
        OutboxPayload::Send { reply } => reply.text.clone(),
        other => format!("{other:?}"),
    }
}

async fn outbox_orders_per_destination_and_retries(s: &Store) {
    let now = Timestamp::from_millis(T0);
    let lease = Duration::from_secs(30);
    s.enqueue(
        &[
            msg("telegram:1", "a1"),
            msg("telegram:1", "a2"),
            msg("discord:9", "b1"),
            msg("telegram:1", "a3"),
        ],
        now,
    )
    .await
    .unwrap();
    assert_eq!(s.outbox_depth().await.unwrap(), 4);
    let jobs = s.claim_outbox(None, "w", now, lease, 10).await.unwrap();
    assert_eq!(
        jobs.iter().map(|j| text_of(&j.payload)).collect::<Vec<_>>(),
        vec!["a1", "b1"],
        "one at a time per destination"
    );
    let only_tg = s
        .claim_outbox(Some("telegram"), "w", now, lease, 10)
        .await
        .unwrap();
    assert!(only_tg.is_empty(), "a2 waits for a1");
    assert!(
        !s.complete_outbox(jobs[0].id, "someone-else", Some("m1"), now)
            .await
            .unwrap(),
        "a lease is owned"
    );
    assert!(
        s.complete_outbox(jobs[0].id, "w", Some("m1"), now)
            .await
            .unwrap()
    );
    let next = s
        .claim_outbox(Some("telegram"), "w", now, lease, 10)
        .await
        .unwrap();
    assert_eq!(
        next.iter().map(|j| text_of(&j.payload)).collect::<Vec<_>>(),
        vec!["a2"]
    );

    // a2 fails: scheduled later with backoff, and a3 still waits behind it.
    let policy = RetryPolicy {
        base: Duration::from_secs(1),
        cap: Duration::from_secs(60),
        max_attempts: 3,
    };
    let RetryOutcome::Scheduled(at) = s
        .retry_outbox(next[0].id, "w", "429", now, None, &policy)
        .await
        .unwrap()
    else {
        panic!()
    };
    assert!(at > now && at <= now.plus(Duration::from_secs(1)));
    assert!(
        s.claim_outbox(Some("telegram"), "w", now, lease, 10)
            .await
            .unwrap()
            .is_empty(),
        "not due, and a3 keeps its place"
    );
    // A 429's retry_after pushes the retry further.
    let j = s
        .claim_outbox(Some("telegram"), "w", at, lease, 10)
        .await
        .unwrap();
    assert_eq!(text_of(&j[0].payload), "a2");
    assert_eq!(j[0].attempts, 2);
    let after = at.plus(Duration::from_secs(40));
    assert_eq!(
        s.retry_outbox(j[0].id, "w", "429", at, Some(after), &policy)
            .await
            .unwrap(),
        RetryOutcome::Scheduled(after)
    );
    let j = s
        .claim_outbox(Some("telegram"), "w", after, lease, 10)
        .await
        .unwrap();
    assert_eq!(j[0].attempts, 3);
    assert_eq!(
        s.retry_outbox(j[0].id, "w", "500 again", after, None, &policy)
            .await
            .unwrap(),
        RetryOutcome::DeadLettered
    );
    let dead = s.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].2, "500 again");
    // The dead letter no longer blocks its destination.
    let j = s
        .claim_outbox(Some("telegram"), "w", after, lease, 10)
        .await
        .unwrap();
    assert_eq!(text_of(&j[0].payload), "a3");
    assert_eq!(
        s.retry_outbox(j[0].id, "other", "x", after, None, &policy)
            .await
            .unwrap(),
        RetryOutcome::LeaseLost
    );
}

async fn outbox_lease_expiry_returns_work(s: &Store) {
    let now = Timestamp::from_millis(T0);
    s.enqueue(&[msg("web:s1", "hello")], now).await.unwrap();
    let a = s
        .claim_outbox(None, "crashed-worker", now, Duration::from_secs(10), 10)
        .await
        .unwrap();
    assert_eq!(a.len(), 1);
    assert!(
        s.claim_outbox(
            None,
            "w2",
            now.plus(Duration::from_secs(5)),
            Duration::from_secs(10),
            10
        )
        .await
        .unwrap()
        .is_empty()
    );
    let b = s
        .claim_outbox(
            None,
            "w2",
            now.plus(Duration::from_secs(11)),
            Duration::from_secs(10),
            10,
        )
        .await
        .unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].id, a[0].id);
    assert!(
        !s.complete_outbox(a[0].id, "crashed-worker", None, now)
            .await
            .unwrap(),
        "the old lease is gone"
    );
    assert_eq!(
        s.complete_outbox_many(&[(b[0].id, None)], "crashed-worker", now)
            .await
            .unwrap(),
        0,
        "batch completion checks the lease too"
    );
    assert_eq!(
        s.complete_outbox_many(&[(b[0].id, Some("m9".into()))], "w2", now)
            .await
            .unwrap(),
        1
    );
    assert_eq!(s.outbox_depth().await.unwrap(), 0);
    let once = msg("telegram:7", "reply to update 42");
    assert!(
        s.enqueue_once(&once, "reply:telegram:update:42", now)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        s.enqueue_once(&once, "reply:telegram:update:42", now)
            .await
            .unwrap()
            .is_none(),
        "queued once per key"
    );
    assert_eq!(s.outbox_depth().await.unwrap(), 1);
}

async fn decisions_edit_every_copy(s: &Store) {
    let c = ctx("ana", Front::Cli);
    let t = s
        .create(&approval("lunavo", "Mirror me"), &c)
        .await
        .unwrap();
    for (d, m) in [
        ("discord:channel:5", "111"),
        ("telegram:-100:topic:3", "222"),
    ] {
        s.add_copy(&ThreadCopy {
            thread: t.id,
            destination: Destination::parse(d).unwrap(),
            message_id: m.into(),
        })
        .await
        .unwrap();
    }
    assert_eq!(s.copies(t.id).await.unwrap().len(), 2);
    decided(s.decide(t.id, &Decision::Approve, None, &c).await.unwrap());
    let jobs = s
        .claim_outbox(
            None,
            "w",
            Timestamp::from_millis(T0),
            Duration::from_secs(5),
            10,
        )
        .await
        .unwrap();
    let mut edits: Vec<(String, String, i64)> = jobs
        .iter()
        .map(|j| match &j.payload {
            OutboxPayload::EditThread {
                thread,
                message_id,
                version,
            } => {
                assert_eq!(*thread, t.id);
                (
                    j.destination.as_str().to_owned(),
                    message_id.clone(),
                    *version,
                )
            }
            other => panic!("{other:?}"),
        })
        .collect();
    edits.sort();
    assert_eq!(
        edits,
        vec![
            ("discord:channel:5".into(), "111".into(), 2),
            ("telegram:-100:topic:3".into(), "222".into(), 2)
        ]
    );
}

async fn concurrent_decisions_one_wins(s: &Store) {
    let t = s
        .create(&approval("lunavo", "Race"), &ctx("ana", Front::Cli))
        .await
        .unwrap();
    let store = Arc::new(s.clone());
    let mut handles = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let d = if i % 2 == 0 {
                Decision::Approve
            } else {
                Decision::Reject {
                    reason: Some(format!("no {i}")),
                }
            };
            store
                .decide(t.id, &d, None, &ctx(&format!("user{i}"), Front::Discord))
                .await
                .unwrap()
        }));
    }
    let mut wins = 0;
    let mut refusals = 0;
    for h in handles {
        match h.await.unwrap() {
            Some(DecisionOutcome::Decided(_)) => wins += 1,
            Some(DecisionOutcome::Refused(_)) => refusals += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((wins, refusals), (1, 7));
    let log = s.audit(t.id).await.unwrap();
    assert_eq!(
        log.iter()
            .filter(|e| e.action == "approved" || e.action == "rejected")
            .count(),
        1
    );
}

async fn concurrent_claims_never_share_a_job(s: &Store) {
    let now = Timestamp::from_millis(T0);
    let msgs: Vec<NewOutbound> = (0..200)
        .map(|i| msg(&format!("web:{}", i % 50), &i.to_string()))
        .collect();
    s.enqueue(&msgs, now).await.unwrap();
    let store = Arc::new(s.clone());
    let mut handles = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let owner = format!("w{w}");
            let mut seen = Vec::new();
            loop {
                let jobs = store
                    .claim_outbox(None, &owner, now, Duration::from_secs(60), 7)
                    .await
                    .unwrap();
                if jobs.is_empty() {
                    if store.outbox_depth().await.unwrap() == 0 {
                        break;
                    }
                    tokio::task::yield_now().await;
                    continue;
                }
                for j in jobs {
                    assert!(
                        store
                            .complete_outbox(j.id, &owner, None, now)
                            .await
                            .unwrap()
                    );
                    seen.push(text_of(&j.payload).parse::<i32>().unwrap());
                }
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        (0..200).collect::<Vec<_>>(),
        "every job delivered exactly once"
    );
}

async fn workspaces_are_isolated_in_listings(s: &Store) {
    let c = ctx("ana", Front::Cli);
    s.create(&approval("lunavo", "L"), &c).await.unwrap();
    s.create(&approval("monarch", "M"), &c).await.unwrap();
    let visible = ThreadFilter {
        visible: Some(vec![ws("monarch")]),
        ..Default::default()
    };
    let got = s.list(&visible).await.unwrap();
    assert_eq!(
        got.iter().map(|t| t.title.as_str()).collect::<Vec<_>>(),
        vec!["M"]
    );
    let asked_other = ThreadFilter {
        workspace: Some(ws("lunavo")),
        visible: Some(vec![ws("monarch")]),
        ..Default::default()
    };
    assert!(s.list(&asked_other).await.unwrap().is_empty());
    assert!(
        s.list(&ThreadFilter {
            visible: Some(vec![]),
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty()
    );
}

async fn migrations_are_idempotent(s: &Store) {
    let mut events = Vec::new();
    let applied = s.migrate(|e| events.push(e)).await.unwrap();
    assert_eq!(applied, 0);
    assert!(matches!(
        events[0],
        krake_store::MigrationProgress::Pending(0)
    ));
    s.ping().await.unwrap();
}

#[tokio::test]
async fn unreachable_database_is_a_clear_error() {
    let e = Store::open("postgres://nobody:hunter2@127.0.0.1:1/none")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot open the database"), "{e}");
    assert!(!e.contains("hunter2"), "password leaked: {e}");
    let e = Store::open("mysql://x").await.unwrap_err().to_string();
    assert!(e.contains("unsupported database URL"), "{e}");
    let e = Store::open("sqlite:///nonexistent-dir/sub/krake.db")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot open the database"), "{e}");
}

async fn users_roles_and_link_codes(s: &Store) {
    let now = Timestamp::from_millis(T0);
    let ana = UserName::parse("ana").unwrap();
    let rec = s.upsert_user(&ana, Role::Owner, None, now).await.unwrap();
    assert_eq!(rec.role, Role::Owner);
    let bo = UserName::parse("bo").unwrap();
    let rec = s
        .upsert_user(&bo, Role::Member, Some(&ws("monarch")), now)
        .await
        .unwrap();
    assert_eq!(
        rec.role,
        Role::Guest,
        "a per-workspace user is a guest elsewhere"
    );
    assert_eq!(rec.workspace_roles.get(&ws("monarch")), Some(&Role::Member));
    let rec = s
        .upsert_user(&bo, Role::Viewer, Some(&ws("lunavo")), now)
        .await
        .unwrap();
    assert_eq!(rec.workspace_roles.len(), 2);
    assert_eq!(
        s.users()
            .await
            .unwrap()
            .iter()
            .map(|u| u.name.as_str())
            .collect::<Vec<_>>(),
        ["ana", "bo"]
    );

    s.create_link_code(&bo, "ABCD2345", Timestamp::from_millis(T0 + 60_000))
        .await
        .unwrap();
    assert_eq!(s.linked_user(Front::Telegram, "42").await.unwrap(), None);
    assert_eq!(
        s.redeem_link_code("WRONG999", Front::Telegram, "42", now)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.redeem_link_code("ABCD2345", Front::Telegram, "42", now)
            .await
            .unwrap(),
        Some(bo.clone())
    );
    assert_eq!(
        s.redeem_link_code("ABCD2345", Front::Discord, "7", now)
            .await
            .unwrap(),
        None,
        "a code works once"
    );
    assert_eq!(
        s.linked_user(Front::Telegram, "42").await.unwrap(),
        Some(bo.clone())
    );
    assert_eq!(
        s.linked_user(Front::Discord, "42").await.unwrap(),
        None,
        "identities are per front"
    );
    s.create_link_code(&ana, "LATE2345", Timestamp::from_millis(T0 + 1))
        .await
        .unwrap();
    assert_eq!(
        s.redeem_link_code(
            "LATE2345",
            Front::Discord,
            "7",
            Timestamp::from_millis(T0 + 2)
        )
        .await
        .unwrap(),
        None,
        "expired"
    );
}

async fn front_state_and_copy_lookup(s: &Store) {
    // The polling cursor: absent, saved, only ever moves forward.
    assert_eq!(s.cursor("telegram").await.unwrap(), None);
    s.save_cursor("telegram", 10).await.unwrap();
    s.save_cursor("telegram", 7).await.unwrap();
    assert_eq!(s.cursor("telegram").await.unwrap(), Some(10));
    s.save_cursor("telegram", 4_000_000_000).await.unwrap();
    assert_eq!(s.cursor("telegram").await.unwrap(), Some(4_000_000_000));
    assert_eq!(s.cursor("discord").await.unwrap(), None);

    // Parts sent: recorded once, listed in order.
    let job = OutboxId(42);
    assert!(s.sent_parts(job).await.unwrap().is_empty());
    let now = Timestamp::from_millis(T0);
    s.record_sent_part(job, 1, "501", now).await.unwrap();
    s.record_sent_part(job, 0, "500", now).await.unwrap();
    s.record_sent_part(job, 0, "999", now).await.unwrap();
    assert_eq!(
        s.sent_parts(job).await.unwrap(),
        vec![(0, "500".to_owned()), (1, "501".to_owned())]
    );

    // A thread's copy is found by the platform message showing it.
    let c = ctx("ana", Front::Cli);
    let t = s.create(&approval("lunavo", "Find me"), &c).await.unwrap();
    let dest = Destination::parse("telegram:-1001:topic:4").unwrap();
    s.add_copy(&ThreadCopy {
        thread: t.id,
        destination: dest.clone(),
        message_id: "77".into(),
    })
    .await
    .unwrap();
    let found = s.copy_at(&dest, "77").await.unwrap().unwrap();
    assert_eq!(found.thread, t.id);
    assert_eq!(s.copy_at(&dest, "78").await.unwrap(), None);
    let other = Destination::parse("telegram:-1001").unwrap();
    assert_eq!(s.copy_at(&other, "77").await.unwrap(), None);
}

async fn kpis_add_up_for_a_scripted_day(s: &Store) {
    use krake_core::commerce::*;
    let lunavo = ws("lunavo");
    // 2026-11-24 12:00 in Berlin (UTC+1).
    let noon = 1_795_518_000_000i64;
    let order = |id: &str, day: &str, minutes: i64, total: i64, status: &str, updated: i64| Order {
        id: id.into(),
        name: format!("#{id}"),
        day: day.into(),
        utc_offset_minutes: 60,
        created_at: Timestamp::from_millis(noon + minutes * 60_000),
        updated_at: Timestamp::from_millis(noon + updated * 60_000),
        currency: "EUR".into(),
        total: Minor(total),
        refunded: Minor(0),
        financial_status: status.into(),
        email: None,
        customer_name: Some("Ana".into()),
    };
    let mut events = vec![
        CommerceEvent::OrderCreated(order(
            "900000000000000001",
            "2026-11-24",
            0,
            1000,
            "pending",
            0,
        )),
        CommerceEvent::OrderCreated(order(
            "900000000000000002",
            "2026-11-24",
            1,
            2050,
            "paid",
            1,
        )),
        CommerceEvent::OrderCreated(order(
            "900000000000000003",
            "2026-11-24",
            2,
            3000,
            "paid",
            2,
        )),
        CommerceEvent::OrderCreated(order(
            "900000000000000004",
            "2026-11-24",
            3,
            1525,
            "pending",
            3,
        )),
        CommerceEvent::OrderCreated(order(
            "900000000000000005",
            "2026-11-24",
            4,
            2425,
            "authorized",
            4,
        )),
        CommerceEvent::OrderCreated(order(
            "900000000000000006",
            "2026-11-23",
            -1440,
            5000,
            "paid",
            -1440,
        )),
        // Order 1 gets paid.
        CommerceEvent::OrderPaid(order(
            "900000000000000001",
            "2026-11-24",
            0,
            1000,
            "paid",
            30,
        )),
        // A stale redelivery of order 2's creation with other figures changes nothing.
        CommerceEvent::OrderCreated(order(
            "900000000000000002",
            "2026-11-24",
            1,
            9999,
            "pending",
            -5,
        )),
    ];
    let mut refunded = order(
        "900000000000000003",
        "2026-11-24",
        2,
        3000,
        "partially_refunded",
        60,
    );
    refunded.refunded = Minor(500);
    events.push(CommerceEvent::OrderPaid(refunded));
    let now = Timestamp::from_millis(noon + 3 * 3_600_000);
    for (i, event) in events.into_iter().enumerate() {
        let ev = InboundRecord {
            source: "shopify".into(),
            idempotency_key: IdempotencyKey::parse(&format!("shopify:day-{i}")).unwrap(),
            actor: UserName::parse("shopify").unwrap(),
            conversation: "lunavo.myshopify.com".into(),
            content: String::new(),
            received_at: now,
        };
        let Recorded::New(id) = s.record_inbound(&ev).await.unwrap() else {
            panic!()
        };
        let env = CommerceEnvelope {
            workspace: lunavo.clone(),
            event,
        };
        let threads = threads_for(&default_rules(), &env);
        s.apply(id, &env, &threads, now).await.unwrap();
        assert!(
            matches!(
                s.apply(id, &env, &threads, now).await,
                Err(RepoError::AlreadyApplied)
            ),
            "an event applies once"
        );
    }
    let k = s.kpis(&lunavo, 30, now).await.unwrap();
    assert_eq!(k.today.as_deref(), Some("2026-11-24"));
    assert_eq!(k.today_figures.len(), 1);
    let t = &k.today_figures[0];
    assert_eq!(
        (t.orders, t.revenue, t.paid, t.pending, t.refunds),
        (5, Minor(10_000), 3, 2, Minor(500))
    );
    assert_eq!(t.average_order_value(), Minor(2000));
    assert_eq!(k.days.len(), 2);
    assert_eq!(
        (k.days[1].day.as_str(), k.days[1].orders, k.days[1].revenue),
        ("2026-11-23", 1, Minor(5000))
    );
    // The thank-you rule fired once per order: six orders were created, and the stale
    // redelivery of order 2's creation (another delivery of the same event) opened nothing.
    let approvals = s
        .list(&ThreadFilter {
            kind: Some(ThreadKind::Approval),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(approvals.len(), 6);
    // Just before midnight in Berlin it is still the 24th; after it, a new day with no orders.
    let late = Timestamp::from_millis(1_795_474_800_000 + 86_400_000 - 60_000);
    assert_eq!(
        s.kpis(&lunavo, 30, late).await.unwrap().today.as_deref(),
        Some("2026-11-24")
    );
    let next = s
        .kpis(
            &lunavo,
            30,
            Timestamp::from_millis(1_795_474_800_000 + 86_400_000),
        )
        .await
        .unwrap();
    assert_eq!(next.today.as_deref(), Some("2026-11-25"));
    assert!(next.today_figures.is_empty());
}

/// Approvals wait until their decision; other threads until the first reply by a person
/// (Krake's own notes do not count); only answers since `since` are counted.
async fn response_times_run_from_opening_to_a_decision_or_first_reply(store: &Store) {
    let at = |min: i64| {
        let mut c = ctx("ana", Front::Telegram);
        c.now = Timestamp::from_millis(T0 + min * 60_000);
        c
    };
    let a = store
        .create(&approval("lunavo", "post"), &at(0))
        .await
        .unwrap();
    store.reply(a.id, "hmm", &at(5)).await.unwrap();
    store
        .decide(a.id, &Decision::Approve, None, &at(20))
        .await
        .unwrap();
    let q = store
        .create(
            &NewThread::new(ws("monarch"), ThreadKind::Question, "q", "?"),
            &at(0),
        )
        .await
        .unwrap();
    let mut note = at(10);
    note.actor = Actor::system();
    store.reply(q.id, "a note from Krake", &note).await.unwrap();
    store.reply(q.id, "the answer", &at(120)).await.unwrap();
    store.reply(q.id, "more", &at(130)).await.unwrap();
    // Open: no answer yet.
    store
        .create(&approval("lunavo", "still open"), &at(0))
        .await
        .unwrap();
    let mut got = store
        .response_times(Timestamp::from_millis(T0))
        .await
        .unwrap();
    got.sort_by_key(|t| t.waited);
    let seen: Vec<(String, ThreadKind, u64)> = got
        .iter()
        .map(|t| (t.workspace.to_string(), t.kind, t.waited.as_secs()))
        .collect();
    assert_eq!(
        seen,
        [
            ("lunavo".to_owned(), ThreadKind::Approval, 20 * 60),
            ("monarch".to_owned(), ThreadKind::Question, 120 * 60),
        ]
    );
    // Answers before `since` are another month's.
    let later = store
        .response_times(Timestamp::from_millis(T0 + 60 * 60_000))
        .await
        .unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].kind, ThreadKind::Question);
}
