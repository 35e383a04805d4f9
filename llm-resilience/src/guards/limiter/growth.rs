//! Setting the pacing rate, and growing it with successes: fast before the
//! first refusal and after a guess, probing gently (then faster) after a
//! cut or a measurement; past the ceiling the limiter stops pacing.

use std::sync::atomic::Ordering::Relaxed;

use super::{nanos_to_secs, AdaptiveLimiter, Control, UNLIMITED};
use crate::time::nanos_i64;

/// Growth per second with successes, before the first refusal and after a
/// guess (the exponent's rate: `e^0.3` ≈ +35 % a second).
const FAST_GAIN: f64 = 0.3;
/// Growth per second when probing after a measurement, at first ...
const PROBE_GAIN: f64 = 0.05;
/// ... and its increase per second of probing without a refusal: from a
/// tenth of a limit that came back, the rate finds it again about 3.5 s
/// into probing.
const PROBE_ACCEL: f64 = 0.3;
/// Growth counts at most this long (seconds) between two reservations.
const MAX_GROWTH_STEP: f64 = 1.0;
impl AdaptiveLimiter {
    /// The rate to pace at now: a hint past its reset ends, and the rate
    /// grows with the time that successes kept coming. `None` once the
    /// limiter does not pace (past its ceiling, or a hint that began it has
    /// ended).
    ///
    /// Growth is clocked by time with successes, not by their number: a
    /// crowd of waiting callers does not slow it down. Fast growth (before
    /// the first refusal, after a guess) multiplies the rate by
    /// `e^(FAST_GAIN × t)`; probing, after a hold of `probe_after` since a
    /// cut or a measurement, starts gently and speeds up the longer nothing
    /// is refused, `e^(PROBE_GAIN × t + PROBE_ACCEL × t² / 2)`: a limit found
    /// again soon costs few refusals, one that came back is found within
    /// seconds.
    pub(super) fn grow(&self, control: &mut Control, now: i64) -> Option<f64> {
        if let Some((until, before)) = control.hint {
            if now >= until {
                control.hint = None;
                let bits = self.rate.load(Relaxed);
                if before == UNLIMITED {
                    self.go_unlimited(control, now);
                } else if bits != UNLIMITED && f64::from_bits(before) > f64::from_bits(bits) {
                    let successes = self.successes.load(Relaxed);
                    self.set_rate(
                        control,
                        f64::from_bits(before),
                        now,
                        successes,
                        control.fast,
                    );
                }
            }
        }
        let bits = self.rate.load(Relaxed);
        if bits == UNLIMITED {
            return None;
        }
        let rate = self.clamp(f64::from_bits(bits));
        if rate >= self.ceiling() {
            // An initial rate above the ceiling.
            self.go_unlimited(control, now);
            return None;
        }
        let successes = self.successes.load(Relaxed);
        if successes == control.grown {
            // No success since the last growth: time without them does not
            // count (an idle limiter does not drift up; a success after a
            // long idle spell grows it by one step at most).
            return Some(rate);
        }
        control.grown = successes;
        let since = control.last_growth.max(control.probe_at);
        control.last_growth = now;
        if now <= since {
            return Some(rate);
        }
        let dt = nanos_to_secs(now - since).min(MAX_GROWTH_STEP);
        let exponent = if control.fast {
            FAST_GAIN * dt
        } else {
            let probing = nanos_to_secs(now - control.probe_at);
            let before = (probing - dt).max(0.0);
            PROBE_GAIN * dt + PROBE_ACCEL * (probing * probing - before * before) / 2.0
        };
        let mut grown = (rate * exponent.exp()).min(f64::MAX);
        if control.announced > 0.0 {
            // Never above what the provider says it admits.
            grown = grown.min(control.announced * self.margin()).max(rate);
        }
        if grown >= self.ceiling() {
            self.go_unlimited(control, now);
            return None;
        }
        self.rate.store(grown.to_bits(), Relaxed);
        control
            .schedule
            .respace(now, self.pacing_interval(grown), self.credit());
        Some(grown)
    }

    /// Stop pacing, remembering when, for the next guess.
    pub(super) fn go_unlimited(&self, control: &mut Control, now: i64) {
        self.rate.store(UNLIMITED, Relaxed);
        control.schedule.interval = 0.0;
        self.unlimited_at.store(now, Relaxed);
        self.unlimited_successes
            .store(self.successes.load(Relaxed), Relaxed);
    }

    /// Pace at `rate` from `now`: grow fast from there (`fast`), or hold it
    /// for `probe_after` and then probe. The slots not yet due are re-spaced
    /// at the new rate.
    pub(super) fn set_rate(
        &self,
        control: &mut Control,
        rate: f64,
        now: i64,
        successes: u64,
        fast: bool,
    ) {
        self.close_window();
        let rate = self.clamp(rate).min(self.ceiling());
        self.rate.store(rate.to_bits(), Relaxed);
        control
            .schedule
            .respace(now, self.pacing_interval(rate), self.credit());
        control.grown = successes;
        control.fast = fast;
        let hold = if fast { 0 } else { nanos_i64(self.probe_after) };
        control.probe_at = now.saturating_add(hold);
        control.last_growth = now;
    }
}
