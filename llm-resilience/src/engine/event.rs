//! What `on_retry` sees of a retry: [`RetryEvent`] and its [`DelaySource`].

use std::time::Duration;

use crate::ErrorKind;

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
    pub(super) attempt: u32,
    pub(super) error: &'a E,
    pub(super) kind: ErrorKind,
    pub(super) delay: Duration,
    pub(super) source: DelaySource,
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
    /// The server's Retry-After (from [`Classify::retry_after`](crate::Classify::retry_after)), plus a small
    /// spread so that callers told the same value do not return together.
    RetryAfter,
}
