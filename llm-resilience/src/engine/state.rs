#![cfg_attr(not(feature = "metrics"), allow(clippy::unit_arg))]
use std::mem::ManuallyDrop;
use std::time::Duration;

#[cfg(feature = "tokio")]
use crate::engine::attempt::InFrame;
use crate::engine::attempt::{Frame, KeyCell};
use crate::guards::limiter::Slot;
use crate::guards::Guards;
use crate::metrics::{self, MetricKeys, Outcome};
use crate::observe::trace::{self, CallSpan};
use crate::time::Clock;
use crate::{
    AdaptiveLimiter, BreakerPermit, CircuitBreaker, CircuitOpen, Elapsed, ErrorKind, Policy,
    RetryBudget,
};

/// How a call turns a refusal into its own error type: an open circuit
/// breaker (`From<CircuitOpen>`), and its own deadline coming before it could
/// send (`From<Elapsed>`). `None` where the call cannot (it names no breaker,
/// or sets no deadline of its own): it is then never refused for that reason.
/// Generated code and [`Policy::call`] make one; public only through
/// `__private`.
#[derive(Debug)]
pub struct Refusals<E> {
    /// The error for a call the open breaker refuses.
    pub open: Option<fn(CircuitOpen) -> E>,
    /// The error for a call whose deadline comes first.
    pub deadline: Option<fn(Elapsed) -> E>,
    /// The error for an attempt of an async call cut off by its attempt
    /// timeout or its deadline. `None`: its attempts are never cut off.
    pub cut_off: Option<fn(Elapsed) -> E>,
}

impl<E> Clone for Refusals<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Refusals<E> {}

impl Drop for State<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.cold.is_some() || self.permit.is_some() || matches!(self.held, Held::Window(_)) {
            self.drop_cold();
        }
    }
}

impl State<'_> {
    #[cold]
    #[inline(never)]
    pub(super) fn drop_cold(&mut self) {
        // A probe's permit dropped here gives its slot back; a place in the
        // limiter's initial window too.
        *self.permit = None;
        self.attempt_ended();
        *self.cold = None;
    }
}

/// What a call starts from: its policy, the clock it reads, its metric keys
/// and the guards it runs under.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Start<'p> {
    /// The call's policy.
    pub(crate) policy: &'p Policy,
    /// The clock its deadline is read on.
    pub(crate) clock: Clock,
    /// Its metric keys.
    pub(crate) name: &'static MetricKeys,
    /// Its breaker, budget and limiter, if any.
    pub(crate) guards: Guards<'p>,
}

impl<'p> Start<'p> {
    /// A sync call of `policy`, with no guards yet.
    #[inline(always)]
    pub(crate) const fn sync(policy: &'p Policy, name: &'static MetricKeys) -> Self {
        Start {
            policy,
            clock: Clock::Std,
            name,
            guards: Guards::NONE,
        }
    }

    /// An async call of `policy`, with no guards yet.
    #[cfg(feature = "tokio")]
    #[inline(always)]
    pub(crate) const fn tokio(policy: &'p Policy, name: &'static MetricKeys) -> Self {
        Start {
            policy,
            clock: Clock::Tokio,
            name,
            guards: Guards::NONE,
        }
    }

    /// The same call, under `guards`.
    #[inline(always)]
    pub(crate) const fn guarded(mut self, guards: Guards<'p>) -> Self {
        self.guards = guards;
        self
    }

    /// The same call, paced by `limiter`.
    #[inline(always)]
    pub(crate) const fn limited(mut self, limiter: Option<&'p AdaptiveLimiter>) -> Self {
        self.guards.limiter = limiter;
        self
    }
}

/// The part of a call's state that only failures use.
#[derive(Debug)]
pub(super) struct Cold {
    /// Failures so far, by kind.
    pub(super) kind_failures: [u32; ErrorKind::COUNT],
    /// Decorrelated jitter's previous delay; `None` until the first retry.
    pub(super) previous: Option<Duration>,
    /// Set when the attempt in flight was cut off by a timeout.
    pub(super) cut_off: Option<Elapsed>,
    /// The call's span.
    pub(super) span: Option<CallSpan>,
    /// The kind of the last failure.
    pub(super) last_kind: Option<ErrorKind>,
}

