//! Agent runs (leases, steps, compare-and-set ends) and the cost ledger, run against a fresh
//! SQLite file and a fresh PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[macro_use]
mod common;
use common::Db;

use krake_core::inbox::ThreadId;
use krake_core::ledger::{CallRecord, CostLedger, RunUsage};
use krake_core::run::{
    Delegated, NewRun, RunFilter, RunId, RunOutcome, RunRepo, RunStatus, RunStep,
};
use krake_core::time::Timestamp;
use krake_core::workspace::WorkspaceSlug;
use krake_store::Store;
use std::time::Duration;

on_both!(
    runs_are_claimed_once_and_resumed_after_a_lease_expires,
    run_ends_are_compare_and_set,
    ledger_sums_per_workspace_agent_day_and_month,
    event_threads_start_one_run_each_once,
    executing_is_claimed_once_and_found_when_stuck,
    a_cancelled_run_stops_its_worker_and_is_audited,
    runs_are_listed_by_workspace_agent_status_and_page,
    a_runs_usage_adds_up_its_model_calls,
    a_delegated_run_is_started_once_and_taken_over_only_when_abandoned
);

const T0: i64 = 1_795_503_000_000; // 2026-11-24

fn new_run(task: &str) -> NewRun {
    NewRun {
        workspace: WorkspaceSlug::parse("lunavo").unwrap(),
        agent: "Penn".into(),
        task: task.into(),
        trigger: "command".into(),
        requested_by: "ana".into(),
        parent: None,
        feedback: None,
        answer_to: None,
    }
}

