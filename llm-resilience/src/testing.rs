//! Test support: make retries skip their sleeps and record them.
//!
//! In your own test suite, a retried call that fails a few times would
//! otherwise sleep for real. [`skip_sleeps`] returns a guard; while it lives,
//! every retry on the current thread records its delay instead of sleeping,
//! and the clock that deadlines are measured on moves on by the skipped time,
//! so deadlines behave as if the sleeps had happened.
//!
//! ```
//! # #[cfg(feature = "macros")]
//! # fn main() {
//! use std::time::Duration;
//! use llm_resilience::{retry, testing};
//!
//! #[retry(max_attempts = 4, wait = exponential(1s, 60s), jitter = none)]
//! fn always_down() -> Result<(), std::io::Error> {
//!     Err(std::io::ErrorKind::ConnectionRefused.into())
//! }
//!
//! let sleeps = testing::skip_sleeps();
//! assert!(always_down().is_err());
//! assert_eq!(sleeps.delays(), [1, 2, 4].map(Duration::from_secs));
//! # }
//! # #[cfg(not(feature = "macros"))]
//! # fn main() {}
//! ```
//!
//! The guard acts on the thread that made it: sync code, and async code on a
//! current-thread runtime (the default of `#[tokio::test]`). For async code,
//! tokio's paused clock (`#[tokio::test(start_paused = true)]`) is the other
//! way to test without waiting; retries sleep on tokio's timer, so they honour
//! it.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

thread_local! {
    static SKIPPED: RefCell<Option<Record>> = const { RefCell::new(None) };
}

#[derive(Default)]
struct Record {
    delays: Vec<Duration>,
    total: Duration,
    paced: Duration,
}

/// Make retries on this thread skip their sleeps and record them, until the
/// returned guard is dropped. See the [module docs](self).
///
/// Guards nest: dropping an inner one restores the outer one.
///
/// ```
/// use std::io;
/// use std::time::Duration;
/// use llm_resilience::{testing, Jitter, Policy, Wait};
///
/// let policy = Policy::new()
///     .wait(Wait::fixed(Duration::from_secs(30)))
///     .jitter(Jitter::None);
/// let sleeps = testing::skip_sleeps();
/// let result: Result<(), io::Error> = policy.call(|| Err(io::ErrorKind::TimedOut.into()));
/// assert!(result.is_err()); // at once, not after a minute
/// assert_eq!(sleeps.total(), Duration::from_secs(60));
/// ```
#[must_use = "sleeps are skipped only while the guard lives"]
pub fn skip_sleeps() -> SkippedSleeps {
    let outer = SKIPPED.with(|s| s.replace(Some(Record::default())));
    SkippedSleeps {
        outer,
        _not_send: PhantomData,
    }
}

/// The guard of [`skip_sleeps`]: the delays that retries would have slept on
/// this thread since it was made.
///
/// ```
/// use std::io;
/// use std::time::Duration;
/// use llm_resilience::{testing, Jitter, Policy, Wait};
///
/// let policy = Policy::new()
///     .max_attempts(2)
///     .wait(Wait::fixed(Duration::from_secs(5)))
///     .jitter(Jitter::None);
/// let outer = testing::skip_sleeps();
/// {
///     let inner = testing::skip_sleeps();
///     let _: Result<(), io::Error> = policy.call(|| Err(io::ErrorKind::TimedOut.into()));
///     assert_eq!(inner.delays(), [Duration::from_secs(5)]);
/// }
/// assert!(outer.delays().is_empty()); // the inner guard kept its own record
/// ```
pub struct SkippedSleeps {
    outer: Option<Record>,
    _not_send: PhantomData<*const ()>,
}

impl SkippedSleeps {
    /// Every delay skipped so far, in order.
    ///
    /// ```
    /// use std::io;
    /// use std::time::Duration;
    /// use llm_resilience::{testing, Jitter, Policy, Wait};
    ///
    /// let secs = Duration::from_secs;
    /// let policy = Policy::new()
    ///     .max_attempts(4)
    ///     .wait(Wait::exponential(secs(2), secs(5)))
    ///     .jitter(Jitter::None);
    /// let sleeps = testing::skip_sleeps();
    /// let _: Result<(), io::Error> = policy.call(|| Err(io::ErrorKind::ConnectionReset.into()));
    /// assert_eq!(sleeps.delays(), [secs(2), secs(4), secs(5)]);
    /// ```
    pub fn delays(&self) -> Vec<Duration> {
        SKIPPED.with(|s| {
            s.borrow()
                .as_ref()
                .map(|r| r.delays.clone())
                .unwrap_or_default()
        })
    }

