//! Limits on sign-in, so that guessing is slow and costs Krake bounded memory, and so that an
//! attacker cannot lock a person out by failing on purpose:
//!
//! - **Backoff per user name and address**: after `login_attempts` failures for a name from
//!   one address (within `login_window`), that address waits 1 s, 2 s, 4 s, … up to
//!   `login_backoff_max` before each further try of that name. Another address is not slowed.
//! - **Per address**: at most `login_per_address_per_minute` tries from one address (IPv6 by
//!   its /64), whatever the names, so one address cannot spread guesses over many names.
//! - **Per user name**: at most `login_per_user_per_minute` tries of one name from addresses
//!   that failed for it and never signed in as it, so many addresses together are slowed too,
//!   while the person at an address they signed in from before is not.
//! - **Concurrent password checks**: argon2 needs ~19 MiB per check; at most `password_checks`
//!   run at once (default: the number of cores) and `password_queue` more wait; beyond that
//!   the answer is 503 with `Retry-After` instead of more memory.
//!
//! Counts are per process and in memory (bounded: old entries are dropped first).

use governor::{DefaultKeyedRateLimiter, Quota};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Most (name, address) pairs and addresses remembered; older ones go first.
pub const MAX_TRACKED: usize = 100_000;

/// How long a successful sign-in from an address exempts it from the per-name limit.
pub const KNOWN_ADDRESS_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The settings of [`LoginLimits`] (see the module's documentation for each).
#[derive(Debug, Clone)]
pub struct LoginLimitsConfig {
    /// Failures of one name from one address before backoff starts.
    pub attempts: u32,
    /// How long a failure is remembered.
    pub window: Duration,
    /// The longest backoff.
    pub backoff_max: Duration,
    /// Tries per minute from one address, any names.
    pub per_address_per_minute: u32,
    /// Tries per minute of one name from addresses that failed for it.
    pub per_user_per_minute: u32,
    /// Password checks running at once.
    pub checks: usize,
    /// Password checks waiting beyond those.
    pub queue: usize,
}

/// Why a sign-in was not tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Too many tries (from this address, or of this name): wait this many seconds (429).
    TooMany(u64),
    /// Too many password checks under way: try again in this many seconds (503).
    Busy(u64),
}

#[derive(Debug, Clone, Copy, Default)]
struct Pair {
    failures: u32,
    last_failure: Option<Instant>,
    last_success: Option<Instant>,
}

/// The sign-in limits of one process.
pub struct LoginLimits {
    config: LoginLimitsConfig,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    per_user: DefaultKeyedRateLimiter<String>,
    pairs: Mutex<HashMap<(String, IpAddr), Pair>>,
    checks: Arc<Semaphore>,
    /// Checks running or waiting.
    pending: Arc<AtomicUsize>,
}

impl std::fmt::Debug for LoginLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginLimits")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN))
}

