//! KPI data in the store: pushed metrics (idempotent by key, rolled up per day) and commerce
//! events applied in batches (each once, every touched day's roll-up right, two processes
//! applying overlapping batches at once). Run against a fresh SQLite file and a fresh
//! PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[macro_use]
mod common;
use common::Db;

use krake_core::actor::UserName;
use krake_core::commerce::{CommerceEnvelope, CommerceEvent, CommerceRepo, Minor, Order, ToApply};
use krake_core::inbound::{IdempotencyKey, InboundId, InboundRecord, Recorded};
use krake_core::kpi::{MetricName, MetricPoint, MetricRepo};
use krake_core::ports::InboundRepo;
use krake_core::time::Timestamp;
use krake_core::workspace::WorkspaceSlug;
use krake_store::Store;

on_both_db!(
    pushed_metrics_are_stored_once_per_key_and_rolled_up_per_day,
    batches_apply_each_event_once_and_roll_up_every_day_they_touch,
    two_processes_applying_overlapping_batches_apply_each_event_once,
    reads_for_several_workspaces_match_reads_of_one_at_a_time,
    roll_ups_follow_each_change_of_an_order,
    two_processes_changing_the_same_orders_keep_the_roll_ups_exact,
    boards_show_a_change_from_any_process_at_once
);

const NOON: i64 = 1_795_518_000_000; // 2026-11-24 12:00 in Berlin

fn ws(s: &str) -> WorkspaceSlug {
    WorkspaceSlug::parse(s).unwrap()
}

fn point(name: &str, value: f64, day: &str, at: i64, key: Option<&str>) -> MetricPoint {
    MetricPoint {
        name: MetricName::parse(name).unwrap(),
        value,
        at: Timestamp::from_millis(at),
        day: day.into(),
        key: key.map(str::to_owned),
        demo: false,
    }
}

async fn pushed_metrics_are_stored_once_per_key_and_rolled_up_per_day(db: &Db) {
    let s = &db.store;
    let lunavo = ws("lunavo");
    let p = s
        .record_metrics(
            &lunavo,
            &[
                point("visitors", 100.0, "2026-11-24", NOON, Some("a")),
                point("visitors", 50.0, "2026-11-24", NOON - 1000, None),
                point(
                    "visitors",
                    7.0,
                    "2026-11-20",
                    NOON - 4 * 86_400_000,
                    Some("b"),
                ),
                point("score", 3.5, "2026-11-24", NOON, None),
            ],
        )
        .await
        .unwrap();
    assert_eq!((p.stored, p.duplicates), (4, 0));
    // The same keys again: nothing stored, the roll-up unchanged; a point without a key is new.
    let again = s
        .record_metrics(
            &lunavo,
            &[
                point("visitors", 100.0, "2026-11-24", NOON, Some("a")),
                point("visitors", 7.0, "2026-11-20", NOON, Some("b")),
                point("visitors", 1.0, "2026-11-24", NOON - 2000, None),
            ],
        )
        .await
        .unwrap();
    assert_eq!((again.stored, again.duplicates), (1, 2));
    // Another workspace may use the same key.
    let other = s
        .record_metrics(
            &ws("monarch"),
            &[point("visitors", 9.0, "2026-11-24", NOON, Some("a"))],
        )
        .await
        .unwrap();
    assert_eq!(other.stored, 1);
    let days = s
        .metric_days(&lunavo, &["visitors".into()], "2026-11-22", "2026-11-24")
        .await
        .unwrap();
    let today = days.iter().find(|d| d.day == "2026-11-24").unwrap();
    assert_eq!((today.sum, today.count), (151.0, 3));
    // The latest point of the day wins `last`, whatever order they came in.
    assert_eq!((today.last, today.last_at.as_millis()), (100.0, NOON));
    // The day before the window comes along, so a `last` value carries into it.
    let before = days.iter().find(|d| d.day == "2026-11-20").unwrap();
    assert_eq!(before.sum, 7.0);
    assert_eq!(days.len(), 2);
    assert!(
        s.metric_days(&lunavo, &[], "2026-11-22", "2026-11-24")
            .await
            .unwrap()
            .is_empty()
    );
}

