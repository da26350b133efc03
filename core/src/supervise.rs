//! Fronts that survive their platform. Each front (Telegram, Discord, …) runs under
//! [`supervise`]: when its platform cannot be reached, at start or later, it is started again
//! after a [`Backoff`] wait (1 s doubling to 60 s, jittered) while the rest of Krake keeps
//! running; a refused token is reported once, with what to do, and tried again only rarely.
//!
//! Every front's state lives in one [`Fronts`] registry (what `/readyz` and `/metrics` show).
//! A state change is logged once, when it happens, never once per attempt.

use crate::backoff::Backoff;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Where a front is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontState {
    /// Connecting to its platform for the first time.
    Starting,
    /// Connected: it receives and sends.
    Up,
    /// Its platform could not be reached (or dropped it); it is tried again with backoff.
    Retrying {
        /// The last failure.
        error: String,
    },
    /// The platform refused the credentials (a bad or revoked token): nothing works until
    /// they are fixed, so it is tried again only rarely.
    Unauthorized {
        /// What the platform said and what to do.
        error: String,
    },
    /// Stopped with Krake.
    Stopped,
}

impl FrontState {
    /// The state's name: `starting`, `up`, `retrying`, `unauthorized` or `stopped`.
    pub fn name(&self) -> &'static str {
        match self {
            FrontState::Starting => "starting",
            FrontState::Up => "up",
            FrontState::Retrying { .. } => "retrying",
            FrontState::Unauthorized { .. } => "unauthorized",
            FrontState::Stopped => "stopped",
        }
    }

    /// Whether the front is connected.
    pub fn is_up(&self) -> bool {
        matches!(self, FrontState::Up)
    }

    /// The last failure, when the state has one.
    pub fn error(&self) -> Option<&str> {
        match self {
            FrontState::Retrying { error } | FrontState::Unauthorized { error } => Some(error),
            _ => None,
        }
    }
}

/// A front's state and its history in numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontStatus {
    /// Where the front is.
    pub state: FrontState,
    /// Failed attempts since it was last up.
    pub failures: u32,
    /// How many times it came up.
    pub ups: u32,
    /// When the supervisor tries again, while it waits.
    pub next_attempt: Option<Instant>,
}

impl FrontStatus {
    fn starting() -> Self {
        Self {
            state: FrontState::Starting,
            failures: 0,
            ups: 0,
            next_attempt: None,
        }
    }

    /// How long until the next attempt, while waiting for one.
    pub fn retry_in(&self) -> Option<Duration> {
        self.next_attempt
            .map(|at| at.saturating_duration_since(Instant::now()))
    }
}

/// The registry of every front's state, shared by the supervisors (which write) and the
/// probes (which read). Cheap to clone.
#[derive(Clone, Default)]
pub struct Fronts {
    inner: Arc<Mutex<BTreeMap<String, watch::Sender<FrontStatus>>>>,
}

impl std::fmt::Debug for Fronts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.snapshot()).finish()
    }
}

impl Fronts {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a front, `starting`, and returns the handle its code reports through. Registering
    /// a name again replaces the earlier entry.
    pub fn register(&self, name: &str) -> FrontHandle {
        let (tx, _) = watch::channel(FrontStatus::starting());
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), tx.clone());
        FrontHandle {
            name: name.into(),
            tx,
        }
    }

    /// Every front's status, by name.
    pub fn snapshot(&self) -> Vec<(String, FrontStatus)> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(name, tx)| (name.clone(), tx.borrow().clone()))
            .collect()
    }

    /// One front's status.
    pub fn status(&self, name: &str) -> Option<FrontStatus> {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .map(|tx| tx.borrow().clone())
    }
}

/// How a front's code reports its state. Reporting the state it is already in does nothing
/// (and logs nothing), so a loop may report `up` after every success.
#[derive(Clone)]
pub struct FrontHandle {
    name: Arc<str>,
    tx: watch::Sender<FrontStatus>,
}

impl std::fmt::Debug for FrontHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrontHandle")
            .field("name", &self.name)
            .field("status", &*self.tx.borrow())
            .finish()
    }
}

impl FrontHandle {
    /// The front's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The current status.
    pub fn status(&self) -> FrontStatus {
        self.tx.borrow().clone()
    }

    /// Follows the status (for work that waits until the front is up).
    pub fn subscribe(&self) -> watch::Receiver<FrontStatus> {
        self.tx.subscribe()
    }

    /// The front is connected.
    pub fn up(&self) {
        self.set(FrontState::Up, None);
    }

    /// The platform could not be reached; the front tries again by itself (or its supervisor
    /// does at `next_attempt`).
    pub fn retrying(&self, error: impl Into<String>) {
        self.set(
            FrontState::Retrying {
                error: error.into(),
            },
            None,
        );
    }

