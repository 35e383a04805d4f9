#![cfg_attr(not(feature = "metrics"), allow(clippy::unit_arg))]
//! Admission: what the guards say before an attempt. An open breaker refuses
//! at once; the budget counts the call; the limiter hands out a send slot,
//! never one past the deadline, and the call waits for it (re-checking as
//! the limiter's rate moves), holding nothing scarce while it waits.

use std::time::Duration;

use crate::engine::state::{Cold, Held, Refusals, State};
use crate::guards::limiter::Slot;
use crate::metrics::Outcome;
use crate::observe::trace::{self, Failure, GiveUp};
use crate::{AdaptiveLimiter, CircuitBreaker, CircuitOpen, Classify, ErrorKind};

/// How often a call waiting for its send slot looks at the schedule again:
/// when the limiter's rate changes, the slot moves, earlier or later.
pub(super) const RECHECK_PACING: Duration = Duration::from_millis(250);

/// A limiter's send slot that its call has not used yet: given back when
/// dropped (the call was dropped while it waited for it, or refused after),
/// kept by [`used`](GiveBack::used).
struct GiveBack<'l> {
    limiter: Option<&'l AdaptiveLimiter>,
    slot: Slot,
}

impl<'l> GiveBack<'l> {
    fn new(limiter: Option<&'l AdaptiveLimiter>, slot: Slot) -> Self {
        GiveBack { limiter, slot }
    }

    /// The attempt goes ahead with the slot: it is no longer given back.
    fn used(mut self) -> Slot {
        self.limiter = None;
        self.slot
    }
}

impl Drop for GiveBack<'_> {
    fn drop(&mut self) {
        if let Some(limiter) = self.limiter {
            limiter.give_back(self.slot);
        }
    }
}

/// The wait for a limiter's slot before an attempt: naps of at most
/// [`RECHECK_PACING`], after each of which the slot is checked again (the
/// limiter may have learnt a lower rate, or the deadline come nearer).
struct Pacing<'l> {
    unused: GiveBack<'l>,
    /// The wait left at the last check.
    pace: Duration,
    skip: bool,
    /// Whether a nap was handed out.
    started: bool,
}

impl<'l> Pacing<'l> {
    /// The next nap, or `None` once the slot is due.
    fn nap<E>(
        &mut self,
        state: &mut State<'_>,
        refusals: &Refusals<E>,
    ) -> Result<Option<Duration>, E> {
        if self.skip {
            return Ok(None);
        }
        if self.started {
            // Whether the nap just taken ended before the slot did: the
            // caller looks again, and may find its slot moved past.
            let looked_again = self.pace > RECHECK_PACING;
            match state.still_to_wait(&mut self.unused.slot, looked_again, refusals)? {
                Some(more) => self.pace = more,
                None => return Ok(None),
            }
        }
        self.started = true;
        Ok(Some(self.pace.min(RECHECK_PACING)))
    }

    /// The slot is due: the breaker's permit, then the attempt holds it.
    fn admitted<E>(self, state: &mut State<'_>, refusals: &Refusals<E>) -> Result<(), E> {
        state.permit_for_attempt(refusals)?;
        state.held = Held::from(self.unused.used());
        Ok(())
    }
}

