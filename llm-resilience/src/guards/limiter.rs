//! The adaptive client-side rate limiter, [`AdaptiveLimiter`]; its
//! documentation describes the algorithm.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::time::{nanos_i64, since_epoch_ns};

/// The `rate` word of a limiter that does not pace.
const UNLIMITED: u64 = 0;
/// A `next` slot long ago, far enough from `i64::MIN` to subtract from.
const LONG_AGO: i64 = i64::MIN / 4;

const NANOS_PER_SEC: f64 = 1e9;

/// A guess is started at this fraction of itself.
const GUESS_BACKOFF: f64 = 0.7;
/// Each refusal of an episode not yet measured cuts the rate by this factor...
const STEP_BACKOFF: f64 = 0.95;
/// ... down to this fraction of the rate the episode began at.
const DEEPEST_BACKOFF: f64 = 0.5;
/// Once the rate has been measured, a new episode's first refusal cuts it to
/// this fraction (and to at most the headroom times the measurement).
const SOFT_BACKOFF: f64 = 0.9;
/// Growth per second with successes, before the first refusal and after a
/// guess (the exponent's rate: `e^0.3` ≈ +35 % a second).
const FAST_GAIN: f64 = 0.3;
/// Growth per second when probing after a measurement, at first ...
const PROBE_GAIN: f64 = 0.05;
/// ... and its increase per second of probing without a refusal: from a
/// tenth of a limit that came back, the rate finds it again about 3.5 s
/// into probing.
const PROBE_ACCEL: f64 = 0.3;
/// Growth counts at most this long (seconds) between two reservations.
const MAX_GROWTH_STEP: f64 = 1.0;
/// An episode is measured once it lasts this long (seconds) and
/// `MIN_COUNT / rate`.
const MIN_SPAN: f64 = 0.2;
const MIN_COUNT: f64 = 10.0;
/// Refusals further apart than this (seconds) and `GAP_COUNT / rate` start a
/// new episode.
const GAP: f64 = 0.5;
const GAP_COUNT: f64 = 20.0;
/// The first guess counts the successes so far as if they took at most this
/// long (seconds), and at least `MIN_GUESS_COUNT` of them.
const GUESS_SPAN: f64 = 0.1;
const MIN_GUESS_COUNT: f64 = 5.0;
/// The longest the whole fleet is held back by one hint.
const MAX_PAUSE: Duration = Duration::from_secs(60);

const DEFAULT_MIN_RATE: f64 = 0.1;
const DEFAULT_MAX_RATE: f64 = 10_000.0;
const DEFAULT_HEADROOM: f64 = 0.95;
const DEFAULT_BURST: u32 = 1;
const DEFAULT_PROBE_AFTER: Duration = Duration::from_secs(5);
/// Attempts in flight at once before the limiter has seen any answer.
const DEFAULT_WINDOW: u32 = 16;
/// Past this many in flight, the initial window closes: the provider
/// admitted that many at once without a refusal.
const MAX_WINDOW: u32 = 1024;
/// How often an attempt waiting for a place in the initial window asks
/// again.
const WINDOW_POLL: Duration = Duration::from_millis(5);
/// The initial window doubles for each of these it stays full.
const WINDOW_STEP: Duration = Duration::from_millis(250);

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
/// [`http::check`](crate::http::check) calls from every answer) sets the
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
    /// The tokens calls said they cost, against the token limit the
    /// provider announced.
    tokens: Tokens,
}

/// Tokens as a schedule: the provider's bucket has refilled the `t`-th
/// token (counted over all calls so far) at
/// `anchor_t + (t − anchor_tokens) / per_second`, and a call that takes
/// tokens `[t, t + cost)` is due once the last of them is.
#[derive(Debug, Clone, Copy)]
struct Tokens {
    /// The announced limit less the headroom, per second; 0 when none.
    per_second: f64,
    /// How many tokens the provider's bucket holds when full.
    burst: f64,
    /// Tokens taken so far.
    issued: u64,
    anchor_tokens: f64,
    anchor_t: i64,
}

impl Tokens {
    const NEW: Tokens = Tokens {
        per_second: 0.0,
        burst: 0.0,
        issued: 0,
        anchor_tokens: 0.0,
        anchor_t: LONG_AGO,
    };

    /// When the `t`-th token is refilled.
    fn due(&self, t: u64) -> i64 {
        let offset = ((t as f64 - self.anchor_tokens) / self.per_second * NANOS_PER_SEC) as i64;
        self.anchor_t.saturating_add(offset)
    }

