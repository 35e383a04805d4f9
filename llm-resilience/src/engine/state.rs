#![cfg_attr(not(feature = "metrics"), allow(clippy::unit_arg))]
use std::mem::ManuallyDrop;
use std::time::Duration;

use crate::engine::attempt::Frame;
#[cfg(feature = "tokio")]
use crate::engine::attempt::InFrame;
use crate::engine::driver::FallBack;
use crate::guards::limiter::Slot;
use crate::guards::Guards;
use crate::metrics::{self, MetricKeys, Outcome};
use crate::observe::trace::{self, CallSpan, Failure, GiveUp, MakeSpan};
use crate::policy::wait::uniform;
use crate::time::Clock;
use crate::{
    AdaptiveLimiter, Backoff, BreakerPermit, CircuitBreaker, CircuitOpen, Classify, Elapsed,
    ErrorKind, Jitter, Policy, RetryBudget,
};

/// What a retry is about to do, handed to `on_retry` before each sleep.
///
/// ```
/// # #[cfg(feature = "macros")]
/// # fn main() {
/// use llm_resilience::{retry, RetryEvent};
///
/// fn log(event: &RetryEvent<'_, std::io::Error>) {
///     eprintln!(
///         "attempt {} failed ({}: {}), retrying in {:?}",
///         event.attempt(),
///         event.kind(),
///         event.error(),
///         event.delay(),
///     );
/// }
///
/// #[retry(max_attempts = 2, wait = fixed(1ms), on_retry = log)]
/// fn read_config() -> Result<String, std::io::Error> {
///     std::fs::read_to_string("/nonexistent/config.toml")
/// }
/// # let _ = read_config();
/// # }
/// # #[cfg(not(feature = "macros"))]
/// # fn main() {}
/// ```
#[derive(Debug)]
pub struct RetryEvent<'a, E> {
    attempt: u32,
    error: &'a E,
    kind: ErrorKind,
    delay: Duration,
    source: DelaySource,
}

impl<'a, E> RetryEvent<'a, E> {
    /// The attempt that failed, from 1.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::io;
    /// use llm_resilience::{Policy, Wait};
    ///
    /// let failed = RefCell::new(Vec::new());
    /// let _: Result<(), io::Error> = Policy::new()
    ///     .max_attempts(3)
    ///     .wait(Wait::none())
    ///     .on_retry(|event| failed.borrow_mut().push(event.attempt()))
    ///     .call(|| Err(io::ErrorKind::TimedOut.into()));
    /// assert_eq!(failed.into_inner(), [1, 2]); // attempt 3 failed too, and gave up
    /// ```
    pub const fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The error it failed with.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::io;
    /// use llm_resilience::{Policy, RetryEvent, Wait};
    ///
    /// let logged = RefCell::new(Vec::new());
    /// let _: Result<(), io::Error> = Policy::new()
    ///     .max_attempts(2)
    ///     .wait(Wait::none())
    ///     .on_retry(|event: &RetryEvent<'_, io::Error>| {
    ///         logged.borrow_mut().push(event.error().to_string())
    ///     })
    ///     .call(|| Err(io::Error::new(io::ErrorKind::ConnectionReset, "upstream reset")));
    /// assert_eq!(logged.into_inner(), ["upstream reset"]);
    /// ```
    pub const fn error(&self) -> &'a E {
        self.error
    }

    /// How the error was classified. An attempt cut off by `attempt_timeout`
    /// is a [`Timeout`](ErrorKind::Timeout).
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::io;
    /// use llm_resilience::{ErrorKind, Policy, Wait};
    ///
    /// let kinds = RefCell::new(Vec::new());
    /// let mut failures = [io::ErrorKind::TimedOut, io::ErrorKind::ConnectionReset].into_iter();
    /// let _: Result<(), io::Error> = Policy::new()
    ///     .wait(Wait::none())
    ///     .on_retry(|event| kinds.borrow_mut().push(event.kind()))
    ///     .call(|| Err(failures.next().unwrap_or(io::ErrorKind::TimedOut).into()));
    /// assert_eq!(kinds.into_inner(), [ErrorKind::Timeout, ErrorKind::Network]);
    /// ```
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// How long the call sleeps before the next attempt, jitter included.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// use std::io;
    /// use std::time::Duration;
    /// use llm_resilience::{Jitter, Policy, Wait};
    ///
    /// let ms = Duration::from_millis;
    /// let delays = RefCell::new(Vec::new());
    /// let _: Result<(), io::Error> = Policy::new()
    ///     .wait(Wait::exponential(ms(1), ms(100)))
    ///     .jitter(Jitter::None)
    ///     .on_retry(|event| delays.borrow_mut().push(event.delay()))
    ///     .call(|| Err(io::ErrorKind::TimedOut.into()));
    /// assert_eq!(delays.into_inner(), [ms(1), ms(2)]);
    /// ```
    pub const fn delay(&self) -> Duration {
        self.delay
    }

    /// Where the delay came from.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use llm_resilience::{Classify, ErrorKind};
    /// # #[derive(Debug)]
    /// # struct RateLimited {
    /// #     retry_after: Option<Duration>,
    /// # }
    /// # impl Classify for RateLimited {
    /// #     fn kind(&self) -> ErrorKind {
    /// #         ErrorKind::RateLimit
    /// #     }
    /// #     fn retry_after(&self) -> Option<Duration> {
    /// #         self.retry_after
    /// #     }
    /// # }
    /// # impl From<llm_resilience::Elapsed> for RateLimited {
    /// #     fn from(_: llm_resilience::Elapsed) -> Self {
    /// #         unreachable!("no deadline")
    /// #     }
    /// # }
    /// use std::cell::RefCell;
    /// use llm_resilience::{DelaySource, Policy, Wait};
    ///
    /// let sources = RefCell::new(Vec::new());
    /// let mut asked = [Some(Duration::from_millis(5)), None].into_iter();
    /// let _: Result<(), RateLimited> = Policy::new()
    ///     .wait(Wait::none())
    ///     .on_retry(|event| sources.borrow_mut().push(event.source()))
    ///     .call(|| Err(RateLimited { retry_after: asked.next().flatten() }));
    /// assert_eq!(sources.into_inner(), [DelaySource::RetryAfter, DelaySource::Backoff]);
    /// ```
    pub const fn source(&self) -> DelaySource {
        self.source
    }
}

