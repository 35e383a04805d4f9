//! The adaptive client-side rate limiter, [`AdaptiveLimiter`]; its
//! documentation describes the algorithm.
//!
//! This module holds the type, its settings and the state it keeps under
//! its lock; the rest of it is in:
//!
//! - `slots`: how a caller takes its place ([`Slot`]) and how long it
//!   waits;
//! - `schedule`: the numbered queue of send slots;
//! - `tokens`: the schedule of the tokens of the provider's bucket;
//! - `initial_window`: the attempts let out before anything is known;
//! - `refusals`: what a `429` tells it: episodes, measurements, cuts,
//!   guesses and pauses;
//! - `growth`: setting the pacing rate, and growing it with successes;
//! - `hints`: the limits and budgets providers announce in their headers;
//! - `fleet`: what a limiter shared by several processes reads and is told
//!   (feature `redis`).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

#[cfg(feature = "redis")]
pub(crate) mod fleet;
mod growth;
mod hints;
mod initial_window;
mod refusals;
mod schedule;
mod slots;
mod tokens;

pub(crate) use slots::Slot;

use initial_window::MAX_WINDOW;
use refusals::Episode;
use schedule::Schedule;
use tokens::Tokens;

/// The `rate` word of a limiter that does not pace.
const UNLIMITED: u64 = 0;
/// 1.0's bits: the share of a limiter that is not shared.
const ONE: u64 = 0x3FF0_0000_0000_0000;
/// A `next` slot long ago, far enough from `i64::MIN` to subtract from.
const LONG_AGO: i64 = i64::MIN / 4;

const NANOS_PER_SEC: f64 = 1e9;

const DEFAULT_MIN_RATE: f64 = 0.1;
const DEFAULT_MAX_RATE: f64 = 10_000.0;
const DEFAULT_HEADROOM: f64 = 0.95;
const DEFAULT_BURST: u32 = 1;
const DEFAULT_PROBE_AFTER: Duration = Duration::from_secs(5);
/// Attempts in flight at once before the limiter has seen any answer.
const DEFAULT_WINDOW: u32 = 16;

