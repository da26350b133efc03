//! The agent worker that `krake serve` runs: it works on queued runs, up to a number at once,
//! remembers finished ones as knowledge, and turns event-rule threads into runs; and the
//! recovery pass of executed actions, at start and at an interval. Both loops read "now" from
//! an injected [`Clock`] and reach the run engine through the small [`RunQueue`] port, which
//! [`Runner`] implements.

use crate::knowledge::{KnowledgeError, RunMemory};
use crate::ports::RepoError;
use crate::run::{Recovered, Run, RunId, RunStatus, Runner};
use crate::time::{Clock, Timestamp};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What the worker asks of the run engine.
#[async_trait]
pub trait RunQueue: Send + Sync {
    /// Whether a model is configured (without one, nothing runs).
    fn has_model(&self) -> bool;
    /// Queues runs for the threads event rules opened for an agent since `since`.
    async fn queue_event_tasks(&self, since: Timestamp) -> Result<usize, RepoError>;
    /// Leases up to `limit` runs to `owner`.
    async fn claim(&self, owner: &str, limit: u32) -> Result<Vec<Run>, RepoError>;
    /// Works on a claimed run until it ends or waits; its status then.
    async fn execute(&self, run: Run) -> Result<RunStatus, RepoError>;
    /// Resolves when a run is queued in this process.
    async fn queued(&self);
    /// One run.
    async fn run(&self, id: RunId) -> Result<Option<Run>, RepoError>;
    /// The most recent runs, newest first.
    async fn recent_runs(&self, limit: u32) -> Result<Vec<Run>, RepoError>;
    /// The recovery pass of executed actions and unhandled decisions.
    async fn recover(&self) -> Result<Recovered, RepoError>;
}

#[async_trait]
impl RunQueue for Runner {
    fn has_model(&self) -> bool {
        Runner::has_model(self)
    }
    async fn queue_event_tasks(&self, since: Timestamp) -> Result<usize, RepoError> {
        Runner::queue_event_tasks(self, since).await
    }
    async fn claim(&self, owner: &str, limit: u32) -> Result<Vec<Run>, RepoError> {
        Runner::claim(self, owner, limit).await
    }
    async fn execute(&self, run: Run) -> Result<RunStatus, RepoError> {
        Runner::execute(self, run).await
    }
    async fn queued(&self) {
        Runner::queued(self).await;
    }
    async fn run(&self, id: RunId) -> Result<Option<Run>, RepoError> {
        self.runs().run(id).await
    }
    async fn recent_runs(&self, limit: u32) -> Result<Vec<Run>, RepoError> {
        self.runs()
            .list_runs(&crate::run::RunFilter::recent(limit))
            .await
    }
    async fn recover(&self) -> Result<Recovered, RepoError> {
        Runner::recover(self).await
    }
}

/// Told of every run that ended in this worker: its agent and status (metrics).
pub type RunEnded = Arc<dyn Fn(&str, RunStatus) + Send + Sync>;

/// How long event-rule threads from before the start still become runs (a crash between an
/// event and its run is covered; older threads stay for people).
pub const EVENT_WINDOW: Duration = Duration::from_secs(3600);
/// How often the recent finished runs are remembered (those an approval finished outside
/// the worker included).
pub const MEMORY_EVERY: Duration = Duration::from_secs(300);
/// Runs the memory pass reads.
const MEMORY_RECENT: u32 = 200;
/// The longest the worker waits before it looks for work again (another process, `krake
/// chat`, may have queued a run; a crashed worker's run comes back when its lease ends).
const POLL: Duration = Duration::from_secs(1);
/// The wait after claiming failed.
const CLAIM_RETRY: Duration = Duration::from_secs(2);

/// Works on queued runs until stopped, up to `concurrency` at once: a free slot claims the next
/// run right away (a slow run never holds back the others). It looks for work when a run is
/// queued in this process, when a run ends, and every second.
pub struct Worker {
    queue: Arc<dyn RunQueue>,
    clock: Arc<dyn Clock>,
    concurrency: u32,
    memory: Option<RunMemory>,
    ended: Option<RunEnded>,
    owner: String,
}