/// Where the delay before a retry came from.
///
/// ```
/// # use std::time::Duration;
/// # use llm_resilience::{Classify, ErrorKind};
/// # #[derive(Debug)]
/// # struct RateLimited {
/// #     retry_after: Option<Duration>,
/// # }
/// # impl Classify for RateLimited {
/// #     fn kind(&self) -> ErrorKind {
/// #         ErrorKind::RateLimit
/// #     }
/// #     fn retry_after(&self) -> Option<Duration> {
/// #         self.retry_after
/// #     }
/// # }
/// # impl From<llm_resilience::Elapsed> for RateLimited {
/// #     fn from(_: llm_resilience::Elapsed) -> Self {
/// #         unreachable!("no deadline")
/// #     }
/// # }
/// use std::cell::Cell;
/// use llm_resilience::{DelaySource, Policy};
///
/// let seen = Cell::new(None);
/// let _: Result<(), RateLimited> = Policy::new()
///     .max_attempts(2)
///     .on_retry(|event| seen.set(Some((event.source(), event.delay()))))
///     .call(|| Err(RateLimited { retry_after: Some(Duration::from_millis(20)) }));
/// let (source, delay) = seen.get().unwrap();
/// assert_eq!(source, DelaySource::RetryAfter);
/// assert!(delay >= Duration::from_millis(20)); // plus a little spread
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DelaySource {
    /// The policy's wait strategy and jitter.
    Backoff,
    /// The server's Retry-After (from [`Classify::retry_after`]), plus a small
    /// spread so that callers told the same value do not return together.
    RetryAfter,
}

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

/// How often a call waiting for its send slot looks at the schedule again:
/// when the limiter's rate changes, the slot moves, earlier or later.
const RECHECK_PACING: Duration = Duration::from_millis(250);

/// What the attempt in flight holds of its limiter, once it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Held {
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