    /// The platform refused the credentials.
    pub fn unauthorized(&self, error: impl Into<String>) {
        self.set(
            FrontState::Unauthorized {
                error: error.into(),
            },
            None,
        );
    }

    /// Stopped with Krake.
    pub fn stopped(&self) {
        self.set(FrontState::Stopped, None);
    }

    /// Sets the state; logs when its kind changed. Counts a failure for every `retrying` or
    /// `unauthorized` report and an `up` for every change to `up`.
    fn set(&self, state: FrontState, next_attempt: Option<Instant>) {
        let mut before = FrontState::Stopped;
        let changed_kind = {
            let mut changed_kind = false;
            self.tx.send_if_modified(|s| {
                before = s.state.clone();
                changed_kind = s.state.name() != state.name();
                let failed = matches!(
                    state,
                    FrontState::Retrying { .. } | FrontState::Unauthorized { .. }
                );
                match (&state, changed_kind) {
                    (FrontState::Up, true) => {
                        s.ups = s.ups.saturating_add(1);
                        s.failures = 0;
                    }
                    _ if failed => s.failures = s.failures.saturating_add(1),
                    _ => {}
                }
                let modified = s.state != state || failed || s.next_attempt != next_attempt;
                s.state = state.clone();
                s.next_attempt = next_attempt;
                modified
            });
            changed_kind
        };
        let front = &*self.name;
        if !changed_kind {
            if let Some(error) = state.error() {
                tracing::debug!(front, error, "front still {}", state.name());
            }
            return;
        }
        match &state {
            FrontState::Starting => tracing::info!(front, "front starting"),
            FrontState::Up => tracing::info!(front, was = before.name(), "front up"),
            FrontState::Retrying { error } => tracing::warn!(
                front,
                error = error.as_str(),
                "front cannot reach its platform; Krake keeps running and tries again with backoff"
            ),
            FrontState::Unauthorized { error } => tracing::error!(
                front,
                error = error.as_str(),
                "front refused by its platform; Krake keeps running without it"
            ),
            FrontState::Stopped => tracing::info!(front, "front stopped"),
        }
    }
}

/// Why one run of a front ended (other than by the stop signal).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrontFailure {
    /// The platform could not be reached, failed, or dropped the connection: try again soon.
    #[error("{0}")]
    Unreachable(String),
    /// The platform refused the credentials (HTTP 401): say what to do; try again rarely.
    #[error("{0}")]
    Unauthorized(String),
}

/// How [`supervise`] paces its attempts.
#[derive(Debug, Clone)]
pub struct Supervision {
    /// Waits between attempts while the platform cannot be reached; reset once the front was up.
    pub backoff: Backoff,
    /// Wait after the credentials were refused; `None`: never try again (until a restart).
    pub after_unauthorized: Option<Duration>,
}

impl Default for Supervision {
    /// 1 s doubling to 60 s, jittered; every 10 minutes after a refused token.
    fn default() -> Self {
        Self {
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
            after_unauthorized: Some(Duration::from_secs(600)),
        }
    }
}

