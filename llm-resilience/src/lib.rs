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
#![cfg_attr(
    feature = "stream",
    doc = "- `stream`: [`stream`], the server-sent events of streamed chat calls",
    doc = "  (OpenAI's and Anthropic's formats) decoded into classified frames;",
    doc = "  with `tokio`, streamed calls retried until their first content event",
    doc = "  ([`Policy::stream`](crate::Policy), `#[retry(stream = ...)]`)."
)]
#![cfg_attr(
    not(feature = "stream"),
    doc = "- `stream`: `llm_resilience::stream`, the server-sent events of streamed",
    doc = "  chat calls (OpenAI's and Anthropic's formats) decoded into classified frames;",
    doc = "  with `tokio`, streamed calls retried until their first content event",
    doc = "  (`Policy::stream`, `#[retry(stream = ...)]`)."
)]
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
//! - `redis`: `llm_resilience::shared`: a circuit breaker, a retry budget and
//!   an adaptive limiter shared by every process of a fleet through Redis.
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod chain;
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
/// `limiter =` accept ([`AsBreaker`](hooks::AsBreaker)(hooks::AsBreaker) and its siblings),
/// and how a refusal becomes the call's error ([`Refuse`](hooks::Refuse)).
/// Most code never names these types.
pub mod hooks {
    pub use crate::engine::call::{Hooks, NoHook, RetryAll};
    pub use crate::guards::{AsBreaker, AsBudget, AsLimiter, FailFast, NoBreaker, Refuse};
}

#[cfg(feature = "http")]
pub mod http;

#[cfg(feature = "redis")]
pub use guards::shared;

#[cfg(feature = "stream")]
pub mod stream;

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

