//! The tokens calls say they cost, as a schedule against the provider's
//! token bucket, refilling at the token limit it announced.

use super::{LONG_AGO, NANOS_PER_SEC};

/// Tokens as a schedule: the provider's bucket has refilled the `t`-th
/// token (counted over all calls so far) at
/// `anchor_t + (t − anchor_tokens) / per_second`, and a call that takes
/// tokens `[t, t + cost)` is due once the last of them is.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tokens {
    /// The announced limit less the headroom, per second; 0 when none.
    pub(super) per_second: f64,
    /// How many tokens the provider's bucket holds when full.
    pub(super) burst: f64,
    /// Tokens taken so far.
    pub(super) issued: u64,
    pub(super) anchor_tokens: f64,
    pub(super) anchor_t: i64,
}

impl Tokens {
    pub(super) const NEW: Tokens = Tokens {
        per_second: 0.0,
        burst: 0.0,
        issued: 0,
        anchor_tokens: 0.0,
        anchor_t: LONG_AGO,
    };

    /// When the `t`-th token is refilled.
    pub(super) fn due(&self, t: u64) -> i64 {
        let offset = ((t as f64 - self.anchor_tokens) / self.per_second * NANOS_PER_SEC) as i64;
        self.anchor_t.saturating_add(offset)
    }

    /// After an idle spell the bucket is full again: no more than `burst`
    /// tokens' worth of calls are due at once.
    pub(super) fn idle_credit(&mut self, now: i64) {
        let earliest = now.saturating_sub((self.burst / self.per_second * NANOS_PER_SEC) as i64);
        if self.due(self.issued) < earliest {
            self.anchor_tokens = self.issued as f64;
            self.anchor_t = earliest;
        }
    }

    /// The provider says `remaining` tokens are left now: calls not yet
    /// due wait for the bucket to refill beyond them.
    pub(super) fn observe_remaining(&mut self, now: i64, remaining: u64) {
        let earliest =
            now.saturating_sub((remaining as f64 / self.per_second * NANOS_PER_SEC) as i64);
        if self.due(self.issued) < earliest {
            self.anchor_tokens = self.issued as f64;
            self.anchor_t = earliest;
        } else if remaining == 0 {
            // Empty now: nothing more is due before it refills.
            let at = self.due(self.issued).max(now);
            self.anchor_tokens = self.issued as f64;
            self.anchor_t = at;
        }
    }

    /// The limit changes by `scale` from `now` on (a fleet's share of it
    /// changed): the tokens refilled by now, or handed out, keep their
    /// times, the rest refill at the new rate, and the bucket holds `scale`
    /// times as many.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(super) fn rescale(&mut self, now: i64, scale: f64) {
        if self.per_second == 0.0 || !(scale > 0.0 && scale.is_finite()) {
            return;
        }
        // The tokens handed out keep the times they were given; the next
        // ones refill at the new rate from the last of those, or from now.
        let due = self.due(self.issued);
        if due > now {
            self.anchor_tokens = self.issued as f64;
            self.anchor_t = due;
        } else if self.anchor_t < now {
            let refilled = (now - self.anchor_t) as f64 / NANOS_PER_SEC * self.per_second;
            self.anchor_tokens += refilled;
            self.anchor_t = now;
        }
        self.per_second *= scale;
        self.burst *= scale;
    }
}
