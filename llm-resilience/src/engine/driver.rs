//! The driver: the one retry loop that `#[retry]`, [`Policy::call`] and its
//! relatives, and every integration run.
//!
//! A [`Call`] holds what a retried call runs under (its [`State`], the hooks
//! `when` and `on_retry`, the conversions of refusals into its error type).
//! [`Call::run_sync`] runs a sync body to the end: admission by the guards,
//! the attempt, the decision after a failure, the sleep, again. An async body
//! cannot be handed over the same way (a body that borrows its function's
//! arguments, `&mut self` included, cannot be a closure that returns a new
//! future each time without losing `Send`), so [`Call::attempt_async`] runs
//! one whole turn of the same loop (admission, the attempt cut off at its
//! limit, the decision, the sleep) and callers drive it with a bare `loop`.
//! Either way, every rule of the loop lives here and in the [`State`] methods
//! it calls, once.
//!
//! A call that gives up with an error its policy falls back on, before its
//! deadline, ends with [`Ending::FallBack`]: the caller runs its fallback
//! through the [`FallBack`] it gets, which starts it as a fresh call that ends
//! no later than this one's deadline.

use std::time::Instant;

use crate::engine::attempt::{Frame, KeyCell};
use crate::engine::deadline::DeadlineReport;
use crate::engine::state::{Refusals, Start, State};
#[cfg(all(feature = "tokio", feature = "stream"))]
use crate::metrics;
use crate::observe::trace::MakeSpan;
use crate::time::Clock;
#[cfg(feature = "tokio")]
use crate::Elapsed;
use crate::{Classify, RetryEvent};

/// A retried call in progress: its state, its hooks, and how refusals become
/// its error type. Made by generated code and by [`Policy`](crate::Policy)'s
/// calls; public only through `__private`.
#[derive(Debug)]
pub struct Call<'p, E, W, H> {
    state: State<'p>,
    refusals: Refusals<E>,
    when: W,
    on_retry: H,
    make_span: MakeSpan,
    fallback: bool,
    /// The decision after a failed attempt, made where the hooks' and the
    /// error type's bounds are known: the loop itself needs none of them.
    decide: Decide<'p, E, W, H>,
}

/// The decision after a failed attempt: the delay before the next, or
/// `None` to give up.
type Decide<'p, E, W, H> = fn(&mut Call<'p, E, W, H>, &E) -> Option<core::time::Duration>;

/// How a call ended.
#[derive(Debug)]
pub enum Ending<T, E> {
    /// With this result.
    Return(Result<T, E>),
    /// It gave up with this error, of a kind its policy falls back on, before
    /// its deadline: run the fallback through the [`FallBack`].
    FallBack(FallBack<E>, E),
}

impl<T, E> Ending<T, E> {
    /// The call's result, for a caller that has no fallback.
    #[inline]
    pub fn into_result(self) -> Result<T, E> {
        match self {
            Ending::Return(result) => result,
            Ending::FallBack(_, error) => Err(error),
        }
    }
}

/// How a call's fallback runs: as a fresh call (attempt 1, its own
/// idempotency key) that inherits the deadline of the call it replaces, and,
/// when async, is cut off at that deadline.
#[derive(Debug)]
pub struct FallBack<E> {
    deadline: Option<Instant>,
    clock: Clock,
    /// The error for a fallback cut off at the deadline, when the call can
    /// report one.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    cut_off: Option<DeadlineReport<E>>,
}

impl<E> FallBack<E> {
    /// A fallback that inherits `deadline`, read on `clock`, and is cut off
    /// there with `cut_off` when async.
    pub(crate) fn new(
        deadline: Option<Instant>,
        clock: Clock,
        cut_off: Option<DeadlineReport<E>>,
    ) -> Self {
        FallBack {
            deadline,
            clock,
            cut_off,
        }
    }

    /// Run a sync fallback. It cannot be cut off, but it inherits the
    /// deadline, so a retried fallback stops retrying at it.
    #[inline]
    pub fn run_sync<R>(&self, fallback: impl FnOnce() -> R) -> R {
        Frame::new(1, self.deadline, self.clock).enter(fallback)
    }