    /// After an idle spell the bucket is full again: no more than `burst`
    /// tokens' worth of calls are due at once.
    fn idle_credit(&mut self, now: i64) {
        let earliest = now.saturating_sub((self.burst / self.per_second * NANOS_PER_SEC) as i64);
        if self.due(self.issued) < earliest {
            self.anchor_tokens = self.issued as f64;
            self.anchor_t = earliest;
        }
    }

    /// The provider says `remaining` tokens are left now: calls not yet
    /// due wait for the bucket to refill beyond them.
    fn observe_remaining(&mut self, now: i64, remaining: u64) {
        let earliest =
            now.saturating_sub((remaining as f64 / self.per_second * NANOS_PER_SEC) as i64);
        if self.due(self.issued) < earliest {
            self.anchor_tokens = self.issued as f64;
            self.anchor_t = earliest;
        } else if remaining == 0 {
            // Empty now: nothing more is due before it refills.
            let at = self.due(self.issued).max(now);
            self.anchor_tokens = self.issued as f64;
            self.anchor_t = at;
        }
    }
}

/// The send slots as a numbered queue: slot `n` is due at
/// `anchor_t + (n − anchor_n) × interval`. A caller holds its number, not a
/// time, and asks again when it wakes: when the rate changes, the queue is
/// re-spaced from now, and every waiting caller's turn moves with it, so a
/// limit that comes back is used at once by the callers already waiting.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    /// Slots handed out so far.
    issued: u64,
    /// The (fractional) slot due at `anchor_t`.
    anchor_n: f64,
    anchor_t: i64,
    /// Nanoseconds between slots; 0 until the first paced reservation sets
    /// it from the rate.
    interval: f64,
}

impl Schedule {
    const NEW: Schedule = Schedule {
        issued: 0,
        anchor_n: 0.0,
        anchor_t: LONG_AGO,
        interval: 0.0,
    };

    /// When slot `n` is due.
    fn due(&self, n: u64) -> i64 {
        // `as` saturates.
        let offset = ((n as f64 - self.anchor_n) * self.interval) as i64;
        self.anchor_t.saturating_add(offset)
    }

    /// Space the slots not yet due `interval` apart from `now` on; up to
    /// `credit` slots of an idle spell may stay due at once. A pause (an
    /// anchor in the future) is kept.
    fn respace(&mut self, now: i64, interval: f64, credit: f64) {
        if self.interval > 0.0 && self.anchor_t < now {
            let due_now = self.anchor_n + (now - self.anchor_t) as f64 / self.interval;
            self.anchor_n = due_now.min(self.issued as f64 + credit);
            self.anchor_t = now;
        }
        self.interval = interval;
    }

    /// No slot still to hand out is due before `at`.
    fn not_before(&mut self, at: i64) {
        if self.due(self.issued) < at {
            self.anchor_n = self.issued as f64;
            self.anchor_t = at;
        }
    }
}

/// A run of refusals close together, throughout which the provider's
/// bucket was empty.
#[derive(Debug, Clone, Copy)]
struct Episode {
    /// When its first refusal was reported.
    began: i64,
    /// The successes reported by then.
    successes: u64,
    /// The rate paced at when it began, before its first cut.
    rate: f64,
    /// Whether it began while the limiter did not pace: its refusals are of
    /// requests sent before the guess, and say nothing about it.
    unpaced: bool,
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

    /// Reserve the caller's send slot and return how long to wait for it:
    /// call it right before every attempt, sleep that long, then send.
    /// Every call reserves a slot of its own, so callers that arrive
    /// together leave at different times.
    ///
    /// While unlimited this is one atomic load, with no clock read.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// let limiter = AdaptiveLimiter::new().initial_rate(20.0).burst(1);
    /// let delays: Vec<Duration> = (0..3).map(|_| limiter.acquire_delay()).collect();
    /// assert!(delays[0] < delays[1] && delays[1] < delays[2], "{delays:?}");
    /// ```
    #[inline]
    pub fn acquire_delay(&self) -> Duration {
        if self.rate.load(Relaxed) == UNLIMITED {
            return Duration::ZERO;
        }
        self.reserve(i64::MAX, 0)
            .map_or(Duration::MAX, |(delay, _)| delay)
    }