/// A client-side rate limiter for one provider (one API key, one model
/// family: whatever the provider's limit applies to), shared by every task
/// that calls it, which learns the rate the provider admits from its `429`s
/// and paces attempts, first attempts and retries alike, to stay just under
/// it: a fleet of tasks stops sending requests that will be refused.
///
/// Every builder is a `const fn`, so a limiter lives in a `static`:
///
/// ```
/// use std::time::Duration;
/// use llm_resilience::AdaptiveLimiter;
///
/// // Unlimited until the provider refuses something.
/// static OPENAI: AdaptiveLimiter = AdaptiveLimiter::new();
/// // Paced from the start at about the documented limit, learning the real one.
/// static ANTHROPIC: AdaptiveLimiter = AdaptiveLimiter::new()
///     .initial_rate(50.0)
///     .burst(5)
///     .probe_after(Duration::from_secs(10));
///
/// assert_eq!(OPENAI.rate(), None);
/// assert_eq!(ANTHROPIC.rate(), Some(50.0));
/// ```
///
/// The retry engine drives it: before every attempt it sleeps for
/// [`acquire_delay`](Self::acquire_delay), and after it reports the outcome
/// with [`on_success`](Self::on_success),
/// [`on_rate_limited`](Self::on_rate_limited) or
/// [`on_other_failure`](Self::on_other_failure). By hand:
///
/// ```
/// use std::time::Duration;
/// use llm_resilience::AdaptiveLimiter;
///
/// static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new();
///
/// fn send(prompt: &str) -> Result<String, Option<Duration>> {
///     // Refused with `Err(retry_after)`; here, never.
///     Ok(format!("echo: {prompt}"))
/// }
///
/// std::thread::sleep(LIMITER.acquire_delay());
/// match send("hi") {
///     Ok(_) => LIMITER.on_success(),
///     Err(retry_after) => LIMITER.on_rate_limited(retry_after),
/// }
/// ```
///
/// | builder | default |
/// |---|---|
/// | [`initial_rate`](Self::initial_rate) | unlimited until the first `429` |
/// | [`burst`](Self::burst) | 1 |
/// | [`min_rate`](Self::min_rate) | 0.1 per second |
/// | [`max_rate`](Self::max_rate) | 10 000 per second (above it, unlimited) |
/// | [`headroom`](Self::headroom) | 0.95 of the measured rate |
/// | [`probe_after`](Self::probe_after) | 5 s without a `429` |
/// | [`initial_window`](Self::initial_window) | 16 attempts in flight before anything is known |
///
/// # How it works
///
/// **Pacing.** While it paces at `r` attempts per second, every caller
/// takes a numbered place in a queue of send slots, slot `n` due at
/// `anchor + (n − anchor_n) / r`; after an idle spell up to `burst` of them
/// are due at once. A caller holds its number, not a time: when the rate
/// changes, the slots not yet due are re-spaced from now on, and the retry
/// engine, which looks again at least every 250 ms while it waits, moves
/// with them, so a limit that comes back is used at once by the callers
/// already waiting. Callers that arrive together, say after the same
/// `Retry-After`, leave at different times instead of in lockstep. A
/// refusal takes away any burst credit: the provider's own bucket is empty
/// at that moment. A slot its caller did not use (dropped while waiting, or
/// refused after) goes back if no later one was handed out.
///
/// **Unlimited until told otherwise.** A new limiter does not pace:
/// [`acquire_delay`](Self::acquire_delay) is one atomic load and
/// [`on_success`](Self::on_success) one atomic increment, with no clock read.
/// Until it learns anything, the retry engine lets attempts out an
/// [`initial_window`](Self::initial_window) at a time (16, then half as
/// many more for each answer), so that a herd of callers at start-up is
/// not sent at once. The first `429` starts pacing at a guess biased high,
/// 70 % of the successes seen so far as if they took 0.1 s (more refusals
/// of the same unpaced burst only raise it; refusals of attempts that did
/// not wait for a slot do not cut the rate): a rate too high is soon
/// measured, one too low only slowly outgrown. A limit the provider
/// announces ([`observe_limit`](Self::observe_limit), which
/// `http::check` calls from every answer) sets the
/// pace at once and caps it. With [`initial_rate`](Self::initial_rate) it
/// paces from the start instead.
///
/// **Measuring the admitted rate.** A `429` means the provider had nothing
/// left to admit at that moment. Refusals that follow each other closely
/// (within `max(0.5 s, 20/r)`) form an *episode*, throughout which the
/// provider stays exhausted, so everything it admits meanwhile is a request
/// that succeeds: the successes reported since the episode's first refusal,
/// divided by the time since, is the rate it admits. Once an episode has
/// lasted `max(0.2 s, 10/r)`, every refusal takes that measurement (over the
/// whole episode so far) and the limiter paces at `headroom` (95 %) of it.
/// Before that, every refusal is evidence that the rate is too high: the
/// first of an episode cuts it by 5 % (or to the lower of 90 % and the
/// headroom times the last measurement, once there is one), each further
/// one by another 5 %, down to half the rate the episode began at. For a
/// token bucket the measurement is exact, whatever the concurrency, the
/// latency or the refusals' own retries, and it is never above what the
/// provider admits.
///
/// **Growth.** Before the first refusal (from an `initial_rate`) and after a
/// guess, the rate grows by `e^(0.3 t)` over `t` seconds in which successes
/// keep coming; after a cut or a measurement it holds for
/// [`probe_after`](Self::probe_after) since the last refusal, then probes
/// upward, gently at first and faster the longer nothing is refused
/// (`e^(0.05 t + 0.15 t²)`): the limit found again soon costs few refusals,
/// a tenfold limit that came back is reached in about 3.5 s of probing.
/// Growth is clocked by time with successes, so an idle limiter does not
/// drift up, and a crowd of waiting callers does not slow it down. A
/// measurement the rate has since grown past without a refusal is stale,
/// and the next cut starts from the rate instead. Past
/// [`max_rate`](Self::max_rate) the limiter stops pacing and is unlimited
/// again; its last measurement is its next guess.
///
/// **Retry-After.** The retry engine already makes the refused request
/// itself wait its `Retry-After`; the limiter does not hold back the whole
/// fleet for it, which would waste the provider's capacity when the hint is
/// coarse (a token bucket that has a token again in 10 ms still says
/// `Retry-After: 1`). The fleet waits for it only when the provider admitted
/// nothing for a whole episode (a closed window), or when the rate is
/// already at [`min_rate`](Self::min_rate); and never more than 60 s.
/// [`observe_remaining`](Self::observe_remaining) is the other source of
/// pacing, from the budget headers of any response.
pub struct AdaptiveLimiter {
    initial_rate: f64,
    burst: u32,
    min_rate: f64,
    max_rate: f64,
    headroom: f64,
    probe_after: Duration,
    /// The pacing rate's bits, or [`UNLIMITED`]: read without a lock by
    /// every caller, written only under `control`.
    rate: AtomicU64,
    /// Successes reported so far.
    successes: AtomicU64,
    /// Refusals reported here so far, for a fleet's exchange to notice one
    /// without the lock.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    refusals: AtomicU64,
    /// The share of the rate this process paces at, as `f64` bits: 1, or
    /// for a limiter shared by a fleet of processes, 1 / the live
    /// processes. Every rate the limiter learns is the provider's, for the
    /// whole fleet; only the pacing interval takes the share.
    share: AtomicU64,
    /// Twice the initial window: how many attempts may be in flight before
    /// the limiter has learnt anything; 0 once it has (or when it has none).
    window: AtomicU32,
    /// Attempts in flight in the initial window.
    in_flight: AtomicU32,
    /// Tokens the attempts in the initial window said they cost.
    window_tokens: AtomicU64,
    /// When the initial window was last found full (or grew by time).
    window_full_since: AtomicI64,
    /// Whether a token limit was announced: calls that state a cost are
    /// paced on tokens too.
    token_pacing: AtomicBool,
    /// Whether successes are counted while the limiter does not pace (for
    /// its first guess); not by the limiter `#[retry]` gives a function
    /// that names none, whose success path is then one atomic load.
    count_unpaced: bool,
    /// When the limiter last became unlimited, and the successes then: the
    /// basis of the next guess. `LONG_AGO` when it has always been.
    unlimited_at: AtomicI64,
    unlimited_successes: AtomicU64,
    /// The bookkeeping of refusals, touched only on the rare paths.
    control: Mutex<Control>,
}

