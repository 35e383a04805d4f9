//! How a caller takes its place before an attempt: a numbered send slot, a
//! share of the token schedule, or a place in the initial window (a
//! [`Slot`]); how long it waits for it; and giving it back unused.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::{AdaptiveLimiter, UNLIMITED};
use crate::time::{nanos_i64, since_epoch_ns};

/// How far past its slot a waiting caller may wake and still count as on
/// time: a timer's lateness, not a sleep through the slot (nanoseconds).
const OVERSLEPT_NS: f64 = 2_000_000.0;

impl AdaptiveLimiter {
    /// Reserve the caller's send slot and return how long to wait for it:
    /// call it right before every attempt, sleep that long, then send.
    /// Every call reserves a slot of its own, so callers that arrive
    /// together leave at different times.
    ///
    /// While unlimited this is one atomic load, with no clock read.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// let limiter = AdaptiveLimiter::new().initial_rate(20.0).burst(1);
    /// let delays: Vec<Duration> = (0..3).map(|_| limiter.acquire_delay()).collect();
    /// assert!(delays[0] < delays[1] && delays[1] < delays[2], "{delays:?}");
    /// ```
    #[inline]
    pub fn acquire_delay(&self) -> Duration {
        if self.rate.load(Relaxed) == UNLIMITED {
            return Duration::ZERO;
        }
        self.reserve(i64::MAX, 0)
            .map_or(Duration::MAX, |(delay, _)| delay)
    }

    /// Reserve the next send slot only if it comes sooner than `within` from
    /// now: `Ok(delay)` with how long to wait for it, as
    /// [`acquire_delay`](Self::acquire_delay) returns, or `Err(delay)` with
    /// how long the next free slot is away, in which case nothing is
    /// reserved and the slot stays free for other callers. The retry engine
    /// calls it with the time left before a call's deadline, so that a call
    /// never waits for a slot it could not use.
    ///
    /// While unlimited this is one atomic load, with no clock read.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// let limiter = AdaptiveLimiter::new().initial_rate(1.0); // a slot a second
    /// assert_eq!(limiter.try_acquire_within(Duration::from_secs(5)), Ok(Duration::ZERO));
    /// // The next slot is about a second away: too late for a 100 ms budget ...
    /// let refused = limiter.try_acquire_within(Duration::from_millis(100)).unwrap_err();
    /// assert!(refused > Duration::from_millis(900), "{refused:?}");
    /// // ... and still free for a caller that can wait for it.
    /// let delay = limiter.try_acquire_within(Duration::from_secs(5)).unwrap();
    /// assert!(delay > Duration::from_millis(900) && delay <= Duration::from_secs(1), "{delay:?}");
    /// ```
    #[inline]
    pub fn try_acquire_within(&self, within: Duration) -> Result<Duration, Duration> {
        self.reserve_within(within).map(|(delay, _)| delay)
    }

    /// [`try_acquire_within`](Self::try_acquire_within), with the slot
    /// taken, for [`give_back`](Self::give_back).
    #[inline]
    pub(crate) fn reserve_within(&self, within: Duration) -> Result<(Duration, Slot), Duration> {
        if self.rate.load(Relaxed) == UNLIMITED || !self.learns_now() {
            return Ok((Duration::ZERO, Slot::NONE));
        }
        self.reserve(nanos_i64(within), 0)
    }

    /// Give back a slot its caller will not use (it was dropped while it
    /// waited, or refused after): if no later slot was handed out since,
    /// the next caller gets it instead of waiting an interval more. A slot
    /// with later ones behind it stays a gap in the schedule.
    #[cold]
    pub(crate) fn give_back(&self, slot: Slot) {
        match slot {
            Slot::Queued(n, tokens) => {
                let mut control = self.lock();
                if let Some(n) = n {
                    if control.schedule.issued == n + 1 {
                        control.schedule.issued = n;
                    }
                }
                if let Some((start, cost)) = tokens {
                    if control.tokens.issued == start.saturating_add(cost) {
                        control.tokens.issued = start;
                    }
                }
            }
            Slot::Window(cost) => self.leave_window(cost),
            Slot::Free | Slot::WindowFull(_) => {}
        }
    }