/// The deadline error of a call, and how it becomes the call's error type.
pub(crate) type DeadlineReport<E> = (Elapsed, fn(Elapsed) -> E);

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
    fn drop_cold(&mut self) {
        // A probe's permit dropped here gives its slot back; a place in the
        // limiter's initial window too.
        *self.permit = None;
        self.attempt_ended();
        *self.cold = None;
    }
}

/// The part of a call's state that only failures use.
#[derive(Debug)]
struct Cold {
    /// Failures so far, by kind.
    kind_failures: [u32; ErrorKind::COUNT],
    /// The policy's backoff (decorrelated jitter remembers its previous
    /// delay).
    backoff: Backoff,
    /// Set when the attempt in flight was cut off by a timeout.
    cut_off: Option<Elapsed>,
    /// The call's span.
    span: Option<CallSpan>,
    /// The kind of the last failure.
    last_kind: Option<ErrorKind>,
}

impl Cold {
    const fn new(policy: &Policy) -> Self {
        Cold {
            kind_failures: [0; ErrorKind::COUNT],
            backoff: Backoff::new(policy.wait, policy.jitter),
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
    policy: &'p Policy,
    /// The attempt in flight (from 1), the deadline, the clock and the
    /// idempotency key: what [`attempt()`](crate::attempt()) shows inside.
    frame: Frame<'p>,
    /// What only a failure needs, made at the first: a call that succeeds
    /// at once writes nothing of it.
    /// (Dropped by hand, in the `Drop` of `State`, so that a call that never
    /// failed drops it with one test, inline.)
    cold: ManuallyDrop<Option<Box<Cold>>>,
    /// The call's metric keys.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    name: &'static MetricKeys,
    /// When the call started, for metrics.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    started: metrics::Started,
    /// The breaker, budget and limiter the call runs under, if any.
    guards: Guards<'p>,
    /// What the attempt in flight holds of the limiter.
    held: Held,
    /// The breaker's permit for the attempt in flight (or about to start).
    /// (Dropped by hand, as `cold` is.)
    permit: ManuallyDrop<Option<BreakerPermit<'p>>>,
}

impl<'p> State<'p> {
    /// Start a sync call.
    #[inline]
    pub(crate) fn new_sync(policy: &'p Policy, name: &'static MetricKeys) -> Self {
        Self::new(policy, Clock::Std, name)
    }

    /// Start an async call.
    #[cfg(feature = "tokio")]
    #[inline]
    pub(crate) fn new_async(policy: &'p Policy, name: &'static MetricKeys) -> Self {
        Self::new(policy, Clock::Tokio, name)
    }

    /// Start a call. Reads the clock only when the policy has a deadline (or
    /// when the `metrics` feature times calls).
    #[inline]
    fn new(policy: &'p Policy, clock: Clock, name: &'static MetricKeys) -> Self {
        let own = match policy.deadline {
            None => None,
            Some(limit) => clock.now().checked_add(limit),
        };
        let deadline = match (own, crate::engine::attempt::inherited_deadline()) {
            (Some(own), Some(outer)) => Some(own.min(outer)),
            (own, outer) => own.or(outer),
        };
        State {
            policy,
            frame: Frame::new(1, deadline, clock),
            cold: ManuallyDrop::new(None),
            name,
            started: metrics::start(),
            guards: Guards::NONE,
            held: Held::Nothing,
            permit: ManuallyDrop::new(None),
        }
    }

    /// The part of the state that failures use, made at the first.
    #[cold]
    fn cold(&mut self) -> &mut Cold {
        self.cold
            .get_or_insert_with(|| Box::new(Cold::new(self.policy)))
    }

    /// Run the call under `breaker`.
    #[inline]
    pub(crate) fn set_breaker(&mut self, breaker: &'p CircuitBreaker) {
        self.guards.breaker = Some(breaker);
    }

    /// Count the call and its retries against `budget`.
    #[inline]
    pub(crate) fn set_budget(&mut self, budget: &'p RetryBudget) {
        self.guards.budget = Some(budget);
    }

    /// Pace the call's attempts with `limiter`.
    #[inline]
    pub(crate) fn set_limiter(&mut self, limiter: &'p AdaptiveLimiter) {
        self.guards.limiter = Some(limiter);
        self.frame.limiter = Some(limiter);
    }

    /// Pace the call's attempts on tokens too, at `tokens` each.
    #[inline]
    pub(crate) fn set_cost(&mut self, tokens: u64) {
        self.guards.cost = tokens;
    }

    /// Run the call under all of `guards`.
    #[inline]
    pub(crate) fn set_guards(&mut self, guards: Guards<'p>) {
        self.guards = guards;
        self.frame.limiter = guards.limiter;
    }

    /// How long the call may still wait: the time left before its deadline
    /// (its own, or the one it inherited from the call it runs in), `None`
    /// when it has none. Reads the clock only when there is a deadline.
    ///
    /// This is the one rule every wait of a call goes through: a backoff, a
    /// `Retry-After`, the limiter's pacing, a fallback. Nothing a call does
    /// waits past its deadline.
    #[inline]
    fn time_left(&self) -> Option<Duration> {
        self.frame
            .deadline
            .map(|at| at.saturating_duration_since(self.frame.clock.now()))
    }

    /// Whether a wait of `delay` from now ends before the deadline.
    fn wait_fits(&self, delay: Duration) -> bool {
        self.time_left().is_none_or(|left| delay < left)
    }

    /// The error a call reports when its deadline comes, its own or the one
    /// it inherited: `None` when it has none, or cannot report one (its
    /// error type has no `From<Elapsed>` that the call could name).
    fn deadline_error<E>(&self, refusals: &Refusals<E>) -> Option<DeadlineReport<E>> {
        let into = refusals.deadline?;
        let elapsed = match self.policy.deadline {
            Some(limit) => Elapsed::deadline(limit),
            None => Elapsed::inherited(self.time_left()?),
        };
        Some((elapsed, into))
    }

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
    fn admit<E>(&mut self, refusals: &Refusals<E>) -> Result<Option<&'p AdaptiveLimiter>, E> {
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
    fn take_slot<E>(
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
    fn permit_for_attempt<E>(&mut self, refusals: &Refusals<E>) -> Result<(), E> {
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
    fn paced_past_deadline(&mut self) {
        // A probe's slot goes back at once.
        *self.permit = None;
        let failure = Failure {
            attempt: self.frame.number,
            kind: ErrorKind::Timeout,
            request_id: None,
            key: self.frame.key.get(),
        };
        let cold = self
            .cold
            .get_or_insert_with(|| Box::new(Cold::new(self.policy)));
        cold.last_kind = Some(ErrorKind::Timeout);
        let span = cold.span.get_or_insert_with(trace::policy_span);
        trace::gave_up(span, &failure, GiveUp::PacedPastDeadline);
        metrics::call_finished(self.name, Outcome::GaveUp, self.started);
    }

    /// After part of the wait for a send slot: `None` once it is due,
    /// else how much longer (the schedule moves with the limiter's rate),
    /// or the deadline error if the slot has moved past the deadline.
    fn still_to_wait<E>(
        &mut self,
        slot: &mut Slot,
        refusals: &Refusals<E>,
    ) -> Result<Option<Duration>, E> {
        let Some(limiter) = self.guards.limiter else {
            return Ok(None);
        };
        let more = limiter.wait_for(slot);
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
    fn nothing_to_admit(&self) -> bool {
        self.guards.breaker.is_none()
            && self.guards.budget.is_none()
            && self.guards.limiter.is_none_or(AdaptiveLimiter::is_idle)
    }

    #[inline]
    fn admit_and_pace_sync<E>(&mut self, refusals: &Refusals<E>) -> Result<(), E> {
        match self.admit(refusals)? {
            Some(limiter) => self.slot_sync(limiter, refusals),
            None => Ok(()),
        }
    }

    /// Take the limiter's slot and wait for it, before an attempt of a sync
    /// call.
    #[cold]
    #[inline(never)]
    fn slot_sync<E>(&mut self, limiter: &AdaptiveLimiter, refusals: &Refusals<E>) -> Result<(), E> {
        let (pace, slot) = self.take_slot(limiter, refusals)?;
        if pace.is_zero() {
            self.held = Held::from(slot);
            return Ok(());
        }
        self.pace_sync(pace, slot, refusals)
    }

    /// Wait for the limiter's slot before an attempt of a sync call.
    #[cold]
    #[inline(never)]
    fn pace_sync<E>(
        &mut self,
        mut pace: Duration,
        slot: Slot,
        refusals: &Refusals<E>,
    ) -> Result<(), E> {
        // A slot not used in the end goes back.
        let mut unused = GiveBack::new(self.guards.limiter, slot);
        // Under `testing::skip_sleeps`, the whole wait is skipped at once.
        if !crate::testing::skip_pacing(pace) {
            loop {
                std::thread::sleep(pace.min(RECHECK_PACING));
                match self.still_to_wait(&mut unused.slot, refusals)? {
                    Some(more) => pace = more,
                    None => break,
                }
            }
        }
        self.permit_for_attempt(refusals)?;
        self.held = Held::from(unused.used());
        Ok(())
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

    /// Take the limiter's slot and wait for it, before an attempt of an
    /// async call.
    #[cfg(feature = "tokio")]
    async fn slot_async<E>(
        &mut self,
        limiter: &AdaptiveLimiter,
        refusals: &Refusals<E>,
    ) -> Result<(), E> {
        let (pace, slot) = self.take_slot(limiter, refusals)?;
        if pace.is_zero() {
            self.held = Held::from(slot);
            return Ok(());
        }
        self.pace_async(pace, slot, refusals).await
    }

    /// Wait for the limiter's slot before an attempt of an async call.
    #[cfg(feature = "tokio")]
    async fn pace_async<E>(
        &mut self,
        mut pace: Duration,
        slot: Slot,
        refusals: &Refusals<E>,
    ) -> Result<(), E> {
        // A call dropped while it waits gives its slot back.
        let mut unused = GiveBack::new(self.guards.limiter, slot);
        // Under `testing::skip_sleeps`, the whole wait is skipped at once.
        if !crate::testing::skip_pacing(pace) {
            loop {
                tokio::time::sleep(pace.min(RECHECK_PACING)).await;
                match self.still_to_wait(&mut unused.slot, refusals)? {
                    Some(more) => pace = more,
                    None => break,
                }
            }
        }
        self.permit_for_attempt(refusals)?;
        self.held = Held::from(unused.used());
        Ok(())
    }

    /// The breaker refused an attempt: the call fails fast (its first
    /// attempt), or gives up (a retry whose breaker opened while it slept).
    #[cold]
    fn refused(&mut self, breaker: &CircuitBreaker, open: CircuitOpen) -> CircuitOpen {
        self.breaker_seen(breaker);
        self.cold().last_kind = Some(open.kind());
        trace::failed_fast(&open, self.frame.number);
        let outcome = if self.frame.number == 1 {
            Outcome::FailedFast
        } else {
            Outcome::GaveUp
        };
        metrics::call_finished(self.name, outcome, self.started);
        open
    }

    /// Report the breaker's state to metrics.
    #[cold]
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    fn breaker_seen(&self, breaker: &CircuitBreaker) {
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

    #[cold]
    fn probe_succeeded(&self, permit: BreakerPermit<'_>) {
        permit.success();
        if let Some(breaker) = self.guards.breaker {
            self.breaker_seen(breaker);
        }
    }

    /// The attempt in flight ended: a place it held in the limiter's initial
    /// window is free again.
    fn attempt_ended(&mut self) {
        if let Held::Window(cost) = self.held {
            if let Some(limiter) = self.guards.limiter {
                limiter.leave_window(cost);
            }
        }
        self.held = Held::Nothing;
    }

    /// Tell the breaker and the limiter how the attempt in flight failed.
    fn report_failure<E: Classify>(&mut self, error: &E, kind: ErrorKind) {
        if let Some(permit) = self.permit.take() {
            permit.failure(kind);
            if let Some(breaker) = self.guards.breaker {
                self.breaker_seen(breaker);
            }
        }
        let paced = self.held == Held::Paced;
        self.attempt_ended();
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
    fn guard_retry(&mut self) -> Result<(), GiveUp> {
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

    /// How this call's fallback runs: as a fresh call that inherits the
    /// call's deadline, and is cut off there with the call's deadline error.
    pub(crate) fn fallback<E>(&self, refusals: &Refusals<E>) -> FallBack<E> {
        FallBack::new(
            self.frame.deadline,
            self.frame.clock,
            self.deadline_error(refusals),
        )
    }

    /// Whether the deadline, if any, is still ahead: nothing new (a
    /// fallback, the next item of a chain) starts once it has passed.
    pub(crate) fn before_deadline(&self) -> bool {
        self.time_left() != Some(Duration::ZERO)
    }

    /// How long the attempt about to start may run, and the error that
    /// reports running out: the earlier of the attempt timeout and the time
    /// left before the deadline. `None` when neither is set.
    #[cfg(feature = "tokio")]
    pub(crate) fn attempt_limit(&self) -> Option<(Duration, Elapsed)> {
        let per_attempt = self
            .policy
            .attempt_timeout
            .map(|t| (t, Elapsed::attempt_timeout(t)));
        let to_deadline = match (self.frame.deadline, self.policy.deadline) {
            (Some(at), Some(limit)) => Some((
                at.saturating_duration_since(self.frame.clock.now()),
                Elapsed::deadline(limit),
            )),
            _ => None,
        };
        match (per_attempt, to_deadline) {
            (Some(a), Some(d)) => Some(if d.0 <= a.0 { d } else { a }),
            (a, d) => a.or(d),
        }
    }

    /// Note that the attempt in flight was cut off.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn note_cut_off(&mut self, elapsed: Elapsed) {
        self.cold().cut_off = Some(elapsed);
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
        let cold = self
            .cold
            .get_or_insert_with(|| Box::new(Cold::new(self.policy)));
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
                metrics::call_finished(self.name, outcome, self.started);
                None
            }
        }
    }

    /// The retry decision: the delay, where it came from and the error's
    /// kind, or why the call gives up.
    #[allow(clippy::type_complexity)]
    fn decide<E, W>(
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
                let spread = if policy.jitter == Jitter::None {
                    Duration::ZERO
                } else {
                    uniform(Duration::ZERO, (asked / 10).min(Duration::from_secs(1)))
                };
                (asked.saturating_add(spread), DelaySource::RetryAfter)
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
    fn count_success(&self) {
        if self.frame.number > 1 {
            self.succeeded_after_retries();
        } else {
            metrics::call_finished(self.name, Outcome::FirstTrySuccess, self.started);
        }
    }

    #[cold]
    fn succeeded_after_retries(&self) {
        if let Some(span) = self.cold.as_ref().and_then(|cold| cold.span.as_ref()) {
            trace::succeeded(span, self.frame.number, self.frame.key.get());
        }
        metrics::call_finished(self.name, Outcome::SuccessAfterRetry, self.started);
    }

    /// The policy's backoff delay after failed attempt `failed`.
    fn backoff(&mut self, failed: u32) -> Duration {
        self.cold().backoff.delay_for(failed)
    }

    /// Sleep before the next attempt of a sync call.
    pub(crate) fn sleep_sync(delay: Duration) {
        if !crate::testing::skip(delay) {
            std::thread::sleep(delay);
        }
    }

    /// Sleep before the next attempt of an async call, on tokio's timer.
    ///
    /// Every retry gives the scheduler a turn, whatever the delay: a zero
    /// delay (`wait = none`) yields, so that a loop of instant failures
    /// never starves the tasks that share its thread. With a deadline, a
    /// zero delay waits for the timer's next tick (1 ms) instead, the
    /// resolution at which tokio measures the deadline: the loop then
    /// reaches it in at most one attempt per tick, on a paused test clock
    /// too (which moves on only while every task waits on the timer).
    #[cfg(feature = "tokio")]
    pub(crate) fn sleep_async(
        &self,
        delay: Duration,
    ) -> impl core::future::Future<Output = ()> + Send + 'static {
        let tick = self.frame.deadline.is_some();
        async move {
            if crate::testing::skip(delay) {
                yield_now().await;
            } else if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            } else if tick {
                tokio::time::sleep(Duration::from_millis(1)).await;
            } else {
                yield_now().await;
            }
        }
    }
}

/// Give the scheduler a turn: pending once, with the task woken at once.
#[cfg(feature = "tokio")]
fn yield_now() -> impl core::future::Future<Output = ()> {
    let mut yielded = false;
    core::future::poll_fn(move |cx| {
        if yielded {
            return core::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        core::task::Poll::Pending
    })
}
