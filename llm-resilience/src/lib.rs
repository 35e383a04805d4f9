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
#![cfg_attr(
    feature = "tokio",
    doc = "[`Policy::call_async`], for policies read from configuration, and"
)]
#![cfg_attr(
    not(feature = "tokio"),
    doc = "`Policy::call_async` (feature `tokio`), for policies read from configuration, and"
)]
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
//! - `http-body`: `http` plus `http::check_response`, `check` for any
//!   `http::Response<B>` whose body is an `http_body::Body` (hyper, axum,
//!   tower services), so reqwest is not needed.
//! - `hyper`: `Classify for hyper::Error`.
//! - `tower`: `llm_resilience::tower::RetryLayer`, a tower `Layer` that runs
//!   any service whose requests can be sent again under a `Policy`, and
//!   tower's retry `Budget` for `RetryBudget`.
//! - `reqwest-middleware`: `llm_resilience::reqwest_middleware::RetryMiddleware`
//!   for reqwest-middleware 0.5's `ClientWithMiddleware`, and
//!   `Classify for reqwest_middleware::Error`.
//! - `async-openai`: `Classify for async_openai::error::OpenAIError`, with
//!   `From<Elapsed>` and `From<CircuitOpen>` for it.
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Without `http`, a few docs in these two folders link to `crate::http`
// items that are not built (for the owners of the folders to fix); the
// all-features doc build checks those links.
#[cfg_attr(not(feature = "http"), allow(rustdoc::broken_intra_doc_links))]
mod engine;
#[cfg_attr(not(feature = "http"), allow(rustdoc::broken_intra_doc_links))]
mod guards;
mod observe;
mod policy;
mod sync;
mod time;

pub use observe::metrics;

pub mod testing;

#[cfg(feature = "http")]
pub mod http;

#[cfg(any(feature = "tower", feature = "reqwest-middleware"))]
#[path = "integrations/shared.rs"]
mod integrations;

#[cfg(feature = "tower")]
#[path = "integrations/tower.rs"]
pub mod tower;

#[cfg(feature = "reqwest-middleware")]
#[path = "integrations/reqwest_middleware.rs"]
pub mod reqwest_middleware;

#[cfg(feature = "async-openai")]
#[path = "integrations/async_openai.rs"]
mod openai_support;

#[cfg(feature = "hyper")]
#[path = "integrations/hyper.rs"]
mod hyper_support;

pub use engine::attempt::{attempt, Attempt, IdempotencyKey};
pub use engine::call::{Hooks, NoHook, RetryAll};
pub use engine::elapsed::Elapsed;
pub use engine::state::{DelaySource, RetryEvent};
pub use guards::breaker::{BreakerPermit, BreakerState, CircuitBreaker, CircuitOpen, HumanWait};
pub use guards::budget::{KeyedBudgets, RetryBudget};
pub use guards::limiter::AdaptiveLimiter;
pub use guards::{AsBreaker, AsBudget, AsLimiter, FailFast, NoBreaker, Refuse};
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