    /// How long until `slot` is due, as the schedule stands now (it moves
    /// when the rate changes): zero once it is, or when the limiter no
    /// longer paces. `looked_again`: the caller slept less than its last
    /// wait, to look at the schedule again, rather than until its slot.
    pub(crate) fn wait_for(&self, slot: &mut Slot, looked_again: bool) -> Duration {
        match *slot {
            Slot::Free | Slot::Window(_) => Duration::ZERO,
            Slot::WindowFull(cost) => {
                if self.rate.load(Relaxed) != UNLIMITED
                    || cost > 0 && self.token_pacing.load(Relaxed)
                {
                    // Pacing began meanwhile: a place in the schedule.
                    return match self.reserve(i64::MAX, cost) {
                        Ok((wait, queued)) => {
                            *slot = queued;
                            wait
                        }
                        Err(wait) => wait,
                    };
                }
                let (wait, place) = self.enter_window(cost);
                *slot = place;
                wait
            }
            Slot::Queued(number, tokens) => {
                let now = since_epoch_ns();
                let mut control = self.lock();
                // The rate moves for the callers already waiting too: a hint
                // past its reset ends, and growth re-spaces their slots.
                self.grow(&mut control, now);
                let mut due = now;
                if let Some(n) = &number {
                    if self.rate.load(Relaxed) != UNLIMITED {
                        let schedule = &mut control.schedule;
                        // Callers that slept through their slots (the rate
                        // rose while they slept between two looks, and
                        // moved their slots earlier, into the past) leave
                        // one slot apart, not together: each at least an
                        // interval after the last that did. One that has to
                        // wait for that, or finds its slot long past, puts
                        // the schedule back on from when it leaves, at its
                        // slot, and the slots after it move on with it. A
                        // caller that slept until its slot and woke a little
                        // late (a timer's lateness) just goes.
                        let late = now.saturating_sub(schedule.due(*n)) as f64;
                        if schedule.interval > 0.0 && late > OVERSLEPT_NS {
                            let long_past = late > (self.credit() + 2.0) * schedule.interval;
                            let at = if looked_again {
                                let at = now.max(
                                    schedule.late_sent.saturating_add(schedule.interval as i64),
                                );
                                schedule.late_sent = at;
                                at
                            } else {
                                now
                            };
                            if at > now || (long_past && *n as f64 >= schedule.anchor_n) {
                                schedule.anchor_n = *n as f64;
                                schedule.anchor_t = at;
                            }
                        }
                        due = due.max(schedule.due(*n));
                    }
                }
                if let Some((start, cost)) = tokens {
                    if control.tokens.per_second > 0.0 {
                        due = due.max(control.tokens.due(start.saturating_add(cost)));
                    }
                }
                Duration::from_nanos(u64::try_from(due.saturating_sub(now)).unwrap_or(0))
            }
        }
    }

    /// The retry engine's [`try_acquire_within`](Self::try_acquire_within):
    /// before the limiter has learnt anything, also a place in the initial
    /// window ([`initial_window`](Self::initial_window)), or how long to
    /// wait before asking again.
    #[inline]
    pub(crate) fn admit_within(
        &self,
        within: Duration,
        cost: u64,
    ) -> Result<(Duration, Slot), Duration> {
        if cost > 0 && self.token_pacing.load(Relaxed) && self.learns_now() {
            return self.reserve(nanos_i64(within), cost);
        }
        if self.rate.load(Relaxed) == UNLIMITED && self.window.load(Relaxed) != 0 {
            let (wait, slot) = self.enter_window(cost);
            if matches!(slot, Slot::WindowFull(_)) && wait >= within {
                // The window is full, and the deadline comes before it is
                // asked again.
                return Err(wait);
            }
            return Ok((wait, slot));
        }
        self.reserve_within(within)
    }

    /// The paced path of [`acquire_delay`](Self::acquire_delay) and
    /// [`try_acquire_within`](Self::try_acquire_within): take the next slot
    /// if it is due less than `within` nanoseconds from now (`i64::MAX`: any
    /// slot), else `Err` with how far away it is, taking nothing.
    #[inline(never)]
    fn reserve(&self, within: i64, cost: u64) -> Result<(Duration, Slot), Duration> {
        let now = since_epoch_ns();
        let mut control = self.lock();
        let control = &mut *control;
        let rate = self.grow(control, now);
        let credit = self.credit();
        let schedule = &mut control.schedule;
        // The request schedule's next slot, when requests are paced.
        let n = rate.map(|rate| {
            if schedule.interval == 0.0 {
                // The first paced reservation (of an `initial_rate`).
                schedule.interval = self.pacing_interval(rate);
            }
            // After an idle spell, up to `burst` slots are due at once.
            let earliest = now.saturating_sub((credit * schedule.interval) as i64);
            let n = schedule.issued;
            if schedule.due(n) < earliest {
                schedule.anchor_n = n as f64;
                schedule.anchor_t = earliest;
            }
            n
        });
        let mut due = n.map_or(now, |n| schedule.due(n));
        // The token schedule's, when the caller states a cost and the
        // provider announced a token limit.
        let tokens = &mut control.tokens;
        // A call costing more than the bucket holds waits for a full bucket,
        // no longer: whether it is too large is the provider's to say.
        let cost = cost.min(tokens.burst as u64);
        let start = (cost > 0 && tokens.per_second > 0.0).then(|| {
            tokens.idle_credit(now);
            tokens.issued
        });
        if let Some(start) = start {
            // Due once the provider's bucket has refilled all its tokens.
            due = due.max(tokens.due(start.saturating_add(cost)));
        }
        if n.is_none() && start.is_none() {
            return Ok((Duration::ZERO, Slot::NONE));
        }
        let ahead = due.saturating_sub(now);
        let wait = Duration::from_nanos(u64::try_from(ahead).unwrap_or(0));
        if within != i64::MAX && ahead >= within {
            return Err(wait);
        }
        if let Some(n) = n {
            control.schedule.issued = n + 1;
        }
        if let Some(start) = start {
            control.tokens.issued = start.saturating_add(cost);
        }
        Ok((wait, Slot::Queued(n, start.map(|start| (start, cost)))))
    }
}

/// What an attempt holds of a limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Nothing: the limiter does not pace.
    Free,
    /// Its number in the schedule (none when only tokens are paced), and
    /// the tokens it took: where in the token schedule they start, and how
    /// many.
    Queued(Option<u64>, Option<(u64, u64)>),
    /// A place in the initial window, given back when the attempt ends,
    /// with the tokens the call said it costs.
    Window(u64),
    /// Waiting for a place in the initial window, for a call that costs
    /// these tokens.
    WindowFull(u64),
}

impl Slot {
    /// No slot: the limiter did not pace.
    pub(crate) const NONE: Slot = Slot::Free;
}
