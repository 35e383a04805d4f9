//! The rolling window shared by [`CircuitBreaker`](crate::CircuitBreaker)
//! and [`RetryBudget`](crate::RetryBudget): two event counts over the last
//! stretch of time, with [`Span`], the `window` setting both are built with,
//! and [`ppm`], the form of the ratio of the two counts both compare with.
//!
//! Timestamps are those of [`crate::time::now_ns`].
//!
//! # The window
//!
//! Two event counts (the breaker's calls and failures, the budget's calls and
//! retries) live in one `AtomicU64` of running totals: a "high" event adds
//! [`HI`] (`1 << 32`), a "low" event adds 1, and a call that is both adds
//! `HI + 1`. The totals only ever grow (modulo 2^64), so recording is one
//! `fetch_add` and exact under any concurrency, and the count of events
//! between two readings of the totals is their wrapping difference: the upper
//! 32 bits are the high events, the lower 32 bits the low ones, exactly, as
//! long as fewer than 2^32 of each happen in one window (subtraction modulo
//! 2^64 is linear, so a carry out of the low half cancels out).
//!
//! The window is [`BUCKETS`] slots, one per bucket of `window / BUCKETS`. A
//! slot holds the totals as they stood when its bucket began; `head` is the
//! newest bucket whose slot is written. The count over the window is the
//! totals now minus the slot of the oldest bucket still in it: the current,
//! partial bucket plus the `BUCKETS - 1` before it.
//!
//! Events recorded without reading the clock (successes, calls) cannot say
//! which bucket they fall in. The first clock reading that finds a new bucket
//! writes the slots of the buckets begun since `head`, spreading the events
//! recorded since the last clock reading evenly over the time between the
//! start of bucket `head` and now. Events recorded after a clock reading
//! (failures, retries) set `mark`, so they stay in their bucket. The window
//! may therefore lag by up to one bucket width, and events that arrive between
//! two clock readings far apart are assumed to have come at an even rate.
//!
//! Slots are written after `head` moves: a reader that catches the gap sees
//! an older slot, and counts a few events from before the window. A thread
//! descheduled for longer than a bucket between moving `head` and writing the
//! slots can leave one slot older than it should be until it is reused. Both
//! only ever over-count old events; the totals themselves are always exact.

use std::time::Duration;

use crate::sync::{AtomicU32, AtomicU64, Ordering};
use crate::time::{nanos, now_ns};

/// The number of buckets in a window.
pub(crate) const BUCKETS: u64 = 10;

/// The number of slots: one per bucket in the window, and one more for the
/// bucket before it, where the low events of the wide count begin (see
/// [`Bounds::counts_wide_low`]).
const SLOTS: u64 = BUCKETS + 1;

/// One "high" event (a call) in the totals.
pub(crate) const HI: u64 = 1 << 32;

/// One "low" event (a failure, a retry) in the totals.
pub(crate) const LO: u64 = 1;

const LO_MASK: u64 = HI - 1;

/// `head` before the window has read the clock.
const NO_HEAD: u64 = u64::MAX;

/// A window's length, and that of its buckets: the `window` setting of a
/// breaker or a budget, built by [`Span::new`] in `const` context.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    /// The length of the window, in nanoseconds.
    pub(crate) window_ns: u64,
    /// The width of one bucket: a tenth of the window, and at least 1 ns.
    pub(crate) bucket_ns: u64,
}

impl Span {
    /// A window `d` long (saturating at `u64::MAX` ns), in [`BUCKETS`]
    /// buckets.
    pub(crate) const fn new(d: Duration) -> Self {
        let window_ns = nanos(d);
        let bucket_ns = if window_ns / BUCKETS == 0 {
            1
        } else {
            window_ns / BUCKETS
        };
        Span {
            window_ns,
            bucket_ns,
        }
    }

    /// The length of the window.
    pub(crate) const fn duration(self) -> Duration {
        Duration::from_nanos(self.window_ns)
    }
}

/// A ratio of the low events to the high ones (failures per call, retries
/// per call), in millionths: NaN and negative ratios are 0, large ones
/// saturate.
pub(crate) const fn ppm(ratio: f64) -> u64 {
    if ratio > 0.0 {
        // `as` saturates, and infinity becomes `u64::MAX`.
        (ratio * 1_000_000.0 + 0.5) as u64
    } else {
        0
    }
}

