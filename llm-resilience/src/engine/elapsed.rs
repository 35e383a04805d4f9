use core::fmt;
use std::time::Duration;

use crate::{Classify, ErrorKind};

/// An async attempt was cut off: by the policy's `attempt_timeout`, or
/// because the call's `deadline` came.
///
/// `#[retry]` turns it into the function's error type through
/// `From<Elapsed>`, so a function that sets `deadline` or `attempt_timeout`
/// needs `impl From<llm_resilience::Elapsed> for MyError`. An attempt cut off by
/// `attempt_timeout` counts as a [`Timeout`](ErrorKind::Timeout), whatever
/// the converted error says; one cut off by the deadline ends the call.
///
/// ```
/// use llm_resilience::{Classify, Elapsed, ErrorKind};
///
/// #[derive(Debug)]
/// enum MyError {
///     TimedOut(Elapsed),
/// }
///
/// impl From<Elapsed> for MyError {
///     fn from(e: Elapsed) -> Self {
///         MyError::TimedOut(e)
///     }
/// }
///
/// impl Classify for MyError {
///     fn kind(&self) -> ErrorKind {
///         match self {
///             MyError::TimedOut(e) => e.kind(),
///         }
///     }
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Elapsed {
    limit: Limit,
    after: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
enum Limit {
    Attempt,
    Deadline,
    /// The deadline of the call this one runs in (as an attempt or a
    /// fallback of it), with the time that was left.
    Inherited,
}

#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
impl Elapsed {
    pub(crate) const fn attempt_timeout(after: Duration) -> Self {
        Elapsed {
            limit: Limit::Attempt,
            after,
        }
    }

    pub(crate) const fn deadline(after: Duration) -> Self {
        Elapsed {
            limit: Limit::Deadline,
            after,
        }
    }

    /// The deadline of the enclosing call, `left` before it when it was
    /// reached by a call without one of its own.
    pub(crate) const fn inherited(left: Duration) -> Self {
        Elapsed {
            limit: Limit::Inherited,
            after: left,
        }
    }

    /// Whether the whole call ran out of time (its `deadline`), rather than
    /// one attempt (its `attempt_timeout`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::{Elapsed, Policy};
    ///
    /// // The call's error: what cut the attempt off, as it came.
    /// # #[derive(Debug)]
    /// struct Cut(Elapsed);
    /// # impl From<Elapsed> for Cut {
    /// #     fn from(e: Elapsed) -> Self {
    /// #         Cut(e)
    /// #     }
    /// # }
    /// # use llm_resilience::{Classify, ErrorKind};
    /// # impl Classify for Cut {
    /// #     fn kind(&self) -> ErrorKind {
    /// #         ErrorKind::Timeout
    /// #     }
    /// # }
    ///
    /// # #[cfg(feature = "tokio")]
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let policy = Policy::new().max_attempts(1).attempt_timeout(Duration::from_millis(10));
    /// let hung = || async {
    ///     tokio::time::sleep(Duration::from_secs(60)).await;
    ///     Ok::<(), Cut>(())
    /// };
    /// let Cut(elapsed) = policy.call_async(hung).await.unwrap_err();
    /// assert!(!elapsed.is_deadline()); // only the attempt ran out of time
    /// # }
    /// # #[cfg(not(feature = "tokio"))]
    /// # fn main() {}
    /// ```
    pub const fn is_deadline(&self) -> bool {
        matches!(self.limit, Limit::Deadline | Limit::Inherited)
    }

    /// The limit that was reached: the attempt timeout, or the deadline of the
    /// whole call. For a call without a deadline of its own that ran into
    /// the deadline of the call it runs in, the time it had left of it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::{Elapsed, Policy};
    ///
    /// // The call's error: what cut the attempt off, as it came.
    /// # #[derive(Debug)]
    /// struct Cut(Elapsed);
    /// # impl From<Elapsed> for Cut {
    /// #     fn from(e: Elapsed) -> Self {
    /// #         Cut(e)
    /// #     }
    /// # }
    /// # use llm_resilience::{Classify, ErrorKind};
    /// # impl Classify for Cut {
    /// #     fn kind(&self) -> ErrorKind {
    /// #         ErrorKind::Timeout
    /// #     }
    /// # }
    ///
    /// # #[cfg(feature = "tokio")]
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let policy = Policy::new().deadline(Duration::from_millis(20));
    /// let hung = || async {
    ///     tokio::time::sleep(Duration::from_secs(60)).await;
    ///     Ok::<(), Cut>(())
    /// };
    /// let Cut(elapsed) = policy.call_async(hung).await.unwrap_err();
    /// assert!(elapsed.is_deadline());
    /// assert_eq!(elapsed.limit(), Duration::from_millis(20));
    /// # }
    /// # #[cfg(not(feature = "tokio"))]
    /// # fn main() {}
    /// ```
    pub const fn limit(&self) -> Duration {
        self.after
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.limit {
            Limit::Attempt => write!(
                f,
                "attempt cut off by its attempt_timeout of {}",
                crate::HumanWait(self.after)
            ),
            Limit::Deadline => write!(
                f,
                "call cut off by its deadline of {} (sleeps included)",
                crate::HumanWait(self.after)
            ),
            Limit::Inherited => write!(
                f,
                "call cut off by the deadline of the call it runs in ({} were left)",
                crate::HumanWait(self.after)
            ),
        }
    }
}

impl std::error::Error for Elapsed {}

/// Always [`Timeout`](ErrorKind::Timeout).
impl Classify for Elapsed {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Timeout
    }
}

/// An [`io::Error`](std::io::Error) of kind
/// [`TimedOut`](std::io::ErrorKind::TimedOut) with the `Elapsed` as its inner
/// error, so that `Result<T, std::io::Error>` can take a `deadline` or an
/// `attempt_timeout`. It classifies as a [`Timeout`](ErrorKind::Timeout), and
/// [`get_ref`](std::io::Error::get_ref) gives the `Elapsed` back.
///
/// ```
/// use std::io;
/// use std::time::Duration;
/// use llm_resilience::{Classify, Elapsed, ErrorKind, Policy};
///
/// # #[cfg(feature = "tokio")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let policy = Policy::new().max_attempts(1).attempt_timeout(Duration::from_millis(10));
/// let hung = || async {
///     tokio::time::sleep(Duration::from_secs(60)).await;
///     Ok::<(), io::Error>(())
/// };
/// let error = policy.call_async(hung).await.unwrap_err();
/// assert_eq!(error.kind(), io::ErrorKind::TimedOut);
/// assert_eq!(Classify::kind(&error), ErrorKind::Timeout);
/// let elapsed = error.get_ref().and_then(|e| e.downcast_ref::<Elapsed>()).unwrap();
/// assert!(!elapsed.is_deadline());
/// # }
/// # #[cfg(not(feature = "tokio"))]
/// # fn main() {}
/// ```
impl From<Elapsed> for std::io::Error {
    fn from(elapsed: Elapsed) -> Self {
        std::io::Error::new(std::io::ErrorKind::TimedOut, elapsed)
    }
}
