//! [`Classify`] for errors known only by their chain (`dyn Error`, and
//! `anyhow::Error`): the links of the chain of a type this crate knows
//! decide. Apart from the trait (`policy::classify`), because it knows every
//! error type of the crate and of the integrations (`http`, `stream`,
//! reqwest, hyper, ...), which themselves classify through the policy.

use std::error::Error;
use std::io;
use std::time::Duration;

use crate::{Classify, ErrorKind};

/// The links of an error's chain that this crate knows how to classify, as
/// [`Classify`]: the error itself, then its [`source`](Error::source)s, going
/// into the error an [`io::Error`] wraps. At most [`CHAIN_LIMIT`] links are
/// looked at, so a chain that loops back on itself still ends.
///
/// Known: the types the body below downcasts to, listed on `Classify for
/// dyn Error + Send + Sync`.
fn known_links<'e>(
    error: &'e (dyn Error + 'static),
) -> impl Iterator<Item = &'e dyn Classify> + 'e {
    let mut next = Some(error);
    std::iter::from_fn(move || {
        let link = next?;
        next = match link.downcast_ref::<io::Error>() {
            // `io::Error::source` skips the error it wraps: step into it.
            Some(io) => io.get_ref().map(|inner| inner as &(dyn Error + 'static)),
            None => link.source(),
        };
        Some(link)
    })
    .take(CHAIN_LIMIT)
    .filter_map(known)
}

/// How many links of a chain [`known_links`] looks at.
const CHAIN_LIMIT: usize = 32;

/// `error` as a [`Classify`], if it is of a type this crate knows.
fn known<'e>(error: &'e (dyn Error + 'static)) -> Option<&'e dyn Classify> {
    if let Some(e) = error.downcast_ref::<io::Error>() {
        return Some(e);
    }
    if let Some(e) = error.downcast_ref::<crate::Elapsed>() {
        return Some(e);
    }
    if let Some(e) = error.downcast_ref::<crate::CircuitOpen>() {
        return Some(e);
    }
    #[cfg(feature = "tokio")]
    if let Some(e) = error.downcast_ref::<tokio::time::error::Elapsed>() {
        return Some(e);
    }
    #[cfg(feature = "http")]
    if let Some(e) = error.downcast_ref::<crate::http::HttpError>() {
        return Some(e);
    }
    #[cfg(feature = "reqwest")]
    if let Some(e) = error.downcast_ref::<reqwest::Error>() {
        return Some(e);
    }
    #[cfg(feature = "stream")]
    if let Some(e) = error.downcast_ref::<crate::stream::StreamError>() {
        return Some(e);
    }
    #[cfg(feature = "stream")]
    if let Some(e) = error.downcast_ref::<crate::stream::ProviderError>() {
        return Some(e);
    }
    #[cfg(feature = "hyper")]
    if let Some(e) = error.downcast_ref::<hyper::Error>() {
        return Some(e);
    }
    #[cfg(feature = "reqwest-middleware")]
    if let Some(e) = error.downcast_ref::<reqwest_middleware::Error>() {
        return Some(e);
    }
    #[cfg(feature = "async-openai")]
    if let Some(e) = error.downcast_ref::<async_openai::error::OpenAIError>() {
        return Some(e);
    }
    None
}

/// The kind of the first known link that is not [`Other`](ErrorKind::Other).
fn chain_kind(error: &(dyn Error + 'static)) -> ErrorKind {
    known_links(error)
        .map(|e| e.kind())
        .find(|kind| *kind != ErrorKind::Other)
        .unwrap_or(ErrorKind::Other)
}

/// The `retry_after` of the first known link that has one.
fn chain_retry_after(error: &(dyn Error + 'static)) -> Option<Duration> {
    known_links(error).find_map(|e| e.retry_after())
}

/// The `request_id` of the first known link that has one.
fn chain_request_id<'e>(error: &'e (dyn Error + 'static)) -> Option<&'e str> {
    known_links(error).find_map(|e| e.request_id())
}

/// `Classify` by the error's chain, for the `dyn Error` types.
macro_rules! classify_by_chain {
    ($($(#[$doc:meta])* $ty:ty;)*) => {$(
        $(#[$doc])*
        impl Classify for $ty {
            fn kind(&self) -> ErrorKind {
                chain_kind(self)
            }
            fn retry_after(&self) -> Option<Duration> {
                chain_retry_after(self)
            }
            fn request_id(&self) -> Option<&str> {
                chain_request_id(self)
            }
        }
    )*};
}

classify_by_chain! {
    /// Classifies a boxed error by its chain: the error and its sources are
    /// looked at in turn (into the error an [`io::Error`] wraps too), and the
    /// first one of a type this crate knows with a kind other than
    /// [`Other`](ErrorKind::Other) decides. Known are [`io::Error`],
    /// [`Elapsed`](crate::Elapsed), [`CircuitOpen`](crate::CircuitOpen),
    /// tokio's `Elapsed`, `HttpError` (feature `http`), `reqwest::Error`
    /// (feature `reqwest`), `hyper::Error` (feature `hyper`),
    /// `reqwest_middleware::Error` (feature `reqwest-middleware`), async-openai's
    /// `OpenAIError` (feature `async-openai`), and `StreamError` and
    /// `ProviderError` (feature `stream`); a chain with none of them is
    /// [`Other`](ErrorKind::Other), which is not retried. `retry_after` and
    /// `request_id` come from the first known error that has one.
    ///
    /// With it, `Result<T, Box<dyn Error + Send + Sync>>` (and `Box<dyn Error>`,
    /// `&dyn Error`, `Arc<dyn Error + Send + Sync>`) can take `#[retry]`; the
    /// `?` operator boxes the errors as they come.
    ///
    /// ```
    /// use std::error::Error;
    /// use std::io;
    /// use llm_resilience::{Classify, Elapsed, ErrorKind};
    ///
    /// let reset: Box<dyn Error + Send + Sync> = io::Error::from(io::ErrorKind::ConnectionReset).into();
    /// assert_eq!(reset.kind(), ErrorKind::Network);
    ///
    /// // An io::Error wrapping one of ours is looked into.
    /// let wrapped: Box<dyn Error + Send + Sync> = io::Error::other(io::Error::from(io::ErrorKind::TimedOut)).into();
    /// assert_eq!(wrapped.kind(), ErrorKind::Timeout);
    ///
    /// let unknown: Box<dyn Error + Send + Sync> = "model returned nonsense".into();
    /// assert_eq!(unknown.kind(), ErrorKind::Other);
    /// ```
    dyn Error + Send + Sync + 'static;
    /// As for [`dyn Error + Send + Sync`](#impl-Classify-for-dyn+Error+%2B+Send+%2B+Sync):
    /// by the error's chain.
    dyn Error + Send + 'static;
    /// As for [`dyn Error + Send + Sync`](#impl-Classify-for-dyn+Error+%2B+Send+%2B+Sync):
    /// by the error's chain.
    dyn Error + 'static;
}

/// Classifies an `anyhow::Error` (feature `anyhow`) by its chain, as for
/// [`Box<dyn Error + Send + Sync>`](#impl-Classify-for-dyn+Error+%2B+Send+%2B+Sync):
/// `.context(...)` layers are looked through.
///
/// ```
/// use anyhow::Context;
/// use llm_resilience::{Classify, ErrorKind};
///
/// let read: Result<(), std::io::Error> = Err(std::io::ErrorKind::TimedOut.into());
/// let error = read.context("reading the completion").unwrap_err();
/// assert_eq!(error.kind(), ErrorKind::Timeout);
/// assert_eq!(anyhow::anyhow!("no choices in the reply").kind(), ErrorKind::Other);
///
/// // An error made from a boxed one is classified by what the box holds.
/// let boxed: Box<dyn std::error::Error + Send + Sync> =
///     Box::new(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
/// let error = anyhow::anyhow!(boxed).context("streaming the answer");
/// assert_eq!(error.kind(), ErrorKind::Network);
/// ```
#[cfg(feature = "anyhow")]
impl Classify for anyhow::Error {
    fn kind(&self) -> ErrorKind {
        chain_kind(anyhow_chain(self))
    }
    fn retry_after(&self) -> Option<Duration> {
        chain_retry_after(anyhow_chain(self))
    }
    fn request_id(&self) -> Option<&str> {
        chain_request_id(anyhow_chain(self))
    }
}

/// The start of an `anyhow::Error`'s chain. An error made from a boxed one
/// (`anyhow!(boxed)`) hides the box behind a wrapper that shows its message
/// but not its type: the box, found by downcasting, is where the chain
/// starts.
#[cfg(feature = "anyhow")]
fn anyhow_chain(error: &anyhow::Error) -> &(dyn std::error::Error + 'static) {
    match error.downcast_ref::<Box<dyn std::error::Error + Send + Sync>>() {
        Some(boxed) => boxed.as_ref(),
        None => error.as_ref(),
    }
}
