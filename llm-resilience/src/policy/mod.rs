//! The policy: how many attempts, which errors, how long to wait (backoff
//! and jitter), and how long the whole call may take.

pub(crate) mod backoff;
pub(crate) mod classify;
#[cfg(any(feature = "http", feature = "stream"))]
pub(crate) mod codes;
pub(crate) mod kind;
pub(crate) mod wait;

use core::fmt;
use std::time::Duration;

use crate::{ErrorKind, Jitter, KindSet, Wait};

/// A retry policy: how many attempts, how long to wait between them, which
/// errors to retry, and how long the whole call may take.
///
/// `#[retry(...)]` builds one of these in a `const` from its arguments. Build
/// one yourself for policies read from configuration, and run calls through
#[cfg_attr(
    feature = "tokio",
    doc = "it with [`Policy::call`] or [`Policy::call_async`]. Every builder is a"
)]
#[cfg_attr(
    not(feature = "tokio"),
    doc = "it with [`Policy::call`] or `Policy::call_async` (feature `tokio`). Every builder is a"
)]
/// `const fn`, so a policy can live in a `static` or `const`.
///
/// | builder | default |
/// |---|---|
/// | [`max_attempts`](Policy::max_attempts) | 3 |
/// | [`wait`](Policy::wait) | [`Wait::exponential(1s, 60s)`](Wait::exponential) |
/// | [`jitter`](Policy::jitter) | [`Jitter::Full`] |
/// | [`retry_on`](Policy::retry_on) | [`KindSet::transient()`] |
/// | [`kind_max_attempts`](Policy::kind_max_attempts) | no per-kind cap |
/// | [`retry_after_cap`](Policy::retry_after_cap) | 60 s |
/// | [`deadline`](Policy::deadline) | none |
/// | [`attempt_timeout`](Policy::attempt_timeout) | none |
/// | [`fallback_on`](Policy::fallback_on) | every kind but `Client` and `Auth` |
///
/// ```
/// use std::time::Duration;
/// use llm_resilience::{ErrorKind, Jitter, KindSet, Policy, Wait};
///
/// const CHAT: Policy = Policy::new()
///     .max_attempts(5)
///     .wait(Wait::exponential(Duration::from_millis(500), Duration::from_secs(8)))
///     .jitter(Jitter::Equal)
///     .retry_on(KindSet::transient())
///     .kind_max_attempts(ErrorKind::Timeout, 2)
///     .deadline(Duration::from_secs(30));
///
/// assert!(CHAT.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    pub(crate) max_attempts: u32,
    pub(crate) wait: Wait,
    pub(crate) jitter: Jitter,
    pub(crate) on: KindSet,
    /// Per-kind caps on failed attempts; 0 means no cap.
    pub(crate) kind_caps: [u32; ErrorKind::COUNT],
    pub(crate) retry_after_cap: Duration,
    pub(crate) deadline: Option<Duration>,
    pub(crate) attempt_timeout: Option<Duration>,
    pub(crate) fallback_on: KindSet,
}

impl Policy {
    /// The default policy: 3 attempts, `exponential(1s, 60s)` with full
    /// jitter, the five transient kinds, Retry-After honoured up to 60 s, no
    /// deadline.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::Policy;
    ///
    /// const DEFAULT: Policy = Policy::new();
    /// assert_eq!(DEFAULT, Policy::default());
    /// assert!(DEFAULT.validate().is_ok());
    /// // Full jitter: each delay is at most 1 s, 2 s, 4 s, ...
    /// let delays: Vec<Duration> = DEFAULT.backoff().take(3).collect();
    /// assert!(delays.iter().zip([1, 2, 4]).all(|(d, s)| *d <= Duration::from_secs(s)));
    /// ```
    pub const fn new() -> Self {
        Policy {
            max_attempts: 3,
            wait: Wait::exponential(Duration::from_secs(1), Duration::from_secs(60)),
            jitter: Jitter::Full,
            on: KindSet::transient(),
            kind_caps: [0; ErrorKind::COUNT],
            retry_after_cap: Duration::from_secs(60),
            deadline: None,
            attempt_timeout: None,
            fallback_on: KindSet::all()
                .without(ErrorKind::Client)
                .without(ErrorKind::Auth),
        }
    }