/// The roll-ups as kept, and as recomputed from the orders: they must always be equal.
async fn roll_ups(s: &Store) -> (Vec<String>, Vec<String>) {
    let row = |r: &sqlx::any::AnyRow| {
        use sqlx::Row;
        format!(
            "{} {} {}: {} orders, {} revenue, {} paid, {} pending, {} refunds",
            r.get::<String, _>(0),
            r.get::<String, _>(1),
            r.get::<String, _>(2),
            r.get::<i64, _>(3),
            r.get::<i64, _>(4),
            r.get::<i64, _>(5),
            r.get::<i64, _>(6),
            r.get::<i64, _>(7)
        )
    };
    let kept = sqlx::query(
        "SELECT workspace, day, currency, orders, revenue_minor, paid, pending, refunds_minor \
         FROM kpi_daily ORDER BY workspace, day, currency",
    )
    .fetch_all(s.pool())
    .await
    .unwrap();
    let recomputed = sqlx::query(
        "SELECT workspace, day, currency, COUNT(*), CAST(SUM(total_minor) AS BIGINT), \
           CAST(SUM(CASE WHEN financial_status IN ('paid', 'partially_refunded', 'refunded') THEN 1 ELSE 0 END) AS BIGINT), \
           CAST(SUM(CASE WHEN financial_status IN ('pending', 'authorized', 'partially_paid') THEN 1 ELSE 0 END) AS BIGINT), \
           CAST(SUM(refunded_minor) AS BIGINT) \
         FROM commerce_orders GROUP BY workspace, day, currency ORDER BY workspace, day, currency",
    )
    .fetch_all(s.pool())
    .await
    .unwrap();
    (
        kept.iter().map(row).collect(),
        recomputed.iter().map(row).collect(),
    )
}

fn order(id: &str, day: &str, total: i64, status: &str, updated_min: i64) -> Order {
    Order {
        id: id.into(),
        name: format!("#{id}"),
        day: day.into(),
        utc_offset_minutes: 60,
        created_at: Timestamp::from_millis(NOON),
        updated_at: Timestamp::from_millis(NOON + updated_min * 60_000),
        currency: "EUR".into(),
        total: Minor(total),
        refunded: Minor(0),
        financial_status: status.into(),
        email: None,
        customer_name: None,
    }
}

async fn stored(s: &Store, key: &str) -> InboundId {
    let ev = InboundRecord {
        source: "shopify".into(),
        idempotency_key: IdempotencyKey::parse(key).unwrap(),
        actor: UserName::parse("shopify").unwrap(),
        conversation: "lunavo.myshopify.com".into(),
        content: String::new(),
        received_at: Timestamp::from_millis(NOON),
    };
    match s.record_inbound(&ev).await.unwrap() {
        Recorded::New(id) => id,
        other => panic!("{other:?}"),
    }
}

/// The event with the threads the default rules open for it (a thank-you approval per new
/// order), posted to the web front.
fn one(id: InboundId, event: CommerceEvent) -> ToApply {
    let envelope = CommerceEnvelope {
        workspace: ws("lunavo"),
        event,
    };
    let mut threads =
        krake_core::commerce::threads_for(&krake_core::commerce::default_rules(), &envelope);
    for t in &mut threads {
        t.origin_key = Some(format!("inbound:{}:rule:0", id.0));
        t.post_to = vec![krake_core::outbox::Destination::parse("web:lunavo").unwrap()];
    }
    ToApply {
        inbound: id,
        envelope,
        threads,
    }
}

