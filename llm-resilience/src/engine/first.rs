//! The first attempt of a call that nothing has to admit: only the
//! attempt's frame is made, and the call's state, hooks and span only if
//! it fails.
//!
//! Most calls succeed at once. Before their first attempt a call with no
//! breaker, no budget, no deadline of its own, no attempt timeout (async)
//! and a limiter that does not pace (a function's own limiter before its
//! first `429`) has nothing to do but make the frame that
//! [`attempt()`](crate::attempt()) shows; writing out the whole [`State`]
//! and [`Call`] first cost more than the rest of such a call. So the call
//! starts as a [`Light`] and a closure that makes the [`Call`]: if the first
//! attempt succeeds, the closure is never run; if it fails, the call is made
//! then, takes over the first attempt's frame (its idempotency key) and its
//! start time, and goes on in the driver as any call whose first attempt
//! failed. A call that has something to admit is made at once.

#[cfg(feature = "tokio")]
use crate::engine::attempt::InFrame;
#[cfg(feature = "tokio")]
use core::future::Future;
#[cfg(feature = "tokio")]
use core::mem;
#[cfg(feature = "tokio")]
use core::pin::Pin;

use crate::engine::attempt::{inherited_deadline, Frame, KeyCell};
use crate::engine::driver::{Call, Ending, IsResult};
use crate::metrics::{self, MetricKeys, Outcome};
use crate::time::Clock;
use crate::{AdaptiveLimiter, Policy};

/// What a call's first attempt needs, to run without the call's state.
/// Generated code makes it; public only through `__private`.
#[derive(Debug, Clone, Copy)]
pub struct Light<'p> {
    policy: &'p Policy,
    name: &'static MetricKeys,
    limiter: Option<&'p AdaptiveLimiter>,
    /// Whether the call has a breaker or a budget: they see every attempt.
    guarded: bool,
    /// Whether `limiter` is the function's own (see [`own_limiter`](Self::own_limiter)).
    own_limiter: bool,
}

impl<'p> Light<'p> {
    /// A call of `policy`, counted under `name`, paced by `limiter`, with
    /// a breaker or a budget if `guarded`.
    #[inline(always)]
    pub const fn new(
        policy: &'p Policy,
        name: &'static MetricKeys,
        limiter: Option<&'p AdaptiveLimiter>,
        guarded: bool,
    ) -> Self {
        Light {
            policy,
            name,
            limiter,
            guarded,
            own_limiter: false,
        }
    }

    /// The limiter is the one `#[retry]` gives a function that names none:
    /// it counts successes only while it paces, and a first attempt runs
    /// light only while it does not, so such an attempt's success is not
    /// reported to it (if pacing began during the attempt, the limiter
    /// misses that one success).
    #[inline(always)]
    pub const fn own_limiter(mut self) -> Self {
        self.own_limiter = true;
        self
    }

    /// The first attempt's frame, if nothing has to happen before it.
    #[inline(always)]
    fn frame(&self, clock: Clock, cut_off: bool) -> Option<Frame<'p>> {
        let admit = self.guarded
            || self.policy.deadline.is_some()
            || (cut_off && self.policy.attempt_timeout.is_some())
            || !self.limiter.is_none_or(AdaptiveLimiter::is_idle);
        if admit {
            return None;
        }
        let mut frame = Frame::new(1, inherited_deadline(), clock);
        frame.limiter = self.limiter;
        Some(frame)
    }

    /// The first attempt succeeded: what [`State::succeeded`] does for a
    /// call that holds no permit and no limiter window.
    ///
    /// [`State::succeeded`]: crate::engine::state::State::succeeded
    #[inline(always)]
    fn succeeded(&self, started: metrics::Started) {
        if let Some(limiter) = self.limiter {
            if !self.own_limiter {
                limiter.on_success();
            }
        }
        metrics::call_finished(self.name, Outcome::FirstTrySuccess, started);
    }
}

/// What a sync call returns to its caller: its [`Ending`], for a function
/// with a fallback, or at once its `Result`. The light path converts in
/// each branch, so that a success is returned in registers rather than
/// written out as an `Ending` and read back.
pub trait SyncEnd<T, E>: Sized {
    /// The value for a call that ended so.
    fn from_ending(ending: Ending<T, E>) -> Self;
    /// The value for a first attempt that succeeded with `value`.
    fn from_ok(value: T) -> Self;
}