impl<'p> State<'p> {
    /// Before an attempt of a call with guards, in order: the breaker's
    /// verdict (an open breaker refuses at once, before anything else is
    /// spent), the call counted in the budget (first attempt), and the
    /// limiter's send slot, taken only if it comes before the deadline.
    /// Returns how long to wait for that slot. A probe slot of a half-open
    /// breaker is never held through that wait: it is given back and asked
    /// for again by [`permit_for_attempt`](Self::permit_for_attempt).
    ///
    /// Returns the limiter that paces, if one does: its slot is taken (off
    /// the success path) by [`take_slot`](Self::take_slot).
    #[inline]
    pub(super) fn admit<E>(
        &mut self,
        refusals: &Refusals<E>,
    ) -> Result<Option<&'p AdaptiveLimiter>, E> {
        self.permit_for_attempt(refusals)?;
        if self.frame.number == 1 {
            if let Some(budget) = self.guards.budget {
                budget.record_call();
            }
        }
        Ok(self.guards.limiter.filter(|limiter| !limiter.is_idle()))
    }

    /// The limiter's part of [`admit`](Self::admit), when it paces.
    #[cold]
    #[inline(never)]
    pub(super) fn take_slot<E>(
        &mut self,
        limiter: &AdaptiveLimiter,
        refusals: &Refusals<E>,
    ) -> Result<(Duration, Slot), E> {
        // Only a call that can report its deadline is refused by it.
        let report = self.deadline_error(refusals);
        let within = match report {
            Some(_) => self.time_left().unwrap_or(Duration::MAX),
            None => Duration::MAX,
        };
        match (limiter.admit_within(within, self.guards.cost), report) {
            (Ok((pace, slot)), _) => {
                if !pace.is_zero() && self.permit.as_ref().is_some_and(|p| p.is_probe()) {
                    // Nothing scarce is held across a wait.
                    *self.permit = None;
                }
                Ok((pace, slot))
            }
            (Err(_), Some((elapsed, into))) => {
                self.paced_past_deadline();
                Err(into(elapsed))
            }
            // Not asked for a slot within a limit: never refused.
            (Err(pace), None) => Ok((pace, Slot::NONE)),
        }
    }

    /// The breaker's permit for the attempt about to start, unless the call
    /// holds a valid one: before the limiter's pacing, and again after it
    /// if the wait gave a probe slot back (or the breaker opened meanwhile).
    /// A call that cannot report an open breaker (none was given) is not
    /// refused by one.
    #[inline]
    pub(super) fn permit_for_attempt<E>(&mut self, refusals: &Refusals<E>) -> Result<(), E> {
        let (Some(breaker), Some(into)) = (self.guards.breaker, refusals.open) else {
            return Ok(());
        };
        // A retry's permit was taken before its sleep while the breaker was
        // closed; if it opened meanwhile, the retry asks again.
        let stale = match &*self.permit {
            None => true,
            Some(permit) => !permit.is_probe() && breaker.code() != 0,
        };
        if stale {
            *self.permit = None;
            match breaker.try_acquire() {
                Ok(permit) => {
                    if permit.is_probe() {
                        self.breaker_seen(breaker);
                    }
                    *self.permit = Some(permit);
                }
                Err(open) => return Err(into(self.refused(breaker, open))),
            }
        }
        Ok(())
    }

    /// The limiter's next slot comes after the deadline: the attempt is
    /// never started, and the call fails with its deadline error (made by
    /// the caller).
    #[cold]
    pub(super) fn paced_past_deadline(&mut self) {
        // A probe's slot goes back at once.
        *self.permit = None;
        let failure = Failure {
            attempt: self.frame.number,
            kind: ErrorKind::Timeout,
            request_id: None,
            key: self.frame.key.get(),
        };
        let cold = self.cold.get_or_insert_with(Cold::new);
        cold.last_kind = Some(ErrorKind::Timeout);
        let span = cold.span.get_or_insert_with(trace::policy_span);
        trace::gave_up(span, &failure, GiveUp::PacedPastDeadline);
        self.call_finished(Outcome::GaveUp);
    }

    /// After part of the wait for a send slot: `None` once it is due,
    /// else how much longer (the schedule moves with the limiter's rate),
    /// or the deadline error if the slot has moved past the deadline.
    pub(super) fn still_to_wait<E>(
        &mut self,
        slot: &mut Slot,
        looked_again: bool,
        refusals: &Refusals<E>,
    ) -> Result<Option<Duration>, E> {
        let Some(limiter) = self.guards.limiter else {
            return Ok(None);
        };
        let more = limiter.wait_for(slot, looked_again);
        if more.is_zero() {
            return Ok(None);
        }
        if let Some((elapsed, into)) = self.deadline_error(refusals) {
            if !self.wait_fits(more) {
                self.paced_past_deadline();
                return Err(into(elapsed));
            }
        }
        Ok(Some(more))
    }

    /// Everything before an attempt of a sync call with guards: admission,
    /// the limiter's pacing, and the breaker's permit. `Err` is the error
    /// the call ends with: the breaker refused it, or its turn to send comes
    /// after its deadline.
    #[inline]
    pub(crate) fn before_attempt_sync<E>(&mut self, refusals: &Refusals<E>) -> Result<(), E> {
        if self.nothing_to_admit() {
            return Ok(());
        }
        self.admit_and_pace_sync(refusals)
    }

    /// Whether the guards have nothing to say before an attempt: no breaker
    /// or budget, and a limiter (if any) that does not pace yet. A few
    /// relaxed loads: the success path of a function whose own limiter has
    /// seen no `429`.
    #[inline]
    pub(crate) fn needs_admission(&self) -> bool {
        !self.nothing_to_admit()
    }

    #[inline]
    pub(super) fn nothing_to_admit(&self) -> bool {
        self.guards.breaker.is_none()
            && self.guards.budget.is_none()
            && self.guards.limiter.is_none_or(AdaptiveLimiter::is_idle)
    }

    #[inline]
    pub(super) fn admit_and_pace_sync<E>(&mut self, refusals: &Refusals<E>) -> Result<(), E> {
        match self.admit(refusals)? {
            Some(limiter) => self.slot_sync(limiter, refusals),
            None => Ok(()),
        }
    }

    /// Take the limiter's slot and wait for it, before an attempt of a sync
    /// call.
    #[cold]
    #[inline(never)]
    pub(super) fn slot_sync<E>(
        &mut self,
        limiter: &AdaptiveLimiter,
        refusals: &Refusals<E>,
    ) -> Result<(), E> {
        let Some(mut pacing) = self.slot(limiter, refusals)? else {
            return Ok(());
        };
        while let Some(nap) = pacing.nap(self, refusals)? {
            std::thread::sleep(nap);
        }
        pacing.admitted(self, refusals)
    }

    /// [`before_attempt_sync`](Self::before_attempt_sync) for an async call.
    #[cfg(feature = "tokio")]
    #[inline]
    pub(crate) async fn before_attempt_async<E>(
        &mut self,
        refusals: &Refusals<E>,
    ) -> Result<(), E> {
        if self.nothing_to_admit() {
            return Ok(());
        }
        match self.admit(refusals)? {
            Some(limiter) => self.slot_async(limiter, refusals).await,
            None => Ok(()),
        }
    }

    /// [`slot_sync`](Self::slot_sync) for an async call.
    #[cfg(feature = "tokio")]
    pub(super) async fn slot_async<E>(
        &mut self,
        limiter: &AdaptiveLimiter,
        refusals: &Refusals<E>,
    ) -> Result<(), E> {
        let Some(mut pacing) = self.slot(limiter, refusals)? else {
            return Ok(());
        };
        while let Some(nap) = pacing.nap(self, refusals)? {
            tokio::time::sleep(nap).await;
        }
        pacing.admitted(self, refusals)
    }

    /// Take the limiter's slot: `None` if it is due now (the attempt holds
    /// it), or the wait for it, which the caller sleeps through its naps,
    /// the sync or the async way.
    fn slot<E>(
        &mut self,
        limiter: &AdaptiveLimiter,
        refusals: &Refusals<E>,
    ) -> Result<Option<Pacing<'p>>, E> {
        let (pace, slot) = self.take_slot(limiter, refusals)?;
        if pace.is_zero() {
            self.held = Held::from(slot);
            return Ok(None);
        }
        Ok(Some(Pacing {
            // A slot not used in the end (the call was dropped while it
            // waited, or refused after) goes back.
            unused: GiveBack::new(self.guards.limiter, slot),
            pace,
            // Under `testing::skip_sleeps`, the whole wait is skipped at once.
            skip: crate::testing::skip_pacing(pace),
            started: false,
        }))
    }

    /// The breaker refused an attempt: the call fails fast (its first
    /// attempt), or gives up (a retry whose breaker opened while it slept).
    #[cold]
    pub(super) fn refused(&mut self, breaker: &CircuitBreaker, open: CircuitOpen) -> CircuitOpen {
        self.breaker_seen(breaker);
        self.cold().last_kind = Some(open.kind());
        trace::failed_fast(&open, self.frame.number);
        let outcome = if self.frame.number == 1 {
            Outcome::FailedFast
        } else {
            Outcome::GaveUp
        };
        self.call_finished(outcome);
        open
    }
}