/// Keeps what it holds on a cache line of its own (128 bytes: two lines on
/// x86-64, whose prefetcher pulls lines in pairs).
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

/// What is written on every event.
struct Hot {
    /// The running totals.
    totals: AtomicU64,
    /// The totals just after the last event recorded after a clock reading.
    mark: AtomicU64,
    /// A counter of the owner's that is written about as often as the totals
    /// (the breaker's failure streak).
    aux: AtomicU32,
}

/// A rolling count of two kinds of event. See the module docs.
pub(crate) struct Window {
    hot: CachePadded<Hot>,
    /// The newest bucket whose slot is written, or `NO_HEAD`. Read on every
    /// clock-free event, written once per bucket.
    head: AtomicU64,
    /// The totals when the window was last reset: nothing before counts.
    floor: AtomicU64,
    /// The totals at the start of each of the last `BUCKETS` buckets.
    slots: [AtomicU64; SLOTS as usize],
}

/// Where the window begins, as read by [`Window::bounds`].
#[derive(Clone, Copy)]
pub(crate) struct Bounds {
    /// The totals at the start of the oldest bucket in the window.
    slot: u64,
    /// The totals at the start of the bucket before it.
    wide: u64,
    /// The totals at the last reset.
    floor: u64,
}

impl Bounds {
    /// The (high, low) counts between the window's start and `totals`.
    pub(crate) fn counts(self, totals: u64) -> (u64, u64) {
        // Both are earlier readings of the same ever-growing totals, so the
        // later one has both counts smaller: take the smaller of each.
        let a = totals.wrapping_sub(self.slot);
        let b = totals.wrapping_sub(self.floor);
        ((a >> 32).min(b >> 32), (a & LO_MASK).min(b & LO_MASK))
    }

    /// As [`counts`](Self::counts), but the low events counted from one
    /// bucket further back: over between `BUCKETS` and `BUCKETS + 1`
    /// buckets, where the high ones are over between `BUCKETS - 1` and
    /// `BUCKETS`. A limit on low events per high event checked with these
    /// counts holds over every stretch of the window's length, however the
    /// stretch lines up with the buckets.
    pub(crate) fn counts_wide_low(self, totals: u64) -> (u64, u64) {
        let (high, _) = self.counts(totals);
        let w = totals.wrapping_sub(self.wide);
        let b = totals.wrapping_sub(self.floor);
        (high, (w & LO_MASK).min(b & LO_MASK))
    }
}

impl Window {
    crate::sync::const_fn! {
        pub(crate) const fn new() -> Self {
            Window {
                hot: CachePadded(Hot {
                    totals: AtomicU64::new(0),
                    mark: AtomicU64::new(0),
                    aux: AtomicU32::new(0),
                }),
                head: AtomicU64::new(NO_HEAD),
                floor: AtomicU64::new(0),
                #[cfg(not(retry_loom))]
                slots: [const { AtomicU64::new(0) }; SLOTS as usize],
                #[cfg(retry_loom)]
                slots: core::array::from_fn(|_| AtomicU64::new(0)),
            }
        }
    }

    /// The running totals, for a compare-and-swap by the owner.
    pub(crate) fn totals(&self) -> &AtomicU64 {
        &self.hot.0.totals
    }

    /// The owner's counter on the hot cache line.
    pub(crate) fn aux(&self) -> &AtomicU32 {
        &self.hot.0.aux
    }

    /// Record `delta` without reading the clock: one `fetch_add` and one load
    /// (of a rarely written line). The first event ever reads the clock once,
    /// to start the window.
    #[inline]
    pub(crate) fn add(&self, delta: u64, bucket_ns: u64) {
        self.hot.0.totals.fetch_add(delta, Ordering::Relaxed);
        if self.head.load(Ordering::Relaxed) == NO_HEAD {
            self.start(bucket_ns);
        }
    }

