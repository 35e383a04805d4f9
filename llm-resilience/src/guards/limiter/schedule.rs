//! The send slots as a numbered queue: where each caller's turn is, and how
//! the queue is re-spaced when the rate changes.

use super::{LONG_AGO, NANOS_PER_SEC};

/// The send slots as a numbered queue: slot `n` is due at
/// `anchor_t + (n − anchor_n) × interval`. A caller holds its number, not a
/// time, and asks again when it wakes: when the rate changes, the queue is
/// re-spaced from now, and every waiting caller's turn moves with it, so a
/// limit that comes back is used at once by the callers already waiting.
#[derive(Debug, Clone, Copy)]
pub(super) struct Schedule {
    /// Slots handed out so far.
    pub(super) issued: u64,
    /// The (fractional) slot due at `anchor_t`.
    pub(super) anchor_n: f64,
    pub(super) anchor_t: i64,
    /// Nanoseconds between slots; 0 until the first paced reservation sets
    /// it from the rate.
    pub(super) interval: f64,
    /// When the last caller that woke after its slot was let go: the next
    /// such caller leaves at least an interval later.
    pub(super) late_sent: i64,
}

impl Schedule {
    pub(super) const NEW: Schedule = Schedule {
        issued: 0,
        anchor_n: 0.0,
        anchor_t: LONG_AGO,
        interval: 0.0,
        late_sent: LONG_AGO,
    };

    /// When slot `n` is due.
    pub(super) fn due(&self, n: u64) -> i64 {
        // `as` saturates.
        let offset = ((n as f64 - self.anchor_n) * self.interval) as i64;
        self.anchor_t.saturating_add(offset)
    }

    /// Space the slots not yet due `interval` apart from `now` on; up to
    /// `credit` slots of an idle spell may stay due at once. A pause (an
    /// anchor in the future) is kept.
    pub(super) fn respace(&mut self, now: i64, interval: f64, credit: f64) {
        if self.interval > 0.0 && self.anchor_t < now {
            let due_now = self.anchor_n + (now - self.anchor_t) as f64 / self.interval;
            self.anchor_n = due_now.min(self.issued as f64 + credit);
            self.anchor_t = now;
        }
        self.interval = interval;
    }

    /// No slot still to hand out is due before `at`.
    pub(super) fn not_before(&mut self, at: i64) {
        if self.due(self.issued) < at {
            self.anchor_n = self.issued as f64;
            self.anchor_t = at;
        }
    }
}

/// The pacing interval at `rate`, in nanoseconds (at least 1).
pub(super) fn interval(rate: f64) -> f64 {
    (NANOS_PER_SEC / rate).max(1.0)
}
