//! Group commit of inbound events ([`GroupCommit`]; on SQLite a writer thread with its own
//! connection) and the batch insert it uses on PostgreSQL, on both databases.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[macro_use]
mod common;
use common::Db;

use krake_core::actor::UserName;
use krake_core::inbound::{IdempotencyKey, InboundId, InboundRecord, Recorded};
use krake_core::ports::InboundRepo;
use krake_core::time::Timestamp;
use krake_store::{GroupCommit, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

on_both_db!(
    concurrent_events_are_stored_once_and_answered_after_commit,
    batches_tell_new_from_duplicate,
);

const T0: i64 = 1_795_503_000_000;

fn event(key: &str) -> InboundRecord {
    InboundRecord {
        source: "shopify".into(),
        idempotency_key: IdempotencyKey::parse(key).unwrap(),
        actor: UserName::parse("shopify").unwrap(),
        conversation: "lunavo.myshopify.com".into(),
        content: format!("{{\"key\":\"{key}\"}}"),
        received_at: Timestamp::from_millis(T0),
    }
}

async fn count(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM inbound")
        .fetch_one(store.pool())
        .await
        .unwrap()
}

async fn concurrent_events_are_stored_once_and_answered_after_commit(db: &Db) {
    // One event already stored and processed: its redelivery says so, with the response.
    let Recorded::New(done) = db
        .store
        .record_inbound(&event("shopify:done"))
        .await
        .unwrap()
    else {
        panic!("new")
    };
    db.store
        .complete_inbound(done, Some("ok"), Timestamp::from_millis(T0))
        .await
        .unwrap();

    let group = Arc::new(GroupCommit::start(db.store.clone(), 16));
    let mut tasks = Vec::new();
    for i in 0..300 {
        // Every key twice, concurrently; keys 0..150.
        let key = format!("shopify:wh-{}", i % 150);
        let group = group.clone();
        tasks.push(tokio::spawn(async move {
            let r = group.record_inbound(&event(&key)).await.unwrap();
            (key, r)
        }));
    }
    tasks.push({
        let group = group.clone();
        tokio::spawn(async move {
            let key = "shopify:done".to_owned();
            let r = group.record_inbound(&event(&key)).await.unwrap();
            (key, r)
        })
    });
    let mut by_key: HashMap<String, Vec<Recorded>> = HashMap::new();
    for t in tasks {
        let (key, r) = t.await.unwrap();
        by_key.entry(key).or_default().push(r);
    }
    // Every answered event is committed: a second store on the same database sees them all.
    let other = Store::open(&db.url).await.unwrap();
    assert_eq!(count(&other).await, 151);
    other.pool().close().await;

    for i in 0..150 {
        let rs = &by_key[&format!("shopify:wh-{i}")];
        let new: Vec<InboundId> = rs
            .iter()
            .filter_map(|r| match r {
                Recorded::New(id) => Some(*id),
                _ => None,
            })
            .collect();
        assert_eq!(new.len(), 1, "key {i} is new exactly once: {rs:?}");
        assert!(
            rs.iter().any(|r| matches!(r, Recorded::Duplicate { id, processed: false, response: None } if *id == new[0])),
            "key {i}: the other delivery is a duplicate of the same row: {rs:?}"
        );
    }
    match by_key["shopify:done"].as_slice() {
        [
            Recorded::Duplicate {
                id,
                processed: true,
                response: Some(r),
            },
        ] => assert_eq!((*id, r.as_str()), (done, "ok")),
        other => panic!("{other:?}"),
    }

    // The stored events are claimable work, once.
    let now = Timestamp::from_millis(T0);
    let claimed = group
        .claim_inbound("shopify", "w1", now, Duration::from_secs(30), 1000)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 150);
    assert!(
        group
            .claim_inbound("shopify", "w2", now, Duration::from_secs(30), 1000)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn batches_tell_new_from_duplicate(db: &Db) {
    let s = &db.store;
    let first = s
        .record_inbound_many(&[event("k:1"), event("k:2")])
        .await
        .unwrap();
    let [Recorded::New(one), Recorded::New(two)] = first.as_slice() else {
        panic!("{first:?}")
    };
    s.complete_inbound(*two, Some("done"), Timestamp::from_millis(T0))
        .await
        .unwrap();
    let second = s
        .record_inbound_many(&[
            event("k:3"),
            event("k:1"),
            event("k:3"),
            event("k:2"),
            event("k:1"),
        ])
        .await
        .unwrap();
    let Recorded::New(three) = second[0] else {
        panic!("{second:?}")
    };
    let dup = |r: &Recorded| match r {
        Recorded::Duplicate {
            id,
            processed,
            response,
        } => (*id, *processed, response.clone()),
        other => panic!("{other:?}"),
    };
    assert_eq!(dup(&second[1]), (*one, false, None));
    assert_eq!(
        dup(&second[2]),
        (three, false, None),
        "repeated in the batch"
    );
    assert_eq!(dup(&second[3]), (*two, true, Some("done".into())));
    assert_eq!(dup(&second[4]), (*one, false, None));
    assert_eq!(count(s).await, 3);
}
