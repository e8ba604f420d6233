//! Reconnect delays: `constant`, `exponential` or `decorrelated`, with `none`, `full` or
//! `equal` jitter.
//!
//! The cap applies before jitter, so a capped delay still spreads clients out rather than
//! lining them all up at `max` (the herd the research on Socket.IO and SignalR warns of).
//! All arithmetic saturates: attempt 10,000 is as valid as attempt 1.

use std::time::Duration;

use rand::RngExt;

use crate::rng::Rng;
use crate::scenario::{BackoffKind, BackoffPolicy, Jitter};

/// Why a backoff policy cannot be built.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidBackoff {
    /// The cap is below the first delay.
    #[error("backoff max ({max:?}) is below initial ({initial:?})")]
    MaxBelowInitial {
        /// The first delay.
        initial: Duration,
        /// The cap.
        max: Duration,
    },
    /// A zero first delay would reconnect in a tight loop.
    #[error("backoff initial delay must be > 0")]
    ZeroInitial,
    /// The growth factor is below 1, infinite or not a number.
    #[error("backoff multiplier must be a finite number >= 1 (got {0})")]
    Multiplier(f64),
}

/// The delay sequence of one client. Reset it when a connection has proven healthy.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    rng: Rng,
    /// Attempts since the last reset.
    attempt: u32,
    /// The previous un-jittered delay, which `decorrelated` grows from.
    prev: Duration,
}

impl Backoff {
    /// Checks `policy` and builds the delay sequence, jittered by `rng`.
    pub fn try_new(policy: BackoffPolicy, rng: Rng) -> Result<Self, InvalidBackoff> {
        if policy.initial.is_zero() {
            return Err(InvalidBackoff::ZeroInitial);
        }
        if policy.max < policy.initial {
            return Err(InvalidBackoff::MaxBelowInitial {
                initial: policy.initial,
                max: policy.max,
            });
        }
        if !policy.multiplier.is_finite() || policy.multiplier < 1.0 {
            return Err(InvalidBackoff::Multiplier(policy.multiplier));
        }
        Ok(Backoff {
            policy,
            rng,
            attempt: 0,
            prev: policy.initial,
        })
    }

    /// Attempts handed out since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Back to the first delay, after a connection stayed up and made progress.
    pub fn reset(&mut self) {
        self.attempt = 0;
        self.prev = self.policy.initial;
    }

    /// The delay before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        let p = self.policy;
        let capped = match p.kind {
            BackoffKind::Constant => p.initial,
            BackoffKind::Exponential => {
                let factor = p.multiplier.powi(self.attempt.min(1024) as i32);
                mul_capped(p.initial, factor, p.max)
            }
            // AWS's "decorrelated jitter": uniform in [initial, prev × multiplier], capped.
            // It is its own jitter, so the jitter setting does not apply on top.
            BackoffKind::Decorrelated => {
                let hi = mul_capped(self.prev, p.multiplier.max(1.0) + 1.0, p.max).max(p.initial);
                let d = uniform(&mut self.rng, p.initial, hi);
                self.prev = d;
                self.attempt = self.attempt.saturating_add(1);
                return d;
            }
        };
        self.attempt = self.attempt.saturating_add(1);
        match p.jitter {
            Jitter::None => capped,
            Jitter::Full => uniform(&mut self.rng, Duration::ZERO, capped),
            Jitter::Equal => {
                let half = capped / 2;
                half + uniform(&mut self.rng, Duration::ZERO, capped - half)
            }
        }
    }
}

/// `d × factor`, no more than `cap`, without overflow.
fn mul_capped(d: Duration, factor: f64, cap: Duration) -> Duration {
    let secs = d.as_secs_f64() * factor;
    if !secs.is_finite() || secs >= cap.as_secs_f64() {
        cap
    } else {
        Duration::from_secs_f64(secs)
    }
}

