//! The initial window: before the limiter has learnt anything, attempts go
//! out a window at a time, growing as answers come, as in TCP's slow start.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::{AdaptiveLimiter, Slot, LONG_AGO, UNLIMITED};
use crate::time::{nanos_i64, since_epoch_ns};

/// Past this many in flight, the initial window closes: the provider
/// admitted that many at once without a refusal.
pub(super) const MAX_WINDOW: u32 = 1024;
/// How often an attempt waiting for a place in the initial window asks
/// again.
const WINDOW_POLL: Duration = Duration::from_millis(5);
/// The initial window doubles for each of these it stays full.
const WINDOW_STEP: Duration = Duration::from_millis(250);

impl AdaptiveLimiter {
    /// A place in the initial window, if one is free: no wait; else the
    /// time to ask again.
    #[cold]
    pub(super) fn enter_window(&self, cost: u64) -> (Duration, Slot) {
        let window = self.window.load(Relaxed) / 2;
        if window == 0 || self.rate.load(Relaxed) != UNLIMITED {
            return (Duration::ZERO, Slot::Free);
        }
        if self.in_flight.fetch_add(1, Relaxed) < window {
            self.window_tokens.fetch_add(cost, Relaxed);
            return (Duration::ZERO, Slot::Window(cost));
        }
        self.in_flight.fetch_sub(1, Relaxed);
        // Slow answers grow the window slowly: it also doubles for every
        // `WINDOW_STEP` it stays full without a refusal (refusals come fast,
        // long answers do not).
        let now = since_epoch_ns();
        let since = self.window_full_since.load(Relaxed);
        if since == LONG_AGO {
            let _ = self
                .window_full_since
                .compare_exchange(LONG_AGO, now, Relaxed, Relaxed);
        } else if now.saturating_sub(since) >= nanos_i64(WINDOW_STEP)
            && self
                .window_full_since
                .compare_exchange(since, now, Relaxed, Relaxed)
                .is_ok()
        {
            let doubled = self.window.load(Relaxed).saturating_mul(2);
            if doubled / 2 >= MAX_WINDOW {
                self.close_window();
            } else {
                self.window.fetch_max(doubled, Relaxed);
            }
        }
        (WINDOW_POLL, Slot::WindowFull(cost))
    }

    /// An attempt that held a place in the initial window ended.
    pub(crate) fn leave_window(&self, cost: u64) {
        self.in_flight.fetch_sub(1, Relaxed);
        self.window_tokens.fetch_sub(cost, Relaxed);
    }

    /// The initial window is over: the limiter paces, or has let enough
    /// through to know it needs none.
    pub(super) fn close_window(&self) {
        self.window.store(0, Relaxed);
    }

    /// A success in the initial window: half a place more (the window grows
    /// by half each round of answers), closed past [`MAX_WINDOW`].
    #[cold]
    pub(super) fn grow_window(&self) {
        if self.window.fetch_add(1, Relaxed) / 2 >= MAX_WINDOW {
            self.close_window();
        }
    }
}

#[cfg(test)]
mod window_tests {
    use super::*;

    #[test]
    fn the_initial_window_closes_after_enough_successes() {
        let limiter = AdaptiveLimiter::new();
        for _ in 0..5_000 {
            let (_, slot) = limiter.admit_within(Duration::MAX, 0).unwrap();
            if let Slot::Window(cost) = slot {
                limiter.leave_window(cost);
            }
            limiter.on_success();
        }
        assert!(limiter.is_idle(), "window {}", limiter.window.load(Relaxed));
    }
}
