//! The breaker's changes of state: admission (and with it the turn from open
//! to half-open), a failure that trips it, the results of probes, and the
//! manual [`isolate`](CircuitBreaker::isolate) and
//! [`close`](CircuitBreaker::close). Each change is one compare-and-swap of
//! the state word (see `state`).

use std::time::Duration;

use super::log;
use super::refusal::Why;
use super::state::{
    generation, since, State, CLOSED, HALF_OPEN, ISOLATED, LOST_PROBE_MAX, LOST_PROBE_MIN,
    NOT_PROBE, OPEN, TAG,
};
use super::{BreakerPermit, BreakerState, CircuitBreaker, CircuitOpen};
use crate::guards::window::{HI, LO};
use crate::sync::Ordering;
use crate::time::{now_ns, TIME_MAX};
use crate::ErrorKind;

impl CircuitBreaker {
    /// Ask to make a call. While closed, this is one atomic load and always
    /// succeeds. While open, it fails with [`CircuitOpen`], which says when a
    /// probe will be admitted, until the break is over; then the breaker is
    /// half-open and the call is admitted as a probe, while fewer than
    /// [`half_open_probes`](Self::half_open_probes) are in flight.
    ///
    /// Report the call's outcome on the permit, with
    /// [`success`](BreakerPermit::success) or
    /// [`failure`](BreakerPermit::failure).
    ///
    /// ```
    /// use llm_resilience::{CircuitBreaker, ErrorKind};
    ///
    /// let breaker = CircuitBreaker::new();
    /// match breaker.try_acquire() {
    ///     Ok(permit) => permit.failure(ErrorKind::Overloaded),
    ///     Err(open) => println!("not calling: {open}"),
    /// };
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<BreakerPermit<'_>, CircuitOpen> {
        let word = self.state.load(Ordering::Acquire);
        if word == CLOSED {
            return Ok(BreakerPermit {
                breaker: self,
                probe: NOT_PROBE,
            });
        }
        self.acquire_slow(word)
    }

    #[cold]
    #[inline(never)]
    fn acquire_slow(&self, mut word: u64) -> Result<BreakerPermit<'_>, CircuitOpen> {
        let mut now = None;
        loop {
            // The word to swap in, the probe's generation, and whether this
            // begins a half-open state (and whether it replaces lost probes).
            let (next, gen, begins) = match State::decode(word) {
                State::Closed => {
                    return Ok(BreakerPermit {
                        breaker: self,
                        probe: NOT_PROBE,
                    })
                }
                State::Isolated => return Err(CircuitOpen::isolated()),
                State::Open { until } => {
                    let now = *now.get_or_insert_with(now_ns);
                    if now < until {
                        return Err(CircuitOpen::open(Why::Open, until - now));
                    }
                    let gen = self.next_generation(now);
                    (State::half_open(gen, 1), gen, Some(false))
                }
                State::HalfOpen { gen, probes } if probes < self.config.probes => {
                    (State::half_open(gen, probes + 1), gen, None)
                }
                State::HalfOpen { gen, .. } => {
                    let now = *now.get_or_insert_with(now_ns);
                    let elapsed = since(gen, now);
                    // Not less than a second: a breaker with no break must
                    // still not admit every call while half-open.
                    let lost_after = self.config.break_ns.clamp(LOST_PROBE_MIN, LOST_PROBE_MAX);
                    if elapsed < lost_after {
                        return Err(CircuitOpen::open(Why::HalfOpen, lost_after - elapsed));
                    }
                    // Every probe has been out for a whole break: presume
                    // them lost (hung, never dropped) and start a new
                    // generation, whose results alone count.
                    let fresh = self.next_generation(now);
                    (State::half_open(fresh, 1), fresh, Some(true))
                }
            };
            match self
                .state
                .compare_exchange(word, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    if let Some(renewed) = begins {
                        log::half_open(renewed);
                    }
                    return Ok(BreakerPermit {
                        breaker: self,
                        probe: gen,
                    });
                }
                Err(actual) => word = actual,
            }
        }
    }

    /// The generation of a half-open state that begins at `now`: that of
    /// `now`, or, if `now` is not later than the timestamp of the latest
    /// generation (a clock that has not moved since, as tokio's paused clock
    /// with a zero `break_for`, or one that is behind), that of one
    /// nanosecond after it. The timestamps only grow, each claimed by one
    /// read-modify-write, so no two half-open states share a generation
    /// within its 78-hour range, and a probe left over from an earlier state
    /// never acts on a later one. A thread that loses the race to begin the
    /// state has claimed a timestamp for nothing, which is harmless.
    fn next_generation(&self, now: u64) -> u64 {
        let mut last = self.generation_at.load(Ordering::Relaxed);
        loop {
            let at = if now > last { now } else { last + 1 };
            match self.generation_at.compare_exchange_weak(
                last,
                at,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return generation(at),
                Err(actual) => last = actual,
            }
        }
    }

    /// The breaker's state, as the next call would find it: an open breaker
    /// whose break is over is reported half-open (it turns half-open at the
    /// next [`try_acquire`](Self::try_acquire)).
    ///
    /// ```
    /// use llm_resilience::{BreakerState, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::new();
    /// assert_eq!(breaker.state(), BreakerState::Closed);
    /// breaker.isolate();
    /// assert_eq!(breaker.state(), BreakerState::Isolated);
    /// ```
    pub fn state(&self) -> BreakerState {
        match State::decode(self.state.load(Ordering::Acquire)) {
            State::Closed => BreakerState::Closed,
            State::HalfOpen { .. } => BreakerState::HalfOpen,
            State::Isolated => BreakerState::Isolated,
            State::Open { until } => {
                let now = now_ns();
                if now >= until {
                    BreakerState::HalfOpen
                } else {
                    BreakerState::Open {
                        retry_in: Duration::from_nanos(until - now),
                    }
                }
            }
        }
    }

    /// The state as a metric value, without reading the clock: 0 closed,
    /// 1 half-open, 2 open (whether or not its break is over), 3 isolated.
    pub(crate) fn code(&self) -> u8 {
        match self.state.load(Ordering::Acquire) & TAG {
            CLOSED => 0,
            HALF_OPEN => 1,
            OPEN => 2,
            _ => 3,
        }
    }

    /// Open the breaker and hold it open, whatever the calls do, until
    /// [`close`](Self::close): for maintenance, or when an operator knows the
    /// provider is down. Calls are refused with a [`CircuitOpen`] whose
    /// [`retry_in`](CircuitOpen::retry_in) is `None`.
    ///
    /// ```
    /// use llm_resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.isolate();
    /// let refused = breaker.try_acquire().unwrap_err();
    /// assert!(refused.is_isolated());
    /// assert_eq!(refused.retry_in(), None);
    /// ```
    pub fn isolate(&self) {
        let before = self.state.swap(ISOLATED, Ordering::AcqRel);
        if before != ISOLATED {
            log::isolated(before);
        }
    }

    /// Close the breaker, whatever its state, and forget the calls counted so
    /// far. Probes still in flight no longer change the state.
    ///
    /// ```
    /// use llm_resilience::{BreakerState, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.isolate();
    /// breaker.close();
    /// assert_eq!(breaker.state(), BreakerState::Closed);
    /// assert!(breaker.try_acquire().is_ok());
    /// ```
    pub fn close(&self) {
        // Forget first, so that nothing recorded after the close is lost.
        self.forget_successes();
        self.window.reset();
        self.window.aux().store(0, Ordering::Relaxed);
        let before = self.state.swap(CLOSED, Ordering::AcqRel);
        if before != CLOSED {
            log::closed(before, true);
        }
    }

    /// Whether a failure of this kind counts against the provider.
    pub(super) const fn counts(&self, kind: ErrorKind) -> bool {
        match kind {
            ErrorKind::Overloaded | ErrorKind::Server | ErrorKind::Timeout | ErrorKind::Network => {
                true
            }
            ErrorKind::RateLimit => self.config.count_rate_limits,
            _ => false,
        }
    }

    /// A call failed; `probe` is its generation if it was a probe.
    #[cold]
    #[inline(never)]
    pub(super) fn failed(&self, probe: u64) {
        self.drain();
        let now = now_ns();
        let bucket = self.window.advance(now, self.config.span.bucket_ns);
        self.window.add_stamped(HI + LO);
        if probe != NOT_PROBE {
            self.probe_failed(probe, now);
            return;
        }
        // Only a closed breaker opens on the window; a failure reported late,
        // by a call admitted before the breaker opened, is only counted.
        if self.state.load(Ordering::Acquire) != CLOSED {
            return;
        }
        let streak = match self.config.consecutive {
            0 => 0,
            _ => self
                .window
                .aux()
                .fetch_add(1, Ordering::Relaxed)
                .saturating_add(1),
        };
        let (calls, failures) = self.window.counts(bucket);
        let by_streak = self.config.consecutive != 0 && streak >= self.config.consecutive;
        let by_ratio = failures > 0
            && calls >= u64::from(self.config.min_calls)
            && u128::from(failures) * 1_000_000
                >= u128::from(self.config.ratio_ppm) * u128::from(calls);
        if by_streak || by_ratio {
            let until = now.saturating_add(self.config.break_ns).min(TIME_MAX);
            if self
                .state
                .compare_exchange(
                    CLOSED,
                    State::open(until),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                self.window.aux().store(0, Ordering::Relaxed);
                log::opened(by_ratio, calls, failures, streak, self.config.break_ns);
            }
        }
    }

    /// The probe of generation `gen` succeeded: close, with an empty window.
    pub(super) fn probe_succeeded(&self, gen: u64) {
        self.window.add(HI, self.config.span.bucket_ns);
        let mut word = self.state.load(Ordering::Acquire);
        while matches!(State::decode(word), State::HalfOpen { gen: g, .. } if g == gen) {
            // Forget before closing: calls admitted once closed all count.
            self.forget_successes();
            self.window.reset();
            self.window.aux().store(0, Ordering::Relaxed);
            match self
                .state
                .compare_exchange(word, CLOSED, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    log::closed(word, false);
                    return;
                }
                Err(actual) => word = actual,
            }
        }
    }

    /// The probe of generation `gen` failed: open for another break.
    pub(super) fn probe_failed(&self, gen: u64, now: u64) {
        let until = now.saturating_add(self.config.break_ns).min(TIME_MAX);
        let mut word = self.state.load(Ordering::Acquire);
        while matches!(State::decode(word), State::HalfOpen { gen: g, .. } if g == gen) {
            match self.state.compare_exchange(
                word,
                State::open(until),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    log::reopened(self.config.break_ns);
                    return;
                }
                Err(actual) => word = actual,
            }
        }
    }

    /// The probe of generation `gen` was dropped unfinished: free its slot.
    pub(super) fn probe_dropped(&self, gen: u64) {
        let mut word = self.state.load(Ordering::Acquire);
        loop {
            let State::HalfOpen { gen: g, probes } = State::decode(word) else {
                return;
            };
            if g != gen || probes == 0 {
                return;
            }
            match self.state.compare_exchange(
                word,
                State::half_open(gen, probes - 1),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => word = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guards::breaker::state::GEN_MASK;

    // Loom's atomics work only inside a model (tests/loom.rs).
    #[cfg(not(retry_loom))]
    #[test]
    fn generations_never_repeat_on_a_clock_that_stands_still() {
        let breaker = CircuitBreaker::new();
        let t = (5 << 48) + GEN_MASK - 1; // a wrap of the generation on the way
        let a = breaker.next_generation(t);
        let b = breaker.next_generation(t);
        let c = breaker.next_generation(t - 5_000); // a clock behind
        assert_eq!([a, b, c], [GEN_MASK - 1, GEN_MASK, 0]);
        assert_eq!(breaker.next_generation(t + 5_000), generation(t + 5_000));
        // Days later, the generation is the time again.
        let later = t + 3 * GEN_MASK;
        assert_eq!(breaker.next_generation(later), generation(later));
    }

    /// Found by the loom model `stale_probe_does_not_touch_a_new_half_open_state`:
    /// two half-open states begun at one instant shared a generation, so a
    /// probe of the first acted on the second.
    #[cfg(all(feature = "tokio", not(retry_loom)))]
    #[tokio::test(start_paused = true)]
    async fn a_stale_probe_from_the_same_instant_does_nothing() {
        let breaker = CircuitBreaker::new()
            .consecutive_failures(1)
            .break_for(Duration::ZERO);
        breaker.try_acquire().unwrap().failure(ErrorKind::Server);
        let stale = breaker.try_acquire().unwrap();
        assert!(stale.is_probe());
        breaker.close();
        breaker.try_acquire().unwrap().failure(ErrorKind::Server);
        let fresh = breaker.try_acquire().unwrap();
        assert!(fresh.is_probe());
        drop(stale); // would free the fresh probe's slot
        assert!(breaker.try_acquire().is_err(), "one probe at a time");
        fresh.success();
        assert_eq!(breaker.state(), BreakerState::Closed);
    }
}