/// Retry a sync or async function under a policy checked at compile time.
///
/// `#[retry(...)]` goes on a function or method, sync or `async`, that
/// returns a `Result` whose error type implements [`Classify`] (or an alias
/// of one, such as `io::Result<T>` or `anyhow::Result<T>`). The body runs in
/// place once per attempt: `&mut self`, borrowed arguments, `?` and `return`
/// behave as in any function. When an attempt fails, its error is
/// classified into an [`ErrorKind`]; a kind worth retrying is tried again
/// after a wait, within the limits the arguments set, and anything else is
/// returned at once, unchanged.
///
/// ```
/// use std::io;
/// use llm_resilience::retry;
///
/// #[retry(max_attempts = 4, wait = exponential(10ms, 1s), on = [Timeout, Network])]
/// fn fetch(tries: &mut u32) -> Result<&'static str, io::Error> {
///     *tries += 1;
///     if *tries < 3 {
///         return Err(io::ErrorKind::ConnectionReset.into()); // a `Network` error
///     }
///     Ok("done")
/// }
///
/// let mut tries = 0;
/// assert_eq!(fetch(&mut tries).unwrap(), "done");
/// assert_eq!(tries, 3);
/// ```
///
/// A mistake in the arguments is a compile error at the offending token,
/// and every mistake is reported in one compile. The function is still
/// emitted as written beside the errors, so that its callers add none.
///
/// **Async functions and `Send`.** Each attempt of an `async` function is a
/// future that borrows the function's arguments, so that the next attempt
/// can borrow them again. A future that holds a `&T` across an `.await` is
/// `Send` only if `T` is `Sync`: an argument that is `Send` but not `Sync`
/// (a `Cell`, or a `Box<dyn Trait + Send>` reached through `&mut self`)
/// makes the retried call's future not `Send`, and `tokio::spawn` refuses
/// it where it accepts the same function without the attribute. Make the
/// type `Sync` (`Box<dyn Trait + Send + Sync>`, a `Mutex` in place of a
/// `Cell`), or pass what the body needs of it (the `u32` rather than the
/// `Cell<u32>`).
///
/// # Arguments
///
/// Every argument is optional and may be given once, in any order. Those
/// left out take the defaults of [`Policy::new`].
///
/// | argument | default |
/// |---|---|
/// | [`max_attempts = N`](#max_attempts) | `3` |
/// | [`wait = exponential(BASE, CAP)`, `exponential(BASE, CAP, FACTOR)`, `fixed(D)`, `none`](#wait) | `exponential(1s, 60s)` |
/// | [`jitter = full`, `equal`, `decorrelated`, `none`](#jitter) | `full` |
/// | [`on = [Kind, Kind(max_attempts = N), ...]`](#on) | `[RateLimit, Overloaded, Server, Timeout, Network]` |
/// | [`when = EXPR`](#when) | retry every error whose kind is in `on` |
/// | [`on_retry = EXPR`](#on_retry) | nothing |
/// | [`deadline = D`](#deadline) | none |
/// | [`attempt_timeout = D`](#attempt_timeout) | none |
/// | [`retry_after_cap = D`](#retry_after_cap) | `60s` |
/// | [`breaker = EXPR`](#breaker) | none |
/// | [`budget = EXPR`](#budget) | none |
/// | [`limiter = EXPR`, `none`](#limiter) | a limiter of the function's own |
/// | [`cost = EXPR`](#cost) | none |
/// | [`fallback = path`](#fallback) | none |
/// | [`fallback_on = [Kind, ...]`](#fallback_on) | every kind but `Client` and `Auth` |
/// | [`clone(a, b, ...)`](#clone) | none |
/// | [`stream = FORMAT`](#stream) | none: the call is not streamed |
/// | [`first_event_timeout = D`](#first_event_timeout-idle_timeout-stream_deadline) | `60s` (with `stream`) |
/// | [`idle_timeout = D`](#first_event_timeout-idle_timeout-stream_deadline) | `30s` (with `stream`) |
/// | [`stream_deadline = D`](#first_event_timeout-idle_timeout-stream_deadline) | none (with `stream`) |
/// | [`on_interrupt = fail`, `restart`, `resume(name)`](#on_interrupt) | `fail` (with `stream`) |
/// | [`name = "..."`](#name) | the function's name |
/// | [`crate = "path"`](#crate) | `"::llm_resilience"` |
///
/// Durations (`D`, `BASE`, `CAP`) are literals: a bare number is seconds
/// (`1`, `0.5`), or add `ms`, `s` or `m` (`500ms`, `1.5s`, `2m`). They cannot
/// be negative or above about 584 years.
///
/// The examples below make their calls fail on purpose, through
/// `std::io::Error`, which implements [`Classify`] (`TimedOut` is a
/// `Timeout`, `ConnectionReset` a `Network` error, `InvalidData` is
/// `Other`).
///
/// ## `max_attempts`
///
/// `max_attempts = N`: the most attempts a call makes, the first one
/// included, so `1` means no retry. A whole number from 1 to `u32::MAX`.
/// Default: `3`.
///
/// ```
/// use std::io;
/// use llm_resilience::retry;
///
/// #[retry(max_attempts = 5, wait = none)]
/// fn call(tries: &mut u32) -> Result<(), io::Error> {
///     *tries += 1;
///     Err(io::ErrorKind::TimedOut.into())
/// }
///
/// let mut tries = 0;
/// assert!(call(&mut tries).is_err());
/// assert_eq!(tries, 5); // the first attempt and four retries
/// ```
///
/// ## `wait`
///
/// How long to wait before each retry, before [`jitter`](#jitter). The
/// delay before retry `n` (after attempt `n` failed) is:
///
/// | `wait =` | delay before retry `n` |
/// |---|---|
/// | `exponential(BASE, CAP)` | `min(CAP, BASE * 2^(n-1))` |
/// | `exponential(BASE, CAP, FACTOR)` | `min(CAP, BASE * FACTOR^(n-1))`; `FACTOR` is a plain number of at least 1, such as `1.5` |
/// | `fixed(D)` | `D` |
/// | `none` | zero: retry at once |
///
/// Default: `exponential(1s, 60s)`. `BASE` and `CAP` must be longer than
/// zero, and `BASE` no longer than `CAP`. A `Retry-After` that the server
/// sent (see [`Classify::retry_after`]) takes the place of this delay. See
/// [`Wait`].
///
/// ```
/// use std::io;
/// use std::time::Duration;
/// use llm_resilience::{retry, testing};
///
/// #[retry(max_attempts = 5, wait = exponential(100ms, 500ms), jitter = none)]
/// fn exponential() -> Result<(), io::Error> {
///     Err(io::ErrorKind::TimedOut.into())
/// }
///
/// #[retry(max_attempts = 3, wait = fixed(1.5s), jitter = none)]
/// fn fixed() -> Result<(), io::Error> {
///     Err(io::ErrorKind::TimedOut.into())
/// }
///
/// let sleeps = testing::skip_sleeps(); // record the waits instead of sleeping
/// let ms = Duration::from_millis;
/// assert!(exponential().is_err());
/// assert_eq!(sleeps.delays(), [ms(100), ms(200), ms(400), ms(500)]);
/// sleeps.clear();
/// assert!(fixed().is_err());
/// assert_eq!(sleeps.delays(), [ms(1500), ms(1500)]);
/// ```
///
/// ## `jitter`
///
/// How each delay `d` that [`wait`](#wait) gives is randomised, so that
/// callers that failed together do not all come back together. See
/// [`Jitter`]. Default: `full`.
///
/// | `jitter =` | the call sleeps |
/// |---|---|
/// | `full` | uniformly between 0 and `d` |
/// | `equal` | `d / 2`, plus uniformly up to `d / 2` more |
/// | `decorrelated` | uniformly between `BASE` and three times the previous sleep (`BASE` at first), at most `CAP` |
/// | `none` | exactly `d`; a `Retry-After` is then also honoured exactly, without its spread of up to 10% (at most 1 s) |
///
/// ```
/// use std::io;
/// use std::time::Duration;
/// use llm_resilience::{retry, testing};
///
/// #[retry(max_attempts = 10, wait = fixed(2s), jitter = equal)]
/// fn call() -> Result<(), io::Error> {
///     Err(io::ErrorKind::TimedOut.into())
/// }
///
/// let sleeps = testing::skip_sleeps();
/// assert!(call().is_err());
/// for delay in sleeps.delays() {
///     assert!(delay >= Duration::from_secs(1) && delay <= Duration::from_secs(2));
/// }
/// ```
///
/// ## `on`
///
/// `on = [Kind, ...]`: the kinds of error that are retried, which replace
/// the default ones. Default: the five transient kinds, `RateLimit`,
/// `Overloaded`, `Server`, `Timeout` and `Network`. `Other` is retried only
/// when named here. `Client`, `Auth` and `Quota` are never retried (the same
/// request fails the same way every time), and naming them is a compile
/// error. See [`ErrorKind`].
///
/// `Kind(max_attempts = N)` also gives up once `N` attempts have failed with
/// that kind, even if `max_attempts` allows more; `N` may not exceed
/// `max_attempts`.
///
/// ```
/// use std::io;
/// use llm_resilience::retry;
///
/// // Up to 5 attempts, but a request that timed out twice will time out again.
/// #[retry(max_attempts = 5, wait = none, on = [RateLimit, Server, Timeout(max_attempts = 2), Other])]
/// fn call(tries: &mut u32, error: io::ErrorKind) -> Result<(), io::Error> {
///     *tries += 1;
///     Err(error.into())
/// }
///
/// let mut tries = 0;
/// assert!(call(&mut tries, io::ErrorKind::TimedOut).is_err());
/// assert_eq!(tries, 2);
///
/// let mut tries = 0;
/// assert!(call(&mut tries, io::ErrorKind::InvalidData).is_err()); // `Other`, named
/// assert_eq!(tries, 5);
///
/// let mut tries = 0;
/// assert!(call(&mut tries, io::ErrorKind::ConnectionReset).is_err()); // `Network`, not named
/// assert_eq!(tries, 1);
/// ```
///
/// ## `when`
///
/// `when = EXPR`: a further condition for a retry, an `Fn(&E) -> bool` (a
/// closure or the path of a function) asked about every error whose kind is
/// in [`on`](#on). When it returns `false` the error is returned at once.
/// The expression is evaluated when the call first fails, or before its
/// first attempt if that has to wait for a breaker, a budget, a limiter or
/// a deadline; a call that succeeds at once never evaluates it. Default:
/// every such error is retried.
///
/// ```
/// use std::io;
/// use llm_resilience::retry;
///
/// // Retry resets, but not a timeout whose message says the prompt was too long.
/// #[retry(wait = none, when = |e: &io::Error| !e.to_string().contains("too long"))]
/// fn call(tries: &mut u32, error: &str) -> Result<(), io::Error> {
///     *tries += 1;
///     Err(io::Error::new(io::ErrorKind::TimedOut, error.to_owned()))
/// }
///
/// let mut tries = 0;
/// assert!(call(&mut tries, "prompt too long").is_err());
/// assert_eq!(tries, 1);
/// let mut tries = 0;
/// assert!(call(&mut tries, "slow upstream").is_err());
/// assert_eq!(tries, 3);
/// ```
///
/// ## `on_retry`
///
/// `on_retry = EXPR`: an `Fn(&RetryEvent<'_, E>)` (a closure or the path of
/// a function) called before each retry's wait, with the failed attempt's
/// number, its error and kind, and the delay about to be slept and where it
/// came from. See [`RetryEvent`]. Evaluated when [`when`](#when) is.
/// Default: nothing is called.
///
/// ```
/// use std::cell::RefCell;
/// use std::io;
/// use llm_resilience::{retry, RetryEvent};
///
/// thread_local! {
///     static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
/// }
///
/// fn log(event: &RetryEvent<'_, io::Error>) {
///     let line = format!("attempt {} failed: {}", event.attempt(), event.kind());
///     LOG.with(|log| log.borrow_mut().push(line));
/// }
///
/// #[retry(max_attempts = 3, wait = none, on_retry = log)]
/// fn call() -> Result<(), io::Error> {
///     Err(io::ErrorKind::TimedOut.into())
/// }
///
/// assert!(call().is_err());
/// LOG.with(|log| {
///     assert_eq!(*log.borrow(), ["attempt 1 failed: Timeout", "attempt 2 failed: Timeout"])
/// });
/// ```
///
/// ## `deadline`
///
/// `deadline = D`: a ceiling on the whole call, attempts and waits
/// included. No wait starts that would end past it: the call gives up
/// with its last error instead. In an `async fn` the attempt in flight is
/// also cut off when the deadline comes, and the call returns
/// `E::from(`[`Elapsed`]`)`, so the error type needs `From<Elapsed>`
/// (`io::Error`, `Box<dyn Error + Send + Sync>` and `anyhow::Error` have
/// it); a sync attempt cannot be interrupted. A deadline binds every call
/// made inside an attempt, and the [`fallback`](#fallback), whatever their
/// own. Inside the body, [`attempt()`](crate::attempt()) tells how long is
/// left. Default: none.
///
/// ```
/// use std::io;
/// use llm_resilience::{retry, testing};
///
/// #[retry(max_attempts = 10, wait = fixed(10s), jitter = none, deadline = 25s)]
/// fn call(tries: &mut u32) -> Result<(), io::Error> {
///     *tries += 1;
///     Err(io::ErrorKind::TimedOut.into())
/// }
///
/// let _sleeps = testing::skip_sleeps();
/// let mut tries = 0;
/// assert!(call(&mut tries).is_err());
/// assert_eq!(tries, 3); // at 0 s, 10 s and 20 s; a fourth would start past 25 s
/// ```
///
/// ## `attempt_timeout`
///
/// `attempt_timeout = D`: cut each attempt off after `D`. The attempt then
/// counts as a `Timeout`, retried if `Timeout` is in [`on`](#on), and the
/// error type needs `From<`[`Elapsed`]`>`, as for [`deadline`](#deadline).
/// Only on an `async fn`: a sync attempt cannot be cut off, and the
/// attribute says so. Default: none.
///
/// ```
/// # #[cfg(feature = "tokio")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::io;
/// use std::time::Duration;
/// use llm_resilience::retry;
///
/// #[retry(wait = none, attempt_timeout = 50ms)]
/// async fn call(tries: &mut u32) -> Result<&'static str, io::Error> {
///     *tries += 1;
///     if *tries == 1 {
///         tokio::time::sleep(Duration::from_secs(60)).await; // hangs
///     }
///     Ok("answer")
/// }
///
/// let mut tries = 0;
/// assert_eq!(call(&mut tries).await.unwrap(), "answer");
/// assert_eq!(tries, 2);
/// # }
/// # #[cfg(not(feature = "tokio"))]
/// # fn main() {}
/// ```
///
/// ## `retry_after_cap`
///
/// `retry_after_cap = D`: the longest wait that a server may ask for
/// ([`Classify::retry_after`], from a `Retry-After` header say) and be
/// honoured. A server asking for more makes the call give up at once with
/// that error, instead of sleeping to no purpose. Default: `60s`.
///
/// ```
/// use std::io;
/// use std::time::Duration;
/// use llm_resilience::{retry, Classify, ErrorKind};
///
/// #[derive(Debug)]
/// struct RateLimited(Duration);
///
/// impl Classify for RateLimited {
///     fn kind(&self) -> ErrorKind {
///         ErrorKind::RateLimit
///     }
///     fn retry_after(&self) -> Option<Duration> {
///         Some(self.0)
///     }
/// }
///
/// #[retry(retry_after_cap = 30s)]
/// fn call(tries: &mut u32) -> Result<(), RateLimited> {
///     *tries += 1;
///     Err(RateLimited(Duration::from_secs(300))) // "come back in five minutes"
/// }
///
/// let mut tries = 0;
/// assert!(call(&mut tries).is_err());
/// assert_eq!(tries, 1); // gave up at once
/// ```
///
/// ## `breaker`
///
/// `breaker = EXPR`: a [`CircuitBreaker`] the call runs under, usually a
/// `static` shared by every function that calls one provider. While it is
/// open, calls fail at once without running the body, with
/// `E::from(`[`CircuitOpen`]`)`, so the error type needs `From<CircuitOpen>`;
/// they go on to the [`fallback`](#fallback) if there is one. The
/// expression is evaluated once per call and may use the arguments and
/// `self`; it may give the breaker, a reference to it, or a `Box`, `Rc` or
/// `Arc` of it (see [`AsBreaker`](hooks::AsBreaker)). Default: none.
///
/// ```
/// use llm_resilience::{retry, CircuitBreaker, CircuitOpen, Classify, ErrorKind};
///
/// #[derive(Debug)]
/// enum ApiError {
///     Down,
///     NotSent(CircuitOpen),
/// }
///
/// impl Classify for ApiError {
///     fn kind(&self) -> ErrorKind {
///         ErrorKind::Overloaded
///     }
/// }
///
/// impl From<CircuitOpen> for ApiError {
///     fn from(open: CircuitOpen) -> Self {
///         ApiError::NotSent(open)
///     }
/// }
///
/// static BREAKER: CircuitBreaker = CircuitBreaker::new();
///
/// #[retry(breaker = BREAKER)]
/// fn call(tries: &mut u32) -> Result<(), ApiError> {
///     *tries += 1;
///     Err(ApiError::Down)
/// }
///
/// BREAKER.isolate(); // hold it open, as an operator would
/// let mut tries = 0;
/// assert!(matches!(call(&mut tries), Err(ApiError::NotSent(_))));
/// assert_eq!(tries, 0); // never sent
/// ```
///
/// ## `budget`
///
/// `budget = EXPR`: a [`RetryBudget`] the call's retries are drawn from,
/// which lets retries through while they stay within a share of recent
/// calls. When it is spent, the call gives up with its last error. The
/// expression is evaluated once per call, as for [`breaker`](#breaker);
/// [`KeyedBudgets::key`] picks a budget per user or feature. Default:
/// none.
///
/// ```
/// use std::io;
/// use llm_resilience::{retry, KeyedBudgets, RetryBudget};
///
/// static RETRIES: RetryBudget = RetryBudget::new();
/// static PER_USER: KeyedBudgets<64> = KeyedBudgets::new(RetryBudget::new());
///
/// #[retry(wait = none, budget = RETRIES)]
/// fn chat(prompt: &str) -> Result<String, io::Error> {
///     Ok(prompt.to_uppercase())
/// }
///
/// #[retry(wait = none, budget = PER_USER.key(user))]
/// fn embed(user: &str, text: &str) -> Result<usize, io::Error> {
///     Ok(text.len())
/// }
///
/// assert_eq!(chat("hi").unwrap(), "HI");
/// assert_eq!(embed("alice", "hello").unwrap(), 5);
/// ```
///
/// ## `limiter`
///
/// `limiter = EXPR`: an [`AdaptiveLimiter`] that paces every attempt, the
/// first ones and retries alike, to the rate the provider admits, which it
/// learns from its 429s and the limits its answers announce. A call whose
/// turn to send comes after its deadline fails at once with
/// `E::from(`[`Elapsed`]`)`, so the error type needs `From<Elapsed>`. The
/// expression is evaluated once per call, as for [`breaker`](#breaker).
///
/// Default: a limiter of the function's own, shared by all its calls, which
/// does nothing (one atomic load per call) until the function's first 429,
/// and paces its calls from then on. `limiter = none` gives the function no
/// limiter at all.
///
/// ```
/// use std::io;
/// use llm_resilience::{retry, AdaptiveLimiter};
///
/// // One limiter for every function that calls one provider with one key.
/// static OPENAI: AdaptiveLimiter = AdaptiveLimiter::new();
///
/// #[retry(limiter = OPENAI)]
/// fn chat(prompt: &str) -> Result<String, io::Error> {
///     Ok(prompt.to_owned())
/// }
///
/// // Calls to many providers: none of them should pace the others.
/// #[retry(limiter = none)]
/// fn route(provider: &str) -> Result<String, io::Error> {
///     Ok(provider.to_owned())
/// }
///
/// assert_eq!(chat("hi").unwrap(), "hi");
/// assert_eq!(route("mistral").unwrap(), "mistral");
/// ```
///
/// ## `cost`
///
/// `cost = EXPR`: a `u64`, the tokens an attempt costs (the prompt's tokens
/// plus `max_tokens`), evaluated once per call. Once the call's limiter
/// knows the provider's token limit, each attempt also waits until the
/// provider's token bucket holds its tokens. It paces through the
/// [`limiter`](#limiter), so it cannot be combined with `limiter = none`.
/// Default: none, attempts are paced on requests only.
///
/// ```
/// use std::io;
/// use llm_resilience::retry;
///
/// #[retry(cost = prompt.len() as u64 / 4 + max_tokens)]
/// fn complete(prompt: &str, max_tokens: u64) -> Result<String, io::Error> {
///     Ok(format!("{max_tokens} tokens at most about {prompt}"))
/// }
///
/// assert!(complete("rust", 256).is_ok());
/// ```
///
/// ## `fallback`
///
/// `fallback = path`: the function to call, with the same arguments, when
/// this one gives up with an error whose kind is in
/// [`fallback_on`](#fallback_on) (a call that its [`breaker`](#breaker)
/// refuses counts as `Overloaded`) before its [`deadline`](#deadline).
/// Its result is the call's result. It has the same
/// arguments and return type, is `async` if this one is, and may carry its
/// own `#[retry]` and `fallback`, so that a chain of providers is a chain of
/// functions. For a method, name it `Self::other`: it receives `self` too.
///
/// The arguments are passed on by name, so each must be a plain name (not
/// a pattern), and an owned argument that the body consumes needs
/// [`clone`](#clone). The fallback ends no later than this call's
/// [`deadline`](#deadline). Default: none.
///
/// ```
/// use std::io;
/// use llm_resilience::retry;
///
/// #[retry(max_attempts = 2, wait = none, fallback = backup)]
/// fn primary(prompt: &str) -> Result<String, io::Error> {
///     Err(io::Error::new(io::ErrorKind::ConnectionReset, format!("reset sending {prompt}")))
/// }
///
/// #[retry(max_attempts = 2, wait = none)]
/// fn backup(prompt: &str) -> Result<String, io::Error> {
///     Ok(format!("backup: {prompt}"))
/// }
///
/// assert_eq!(primary("hi").unwrap(), "backup: hi");
/// ```
///
/// ## `fallback_on`
///
/// `fallback_on = [Kind, ...]`: the kinds of final error that go on to the
/// [`fallback`](#fallback); any of the nine kinds. Only with `fallback`.
/// Default: every kind but `Client` and `Auth` (a wrong request or rejected
/// credentials fail the same way elsewhere; an outage, a rate limit or an
/// exhausted quota are reasons to try the next provider).
///
/// ```
/// use std::io;
/// use llm_resilience::retry;
///
/// // Only a provider that keeps timing out is a reason to try the other one.
/// #[retry(wait = none, fallback = backup, fallback_on = [Timeout])]
/// fn primary(error: io::ErrorKind) -> Result<&'static str, io::Error> {
///     Err(error.into())
/// }
///
/// fn backup(_: io::ErrorKind) -> Result<&'static str, io::Error> {
///     Ok("backup")
/// }
///
/// assert_eq!(primary(io::ErrorKind::TimedOut).unwrap(), "backup");
/// // A reset connection is a `Network` error: retried, then returned.
/// assert!(primary(io::ErrorKind::ConnectionReset).is_err());
/// ```
///
/// ## `clone`
///
/// `clone(a, b, ...)`: owned arguments to clone afresh for each attempt, so
/// that a body that consumes them can run again. Each must name an argument
/// of the function (not `self`), once; its type must implement `Clone`.
/// Without it, a body that moves an owned argument does not compile. A
/// `mut` on a cloned argument applies to each attempt's copy. Default:
/// none.
///
/// ```
/// use std::io;
/// use llm_resilience::retry;
///
/// fn send(body: Vec<u8>, tries: &mut u32) -> Result<usize, io::Error> {
///     *tries += 1;
///     if *tries < 2 {
///         return Err(io::ErrorKind::ConnectionReset.into());
///     }
///     Ok(body.len())
/// }
///
/// #[retry(wait = none, clone(body))]
/// fn upload(body: Vec<u8>, tries: &mut u32) -> Result<usize, io::Error> {
///     send(body, tries) // takes `body` by value, on every attempt
/// }
///
/// let mut tries = 0;
/// assert_eq!(upload(vec![1, 2, 3], &mut tries).unwrap(), 3);
/// assert_eq!(tries, 2);
/// ```
///
/// ## `stream`
///
/// `stream = FORMAT`: the function opens a streamed chat call, whose
/// server-sent events are in `FORMAT` ([`stream::OpenAi`],
/// [`stream::Anthropic`], or any [`stream::EventFormat`] that is `Clone`,
/// `Send` and `Sync`); feature `stream`, `async fn` only. The body sends the
/// request and returns the response's byte stream (reqwest's
/// `bytes_stream()`, say) as `Ok`; the function returns the
/// [`stream::RetriedStream`] made of it, declared as
/// `Result<RetriedStream<'a, E>, E>`, `Result<impl Stream<Item =
/// Result<StreamItem, E>> + 'a, E>`, or boxed
/// (`Pin<Box<dyn Stream<Item = Result<StreamItem, E>> + Send + 'a>>`,
/// futures' `BoxStream`). `E` needs `From<StreamError>`.
///
/// An attempt is the request and the wait for the first content event
/// (text, or output that is not text: reasoning, a tool call, delivered as
/// [`StreamItem::Output`](stream::StreamItem::Output)): everything that
/// fails before it (a connection error, a non-2xx status, an error event
/// first on a `200`, a body that ends without its terminal marker before
/// any content, no first event within [`first_event_timeout`](#first_event_timeout-idle_timeout-stream_deadline))
/// is retried under the function's policy, breaker, budget and limiter, as
/// for any call, and [`deadline`](#deadline) covers the time to the first
/// event. After it, an interruption (an error event, a dropped connection,
/// no event within `idle_timeout`, the end of the body without its terminal
/// marker) is an error item of the stream, classified, saying how many
/// content events came before it; a truncated answer never ends like a
/// complete one. An answer that ends with its terminal marker before any
/// content is complete and empty: the stream ends cleanly at once. See
/// [`Policy::stream`] for the same without the attribute.
///
/// The stream may send the request again after the function has returned
/// (with [`on_interrupt = restart`](#on_interrupt)), so each attempt runs
/// the body with its own clone of every argument: each must be a plain
/// name whose type is `Clone` (shared references are), a method takes
/// `&self`, and the stream borrows what the arguments borrow, so name that
/// lifetime in the return type. Not with [`fallback`](#fallback) or
/// [`clone`](#clone). Default: none, the call is not streamed.
///
/// ```
/// # #[cfg(all(feature = "stream", feature = "tokio"))]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use futures_util::{stream, StreamExt};
/// use llm_resilience::retry;
/// use llm_resilience::stream::{OpenAi, RetriedStream, StreamItem};
///
/// type Error = Box<dyn std::error::Error + Send + Sync>;
///
/// #[retry(max_attempts = 3, wait = none, stream = OpenAi)]
/// async fn chat(prompt: &str) -> Result<RetriedStream<'_, Error>, Error> {
///     // A real body sends `prompt` and returns `response.bytes_stream()`.
///     let body = format!(
///         "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{prompt}\"}}}}]}}\n\ndata: [DONE]\n\n"
///     );
///     Ok(stream::iter([Ok::<_, Error>(body)]))
/// }
///
/// let mut answer = chat("Hi").await.unwrap();
/// let mut text = String::new();
/// while let Some(item) = answer.next().await {
///     if let StreamItem::Content(piece) = item.unwrap() {
///         text.push_str(&piece); // print it as it comes
///     }
/// }
/// assert_eq!(text, "Hi");
/// # }
/// # #[cfg(not(all(feature = "stream", feature = "tokio")))]
/// # fn main() {}
/// ```
///
/// ## `first_event_timeout`, `idle_timeout`, `stream_deadline`
///
/// With [`stream`](#stream) only: how long an attempt waits for its first
/// content event (default `60s`; past it, the attempt fails as a `Timeout`
/// and is retried), how long the stream may then go without any event
/// (default `30s`), and how long the whole stream may take from the call's
/// start (default none). See [`stream::StreamOptions`].
///
/// ## `on_interrupt`
///
/// With [`stream`](#stream) only: what an interruption after the first
/// content event does. `fail` (the default): it is the stream's last item,
/// as the consumer already holds part of the answer. `restart`: the call
/// sends the same request again, with the same idempotency key, and the
/// consumer receives [`StreamItem::Restarted`](stream::StreamItem::Restarted)
/// before the new stream's events, to discard what it showed.
/// `resume(name)`: the body runs again with `name`, a
/// [`stream::Received`], holding the text delivered so far, to build a
/// continuation request from; the new stream's events follow the old ones.
/// Both count against `max_attempts`, the budget and the deadline.
///
/// ```
/// # #[cfg(all(feature = "stream", feature = "tokio"))]
/// # fn main() {
/// use futures_util::stream;
/// use llm_resilience::retry;
/// use llm_resilience::stream::{OpenAi, RetriedStream};
///
/// type Error = Box<dyn std::error::Error + Send + Sync>;
///
/// #[retry(stream = OpenAi, idle_timeout = 20s, on_interrupt = resume(received))]
/// async fn chat(prompt: String) -> Result<RetriedStream<'static, Error>, Error> {
///     let _request = if received.is_resume() {
///         format!("{prompt}\n(continue after: {})", received.text())
///     } else {
///         prompt
///     };
///     Ok(stream::iter([Ok::<_, Error>("data: [DONE]\n\n")]))
/// }
/// # }
/// # #[cfg(not(all(feature = "stream", feature = "tokio")))]
/// # fn main() {}
/// ```
///
/// ## `name`
///
/// `name = "..."`: the name of the call's tracing span (opened at its first
/// failure) and its `function` metric label; not empty. Default: the
/// function's name.
///
/// ```
/// use std::io;
/// use llm_resilience::retry;
///
/// #[retry(name = "openai.chat.completions")]
/// fn chat(prompt: &str) -> Result<String, io::Error> {
///     Ok(prompt.to_owned())
/// }
/// # assert_eq!(chat("hi").unwrap(), "hi");
/// ```
///
/// ## `crate`
///
/// `crate = "path"`: where the generated code finds `llm-resilience`, for a
/// crate that renames the dependency or reaches it through a re-export of
/// another crate. Default: `"::llm_resilience"`.
///
/// ```
/// use std::io;
/// // As after `resilience = { package = "llm-resilience" }` in Cargo.toml:
/// use llm_resilience as resilience;
///
/// #[resilience::retry(crate = "resilience")]
/// fn chat(prompt: &str) -> Result<String, io::Error> {
///     Ok(prompt.to_owned())
/// }
/// # assert_eq!(chat("hi").unwrap(), "hi");
/// ```
#[cfg(feature = "macros")]
pub use llm_resilience_macros::retry;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
