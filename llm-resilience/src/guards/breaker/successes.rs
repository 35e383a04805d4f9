//! Successes, counted off the window: on one of a few counters that threads
//! take in turn, each on a cache line of its own, so that threads reporting
//! successes at once seldom share one; moved (drained) into the window
//! before it is read.

use super::CircuitBreaker;
use crate::guards::window::HI;
use crate::sync::Ordering;

/// How many success counters a breaker spreads its threads over.
#[cfg(not(retry_loom))]
pub(super) const STRIPES: usize = 8;

/// Under the model checks, one: every thread shares it, and each extra
/// counter would multiply the interleavings to explore.
#[cfg(retry_loom)]
pub(super) const STRIPES: usize = 1;

/// The success counter of the calling thread: threads take the counters in
/// turn, on first use.
#[cfg(not(retry_loom))]
#[inline]
fn stripe() -> usize {
    use std::cell::Cell;
    use std::sync::atomic::AtomicUsize;

    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    MINE.with(|mine| {
        let i = mine.get();
        if i != usize::MAX {
            return i;
        }
        let i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % STRIPES;
        mine.set(i);
        i
    })
}

/// Under the model checks every thread uses the one counter.
#[cfg(retry_loom)]
fn stripe() -> usize {
    0
}

impl CircuitBreaker {
    /// A call admitted while closed succeeded: no clock, no lock.
    #[inline]
    pub(super) fn succeeded(&self) {
        self.successes[stripe()].0.fetch_add(1, Ordering::Relaxed);
        self.window.start_if_new(self.config.span.bucket_ns);
        if self.config.consecutive != 0 {
            let streak = self.window.aux();
            if streak.load(Ordering::Relaxed) != 0 {
                streak.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Move the successes reported so far into the window, as calls made at
    /// unknown times since it was last read (as if each had been added to
    /// it when reported).
    pub(super) fn drain(&self) {
        let mut n: u64 = 0;
        for stripe in &self.successes {
            n = n.wrapping_add(stripe.0.swap(0, Ordering::AcqRel));
        }
        if n != 0 {
            self.window
                .add(n.wrapping_mul(HI), self.config.span.bucket_ns);
        }
    }

    /// Drop the successes not yet in the window, before it is emptied.
    pub(super) fn forget_successes(&self) {
        for stripe in &self.successes {
            stripe.0.store(0, Ordering::Release);
        }
    }
}
