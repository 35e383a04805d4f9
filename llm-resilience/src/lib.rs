//! Retries for LLM API calls, checked by the compiler.
//!
//! Put `#[retry(...)]` on a sync or async function that returns a `Result`
//! whose error implements [`Classify`]. Each failure is classified into an
//! [`ErrorKind`]; transient kinds (rate limits, overload, server errors,
//! timeouts, network failures) are tried again after an exponential backoff
//! with jitter, honouring the server's `Retry-After`, within an optional
//! deadline. Requests that are wrong, unauthorised or out of credit fail at
//! once. A bad policy is a compile error that points at the offending token.
//!
//! ```
//! # #[cfg(feature = "macros")]
//! # fn main() {
//! use std::time::Duration;
//! use llm_resilience::{retry, Classify, ErrorKind};
//!
//! #[derive(Debug)]
//! enum ApiError {
//!     RateLimited { retry_after: Option<Duration> },
//!     BadRequest,
//! }
//!
//! impl Classify for ApiError {
//!     fn kind(&self) -> ErrorKind {
//!         match self {
//!             ApiError::RateLimited { .. } => ErrorKind::RateLimit,
//!             ApiError::BadRequest => ErrorKind::Client,
//!         }
//!     }
//!     fn retry_after(&self) -> Option<Duration> {
//!         match self {
//!             ApiError::RateLimited { retry_after } => *retry_after,
//!             ApiError::BadRequest => None,
//!         }
//!     }
//! }
//!
//! struct Client {
//!     calls: u32,
//! }
//!
//! impl Client {
//!     #[retry(max_attempts = 5, wait = exponential(10ms, 1s), on = [RateLimit, Timeout])]
//!     fn complete(&mut self, prompt: &str) -> Result<String, ApiError> {
//!         self.calls += 1;
//!         if self.calls < 3 {
//!             return Err(ApiError::RateLimited { retry_after: Some(Duration::from_millis(5)) });
//!         }
//!         Ok(format!("echo: {prompt}"))
//!     }
//! }
//!
//! let mut client = Client { calls: 0 };
//! assert_eq!(client.complete("hi").unwrap(), "echo: hi");
//! assert_eq!(client.calls, 3);
//! # }
//! # #[cfg(not(feature = "macros"))]
//! # fn main() {}
//! ```
//!
//! The same engine runs without the macro through [`Policy::call`] and
//! [`Policy::call_async`], for policies read from configuration, and
//! [`testing::skip_sleeps`] makes your own tests of retried code instant.
//!
//! # Features
//!
//! - `macros` (default): the `#[retry]` attribute.
//! - `tokio` (default): async functions, which sleep on tokio's timer and
//!   support `attempt_timeout` and in-flight deadlines.
//! - `tracing` (default): a span per retried call, opened at its first
//!   failure and named after the function, with an event per failed attempt
//!   (attempt, kind, delay and why, request id, idempotency key) and one at
//!   the end. A call that succeeds at once logs nothing.
// The items of the list that link into `http` do so only when it is built.
#![cfg_attr(
    feature = "http",
    doc = "- `http`: [`http`] classification of statuses, `Retry-After` and",
    doc = "  rate-limit headers, and provider error bodies, with [`http::HttpError`]."
)]
#![cfg_attr(
    not(feature = "http"),
    doc = "- `http`: `llm_resilience::http`, classification of statuses, `Retry-After`",
    doc = "  and rate-limit headers, and provider error bodies, with `HttpError`."
)]
//! - `metrics`: counters and histograms through the `metrics` facade; see
//!   [`metrics`](mod@metrics) for the list.
#![cfg_attr(
    feature = "reqwest",
    doc = "- `reqwest`: `http` plus reqwest support: [`http::check`],",
    doc = "  `Classify for reqwest::Error` and [`http::RequestBuilderExt`]."
)]
#![cfg_attr(
    not(feature = "reqwest"),
    doc = "- `reqwest`: `http` plus reqwest support: `http::check`,",
    doc = "  `Classify for reqwest::Error` and `http::RequestBuilderExt`."
)]
//! - `anyhow`: `Classify for anyhow::Error`, by its chain of causes, as for
//!   `Box<dyn Error + Send + Sync>` (which needs no feature).
#![cfg_attr(
    feature = "stream",
    doc = "- `stream`: [`stream`], the server-sent events of streamed chat calls",
    doc = "  (OpenAI's and Anthropic's formats) decoded into classified frames."
)]
#![cfg_attr(
    not(feature = "stream"),
    doc = "- `stream`: `llm_resilience::stream`, the server-sent events of streamed",
    doc = "  chat calls (OpenAI's and Anthropic's formats) decoded into classified frames."
)]
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod engine;
mod guards;
mod observe;
mod policy;
mod sync;
mod time;

pub use observe::metrics;

pub mod testing;

/// The machinery of [`Policy`]'s calls and of `#[retry]`'s arguments: what a
/// call is configured with ([`Hooks`](hooks::Hooks), from [`Policy::when`],
/// [`Policy::breaker`] and the like), what `breaker =`, `budget =` and
/// `limiter =` accept ([`AsBreaker`](hooks::AsBreaker) and its siblings),
/// and how a refusal becomes the call's error ([`Refuse`](hooks::Refuse)).
/// Most code never names these types.
pub mod hooks {
    pub use crate::engine::call::{Hooks, NoHook, RetryAll};
    pub use crate::guards::{AsBreaker, AsBudget, AsLimiter, FailFast, NoBreaker, Refuse};
}

#[cfg(feature = "http")]
pub mod http;

#[cfg(feature = "stream")]
pub mod stream;

pub use engine::attempt::{attempt, Attempt, IdempotencyKey};
pub use engine::elapsed::Elapsed;
pub use engine::event::{DelaySource, RetryEvent};
pub use guards::breaker::{BreakerPermit, BreakerState, CircuitBreaker, CircuitOpen, HumanWait};
pub use guards::budget::{KeyedBudgets, RetryBudget};
pub use guards::limiter::AdaptiveLimiter;
pub use policy::backoff::Backoff;
pub use policy::classify::Classify;
pub use policy::kind::{ErrorKind, KindSet};
pub use policy::wait::{Jitter, Wait};
pub use policy::{Policy, PolicyError};

/// Retry a function under a policy checked at compile time.
///
/// See the crate documentation and README for every argument.
#[cfg(feature = "macros")]
pub use llm_resilience_macros::retry;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