impl Cold {
    pub(super) const fn new() -> Self {
        Cold {
            kind_failures: [0; ErrorKind::COUNT],
            previous: None,
            cut_off: None,
            span: None,
            last_kind: None,
        }
    }
}

/// The state of one retried call. Generated code and [`Policy::call`] drive
/// it; it is public only through `__private`.
#[derive(Debug)]
pub struct State<'p> {
    pub(super) policy: &'p Policy,
    /// The attempt in flight (from 1), the deadline, the clock and the
    /// idempotency key: what [`attempt()`](crate::attempt()) shows inside.
    pub(super) frame: Frame<'p>,
    /// What only a failure needs, made at the first: a call that succeeds
    /// at once writes nothing of it.
    /// (Dropped by hand, in the `Drop` of `State`, so that a call that never
    /// failed drops it with one test, inline.)
    pub(super) cold: ManuallyDrop<Option<Cold>>,
    /// The call's metric keys.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(super) name: &'static MetricKeys,
    /// When the call started, for metrics.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(super) started: metrics::Started,
    /// The breaker, budget and limiter the call runs under, if any.
    pub(super) guards: Guards<'p>,
    /// What the attempt in flight holds of the limiter.
    pub(super) held: Held,
    /// The breaker's permit for the attempt in flight (or about to start).
    /// (Dropped by hand, as `cold` is.)
    pub(super) permit: ManuallyDrop<Option<BreakerPermit<'p>>>,
}

impl<'p> State<'p> {
    /// Start a call. Reads the clock only when the policy has a deadline (or
    /// when the `metrics` feature times calls).
    #[inline(always)]
    pub(crate) fn new(start: Start<'p>) -> Self {
        let Start {
            policy,
            clock,
            name,
            guards,
        } = start;
        let own = match policy.deadline {
            None => None,
            Some(limit) => clock.now().checked_add(limit),
        };
        let deadline = match (own, crate::engine::attempt::inherited_deadline()) {
            (Some(own), Some(outer)) => Some(own.min(outer)),
            (own, outer) => own.or(outer),
        };
        let mut frame = Frame::new(1, deadline, clock);
        frame.limiter = guards.limiter;
        State {
            policy,
            frame,
            cold: ManuallyDrop::new(None),
            name,
            started: metrics::start(),
            guards,
            held: Held::Nothing,
            permit: ManuallyDrop::new(None),
        }
    }

    /// The part of the state that failures use, made at the first.
    #[cold]
    pub(super) fn cold(&mut self) -> &mut Cold {
        self.cold.get_or_insert_with(Cold::new)
    }

    /// Run the call under `breaker`.
    #[inline]
    pub(crate) fn set_breaker(&mut self, breaker: &'p CircuitBreaker) {
        self.guards.breaker = Some(breaker);
    }

    /// The call's first attempt ran in `first`, a frame of its own, from
    /// `started` (see [`crate::engine::first`]): the call takes over its
    /// idempotency key and its start.
    #[cold]
    pub(crate) fn took_over(&mut self, first: &KeyCell, started: metrics::Started) {
        self.frame.key.take_over(first);
        self.started = started;
    }

    /// Count the call and its retries against `budget`.
    #[inline]
    pub(crate) fn set_budget(&mut self, budget: &'p RetryBudget) {
        self.guards.budget = Some(budget);
    }

    /// Pace the call's attempts on tokens too, at `tokens` each.
    #[inline]
    pub(crate) fn set_cost(&mut self, tokens: u64) {
        self.guards.cost = tokens;
    }

    /// Report the breaker's state to metrics.
    #[cold]
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub(super) fn breaker_seen(&self, breaker: &CircuitBreaker) {
        #[cfg(feature = "metrics")]
        metrics::breaker_state(self.name, breaker.code());
    }

    /// The attempt in flight succeeded: the breaker and the limiter hear of
    /// it, and the call is counted.
    #[inline(always)]
    pub(crate) fn succeeded(&mut self) {
        if let Some(permit) = self.permit.take() {
            if permit.is_probe() {
                self.probe_succeeded(permit);
            } else {
                permit.success();
            }
        }
        if let Some(limiter) = self.guards.limiter {
            if matches!(self.held, Held::Window(_)) {
                self.attempt_ended();
            }
            limiter.on_success();
        }
        self.count_success();
    }

