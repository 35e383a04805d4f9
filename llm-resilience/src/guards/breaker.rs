//! A circuit breaker: stop calling a provider that keeps failing, and probe it
//! before letting traffic through again.

use core::fmt;
use std::time::Duration;

use crate::guards::window::{ppm, CachePadded, Span, Window, HI, LO};
use crate::sync::{AtomicU64, Ordering};
use crate::time::{nanos, now_ns, TIME_MAX};
use crate::{Classify, ErrorKind};

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
    /// The state, as encoded below. Read on every admission; written only on
    /// changes of state and by probes.
    state: AtomicU64,
    /// The timestamp that the generation of the latest half-open state was
    /// taken from, in full (see [`next_generation`](Self::next_generation)).
    generation_at: AtomicU64,
    config: Config,
}

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

// The state word. The low two bits are the state; the rest depends on it:
//
// - closed: nothing (the word is 0, so admission compares with a constant);
// - open: the timestamp at which the break ends, in bits 2..64;
// - half-open: the probes in flight in bits 2..16, and in bits 16..64 the
//   generation: the timestamp at which the half-open state began, modulo
//   2^48 ns (78 hours), or one past the previous generation if the clock has
//   not moved past it (`next_generation`). A probe's permit remembers its
//   generation, so that a probe left over from an earlier half-open state
//   does nothing to a later one. Measuring how long ago the state began modulo 78 hours is enough:
//   a state that lasts longer with every probe hung can only be held up by
//   one more `break_for` each 78 hours;
// - isolated: nothing.
//
// Every change of state is one compare-and-swap of the whole word from the
// value it was read as, so two threads cannot both make the same change: one
// trip, one Open -> HalfOpen, one probe result that closes or reopens, and
// probe slots counted exactly. The window is a separate structure; nothing
// about the state is inferred from it after the fact, so the two need no
// common ordering beyond what each change of state reads for itself, and
// one: closing empties the window before its swap to closed (release), so a
// call admitted by a load (acquire) that sees closed is counted after the
// reset, never wiped by it.
const TAG: u64 = 0b11;
const CLOSED: u64 = 0;
const OPEN: u64 = 1;
const HALF_OPEN: u64 = 2;
const ISOLATED: u64 = 3;
const PROBES_SHIFT: u32 = 2;
const PROBES_MAX: u32 = 0x3FFF;
const GEN_SHIFT: u32 = 16;
const GEN_MASK: u64 = (1 << 48) - 1;

/// The least time after which probes in flight are presumed lost.
const LOST_PROBE_MIN: u64 = 1_000_000_000;

/// The most: half the range of a generation.
const LOST_PROBE_MAX: u64 = GEN_MASK / 2;

/// How many success counters a breaker spreads its threads over.
#[cfg(not(retry_loom))]
const STRIPES: usize = 8;

/// Under the model checks, one: every thread shares it, and each extra
/// counter would multiply the interleavings to explore.
#[cfg(retry_loom)]
const STRIPES: usize = 1;

/// The success counter of the calling thread: threads take the counters in
/// turn, on first use.
#[cfg(not(retry_loom))]
#[inline]
fn stripe() -> usize {
    use std::cell::Cell;
    use std::sync::atomic::AtomicUsize;

    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static MINE: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    MINE.with(|mine| {
        let i = mine.get();
        if i != usize::MAX {
            return i;
        }
        let i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % STRIPES;
        mine.set(i);
        i
    })
}

/// Under the model checks every thread uses the one counter.
#[cfg(retry_loom)]
fn stripe() -> usize {
    0
}

/// The generation of a permit that is not a probe.
const NOT_PROBE: u64 = u64::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: u64 },
    HalfOpen { gen: u64, probes: u32 },
    Isolated,
}

impl State {
    const fn decode(word: u64) -> State {
        match word & TAG {
            CLOSED => State::Closed,
            OPEN => State::Open { until: word >> 2 },
            HALF_OPEN => State::HalfOpen {
                gen: word >> GEN_SHIFT,
                probes: ((word >> PROBES_SHIFT) & PROBES_MAX as u64) as u32,
            },
            _ => State::Isolated,
        }
    }