impl Worker {
    /// A worker on `queue`, `concurrency` runs at once (at least one).
    pub fn new(queue: Arc<dyn RunQueue>, clock: Arc<dyn Clock>, concurrency: u32) -> Self {
        Self {
            queue,
            clock,
            concurrency: concurrency.max(1),
            memory: None,
            ended: None,
            owner: format!("agents-{}", std::process::id()),
        }
    }

    /// Finished runs are remembered in `memory`.
    pub fn with_memory(mut self, memory: RunMemory) -> Self {
        self.memory = Some(memory);
        self
    }

    /// `ended` is told of every run that ends here.
    pub fn on_ended(mut self, ended: RunEnded) -> Self {
        self.ended = Some(ended);
        self
    }

    /// The lease owner's name (default `agents-PID`).
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = owner.into();
        self
    }

    /// Runs until `stop` changes (or at once without a model). Runs in flight are dropped at
    /// their current step; unfinished ones resume elsewhere after their lease.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let Self {
            queue,
            clock,
            concurrency,
            memory,
            ended: on_ended,
            owner,
        } = self;
        if !queue.has_model() {
            return;
        }
        let since = Timestamp::from_millis(
            clock
                .now()
                .as_millis()
                .saturating_sub(EVENT_WINDOW.as_millis() as i64),
        );
        let slots = Arc::new(tokio::sync::Semaphore::new(concurrency as usize));
        let ended = Arc::new(tokio::sync::Notify::new());
        let mut running = tokio::task::JoinSet::new();
        let mut last_memory_pass: Option<Timestamp> = None;
        loop {
            while running.try_join_next().is_some() {}
            let now = clock.now();
            if let Some(m) = &memory
                && last_memory_pass.is_none_or(|t| {
                    now.as_millis().saturating_sub(t.as_millis()) >= MEMORY_EVERY.as_millis() as i64
                })
            {
                last_memory_pass = Some(now);
                let (m, q) = (m.clone(), queue.clone());
                running.spawn(async move {
                    let done = match q.recent_runs(MEMORY_RECENT).await {
                        Ok(runs) => m.remember(&runs).await,
                        Err(e) => Err(KnowledgeError::from(e)),
                    };
                    if let Err(e) = done {
                        tracing::warn!(error = %e, "remembering agent results failed; will retry");
                    }
                });
            }
            if let Err(e) = queue.queue_event_tasks(since).await {
                tracing::warn!(error = %e, "queueing runs for events failed; will retry");
            }
            let free = u32::try_from(slots.available_permits()).unwrap_or(0);
            let mut wait = POLL;
            if free > 0 {
                match queue.claim(&owner, free).await {
                    Ok(runs) => {
                        if !runs.is_empty() {
                            wait = Duration::ZERO;
                        }
                        for run in runs {
                            let Ok(permit) = slots.clone().try_acquire_owned() else {
                                break;
                            };
                            let (q, done, m, e) = (
                                queue.clone(),
                                ended.clone(),
                                memory.clone(),
                                on_ended.clone(),
                            );
                            running.spawn(async move {
                                let (id, agent) = (run.id, run.agent.clone());
                                match q.execute(run).await {
                                    Ok(status) => {
                                        if let Some(e) = e {
                                            e(&agent, status);
                                        }
                                        if let Some(m) = m
                                            && status == RunStatus::Done
                                        {
                                            remember(q.as_ref(), &m, id).await;
                                        }
                                    }
                                    Err(e) => {
                                        tracing::warn!(run = id.0, error = %e, "run interrupted by a storage error; it resumes after its lease");
                                    }
                                }
                                drop(permit);
                                done.notify_one();
                            });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming agent runs failed; will retry");
                        wait = CLAIM_RETRY;
                    }
                }
            }
            if *stop.borrow() {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = queue.queued() => {}
                _ = ended.notified() => {}
                _ = stop.changed() => break,
            }
        }
        // Runs in flight finish their current step's work; unfinished ones resume elsewhere.
        running.abort_all();
        while running.join_next().await.is_some() {}
    }
}