    /// The attempt in flight succeeded, but not for good: a streamed call's
    /// first content event came. The limiter hears of the success, and the
    /// call is counted; the breaker's permit is kept for the stream's
    /// outcome, reported by [`stream_completed`](Self::stream_completed) or
    /// as a failure ([`report_failure`](Self::report_failure)). Dropped
    /// unreported (the consumer dropped the stream), it counts as neither.
    #[cfg(all(feature = "tokio", feature = "stream"))]
    pub(crate) fn succeeded_holding(&mut self) {
        if let Some(limiter) = self.guards.limiter {
            if matches!(self.held, Held::Window(_)) {
                self.attempt_ended();
            }
            limiter.on_success();
        }
    }

    /// The stream of a call that [held](Self::succeeded_holding) its permit
    /// ended complete: the breaker hears of the success, and the call is
    /// counted, with its duration to the stream's end.
    #[cfg(all(feature = "tokio", feature = "stream"))]
    pub(crate) fn stream_completed(&mut self) {
        if let Some(permit) = self.permit.take() {
            if permit.is_probe() {
                self.probe_succeeded(permit);
            } else {
                permit.success();
            }
        }
        self.count_success();
    }

    #[cold]
    pub(super) fn probe_succeeded(&self, permit: BreakerPermit<'_>) {
        permit.success();
        if let Some(breaker) = self.guards.breaker {
            self.breaker_seen(breaker);
        }
    }

    /// The attempt in flight ended: a place it held in the limiter's initial
    /// window is free again.
    pub(super) fn attempt_ended(&mut self) {
        if let Held::Window(cost) = self.held {
            if let Some(limiter) = self.guards.limiter {
                limiter.leave_window(cost);
            }
        }
        self.held = Held::Nothing;
    }

    /// Run `f` as the attempt in flight: inside the call's span once it has
    /// one, with [`attempt()`](crate::attempt()) describing it.
    #[inline]
    pub(crate) fn run_attempt<R>(&self, f: impl FnOnce() -> R) -> R {
        let span = self.cold.as_ref().and_then(|cold| cold.span.as_ref());
        trace::in_span(span, || self.frame.enter(f))
    }

    /// The attempt future `body`, polled as [`run_attempt`](Self::run_attempt)
    /// runs a sync attempt.
    #[cfg(feature = "tokio")]
    #[inline]
    pub(crate) fn attempt_future<F>(&self, body: F) -> InFrame<&Self, F> {
        InFrame::new(self, body)
    }

    /// Count the call's success.
    #[inline]
    pub(super) fn count_success(&self) {
        if self.frame.number > 1 {
            self.succeeded_after_retries();
        } else {
            metrics::call_finished(self.name, Outcome::FirstTrySuccess, self.started);
        }
    }

    #[cold]
    pub(super) fn succeeded_after_retries(&self) {
        if let Some(span) = self.cold.as_ref().and_then(|cold| cold.span.as_ref()) {
            trace::succeeded(span, self.frame.number, self.frame.key.get());
        }
        self.call_finished(Outcome::SuccessAfterRetry);
    }

    /// Count the call's end. Only after a failure: a call that succeeds at
    /// once counts in [`count_success`](Self::count_success).
    #[cold]
    pub(crate) fn call_finished(&self, outcome: Outcome) {
        metrics::call_finished(self.name, outcome, self.started);
    }
}

/// What the attempt in flight holds of its limiter, once it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Held {
    /// Nothing: it did not wait for the limiter.
    Nothing,
    /// It waited for a slot of the schedule.
    Paced,
    /// A place in the initial window, for a call of this many tokens.
    Window(u64),
}

impl From<Slot> for Held {
    fn from(slot: Slot) -> Self {
        match slot {
            Slot::Queued(..) => Held::Paced,
            Slot::Window(cost) => Held::Window(cost),
            Slot::Free | Slot::WindowFull(_) => Held::Nothing,
        }
    }
}

/// An attempt's future is polled inside its call's state: the call's span
/// and the attempt's frame.
#[cfg(feature = "tokio")]
impl crate::engine::attempt::Enter for &State<'_> {
    #[inline]
    fn enter<R>(&self, f: impl FnOnce() -> R) -> R {
        self.run_attempt(f)
    }
}