    /// Total attempts, the first one included. `1` means no retry; `0` is
    /// taken as `1`.
    ///
    /// ```
    /// use std::io;
    /// use llm_resilience::{Policy, Wait};
    ///
    /// let policy = Policy::new().max_attempts(4).wait(Wait::none());
    /// let mut attempts = 0;
    /// let _: Result<(), io::Error> = policy.call(|| {
    ///     attempts += 1;
    ///     Err(io::ErrorKind::ConnectionReset.into())
    /// });
    /// assert_eq!(attempts, 4); // the first attempt and three retries
    /// ```
    pub const fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The delay before each retry, before jitter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::{Jitter, Policy, Wait};
    ///
    /// let policy = Policy::new()
    ///     .wait(Wait::fixed(Duration::from_secs(2)))
    ///     .jitter(Jitter::None);
    /// let delays: Vec<Duration> = policy.backoff().take(3).collect();
    /// assert_eq!(delays, [Duration::from_secs(2); 3]);
    /// ```
    pub const fn wait(mut self, wait: Wait) -> Self {
        self.wait = wait;
        self
    }

    /// How the delays are randomised.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::{Jitter, Policy, Wait};
    ///
    /// let wait = Wait::fixed(Duration::from_secs(4));
    /// let policy = Policy::new().wait(wait).jitter(Jitter::Equal);
    /// for delay in policy.backoff().take(20) {
    ///     // Equal jitter: half the delay, plus up to the other half at random.
    ///     assert!(delay >= Duration::from_secs(2) && delay <= Duration::from_secs(4));
    /// }
    /// ```
    pub const fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The kinds of error worth another attempt. `Client`, `Auth` and `Quota`
    /// are never retried even when in the set.
    ///
    /// ```
    /// use std::io;
    /// use llm_resilience::{ErrorKind, KindSet, Policy, Wait};
    ///
    /// // A proxy that fails with errors of no known kind, and usually recovers.
    /// let on = KindSet::transient().with(ErrorKind::Other);
    /// let policy = Policy::new().retry_on(on).wait(Wait::none());
    /// let mut attempts = 0;
    /// let _: Result<(), io::Error> = policy.call(|| {
    ///     attempts += 1;
    ///     Err(io::Error::other("bad gateway from proxy"))
    /// });
    /// assert_eq!(attempts, 3);
    /// ```
    pub const fn retry_on(mut self, kinds: KindSet) -> Self {
        self.on = kinds;
        self
    }

    /// Give up once `attempts` attempts of a call have failed with `kind`,
    /// even if `max_attempts` allows more. `0` removes the cap.
    ///
    /// ```
    /// use std::io;
    /// use llm_resilience::{ErrorKind, Policy, Wait};
    ///
    /// // Up to 5 attempts, but give up after the second timeout.
    /// let policy = Policy::new()
    ///     .max_attempts(5)
    ///     .kind_max_attempts(ErrorKind::Timeout, 2)
    ///     .wait(Wait::none());
    /// let mut attempts = 0;
    /// let _: Result<(), io::Error> = policy.call(|| {
    ///     attempts += 1;
    ///     Err(io::ErrorKind::TimedOut.into())
    /// });
    /// assert_eq!(attempts, 2);
    /// ```
    pub const fn kind_max_attempts(mut self, kind: ErrorKind, attempts: u32) -> Self {
        self.kind_caps[kind.index()] = attempts;
        self
    }

    /// The longest server-requested wait (`Retry-After`) the call honours. A
    /// server asking for more makes the call give up at once with that error,
    /// instead of sleeping to no purpose.
    ///
    /// ```
    /// # use llm_resilience::{Classify, ErrorKind};
    /// # #[derive(Debug)]
    /// # struct RateLimited(Duration);
    /// # impl Classify for RateLimited {
    /// #     fn kind(&self) -> ErrorKind {
    /// #         ErrorKind::RateLimit
    /// #     }
    /// #     fn retry_after(&self) -> Option<Duration> {
    /// #         Some(self.0)
    /// #     }
    /// # }
    /// # impl From<llm_resilience::Elapsed> for RateLimited {
    /// #     fn from(_: llm_resilience::Elapsed) -> Self {
    /// #         unreachable!("no deadline")
    /// #     }
    /// # }
    /// use std::time::Duration;
    /// use llm_resilience::Policy;
    ///
    /// let policy = Policy::new().retry_after_cap(Duration::from_secs(30));
    /// let mut attempts = 0;
    /// let result: Result<(), RateLimited> = policy.call(|| {
    ///     attempts += 1;
    ///     Err(RateLimited(Duration::from_secs(300))) // "come back in five minutes"
    /// });
    /// assert!(result.is_err());
    /// assert_eq!(attempts, 1); // gave up at once instead of sleeping
    /// ```
    pub const fn retry_after_cap(mut self, cap: Duration) -> Self {
        self.retry_after_cap = cap;
        self
    }

