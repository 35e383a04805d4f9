//! A circuit breaker: stop calling a provider that keeps failing, and probe it
//! before letting traffic through again.
//!
//! This module holds [`CircuitBreaker`] and its settings; the rest of it is
//! in:
//!
//! - `state`: the state word, in which every state and its data fit;
//! - `transitions`: admission and every change of state;
//! - `successes`: the striped counters that successes are reported on;
//! - `permit`: [`BreakerPermit`], on which a call's outcome is reported;
//! - `refusal`: [`BreakerState`], [`CircuitOpen`] and [`HumanWait`], what
//!   callers see of a breaker that is not closed;
//! - `log`: its events, through `tracing`;
//! - `fleet`: what a breaker shared by several processes reads and is told
//!   (feature `redis`).

use core::fmt;
use std::time::Duration;

use crate::guards::window::{ppm, CachePadded, Span, Window};
use crate::sync::AtomicU64;
use crate::time::nanos;
#[cfg(doc)]
use crate::ErrorKind;

#[cfg(feature = "redis")]
pub(crate) mod fleet;
#[cfg(feature = "tracing")]
mod log;
mod permit;
mod refusal;
mod state;
mod successes;
mod transitions;

pub use permit::BreakerPermit;
pub use refusal::{BreakerState, CircuitOpen, HumanWait};

use state::{CLOSED, PROBES_MAX};
use successes::STRIPES;

/// Stops calls to a provider that keeps failing, then lets a few probe calls
/// through to find out whether it has recovered.
///
/// Wrap each call in [`try_acquire`](Self::try_acquire), and report how it
/// went on the [`BreakerPermit`] it returns. The breaker is
///
/// - **closed** at first: every call goes through, and the breaker counts
///   calls and failures over a rolling window. When, with at least
///   [`min_calls`](Self::min_calls) calls in the window, the share of
///   failures reaches [`failure_ratio`](Self::failure_ratio) (or
///   [`consecutive_failures`](Self::consecutive_failures) fail in a row), it
///   **opens**;
/// - **open** for [`break_for`](Self::break_for): every call is refused with
///   [`CircuitOpen`] at once, without reaching the provider;
/// - **half-open** afterwards: the next call is admitted as a probe, and at
///   most [`half_open_probes`](Self::half_open_probes) probes are in flight
///   at once; others are refused. The first probe that succeeds closes the
///   breaker, with an empty window; the first that fails opens it for
///   another `break_for`. A probe dropped unfinished (its future cancelled)
///   gives its slot back. Probes still out after `break_for` (or one second,
///   if longer) are presumed lost, and new ones are admitted;
/// - **isolated** by [`isolate`](Self::isolate), until [`close`](Self::close):
///   every call is refused.
///
/// The settings, with their defaults (those of Polly and Resilience4j):
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`failure_ratio`](Self::failure_ratio) | 0.5 | open when failures / calls in the window reach this |
/// | [`min_calls`](Self::min_calls) | 20 | ... once the window holds at least this many calls |
/// | [`window`](Self::window) | 30 s | how far back calls are counted, in 10 buckets (3 s each) |
/// | [`break_for`](Self::break_for) | 30 s | how long the breaker stays open before probing |
/// | [`half_open_probes`](Self::half_open_probes) | 1 | probes in flight at once when half-open |
/// | [`consecutive_failures`](Self::consecutive_failures) | 0 (off) | also open after this many failures in a row |
/// | [`count_rate_limits`](Self::count_rate_limits) | false | whether a [`RateLimit`](ErrorKind::RateLimit) is a failure |
///
/// # What counts as a failure
///
/// Only errors that say the provider is unwell: [`Overloaded`],
/// [`Server`], [`Timeout`] and [`Network`], and [`RateLimit`] when
/// [`count_rate_limits`](Self::count_rate_limits) is on. Every other outcome
/// is a **success**, because the provider answered: a
/// [`Client`](ErrorKind::Client), [`Auth`](ErrorKind::Auth),
/// [`Quota`](ErrorKind::Quota) or [`Other`](ErrorKind::Other) error (and a
/// `RateLimit` when it does not count) counts as a successful call in the
/// window, ends a run of consecutive failures, and, from a probe, closes the
/// breaker.
///
/// # The window
///
/// Calls are counted in ten buckets of a tenth of the window each, so the
/// window moves on a tenth at a time. Failures read the clock and land in the
/// current bucket. Successes do not read the clock: they are placed when the
/// clock is next read (at the next failure or state check), spread evenly over
/// the time since it was last read. So the window may lag by up to one bucket
/// width, and successes between two distant failures are assumed to have come
/// at an even rate.
///
/// Time is tokio's clock when the `tokio` feature is on (so a paused test
/// runtime controls breaks and windows; outside a runtime, the system clock),
/// moved on by the sleeps skipped under [`testing`](crate::testing).
///
/// # Cost
///
/// Admission while closed is one atomic load. Reporting a success is one
/// atomic add, on one of eight counters that threads take in turn, each on a
/// cache line of its own, so that threads reporting at once seldom share
/// one (plus one load, and with `consecutive_failures` on, a second load),
/// with no clock reading, allocation or lock. A failure moves the counted
/// successes into the window before reading it. Counts are exact under any
/// number of threads. The breaker holds atomics only, is `Sync`, and is
/// built in `const` context, so it can be a `static` shared by every call to
/// a provider.
///
/// With the `tracing` feature, every change of state logs an event with
/// target `llm_resilience`: at WARN, except closing, at INFO.
///
/// [`Overloaded`]: ErrorKind::Overloaded
/// [`Server`]: ErrorKind::Server
/// [`Timeout`]: ErrorKind::Timeout
/// [`Network`]: ErrorKind::Network
/// [`RateLimit`]: ErrorKind::RateLimit
///
/// ```
/// use std::time::Duration;
/// use llm_resilience::{BreakerState, CircuitBreaker, ErrorKind};
///
/// static BREAKER: CircuitBreaker = CircuitBreaker::new()
///     .failure_ratio(0.5)
///     .min_calls(4)
///     .break_for(Duration::from_secs(30));
///
/// fn call_provider(fail: bool) -> Result<&'static str, ErrorKind> {
///     let permit = BREAKER.try_acquire().map_err(|_| ErrorKind::Overloaded)?;
///     if fail {
///         permit.failure(ErrorKind::Server);
///         Err(ErrorKind::Server)
///     } else {
///         permit.success();
///         Ok("answer")
///     }
/// }
///
/// assert!(call_provider(false).is_ok());
/// assert!(call_provider(false).is_ok());
/// assert!(call_provider(true).is_err());
/// assert_eq!(BREAKER.state(), BreakerState::Closed);
/// assert!(call_provider(true).is_err()); // 2 failures in 4 calls: open
/// assert!(matches!(BREAKER.state(), BreakerState::Open { .. }));
/// let refused = BREAKER.try_acquire().unwrap_err();
/// assert!(refused.retry_in().unwrap() <= Duration::from_secs(30));
/// ```
pub struct CircuitBreaker {
    /// Calls (high) and failures (low), and the failure streak.
    window: Window,
    /// Successes not yet moved into the window, on counters spread over the
    /// threads that report them, each on a cache line of its own, so that
    /// threads reporting successes at once do not fight over one line. They
    /// are moved (drained) into the window before it is read.
    successes: [CachePadded<AtomicU64>; STRIPES],
    /// The state, as encoded in `state.rs`. Read on every admission;
    /// written only on changes of state and by probes.
    state: AtomicU64,
    /// The timestamp that the generation of the latest half-open state was
    /// taken from, in full (see [`next_generation`](Self::next_generation)).
    generation_at: AtomicU64,
    config: Config,
}