    /// Run an async fallback, cut off at the deadline (and reported as its
    /// deadline error) whether or not the fallback sets one of its own.
    #[cfg(feature = "tokio")]
    pub async fn run_async<R, F>(&self, fallback: F) -> R
    where
        F: core::future::Future<Output = R>,
        R: Ends<E>,
    {
        let fallback = crate::engine::attempt::InFrame::new(
            Frame::new(1, self.deadline, self.clock),
            fallback,
        );
        let left = self
            .deadline
            .map(|at| at.saturating_duration_since(self.clock.now()));
        match (self.cut_off, left) {
            (Some((elapsed, into)), Some(left)) => {
                match tokio::time::timeout(left, fallback).await {
                    Ok(outcome) => outcome,
                    Err(_) => R::failed(into(elapsed)),
                }
            }
            _ => fallback.await,
        }
    }
}

/// What a retried function returns: a `Result`, and nothing else, so that
/// success and failure can be told apart. Implemented for `Result` alone.
#[diagnostic::on_unimplemented(
    message = "#[retry] needs a function that returns a `Result`, not `{Self}`",
    label = "a retried function must return `Result<T, E>` with `E: llm_resilience::Classify`",
    note = "success and failure must be told apart; wrap the value in `Ok(...)` and the failure in `Err(...)`"
)]
pub trait IsResult {
    /// The success type.
    type Ok;
    /// The error type.
    type Error;
    /// As a `Result`.
    fn into_result(self) -> Result<Self::Ok, Self::Error>;
}

impl<T, E> IsResult for Result<T, E> {
    type Ok = T;
    type Error = E;
    #[inline]
    fn into_result(self) -> Self {
        self
    }
}

/// What a fallback returns: something a deadline error can end as.
#[cfg(feature = "tokio")]
pub trait Ends<E> {
    /// This outcome, failed with `error`.
    fn failed(error: E) -> Self;
}

#[cfg(feature = "tokio")]
impl<T, E> Ends<E> for Result<T, E> {
    #[inline]
    fn failed(error: E) -> Self {
        Err(error)
    }
}

#[cfg(feature = "tokio")]
impl<T, E> Ends<E> for Ending<T, E> {
    #[inline]
    fn failed(error: E) -> Self {
        Ending::Return(Err(error))
    }
}

impl<'p, E, W, H> Call<'p, E, W, H> {
    /// The call's state, for the guards to be set.
    #[inline]
    pub(crate) fn state(&mut self) -> &mut State<'p> {
        &mut self.state
    }
}

