use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::ErrorKind;

/// Tells the retry engine what kind of failure an error is, and whether the
/// server said when to come back.
///
/// Implement it for the error type of every function you put `#[retry]` on.
///
/// ```
/// use std::time::Duration;
/// use llm_resilience::{Classify, ErrorKind};
///
/// #[derive(Debug)]
/// enum ApiError {
///     Status { code: u16, retry_after: Option<Duration> },
///     Io(std::io::Error),
/// }
///
/// impl Classify for ApiError {
///     fn kind(&self) -> ErrorKind {
///         match self {
///             ApiError::Status { code: 429, .. } => ErrorKind::RateLimit,
///             ApiError::Status { code: 503, .. } => ErrorKind::Overloaded,
///             ApiError::Status { code: 401 | 403, .. } => ErrorKind::Auth,
///             ApiError::Status { code: 500..=599, .. } => ErrorKind::Server,
///             ApiError::Status { .. } => ErrorKind::Client,
///             ApiError::Io(e) => Classify::kind(e),
///         }
///     }
///
///     fn retry_after(&self) -> Option<Duration> {
///         match self {
///             ApiError::Status { retry_after, .. } => *retry_after,
///             ApiError::Io(_) => None,
///         }
///     }
/// }
///
/// let e = ApiError::Status { code: 429, retry_after: Some(Duration::from_secs(2)) };
/// assert_eq!(e.kind(), ErrorKind::RateLimit);
/// assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` does not implement `llm_resilience::Classify`, so a retry cannot tell which of its errors are worth another attempt",
    label = "this error type needs `impl llm_resilience::Classify`",
    note = "add `impl llm_resilience::Classify for {Self} {{ fn kind(&self) -> llm_resilience::ErrorKind {{ ... }} }}`, returning `ErrorKind::RateLimit`, `Timeout`, `Server`, ... for each of its errors",
    note = "or return an error type that classifies as it is: `Box<dyn std::error::Error + Send + Sync>` or `anyhow::Error` (feature `anyhow` of llm-resilience), classified by their chain of causes; `std::io::Error`; or `llm_resilience::http::HttpError` (feature `http`)"
)]
pub trait Classify {
    /// The kind of failure this error is.
    fn kind(&self) -> ErrorKind;

    /// How long the server asked the caller to wait before trying again
    /// (a `Retry-After` header, for instance), if it said anything.
    ///
    /// When this is `Some(d)` with `d` greater than zero, the next attempt
    /// starts no sooner than `d`. The default says nothing.
    fn retry_after(&self) -> Option<Duration> {
        None
    }

    /// The provider's id for the request that failed (an `x-request-id`
    /// header, say), for the logs. The default says nothing.
    fn request_id(&self) -> Option<&str> {
        None
    }
}

/// `TimedOut` and `WouldBlock` are [`Timeout`](ErrorKind::Timeout);
/// `ConnectionReset`, `ConnectionRefused`, `ConnectionAborted`, `BrokenPipe`,
/// `NotConnected` and `UnexpectedEof` are [`Network`](ErrorKind::Network);
/// the rest are [`Other`](ErrorKind::Other).
///
/// ```
/// use std::io;
/// use llm_resilience::{Classify, ErrorKind};
///
/// let e = io::Error::from(io::ErrorKind::ConnectionReset);
/// assert_eq!(Classify::kind(&e), ErrorKind::Network);
/// ```
impl Classify for io::Error {
    fn kind(&self) -> ErrorKind {
        io_kind(io::Error::kind(self))
    }
}

/// The same mapping as for [`io::Error`].
impl Classify for io::ErrorKind {
    fn kind(&self) -> ErrorKind {
        io_kind(*self)
    }
}

fn io_kind(kind: io::ErrorKind) -> ErrorKind {
    use io::ErrorKind as K;
    match kind {
        K::TimedOut | K::WouldBlock => ErrorKind::Timeout,
        K::ConnectionReset
        | K::ConnectionRefused
        | K::ConnectionAborted
        | K::BrokenPipe
        | K::NotConnected
        | K::UnexpectedEof => ErrorKind::Network,
        _ => ErrorKind::Other,
    }
}

/// An expired `tokio::time::timeout` is a [`Timeout`](ErrorKind::Timeout).
/// The error of a call that cannot fail (a tower `service_fn` or an axum
/// handler that returns `Result<_, Infallible>`).
impl Classify for std::convert::Infallible {
    fn kind(&self) -> ErrorKind {
        match *self {}
    }
}

#[cfg(feature = "tokio")]
impl Classify for tokio::time::error::Elapsed {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Timeout
    }
}

/// `Classify` for types that only point at a classified error: the error
/// they point at decides.
macro_rules! classify_as_pointee {
    ($($ty:ty),* $(,)?) => {$(
        impl<E: Classify + ?Sized> Classify for $ty {
            fn kind(&self) -> ErrorKind {
                (**self).kind()
            }
            fn retry_after(&self) -> Option<Duration> {
                (**self).retry_after()
            }
            fn request_id(&self) -> Option<&str> {
                (**self).request_id()
            }
        }
    )*};
}

classify_as_pointee!(&E, Box<E>, Arc<E>);