/// The key of an address: IPv4 as it is, IPv6 by its /64 (one host usually has a whole /64).
pub fn address_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Decrements the pending count when a check ends (or is given up).
struct Pending(Arc<AtomicUsize>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl LoginLimits {
    /// Limits with these settings.
    pub fn new(config: LoginLimitsConfig) -> Self {
        Self {
            per_address: DefaultKeyedRateLimiter::keyed(per_minute(config.per_address_per_minute)),
            per_user: DefaultKeyedRateLimiter::keyed(per_minute(config.per_user_per_minute)),
            pairs: Mutex::new(HashMap::new()),
            checks: Arc::new(Semaphore::new(config.checks.max(1))),
            pending: Arc::new(AtomicUsize::new(0)),
            config,
        }
    }

    fn pairs(&self) -> std::sync::MutexGuard<'_, HashMap<(String, IpAddr), Pair>> {
        // Poisoning: every change is a plain insert or remove.
        self.pairs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn backoff(&self, failures: u32) -> Duration {
        match failures.checked_sub(self.config.attempts) {
            None => Duration::ZERO,
            Some(extra) => Duration::from_secs(1u64 << extra.min(30)).min(self.config.backoff_max),
        }
    }

    /// Whether `user` may be tried from `addr` now (counts the try); `Err` with what to
    /// answer otherwise. Call before any password work.
    pub fn admit(&self, user: &str, addr: IpAddr) -> Result<(), Refused> {
        let addr = address_key(addr);
        let pair = {
            let pairs = self.pairs();
            pairs.get(&(user.to_owned(), addr)).copied()
        }
        .unwrap_or_default();
        let recent_failures = match pair.last_failure {
            Some(at) if at.elapsed() < self.config.window => pair.failures,
            _ => 0,
        };
        if let Some(at) = pair.last_failure {
            let wait = self.backoff(recent_failures);
            let waited = at.elapsed();
            if waited < wait {
                return Err(Refused::TooMany(secs(wait - waited)));
            }
        }
        self.prune_limiters();
        if let Err(not_until) = self.per_address.check_key(&addr) {
            let now = governor::clock::Clock::now(self.per_address.clock());
            return Err(Refused::TooMany(secs(not_until.wait_time_from(now))));
        }
        let known = pair
            .last_success
            .is_some_and(|at| at.elapsed() < KNOWN_ADDRESS_TTL);
        if recent_failures > 0
            && !known
            && let Err(not_until) = self.per_user.check_key(&user.to_owned())
        {
            let now = governor::clock::Clock::now(self.per_user.clock());
            return Err(Refused::TooMany(secs(not_until.wait_time_from(now))));
        }
        Ok(())
    }

    fn prune_limiters(&self) {
        if self.per_address.len() > MAX_TRACKED {
            self.per_address.retain_recent();
        }
        if self.per_user.len() > MAX_TRACKED {
            self.per_user.retain_recent();
        }
    }

    /// Runs one password check (`work`, blocking) when a slot is free; `Busy` when too many
    /// wait already. The slot is held until `work` returns, even if the caller goes away.
    pub async fn check<F>(&self, work: F) -> Result<bool, Refused>
    where
        F: FnOnce() -> bool + Send + 'static,
    {
        let before = self.pending.fetch_add(1, Ordering::SeqCst);
        let pending = Pending(self.pending.clone());
        if before >= self.config.checks.max(1) + self.config.queue {
            return Err(Refused::Busy(1));
        }
        let permit = self
            .checks
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Refused::Busy(1))?;
        Ok(tokio::task::spawn_blocking(move || {
            let _held = (permit, pending);
            work()
        })
        .await
        .unwrap_or(false))
    }

    /// Password checks running or waiting now.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// Counts a failure of `user` from `addr`.
    pub fn fail(&self, user: &str, addr: IpAddr) {
        let window = self.config.window;
        let mut pairs = self.pairs();
        if pairs.len() >= MAX_TRACKED {
            pairs.retain(|_, p| {
                p.last_failure.is_some_and(|at| at.elapsed() < window)
                    || p.last_success
                        .is_some_and(|at| at.elapsed() < KNOWN_ADDRESS_TTL)
            });
            if pairs.len() >= MAX_TRACKED {
                // Still full of live entries: forget failures rather than grow (the per-address
                // and per-name limits still hold).
                pairs.retain(|_, p| p.last_success.is_some());
            }
        }
        let p = pairs
            .entry((user.to_owned(), address_key(addr)))
            .or_default();
        if p.last_failure.is_none_or(|at| at.elapsed() >= window) {
            p.failures = 0;
        }
        p.failures = p.failures.saturating_add(1);
        p.last_failure = Some(Instant::now());
    }

    /// A successful sign-in of `user` from `addr`: its failures are forgotten, and the address
    /// is known for this name (exempt from the per-name limit).
    pub fn succeed(&self, user: &str, addr: IpAddr) {
        let mut pairs = self.pairs();
        if pairs.len() >= MAX_TRACKED {
            pairs.retain(|_, p| {
                p.last_success
                    .is_some_and(|at| at.elapsed() < KNOWN_ADDRESS_TTL)
            });
        }
        pairs.insert(
            (user.to_owned(), address_key(addr)),
            Pair {
                failures: 0,
                last_failure: None,
                last_success: Some(Instant::now()),
            },
        );
    }
}

/// Whole seconds to wait, at least 1.
fn secs(d: Duration) -> u64 {
    d.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LoginLimits {
        LoginLimits::new(LoginLimitsConfig {
            attempts: 3,
            window: Duration::from_secs(900),
            backoff_max: Duration::from_secs(600),
            per_address_per_minute: 100,
            per_user_per_minute: 5,
            checks: 1,
            queue: 1,
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse()
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn backoff_is_per_name_and_address() {
        let l = limits();
        let attacker = ip("203.0.113.9");
        let owner = ip("198.51.100.7");
        for _ in 0..3 {
            assert_eq!(l.admit("ana", attacker), Ok(()));
            l.fail("ana", attacker);
        }
        assert!(matches!(l.admit("ana", attacker), Err(Refused::TooMany(1))));
        assert_eq!(
            l.admit("ana", owner),
            Ok(()),
            "the owner's address is not slowed"
        );
        assert_eq!(l.admit("bo", attacker), Ok(()), "nor another name");
    }

    #[test]
    fn many_failing_addresses_meet_the_per_name_limit_but_a_known_address_does_not() {
        let l = limits();
        let owner = ip("198.51.100.7");
        l.succeed("ana", owner);
        l.fail("ana", owner);
        let mut refused = 0;
        for i in 0..20 {
            let a = ip(&format!("203.0.113.{i}"));
            l.fail("ana", a);
            if l.admit("ana", a).is_err() {
                refused += 1;
            }
        }
        assert!(refused >= 10, "{refused}");
        assert_eq!(l.admit("ana", owner), Ok(()));
    }

    #[test]
    fn ipv6_addresses_count_by_their_64() {
        assert_eq!(
            address_key(ip("2001:db8:1:2:aaaa::1")),
            address_key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            address_key(ip("2001:db8:1:2::1")),
            address_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(address_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
    }

    #[tokio::test]
    async fn checks_beyond_the_queue_are_refused_busy() {
        let l = Arc::new(limits());
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Arc::new(Mutex::new(rx));
        let mut running = Vec::new();
        for _ in 0..2 {
            let l = l.clone();
            let rx = rx.clone();
            running.push(tokio::spawn(async move {
                l.check(move || {
                    let _ = rx.lock().map(|r| r.recv());
                    true
                })
                .await
            }));
        }
        while l.pending() < 2 {
            tokio::task::yield_now().await;
        }
        assert_eq!(l.check(|| true).await, Err(Refused::Busy(1)));
        for _ in 0..2 {
            let _ = tx.send(());
        }
        for r in running {
            assert_eq!(r.await.ok(), Some(Ok(true)));
        }
        assert_eq!(l.pending(), 0);
        assert_eq!(l.check(|| true).await, Ok(true));
    }
}