    /// A ceiling on the whole call, attempts and sleeps included. No sleep
    /// starts that would end past it. Async calls also cut the attempt in
    /// flight off when it comes; sync calls cannot be interrupted and only
    /// stop retrying.
    ///
    /// ```
    /// use std::io;
    /// use std::time::Duration;
    /// use llm_resilience::{testing, Jitter, Policy, Wait};
    ///
    /// let policy = Policy::new()
    ///     .max_attempts(10)
    ///     .wait(Wait::fixed(Duration::from_secs(10)))
    ///     .jitter(Jitter::None)
    ///     .deadline(Duration::from_secs(25));
    /// # let _sleeps = testing::skip_sleeps(); // no real waiting here
    /// let mut attempts = 0;
    /// let _: Result<(), io::Error> = policy.call(|| {
    ///     attempts += 1;
    ///     Err(io::ErrorKind::TimedOut.into())
    /// });
    /// assert_eq!(attempts, 3); // at 0 s, 10 s and 20 s; a fourth would start past 25 s
    /// ```
    pub const fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Cut off each async attempt after `timeout`; it then counts as a
    /// [`Timeout`](ErrorKind::Timeout). Sync calls cannot be interrupted and
    /// ignore it ([`validate`](Policy::validate) reports nothing for it, since
    /// the same policy may serve async calls).
    ///
    /// ```
    /// # use llm_resilience::{Classify, Elapsed, ErrorKind};
    /// # #[derive(Debug)]
    /// # struct Overloaded;
    /// # impl Classify for Overloaded {
    /// #     fn kind(&self) -> ErrorKind {
    /// #         ErrorKind::Overloaded
    /// #     }
    /// # }
    /// # impl From<Elapsed> for Overloaded {
    /// #     fn from(_: Elapsed) -> Self {
    /// #         Overloaded
    /// #     }
    /// # }
    /// use std::time::Duration;
    /// use llm_resilience::{Policy, Wait};
    ///
    /// # #[cfg(feature = "tokio")]
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let policy = Policy::new()
    ///     .wait(Wait::none())
    ///     .attempt_timeout(Duration::from_millis(20));
    /// let mut attempts = 0;
    /// let reply = policy
    ///     .call_async(|| {
    ///         attempts += 1;
    ///         let hangs = attempts == 1;
    ///         async move {
    ///             if hangs {
    ///                 tokio::time::sleep(Duration::from_secs(60)).await;
    ///             }
    ///             Ok::<_, Overloaded>("answer")
    ///         }
    ///     })
    ///     .await;
    /// assert_eq!(reply.unwrap(), "answer"); // the hung first attempt was cut off and retried
    /// # }
    /// # #[cfg(not(feature = "tokio"))]
    /// # fn main() {}
    /// ```
    pub const fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = Some(timeout);
        self
    }

    /// The kinds of final error after which a fallback is tried (the
    /// `fallback` of `#[retry]`, or the next item of
    /// [`call_each`](Policy::call_each)). By default every kind but `Client`
    /// and `Auth`: a request that is wrong, or credentials that are rejected,
    /// fail the same way elsewhere, while an outage, a rate limit or an
    /// exhausted quota on one provider is a reason to try the next.
    ///
    /// ```
    /// use std::io;
    /// use llm_resilience::{ErrorKind, KindSet, Policy};
    ///
    /// let policy = Policy::new()
    ///     .max_attempts(1)
    ///     .fallback_on(KindSet::empty().with(ErrorKind::Network));
    /// let mut tried = Vec::new();
    /// let reply = policy.call_each(["openai", "anthropic", "mistral"], |provider| {
    ///     tried.push(*provider);
    ///     let kind = match *provider {
    ///         "openai" => io::ErrorKind::ConnectionRefused,
    ///         _ => io::ErrorKind::TimedOut,
    ///     };
    ///     Err::<(), _>(io::Error::from(kind))
    /// });
    /// assert_eq!(reply.unwrap().unwrap_err().kind(), io::ErrorKind::TimedOut);
    /// assert_eq!(tried, ["openai", "anthropic"]); // a timeout does not fall back
    /// ```
    pub const fn fallback_on(mut self, kinds: KindSet) -> Self {
        self.fallback_on = kinds;
        self
    }

    /// Checks a policy built at run time, from configuration say, for the
    /// mistakes that `#[retry]` rejects at compile time.
    ///
    /// A policy that fails this check still runs without panicking (zero
    /// attempts act as one, a factor below 1 as 1, a base above the cap as the
    /// cap), but it probably does not do what its author meant.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::{ErrorKind, KindSet, Policy, PolicyError};
    ///
    /// let p = Policy::new().max_attempts(0);
    /// assert_eq!(p.validate(), Err(PolicyError::ZeroAttempts));
    ///
    /// let p = Policy::new().retry_on(KindSet::empty().with(ErrorKind::Auth));
    /// assert_eq!(p.validate(), Err(PolicyError::NeverRetried(ErrorKind::Auth)));
    /// ```
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.max_attempts == 0 {
            return Err(PolicyError::ZeroAttempts);
        }
        if let Some((base, cap, factor)) = self.wait.exponential_parts() {
            if cap.is_zero() {
                return Err(PolicyError::ZeroCap);
            }
            if base > cap {
                return Err(PolicyError::BaseAboveCap);
            }
            if !(1.0..f64::INFINITY).contains(&factor) {
                return Err(PolicyError::FactorBelowOne(factor));
            }
        }
        if let Some(kind) = self.on.iter().find(|k| k.is_never_retried()) {
            return Err(PolicyError::NeverRetried(kind));
        }
        for kind in ErrorKind::ALL {
            let cap = self.kind_caps[kind.index()];
            if cap > self.max_attempts {
                return Err(PolicyError::KindCapAboveMax {
                    kind,
                    cap,
                    max_attempts: self.max_attempts,
                });
            }
        }
        if self.deadline == Some(Duration::ZERO) {
            return Err(PolicyError::ZeroDeadline);
        }
        if self.attempt_timeout == Some(Duration::ZERO) {
            return Err(PolicyError::ZeroAttemptTimeout);
        }
        Ok(())
    }

    pub(crate) const fn attempts_allowed(&self) -> u32 {
        if self.max_attempts == 0 {
            1
        } else {
            self.max_attempts
        }
    }
}