    const fn open(until: u64) -> u64 {
        OPEN | (until << 2)
    }

    const fn half_open(gen: u64, probes: u32) -> u64 {
        HALF_OPEN | ((probes as u64) << PROBES_SHIFT) | (gen << GEN_SHIFT)
    }

    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    const fn name(word: u64) -> &'static str {
        match word & TAG {
            CLOSED => "closed",
            OPEN => "open",
            HALF_OPEN => "half-open",
            _ => "isolated",
        }
    }
}

/// The generation of a half-open state that begins at `now`.
const fn generation(now: u64) -> u64 {
    now & GEN_MASK
}

/// How long ago the half-open state of generation `gen` began, modulo 2^48
/// ns. A `now` read before the state began (by a thread that read the clock,
/// then lost the race to begin it; or one whose clock is behind) is 0 rather
/// than nearly 2^48: differences over half the range are negative.
const fn since(gen: u64, now: u64) -> u64 {
    let elapsed = now.wrapping_sub(gen) & GEN_MASK;
    if elapsed > GEN_MASK / 2 {
        0
    } else {
        elapsed
    }
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
    const fn counts(&self, kind: ErrorKind) -> bool {
        match kind {
            ErrorKind::Overloaded | ErrorKind::Server | ErrorKind::Timeout | ErrorKind::Network => {
                true
            }
            ErrorKind::RateLimit => self.config.count_rate_limits,
            _ => false,
        }
    }

    /// A call admitted while closed succeeded: no clock, no lock.
    #[inline]
    fn succeeded(&self) {
        self.successes[stripe()].0.fetch_add(1, Ordering::Relaxed);
        self.window.start_if_new(self.config.span.bucket_ns);
        if self.config.consecutive != 0 {
            let streak = self.window.aux();
            if streak.load(Ordering::Relaxed) != 0 {
                streak.store(0, Ordering::Relaxed);
            }
        }
    }

    /// A call failed; `probe` is its generation if it was a probe.
    #[cold]
    #[inline(never)]
    fn failed(&self, probe: u64) {
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

    /// Move the successes reported so far into the window, as calls made at
    /// unknown times since it was last read (as if each had been added to
    /// it when reported).
    fn drain(&self) {
        let mut n: u64 = 0;
        for stripe in &self.successes {
            n = n.wrapping_add(stripe.0.swap(0, Ordering::AcqRel));
        }
        if n != 0 {
            self.window
                .add(n.wrapping_mul(HI), self.config.span.bucket_ns);
        }
    }

    /// Drop the successes not yet in the window, before it is emptied.
    fn forget_successes(&self) {
        for stripe in &self.successes {
            stripe.0.store(0, Ordering::Release);
        }
    }

    /// The probe of generation `gen` succeeded: close, with an empty window.
    fn probe_succeeded(&self, gen: u64) {
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
    fn probe_failed(&self, gen: u64, now: u64) {
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
    fn probe_dropped(&self, gen: u64) {
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

/// Leave to make one call through a [`CircuitBreaker`], from
/// [`try_acquire`](CircuitBreaker::try_acquire). Report the call's outcome
/// with [`success`](Self::success) or [`failure`](Self::failure).
///
/// A permit dropped without either (the call's future was cancelled, say)
/// records nothing; if it was a half-open probe, its slot is given back so
/// that another call can probe.
///
/// ```
/// use llm_resilience::{CircuitBreaker, ErrorKind};
///
/// let breaker = CircuitBreaker::new();
/// let permit = breaker.try_acquire().unwrap();
/// assert!(!permit.is_probe());
/// permit.success();
/// ```
#[must_use = "report the call's outcome with `success()` or `failure(kind)`"]
pub struct BreakerPermit<'a> {
    breaker: &'a CircuitBreaker,
    /// The half-open generation the probe belongs to, or `NOT_PROBE`.
    probe: u64,
}

impl BreakerPermit<'_> {
    /// The call succeeded. Closes the breaker if this was a half-open probe.
    /// Otherwise one atomic add on the calling thread's counter: no clock
    /// reading, no lock.
    ///
    /// ```
    /// use llm_resilience::{BreakerState, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.try_acquire().unwrap().success();
    /// assert_eq!(breaker.state(), BreakerState::Closed);
    /// ```
    #[inline]
    pub fn success(mut self) {
        let probe = core::mem::replace(&mut self.probe, NOT_PROBE);
        if probe == NOT_PROBE {
            self.breaker.succeeded();
        } else {
            self.breaker.probe_succeeded(probe);
        }
    }

    /// The call failed with an error of this kind. Only
    /// [`Overloaded`](ErrorKind::Overloaded), [`Server`](ErrorKind::Server),
    /// [`Timeout`](ErrorKind::Timeout), [`Network`](ErrorKind::Network), and
    /// [`RateLimit`](ErrorKind::RateLimit) when the breaker
    /// [counts rate limits](CircuitBreaker::count_rate_limits), are failures;
    /// any other kind means the provider answered, and is reported as a
    /// [`success`](Self::success).
    ///
    /// A failure may open the breaker; a failed probe opens it again.
    ///
    /// ```
    /// use llm_resilience::{BreakerState, CircuitBreaker, ErrorKind};
    ///
    /// let breaker = CircuitBreaker::new().consecutive_failures(2);
    /// breaker.try_acquire().unwrap().failure(ErrorKind::Auth); // not a failure
    /// breaker.try_acquire().unwrap().failure(ErrorKind::Server);
    /// assert_eq!(breaker.state(), BreakerState::Closed);
    /// breaker.try_acquire().unwrap().failure(ErrorKind::Network);
    /// assert!(matches!(breaker.state(), BreakerState::Open { .. }));
    /// ```
    #[inline]
    pub fn failure(mut self, kind: ErrorKind) {
        if !self.breaker.counts(kind) {
            return self.success();
        }
        let probe = core::mem::replace(&mut self.probe, NOT_PROBE);
        self.breaker.failed(probe);
    }

    /// Whether the call is a half-open probe, whose outcome closes or opens
    /// the breaker.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::{CircuitBreaker, ErrorKind};
    ///
    /// let breaker = CircuitBreaker::new().consecutive_failures(1).break_for(Duration::ZERO);
    /// breaker.try_acquire().unwrap().failure(ErrorKind::Server);
    /// let probe = breaker.try_acquire().unwrap(); // the break is over at once
    /// assert!(probe.is_probe());
    /// probe.success();
    /// ```
    pub fn is_probe(&self) -> bool {
        self.probe != NOT_PROBE
    }
}

impl Drop for BreakerPermit<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.probe != NOT_PROBE {
            self.breaker.probe_dropped(self.probe);
        }
    }
}

impl fmt::Debug for BreakerPermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerPermit")
            .field("probe", &self.is_probe())
            .finish_non_exhaustive()
    }
}

