//! Retry budgets: a cap on retries, as a share of recent calls, shared by
//! every call to a provider.

use core::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use crate::guards::window::{ppm, Span, Window, HI, LO};
use crate::sync::{AtomicU64, Ordering};
use crate::time::now_ns;

/// A cap on retries shared by many calls: retries are allowed while those
/// made over a recent window stay within a share of the calls made over it,
/// plus a small allowance per second so that callers with little traffic can
/// still retry.
///
/// When a provider goes down, every caller retrying each failed call several
/// times multiplies the load on it just as it struggles. A budget bounds that:
/// over any window, the retries let through are at most
///
/// > `ratio` × calls in the window + `min_retries_per_second` × `window`
///
/// This is the retry budget of the Google SRE book (10%), of Finagle and of
/// gRPC's retry throttling. Retries are not calls: call
/// [`record_call`](Self::record_call) once per logical call (not once per
/// attempt), so that retries never earn further retries and the extra load
/// stays at `ratio`, not `ratio / (1 - ratio)`.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`ratio`](Self::ratio) | 0.1 | retries allowed per call in the window |
/// | [`min_retries_per_second`](Self::min_retries_per_second) | 10 | retries allowed per second of the window whatever the traffic |
/// | [`window`](Self::window) | 10 s | how far back calls and retries count, in 10 buckets |
///
/// With the defaults, a caller with no traffic at all may make 100 retries
/// per 10 s, all at once if it likes; one with 1000 calls in the last 10 s,
/// 200.
///
/// Recording a call is one atomic add (plus one load), with no clock reading,
/// allocation or lock. [`try_retry`](Self::try_retry) reads the clock: calls
/// recorded since it was last read are spread evenly over the time since, and
/// retries land in the current bucket. The window moves on a tenth at a
/// time: calls count over the last nine to ten tenths of it, and retries over
/// the last ten to eleven, so that a retry leaves the count only once a whole
/// window has passed since it, and the limit holds over every stretch of the
/// window's length, however it lines up with the tenths. Time is the same
/// clock as
/// [`CircuitBreaker`](crate::CircuitBreaker)'s: tokio's, when the `tokio`
/// feature is on, moved on by
/// [`testing::skip_sleeps`](crate::testing::skip_sleeps).
///
/// Counts are exact under any number of threads, and no more retries are let
/// through than the formula allows for the counts it sees (rounded down: with
/// a ratio of 0.1 and no minimum, 19 calls allow one retry, 20 allow two).
///
/// For a budget per provider, model or tenant with bounded memory, see
/// [`KeyedBudgets`].
///
/// ```
/// use llm_resilience::RetryBudget;
///
/// static BUDGET: RetryBudget = RetryBudget::new().ratio(0.1).min_retries_per_second(0);
///
/// for _ in 0..100 {
///     BUDGET.record_call();
/// }
/// let allowed = (0..50).filter(|_| BUDGET.try_retry()).count();
/// assert_eq!(allowed, 10);
/// assert_eq!(BUDGET.available(), 0);
/// ```
pub struct RetryBudget {
    /// Calls (high) and retries (low).
    window: Window,
    /// The most retries the window may hold, as a fleet of processes that
    /// share this budget through Redis set it (`shared::SharedBudget`), in
    /// place of the formula; [`NO_FLEET`] when none.
    fleet_cap: AtomicU64,
    config: Config,
}

/// The `fleet_cap` of a budget that is not shared.
const NO_FLEET: u64 = u64::MAX;

#[derive(Clone, Copy)]
struct Config {
    /// Retries per call, in millionths.
    ratio_ppm: u64,
    min_per_second: u32,
    span: Span,
}

impl fmt::Debug for Config {
    // As derived from the fields the span holds, which `KeyedBudgets` shows.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("ratio_ppm", &self.ratio_ppm)
            .field("min_per_second", &self.min_per_second)
            .field("window_ns", &self.span.window_ns)
            .field("bucket_ns", &self.span.bucket_ns)
            .finish()
    }
}

impl RetryBudget {
    crate::sync::const_fn! {
        /// A budget with the default settings: 10% of calls, plus 10 retries a
        /// second, over 10 s (see the table in the [type docs](Self)). `const`,
        /// so it can be a `static`.
        ///
        /// ```
        /// use llm_resilience::RetryBudget;
        ///
        /// static BUDGET: RetryBudget = RetryBudget::new();
        /// assert_eq!(BUDGET.available(), 100); // 10 a second, over 10 s
        /// ```
        pub const fn new() -> Self {
            RetryBudget {
                window: Window::new(),
                fleet_cap: AtomicU64::new(NO_FLEET),
                config: Config {
                    ratio_ppm: 100_000,
                    min_per_second: 10,
                    span: Span::new(Duration::from_secs(10)),
                },
            }
        }
    }