/// What a shared limiter keeps for its fleet's exchange (see
/// `Control::fleet_log`).
struct FleetLog {
    refusals: Vec<(Option<Duration>, bool)>,
    wake: std::sync::Arc<dyn Fn() + Send + Sync>,
    /// How late (ns) the other processes' successes and refusals can
    /// arrive here.
    lag: i64,
}

impl core::fmt::Debug for FleetLog {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FleetLog")
            .field("refusals", &self.refusals)
            .finish_non_exhaustive()
    }
}

/// The paced path's state: the schedule of send slots, growth, and what the
/// limiter knows of refusals and hints. Times are nanoseconds since the
/// process-wide epoch of [`crate::time::since_epoch_ns`].
#[derive(Debug)]
struct Control {
    /// When the last refusal was reported.
    last_refusal: Option<i64>,
    /// The current (or last) episode of refusals.
    episode: Option<Episode>,
    /// The last measured admitted rate; 0 when none.
    measured: f64,
    /// The send slots handed out, and when each is due.
    schedule: Schedule,
    /// Successes already turned into growth.
    grown: u64,
    /// No growth before this time.
    probe_at: i64,
    /// When the rate last grew (or growth was last considered).
    last_growth: i64,
    /// Whether the rate grows fast (before the first refusal, after a guess)
    /// or probes gently (after a cut or a measurement).
    fast: bool,
    /// A budget hint in force ([`AdaptiveLimiter::observe_remaining`]):
    /// until when, and the rate's bits before it.
    hint: Option<(i64, u64)>,
    /// The limit the provider announced, per second; 0 when none.
    announced: f64,
    /// The refusals reported here, kept for a fleet's exchange while the
    /// limiter is shared (`None` otherwise): the `Retry-After` each
    /// carried, and whether its attempt waited for a slot; and how to wake
    /// the exchange, so that a refusal reaches the fleet at once.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    fleet_log: Option<FleetLog>,
    /// The tokens calls said they cost, against the token limit the
    /// provider announced.
    tokens: Tokens,
}