/// The state of a [`CircuitBreaker`], from [`CircuitBreaker::state`].
///
/// ```
/// use llm_resilience::{BreakerState, CircuitBreaker};
///
/// match CircuitBreaker::new().state() {
///     BreakerState::Closed => {}
///     BreakerState::Open { retry_in } => println!("open for {retry_in:?}"),
///     BreakerState::HalfOpen => println!("probing"),
///     BreakerState::Isolated => println!("held open"),
///     _ => {}
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls go through and are counted.
    Closed,
    /// Calls are refused.
    Open {
        /// How long until a probe is admitted.
        retry_in: Duration,
    },
    /// Probes are admitted, a few at a time; others are refused.
    HalfOpen,
    /// Held open by [`CircuitBreaker::isolate`] until
    /// [`CircuitBreaker::close`].
    Isolated,
}

/// A call refused by a [`CircuitBreaker`].
///
/// It [classifies](Classify) as [`Overloaded`](ErrorKind::Overloaded), with a
/// [`retry_after`](Classify::retry_after) of the time until the breaker
/// admits a probe (none when isolated).
///
/// ```
/// use llm_resilience::{CircuitBreaker, Classify, ErrorKind};
///
/// let breaker = CircuitBreaker::new().consecutive_failures(1);
/// breaker.try_acquire().unwrap().failure(ErrorKind::Overloaded);
/// let refused = breaker.try_acquire().unwrap_err();
/// assert_eq!(refused.kind(), ErrorKind::Overloaded);
/// assert_eq!(refused.retry_after(), refused.retry_in());
/// assert!(refused.to_string().starts_with("circuit breaker open; a probe is admitted in "));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CircuitOpen {
    retry_in: Option<Duration>,
    why: Why,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Why {
    Open,
    HalfOpen,
    Isolated,
}

