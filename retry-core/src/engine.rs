#![cfg_attr(not(feature = "metrics"), allow(clippy::unit_arg))]
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::attempt::Attempt;
use crate::clock::Clock;
use crate::metrics::{self, MetricKeys, Outcome};
use crate::trace::{self, CallSpan, Failure, GiveUp, MakeSpan};
use crate::wait::uniform;
use crate::{Classify, Elapsed, ErrorKind, IdempotencyKey, Jitter, Policy};

/// What a retry is about to do, handed to `on_retry` before each sleep.
///
/// ```
/// use retry_core::{retry, RetryEvent};
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
    pub const fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The error it failed with.
    pub const fn error(&self) -> &'a E {
        self.error
    }

    /// How the error was classified. An attempt cut off by `attempt_timeout`
    /// is a [`Timeout`](ErrorKind::Timeout).
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// How long the call sleeps before the next attempt, jitter included.
    pub const fn delay(&self) -> Duration {
        self.delay
    }

    /// Where the delay came from.
    pub const fn source(&self) -> DelaySource {
        self.source
    }
}

/// Where the delay before a retry came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DelaySource {
    /// The policy's wait strategy and jitter.
    Backoff,
    /// The server's Retry-After (from [`Classify::retry_after`]), plus a small
    /// spread so that callers told the same value do not return together.
    RetryAfter,
}