    /// Retries allowed per call in the window. Default 0.1. NaN and negative
    /// ratios are 0: only [`min_retries_per_second`](Self::min_retries_per_second)
    /// is allowed.
    ///
    /// ```
    /// use llm_resilience::RetryBudget;
    ///
    /// let budget = RetryBudget::new().ratio(0.2).min_retries_per_second(0);
    /// for _ in 0..10 {
    ///     budget.record_call();
    /// }
    /// assert_eq!(budget.available(), 2);
    /// ```
    pub const fn ratio(mut self, r: f64) -> Self {
        self.config.ratio_ppm = ppm(r);
        self
    }

    /// Retries allowed per second of the window whatever the traffic, so
    /// that a caller with few calls can still retry. Default 10. They are
    /// allowed per window: `n` × `window` of them, at any time within it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::RetryBudget;
    ///
    /// let budget = RetryBudget::new().min_retries_per_second(1).window(Duration::from_secs(5));
    /// assert_eq!(budget.available(), 5);
    /// ```
    pub const fn min_retries_per_second(mut self, n: u32) -> Self {
        self.config.min_per_second = n;
        self
    }

    /// How far back calls and retries count. Default 10 s. The window moves
    /// on in ten steps (buckets) of a tenth of it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::RetryBudget;
    ///
    /// static BUDGET: RetryBudget = RetryBudget::new().window(Duration::from_secs(60));
    /// assert_eq!(BUDGET.available(), 600);
    /// ```
    pub const fn window(mut self, d: Duration) -> Self {
        self.config.span = Span::new(d);
        self
    }

    /// Note that one logical call was made (once per call, however many
    /// attempts it takes). One atomic add: no clock reading, no lock.
    ///
    /// ```
    /// use llm_resilience::RetryBudget;
    ///
    /// let budget = RetryBudget::new().min_retries_per_second(0);
    /// assert_eq!(budget.available(), 0);
    /// for _ in 0..10 {
    ///     budget.record_call();
    /// }
    /// assert_eq!(budget.available(), 1);
    /// ```
    #[inline]
    pub fn record_call(&self) {
        self.window.add(HI, self.config.span.bucket_ns);
    }

    /// Whether a call may retry once more. If so, the retry is counted
    /// against the budget at once: ask only when about to retry.
    ///
    /// Allowed while the retries in the window, this one included, are at
    /// most `ratio` × the calls in the window + `min_retries_per_second` ×
    /// the window's length in seconds. The check and the withdrawal are one
    /// atomic step, so many threads asking at once never overdraw the budget.
    ///
    /// ```
    /// use llm_resilience::RetryBudget;
    ///
    /// let budget = RetryBudget::new().ratio(0.5).min_retries_per_second(0);
    /// budget.record_call();
    /// budget.record_call();
    /// assert!(budget.try_retry());
    /// assert!(!budget.try_retry());
    /// ```
    pub fn try_retry(&self) -> bool {
        let bucket = self.window.advance(now_ns(), self.config.span.bucket_ns);
        let bounds = self.window.bounds(bucket);
        let totals = self.window.totals();
        let mut before = totals.load(Ordering::Acquire);
        loop {
            let (calls, retries) = bounds.counts_wide_low(before);
            if self.allowance(calls, retries) == 0 {
                return false;
            }
            let after = before.wrapping_add(LO);
            match totals.compare_exchange_weak(before, after, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    // The retry is in the current bucket: not spread over
                    // the buckets the next reading of the clock finds.
                    self.window.stamped(after);
                    return true;
                }
                Err(actual) => before = actual,
            }
        }
    }

    /// How many retries would be allowed now, for metrics and tests.
    ///
    /// ```
    /// use llm_resilience::RetryBudget;
    ///
    /// let budget = RetryBudget::new(); // 10 a second over 10 s, plus 10%
    /// for _ in 0..100 {
    ///     budget.record_call();
    /// }
    /// assert_eq!(budget.available(), 110);
    /// assert!(budget.try_retry());
    /// assert_eq!(budget.available(), 109);
    /// ```
    pub fn available(&self) -> u64 {
        let bucket = self.window.advance(now_ns(), self.config.span.bucket_ns);
        let bounds = self.window.bounds(bucket);
        let (calls, retries) = bounds.counts_wide_low(self.window.totals().load(Ordering::Acquire));
        self.allowance(calls, retries)
    }

    /// The retries left given the counts in the window: how many more fit
    /// within the limit (the fleet's cap, when one is set).
    fn allowance(&self, calls: u64, retries: u64) -> u64 {
        let fleet = self.fleet_cap.load(Ordering::Relaxed);
        let cap = if fleet == NO_FLEET {
            self.cap(calls)
        } else {
            u128::from(fleet)
        };
        u64::try_from(cap.saturating_sub(u128::from(retries))).unwrap_or(u64::MAX)
    }

    /// The most retries the formula lets a window with `calls` calls hold.
    fn cap(&self, calls: u64) -> u128 {
        const MILLION: u128 = 1_000_000;
        // The limit in millionths of a retry, so that a ratio of 0.1 is
        // exact: ratio × calls + min_retries_per_second × window seconds.
        let limit = u128::from(self.config.ratio_ppm) * u128::from(calls)
            + u128::from(self.config.min_per_second) * u128::from(self.config.span.window_ns)
                / 1000;
        // Retries allowed while `retries + 1 <= limit`: up to floor(limit),
        // so that the extra load never exceeds the limit, even by one.
        let cap = limit / MILLION;
        // Retries are counted in 32 bits per window.
        cap.min(u128::from(u32::MAX))
    }

    /// The calls and retries in the window now, for a fleet's exchange.
    #[cfg(feature = "redis")]
    pub(crate) fn counts(&self) -> (u64, u64) {
        let bucket = self.window.advance(now_ns(), self.config.span.bucket_ns);
        let bounds = self.window.bounds(bucket);
        bounds.counts_wide_low(self.window.totals().load(Ordering::Acquire))
    }

    /// The most retries the formula lets the fleet's window hold, given the
    /// fleet's calls in it: the same formula, its floor counted once.
    #[cfg(feature = "redis")]
    pub(crate) fn fleet_formula(&self, calls: u64) -> u64 {
        u64::try_from(self.cap(calls)).unwrap_or(u64::MAX)
    }

    /// Hold at most `cap` retries in the window (`None`: the formula again),
    /// as the fleet's exchange decides.
    #[cfg(feature = "redis")]
    pub(crate) fn set_fleet_cap(&self, cap: Option<u64>) {
        let cap = cap.map_or(NO_FLEET, |cap| cap.min(NO_FLEET - 1));
        self.fleet_cap.store(cap, Ordering::Relaxed);
    }
}