impl CircuitOpen {
    fn open(why: Why, retry_in: u64) -> Self {
        CircuitOpen {
            retry_in: Some(Duration::from_nanos(retry_in)),
            why,
        }
    }

    fn isolated() -> Self {
        CircuitOpen {
            retry_in: None,
            why: Why::Isolated,
        }
    }

    /// How long until the breaker admits a probe: the rest of the break when
    /// open; when half-open with every probe slot taken, the time until the
    /// probes in flight are presumed lost (one may finish sooner).
    /// `None` when [isolated](CircuitBreaker::isolate).
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::{CircuitBreaker, ErrorKind};
    ///
    /// let breaker = CircuitBreaker::new().consecutive_failures(1).break_for(Duration::from_secs(10));
    /// breaker.try_acquire().unwrap().failure(ErrorKind::Timeout);
    /// let wait = breaker.try_acquire().unwrap_err().retry_in().unwrap();
    /// assert!(wait <= Duration::from_secs(10));
    /// ```
    pub fn retry_in(&self) -> Option<Duration> {
        self.retry_in
    }

    /// Whether the breaker was [isolated](CircuitBreaker::isolate): no call
    /// goes through until someone closes it.
    ///
    /// ```
    /// use llm_resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.isolate();
    /// assert!(breaker.try_acquire().unwrap_err().is_isolated());
    /// ```
    pub fn is_isolated(&self) -> bool {
        self.why == Why::Isolated
    }
}

/// A wait as people read it, rounded to about two significant figures:
/// `250ms` under a second (rounded up: never `0ms` for a wait), `1.5s` or
/// `30s` under a minute, `2m30s` under an hour, `1h5m` under a day, then
/// `3d4h`. Every message of this crate that shows a wait uses it; use it
/// in yours to match. Any `Duration` formats, `Duration::MAX` included.
///
/// ```
/// use std::time::Duration;
/// use llm_resilience::HumanWait;
///
/// assert_eq!(HumanWait(Duration::from_nanos(29_999_981_533)).to_string(), "30s");
/// assert_eq!(HumanWait(Duration::from_millis(1500)).to_string(), "1.5s");
/// assert_eq!(HumanWait(Duration::from_micros(249_001)).to_string(), "250ms");
/// assert_eq!(HumanWait(Duration::from_secs(150)).to_string(), "2m30s");
/// assert_eq!(HumanWait(Duration::from_secs(3 * 86_400 + 4 * 3_600)).to_string(), "3d4h");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanWait(pub Duration);

impl fmt::Display for HumanWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MS: u128 = 1_000_000;
        const S: u128 = 1_000 * MS;
        let nanos = self.0.as_nanos();
        // Round at the precision of the form first, then pick the form by
        // the rounded value, so that 59.97 s reads `1m`, not `60s`.
        let round = |unit: u128| (nanos + unit / 2) / unit;
        let ms = nanos.div_ceil(MS);
        if ms < 1_000 {
            return write!(f, "{ms}ms");
        }
        let tenths = round(S / 10);
        if tenths < 600 {
            return match tenths % 10 {
                0 => write!(f, "{}s", tenths / 10),
                t => write!(f, "{}.{t}s", tenths / 10),
            };
        }
        let pair = |f: &mut fmt::Formatter<'_>, n: u128, per: u128, big: &str, small: &str| match n
            % per
        {
            0 => write!(f, "{}{big}", n / per),
            rest => write!(f, "{}{big}{rest}{small}", n / per),
        };
        let secs = round(S);
        if secs < 3_600 {
            return pair(f, secs, 60, "m", "s");
        }
        let minutes = round(60 * S);
        if minutes < 24 * 60 {
            return pair(f, minutes, 60, "h", "m");
        }
        pair(f, round(3_600 * S), 24, "d", "h")
    }
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.why, self.retry_in) {
            (Why::Isolated, _) | (_, None) => {
                f.write_str("circuit breaker isolated; no call is admitted until it is closed")
            }
            (Why::Open, Some(d)) => {
                write!(f, "circuit breaker open; a probe is admitted in {}", HumanWait(d))
            }
            (Why::HalfOpen, Some(d)) => write!(
                f,
                "circuit breaker half-open with its probes in flight; a probe is admitted in {} at the latest",
                HumanWait(d)
            ),
        }
    }
}