async fn batches_apply_each_event_once_and_roll_up_every_day_they_touch(db: &Db) {
    let s = &db.store;
    let now = Timestamp::from_millis(NOON + 3_600_000);
    let mut batch = Vec::new();
    // Order 1 created pending, then paid later in the same batch; a stale redelivery of its
    // creation after that changes nothing (newer data wins inside a batch as across them).
    batch.push(one(
        stored(s, "e1").await,
        CommerceEvent::OrderCreated(order("1", "2026-11-24", 1000, "pending", 0)),
    ));
    batch.push(one(
        stored(s, "e2").await,
        CommerceEvent::OrderPaid(order("1", "2026-11-24", 1000, "paid", 10)),
    ));
    batch.push(one(
        stored(s, "e3").await,
        CommerceEvent::OrderCreated(order("1", "2026-11-24", 9999, "pending", 0)),
    ));
    batch.push(one(
        stored(s, "e4").await,
        CommerceEvent::OrderCreated(order("2", "2026-11-24", 2500, "paid", 0)),
    ));
    batch.push(one(
        stored(s, "e5").await,
        CommerceEvent::OrderCreated(order("3", "2026-11-23", 700, "paid", 0)),
    ));
    let applied = s.apply_many(&batch, now).await.unwrap();
    assert_eq!(applied.len(), 5);
    let k = s.kpis(&ws("lunavo"), 30, now).await.unwrap();
    let day = |d: &str| k.days.iter().find(|x| x.day == d).cloned().unwrap();
    let d24 = day("2026-11-24");
    assert_eq!(
        (d24.orders, d24.revenue, d24.paid, d24.pending),
        (2, Minor(3500), 2, 0)
    );
    assert_eq!(
        (day("2026-11-23").orders, day("2026-11-23").revenue),
        (1, Minor(700))
    );
    // The same batch again (a process that crashed after committing and is retried): nothing.
    assert!(s.apply_many(&batch, now).await.unwrap().is_empty());
    // A batch mixing an applied event and a new one applies only the new one.
    let e6 = stored(s, "e6").await;
    let mixed = vec![
        batch[0].clone(),
        one(
            e6,
            CommerceEvent::OrderCreated(order("4", "2026-11-24", 100, "pending", 0)),
        ),
    ];
    assert_eq!(s.apply_many(&mixed, now).await.unwrap(), vec![e6]);
    let k = s.kpis(&ws("lunavo"), 30, now).await.unwrap();
    let d24 = k.days.iter().find(|x| x.day == "2026-11-24").unwrap();
    assert_eq!((d24.orders, d24.revenue, d24.pending), (3, Minor(3600), 1));
    // One thank-you thread per new-order event, each with its audit row and its post; none
    // for the events applied before.
    use krake_core::ports::{InboxRepo, OutboxRepo};
    let threads = s
        .list(&krake_core::inbox::ThreadFilter::default())
        .await
        .unwrap();
    assert_eq!(threads.len(), 5, "{threads:?}");
    for t in &threads {
        let audit = s.audit(t.id).await.unwrap();
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].action, "created");
    }
    assert_eq!(s.outbox_depth().await.unwrap(), 5);
    // Every event is marked processed: nothing is left to claim.
    let left = s
        .claim_inbound("shopify", "w", now, std::time::Duration::from_secs(30), 100)
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

async fn two_processes_applying_overlapping_batches_apply_each_event_once(db: &Db) {
    let a = db.store.clone();
    let b = Store::open(&db.url).await.unwrap();
    let now = Timestamp::from_millis(NOON + 3_600_000);
    let mut all = Vec::new();
    for i in 0..120 {
        let id = stored(&a, &format!("o{i}")).await;
        all.push(one(
            id,
            CommerceEvent::OrderCreated(order(&format!("{i}"), "2026-11-24", 100, "paid", 0)),
        ));
    }
    // Both processes get most events (as after a lease ran out mid-batch), in 4 batches each.
    let first: Vec<ToApply> = all[..90].to_vec();
    let second: Vec<ToApply> = all[30..].to_vec();
    let run = |s: Store, list: Vec<ToApply>| async move {
        let mut n = 0;
        for chunk in list.chunks(25) {
            n += s.apply_many(chunk, now).await.unwrap().len();
        }
        n
    };
    let (x, y) = tokio::join!(run(a.clone(), first), run(b, second));
    assert_eq!(x + y, 120, "each event applied once");
    let k = a.kpis(&ws("lunavo"), 30, now).await.unwrap();
    let d = k.days.iter().find(|d| d.day == "2026-11-24").unwrap();
    assert_eq!(
        (d.orders, d.revenue),
        (120, Minor(12_000)),
        "the roll-up saw every order"
    );
}