impl Default for Policy {
    /// [`Policy::new`].
    fn default() -> Self {
        Policy::new()
    }
}

/// A mistake in a [`Policy`], reported by [`Policy::validate`].
///
/// ```
/// use std::time::Duration;
/// use llm_resilience::{Policy, PolicyError, Wait};
///
/// // Base and cap swapped in a configuration file.
/// let wait = Wait::exponential(Duration::from_secs(30), Duration::from_millis(500));
/// let error = Policy::new().wait(wait).validate().unwrap_err();
/// assert_eq!(error, PolicyError::BaseAboveCap);
/// assert_eq!(
///     error.to_string(),
///     "the exponential wait's base is larger than its cap; every delay would be the cap"
/// );
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum PolicyError {
    /// `max_attempts` is 0.
    ZeroAttempts,
    /// The exponential wait's cap is zero.
    ZeroCap,
    /// The exponential wait's base is larger than its cap.
    BaseAboveCap,
    /// The exponential wait's factor is below 1, NaN or infinite.
    FactorBelowOne(f64),
    /// A kind that is never retried was listed in `retry_on`.
    NeverRetried(ErrorKind),
    /// A per-kind cap is larger than `max_attempts`, so it never applies.
    KindCapAboveMax {
        /// The kind whose cap is too large.
        kind: ErrorKind,
        /// Its cap.
        cap: u32,
        /// The policy's `max_attempts`.
        max_attempts: u32,
    },
    /// The deadline is zero: no attempt could ever finish.
    ZeroDeadline,
    /// The attempt timeout is zero: every attempt would be cut off at once.
    ZeroAttemptTimeout,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::ZeroAttempts => f.write_str(
                "max_attempts is 0; it counts the first attempt too, so use 1 for no retries",
            ),
            PolicyError::ZeroCap => f.write_str(
                "the exponential wait's cap is zero; use Wait::none() to retry without waiting",
            ),
            PolicyError::BaseAboveCap => f.write_str(
                "the exponential wait's base is larger than its cap; every delay would be the cap",
            ),
            PolicyError::FactorBelowOne(factor) => write!(
                f,
                "the exponential wait's factor is {factor}; it must be a finite number of at least 1"
            ),
            PolicyError::NeverRetried(kind) => write!(
                f,
                "{kind} errors are never retried (the same request fails the same way every time); remove it from retry_on"
            ),
            PolicyError::KindCapAboveMax {
                kind,
                cap,
                max_attempts,
            } => write!(
                f,
                "the cap of {cap} attempts for {kind} errors is larger than max_attempts ({max_attempts}), so it never applies"
            ),
            PolicyError::ZeroDeadline => f.write_str("the deadline is zero; no attempt could finish"),
            PolicyError::ZeroAttemptTimeout => {
                f.write_str("the attempt timeout is zero; every attempt would be cut off at once")
            }
        }
    }
}

impl std::error::Error for PolicyError {}
