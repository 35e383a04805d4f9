//! A middleware for reqwest-middleware 0.5 (feature `reqwest-middleware`).
//!
//! [`RetryMiddleware`] runs every request sent through a
//! `ClientWithMiddleware` under a [`Policy`], with its breaker, budget,
//! limiter, deadline and attempt timeout, its tracing span and metrics
//! (labelled `function="policy"`), as [`Policy::call_async`] does, and adds
//! the call's `Idempotency-Key` (one per call, the same on every attempt;
//! one the caller set is kept) and `x-retry-count` to every attempt. The
//! middlewares added after it run once per attempt; those before it, once
//! per call.
//!
//! Responses are classified as [`check`](crate::http::check) does: a 2xx is
//! returned as it is; any other status is a failure of the kind the
//! [`http`](crate::http) table gives, retried or not by the policy, and the
//! call that ends on one returns it as an error,
//! `reqwest_middleware::Error::Middleware` holding an [`HttpError`] (status,
//! kind, the provider's wait and request id, the start of the body).
//! Transport errors that end the call are returned as reqwest gave them
//! (`reqwest_middleware::Error::Reqwest`). `reqwest_middleware::Error`
//! implements [`Classify`], so an outer `#[retry]` or `Policy` sees all of
//! this.
//!
//! A request whose body is a stream cannot be sent twice: it is sent once,
//! and a failure that would have been retried ends the call with an
//! [`HttpError`] that says so ([`HttpError::is_not_replayable`], and its
//! message).
//!
//! ```no_run
//! use std::time::Duration;
//! use llm_resilience::reqwest_middleware::RetryMiddleware;
//! use llm_resilience::{CircuitBreaker, Policy};
//! use reqwest_middleware::ClientBuilder;
//!
//! static BREAKER: CircuitBreaker = CircuitBreaker::new();
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), reqwest_middleware::Error> {
//! let policy = Policy::new().max_attempts(4).attempt_timeout(Duration::from_secs(60));
//! let client = ClientBuilder::new(reqwest::Client::new())
//!     .with(RetryMiddleware::new(policy).breaker(&BREAKER))
//!     .build();
//! let reply = client
//!     .post("https://api.openai.com/v1/chat/completions")
//!     .body(r#"{"model": "gpt-4o-mini", "messages": []}"#)
//!     .send()
//!     .await?; // a 2xx: 429s, 5xx and dropped connections were retried
//! # let _ = reply;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use ::reqwest_middleware::{Error, Middleware, Next};
use http::Extensions;
use reqwest::{Request, Response};

use crate::http::HttpError;
use crate::integrations::{call_guarded, guard_builders, Guarded};
use crate::{CircuitOpen, Classify, Elapsed, ErrorKind, Policy};

/// A reqwest-middleware [`Middleware`] that runs every request under a
/// [`Policy`]. See the [module docs](self).
///
/// ```
/// use llm_resilience::reqwest_middleware::RetryMiddleware;
/// use llm_resilience::{AdaptiveLimiter, Policy, RetryBudget};
/// use reqwest_middleware::ClientBuilder;
///
/// static BUDGET: RetryBudget = RetryBudget::new();
/// static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new();
///
/// let client = ClientBuilder::new(reqwest::Client::new())
///     .with(RetryMiddleware::new(Policy::new()).budget(&BUDGET).limiter(&LIMITER))
///     .build();
/// # let _ = client;
/// ```
#[derive(Clone, Debug)]
pub struct RetryMiddleware {
    guarded: Guarded,
}

impl RetryMiddleware {
    /// A middleware that runs requests under `policy`, with no breaker,
    /// budget or limiter.
    pub fn new(policy: Policy) -> Self {
        RetryMiddleware {
            guarded: Guarded::new(policy),
        }
    }
}

guard_builders!(RetryMiddleware);

#[async_trait::async_trait]
impl Middleware for RetryMiddleware {
    async fn handle(
        &self,
        request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> Result<Response, Error> {
        let mut template = request.try_clone();
        let replayable = template.is_some();
        let mut first = Some(request);
        let mut sent = false;
        // Each attempt runs the rest of the chain with the extensions as
        // they came; those of the attempt that succeeded are kept.
        let given = std::mem::take(extensions);
        let op = || {
            sent = true;
            let mut request = first
                .take()
                .or_else(|| template.as_mut().and_then(|t| t.try_clone()));
            if let Some(request) = &mut request {
                crate::http::insert_retry_headers(request.headers_mut());
            }
            let mut extensions = given.clone();
            let next = next.clone();
            async move {
                let Some(request) = request else {
                    return Err(HttpError::from_source(
                        ErrorKind::Other,
                        "the request was sent once and cannot be replayed",
                    ));
                };
                let response = next
                    .run(request, &mut extensions)
                    .await
                    .map_err(from_chain)?;
                Ok((crate::http::check(response).await?, extensions))
            }
        };
        let outcome = call_guarded!(&self.guarded, replayable, op);
        match outcome {
            Ok((response, kept)) => {
                *extensions = kept;
                Ok(response)
            }
            Err(error) => {
                *extensions = given;
                let error = self.guarded.finish(error, replayable, sent);
                Err(match error.into_plain_source::<reqwest::Error>() {
                    Ok(transport) => Error::Reqwest(transport),
                    Err(error) => Error::Middleware(anyhow::Error::new(error)),
                })
            }
        }
    }
}

/// The failure an error of the rest of the chain stands for: reqwest's own
/// error kept as the source, a middleware's by its chain of causes.
fn from_chain(error: Error) -> HttpError {
    match error {
        Error::Reqwest(transport) => HttpError::from(transport),
        Error::Middleware(error) => HttpError::from_classified(error),
    }
}

/// `Reqwest` as `reqwest::Error` classifies; `Middleware` by its chain of
/// causes, as `anyhow::Error` classifies (an [`HttpError`] from
/// [`RetryMiddleware`], an [`Elapsed`], a [`CircuitOpen`], an `io::Error`
/// ...).
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use llm_resilience::{http::HttpError, Classify, ErrorKind};
///
/// let refused = HttpError::from_response(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), b"");
/// let error = reqwest_middleware::Error::middleware(refused);
/// assert_eq!(error.kind(), ErrorKind::RateLimit);
/// ```
impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Reqwest(e) => e.kind(),
            Error::Middleware(e) => e.kind(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Reqwest(e) => Classify::retry_after(e),
            Error::Middleware(e) => Classify::retry_after(e),
        }
    }

    fn request_id(&self) -> Option<&str> {
        match self {
            Error::Reqwest(e) => Classify::request_id(e),
            Error::Middleware(e) => Classify::request_id(e),
        }
    }
}

/// A cut-off attempt, for `#[retry(attempt_timeout = ...)]` on a function
/// that returns `reqwest_middleware::Result`: `Middleware`, holding the
/// [`Elapsed`] (a [`Timeout`](ErrorKind::Timeout)).
impl From<Elapsed> for Error {
    fn from(elapsed: Elapsed) -> Self {
        Error::Middleware(anyhow::Error::new(elapsed))
    }
}

/// A breaker's refusal, for `#[retry(breaker = ...)]` on a function that
/// returns `reqwest_middleware::Result`: `Middleware`, holding the
/// [`CircuitOpen`] (an [`Overloaded`](ErrorKind::Overloaded) error, not
/// sent).
impl From<CircuitOpen> for Error {
    fn from(open: CircuitOpen) -> Self {
        Error::Middleware(anyhow::Error::new(open))
    }
}