/// The overview's reads of every workspace at once give exactly what the reads of one
/// workspace at a time give: the window, each metric's last day before it, only the names
/// asked for, each row under its own workspace.
async fn reads_for_several_workspaces_match_reads_of_one_at_a_time(db: &Db) {
    let s = &db.store;
    let day = 86_400_000;
    for (w, scale) in [
        ("lunavo", 1.0),
        ("monarch", 10.0),
        ("hard-life-mode", 100.0),
    ] {
        let points = vec![
            point("visitors", scale, "2026-11-24", NOON, None),
            point("visitors", 2.0 * scale, "2026-11-23", NOON - day, None),
            // Before the window: the latest of these carries in, the older one does not.
            point("visitors", 3.0 * scale, "2026-11-10", NOON - 14 * day, None),
            point("visitors", 4.0 * scale, "2026-11-02", NOON - 22 * day, None),
            point("score", 5.0 * scale, "2026-11-24", NOON, None),
            point("not_asked", 6.0 * scale, "2026-11-24", NOON, None),
        ];
        s.record_metrics(&ws(w), &points).await.unwrap();
    }
    let wanted = vec![
        (
            ws("lunavo"),
            vec!["visitors".to_owned(), "score".to_owned()],
        ),
        (ws("monarch"), vec!["visitors".to_owned()]),
        (
            ws("hard-life-mode"),
            vec!["score".to_owned(), "never_pushed".to_owned()],
        ),
        (ws("lunabots"), vec!["visitors".to_owned()]),
    ];
    let key = |w: &WorkspaceSlug, d: &krake_core::kpi::MetricDay| {
        (
            w.to_string(),
            d.name.clone(),
            d.day.clone(),
            d.sum.to_bits(),
            d.count,
        )
    };
    let mut at_once: Vec<_> = s
        .metric_days_of(&wanted, "2026-11-20", "2026-11-24")
        .await
        .unwrap()
        .iter()
        .map(|(w, d)| key(w, d))
        .collect();
    let mut one_by_one = Vec::new();
    for (w, names) in &wanted {
        for d in s
            .metric_days(w, names, "2026-11-20", "2026-11-24")
            .await
            .unwrap()
        {
            one_by_one.push(key(w, &d));
        }
    }
    at_once.sort();
    one_by_one.sort();
    assert_eq!(at_once, one_by_one);
    // What that is, spelled out: lunavo's two visitor days, the carried-in day and its score;
    // monarch's visitors; nothing unasked, nothing for lunabots.
    assert_eq!(at_once.len(), 4 + 3 + 1, "{at_once:?}");
    assert!(
        at_once
            .iter()
            .all(|k| k.1 != "not_asked" && k.0 != "lunabots")
    );
    assert!(
        at_once
            .iter()
            .any(|k| k.0 == "monarch" && k.2 == "2026-11-10" && k.3 == 30f64.to_bits())
    );
    assert!(!at_once.iter().any(|k| k.2 == "2026-11-02"));
    assert!(
        s.metric_days_of(&[], "2026-11-20", "2026-11-24")
            .await
            .unwrap()
            .is_empty()
    );

    // Commerce roll-ups of several workspaces at once, the same as one at a time.
    let now = Timestamp::from_millis(NOON + 3_600_000);
    let batch = vec![
        one(
            stored(s, "m1").await,
            CommerceEvent::OrderCreated(order("1", "2026-11-24", 1000, "paid", 0)),
        ),
        one(
            stored(s, "m2").await,
            CommerceEvent::OrderCreated(order("2", "2026-11-19", 500, "paid", 0)),
        ),
    ];
    s.apply_many(&batch, now).await.unwrap();
    let all = [ws("lunavo"), ws("monarch")];
    let at_once = s.daily_since_of(&all, "2026-11-20").await.unwrap();
    let mut one_by_one = Vec::new();
    for w in &all {
        for d in s.daily_since(w, "2026-11-20").await.unwrap() {
            one_by_one.push((w.clone(), d));
        }
    }
    assert_eq!(at_once, one_by_one);
    assert_eq!(
        at_once.len(),
        1,
        "only lunavo's day in the window: {at_once:?}"
    );
    assert_eq!(at_once[0].1.revenue, Minor(1000));
    assert!(
        s.daily_since_of(&[], "2026-11-20")
            .await
            .unwrap()
            .is_empty()
    );
}