/// The settings.
#[derive(Clone, Copy, Debug)]
struct Config {
    /// The failure ratio, in millionths.
    ratio_ppm: u64,
    min_calls: u32,
    span: Span,
    break_ns: u64,
    probes: u32,
    consecutive: u32,
    count_rate_limits: bool,
}

impl CircuitBreaker {
    crate::sync::const_fn! {
        /// A closed breaker with the default settings (see the table in the
        /// [type docs](Self)). `const`, so it can be a `static`.
        ///
        /// ```
        /// use llm_resilience::{BreakerState, CircuitBreaker};
        ///
        /// static OPENAI: CircuitBreaker = CircuitBreaker::new();
        /// assert_eq!(OPENAI.state(), BreakerState::Closed);
        /// ```
        pub const fn new() -> Self {
            CircuitBreaker {
                window: Window::new(),
                #[cfg(not(retry_loom))]
                successes: [const { CachePadded(AtomicU64::new(0)) }; STRIPES],
                #[cfg(retry_loom)]
                successes: core::array::from_fn(|_| CachePadded(AtomicU64::new(0))),
                state: AtomicU64::new(CLOSED),
                generation_at: AtomicU64::new(0),
                config: Config {
                    ratio_ppm: 500_000,
                    min_calls: 20,
                    span: Span::new(Duration::from_secs(30)),
                    break_ns: 30_000_000_000,
                    probes: 1,
                    consecutive: 0,
                    count_rate_limits: false,
                },
            }
        }
    }

    /// Open when the share of failed calls in the window reaches `ratio`
    /// (once the window holds [`min_calls`](Self::min_calls) calls). Default
    /// 0.5. A ratio of 0 or less opens at the first failure once the window
    /// holds `min_calls` calls; a ratio above 1 never opens the breaker (so
    /// that only [`consecutive_failures`](Self::consecutive_failures) does).
    ///
    /// ```
    /// use llm_resilience::CircuitBreaker;
    ///
    /// static BREAKER: CircuitBreaker = CircuitBreaker::new().failure_ratio(0.25);
    /// # assert!(BREAKER.try_acquire().is_ok());
    /// ```
    pub const fn failure_ratio(mut self, ratio: f64) -> Self {
        self.config.ratio_ppm = ppm(ratio);
        self
    }