    /// Reserve the next send slot only if it comes sooner than `within` from
    /// now: `Ok(delay)` with how long to wait for it, as
    /// [`acquire_delay`](Self::acquire_delay) returns, or `Err(delay)` with
    /// how long the next free slot is away, in which case nothing is
    /// reserved and the slot stays free for other callers. The retry engine
    /// calls it with the time left before a call's deadline, so that a call
    /// never waits for a slot it could not use.
    ///
    /// While unlimited this is one atomic load, with no clock read.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// let limiter = AdaptiveLimiter::new().initial_rate(1.0); // a slot a second
    /// assert_eq!(limiter.try_acquire_within(Duration::from_secs(5)), Ok(Duration::ZERO));
    /// // The next slot is about a second away: too late for a 100 ms budget ...
    /// let refused = limiter.try_acquire_within(Duration::from_millis(100)).unwrap_err();
    /// assert!(refused > Duration::from_millis(900), "{refused:?}");
    /// // ... and still free for a caller that can wait for it.
    /// let delay = limiter.try_acquire_within(Duration::from_secs(5)).unwrap();
    /// assert!(delay > Duration::from_millis(900) && delay <= Duration::from_secs(1), "{delay:?}");
    /// ```
    #[inline]
    pub fn try_acquire_within(&self, within: Duration) -> Result<Duration, Duration> {
        self.reserve_within(within).map(|(delay, _)| delay)
    }

    /// [`try_acquire_within`](Self::try_acquire_within), with the slot
    /// taken, for [`give_back`](Self::give_back).
    #[inline]
    pub(crate) fn reserve_within(&self, within: Duration) -> Result<(Duration, Slot), Duration> {
        if self.rate.load(Relaxed) == UNLIMITED || !self.learns_now() {
            return Ok((Duration::ZERO, Slot::NONE));
        }
        self.reserve(nanos_i64(within), 0)
    }

    /// Give back a slot its caller will not use (it was dropped while it
    /// waited, or refused after): if no later slot was handed out since,
    /// the next caller gets it instead of waiting an interval more. A slot
    /// with later ones behind it stays a gap in the schedule.
    #[cold]
    pub(crate) fn give_back(&self, slot: Slot) {
        match slot {
            Slot::Queued(n, tokens) => {
                let mut control = self.lock();
                if let Some(n) = n {
                    if control.schedule.issued == n + 1 {
                        control.schedule.issued = n;
                    }
                }
                if let Some((start, cost)) = tokens {
                    if control.tokens.issued == start.saturating_add(cost) {
                        control.tokens.issued = start;
                    }
                }
            }
            Slot::Window(cost) => self.leave_window(cost),
            Slot::Free | Slot::WindowFull(_) => {}
        }
    }

    /// How long until `slot` is due, as the schedule stands now (it moves
    /// when the rate changes): zero once it is, or when the limiter no
    /// longer paces.
    pub(crate) fn wait_for(&self, slot: &mut Slot) -> Duration {
        match *slot {
            Slot::Free | Slot::Window(_) => Duration::ZERO,
            Slot::WindowFull(cost) => {
                if self.rate.load(Relaxed) != UNLIMITED
                    || cost > 0 && self.token_pacing.load(Relaxed)
                {
                    // Pacing began meanwhile: a place in the schedule.
                    return match self.reserve(i64::MAX, cost) {
                        Ok((wait, queued)) => {
                            *slot = queued;
                            wait
                        }
                        Err(wait) => wait,
                    };
                }
                let (wait, place) = self.enter_window(cost);
                *slot = place;
                wait
            }
            Slot::Queued(n, tokens) => {
                let now = since_epoch_ns();
                let mut control = self.lock();
                // The rate moves for the callers already waiting too: a hint
                // past its reset ends, and growth re-spaces their slots.
                self.grow(&mut control, now);
                let mut due = now;
                if let Some(n) = n {
                    if self.rate.load(Relaxed) != UNLIMITED {
                        due = due.max(control.schedule.due(n));
                    }
                }
                if let Some((start, cost)) = tokens {
                    if control.tokens.per_second > 0.0 {
                        due = due.max(control.tokens.due(start.saturating_add(cost)));
                    }
                }
                Duration::from_nanos(u64::try_from(due.saturating_sub(now)).unwrap_or(0))
            }
        }
    }

    /// The retry engine's [`try_acquire_within`](Self::try_acquire_within):
    /// before the limiter has learnt anything, also a place in the initial
    /// window ([`initial_window`](Self::initial_window)), or how long to
    /// wait before asking again.
    #[inline]
    pub(crate) fn admit_within(
        &self,
        within: Duration,
        cost: u64,
    ) -> Result<(Duration, Slot), Duration> {
        if cost > 0 && self.token_pacing.load(Relaxed) && self.learns_now() {
            return self.reserve(nanos_i64(within), cost);
        }
        if self.rate.load(Relaxed) == UNLIMITED && self.window.load(Relaxed) != 0 {
            let (wait, slot) = self.enter_window(cost);
            if matches!(slot, Slot::WindowFull(_)) && wait >= within {
                // The window is full, and the deadline comes before it is
                // asked again.
                return Err(wait);
            }
            return Ok((wait, slot));
        }
        self.reserve_within(within)
    }