    /// The total of the waits for an [`AdaptiveLimiter`](crate::AdaptiveLimiter)'s
    /// slots skipped so far. They move the clock on, as retry delays do, but
    /// are not among the [`delays`](Self::delays) or in the [`total`](Self::total).
    ///
    /// ```
    /// use std::io;
    /// use std::time::Duration;
    /// use llm_resilience::{testing, AdaptiveLimiter, Policy};
    ///
    /// let limiter = AdaptiveLimiter::new().initial_rate(10.0).burst(1);
    /// let policy = Policy::new();
    /// let sleeps = testing::skip_sleeps();
    /// for _ in 0..3 {
    ///     let _: Result<(), io::Error> = policy.limiter(&limiter).call(|| Ok(()));
    /// }
    /// assert!(sleeps.paced() >= Duration::from_millis(100)); // 10 a second
    /// assert!(sleeps.delays().is_empty()); // no retry, so no retry delay
    /// ```
    pub fn paced(&self) -> Duration {
        SKIPPED.with(|s| s.borrow().as_ref().map(|r| r.paced).unwrap_or_default())
    }

    /// The sum of the retry delays skipped since the guard was made, the
    /// ones [`clear`](Self::clear) forgot included (they still moved the
    /// clock on).
    ///
    /// ```
    /// use std::io;
    /// use std::time::Duration;
    /// use llm_resilience::{testing, Policy, Wait};
    ///
    /// // Full jitter (the default): each delay is random, at most 10 s.
    /// let policy = Policy::new().wait(Wait::fixed(Duration::from_secs(10)));
    /// let sleeps = testing::skip_sleeps();
    /// let _: Result<(), io::Error> = policy.call(|| Err(io::ErrorKind::TimedOut.into()));
    /// assert_eq!(sleeps.total(), sleeps.delays().iter().sum::<Duration>());
    /// assert!(sleeps.total() <= Duration::from_secs(20));
    /// ```
    pub fn total(&self) -> Duration {
        SKIPPED.with(|s| {
            s.borrow()
                .as_ref()
                .map(|r| r.total.saturating_sub(r.paced))
                .unwrap_or_default()
        })
    }

    /// Forget the delays recorded so far. The clock keeps the time skipped.
    ///
    /// ```
    /// use std::io;
    /// use std::time::Duration;
    /// use llm_resilience::{testing, Jitter, Policy, Wait};
    ///
    /// let policy = Policy::new()
    ///     .max_attempts(2)
    ///     .wait(Wait::fixed(Duration::from_secs(1)))
    ///     .jitter(Jitter::None);
    /// let sleeps = testing::skip_sleeps();
    /// let _: Result<(), io::Error> = policy.call(|| Err(io::ErrorKind::TimedOut.into())); // warm-up
    /// sleeps.clear();
    /// let _: Result<(), io::Error> = policy.call(|| Err(io::ErrorKind::TimedOut.into()));
    /// assert_eq!(sleeps.delays(), [Duration::from_secs(1)]); // the second call's only
    /// ```
    pub fn clear(&self) {
        SKIPPED.with(|s| {
            if let Some(r) = s.borrow_mut().as_mut() {
                r.delays.clear();
            }
        });
    }
}

impl Drop for SkippedSleeps {
    fn drop(&mut self) {
        let outer = self.outer.take();
        SKIPPED.with(|s| *s.borrow_mut() = outer);
    }
}

impl core::fmt::Debug for SkippedSleeps {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SkippedSleeps")
            .field("delays", &self.delays())
            .finish()
    }
}

/// Record `delay` instead of sleeping, if sleeps are skipped on this thread.
pub(crate) fn skip(delay: Duration) -> bool {
    SKIPPED.with(|s| match s.borrow_mut().as_mut() {
        Some(r) => {
            r.delays.push(delay);
            r.total = r.total.saturating_add(delay);
            true
        }
        None => false,
    })
}

/// Whether sleeps are skipped on this thread.
pub(crate) fn skipping() -> bool {
    SKIPPED.with(|s| s.borrow().is_some())
}

/// Skip a limiter's pacing wait, if sleeps are skipped on this thread: the
/// clock moves on by it, but it is not one of the [`delays`](SkippedSleeps::delays).
pub(crate) fn skip_pacing(delay: Duration) -> bool {
    SKIPPED.with(|s| match s.borrow_mut().as_mut() {
        Some(r) => {
            r.total = r.total.saturating_add(delay);
            r.paced = r.paced.saturating_add(delay);
            true
        }
        None => false,
    })
}

/// `now` moved on by the time skipped on this thread.
pub(crate) fn skipped_time(now: Instant) -> Instant {
    let total = SKIPPED.with(|s| s.borrow().as_ref().map_or(Duration::ZERO, |r| r.total));
    now.checked_add(total).unwrap_or(now)
}