    /// The fewest calls the window must hold before the failure ratio can
    /// open the breaker, so that two failures out of three calls at a quiet
    /// time do not. Default 20.
    ///
    /// ```
    /// use llm_resilience::CircuitBreaker;
    ///
    /// static BREAKER: CircuitBreaker = CircuitBreaker::new().min_calls(100);
    /// # assert!(BREAKER.try_acquire().is_ok());
    /// ```
    pub const fn min_calls(mut self, n: u32) -> Self {
        self.config.min_calls = n;
        self
    }

    /// How far back calls are counted: failures older than this no longer
    /// count. Default 30 s. The window moves on in ten steps (buckets) of a
    /// tenth of it, so it covers between nine and ten tenths of `d`, and up
    /// to one more tenth for successes (see the [type docs](Self)).
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::CircuitBreaker;
    ///
    /// static BREAKER: CircuitBreaker = CircuitBreaker::new().window(Duration::from_secs(60));
    /// # assert!(BREAKER.try_acquire().is_ok());
    /// ```
    pub const fn window(mut self, d: Duration) -> Self {
        self.config.span = Span::new(d);
        self
    }

    /// How long the breaker stays open before it admits a probe. Default
    /// 30 s.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::CircuitBreaker;
    ///
    /// static BREAKER: CircuitBreaker = CircuitBreaker::new().break_for(Duration::from_secs(5));
    /// # assert!(BREAKER.try_acquire().is_ok());
    /// ```
    pub const fn break_for(mut self, d: Duration) -> Self {
        self.config.break_ns = nanos(d);
        self
    }

    /// How many probes may be in flight at once when half-open. Default 1;
    /// 0 counts as 1, and at most 16 383.
    ///
    /// ```
    /// use llm_resilience::CircuitBreaker;
    ///
    /// static BREAKER: CircuitBreaker = CircuitBreaker::new().half_open_probes(3);
    /// # assert!(BREAKER.try_acquire().is_ok());
    /// ```
    pub const fn half_open_probes(mut self, n: u32) -> Self {
        self.config.probes = if n == 0 {
            1
        } else if n > PROBES_MAX {
            PROBES_MAX
        } else {
            n
        };
        self
    }

    /// Also open after `n` failures in a row, whatever the window holds.
    /// Default 0: off.
    ///
    /// ```
    /// use llm_resilience::{BreakerState, CircuitBreaker, ErrorKind};
    ///
    /// let breaker = CircuitBreaker::new().consecutive_failures(3);
    /// for _ in 0..3 {
    ///     breaker.try_acquire().unwrap().failure(ErrorKind::Timeout);
    /// }
    /// assert!(matches!(breaker.state(), BreakerState::Open { .. }));
    /// ```
    pub const fn consecutive_failures(mut self, n: u32) -> Self {
        self.config.consecutive = n;
        self
    }

    /// Whether a [`RateLimit`](ErrorKind::RateLimit) error is a failure.
    /// Default false: a provider that says "slow down" is answering, and the
    /// retry policy already waits as it asks; it then counts as a success.
    ///
    /// ```
    /// use llm_resilience::{BreakerState, CircuitBreaker, ErrorKind};
    ///
    /// let breaker = CircuitBreaker::new().consecutive_failures(1).count_rate_limits(true);
    /// breaker.try_acquire().unwrap().failure(ErrorKind::RateLimit);
    /// assert!(matches!(breaker.state(), BreakerState::Open { .. }));
    /// ```
    pub const fn count_rate_limits(mut self, yes: bool) -> Self {
        self.config.count_rate_limits = yes;
        self
    }
}

impl Default for CircuitBreaker {
    /// [`CircuitBreaker::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("CircuitBreaker")
            .field("state", &self.state())
            .field("failure_ratio", &(c.ratio_ppm as f64 / 1e6))
            .field("min_calls", &c.min_calls)
            .field("window", &c.span.duration())
            .field("break_for", &Duration::from_nanos(c.break_ns))
            .field("half_open_probes", &c.probes)
            .field("consecutive_failures", &c.consecutive)
            .field("count_rate_limits", &c.count_rate_limits)
            .finish()
    }
}

/// Without the `tracing` feature, the breaker logs nothing.
#[cfg(not(feature = "tracing"))]
mod log {
    #[inline]
    pub(super) fn opened(_: bool, _: u64, _: u64, _: u32, _: u64) {}
    #[inline]
    pub(super) fn half_open(_: bool) {}
    #[inline]
    pub(super) fn reopened(_: u64) {}
    #[inline]
    pub(super) fn closed(_: u64, _: bool) {}
    #[inline]
    pub(super) fn isolated(_: u64) {}
}
