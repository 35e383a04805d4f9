//! The crate's time: every part of it reads the time through this module.
//!
//! # Clocks
//!
//! A retried call reads its own [`Clock`]: the system clock for sync calls,
//! tokio's clock (which a paused test runtime controls) for async ones.
//! State shared between calls (breakers, budgets, limiters) reads
//! [`shared_now`]: tokio's clock when the `tokio` feature is on (outside a
//! runtime, the system clock), else the system clock. Both are moved on by
//! the sleeps skipped on the calling thread under
//! [`testing`](crate::testing) ([`testing::skipped_time`](crate::testing::skipped_time)).
//!
//! # Timestamps of shared state
//!
//! Shared state keeps times as integers, in nanoseconds, measured on
//! [`shared_now`] from one process-wide epoch: the first time anything reads
//! them. Two forms of the same reading:
//!
//! - [`now_ns`]: a `u64` timestamp, the nanoseconds since the epoch plus
//!   [`BIAS`] (2^60 ns, about 36 years), so that a reading a little before
//!   the epoch (another thread's skipped sleeps, another paused runtime) is
//!   still a small positive number. It saturates at 0 and at [`TIME_MAX`]
//!   (2^62 − 1: 109 years after the epoch), so it always fits in 62 bits.
//!   The rolling window and the circuit breaker's state word use it.
//! - [`since_epoch_ns`]: an `i64`, the nanoseconds since the epoch, negative
//!   for earlier readings: `now_ns() - BIAS`, so within
//!   `[-BIAS, TIME_MAX - BIAS]`. The adaptive limiter uses it.
//!
//! Under the loom model checks (`--cfg retry_loom`) both read the time the
//! model sets (`crate::sync::clock`, which exists under that cfg only)
//! instead, as a timestamp, so that every execution of a model sees the
//! same times.
//!
//! Durations convert to nanoseconds with [`nanos`] (`u64`) and
//! [`nanos_i64`] (`i64`), both saturating.

#[cfg(not(retry_loom))]
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Where a call reads the time: the system clock for sync calls, tokio's
/// clock (which a paused test runtime controls) for async ones. Both move on
/// by the sleeps skipped under [`testing`](crate::testing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Clock {
    Std,
    #[cfg(feature = "tokio")]
    Tokio,
}

impl Clock {
    pub(crate) fn now(self) -> Instant {
        let now = match self {
            Clock::Std => Instant::now(),
            #[cfg(feature = "tokio")]
            Clock::Tokio => tokio::time::Instant::now().into_std(),
        };
        crate::testing::skipped_time(now)
    }
}

/// The time for state shared between calls (breakers, budgets, limiters):
/// tokio's clock when the `tokio` feature is on (so a paused test runtime
/// controls it; outside a runtime it is the system clock), moved on by the
/// sleeps skipped under [`testing`](crate::testing).
#[cfg_attr(retry_loom, allow(dead_code))]
pub(crate) fn shared_now() -> Instant {
    #[cfg(feature = "tokio")]
    let now = tokio::time::Instant::now().into_std();
    #[cfg(not(feature = "tokio"))]
    let now = Instant::now();
    crate::testing::skipped_time(now)
}

/// The timestamp of a reading at the epoch (see the module docs).
pub(crate) const BIAS: u64 = 1 << 60;

/// The largest timestamp: timestamps fit in 62 bits.
pub(crate) const TIME_MAX: u64 = (1 << 62) - 1;

/// The process-wide epoch: the first reading of [`now_ns`] or
/// [`since_epoch_ns`].
#[cfg(not(retry_loom))]
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Now, as a timestamp: nanoseconds on [`shared_now`] since the epoch, plus
/// [`BIAS`], within `[0, TIME_MAX]` (see the module docs).
#[cfg(not(retry_loom))]
pub(crate) fn now_ns() -> u64 {
    let now = shared_now();
    let epoch = *EPOCH.get_or_init(|| now);
    let t = match now.checked_duration_since(epoch) {
        Some(after) => BIAS.saturating_add(nanos(after)),
        None => BIAS.saturating_sub(nanos(epoch.saturating_duration_since(now))),
    };
    t.min(TIME_MAX)
}

/// Now, under the loom model: the time its tests set (see
/// [`crate::sync::clock`]), so that every execution sees the same times.
#[cfg(retry_loom)]
pub(crate) fn now_ns() -> u64 {
    crate::sync::clock::now().min(TIME_MAX)
}

/// Now, in nanoseconds since the epoch: [`now_ns`] less [`BIAS`], negative
/// for readings before the epoch (which a paused tokio clock can produce).
pub(crate) fn since_epoch_ns() -> i64 {
    // Both are at most `TIME_MAX` < 2^62, so they fit and do not overflow.
    now_ns() as i64 - BIAS as i64
}

/// `d` in nanoseconds, saturating at `u64::MAX`.
pub(crate) const fn nanos(d: Duration) -> u64 {
    let n = d.as_nanos();
    if n > u64::MAX as u128 {
        u64::MAX
    } else {
        n as u64
    }
}

/// `d` in nanoseconds, saturating at `i64::MAX`.
pub(crate) fn nanos_i64(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

// Loom's clock is set by its tests only (tests/loom.rs).
#[cfg(all(test, not(retry_loom)))]
mod tests {
    use super::*;

    #[test]
    fn time_is_monotonic_and_biased() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
        assert!(a >= BIAS / 2);
        assert!(a <= TIME_MAX);
    }

    #[test]
    fn both_forms_share_the_epoch() {
        let a = now_ns();
        let s = since_epoch_ns();
        let b = now_ns();
        assert!(a as i64 - BIAS as i64 <= s && s <= b as i64 - BIAS as i64);
    }

    #[test]
    fn durations_saturate() {
        assert_eq!(nanos(Duration::from_secs(3)), 3_000_000_000);
        assert_eq!(nanos(Duration::MAX), u64::MAX);
        assert_eq!(nanos_i64(Duration::from_millis(5)), 5_000_000);
        assert_eq!(nanos_i64(Duration::MAX), i64::MAX);
    }
}