impl<T, E> SyncEnd<T, E> for Ending<T, E> {
    #[inline(always)]
    fn from_ending(ending: Ending<T, E>) -> Self {
        ending
    }

    #[inline(always)]
    fn from_ok(value: T) -> Self {
        Ending::Return(Ok(value))
    }
}

impl<T, E> SyncEnd<T, E> for Result<T, E> {
    #[inline(always)]
    fn from_ending(ending: Ending<T, E>) -> Self {
        ending.into_result()
    }

    #[inline(always)]
    fn from_ok(value: T) -> Self {
        Ok(value)
    }
}

/// Run a sync call to its end; `make` makes its [`Call`] only if its first
/// attempt fails or has to be admitted.
#[inline(always)]
pub fn run_sync<'p, R, W, H, O>(
    light: &'p Light<'p>,
    make: impl FnOnce() -> Call<'p, R::Error, W, H>,
    mut body: impl FnMut() -> R,
) -> O
where
    R: IsResult,
    O: SyncEnd<R::Ok, R::Error>,
{
    let Some(frame) = light.frame(Clock::Std, false) else {
        return made_sync(make, body);
    };
    #[allow(clippy::let_unit_value)] // a unit without the `metrics` feature
    let started = metrics::start();
    match frame.enter(&mut body).into_result() {
        Ok(value) => {
            light.succeeded(started);
            O::from_ok(value)
        }
        // Only the frame's key is read after the attempt: the rest of it is
        // not written at all when the body does not look at it.
        Err(error) => failed_first_sync(make, &frame.key, started, error, body),
    }
}

/// [`run_sync`] for a call that has to be admitted: made at once. Out of
/// line, so that the success path of the other calls stays small.
#[inline(never)]
fn made_sync<'p, R, W, H, O>(
    make: impl FnOnce() -> Call<'p, R::Error, W, H>,
    body: impl FnMut() -> R,
) -> O
where
    R: IsResult,
    O: SyncEnd<R::Ok, R::Error>,
{
    O::from_ending(make().run_sync(body))
}

/// [`run_sync`] after a failed first attempt: the call is made and goes on.
#[cold]
#[inline(never)]
fn failed_first_sync<'p, R, W, H, O>(
    make: impl FnOnce() -> Call<'p, R::Error, W, H>,
    first: &KeyCell,
    started: metrics::Started,
    error: R::Error,
    body: impl FnMut() -> R,
) -> O
where
    R: IsResult,
    O: SyncEnd<R::Ok, R::Error>,
{
    O::from_ending(make().after_first_sync(first, started, error, body))
}

/// An async call: its [`Light`] and what makes its [`Call`], until the
/// call is made. Generated code and [`Policy::call_async`] drive it with
/// `__lazy_turn!` in a `loop`, a turn per attempt; public only through
/// `__private`.
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub struct Lazy<'p, E, W, H, M> {
    stage: Stage<'p, E, W, H, M>,
}

#[cfg(feature = "tokio")]
#[derive(Debug)]
// The call is made in place, never boxed: a call must not allocate.
#[allow(clippy::large_enum_variant)]
enum Stage<'p, E, W, H, M> {
    /// Before the first attempt.
    First(M),
    /// The call is made.
    Made(Call<'p, E, W, H>),
    /// Only while the call is being made.
    Making,
}