impl AdaptiveLimiter {
    /// A limiter with the default settings (see the table on
    /// [`AdaptiveLimiter`]): unlimited until the first `429`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new();
    /// assert_eq!(LIMITER.acquire_delay(), Duration::ZERO);
    /// assert_eq!(LIMITER.rate(), None);
    /// ```
    pub const fn new() -> Self {
        AdaptiveLimiter {
            initial_rate: f64::INFINITY,
            burst: DEFAULT_BURST,
            min_rate: DEFAULT_MIN_RATE,
            max_rate: DEFAULT_MAX_RATE,
            headroom: DEFAULT_HEADROOM,
            probe_after: DEFAULT_PROBE_AFTER,
            rate: AtomicU64::new(UNLIMITED),
            successes: AtomicU64::new(0),
            refusals: AtomicU64::new(0),
            share: AtomicU64::new(ONE),
            window: AtomicU32::new(2 * DEFAULT_WINDOW),
            in_flight: AtomicU32::new(0),
            token_pacing: AtomicBool::new(false),
            window_tokens: AtomicU64::new(0),
            window_full_since: AtomicI64::new(LONG_AGO),
            count_unpaced: true,
            unlimited_at: AtomicI64::new(LONG_AGO),
            unlimited_successes: AtomicU64::new(0),
            control: Mutex::new(Control {
                last_refusal: None,
                episode: None,
                measured: 0.0,
                schedule: Schedule::NEW,
                grown: 0,
                probe_at: LONG_AGO,
                last_growth: LONG_AGO,
                fast: true,
                hint: None,
                announced: 0.0,
                fleet_log: None,
                tokens: Tokens::NEW,
            }),
        }
    }

    /// Pace from the start at `per_second` attempts per second (after a
    /// first [`burst`](Self::burst)), instead of sending freely until the
    /// first `429`. The rate then grows with every success until the provider
    /// refuses something, and is measured from there.
    ///
    /// Use about the limit you were given: a herd of callers at start-up is
    /// then spread out instead of being refused. A guess somewhat too high
    /// costs some refusals in the first second; one too low costs time until
    /// growth catches up. A value that is not a positive number, or one of at
    /// least [`max_rate`](Self::max_rate), means unlimited (the default).
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// let limiter = AdaptiveLimiter::new().initial_rate(10.0).burst(1);
    /// assert_eq!(limiter.rate(), Some(10.0));
    /// let first = limiter.acquire_delay();
    /// let second = limiter.acquire_delay();
    /// assert_eq!(first, Duration::ZERO);
    /// assert!(second > Duration::from_millis(90), "{second:?}");
    /// ```
    pub const fn initial_rate(mut self, per_second: f64) -> Self {
        // `per_second < INFINITY` is false for NaN too.
        let pacing = per_second > 0.0 && per_second < f64::INFINITY;
        self.initial_rate = if pacing { per_second } else { f64::INFINITY };
        self.rate = AtomicU64::new(if pacing {
            per_second.to_bits()
        } else {
            UNLIMITED
        });
        if pacing {
            self.window = AtomicU32::new(0);
        }
        self
    }

    /// How many attempts the retry engine lets out at once before the
    /// limiter has learnt anything (no `429`, no announced limit, no
    /// [`initial_rate`](Self::initial_rate)): a herd of callers at start-up
    /// goes out `attempts` at a time, then half as many more for each
    /// answer, as in TCP's slow start, and twice as many for every 250 ms it
    /// stays full (answers that take long do not hold the herd back long:
    /// refusals come fast), so that a provider whose limit is lower refuses
    /// a few of them, not the whole herd, and its first answers (with the
    /// limits they announce) set the pace for the rest. Past 1024 in flight
    /// the window closes. Default 16; `0` turns it off.
    ///
    /// It costs the callers beyond the window up to a few round trips at
    /// start-up; give the limit you know with
    /// [`initial_rate`](Self::initial_rate) instead, which paces from the
    /// start without a window.
    ///
    /// ```
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// static EAGER: AdaptiveLimiter = AdaptiveLimiter::new().initial_window(0);
    /// static CAREFUL: AdaptiveLimiter = AdaptiveLimiter::new().initial_window(4);
    /// # let _ = (&EAGER, &CAREFUL);
    /// ```
    pub const fn initial_window(mut self, attempts: u32) -> Self {
        let window = if attempts > MAX_WINDOW {
            MAX_WINDOW
        } else {
            attempts
        };
        self.window = AtomicU32::new(window * 2);
        self
    }