    /// A place in the initial window, if one is free: no wait; else the
    /// time to ask again.
    #[cold]
    fn enter_window(&self, cost: u64) -> (Duration, Slot) {
        let window = self.window.load(Relaxed) / 2;
        if window == 0 || self.rate.load(Relaxed) != UNLIMITED {
            return (Duration::ZERO, Slot::Free);
        }
        if self.in_flight.fetch_add(1, Relaxed) < window {
            self.window_tokens.fetch_add(cost, Relaxed);
            return (Duration::ZERO, Slot::Window(cost));
        }
        self.in_flight.fetch_sub(1, Relaxed);
        // Slow answers grow the window slowly: it also doubles for every
        // `WINDOW_STEP` it stays full without a refusal (refusals come fast,
        // long answers do not).
        let now = since_epoch_ns();
        let since = self.window_full_since.load(Relaxed);
        if since == LONG_AGO {
            let _ = self
                .window_full_since
                .compare_exchange(LONG_AGO, now, Relaxed, Relaxed);
        } else if now.saturating_sub(since) >= nanos_i64(WINDOW_STEP)
            && self
                .window_full_since
                .compare_exchange(since, now, Relaxed, Relaxed)
                .is_ok()
        {
            let doubled = self.window.load(Relaxed).saturating_mul(2);
            if doubled / 2 >= MAX_WINDOW {
                self.close_window();
            } else {
                self.window.fetch_max(doubled, Relaxed);
            }
        }
        (WINDOW_POLL, Slot::WindowFull(cost))
    }

    /// An attempt that held a place in the initial window ended.
    pub(crate) fn leave_window(&self, cost: u64) {
        self.in_flight.fetch_sub(1, Relaxed);
        self.window_tokens.fetch_sub(cost, Relaxed);
    }