#[cfg(feature = "tokio")]
impl<'p, E, W, H, M> Lazy<'p, E, W, H, M>
where
    M: FnOnce() -> Call<'p, E, W, H>,
{
    /// An async call that `make` makes only if its first attempt fails or
    /// has to be admitted. Its [`Light`] is handed to each turn
    /// (`__lazy_turn!`) rather than kept: `#[retry]`'s is a `static`, whose
    /// settings the compiler then reads as constants.
    #[inline(always)]
    pub fn new(make: M) -> Self {
        Lazy {
            stage: Stage::First(make),
        }
    }

    /// The call, made now if it was not.
    #[cold]
    fn made(&mut self) -> &mut Call<'p, E, W, H> {
        if matches!(self.stage, Stage::First(..)) {
            if let Stage::First(make) = mem::replace(&mut self.stage, Stage::Making) {
                self.stage = Stage::Made(make());
            }
        }
        match &mut self.stage {
            Stage::Made(call) => call,
            // `Making` lasts only for the call to `make` above, and
            // `First` became `Made` there.
            Stage::First(..) | Stage::Making => unreachable!("a lazy call is made once"),
        }
    }

    /// The first attempt, to run in a frame of its own, if the call is not
    /// made yet and nothing has to admit that attempt; `None` otherwise
    /// (then [`attempt_async`](Self::attempt_async) makes the call and runs
    /// the turn).
    #[inline(always)]
    pub fn first(&self, light: &'p Light<'p>) -> Option<First<'p>> {
        match &self.stage {
            Stage::First(_) => light.frame(Clock::Tokio, true).map(|frame| First {
                frame,
                started: metrics::start(),
            }),
            Stage::Made(_) | Stage::Making => None,
        }
    }

    /// The first attempt ended with `outcome`: its result, counted as the
    /// call's success if it succeeded; an error goes to
    /// [`first_failed`](Self::first_failed).
    #[inline(always)]
    #[allow(clippy::unit_arg)] // the start is a unit without the `metrics` feature
    pub fn first_ended<R>(
        &self,
        light: &'p Light<'p>,
        first: &First<'p>,
        outcome: R,
    ) -> Result<R::Ok, E>
    where
        R: IsResult<Error = E>,
    {
        let result = outcome.into_result();
        if result.is_ok() {
            light.succeeded(first.started);
        }
        result
    }

    /// The first attempt failed with `error`: the call is made, takes it
    /// over (its idempotency key and its start), and decides, as after any
    /// failed attempt: `None` to go round again after the wait.
    #[allow(clippy::unit_arg)] // the start is a unit without the `metrics` feature
    pub async fn first_failed<T>(&mut self, first: &First<'p>, error: E) -> Option<Ending<T, E>> {
        let call = self.made();
        call.took_over(&first.frame.key, first.started);
        call.failed_async(error).await
    }

    /// One turn of the call, as [`Call::attempt_async`], once it is past
    /// its first attempt or that attempt has to be admitted: the call is
    /// made now if it was not. `Some` once it has ended.
    #[inline]
    pub async fn attempt_async<R, F>(&mut self, body: Pin<&mut F>) -> Option<Ending<R::Ok, E>>
    where
        R: IsResult<Error = E>,
        F: Future<Output = R>,
    {
        self.made().attempt_async(body).await
    }
}

/// The first attempt of a [`Lazy`] call, run before the call is made: its
/// frame and its start. Public only through `__private`.
#[cfg(feature = "tokio")]
#[derive(Debug)]
pub struct First<'p> {
    frame: Frame<'p>,
    started: metrics::Started,
}

#[cfg(feature = "tokio")]
impl<'p> First<'p> {
    /// Run `body` as this attempt: [`attempt()`](crate::attempt()) sees it.
    #[inline(always)]
    pub fn attempt<'a, F: Future>(
        &'a self,
        body: Pin<&'a mut F>,
    ) -> impl Future<Output = F::Output> + use<'a, 'p, F> {
        InFrame::new(&self.frame, body)
    }
}

/// One turn of a [`Lazy`] async call of `$light` with the attempt `$body`
/// (pinned): its first attempt in a frame of its own when nothing has to
/// admit it, else a turn of the made call. `Some` once the call has ended.
/// With `return`, a first attempt that succeeds returns its `Ok` from the
/// enclosing function at once (for a caller without a fallback): the value
/// goes straight to the function's output, not through the turn's. Written
/// once, for `#[retry]`'s expansion and [`Policy::call_async`].
#[doc(hidden)]
#[macro_export]
macro_rules! __lazy_turn {
    ($call:ident, $light:expr, $body:ident) => {
        $crate::__lazy_turn!(@ $call, $light, $body, |value| $crate::__private::Some(
            $crate::__private::Ending::Return($crate::__private::Ok(value))
        ))
    };
    ($call:ident, $light:expr, $body:ident, return) => {
        $crate::__lazy_turn!(@ $call, $light, $body, |value| return $crate::__private::Ok(value))
    };
    (@ $call:ident, $light:expr, $body:ident, |$value:ident| $on_ok:expr) => {
        match $call.first($light) {
            $crate::__private::Some(first) => {
                let outcome = first.attempt($body).await;
                match $call.first_ended($light, &first, outcome) {
                    $crate::__private::Ok($value) => $on_ok,
                    $crate::__private::Err(error) => $call.first_failed(&first, error).await,
                }
            }
            $crate::__private::None => $call.attempt_async($body).await,
        }
    };
}