    /// How many attempts may go at once after an idle spell (and at the
    /// start, with an [`initial_rate`](Self::initial_rate)); after them,
    /// attempts are spaced by the pacing interval. `0` is taken as `1`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// let limiter = AdaptiveLimiter::new().initial_rate(1.0).burst(3);
    /// let delays: Vec<Duration> = (0..4).map(|_| limiter.acquire_delay()).collect();
    /// assert_eq!(delays[..3], [Duration::ZERO; 3]);
    /// assert!(delays[3] > Duration::from_millis(900));
    /// ```
    pub const fn burst(mut self, attempts: u32) -> Self {
        self.burst = attempts;
        self
    }

    /// The slowest the limiter ever paces, in attempts per second. At this
    /// rate a refusal's `Retry-After` holds back the whole fleet. Not a
    /// positive number: the default, 0.1.
    ///
    /// ```
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// let limiter = AdaptiveLimiter::new().initial_rate(0.001).min_rate(1.0);
    /// assert_eq!(limiter.rate(), Some(1.0));
    /// ```
    pub const fn min_rate(mut self, per_second: f64) -> Self {
        self.min_rate = per_second;
        self
    }

    /// The rate, in attempts per second, above which the limiter stops
    /// pacing and is unlimited again until the next `429`. Not a positive
    /// number: the default, 10 000.
    ///
    /// ```
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// // Never stop pacing.
    /// let limiter = AdaptiveLimiter::new().initial_rate(100.0).max_rate(f64::INFINITY);
    /// assert_eq!(limiter.rate(), Some(100.0));
    /// ```
    pub const fn max_rate(mut self, per_second: f64) -> Self {
        self.max_rate = per_second;
        self
    }

    /// The fraction of the measured admitted rate the limiter paces at,
    /// leaving room for the jitter of latencies. Outside `(0, 1]`: the
    /// default, 0.95.
    ///
    /// ```
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new().headroom(0.9);
    /// # let _ = &LIMITER;
    /// ```
    pub const fn headroom(mut self, fraction: f64) -> Self {
        self.headroom = fraction;
        self
    }

    /// How long after the last `429` the limiter holds a measured (or cut)
    /// rate before it probes upward again, in case the provider now admits
    /// more.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new().probe_after(Duration::from_secs(30));
    /// # let _ = &LIMITER;
    /// ```
    pub const fn probe_after(mut self, hold: Duration) -> Self {
        self.probe_after = hold;
        self
    }

    /// Report that an attempt succeeded (the provider admitted it). One
    /// atomic increment, no clock read.
    ///
    /// ```
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// let limiter = AdaptiveLimiter::new();
    /// limiter.on_success();
    /// assert_eq!(limiter.rate(), None);
    /// ```
    #[inline]
    pub fn on_success(&self) {
        if !self.count_unpaced && self.rate.load(Relaxed) == UNLIMITED {
            return;
        }
        self.successes.fetch_add(1, Relaxed);
        if self.window.load(Relaxed) != 0 {
            self.grow_window();
        }
    }

    /// Whether the limiter has nothing to do before an attempt: it does not
    /// pace, has no initial window open and paces no tokens.
    #[inline]
    pub(crate) fn is_idle(&self) -> bool {
        self.rate.load(Relaxed) == UNLIMITED
            && self.window.load(Relaxed) == 0
            && !self.token_pacing.load(Relaxed)
    }

    /// Whether this limiter is in use now: always, but for the limiter
    /// `#[retry]` gives a function that names none, which neither learns nor
    /// paces under [`testing::skip_sleeps`](crate::testing::skip_sleeps), so
    /// that tests sharing a function do not share what it learns.
    pub(crate) fn learns_now(&self) -> bool {
        self.count_unpaced || !crate::testing::skipping()
    }