/// Roll-ups are kept by adding what each change does: a status, an amount, a refund, a
/// currency, a stale event (ignored), a replay; they must equal the roll-ups recomputed from
/// the orders after every batch. An order stays on the day it was created on.
async fn roll_ups_follow_each_change_of_an_order(db: &Db) {
    let s = &db.store;
    let now = Timestamp::from_millis(NOON + 3_600_000);
    let with = |mut o: Order, f: &dyn Fn(&mut Order)| {
        f(&mut o);
        o
    };
    let steps: Vec<Vec<CommerceEvent>> = vec![
        vec![
            CommerceEvent::OrderCreated(order("1", "2026-11-24", 1000, "pending", 0)),
            CommerceEvent::OrderCreated(order("2", "2026-11-24", 2500, "authorized", 0)),
            CommerceEvent::OrderCreated(order("3", "2026-11-23", 700, "paid", 0)),
        ],
        // Paid, with another amount; a stale creation in the same batch changes nothing.
        vec![
            CommerceEvent::OrderPaid(order("1", "2026-11-24", 1200, "paid", 5)),
            CommerceEvent::OrderCreated(order("1", "2026-11-24", 9999, "pending", 1)),
        ],
        // A refund, and a stale event in a later batch.
        vec![
            CommerceEvent::OrderPaid(with(
                order("1", "2026-11-24", 1200, "partially_refunded", 9),
                &|o| o.refunded = Minor(300),
            )),
            CommerceEvent::OrderPaid(order("2", "2026-11-24", 2500, "pending", -1)),
        ],
        // Another currency: the order leaves the EUR row (which goes, with no order left on
        // that day) for a USD one; an event naming another day leaves it on its own day.
        vec![CommerceEvent::OrderPaid(with(
            order("3", "2026-11-25", 800, "paid", 3),
            &|o| o.currency = "USD".into(),
        ))],
        // Voided (neither paid nor pending), refunded in full; a new order the same day.
        vec![
            CommerceEvent::OrderPaid(with(order("1", "2026-11-24", 1200, "refunded", 20), &|o| {
                o.refunded = Minor(1200)
            })),
            CommerceEvent::OrderPaid(order("2", "2026-11-24", 2500, "voided", 20)),
            CommerceEvent::OrderCreated(order("4", "2026-11-23", 50, "pending", 0)),
        ],
    ];
    let mut n = 0;
    for events in steps {
        let mut batch = Vec::new();
        for e in events {
            n += 1;
            batch.push(one(stored(s, &format!("c{n}")).await, e));
        }
        let applied = s.apply_many(&batch, now).await.unwrap();
        assert_eq!(applied.len(), batch.len());
        // Applied again (a retry after a commit): nothing changes.
        assert!(s.apply_many(&batch, now).await.unwrap().is_empty());
        let (kept, recomputed) = roll_ups(s).await;
        assert_eq!(kept, recomputed, "after batch ending with event {n}");
    }
    let (kept, _) = roll_ups(s).await;
    assert_eq!(
        kept,
        vec![
            "lunavo 2026-11-23 EUR: 1 orders, 50 revenue, 0 paid, 1 pending, 0 refunds",
            "lunavo 2026-11-23 USD: 1 orders, 800 revenue, 1 paid, 0 pending, 0 refunds",
            "lunavo 2026-11-24 EUR: 2 orders, 3700 revenue, 1 paid, 0 pending, 1200 refunds",
        ]
    );
}

/// Two processes apply batches at once that change the same orders (and add new ones): no
/// deadlock, each event once, and the roll-ups equal the orders' after every round.
async fn two_processes_changing_the_same_orders_keep_the_roll_ups_exact(db: &Db) {
    let a = db.store.clone();
    let b = Store::open(&db.url).await.unwrap();
    let now = Timestamp::from_millis(NOON + 3_600_000);
    let statuses = ["pending", "paid", "authorized", "refunded", "voided"];
    let mut total = 0;
    for round in 0..6_i64 {
        let mut batches = [Vec::new(), Vec::new()];
        for (p, batch) in batches.iter_mut().enumerate() {
            let p = i64::try_from(p).unwrap();
            // Shared orders, in opposite orders in the two batches: each process's event is
            // newer for half of them.
            for k in 0..10_i64 {
                let k = if p == 0 { k } else { 9 - k };
                let mut o = order(
                    &format!("shared-{k}"),
                    if k % 2 == 0 {
                        "2026-11-24"
                    } else {
                        "2026-11-23"
                    },
                    100 * (round + 1) + k + p,
                    statuses[usize::try_from((round + k + p) % 5).unwrap()],
                    round * 10 + (k + p) % 3,
                );
                o.refunded = Minor(round * p);
                if (round + k) % 4 == 3 {
                    o.currency = "USD".into();
                }
                let key = format!("s{round}-{p}-{k}");
                batch.push(one(stored(&a, &key).await, CommerceEvent::OrderPaid(o)));
            }
            for k in 0..15 {
                let id = format!("new-{round}-{p}-{k}");
                let key = format!("n{round}-{p}-{k}");
                batch.push(one(
                    stored(&a, &key).await,
                    CommerceEvent::OrderCreated(order(&id, "2026-11-24", 10, "paid", 0)),
                ));
            }
            total += batch.len();
        }
        let [first, second] = batches;
        let (x, y) = tokio::join!(a.apply_many(&first, now), b.apply_many(&second, now));
        assert_eq!(x.unwrap().len() + y.unwrap().len(), 50, "round {round}");
        let (kept, recomputed) = roll_ups(&a).await;
        assert_eq!(kept, recomputed, "round {round}");
    }
    assert_eq!(total, 300);
    let k = a.kpis(&ws("lunavo"), 30, now).await.unwrap();
    let orders: i64 = k.days.iter().map(|d| d.orders).sum();
    assert_eq!(orders, 10 + 6 * 2 * 15, "every order counted once");
}