/// Runs a front until `stop` turns true, starting it again whenever it fails.
///
/// `run` is one life of the front: connect (getMe, a gateway handshake…), report
/// [`up`](FrontHandle::up), then serve until `stop` turns true (returning `Ok`) or until it
/// fails. It must return soon after `stop` turns true. A failure leads to a wait (the backoff,
/// restarted from its base when this life had come up; the long `after_unauthorized` wait
/// after a refused token) and another life. The state is `stopped` when this returns.
pub async fn supervise<F, Fut>(
    front: FrontHandle,
    policy: Supervision,
    mut stop: watch::Receiver<bool>,
    mut run: F,
) where
    F: FnMut(FrontHandle, watch::Receiver<bool>) -> Fut,
    Fut: Future<Output = Result<(), FrontFailure>>,
{
    let mut backoff = policy.backoff;
    loop {
        if *stop.borrow() {
            break;
        }
        let ups = front.status().ups;
        let ended = run(front.clone(), stop.clone()).await;
        if *stop.borrow() {
            break;
        }
        if front.status().ups > ups {
            backoff.reset();
        }
        let (state, wait) = match ended {
            Ok(()) => {
                let wait = backoff.next_delay();
                let error = "it stopped by itself".to_owned();
                (FrontState::Retrying { error }, Some(wait))
            }
            Err(FrontFailure::Unreachable(error)) => {
                (FrontState::Retrying { error }, Some(backoff.next_delay()))
            }
            Err(FrontFailure::Unauthorized(error)) => {
                let error = match policy.after_unauthorized {
                    Some(d) => format!("{error} (tried again every {})", human(d)),
                    None => format!("{error} (not tried again until Krake restarts)"),
                };
                (
                    FrontState::Unauthorized { error },
                    policy.after_unauthorized,
                )
            }
        };
        front.set(state, wait.map(|w| Instant::now() + w));
        let sleep = async {
            match wait {
                Some(w) => tokio::time::sleep(w).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => {}
            // A dropped sender also means stop.
            _ = stop.changed() => break,
        }
    }
    front.stopped();
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn policy() -> Supervision {
        Supervision {
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)).seeded(3),
            after_unauthorized: Some(Duration::from_secs(600)),
        }
    }

    /// Lets the supervisor task run until it waits on the (paused) clock.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_platform_is_retried_with_backoff_until_it_answers() {
        let fronts = Fronts::new();
        let handle = fronts.register("telegram");
        let (stop_tx, stop) = watch::channel(false);
        let attempts = Arc::new(AtomicU32::new(0));
        let a = attempts.clone();
        let task = tokio::spawn(supervise(handle, policy(), stop, move |front, mut stop| {
            let n = a.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 3 {
                    return Err(FrontFailure::Unreachable(format!("refused {n}")));
                }
                front.up();
                let _ = stop.changed().await;
                Ok(())
            }
        }));
        settle().await;
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        let s = fronts.status("telegram").unwrap();
        assert_eq!(s.state.name(), "retrying");
        assert_eq!(s.state.error(), Some("refused 0"));
        assert!(s.retry_in().unwrap() <= Duration::from_secs(1));
        // Waits of at most 1, 2 and 4 s: up within 7 s, not before 3.5 s.
        tokio::time::sleep(Duration::from_millis(3400)).await;
        assert!(!fronts.status("telegram").unwrap().state.is_up());
        tokio::time::sleep(Duration::from_millis(3700)).await;
        settle().await;
        let s = fronts.status("telegram").unwrap();
        assert!(s.state.is_up(), "{s:?}");
        assert_eq!((s.ups, s.failures, s.next_attempt), (1, 0, None));
        assert_eq!(attempts.load(Ordering::SeqCst), 4);
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        assert_eq!(
            fronts.status("telegram").unwrap().state,
            FrontState::Stopped
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_token_is_not_retried_in_a_loop() {
        let fronts = Fronts::new();
        let handle = fronts.register("telegram");
        let (stop_tx, stop) = watch::channel(false);
        let attempts = Arc::new(AtomicU32::new(0));
        let a = attempts.clone();
        let task = tokio::spawn(supervise(handle, policy(), stop, move |_, _| {
            a.fetch_add(1, Ordering::SeqCst);
            async { Err(FrontFailure::Unauthorized("bad token: set X".into())) }
        }));
        tokio::time::sleep(Duration::from_secs(599)).await;
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        let s = fronts.status("telegram").unwrap();
        assert_eq!(
            s.state.error(),
            Some("bad token: set X (tried again every 10 min)")
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        stop_tx.send(true).unwrap();
        task.await.unwrap();
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        assert_eq!(
            fronts.status("telegram").unwrap().state,
            FrontState::Stopped
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_front_that_was_up_restarts_from_the_shortest_wait() {
        let fronts = Fronts::new();
        let handle = fronts.register("discord");
        let (_stop_tx, stop) = watch::channel(false);
        let starts = Arc::new(Mutex::new(Vec::new()));
        let s = starts.clone();
        let t0 = Instant::now();
        tokio::spawn(supervise(handle, policy(), stop, move |front, _| {
            let n = {
                let mut s = s.lock().unwrap();
                s.push(t0.elapsed());
                s.len()
            };
            async move {
                // Fails four times, comes up and drops once, then fails again.
                if n == 5 {
                    front.up();
                    tokio::time::sleep(Duration::from_secs(100)).await;
                }
                Err(FrontFailure::Unreachable("dropped".into()))
            }
        }));
        tokio::time::sleep(Duration::from_secs(200)).await;
        let starts = starts.lock().unwrap().clone();
        // The first wait after the drop is at most the base again.
        let gap = starts[5] - starts[4] - Duration::from_secs(100);
        assert!(gap <= Duration::from_secs(1), "{starts:?}");
        assert_eq!(fronts.status("discord").unwrap().ups, 1);
    }

    #[test]
    fn states_report_once_per_change() {
        let fronts = Fronts::new();
        let h = fronts.register("web");
        let mut rx = h.subscribe();
        rx.mark_unchanged();
        h.up();
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();
        h.up();
        assert!(!rx.has_changed().unwrap(), "up again changes nothing");
        h.retrying("a");
        h.retrying("b");
        let s = h.status();
        assert_eq!((s.failures, s.state.error()), (2, Some("b")));
        assert_eq!(fronts.snapshot().len(), 1);
    }
}