    /// Count successes only while pacing: while unlimited, a success costs
    /// one atomic load instead of an atomic increment on a shared counter,
    /// and a first `429` starts from a guess that knows nothing of them.
    pub(crate) const fn count_only_when_pacing(mut self) -> Self {
        self.count_unpaced = false;
        self.window = AtomicU32::new(0);
        self
    }

    /// Report that an attempt failed otherwise (a server error, a timeout,
    /// a network failure). Such failures say nothing about the rate the
    /// provider admits, so this does nothing; it exists so that callers can
    /// report every outcome.
    ///
    /// ```
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// let limiter = AdaptiveLimiter::new();
    /// limiter.on_other_failure();
    /// assert_eq!(limiter.rate(), None);
    /// ```
    #[inline]
    pub fn on_other_failure(&self) {}

    /// The rate the limiter paces at, in attempts per second: its estimate of
    /// what the provider admits, less the headroom; `None` while it does not
    /// pace. For metrics.
    ///
    /// ```
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// assert_eq!(AdaptiveLimiter::new().rate(), None);
    /// assert_eq!(AdaptiveLimiter::new().initial_rate(25.0).rate(), Some(25.0));
    /// ```
    pub fn rate(&self) -> Option<f64> {
        let bits = self.rate.load(Relaxed);
        let rate = self.clamp(f64::from_bits(bits));
        // An initial rate above the ceiling does not pace either.
        (bits != UNLIMITED && rate < self.ceiling()).then(|| rate * self.share())
    }

    /// The share of the rate this process paces at (see `share`).
    fn share(&self) -> f64 {
        f64::from_bits(self.share.load(Relaxed))
    }

    /// The interval between send slots at the (fleet's) rate `rate`: this
    /// process paces at its share of it.
    fn pacing_interval(&self, rate: f64) -> f64 {
        schedule::interval(rate * self.share())
    }

    /// How many slots of an idle spell may be due at once beyond the first:
    /// `burst − 1`.
    fn credit(&self) -> f64 {
        f64::from(self.burst.max(1) - 1)
    }

    fn lock(&self) -> MutexGuard<'_, Control> {
        // Nothing panics while holding the lock, but never propagate poison.
        self.control.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn floor(&self) -> f64 {
        if self.min_rate > 0.0 && self.min_rate.is_finite() {
            self.min_rate
        } else {
            DEFAULT_MIN_RATE
        }
    }

    fn ceiling(&self) -> f64 {
        // NaN and non-positive values take the default; infinity stays.
        let ceiling = if self.max_rate > 0.0 {
            self.max_rate
        } else {
            DEFAULT_MAX_RATE
        };
        ceiling.max(self.floor())
    }

    fn margin(&self) -> f64 {
        if self.headroom > 0.0 && self.headroom <= 1.0 {
            self.headroom
        } else {
            DEFAULT_HEADROOM
        }
    }

    /// `rate` within `[floor, ∞)`, NaN taken as the floor.
    fn clamp(&self, rate: f64) -> f64 {
        // `f64::max` returns the other operand for NaN.
        rate.max(self.floor())
    }
}

impl Default for AdaptiveLimiter {
    /// [`AdaptiveLimiter::new`].
    fn default() -> Self {
        AdaptiveLimiter::new()
    }
}

impl core::fmt::Debug for AdaptiveLimiter {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AdaptiveLimiter")
            .field("rate", &self.rate())
            .field("initial_rate", &self.initial_rate)
            .field("burst", &self.burst)
            .field("min_rate", &self.min_rate)
            .field("max_rate", &self.max_rate)
            .field("headroom", &self.headroom)
            .field("probe_after", &self.probe_after)
            .field("successes", &self.successes.load(Relaxed))
            .finish_non_exhaustive()
    }
}

/// Seconds to nanoseconds, saturating (`as` saturates, and maps NaN to 0).
fn secs_to_nanos(secs: f64) -> i64 {
    (secs * NANOS_PER_SEC) as i64
}

fn nanos_to_secs(nanos: i64) -> f64 {
    nanos as f64 / NANOS_PER_SEC
}
