use core::fmt;
use std::time::Duration;

use crate::{Classify, ErrorKind};

/// An async attempt was cut off: by the policy's `attempt_timeout`, or
/// because the call's `deadline` came.
///
/// `#[retry]` turns it into the function's error type through
/// `From<Elapsed>`, so a function that sets `deadline` or `attempt_timeout`
/// needs `impl From<retry_core::Elapsed> for MyError`. An attempt cut off by
/// `attempt_timeout` counts as a [`Timeout`](ErrorKind::Timeout), whatever
/// the converted error says; one cut off by the deadline ends the call.
///
/// ```
/// use retry_core::{Classify, Elapsed, ErrorKind};
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

    /// Whether the whole call ran out of time (its `deadline`), rather than
    /// one attempt (its `attempt_timeout`).
    pub const fn is_deadline(&self) -> bool {
        matches!(self.limit, Limit::Deadline)
    }

    /// The limit that was reached: the attempt timeout, or the deadline of the
    /// whole call.
    pub const fn limit(&self) -> Duration {
        self.after
    }
}

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.limit {
            Limit::Attempt => write!(
                f,
                "attempt cut off by its attempt_timeout of {:?}",
                self.after
            ),
            Limit::Deadline => write!(
                f,
                "call cut off by its deadline of {:?} (sleeps included)",
                self.after
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