/// A board's reader keeps the days it decoded while the workspace's KPI version stays the
/// same. Every change raises the version in its own transaction, whichever process makes it
/// (here a second store on the same database, as `krake metric push` or another replica),
/// so the next board shows it; a duplicate push or another workspace's change does not.
async fn boards_show_a_change_from_any_process_at_once(db: &Db) {
    use krake_core::kpi::{KpiDesk, KpiReader, KpiSettings, default_kpis};
    use std::collections::BTreeMap;
    use std::sync::Arc;

    let a = db.store.clone();
    let b = Store::open(&db.url).await.unwrap();
    let lunavo = ws("lunavo");
    let monarch = ws("monarch");
    let directory = krake_core::config::Directory::new(
        vec![
            krake_core::workspace::Workspace::from_name("Lunavo").unwrap(),
            krake_core::workspace::Workspace::from_name("Monarch").unwrap(),
        ],
        Vec::new(),
    )
    .unwrap();
    let desk = Arc::new(KpiDesk::new(
        BTreeMap::from([
            (lunavo.clone(), default_kpis("lunavo")),
            (monarch.clone(), default_kpis("monarch")),
        ]),
        KpiSettings::default(),
        Arc::new(a.clone()),
    ));
    let reader = KpiReader::new(
        desk,
        Arc::new(directory),
        Some(Arc::new(a.clone())),
        None,
        Arc::new(krake_core::time::ManualClock::new(Timestamp::from_millis(
            NOON + 3_600_000,
        ))),
        chrono_tz::Europe::Berlin,
    );
    let figure = |board: &krake_core::kpi::Board, key: &str| {
        board
            .figures
            .iter()
            .find(|f| f.key == key)
            .unwrap_or_else(|| panic!("no {key} in {:?}", board.figures))
            .today
    };
    let board = || async { reader.board(&lunavo).await.unwrap().unwrap() };
    let version = |s: Store| async move {
        s.kpi_versions()
            .await
            .unwrap()
            .unwrap()
            .get(&ws("lunavo"))
            .copied()
    };

    assert_eq!(version(a.clone()).await, None, "nothing changed yet");
    assert_eq!(figure(&board().await, "visitors"), None);
    // Read twice: the second answer comes from the kept days and is the same.
    assert_eq!(board().await, board().await);

    let visitors = point("visitors", 120.0, "2026-11-24", NOON, Some("v1"));
    b.record_metrics(&lunavo, std::slice::from_ref(&visitors))
        .await
        .unwrap();
    assert_eq!(version(a.clone()).await, Some(1));
    assert_eq!(figure(&board().await, "visitors"), Some(120.0));

    // The same key again stores nothing and changes no version.
    let p = b.record_metrics(&lunavo, &[visitors]).await.unwrap();
    assert_eq!(p.duplicates, 1);
    assert_eq!(version(a.clone()).await, Some(1));

    // Another workspace's push raises only its own version.
    b.record_metrics(
        &monarch,
        &[point("daily_active_users", 9.0, "2026-11-24", NOON, None)],
    )
    .await
    .unwrap();
    assert_eq!(version(a.clone()).await, Some(1));
    let all = a.kpi_versions().await.unwrap().unwrap();
    assert_eq!(all.get(&monarch), Some(&1));

    // An order applied by the other process: its revenue shows at once.
    assert_eq!(figure(&board().await, "revenue_today"), None);
    let applied = b
        .apply_many(
            &[one(
                stored(&b, "kept-1").await,
                CommerceEvent::OrderPaid(order("kept-1", "2026-11-24", 4_250, "paid", 0)),
            )],
            Timestamp::from_millis(NOON),
        )
        .await
        .unwrap();
    assert_eq!(applied.len(), 1);
    assert_eq!(version(a.clone()).await, Some(2));
    assert_eq!(figure(&board().await, "revenue_today"), Some(42.5));
    assert_eq!(figure(&board().await, "visitors"), Some(120.0));

    // Applying the same event again changes nothing, not even the version.
    let again = b
        .apply_many(
            &[one(
                applied[0],
                CommerceEvent::OrderPaid(order("kept-1", "2026-11-24", 4_250, "paid", 0)),
            )],
            Timestamp::from_millis(NOON),
        )
        .await
        .unwrap();
    assert!(again.is_empty());
    assert_eq!(version(a.clone()).await, Some(2));
}