impl std::error::Error for CircuitOpen {}

impl Classify for CircuitOpen {
    /// [`Overloaded`](ErrorKind::Overloaded): the provider is presumed over
    /// capacity.
    fn kind(&self) -> ErrorKind {
        ErrorKind::Overloaded
    }

    /// [`retry_in`](CircuitOpen::retry_in).
    fn retry_after(&self) -> Option<Duration> {
        self.retry_in
    }
}

/// The breaker's events, or nothing without the `tracing` feature.
#[cfg(feature = "tracing")]
mod log {
    use super::State;

    fn ms(ns: u64) -> u64 {
        ns / 1_000_000
    }

    pub(super) fn opened(by_ratio: bool, calls: u64, failures: u64, streak: u32, break_ns: u64) {
        tracing::warn!(
            target: "llm_resilience",
            from = "closed",
            to = "open",
            reason = if by_ratio { "failure ratio" } else { "consecutive failures" },
            calls,
            failures,
            consecutive_failures = streak,
            break_ms = ms(break_ns),
            "circuit breaker opened"
        );
    }

    pub(super) fn half_open(renewed: bool) {
        if renewed {
            tracing::warn!(
                target: "llm_resilience",
                from = "half-open",
                to = "half-open",
                "circuit breaker probes presumed lost; admitting new probes"
            );
        } else {
            tracing::warn!(
                target: "llm_resilience",
                from = "open",
                to = "half-open",
                "circuit breaker half-open; admitting a probe"
            );
        }
    }

    pub(super) fn reopened(break_ns: u64) {
        tracing::warn!(
            target: "llm_resilience",
            from = "half-open",
            to = "open",
            break_ms = ms(break_ns),
            "circuit breaker probe failed; opened again"
        );
    }

    pub(super) fn closed(before: u64, manual: bool) {
        if manual {
            tracing::info!(
                target: "llm_resilience",
                from = State::name(before),
                to = "closed",
                "circuit breaker closed manually"
            );
        } else {
            tracing::info!(
                target: "llm_resilience",
                from = State::name(before),
                to = "closed",
                "circuit breaker probe succeeded; closed"
            );
        }
    }

    pub(super) fn isolated(before: u64) {
        tracing::warn!(
            target: "llm_resilience",
            from = State::name(before),
            to = "isolated",
            "circuit breaker isolated"
        );
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_words_round_trip() {
        let until = TIME_MAX;
        assert_eq!(State::decode(State::open(until)), State::Open { until });
        let gen = GEN_MASK;
        assert_eq!(
            State::decode(State::half_open(gen, PROBES_MAX)),
            State::HalfOpen {
                gen,
                probes: PROBES_MAX
            }
        );
        assert_eq!(State::decode(CLOSED), State::Closed);
        assert_eq!(State::decode(ISOLATED), State::Isolated);
    }

    #[test]
    fn generations_measure_time_modulo_their_width() {
        let t = GEN_MASK - 7; // just before a wrap of the generation
        let gen = generation(t);
        assert_eq!(since(gen, t + 5_000), 5_000);
        assert_eq!(since(gen, t), 0);
        assert_eq!(since(gen, t - 5_000), 0, "a reading from before it began");
    }

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