    /// Start the window if nothing has started it: for events kept outside
    /// the totals until later (the breaker's successes), which must still
    /// start the window at the time of the first of them. One load.
    #[inline]
    pub(crate) fn start_if_new(&self, bucket_ns: u64) {
        if self.head.load(Ordering::Relaxed) == NO_HEAD {
            self.start(bucket_ns);
        }
    }

    #[cold]
    #[inline(never)]
    fn start(&self, bucket_ns: u64) {
        self.advance(now_ns(), bucket_ns);
    }

    /// Record `delta` at a time just read by [`advance`](Self::advance).
    pub(crate) fn add_stamped(&self, delta: u64) {
        let before = self.hot.0.totals.fetch_add(delta, Ordering::Relaxed);
        self.stamped(before.wrapping_add(delta));
    }

    /// Note that the totals reached `totals` by events recorded after a clock
    /// reading: they are not spread over the buckets the next reading finds.
    pub(crate) fn stamped(&self, totals: u64) {
        self.hot.0.mark.store(totals, Ordering::Release);
    }

    /// Move the window on to the bucket of `now` (a timestamp), writing the
    /// slots of the buckets begun since the last reading. Returns the current
    /// bucket.
    pub(crate) fn advance(&self, now: u64, bucket_ns: u64) -> u64 {
        let bucket = now / bucket_ns;
        let mut head = self.head.load(Ordering::Acquire);
        loop {
            if head != NO_HEAD && bucket <= head {
                // The clock went back (another thread's skipped sleeps) or
                // another thread moved the window on: the newest bucket wins.
                return head;
            }
            // Read what the slots are computed from before claiming them: the
            // slot of `head` and the mark are earlier readings of the totals,
            // so they are at most `totals` (loaded last), count for count.
            let (slot, mark) = if head == NO_HEAD {
                (0, 0)
            } else {
                (
                    self.slots[(head % SLOTS) as usize].load(Ordering::Acquire),
                    self.hot.0.mark.load(Ordering::Acquire),
                )
            };
            let totals = self.hot.0.totals.load(Ordering::Acquire);
            match self
                .head
                .compare_exchange_weak(head, bucket, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if head != NO_HEAD {
                        self.fill(head, bucket, now, bucket_ns, slot, mark, totals);
                    }
                    // A new window counts everything since the breaker or
                    // budget was made: its slots and floor are still 0.
                    return bucket;
                }
                Err(actual) => head = actual,
            }
        }
    }

    /// Write the slots of buckets `head + 1 ..= bucket` that are in the
    /// window. The events since the later of the slot of `head` and the mark
    /// came at unknown times since the start of bucket `head`: spread them
    /// evenly up to `now`.
    #[allow(clippy::too_many_arguments)]
    fn fill(
        &self,
        head: u64,
        bucket: u64,
        now: u64,
        bucket_ns: u64,
        slot: u64,
        mark: u64,
        totals: u64,
    ) {
        let since_slot = totals.wrapping_sub(slot);
        let since_mark = totals.wrapping_sub(mark);
        // The later of the two readings: the smaller count since it.
        let (base, pending) = if since_mark >> 32 <= since_slot >> 32
            && since_mark & LO_MASK <= since_slot & LO_MASK
        {
            (mark, since_mark)
        } else {
            (slot, since_slot)
        };
        let (hi, lo) = (u128::from(pending >> 32), u128::from(pending & LO_MASK));
        let start = u128::from(head) * u128::from(bucket_ns);
        // `now` is in bucket `bucket > head`, so the span is positive.
        let span = (u128::from(now) - start).max(1);
        let first = (head + 1).max(bucket.saturating_sub(SLOTS - 1));
        for k in first..=bucket {
            let elapsed = u128::from(k - head) * u128::from(bucket_ns);
            // Both shares are at most the pending counts, so they fit.
            let share = ((hi * elapsed / span) as u64) << 32 | (lo * elapsed / span) as u64;
            self.slots[(k % SLOTS) as usize].store(base.wrapping_add(share), Ordering::Release);
        }
    }

    /// Where the window that ends in `bucket` begins. Read it before the
    /// totals it is compared with.
    pub(crate) fn bounds(&self, bucket: u64) -> Bounds {
        let head = self.head.load(Ordering::Acquire);
        let newest = if head == NO_HEAD {
            bucket
        } else {
            bucket.max(head)
        };
        let oldest = newest.saturating_sub(BUCKETS - 1);
        let before = newest.saturating_sub(BUCKETS);
        // Acquire: the totals that were read to compute the slot (or the
        // floor) happen before our own reading of the totals, which therefore
        // is no smaller.
        Bounds {
            slot: self.slots[(oldest % SLOTS) as usize].load(Ordering::Acquire),
            wide: self.slots[(before % SLOTS) as usize].load(Ordering::Acquire),
            floor: self.floor.load(Ordering::Acquire),
        }
    }

    /// The (high, low) counts over the window that ends in `bucket`.
    pub(crate) fn counts(&self, bucket: u64) -> (u64, u64) {
        let bounds = self.bounds(bucket);
        bounds.counts(self.hot.0.totals.load(Ordering::Acquire))
    }

    /// Forget everything counted so far.
    pub(crate) fn reset(&self) {
        let totals = self.hot.0.totals.load(Ordering::Acquire);
        self.floor.store(totals, Ordering::Release);
    }
}