/// The state of one retried call. Generated code and [`Policy::call`] drive
/// it; it is public only through `__private`.
#[derive(Debug)]
pub struct State<'p> {
    policy: &'p Policy,
    /// The attempt in flight, from 1.
    attempt: u32,
    clock: Clock,
    deadline: Option<Instant>,
    kind_failures: [u32; ErrorKind::COUNT],
    /// Decorrelated jitter's previous delay; `None` until the first retry.
    previous: Option<Duration>,
    /// Set when the attempt in flight was cut off by a timeout.
    cut_off: Option<Elapsed>,
    /// The call's idempotency key, once an attempt asked for it.
    key: OnceLock<IdempotencyKey>,
    /// The call's span, from its first failure on.
    span: Option<CallSpan>,
    /// The kind of the last failure.
    last_kind: Option<ErrorKind>,
    /// The call's metric keys.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    name: &'static MetricKeys,
    /// When the call started, for metrics.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    started: metrics::Started,
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
        let deadline = match (own, crate::attempt::inherited_deadline()) {
            (Some(own), Some(outer)) => Some(own.min(outer)),
            (own, outer) => own.or(outer),
        };
        State {
            policy,
            attempt: 1,
            clock,
            deadline,
            kind_failures: [0; ErrorKind::COUNT],
            previous: None,
            cut_off: None,
            key: OnceLock::new(),
            span: None,
            last_kind: None,
            name,
            started: metrics::start(),
        }
    }

    /// Whether the call, having given up, should go on to its fallback: its
    /// last error is of a kind in the policy's `fallback_on`.
    pub(crate) fn falls_back(&self) -> bool {
        self.last_kind
            .is_some_and(|kind| self.policy.fallback_on.contains(kind))
    }

    /// The attempt in flight.
    #[inline]
    pub(crate) fn current(&self) -> Attempt {
        Attempt::new(self.attempt, self.deadline, self.clock)
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
        let to_deadline = match (self.deadline, self.policy.deadline) {
            (Some(at), Some(limit)) => Some((
                at.saturating_duration_since(self.clock.now()),
                Elapsed::deadline(limit),
            )),
            _ => None,
        };
        match (per_attempt, to_deadline) {
            (Some(a), Some(d)) => Some(if d.0 <= a.0 { d } else { a }),
            (a, d) => a.or(d),
        }
    }

    /// Note that the attempt in flight was cut off, and turn that into the
    /// call's error type.
    #[cfg(feature = "tokio")]
    pub(crate) fn cut_off<E: From<Elapsed>>(&mut self, elapsed: Elapsed) -> E {
        self.note_cut_off(elapsed);
        E::from(elapsed)
    }

    /// Note that the attempt in flight was cut off.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn note_cut_off(&mut self, elapsed: Elapsed) {
        self.cut_off = Some(elapsed);
    }

    /// Decide what to do after attempt `self.attempt` failed with `error`:
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
        let failed = self.attempt;
        let decision = self.decide(error, when);
        let span = self.span.get_or_insert_with(make_span);
        let kind = match decision {
            Ok((_, _, kind)) | Err((_, kind)) => kind,
        };
        self.last_kind = Some(kind);
        let failure = Failure {
            attempt: failed,
            kind,
            request_id: error.request_id(),
            key: self.key.get().copied(),
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
                self.attempt = failed + 1;
                Some(delay)
            }
            Err((why, _)) => {
                trace::gave_up(span, &failure, why);
                metrics::call_finished(self.name, Outcome::GaveUp, self.started);
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
        when: W,
    ) -> Result<(Duration, DelaySource, ErrorKind), (GiveUp, ErrorKind)>
    where
        E: Classify,
        W: FnOnce(&E) -> bool,
    {
        let failed = self.attempt;
        let cut_off = self.cut_off.take();
        let kind = if cut_off.is_some() {
            ErrorKind::Timeout
        } else {
            error.kind()
        };
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
        let count = &mut self.kind_failures[kind.index()];
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
        if let Some(deadline) = self.deadline {
            match self.clock.now().checked_add(delay) {
                Some(wake) if wake < deadline => {}
                _ => return Err((GiveUp::Deadline, kind)),
            }
        }
        Ok((delay, source, kind))
    }

    /// Run `f` as the attempt in flight: inside the call's span once it has
    /// one, with [`attempt()`](crate::attempt()) describing it.
    #[inline]
    pub(crate) fn run_attempt<R>(&self, f: impl FnOnce() -> R) -> R {
        let attempt = self.current();
        trace::in_span(self.span.as_ref(), || attempt.enter(&self.key, f))
    }

    /// Run a fallback as a fresh call (attempt 1, its own idempotency key)
    /// that ends no later than this call's deadline.
    pub(crate) fn run_fallback<R>(&self, f: impl FnOnce() -> R) -> R {
        let home = OnceLock::new();
        Attempt::new(1, self.deadline, self.clock).enter(&home, f)
    }

    /// A fallback future, polled as [`run_fallback`](Self::run_fallback)
    /// runs a sync one.
    #[cfg(feature = "tokio")]
    pub(crate) fn fallback_future<F>(&self, fut: F) -> crate::attempt::InFallback<F> {
        crate::attempt::InFallback::new(self.deadline, self.clock, fut)
    }

    /// The attempt in flight succeeded.
    #[inline]
    pub(crate) fn succeeded(&self) {
        if self.attempt > 1 {
            self.succeeded_after_retries();
        } else {
            metrics::call_finished(self.name, Outcome::FirstTrySuccess, self.started);
        }
    }

    #[cold]
    fn succeeded_after_retries(&self) {
        if let Some(span) = &self.span {
            trace::succeeded(span, self.attempt, self.key.get().copied());
        }
        metrics::call_finished(self.name, Outcome::SuccessAfterRetry, self.started);
    }

    fn backoff(&mut self, failed: u32) -> Duration {
        let wait = &self.policy.wait;
        let d = wait.delay(failed);
        let previous = self.previous.get_or_insert(wait.bounds().0);
        self.policy.jitter.apply(wait, d, previous)
    }

    /// Sleep before the next attempt of a sync call.
    pub(crate) fn sleep_sync(delay: Duration) {
        if !crate::testing::skip(delay) {
            std::thread::sleep(delay);
        }
    }

    /// Sleep before the next attempt of an async call, on tokio's timer.
    #[cfg(feature = "tokio")]
    pub(crate) async fn sleep_async(delay: Duration) {
        if !crate::testing::skip(delay) {
            tokio::time::sleep(delay).await;
        }
    }
}