/// Uniform in `[lo, hi]` at microsecond resolution.
fn uniform(rng: &mut Rng, lo: Duration, hi: Duration) -> Duration {
    let (lo_us, hi_us) = (lo.as_micros() as u64, hi.as_micros() as u64);
    if hi_us <= lo_us {
        return lo;
    }
    Duration::from_micros(rng.random_range(lo_us..=hi_us))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng;

    fn policy(kind: BackoffKind, jitter: Jitter) -> BackoffPolicy {
        BackoffPolicy {
            kind,
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
            multiplier: 2.0,
            jitter,
        }
    }

    fn backoff(kind: BackoffKind, jitter: Jitter, id: u64) -> Backoff {
        Backoff::try_new(policy(kind, jitter), rng::rng(7, "backoff", id)).unwrap()
    }

    #[test]
    fn exponential_without_jitter_doubles_then_caps() {
        let mut b = backoff(BackoffKind::Exponential, Jitter::None, 0);
        let ms: Vec<u128> = (0..9).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[test]
    fn huge_attempt_counts_saturate() {
        let mut b = backoff(BackoffKind::Exponential, Jitter::None, 0);
        for _ in 0..100_000 {
            assert!(b.next_delay() <= Duration::from_secs(10));
        }
    }

    #[test]
    fn full_jitter_spans_zero_to_cap_and_equal_jitter_the_upper_half() {
        let mut full = backoff(BackoffKind::Constant, Jitter::Full, 1);
        let mut equal = backoff(BackoffKind::Constant, Jitter::Equal, 1);
        let f: Vec<Duration> = (0..2000).map(|_| full.next_delay()).collect();
        let e: Vec<Duration> = (0..2000).map(|_| equal.next_delay()).collect();
        assert!(f.iter().all(|d| *d <= Duration::from_millis(100)));
        assert!(f.iter().any(|d| *d < Duration::from_millis(10)));
        assert!(
            e.iter()
                .all(|d| *d >= Duration::from_millis(50) && *d <= Duration::from_millis(100))
        );
        let mean = f.iter().sum::<Duration>() / 2000;
        assert!(
            mean > Duration::from_millis(40) && mean < Duration::from_millis(60),
            "{mean:?}"
        );
    }

    #[test]
    fn cap_applies_before_jitter() {
        let mut b = backoff(BackoffKind::Exponential, Jitter::Full, 2);
        let late: Vec<Duration> = (0..200).map(|_| b.next_delay()).skip(20).collect();
        // Capped at 10 s, then jittered: spread over [0, 10 s], not pinned at 10 s.
        assert!(late.iter().all(|d| *d <= Duration::from_secs(10)));
        assert!(late.iter().filter(|d| **d < Duration::from_secs(5)).count() > 40);
    }

    #[test]
    fn decorrelated_stays_within_bounds() {
        let mut b = backoff(BackoffKind::Decorrelated, Jitter::None, 3);
        for _ in 0..1000 {
            let d = b.next_delay();
            assert!(d >= Duration::from_millis(100) && d <= Duration::from_secs(10));
        }
    }

    #[test]
    fn clients_get_different_delays_from_the_same_seed() {
        let a: Vec<Duration> = {
            let mut b = backoff(BackoffKind::Exponential, Jitter::Full, 10);
            (0..5).map(|_| b.next_delay()).collect()
        };
        let b: Vec<Duration> = {
            let mut b = backoff(BackoffKind::Exponential, Jitter::Full, 11);
            (0..5).map(|_| b.next_delay()).collect()
        };
        assert_ne!(a, b);
    }

    #[test]
    fn invalid_policies_are_refused() {
        let mut p = policy(BackoffKind::Exponential, Jitter::None);
        p.max = Duration::from_millis(10);
        assert!(matches!(
            Backoff::try_new(p, rng::rng(1, "b", 0)),
            Err(InvalidBackoff::MaxBelowInitial { .. })
        ));
        p = policy(BackoffKind::Exponential, Jitter::None);
        p.multiplier = f64::NAN;
        assert!(Backoff::try_new(p, rng::rng(1, "b", 0)).is_err());
    }
}
