#![cfg_attr(not(feature = "metrics"), allow(clippy::unit_arg))]
//! The decision after a failed attempt: classify, tell the breaker and the
//! limiter, then retry (after a backoff or a `Retry-After`) or give up, and
//! why.

use std::time::Duration;

use crate::engine::state::Held;
use crate::engine::state::{Cold, State};
use crate::metrics::{self, Outcome};
use crate::observe::trace::{self, Failure, GiveUp, MakeSpan};
use crate::{Classify, DelaySource, Elapsed, ErrorKind, RetryEvent};

impl<'p> State<'p> {
    /// Tell the breaker and the limiter how the attempt in flight failed
    /// (for a streamed call, the attempt is in flight until its stream
    /// ends: see [`State::succeeded_holding`]).
    pub(super) fn report_failure<E: Classify>(&mut self, error: &E, kind: ErrorKind) {
        if let Some(permit) = self.permit.take() {
            permit.failure(kind);
            if let Some(breaker) = self.guards.breaker {
                self.breaker_seen(breaker);
            }
        }
        let paced = self.held == Held::Paced;
        self.attempt_ended();
        self.report_to_limiter(error, kind, paced);
    }

    /// Tell the limiter how an attempt failed.
    fn report_to_limiter<E: Classify>(&mut self, error: &E, kind: ErrorKind, paced: bool) {
        if let Some(limiter) = self.guards.limiter.filter(|l| l.learns_now()) {
            if kind == ErrorKind::RateLimit {
                limiter.rate_limited(error.retry_after(), paced);
                metrics::limiter_rate(self.name, limiter.rate().unwrap_or(0.0));
            } else {
                limiter.on_other_failure();
            }
        }
    }

    /// Before sleeping for a retry: the breaker's permit for it, and the
    /// budget's leave, or why not.
    pub(super) fn guard_retry(&mut self) -> Result<(), GiveUp> {
        if let Some(breaker) = self.guards.breaker {
            match breaker.try_acquire() {
                // Closed: keep the permit (it costs nothing) for after the
                // sleep.
                Ok(permit) if !permit.is_probe() => *self.permit = Some(permit),
                // Half-open: do not hold a probe slot through the sleep; the
                // retry asks for one when it wakes.
                Ok(probe) => drop(probe),
                Err(_) => {
                    self.breaker_seen(breaker);
                    return Err(GiveUp::CircuitOpen);
                }
            }
        }
        if let Some(budget) = self.guards.budget {
            if !budget.try_retry() {
                // A probe's slot goes back at once.
                *self.permit = None;
                metrics::budget_refused(self.name);
                return Err(GiveUp::Budget);
            }
        }
        Ok(())
    }

    /// Whether the call, having given up, should go on to its fallback: its
    /// last error is of a kind in the policy's `fallback_on`, and its
    /// deadline has not passed.
    pub(crate) fn falls_back(&self) -> bool {
        self.cold
            .as_ref()
            .and_then(|cold| cold.last_kind)
            .is_some_and(|kind| self.policy.fallback_on.contains(kind))
            && self.before_deadline()
    }

    /// Decide what to do after attempt `self.frame.number` failed with `error`:
    /// `Some(delay)` to sleep and try again, `None` to give up and return the
    /// error. `make_span` opens the call's span, the first time anything is
    /// worth reporting.
    #[cold]
    pub(crate) fn failed<E, W, H>(
        &mut self,
        error: &E,
        when: W,
        on_retry: H,
        make_span: MakeSpan,
    ) -> Option<Duration>
    where
        E: Classify,
        W: FnOnce(&E) -> bool,
        H: FnOnce(&RetryEvent<'_, E>),
    {
        let failed = self.frame.number;
        let cut_off = self.cold().cut_off.take();
        let kind = if cut_off.is_some() {
            ErrorKind::Timeout
        } else {
            error.kind()
        };
        self.report_failure(error, kind);
        let decision = self.decide(error, kind, cut_off, when);
        let cold = self.cold.get_or_insert_with(Cold::new);
        cold.last_kind = Some(kind);
        let span = cold.span.get_or_insert_with(make_span);
        let failure = Failure {
            attempt: failed,
            kind,
            request_id: error.request_id(),
            key: self.frame.key.get(),
        };
        metrics::attempt_failed(self.name, kind);
        match decision {
            Ok((delay, source, kind)) => {
                metrics::retried(self.name);
                trace::retrying(span, &failure, delay, source);
                on_retry(&RetryEvent {
                    attempt: failed,
                    error,
                    kind,
                    delay,
                    source,
                });
                self.frame.number = failed + 1;
                Some(delay)
            }
            Err((why, _)) => {
                trace::gave_up(span, &failure, why);
                let outcome = match why {
                    // The call's only attempt failed in a way no retry fixes.
                    GiveUp::NotRetried(_) | GiveUp::Rejected if failed == 1 => Outcome::NotRetried,
                    _ => Outcome::GaveUp,
                };
                self.call_finished(outcome);
                None
            }
        }
    }

    /// The retry decision: the delay, where it came from and the error's
    /// kind, or why the call gives up.
    #[allow(clippy::type_complexity)]
    pub(super) fn decide<E, W>(
        &mut self,
        error: &E,
        kind: ErrorKind,
        cut_off: Option<Elapsed>,
        when: W,
    ) -> Result<(Duration, DelaySource, ErrorKind), (GiveUp, ErrorKind)>
    where
        E: Classify,
        W: FnOnce(&E) -> bool,
    {
        let failed = self.frame.number;
        if cut_off.is_some_and(|e| e.is_deadline()) {
            return Err((GiveUp::Deadline, kind));
        }
        let policy = self.policy;
        if kind.is_never_retried() || !policy.on.contains(kind) {
            return Err((GiveUp::NotRetried(kind), kind));
        }
        if !when(error) {
            return Err((GiveUp::Rejected, kind));
        }
        if failed >= policy.attempts_allowed() {
            return Err((GiveUp::Exhausted, kind));
        }
        let count = &mut self.cold().kind_failures[kind.index()];
        *count = count.saturating_add(1);
        let kind_cap = policy.kind_caps[kind.index()];
        if kind_cap != 0 && *count >= kind_cap {
            return Err((GiveUp::KindCap(kind), kind));
        }
        let (delay, source) = match error.retry_after() {
            Some(asked) if !asked.is_zero() => {
                if asked > policy.retry_after_cap {
                    return Err((GiveUp::RetryAfterTooLong(asked), kind));
                }
                (
                    policy.jitter.after_retry_after(asked),
                    DelaySource::RetryAfter,
                )
            }
            _ => (self.backoff(failed), DelaySource::Backoff),
        };
        if !self.wait_fits(delay) {
            return Err((GiveUp::Deadline, kind));
        }
        if let Err(why) = self.guard_retry() {
            return Err((why, kind));
        }
        Ok((delay, source, kind))
    }

    /// The policy's backoff delay after failed attempt `failed`.
    pub(super) fn backoff(&mut self, failed: u32) -> Duration {
        let policy = self.policy;
        crate::Backoff::delay_after(
            &policy.wait,
            policy.jitter,
            failed,
            &mut self.cold().previous,
        )
    }

    /// Note that the attempt in flight was cut off.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn note_cut_off(&mut self, elapsed: Elapsed) {
        self.cold().cut_off = Some(elapsed);
    }
}