    /// The initial window is over: the limiter paces, or has let enough
    /// through to know it needs none.
    fn close_window(&self) {
        self.window.store(0, Relaxed);
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

    /// A success in the initial window: half a place more (the window grows
    /// by half each round of answers), closed past [`MAX_WINDOW`].
    #[cold]
    fn grow_window(&self) {
        if self.window.fetch_add(1, Relaxed) / 2 >= MAX_WINDOW {
            self.close_window();
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

    /// Report that an attempt was refused with `429` (an error of kind
    /// [`RateLimit`](crate::ErrorKind::RateLimit)), with the `Retry-After` it
    /// carried, if any. Starts pacing if the limiter was unlimited, and
    /// measures or cuts the rate as the [type's documentation](AdaptiveLimiter#how-it-works)
    /// describes.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// let limiter = AdaptiveLimiter::new();
    /// for _ in 0..20 {
    ///     limiter.on_success();
    /// }
    /// limiter.on_rate_limited(Some(Duration::from_secs(1)));
    /// assert!(limiter.rate().is_some());
    /// ```
    pub fn on_rate_limited(&self, retry_after: Option<Duration>) {
        let now = since_epoch_ns();
        let successes = self.successes.load(Relaxed);
        let mut control = self.lock();
        self.refused(&mut control, now, successes, retry_after);
        // Whatever happened to the rate, the provider's bucket is empty now:
        // no burst of slots right after a refusal.
        self.drain(&mut control, now);
    }

    /// [`on_rate_limited`](Self::on_rate_limited) for the retry engine, which
    /// knows whether the refused attempt waited for a slot: one sent while
    /// the limiter did not pace yet (the herd that went before anything was
    /// known) says nothing about the rate it paces at now, so it does not
    /// cut it.
    pub(crate) fn rate_limited(&self, retry_after: Option<Duration>, paced: bool) {
        if paced || self.rate.load(Relaxed) == UNLIMITED {
            return self.on_rate_limited(retry_after);
        }
        let now = since_epoch_ns();
        self.drain(&mut self.lock(), now);
    }

    /// The bookkeeping of [`on_rate_limited`](Self::on_rate_limited).
    fn refused(
        &self,
        control: &mut Control,
        now: i64,
        successes: u64,
        retry_after: Option<Duration>,
    ) {
        let previous = control.last_refusal.replace(now);
        // What the provider says by refusing outweighs an earlier hint.
        control.hint = None;
        let bits = self.rate.load(Relaxed);
        if bits == UNLIMITED {
            let guess = self.guess(control, now, successes) * GUESS_BACKOFF;
            control.episode = Some(Episode {
                began: now,
                successes,
                rate: guess,
                unpaced: true,
            });
            self.set_rate(control, guess, now, successes, true);
            return;
        }
        let rate = self.clamp(f64::from_bits(bits));
        let gap = secs_to_nanos(GAP.max(GAP_COUNT / rate));
        let episode = match (control.episode, previous) {
            (Some(episode), Some(previous)) if now.saturating_sub(previous) <= gap => episode,
            _ => {
                // A new episode: cut now, measure if it goes on.
                control.episode = Some(Episode {
                    began: now,
                    successes,
                    rate,
                    unpaced: false,
                });
                // A measurement the rate has since grown past without a
                // refusal is stale: the provider admitted more than it said.
                let cut = if control.measured > 0.0 && control.measured >= rate {
                    (rate * SOFT_BACKOFF).min(control.measured * self.margin())
                } else if control.measured > 0.0 {
                    rate * SOFT_BACKOFF
                } else {
                    rate * STEP_BACKOFF
                };
                self.set_rate(control, cut, now, successes, false);
                self.pause_at_floor(control, cut, now, retry_after);
                return;
            }
        };
        let span = nanos_to_secs(now.saturating_sub(episode.began));
        if span >= MIN_SPAN.max(MIN_COUNT / rate) {
            let admitted = successes.saturating_sub(episode.successes) as f64 / span;
            if admitted > 0.0 {
                control.measured = admitted;
                let paced = admitted * self.margin();
                self.set_rate(control, paced, now, successes, false);
                self.pause_at_floor(control, paced, now, retry_after);
            } else if let Some(wait) = retry_after {
                // Nothing admitted for the whole episode: a closed window.
                // The fleet waits for it to open, at the rate it had.
                self.pause(control, now, wait);
            }
        } else if episode.unpaced {
            // Refusals of the unpaced burst that made the guess are still
            // coming in, and so are its successes: the guess can only rise.
            let guess = self.guess(control, now, successes) * GUESS_BACKOFF;
            if guess > rate {
                self.set_rate(control, guess, now, successes, true);
            }
        } else {
            // Too early to measure: every refusal is more evidence that the
            // rate is too high.
            let cut = (rate * STEP_BACKOFF).max(episode.rate * DEEPEST_BACKOFF);
            let fast = control.fast;
            self.set_rate(control, cut, now, successes, fast);
            self.pause_at_floor(control, cut, now, retry_after);
        }
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

    /// Report a provider's remaining budget, read from the headers of any
    /// response (a success included): `remaining` requests until the window
    /// resets in `reset` (OpenAI's `x-ratelimit-remaining-requests` and
    /// `x-ratelimit-reset-requests`, Anthropic's
    /// `anthropic-ratelimit-requests-remaining` and `-reset`).
    ///
    /// When the budget would run out before the reset at the current pace,
    /// the limiter paces at `remaining / reset` (and grows from there as
    /// successes come in); with nothing remaining, every caller waits for the
    /// reset (at most 60 s). A budget that lasts leaves the limiter as it is.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// let limiter = AdaptiveLimiter::new();
    /// limiter.observe_remaining(4_999, Duration::from_millis(12));
    /// assert_eq!(limiter.rate(), None);
    /// limiter.observe_remaining(30, Duration::from_secs(3));
    /// assert_eq!(limiter.rate(), Some(10.0));
    /// ```
    pub fn observe_remaining(&self, remaining: u64, reset: Duration) {
        if reset.is_zero() {
            // The window resets now: nothing to hold back for.
            return;
        }
        let now = since_epoch_ns();
        let successes = self.successes.load(Relaxed);
        let mut control = self.lock();
        let control = &mut *control;
        let bits = self.rate.load(Relaxed);
        let until = now.saturating_add(nanos_i64(reset));
        // The hint holds until its reset; then the rate from before it comes
        // back (see `grow`).
        let before = control.hint.map_or(bits, |(_, before)| before);
        if remaining == 0 {
            if bits == UNLIMITED {
                let guess = self.guess(control, now, successes) * GUESS_BACKOFF;
                self.set_rate(control, guess, now, successes, true);
                control.hint = Some((until, before));
            }
            // With a limit announced, the next request is admitted one
            // interval after the bucket ran dry, whatever the full reset.
            let wait = if control.announced > 0.0 {
                reset.min(Duration::from_secs_f64(1.0 / control.announced))
            } else {
                reset
            };
            self.pause(control, now, wait);
            return;
        }
        if control.announced > 0.0 {
            // With a limit announced, the provider's bucket refills at that
            // rate until its reset: what remains is the burst on top of it,
            // not the whole budget.
            return;
        }
        let budget = remaining as f64 / reset.as_secs_f64();
        let current = if bits == UNLIMITED {
            self.ceiling()
        } else {
            f64::from_bits(bits)
        };
        if budget < current {
            self.set_rate(control, budget, now, successes, true);
            control.hint = Some((until, before));
        }
    }

    /// Tell the limiter the limit the provider announces, in requests per
    /// minute: OpenAI's `x-ratelimit-limit-requests`, Anthropic's
    /// `anthropic-ratelimit-requests-limit`. The limiter then paces at that
    /// rate less its [`headroom`](Self::headroom) at most, from now on
    /// (also when it did not pace yet), and never grows past it; a new limit
    /// sets the pace anew, up or down. A limit of 0 is ignored.
    ///
    /// [`http::check`](crate::http::check) and
    /// [`http::observe`](crate::http::observe) call it for you, with
    /// [`observe_remaining`](Self::observe_remaining), from every response
    /// of a call that names this limiter.
    ///
    /// ```
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// let limiter = AdaptiveLimiter::new();
    /// limiter.observe_limit(6_000); // 100 a second
    /// assert_eq!(limiter.rate(), Some(95.0)); // less the default 5 % headroom
    /// ```
    pub fn observe_limit(&self, per_minute: u64) {
        if per_minute == 0 {
            return;
        }
        let announced = per_minute as f64 / 60.0;
        let now = since_epoch_ns();
        let successes = self.successes.load(Relaxed);
        let mut control = self.lock();
        let control = &mut *control;
        let changed = control.announced != announced;
        control.announced = announced;
        let target = announced * self.margin();
        let bits = self.rate.load(Relaxed);
        if bits == UNLIMITED || f64::from_bits(bits) > target || changed {
            // Pace at the announced rate; growth after a cut stops there.
            self.set_rate(control, target, now, successes, true);
        }
    }

    /// Tell the limiter the token limit the provider announces, in tokens
    /// per minute (OpenAI's `x-ratelimit-limit-tokens`, Anthropic's
    /// `anthropic-ratelimit-input-tokens-limit`), and what is left of it
    /// now, if known. From then on, a call that states what it costs
    /// (`#[retry(cost = ...)]`, [`Hooks::cost`](crate::Hooks::cost)) waits
    /// until the provider's token bucket, refilling at that limit less the
    /// [`headroom`](Self::headroom), holds its tokens: a large prompt waits
    /// its turn instead of being refused while requests remain. Calls that
    /// state no cost are paced on requests alone. A limit of 0 is ignored.
    ///
    /// [`http::check`](crate::http::check) calls it for you from every
    /// answer of a call that runs under this limiter.
    ///
    /// ```
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// let limiter = AdaptiveLimiter::new();
    /// limiter.observe_token_limit(600_000, Some(0)); // 10 000 a second, none left
    /// ```
    pub fn observe_token_limit(&self, per_minute: u64, remaining: Option<u64>) {
        if per_minute == 0 {
            return;
        }
        let now = since_epoch_ns();
        let mut control = self.lock();
        let tokens = &mut control.tokens;
        let per_second = per_minute as f64 / 60.0 * self.margin();
        if tokens.per_second == 0.0 {
            // The attempts let out before the limit was known are on their
            // way, and their tokens with them.
            tokens.issued = tokens
                .issued
                .saturating_add(self.window_tokens.load(Relaxed));
        }
        tokens.per_second = per_second;
        // The bucket holds a minute's worth, as providers' per-minute limits
        // do; until told what is left, it is full. (A `remaining` above the
        // limit is not believed.)
        let remaining = remaining.map(|left| left.min(per_minute));
        tokens.burst = per_minute as f64;
        tokens.idle_credit(now);
        if let Some(remaining) = remaining {
            tokens.observe_remaining(now, remaining);
        }
        self.token_pacing.store(true, Relaxed);
    }

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
        (bits != UNLIMITED && rate < self.ceiling()).then_some(rate)
    }

    /// The paced path of [`acquire_delay`](Self::acquire_delay) and
    /// [`try_acquire_within`](Self::try_acquire_within): take the next slot
    /// if it is due less than `within` nanoseconds from now (`i64::MAX`: any
    /// slot), else `Err` with how far away it is, taking nothing.
    #[inline(never)]
    fn reserve(&self, within: i64, cost: u64) -> Result<(Duration, Slot), Duration> {
        let now = since_epoch_ns();
        let mut control = self.lock();
        let control = &mut *control;
        let rate = self.grow(control, now);
        let credit = self.credit();
        let schedule = &mut control.schedule;
        // The request schedule's next slot, when requests are paced.
        let n = rate.map(|rate| {
            if schedule.interval == 0.0 {
                // The first paced reservation (of an `initial_rate`).
                schedule.interval = interval(rate);
            }
            // After an idle spell, up to `burst` slots are due at once.
            let earliest = now.saturating_sub((credit * schedule.interval) as i64);
            let n = schedule.issued;
            if schedule.due(n) < earliest {
                schedule.anchor_n = n as f64;
                schedule.anchor_t = earliest;
            }
            n
        });
        let mut due = n.map_or(now, |n| schedule.due(n));
        // The token schedule's, when the caller states a cost and the
        // provider announced a token limit.
        let tokens = &mut control.tokens;
        // A call costing more than the bucket holds waits for a full bucket,
        // no longer: whether it is too large is the provider's to say.
        let cost = cost.min(tokens.burst as u64);
        let start = (cost > 0 && tokens.per_second > 0.0).then(|| {
            tokens.idle_credit(now);
            tokens.issued
        });
        if let Some(start) = start {
            // Due once the provider's bucket has refilled all its tokens.
            due = due.max(tokens.due(start.saturating_add(cost)));
        }
        if n.is_none() && start.is_none() {
            return Ok((Duration::ZERO, Slot::NONE));
        }
        let ahead = due.saturating_sub(now);
        let wait = Duration::from_nanos(u64::try_from(ahead).unwrap_or(0));
        if within != i64::MAX && ahead >= within {
            return Err(wait);
        }
        if let Some(n) = n {
            control.schedule.issued = n + 1;
        }
        if let Some(start) = start {
            control.tokens.issued = start.saturating_add(cost);
        }
        Ok((wait, Slot::Queued(n, start.map(|start| (start, cost)))))
    }

    /// The rate to pace at now: a hint past its reset ends, and the rate
    /// grows with the time that successes kept coming. `None` once the
    /// limiter does not pace (past its ceiling, or a hint that began it has
    /// ended).
    ///
    /// Growth is clocked by time with successes, not by their number: a
    /// crowd of waiting callers does not slow it down. Fast growth (before
    /// the first refusal, after a guess) multiplies the rate by
    /// `e^(FAST_GAIN × t)`; probing, after a hold of `probe_after` since a
    /// cut or a measurement, starts gently and speeds up the longer nothing
    /// is refused, `e^(PROBE_GAIN × t + PROBE_ACCEL × t² / 2)`: a limit found
    /// again soon costs few refusals, one that came back is found within
    /// seconds.
    fn grow(&self, control: &mut Control, now: i64) -> Option<f64> {
        if let Some((until, before)) = control.hint {
            if now >= until {
                control.hint = None;
                let bits = self.rate.load(Relaxed);
                if before == UNLIMITED {
                    self.go_unlimited(control, now);
                } else if bits != UNLIMITED && f64::from_bits(before) > f64::from_bits(bits) {
                    let successes = self.successes.load(Relaxed);
                    self.set_rate(
                        control,
                        f64::from_bits(before),
                        now,
                        successes,
                        control.fast,
                    );
                }
            }
        }
        let bits = self.rate.load(Relaxed);
        if bits == UNLIMITED {
            return None;
        }
        let rate = self.clamp(f64::from_bits(bits));
        if rate >= self.ceiling() {
            // An initial rate above the ceiling.
            self.go_unlimited(control, now);
            return None;
        }
        let successes = self.successes.load(Relaxed);
        if successes == control.grown {
            // No success since the last growth: time without them does not
            // count (an idle limiter does not drift up; a success after a
            // long idle spell grows it by one step at most).
            return Some(rate);
        }
        control.grown = successes;
        let since = control.last_growth.max(control.probe_at);
        control.last_growth = now;
        if now <= since {
            return Some(rate);
        }
        let dt = nanos_to_secs(now - since).min(MAX_GROWTH_STEP);
        let exponent = if control.fast {
            FAST_GAIN * dt
        } else {
            let probing = nanos_to_secs(now - control.probe_at);
            let before = (probing - dt).max(0.0);
            PROBE_GAIN * dt + PROBE_ACCEL * (probing * probing - before * before) / 2.0
        };
        let mut grown = (rate * exponent.exp()).min(f64::MAX);
        if control.announced > 0.0 {
            // Never above what the provider says it admits.
            grown = grown.min(control.announced * self.margin()).max(rate);
        }
        if grown >= self.ceiling() {
            self.go_unlimited(control, now);
            return None;
        }
        self.rate.store(grown.to_bits(), Relaxed);
        control
            .schedule
            .respace(now, interval(grown), self.credit());
        Some(grown)
    }

    /// Stop pacing, remembering when, for the next guess.
    fn go_unlimited(&self, control: &mut Control, now: i64) {
        self.rate.store(UNLIMITED, Relaxed);
        control.schedule.interval = 0.0;
        self.unlimited_at.store(now, Relaxed);
        self.unlimited_successes
            .store(self.successes.load(Relaxed), Relaxed);
    }

    /// Pace at `rate` from `now`: grow fast from there (`fast`), or hold it
    /// for `probe_after` and then probe. The slots not yet due are re-spaced
    /// at the new rate.
    fn set_rate(&self, control: &mut Control, rate: f64, now: i64, successes: u64, fast: bool) {
        self.close_window();
        let rate = self.clamp(rate).min(self.ceiling());
        self.rate.store(rate.to_bits(), Relaxed);
        control.schedule.respace(now, interval(rate), self.credit());
        control.grown = successes;
        control.fast = fast;
        let hold = if fast { 0 } else { nanos_i64(self.probe_after) };
        control.probe_at = now.saturating_add(hold);
        control.last_growth = now;
    }

    /// The rate to start pacing at when a limiter that did not pace learns
    /// it should: the last measurement, else the successes since it became
    /// unlimited as if they took at most [`GUESS_SPAN`]. Biased high: a rate
    /// too high is soon measured, one too low only slowly outgrown.
    fn guess(&self, control: &Control, now: i64, successes: u64) -> f64 {
        if control.measured > 0.0 {
            return control.measured;
        }
        let since = self.unlimited_at.load(Relaxed);
        let counted = successes.saturating_sub(self.unlimited_successes.load(Relaxed)) as f64;
        let span = if since == LONG_AGO {
            GUESS_SPAN
        } else {
            nanos_to_secs(now.saturating_sub(since)).max(GUESS_SPAN)
        };
        counted.max(MIN_GUESS_COUNT) / span
    }

    /// Take away the burst credit of an idle spell: no slot still to hand
    /// out is due before `now`.
    fn drain(&self, control: &mut Control, now: i64) {
        if self.rate.load(Relaxed) != UNLIMITED {
            control.schedule.not_before(now);
        }
    }

    /// How many slots of an idle spell may be due at once beyond the first:
    /// `burst − 1`.
    fn credit(&self) -> f64 {
        f64::from(self.burst.max(1) - 1)
    }

    /// Hold the fleet back for `retry_after` if the rate cannot go lower.
    fn pause_at_floor(
        &self,
        control: &mut Control,
        rate: f64,
        now: i64,
        retry_after: Option<Duration>,
    ) {
        if let Some(wait) = retry_after {
            if rate <= self.floor() {
                self.pause(control, now, wait);
            }
        }
    }

    /// No slot before `now + wait` (at most [`MAX_PAUSE`]).
    fn pause(&self, control: &mut Control, now: i64, wait: Duration) {
        let until = now.saturating_add(nanos_i64(wait.min(MAX_PAUSE)));
        control.schedule.not_before(until);
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

/// What an attempt holds of a limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Nothing: the limiter does not pace.
    Free,
    /// Its number in the schedule (none when only tokens are paced), and
    /// the tokens it took: where in the token schedule they start, and how
    /// many.
    Queued(Option<u64>, Option<(u64, u64)>),
    /// A place in the initial window, given back when the attempt ends,
    /// with the tokens the call said it costs.
    Window(u64),
    /// Waiting for a place in the initial window, for a call that costs
    /// these tokens.
    WindowFull(u64),
}

impl Slot {
    /// No slot: the limiter did not pace.
    pub(crate) const NONE: Slot = Slot::Free;
}

/// The pacing interval at `rate`, in nanoseconds (at least 1).
fn interval(rate: f64) -> f64 {
    (NANOS_PER_SEC / rate).max(1.0)
}

/// Seconds to nanoseconds, saturating (`as` saturates, and maps NaN to 0).
fn secs_to_nanos(secs: f64) -> i64 {
    (secs * NANOS_PER_SEC) as i64
}

fn nanos_to_secs(nanos: i64) -> f64 {
    nanos as f64 / NANOS_PER_SEC
}

#[cfg(test)]
mod window_tests {
    use super::*;

    #[test]
    fn the_initial_window_closes_after_enough_successes() {
        let limiter = AdaptiveLimiter::new();
        for _ in 0..5_000 {
            let (_, slot) = limiter.admit_within(Duration::MAX, 0).unwrap();
            if let Slot::Window(cost) = slot {
                limiter.leave_window(cost);
            }
            limiter.on_success();
        }
        assert!(limiter.is_idle(), "window {}", limiter.window.load(Relaxed));
    }
}