async fn runs_are_claimed_once_and_resumed_after_a_lease_expires(store: &Store) {
    let t0 = Timestamp::from_millis(T0);
    let a = store.create_run(&new_run("tagline"), t0).await.unwrap();
    let b = store.create_run(&new_run("post"), t0).await.unwrap();
    assert_eq!(a.status, RunStatus::Queued);
    let lease = Duration::from_secs(60);
    let claimed = store.claim_runs("w1", t0, lease, 10).await.unwrap();
    assert_eq!(
        claimed.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![a.id, b.id]
    );
    assert!(
        claimed
            .iter()
            .all(|r| r.attempts == 1 && r.status == RunStatus::Running)
    );
    // Leased: nobody else gets them.
    assert!(
        store
            .claim_runs("w2", t0, lease, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A step renews the lease of a; b's worker died.
    let t1 = t0.plus(Duration::from_secs(50));
    store
        .add_step(
            a.id,
            &RunStep {
                at: t1,
                kind: "model".into(),
                detail: "p / m".into(),
            },
            t1.plus(lease),
        )
        .await
        .unwrap();
    let t2 = t0.plus(Duration::from_secs(61));
    let again = store.claim_runs("w2", t2, lease, 10).await.unwrap();
    assert_eq!(again.len(), 1, "only the run whose lease ran out");
    assert_eq!(again[0].id, b.id);
    assert_eq!(again[0].attempts, 2);
    let a = store.run(a.id).await.unwrap().unwrap();
    assert_eq!(a.steps.len(), 1);
    assert_eq!(a.steps[0].detail, "p / m");
}

async fn run_ends_are_compare_and_set(store: &Store) {
    let t0 = Timestamp::from_millis(T0);
    let a = store.create_run(&new_run("refund"), t0).await.unwrap();
    store
        .claim_runs("w", t0, Duration::from_secs(5), 1)
        .await
        .unwrap();
    let wait = RunOutcome {
        status: RunStatus::AwaitingApproval,
        result: Some("refund 19.99".into()),
        error: None,
        thread: Some(ThreadId(77)),
    };
    assert!(
        store
            .finish_run(a.id, RunStatus::Running, &wait, t0)
            .await
            .unwrap()
    );
    assert!(
        !store
            .finish_run(a.id, RunStatus::Running, &wait, t0)
            .await
            .unwrap(),
        "a second end from `running` changes nothing"
    );
    let found = store.run_for_thread(ThreadId(77)).await.unwrap().unwrap();
    assert_eq!(found.id, a.id);
    assert_eq!(found.status, RunStatus::AwaitingApproval);
    let done = RunOutcome {
        status: RunStatus::Done,
        result: None,
        error: None,
        thread: None,
    };
    assert!(
        store
            .finish_run(a.id, RunStatus::AwaitingApproval, &done, t0)
            .await
            .unwrap()
    );
    let a = store.run(a.id).await.unwrap().unwrap();
    assert_eq!(a.status, RunStatus::Done);
    assert_eq!(a.result.as_deref(), Some("refund 19.99"), "kept");
    assert_eq!(a.thread, Some(ThreadId(77)));
    // Finished runs are never claimed again, even long after.
    assert!(
        store
            .claim_runs(
                "w",
                t0.plus(Duration::from_secs(3600)),
                Duration::from_secs(5),
                10
            )
            .await
            .unwrap()
            .is_empty()
    );
    let listed = store
        .list_runs(&RunFilter {
            workspace: Some(WorkspaceSlug::parse("lunavo").unwrap()),
            ..RunFilter::recent(10)
        })
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
}

async fn ledger_sums_per_workspace_agent_day_and_month(store: &Store) {
    let lunavo = WorkspaceSlug::parse("lunavo").unwrap();
    let monarch = WorkspaceSlug::parse("monarch").unwrap();
    let call = |ws: &WorkspaceSlug, agent: &str, at: i64, cost: i64| CallRecord {
        run: Some(1),
        workspace: ws.clone(),
        agent: agent.into(),
        provider: "openai".into(),
        model: "gpt-x".into(),
        input_tokens: 1000,
        output_tokens: 200,
        cost_micros: cost,
        at: Timestamp::from_millis(at),
    };
    let day = 86_400_000;
    let dec = 1_796_083_200_000; // 2026-12-01
    for c in [
        call(&lunavo, "Penn", T0, 1500),
        call(&lunavo, "Penn", T0 + day, 500),
        call(&lunavo, "Soshie", T0, 250),
        call(&monarch, "Penn", T0, 99),
        call(&lunavo, "Penn", dec, 7000),
    ] {
        store.record_call(&c).await.unwrap();
    }
    assert_eq!(store.spent(&lunavo, None, "2026-11").await.unwrap(), 2250);
    assert_eq!(
        store.spent(&lunavo, Some("PENN"), "2026-11").await.unwrap(),
        2000
    );
    assert_eq!(store.spent_by_agent("penn", "2026-11").await.unwrap(), 2099);
    assert_eq!(store.spent(&lunavo, None, "2026-12").await.unwrap(), 7000);
    assert_eq!(store.spent(&monarch, None, "2026-10").await.unwrap(), 0);
    let r = store.report(Some(&lunavo), "2026-11").await.unwrap();
    assert_eq!(r.total.calls, 3);
    assert_eq!(r.total.input_tokens, 3000);
    assert_eq!(r.total.cost_micros, 2250);
    assert_eq!(r.by_agent["Penn"].cost_micros, 2000);
    assert_eq!(r.by_day["2026-11-24"].cost_micros, 1750);
    assert_eq!(r.by_day["2026-11-25"].cost_micros, 500);
    let all = store.report(None, "2026-11").await.unwrap();
    assert_eq!(all.total.cost_micros, 2349);
    assert_eq!(all.by_workspace["monarch"].calls, 1);
    // The month's roll-up (what budget checks read) merges an agent's name in any case.
    store
        .record_call(&call(&lunavo, "pENN", T0, 1))
        .await
        .unwrap();
    assert_eq!(
        store.spent(&lunavo, Some("Penn"), "2026-11").await.unwrap(),
        2001
    );
    assert_eq!(store.spent_by_agent("PENN", "2026-11").await.unwrap(), 2100);
    assert_eq!(store.spent(&lunavo, None, "2026-11").await.unwrap(), 2251);
}

async fn event_threads_start_one_run_each_once(store: &Store) {
    use krake_core::actor::Actor;
    use krake_core::inbox::{NewThread, ThreadKind};
    use krake_core::ports::{InboxRepo, WriteCtx};
    let t0 = Timestamp::from_millis(T0);
    let ctx = WriteCtx {
        actor: Actor::system(),
        inbound: None,
        now: t0,
    };
    let ws = WorkspaceSlug::parse("lunavo").unwrap();
    let mut thank = NewThread::new(
        ws.clone(),
        ThreadKind::Approval,
        "Thank-you note for order #1042",
        "Ana bought a hoodie.",
    );
    thank.agent = Some("Cassie".into());
    thank.origin_key = Some("inbound:7:rule:0".into());
    store.create(&thank, &ctx).await.unwrap();
    let mut nobody = NewThread::new(ws.clone(), ThreadKind::Escalation, "Print failed", "");
    nobody.origin_key = Some("inbound:8:rule:1".into());
    store.create(&nobody, &ctx).await.unwrap();
    let mut other = NewThread::new(ws.clone(), ThreadKind::Question, "Task for Dexter", "");
    other.agent = Some("Dexter".into());
    other.origin_key = Some("schedule:1:5:due".into());
    store.create(&other, &ctx).await.unwrap();
    let later = t0.plus(Duration::from_secs(1));
    let ids = store
        .queue_from_threads("inbound:", t0, later, 10)
        .await
        .unwrap();
    assert_eq!(ids.len(), 1, "only the rule thread with an agent");
    let run = store.run(ids[0]).await.unwrap().unwrap();
    assert_eq!(run.agent, "Cassie");
    assert_eq!(run.trigger, "event");
    assert_eq!(run.status, RunStatus::Queued);
    assert_eq!(
        run.task,
        "Thank-you note for order #1042\nAna bought a hoodie."
    );
    assert!(
        store
            .queue_from_threads("inbound:", t0, later, 10)
            .await
            .unwrap()
            .is_empty(),
        "once"
    );
    assert!(
        store
            .queue_from_threads("inbound:", later, later, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// An approved action is claimed for execution by compare-and-set (only one of several
/// concurrent callers wins), is never claimed as work, and a run stuck executing is found by
/// the recovery query once its last change is old enough.
async fn executing_is_claimed_once_and_found_when_stuck(store: &Store) {
    let t0 = Timestamp::from_millis(T0);
    let a = store.create_run(&new_run("refund"), t0).await.unwrap();
    store
        .claim_runs("w", t0, Duration::from_secs(5), 1)
        .await
        .unwrap();
    let wait = RunOutcome {
        status: RunStatus::AwaitingApproval,
        result: Some("refund 19.99".into()),
        error: None,
        thread: Some(ThreadId(5)),
    };
    assert!(
        store
            .finish_run(a.id, RunStatus::Running, &wait, t0)
            .await
            .unwrap()
    );
    let executing = RunOutcome {
        status: RunStatus::Executing,
        result: None,
        error: None,
        thread: Some(ThreadId(5)),
    };
    let t1 = t0.plus(Duration::from_secs(10));
    let (x, y, z) = tokio::join!(
        store.finish_run(a.id, RunStatus::AwaitingApproval, &executing, t1),
        store.finish_run(a.id, RunStatus::AwaitingApproval, &executing, t1),
        store.finish_run(a.id, RunStatus::AwaitingApproval, &executing, t1)
    );
    let wins = [x.unwrap(), y.unwrap(), z.unwrap()];
    assert_eq!(wins.iter().filter(|w| **w).count(), 1, "{wins:?}");
    // Never handed to a worker as work, however late.
    assert!(
        store
            .claim_runs(
                "w",
                t1.plus(Duration::from_secs(3600)),
                Duration::from_secs(5),
                10
            )
            .await
            .unwrap()
            .is_empty()
    );
    let stuck = |before| store.runs_with_status(RunStatus::Executing, before, 10);
    assert!(stuck(t0).await.unwrap().is_empty(), "changed after t0");
    let found = stuck(t1).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, a.id);
    assert_eq!(found[0].status, RunStatus::Executing);
    assert_eq!(found[0].thread, Some(ThreadId(5)));
    assert!(
        store
            .runs_with_status(RunStatus::AwaitingApproval, t1, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Cancelling is a compare-and-set from queued, running or awaiting approval, with a step
/// saying who and why; the worker's next step learns it and a cancelled run is never claimed.
async fn a_cancelled_run_stops_its_worker_and_is_audited(store: &Store) {
    let t0 = Timestamp::from_millis(T0);
    let a = store.create_run(&new_run("draft"), t0).await.unwrap();
    let claimed = store
        .claim_runs("w1", t0, Duration::from_secs(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let step = |kind: &str| RunStep {
        at: t0,
        kind: kind.into(),
        detail: "x".into(),
    };
    assert!(
        store.add_step(a.id, &step("model"), t0).await.unwrap(),
        "running"
    );
    let c = store
        .cancel_run(a.id, "ana", Some("wrong brief"), t0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.status, RunStatus::Cancelled);
    assert_eq!(c.error.as_deref(), Some("cancelled by ana: wrong brief"));
    let last = c.steps.last().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.detail.as_str()),
        ("cancelled", "cancelled by ana: wrong brief")
    );
    // The worker's next step is told it is no longer running.
    assert!(!store.add_step(a.id, &step("tool"), t0).await.unwrap());
    // Its end from `running` changes nothing, and it is never claimed again.
    let done = RunOutcome {
        status: RunStatus::Done,
        result: Some("posted".into()),
        error: None,
        thread: None,
    };
    assert!(
        !store
            .finish_run(a.id, RunStatus::Running, &done, t0)
            .await
            .unwrap()
    );
    let later = t0.plus(Duration::from_secs(3600));
    assert!(
        store
            .claim_runs("w2", later, Duration::from_secs(30), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // A second cancel changes nothing and adds no step.
    let steps = store.run(a.id).await.unwrap().unwrap().steps.len();
    let again = store
        .cancel_run(a.id, "bo", None, later)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        again.error.as_deref(),
        Some("cancelled by ana: wrong brief")
    );
    assert_eq!(again.steps.len(), steps);
    // A finished run cannot be cancelled; no such run is `None`.
    let b = store.create_run(&new_run("other"), t0).await.unwrap();
    let ended = RunOutcome {
        status: RunStatus::Done,
        result: None,
        error: None,
        thread: None,
    };
    assert!(
        store
            .finish_run(b.id, RunStatus::Queued, &ended, t0)
            .await
            .unwrap()
    );
    let b2 = store
        .cancel_run(b.id, "ana", None, t0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b2.status, RunStatus::Done);
    assert!(
        store
            .cancel_run(RunId(9999), "ana", None, t0)
            .await
            .unwrap()
            .is_none()
    );
}

async fn runs_are_listed_by_workspace_agent_status_and_page(store: &Store) {
    let t0 = Timestamp::from_millis(T0);
    let lunavo = WorkspaceSlug::parse("lunavo").unwrap();
    let monarch = WorkspaceSlug::parse("monarch").unwrap();
    let mut ids = Vec::new();
    for (ws, agent) in [
        (&lunavo, "Penn"),
        (&lunavo, "Soshie"),
        (&monarch, "Penn"),
        (&lunavo, "Penn"),
    ] {
        let r = store
            .create_run(
                &NewRun {
                    workspace: ws.clone(),
                    agent: agent.into(),
                    ..new_run("t")
                },
                t0,
            )
            .await
            .unwrap();
        ids.push(r.id);
    }
    store.cancel_run(ids[0], "ana", None, t0).await.unwrap();
    let list = |f: RunFilter| async move {
        store
            .list_runs(&f)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list(RunFilter::recent(10)).await,
        vec![ids[3], ids[2], ids[1], ids[0]]
    );
    assert_eq!(
        list(RunFilter {
            agent: Some("penn".into()),
            ..RunFilter::recent(10)
        })
        .await,
        vec![ids[3], ids[2], ids[0]],
        "any spelling of the agent"
    );
    assert_eq!(
        list(RunFilter {
            visible: Some(vec![lunavo.clone()]),
            agent: Some("Penn".into()),
            ..RunFilter::recent(10)
        })
        .await,
        vec![ids[3], ids[0]]
    );
    assert_eq!(
        list(RunFilter {
            status: Some(RunStatus::Cancelled),
            ..RunFilter::recent(10)
        })
        .await,
        vec![ids[0]]
    );
    assert_eq!(
        list(RunFilter {
            workspace: Some(lunavo.clone()),
            before: Some(ids[3]),
            ..RunFilter::recent(1)
        })
        .await,
        vec![ids[1]]
    );
    assert!(
        list(RunFilter {
            visible: Some(Vec::new()),
            ..RunFilter::recent(10)
        })
        .await
        .is_empty()
    );
}

async fn a_runs_usage_adds_up_its_model_calls(store: &Store) {
    let lunavo = WorkspaceSlug::parse("lunavo").unwrap();
    let call = |run: Option<i64>, tokens: u64, cost: i64| CallRecord {
        run,
        workspace: lunavo.clone(),
        agent: "Penn".into(),
        provider: "openai".into(),
        model: "gpt-x".into(),
        input_tokens: tokens,
        output_tokens: tokens / 10,
        cost_micros: cost,
        at: Timestamp::from_millis(T0),
    };
    for c in [
        call(Some(7), 1000, 150),
        call(Some(7), 500, 50),
        call(Some(8), 9, 9),
        call(None, 9, 9),
    ] {
        store.record_call(&c).await.unwrap();
    }
    assert_eq!(
        store.run_usage(7).await.unwrap(),
        RunUsage {
            calls: 2,
            input_tokens: 1500,
            output_tokens: 150,
            cost_micros: 200
        }
    );
    assert_eq!(store.run_usage(99).await.unwrap(), RunUsage::default());
}

async fn a_delegated_run_is_started_once_and_taken_over_only_when_abandoned(store: &Store) {
    let t0 = Timestamp::from_millis(T0);
    let lease = Duration::from_secs(60);
    let parent = store.create_run(&new_run("launch"), t0).await.unwrap();
    let child = NewRun {
        agent: "Milli".into(),
        trigger: "delegation".into(),
        requested_by: "Penn".into(),
        parent: Some(parent.id),
        ..new_run("which colour sells?")
    };
    let key = "delegate:1:milli:00000000000000ab";
    let Delegated::Started(first) = store
        .start_delegated(&child, key, "delegate:1", t0, lease)
        .await
        .unwrap()
    else {
        panic!("a new child starts")
    };
    assert_eq!((first.status, first.attempts), (RunStatus::Running, 1));
    assert_eq!(first.parent, Some(parent.id));
    // Workers never claim it: its parent drives it (only the parent is claimed here).
    let claimed = store.claim_runs("w1", t0, lease, 10).await.unwrap();
    assert_eq!(
        claimed.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![parent.id]
    );
    // While its lease lives, a second start finds it and does not take it.
    let again = store
        .start_delegated(
            &child,
            key,
            "delegate:1",
            t0.plus(Duration::from_secs(10)),
            lease,
        )
        .await
        .unwrap();
    assert!(
        matches!(&again, Delegated::Existing(r) if r.id == first.id && r.status == RunStatus::Running),
        "{again:?}"
    );
    // Abandoned (the process died): a resumed parent takes it over, as another attempt.
    let later = t0.plus(Duration::from_secs(61));
    let Delegated::Started(taken) = store
        .start_delegated(&child, key, "delegate:1", later, lease)
        .await
        .unwrap()
    else {
        panic!("an abandoned child is taken over")
    };
    assert_eq!((taken.id, taken.attempts), (first.id, 2));
    assert!(
        store
            .claim_runs("w2", later.plus(lease).plus(lease), lease, 10)
            .await
            .unwrap()
            .iter()
            .all(|r| r.id != first.id),
        "not even with its lease run out"
    );
    // Ended: found with its result, never run again.
    store
        .finish_run(
            first.id,
            RunStatus::Running,
            &RunOutcome {
                status: RunStatus::Done,
                result: Some("navy".into()),
                error: None,
                thread: None,
            },
            later,
        )
        .await
        .unwrap();
    let done = store
        .start_delegated(
            &child,
            key,
            "delegate:1",
            later.plus(lease).plus(lease),
            lease,
        )
        .await
        .unwrap();
    assert!(
        matches!(&done, Delegated::Existing(r) if r.status == RunStatus::Done && r.result.as_deref() == Some("navy")),
        "{done:?}"
    );
    let kids = store
        .list_runs(&RunFilter {
            parent: Some(parent.id),
            ..RunFilter::recent(10)
        })
        .await
        .unwrap();
    assert_eq!(kids.len(), 1, "one child, however often it was started");
}