impl<'p, E, W, H> Call<'p, E, W, H>
where
    E: Classify,
    W: Fn(&E) -> bool,
    H: Fn(&RetryEvent<'_, E>),
{
    /// A call from `start`, with its hooks. `fallback` says whether the caller
    /// has a fallback to run when the call ends with [`Ending::FallBack`].
    ///
    /// The state is made here, in place: a call that succeeds at once never
    /// copies the part of it only failures use.
    #[inline(always)]
    pub(crate) fn new(
        start: Start<'p>,
        refusals: Refusals<E>,
        when: W,
        on_retry: H,
        make_span: MakeSpan,
        fallback: bool,
    ) -> Self {
        Call {
            state: State::new(start),
            refusals,
            when,
            on_retry,
            make_span,
            fallback,
            decide: Self::decide,
        }
    }

    /// After a failed attempt: the delay before the next, or `None` to give
    /// up.
    fn decide(&mut self, error: &E) -> Option<core::time::Duration> {
        self.state
            .failed(error, &self.when, &self.on_retry, self.make_span)
    }
}

/// One turn of an async call, as [`Call::attempt_async`] documents it;
/// `$succeeded` is the [`State`] method that reports a success.
#[cfg(feature = "tokio")]
macro_rules! turn {
    ($call:ident, $body:ident, $succeeded:ident) => {{
        if $call.state.needs_admission() {
            if let Err(error) = $call.state.before_attempt_async(&$call.refusals).await {
                return Some($call.give_up(error));
            }
        }
        // Only a call that can report a cut-off attempt is cut off.
        let limit = match $call.refusals.cut_off {
            Some(into) => $call.state.attempt_limit().map(|limit| (limit, into)),
            None => None,
        };
        let outcome = match limit {
            None => Ok($call.state.attempt_future($body).await),
            Some(((limit, elapsed), into)) => {
                match tokio::time::timeout(limit, $call.state.attempt_future($body)).await {
                    Ok(outcome) => Ok(outcome),
                    Err(_) => Err((elapsed, into)),
                }
            }
        };
        let error = match outcome.map(IsResult::into_result) {
            Ok(Ok(value)) => {
                $call.state.$succeeded();
                return Some(Ending::Return(Ok(value)));
            }
            Ok(Err(error)) => error,
            Err((elapsed, into)) => $call.cut_off(elapsed, into),
        };
        $call.failed_async(error).await
    }};
}

impl<'p, E, W, H> Call<'p, E, W, H> {
    /// Run a sync call to its end.
    #[inline]
    pub fn run_sync<R>(&mut self, mut body: impl FnMut() -> R) -> Ending<R::Ok, E>
    where
        R: IsResult<Error = E>,
    {
        loop {
            if self.state.needs_admission() {
                if let Err(error) = self.state.before_attempt_sync(&self.refusals) {
                    return self.give_up(error);
                }
            }
            let error = match self.state.run_attempt(&mut body).into_result() {
                Ok(value) => {
                    self.state.succeeded();
                    return Ending::Return(Ok(value));
                }
                Err(error) => error,
            };
            if let Err(ending) = self.failed_sync(error) {
                return ending;
            }
        }
    }

    /// After a failed attempt of a sync call: the decision, then the sleep
    /// before the next attempt, or the call's end.
    #[inline]
    fn failed_sync<T>(&mut self, error: E) -> Result<(), Ending<T, E>> {
        match (self.decide)(self, &error) {
            Some(delay) => {
                State::sleep_sync(delay);
                Ok(())
            }
            None => Err(self.give_up(error)),
        }
    }

    /// The call's first attempt ran in a frame of its own, from `started`
    /// (see [`crate::engine::first`]): the call takes over its idempotency
    /// key (`first`, the frame's) and its start.
    #[inline]
    pub(crate) fn took_over(&mut self, first: &KeyCell, started: crate::metrics::Started) {
        self.state.took_over(first, started);
    }

    /// The first attempt ran in a frame of its own (see
    /// [`crate::engine::first`]) and failed with `error`: the call takes
    /// it over, decides, and goes on.
    #[cold]
    #[inline(never)]
    pub(crate) fn after_first_sync<R>(
        mut self,
        first: &KeyCell,
        started: crate::metrics::Started,
        error: E,
        body: impl FnMut() -> R,
    ) -> Ending<R::Ok, E>
    where
        R: IsResult<Error = E>,
    {
        self.took_over(first, started);
        if let Err(ending) = self.failed_sync(error) {
            return ending;
        }
        self.run_sync(body)
    }

    /// After a failed attempt of an async call: the decision, then the
    /// sleep before the next attempt (`None`), or the call's end. Also the
    /// end of the turn of a first attempt that ran before the call was made
    /// (see [`crate::engine::first`]).
    #[cfg(feature = "tokio")]
    pub(crate) async fn failed_async<T>(&mut self, error: E) -> Option<Ending<T, E>> {
        match (self.decide)(self, &error) {
            Some(delay) => {
                self.state.sleep_async(delay).await;
                None
            }
            None => Some(self.give_up(error)),
        }
    }

    /// One turn of an async call: admission, the attempt `body` (pinned
    /// where the caller made it, so that it is never moved; cut off at
    /// the attempt timeout or the deadline), and after a failure the
    /// decision and the sleep. `Some` once the call has ended; `None` to go
    /// round again, with the next attempt's body.
    #[cfg(feature = "tokio")]
    #[inline]
    pub async fn attempt_async<R, F>(
        &mut self,
        body: core::pin::Pin<&mut F>,
    ) -> Option<Ending<R::Ok, E>>
    where
        R: IsResult<Error = E>,
        F: core::future::Future<Output = R>,
    {
        turn!(self, body, succeeded)
    }

    /// [`attempt_async`](Self::attempt_async) for an attempt whose success
    /// is not final: the attempt of a streamed call, which succeeds at its
    /// first content event but may still fail after. The limiter hears of
    /// the success, and the call is counted; the breaker's permit is kept,
    /// to report the stream's outcome on when it ends
    /// ([`stream_ended`](Self::stream_ended), or a failure).
    #[cfg(all(feature = "tokio", feature = "stream"))]
    pub(crate) async fn attempt_async_holding<R, F>(
        &mut self,
        body: core::pin::Pin<&mut F>,
    ) -> Option<Ending<R::Ok, E>>
    where
        R: IsResult<Error = E>,
        F: core::future::Future<Output = R>,
    {
        turn!(self, body, succeeded_holding)
    }

    /// The stream this call returned (at its first content event) was
    /// interrupted with `error`, and the caller would go on (a restart or a
    /// resume): the failure is reported to the breaker (on the permit the
    /// attempt still holds) and the limiter, and decided as any failure is (the policy's kinds,
    /// `max_attempts`, per-kind caps, the deadline, the breaker's and the
    /// budget's leave), and after the wait the caller drives
    /// [`attempt_async`](Self::attempt_async) again, with the same
    /// idempotency key. `Err(error)`: the call gives up with it.
    #[cfg(all(feature = "tokio", feature = "stream"))]
    #[cold]
    pub(crate) async fn interrupted_async(&mut self, error: E) -> Result<(), E> {
        let Some(delay) = (self.decide)(self, &error) else {
            return Err(error);
        };
        drop(error);
        self.state.sleep_async(delay).await;
        Ok(())
    }

    /// The stream this call returned was interrupted with `error`, and the
    /// call ends with it: the breaker and the limiter hear of it.
    #[cfg(all(feature = "tokio", feature = "stream"))]
    #[cold]
    pub(crate) fn interrupted_final(&mut self, error: &E)
    where
        E: Classify,
    {
        metrics::attempt_failed(self.state.name, error.kind());
        self.state.report_failure(error, error.kind());
        self.state.call_finished(crate::metrics::Outcome::GaveUp);
    }

    /// The stream this call returned ended complete: the breaker hears of
    /// the attempt's success.
    #[cfg(all(feature = "tokio", feature = "stream"))]
    pub(crate) fn stream_completed(&mut self) {
        self.state.stream_completed();
    }

    /// The call's span, once it has one (after a failure), its metric
    /// keys, and the attempt's number.
    #[cfg(all(feature = "tokio", feature = "stream"))]
    pub(crate) fn observed(
        &self,
    ) -> (
        Option<&crate::observe::trace::CallSpan>,
        &'static crate::metrics::MetricKeys,
        u32,
    ) {
        (
            self.state.cold.as_ref().and_then(|cold| cold.span.as_ref()),
            self.state.name,
            self.state.frame.number,
        )
    }

    /// The attempt in flight was cut off at its limit: the error it ends
    /// with, made by the call's conversion.
    #[cfg(feature = "tokio")]
    #[cold]
    fn cut_off(&mut self, elapsed: Elapsed, into: fn(Elapsed) -> E) -> E {
        self.state.note_cut_off(elapsed);
        into(elapsed)
    }

    /// The call gave up with `error`: it ends with it, or with its fallback.
    #[cold]
    fn give_up<T>(&self, error: E) -> Ending<T, E> {
        if self.fallback && self.state.falls_back() {
            Ending::FallBack(self.state.fallback(&self.refusals), error)
        } else {
            Ending::Return(Err(error))
        }
    }
}

impl State<'_> {
    /// How this call's fallback runs: as a fresh call that inherits the
    /// call's deadline, and is cut off there with the call's deadline error.
    pub(crate) fn fallback<E>(&self, refusals: &Refusals<E>) -> FallBack<E> {
        FallBack::new(
            self.frame.deadline,
            self.frame.clock,
            self.deadline_error(refusals),
        )
    }
}