// Loom's atomics work only inside a model: tests/loom.rs checks the window.
#[cfg(all(test, not(retry_loom)))]
mod tests {
    use super::*;
    use crate::time::BIAS;

    const W: u64 = 1_000;

    #[test]
    fn counts_both_kinds_exactly_across_a_carry() {
        let w = Window::new();
        // Start the totals just below a carry out of the low half, as if
        // that many low events had been counted and forgotten.
        let start = LO_MASK - 2;
        w.hot.0.totals.store(start, Ordering::Relaxed);
        w.hot.0.mark.store(start, Ordering::Relaxed);
        w.floor.store(start, Ordering::Relaxed);
        for slot in &w.slots {
            slot.store(start, Ordering::Relaxed);
        }
        w.advance(BIAS, W);
        for _ in 0..5 {
            w.add_stamped(HI + LO);
        }
        w.add_stamped(HI);
        assert_eq!(w.counts(BIAS / W), (6, 5));
    }

    #[test]
    fn old_buckets_leave_the_window() {
        let w = Window::new();
        let t0 = BIAS;
        w.advance(t0, W);
        w.add_stamped(HI + LO);
        assert_eq!(w.counts(w.advance(t0 + 9 * W, W)), (1, 1));
        assert_eq!(w.counts(w.advance(t0 + 10 * W, W)), (0, 0));
    }

    #[test]
    fn unstamped_events_are_spread_over_the_gap() {
        let w = Window::new();
        let t0 = BIAS / W * W;
        w.advance(t0, W);
        w.add_stamped(HI);
        for _ in 0..200 {
            w.add(HI, W);
        }
        // 200 calls at unknown times over 20 buckets: the window (the nine
        // buckets before the current one, which has just begun) holds 9/20
        // of them. The stamped one is in the first bucket, long gone.
        let now = w.advance(t0 + 20 * W, W);
        assert_eq!(w.counts(now), (90, 0));
    }

    #[test]
    fn reset_forgets() {
        let w = Window::new();
        w.advance(BIAS, W);
        w.add_stamped(HI + LO);
        w.reset();
        w.add(HI, W);
        assert_eq!(w.counts(BIAS / W), (1, 0));
    }

    #[test]
    fn spans_are_cut_in_tenths() {
        let span = Span::new(Duration::from_secs(30));
        assert_eq!(
            (span.window_ns, span.bucket_ns),
            (30_000_000_000, 3_000_000_000)
        );
        assert_eq!(span.duration(), Duration::from_secs(30));
        let tiny = Span::new(Duration::from_nanos(5));
        assert_eq!((tiny.window_ns, tiny.bucket_ns), (5, 1));
        assert_eq!(Span::new(Duration::MAX).window_ns, u64::MAX);
    }

    #[test]
    fn ratios_in_millionths() {
        assert_eq!(ppm(0.5), 500_000);
        assert_eq!(ppm(0.1), 100_000);
        assert_eq!(ppm(-1.0), 0);
        assert_eq!(ppm(f64::NAN), 0);
        assert_eq!(ppm(f64::INFINITY), u64::MAX);
    }
}