impl Default for RetryBudget {
    /// [`RetryBudget::new`].
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RetryBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        f.debug_struct("RetryBudget")
            .field("ratio", &(c.ratio_ppm as f64 / 1e6))
            .field("min_retries_per_second", &c.min_per_second)
            .field("window", &c.span.duration())
            .field("available", &self.available())
            .finish()
    }
}

/// `N` [`RetryBudget`]s, one per key (a provider, a model, a tenant), in
/// bounded memory: a key picks one of the `N` by a fixed hash, so keys that
/// collide share a budget. Choose `N` well above the number of keys in use
/// to make that rare; each budget takes a few hundred bytes.
///
/// The hash is std's `DefaultHasher` with fixed keys: it does not allocate
/// and maps a key to the same budget for the life of the process, but it is
/// not meant to resist keys chosen to collide, so key by what your code
/// controls (a provider's name) rather than by raw user input.
///
/// ```
/// use llm_resilience::{KeyedBudgets, RetryBudget};
///
/// static BUDGETS: KeyedBudgets<64> =
///     KeyedBudgets::new(RetryBudget::new().ratio(0.1).min_retries_per_second(1));
///
/// let openai = BUDGETS.key("openai");
/// openai.record_call();
/// if openai.try_retry() {
///     // retry
/// }
/// assert!(std::ptr::eq(openai, BUDGETS.key("openai")));
/// ```
pub struct KeyedBudgets<const N: usize> {
    budgets: [RetryBudget; N],
}

impl<const N: usize> KeyedBudgets<N> {
    crate::sync::const_fn! {
        /// `N` budgets with the settings of `template` (its counts are not
        /// copied). `const`, so it can be a `static`. `N` must be at least 1.
        ///
        /// ```
        /// use std::time::Duration;
        /// use llm_resilience::{KeyedBudgets, RetryBudget};
        ///
        /// static PER_MODEL: KeyedBudgets<16> =
        ///     KeyedBudgets::new(RetryBudget::new().window(Duration::from_secs(30)));
        /// assert_eq!(PER_MODEL.key("gpt-4o").available(), 300);
        /// ```
        pub const fn new(template: RetryBudget) -> Self {
            const { assert!(N > 0, "KeyedBudgets needs at least one budget") };
            #[cfg(not(retry_loom))]
            let mut budgets = [const { RetryBudget::new() }; N];
            #[cfg(retry_loom)]
            let mut budgets: [RetryBudget; N] = core::array::from_fn(|_| RetryBudget::new());
            let mut i = 0;
            while i < N {
                budgets[i].config = template.config;
                i += 1;
            }
            KeyedBudgets { budgets }
        }
    }

    /// The budget for `key`: always the same one for equal keys. No
    /// allocation.
    ///
    /// ```
    /// use llm_resilience::{KeyedBudgets, RetryBudget};
    ///
    /// let budgets: KeyedBudgets<8> = KeyedBudgets::new(RetryBudget::new());
    /// budgets.key(&("anthropic", "claude")).record_call();
    /// assert!(std::ptr::eq(budgets.key(&("anthropic", "claude")), budgets.key(&("anthropic", "claude"))));
    /// ```
    pub fn key<K: Hash + ?Sized>(&self, key: &K) -> &RetryBudget {
        let mut hasher = DefaultHasher::new();
        key.hash(&mut hasher);
        // N > 0, and the remainder is below N, so it fits a usize.
        &self.budgets[(hasher.finish() % N as u64) as usize]
    }
}

impl<const N: usize> fmt::Debug for KeyedBudgets<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedBudgets")
            .field("budgets", &N)
            .field("template", &self.budgets[0].config)
            .finish()
    }
}
