//! [`Backoff`]: exponential backoff with jitter, capped. The one retry pacing in Krake: a
//! supervised front reconnecting, the Telegram poll, model calls and outbox retries all draw
//! their waits from it, so they grow, cap and spread the same way.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// Exponential backoff with jitter. Retry `n` (0-based) waits a time drawn from
/// `[ceiling·(1 − jitter), ceiling]`, where `ceiling = min(base·2ⁿ, cap)`, so that clients
/// failing together do not retry together. [`next_delay`](Self::next_delay) counts the
/// failures itself; [`reset`](Self::reset) starts again from `base` after a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    jitter_percent: u8,
    failures: u32,
    rng: u64,
}

impl Backoff {
    /// From `base` doubling up to `cap`, with half of each wait jittered (`[ceiling/2, ceiling]`).
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            jitter_percent: 50,
            failures: 0,
            rng: random(),
        }
    }

    /// The share of each wait, in percent (at most 100), that may be taken off at random;
    /// 0 makes the waits exact.
    pub fn with_jitter(mut self, percent: u8) -> Self {
        self.jitter_percent = percent.min(100);
        self
    }

    /// Draws the jitter from a fixed seed instead of a random one (reproducible waits).
    pub fn seeded(mut self, seed: u64) -> Self {
        self.rng = seed;
        self
    }

    /// The first wait's ceiling.
    pub fn base(&self) -> Duration {
        self.base
    }

    /// The longest wait.
    pub fn cap(&self) -> Duration {
        self.cap
    }

    /// Failures counted since the last [`reset`](Self::reset).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The longest wait before retry `retry` (0-based): `min(base·2^retry, cap)`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let base = millis(self.base);
        let cap = millis(self.cap);
        Duration::from_millis(base.saturating_mul(2u64.saturating_pow(retry)).min(cap))
    }

    /// The wait before retry `retry` for a given random number: the ceiling less
    /// `random mod (ceiling·jitter)`. Callers that derive `random` from an id (see
    /// [`mix`]) get the same wait each time for that id.
    pub fn delay(&self, retry: u32, random: u64) -> Duration {
        let ceiling = millis(self.ceiling(retry));
        let spread = u64::try_from(u128::from(ceiling) * u128::from(self.jitter_percent) / 100)
            .unwrap_or(u64::MAX);
        let off = if spread > 0 { random % spread } else { 0 };
        Duration::from_millis(ceiling - off)
    }

    /// The wait after one more failure: grows with each call until [`reset`](Self::reset).
    pub fn next_delay(&mut self) -> Duration {
        self.rng = mix(self.rng);
        let d = self.delay(self.failures, self.rng);
        self.failures = self.failures.saturating_add(1);
        d
    }

    /// Sleeps for [`next_delay`](Self::next_delay) (tokio's clock, so paused time in tests).
    pub async fn wait(&mut self) {
        let d = self.next_delay();
        tokio::time::sleep(d).await;
    }

    /// After a success: the next wait is `base` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// splitmix64: spreads any 64-bit value (a job id, a counter) over all 64 bits. Not for
/// secrets; for jitter only.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A random 64-bit number for jitter, from the standard library's per-process random hash
/// keys (each call gets fresh keys), so core needs no random-number crate.
pub fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    mix(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let b = Backoff::new(S, 60 * S);
        let ceilings: Vec<u64> = (0..9).map(|n| b.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.ceiling(u32::MAX), 60 * S, "no overflow far out");
    }

    #[test]
    fn jitter_stays_in_its_range_and_spreads() {
        for percent in [0u8, 25, 50, 100] {
            let mut b = Backoff::new(S, 60 * S).with_jitter(percent).seeded(7);
            for n in 0..12 {
                let d = b.next_delay();
                let ceiling = b.ceiling(n);
                let floor = ceiling - ceiling * u32::from(percent) / 100;
                assert!(d <= ceiling && d >= floor, "{percent}%: retry {n}: {d:?}");
            }
        }
        let b = Backoff::new(S, 60 * S);
        let waits: std::collections::BTreeSet<_> = (0..20).map(|i| b.delay(3, mix(i))).collect();
        assert!(waits.len() > 10, "jitter spreads waits: {waits:?}");
        assert_eq!(
            Backoff::new(S, 60 * S).with_jitter(0).delay(3, 12345),
            8 * S,
            "no jitter: exact"
        );
        assert_ne!(random(), random());
    }

    #[test]
    fn the_same_random_number_gives_the_same_wait() {
        let b = Backoff::new(Duration::from_millis(100), S).with_jitter(25);
        assert_eq!(b.delay(2, mix(42)), b.delay(2, mix(42)));
    }

    #[tokio::test(start_paused = true)]
    async fn waits_grow_cap_and_reset() {
        let mut b = Backoff::new(S, 8 * S).seeded(1);
        let mut waited = Vec::new();
        for _ in 0..6 {
            let t = Instant::now();
            b.wait().await;
            waited.push(t.elapsed());
        }
        let bounds = [
            (500, 1000),
            (1000, 2000),
            (2000, 4000),
            (4000, 8000),
            (4000, 8000),
            (4000, 8000),
        ];
        for (w, (lo, hi)) in waited.iter().zip(bounds) {
            assert!(
                *w >= Duration::from_millis(lo) && *w <= Duration::from_millis(hi),
                "{waited:?}"
            );
        }
        assert_eq!(b.failures(), 6);
        b.reset();
        assert_eq!(b.failures(), 0);
        let t = Instant::now();
        b.wait().await;
        assert!(t.elapsed() <= S, "after a reset the wait is short again");
    }
}