/// Ingests a finished run's result as long-term memory (logged, never fatal: the run is done).
async fn remember(queue: &dyn RunQueue, memory: &RunMemory, id: RunId) {
    let run = match queue.run(id).await {
        Ok(Some(run)) => run,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(run = id.0, error = %e, "cannot read the finished run to remember it");
            return;
        }
    };
    if let Err(e) = memory.remember(std::slice::from_ref(&run)).await {
        tracing::warn!(run = id.0, error = %e, "remembering the run's result failed; a later pass retries");
    }
}

/// The recovery pass of executed actions, at start and every `every` until `stop` changes:
/// actions left `executing` past the run lease (a crash while calling out) are failed and
/// escalated, never tried again; decisions taken but never handled (a crash right after
/// approving) are handled. Runs with or without a model (a run may have been left by an
/// earlier start).
pub async fn recover_every(
    queue: Arc<dyn RunQueue>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match queue.recover().await {
            Ok(r) if r != Recovered::default() => {
                tracing::warn!(
                    interrupted = r.interrupted.len(),
                    decided = r.decided.len(),
                    expired = r.expired.len(),
                    "recovered actions"
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "the recovery pass of actions failed; will retry")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::knowledge::MemoryKnowledge;
    use crate::knowledge::documents::tests::run as run_of;
    use crate::time::ManualClock;
    use std::collections::{BTreeMap, VecDeque};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::{Notify, Semaphore};

    /// A run queue in memory: queued runs wait to be claimed; `execute` waits for the gate
    /// and ends each run with the status planned for it.
    #[derive(Default)]
    struct FakeQueue {
        no_model: bool,
        queued: Mutex<VecDeque<Run>>,
        planned: Mutex<BTreeMap<i64, (RunStatus, Option<String>)>>,
        runs: Mutex<BTreeMap<i64, Run>>,
        gate: Option<Semaphore>,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
        executed: AtomicUsize,
        claims: Mutex<Vec<(u32, tokio::time::Instant)>>,
        fail_claims: AtomicUsize,
        since: Mutex<Vec<Timestamp>>,
        recent_calls: AtomicUsize,
        recoveries: Mutex<Vec<tokio::time::Instant>>,
        wake: Notify,
    }

    impl FakeQueue {
        fn gated() -> Self {
            Self {
                gate: Some(Semaphore::new(0)),
                ..Self::default()
            }
        }

        fn add(&self, id: i64, ends: RunStatus, result: Option<&str>) {
            let run = run_of(id, RunStatus::Queued, None);
            self.runs.lock().expect("lock").insert(id, run.clone());
            self.planned
                .lock()
                .expect("lock")
                .insert(id, (ends, result.map(str::to_owned)));
            self.queued.lock().expect("lock").push_back(run);
        }

        fn release(&self, n: usize) {
            if let Some(g) = &self.gate {
                g.add_permits(n);
            }
        }
    }

    #[async_trait]
    impl RunQueue for FakeQueue {
        fn has_model(&self) -> bool {
            !self.no_model
        }
        async fn queue_event_tasks(&self, since: Timestamp) -> Result<usize, RepoError> {
            self.since.lock().expect("lock").push(since);
            Ok(0)
        }
        async fn claim(&self, _owner: &str, limit: u32) -> Result<Vec<Run>, RepoError> {
            self.claims
                .lock()
                .expect("lock")
                .push((limit, tokio::time::Instant::now()));
            if self
                .fail_claims
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(RepoError::Unavailable("database down".into()));
            }
            let mut q = self.queued.lock().expect("lock");
            let n = q.len().min(limit as usize);
            Ok(q.drain(..n).collect())
        }
        async fn execute(&self, run: Run) -> Result<RunStatus, RepoError> {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            struct Leave<'a>(&'a AtomicUsize);
            impl Drop for Leave<'_> {
                fn drop(&mut self) {
                    self.0.fetch_sub(1, Ordering::SeqCst);
                }
            }
            let _leave = Leave(&self.in_flight);
            if let Some(g) = &self.gate {
                g.acquire().await.expect("gate").forget();
            }
            let (status, result) = self.planned.lock().expect("lock")[&run.id.0].clone();
            let mut runs = self.runs.lock().expect("lock");
            let stored = runs.get_mut(&run.id.0).expect("run");
            stored.status = status;
            stored.result = result;
            self.executed.fetch_add(1, Ordering::SeqCst);
            Ok(status)
        }
        async fn queued(&self) {
            self.wake.notified().await;
        }
        async fn run(&self, id: RunId) -> Result<Option<Run>, RepoError> {
            Ok(self.runs.lock().expect("lock").get(&id.0).cloned())
        }
        async fn recent_runs(&self, limit: u32) -> Result<Vec<Run>, RepoError> {
            self.recent_calls.fetch_add(1, Ordering::SeqCst);
            Ok(self
                .runs
                .lock()
                .expect("lock")
                .values()
                .rev()
                .take(limit as usize)
                .cloned()
                .collect())
        }
        async fn recover(&self) -> Result<Recovered, RepoError> {
            self.recoveries
                .lock()
                .expect("lock")
                .push(tokio::time::Instant::now());
            Ok(Recovered::default())
        }
    }

    /// Waits (in paused virtual time) until `cond` holds.
    async fn until(what: &str, cond: impl Fn() -> bool) {
        for _ in 0..10_000 {
            if cond() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never happened: {what}");
    }

    fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::new(Timestamp::from_millis(1_700_000_000_000)))
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_model_the_worker_ends_at_once_and_claims_nothing() {
        let q = Arc::new(FakeQueue {
            no_model: true,
            ..FakeQueue::default()
        });
        q.add(1, RunStatus::Done, Some("ok"));
        let (_stop, rx) = watch::channel(false);
        Worker::new(q.clone(), clock(), 4).run(rx).await;
        assert!(q.claims.lock().expect("lock").is_empty());
        assert_eq!(q.executed.load(Ordering::SeqCst), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn at_most_concurrency_runs_at_once_and_a_free_slot_claims_the_next() {
        let q = Arc::new(FakeQueue::gated());
        for id in 1..=5 {
            q.add(id, RunStatus::Done, None);
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let (stop, rx) = watch::channel(false);
        let worker = tokio::spawn(
            Worker::new(q.clone(), clock(), 2)
                .with_owner("test")
                .on_ended(Arc::new(move |agent: &str, status| {
                    s.lock().expect("lock").push((agent.to_owned(), status));
                }))
                .run(rx),
        );
        until("two in flight", || q.in_flight.load(Ordering::SeqCst) == 2).await;
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(
            q.in_flight.load(Ordering::SeqCst),
            2,
            "no third while both slots are busy"
        );
        assert_eq!(q.queued.lock().expect("lock").len(), 3);
        q.release(1);
        until("the next claimed", || {
            q.executed.load(Ordering::SeqCst) == 1 && q.in_flight.load(Ordering::SeqCst) == 2
        })
        .await;
        q.release(4);
        until("all ran", || q.executed.load(Ordering::SeqCst) == 5).await;
        assert_eq!(q.max_in_flight.load(Ordering::SeqCst), 2);
        assert!(
            q.claims
                .lock()
                .expect("lock")
                .iter()
                .all(|(limit, _)| *limit <= 2),
            "never claims more than the free slots"
        );
        assert_eq!(
            seen.lock().expect("lock").clone(),
            vec![("Cassie".to_owned(), RunStatus::Done); 5]
        );
        stop.send(true).expect("stop");
        worker.await.expect("worker ends");
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_queued_in_this_process_is_claimed_at_once_not_at_the_next_poll() {
        let q = Arc::new(FakeQueue::default());
        let (stop, rx) = watch::channel(false);
        let worker = tokio::spawn(Worker::new(q.clone(), clock(), 1).run(rx));
        until("a first look", || {
            !q.claims.lock().expect("lock").is_empty()
        })
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let queued_at = tokio::time::Instant::now();
        q.add(1, RunStatus::Done, None);
        q.wake.notify_one();
        until("ran", || q.executed.load(Ordering::SeqCst) == 1).await;
        let claimed_at = q.claims.lock().expect("lock").last().expect("claim").1;
        assert_eq!(claimed_at, queued_at, "woken, not polled");
        stop.send(true).expect("stop");
        worker.await.expect("worker ends");
    }

    #[tokio::test(start_paused = true)]
    async fn event_threads_from_an_hour_before_the_start_become_runs() {
        let q = Arc::new(FakeQueue::default());
        let c = clock();
        let start = c.now();
        let (stop, rx) = watch::channel(false);
        let worker = tokio::spawn(Worker::new(q.clone(), c.clone(), 1).run(rx));
        until("a first look", || !q.since.lock().expect("lock").is_empty()).await;
        c.advance(Duration::from_secs(7200));
        tokio::time::sleep(Duration::from_secs(3)).await;
        let since = q.since.lock().expect("lock").clone();
        assert!(since.len() >= 3, "it looks every second: {since:?}");
        assert!(
            since
                .iter()
                .all(|s| s.as_millis() == start.as_millis() - 3_600_000),
            "the window is fixed at the start: {since:?}"
        );
        stop.send(true).expect("stop");
        worker.await.expect("worker ends");
    }

    #[tokio::test(start_paused = true)]
    async fn done_runs_are_remembered_and_recent_ones_every_five_minutes_of_the_clock() {
        let q = Arc::new(FakeQueue::default());
        let kb = Arc::new(MemoryKnowledge::new());
        let c = clock();
        let (stop, rx) = watch::channel(false);
        let worker = tokio::spawn(
            Worker::new(q.clone(), c.clone(), 2)
                .with_memory(RunMemory::new(kb.clone()))
                .run(rx),
        );
        until("the first memory pass", || {
            q.recent_calls.load(Ordering::SeqCst) == 1
        })
        .await;
        q.add(1, RunStatus::Done, Some("Order 1042 waits for Gelato."));
        q.add(2, RunStatus::Failed, Some("warehouse unreachable"));
        until("both ran", || q.executed.load(Ordering::SeqCst) == 2).await;
        until("remembered", || !kb.documents().is_empty()).await;
        let docs = kb.documents();
        assert_eq!(docs.len(), 1, "only the done run: {docs:?}");
        assert_eq!(docs[0].source, "run #1");
        // Tokio's time runs on; Krake's clock does not: no second pass yet.
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(q.recent_calls.load(Ordering::SeqCst), 1);
        c.advance(MEMORY_EVERY);
        until("the second memory pass", || {
            q.recent_calls.load(Ordering::SeqCst) == 2
        })
        .await;
        stop.send(true).expect("stop");
        worker.await.expect("worker ends");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_claim_waits_two_seconds_and_stop_drops_runs_in_flight() {
        let q = Arc::new(FakeQueue::gated());
        q.fail_claims.store(1, Ordering::SeqCst);
        q.add(1, RunStatus::Done, None);
        let (stop, rx) = watch::channel(false);
        let worker = tokio::spawn(Worker::new(q.clone(), clock(), 1).run(rx));
        until("in flight", || q.in_flight.load(Ordering::SeqCst) == 1).await;
        let claims = q.claims.lock().expect("lock").clone();
        assert!(claims.len() >= 2);
        assert!(
            claims[1].1 - claims[0].1 >= CLAIM_RETRY,
            "no hot loop after a failure: {claims:?}"
        );
        stop.send(true).expect("stop");
        worker.await.expect("worker ends");
        assert_eq!(q.in_flight.load(Ordering::SeqCst), 0, "the run was dropped");
        assert_eq!(q.executed.load(Ordering::SeqCst), 0, "and not finished");
    }

    #[tokio::test(start_paused = true)]
    async fn recovery_runs_at_start_and_every_interval_until_stopped() {
        let q = Arc::new(FakeQueue {
            no_model: true,
            ..FakeQueue::default()
        });
        let (stop, rx) = watch::channel(false);
        let started = tokio::time::Instant::now();
        let task = tokio::spawn(recover_every(q.clone(), Duration::from_secs(5), rx));
        tokio::time::sleep(Duration::from_secs(11)).await;
        let at: Vec<Duration> = q
            .recoveries
            .lock()
            .expect("lock")
            .iter()
            .map(|t| *t - started)
            .collect();
        assert_eq!(
            at,
            [0, 5, 10].map(Duration::from_secs),
            "even without a model"
        );
        stop.send(true).expect("stop");
        task.await.expect("ends");
    }
}
