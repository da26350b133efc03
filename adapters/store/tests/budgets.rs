//! Budgets across processes: holds for model calls in flight live beside the ledger, so two
//! processes (two connection pools on one database) racing for the last dollar cannot both pass
//! the check. Run against a fresh SQLite file and a fresh PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[macro_use]
mod common;
use common::Db;

use krake_core::ledger::{BudgetHold, BudgetScope, CallRecord, CostLedger, OverBudget, month_of};
use krake_core::time::Timestamp;
use krake_core::workspace::WorkspaceSlug;
use krake_store::Store;

on_both_db!(
    processes_racing_for_the_last_dollar_hold_it_once,
    holds_are_released_expire_and_count_per_agent_across_workspaces
);

const T0: i64 = 1_795_503_000_000; // 2026-11-24

fn ws(s: &str) -> WorkspaceSlug {
    WorkspaceSlug::parse(s).unwrap()
}

fn hold(id: &str, workspace: &str, agent: &str, amount: i64, at: i64) -> BudgetHold {
    BudgetHold {
        id: id.into(),
        workspace: ws(workspace),
        agent: agent.into(),
        month: month_of(Timestamp::from_millis(T0)),
        amount,
        workspace_budget: Some(1_000_000),
        agent_budget: None,
        now: Timestamp::from_millis(at),
        expires: Timestamp::from_millis(at + 60_000),
    }
}

fn spent(workspace: &str, agent: &str, cost: i64) -> CallRecord {
    CallRecord {
        run: None,
        workspace: ws(workspace),
        agent: agent.into(),
        provider: "openai".into(),
        model: "gpt-x".into(),
        input_tokens: 100,
        output_tokens: 10,
        cost_micros: cost,
        at: Timestamp::from_millis(T0),
    }
}

async fn processes_racing_for_the_last_dollar_hold_it_once(db: &Db) {
    // A second process: its own connection pool on the same database.
    let other = Store::open(&db.url).await.unwrap();
    // $0.50 of lunavo's $1.00 is spent; 40 calls, half from each process, want $0.10 each.
    db.store
        .record_call(&spent("lunavo", "penn", 500_000))
        .await
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..40 {
        let s = if i % 2 == 0 {
            db.store.clone()
        } else {
            other.clone()
        };
        tasks.spawn(async move {
            let h = hold(&format!("call-{i}"), "lunavo", "penn", 100_000, T0);
            s.hold(&h).await.unwrap().is_ok()
        });
    }
    let mut passed = 0;
    while let Some(ok) = tasks.join_next().await {
        passed += usize::from(ok.unwrap());
    }
    assert_eq!(passed, 5, "exactly the five calls that fit");
    // The next one is told what is spent and what calls in flight hold.
    let over = other
        .hold(&hold("late", "lunavo", "penn", 1, T0))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        over,
        OverBudget {
            scope: BudgetScope::Workspace,
            budget: 1_000_000,
            spent: 500_000,
            held: 500_000,
        }
    );
}

async fn holds_are_released_expire_and_count_per_agent_across_workspaces(db: &Db) {
    let s = &db.store;
    let first = hold("a", "lunavo", "penn", 600_000, T0);
    assert!(s.hold(&first).await.unwrap().is_ok());
    assert!(
        s.hold(&hold("b", "lunavo", "penn", 600_000, T0))
            .await
            .unwrap()
            .is_err()
    );
    // Charged, then released: the spend counts instead of the hold.
    s.record_call(&spent("lunavo", "penn", 550_000))
        .await
        .unwrap();
    s.release_hold("a").await.unwrap();
    assert!(
        s.hold(&hold("c", "lunavo", "penn", 400_000, T0))
            .await
            .unwrap()
            .is_ok()
    );
    // A hold whose process died stops counting when it expires.
    let later = T0 + 61_000;
    assert!(
        s.hold(&hold("d", "lunavo", "penn", 400_000, later))
            .await
            .unwrap()
            .is_ok(),
        "c expired"
    );
    // Another month's holds and other workspaces do not count for lunavo.
    let mut monarch = hold("e", "monarch", "penn", 900_000, later);
    assert!(s.hold(&monarch).await.unwrap().is_ok());
    // An agent's budget counts its holds in every workspace.
    monarch.id = "f".into();
    monarch.amount = 100_000;
    monarch.workspace_budget = None;
    monarch.agent_budget = Some(1_500_000);
    let over = s.hold(&monarch).await.unwrap().unwrap_err();
    assert_eq!(over.scope, BudgetScope::Agent);
    assert_eq!((over.spent, over.held), (550_000, 1_300_000));
    monarch.agent = "milli".into();
    assert!(s.hold(&monarch).await.unwrap().is_ok(), "another agent");
}
