//! Classifying HTTP responses from LLM providers (features `http` and
//! `reqwest`).
//!
//! | response | kind |
//! |---|---|
//! | 408 | [`Timeout`](ErrorKind::Timeout) |
//! | 409 | [`Server`](ErrorKind::Server): a transient conflict, retried by the official SDKs too |
//! | 429 | [`RateLimit`](ErrorKind::RateLimit), or [`Quota`](ErrorKind::Quota) when the body says the account is out of credit |
//! | 402 | [`Quota`](ErrorKind::Quota) |
//! | 503, 529 | [`Overloaded`](ErrorKind::Overloaded) |
//! | 500, 502, 504, other 5xx | [`Server`](ErrorKind::Server) |
//! | 401, 403 | [`Auth`](ErrorKind::Auth) |
//! | other 4xx | [`Client`](ErrorKind::Client) |
//! | anything else that is not 2xx | [`Other`](ErrorKind::Other) |
//!
//! Quota errors are recognised by their code in a JSON error body
//! (`error.code`, `error.type`, `code` or `type`): OpenAI's
//! `insufficient_quota`, `billing_hard_limit_reached` and
//! `billing_not_active`, and Anthropic's `enforced_spend_limit_reached`.
//! A response header `x-should-retry: true` or `false` overrides the table,
//! as the official SDKs do: `true` makes a non-transient status a
//! [`Server`](ErrorKind::Server) error, `false` makes a transient one a
//! [`Client`](ErrorKind::Client) error.
//!
//! How long to wait comes from `retry-after-ms`, then `retry-after` (seconds
//! or an HTTP-date), then, for 429s, the providers' reset hints
//! (`x-ratelimit-reset-requests`/`-tokens`, `anthropic-ratelimit-*-reset`).
//! Numbers are read exactly, in their own unit (`retry-after-ms: 86400000`
//! is one day). A well-formed number too large for a [`Duration`] reads as
//! `Duration::MAX`, which is above any `retry_after_cap` short of
//! `Duration::MAX` itself, so the call gives up at once rather than coming
//! back too soon; garbage (words, signs, NaN) reads as no wait given.
//!
//! With the `reqwest` feature, [`check`] turns a non-2xx response into an
//! [`HttpError`], `reqwest::Error` implements [`Classify`], and
//! [`RequestBuilderExt::retry_headers`] sends the call's idempotency key.
//!
//! ```
//! use std::time::Duration;
//! use http::{HeaderMap, HeaderValue, StatusCode};
//! use llm_resilience::{http::HttpError, testing, Policy};
//!
//! // A stand-in for the provider: overloaded twice, asking for 2 s, then fine.
//! let mut statuses = [529, 529, 200].into_iter();
//! let mut headers = HeaderMap::new();
//! headers.insert("retry-after", HeaderValue::from_static("2"));
//!
//! let sleeps = testing::skip_sleeps();
//! let reply = Policy::new().call(|| {
//!     let status = StatusCode::from_u16(statuses.next().unwrap()).unwrap();
//!     if status.is_success() {
//!         return Ok("answer");
//!     }
//!     Err(HttpError::from_response(status, &headers, b"overloaded"))
//! });
//! assert_eq!(reply.unwrap(), "answer");
//! assert!(sleeps.delays().iter().all(|d| *d >= Duration::from_secs(2))); // as asked
//! ```

use std::fmt;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};

use crate::guards::breaker::HumanWait;
use crate::policy::codes::{self, QUOTA_CODES};
use crate::{CircuitOpen, Classify, Elapsed, ErrorKind};

mod announced;
#[cfg(feature = "http-body")]
mod body;
mod headers;
mod hints;
#[cfg(feature = "reqwest")]
mod reqwest_support;

#[cfg(feature = "http-body")]
pub use body::{check_response, CheckResponseFuture};

#[cfg(feature = "reqwest")]
pub use reqwest_support::{check, RequestBuilderExt};

pub use headers::{insert_retry_headers, ATTEMPT_HEADER, IDEMPOTENCY_HEADER};

pub use announced::{announced, observe, Announced, Quota};

/// How much of an error body an [`HttpError`] keeps for its message.
const BODY_KEPT: usize = 1024;

/// The kind of failure a status code is, by the table in the
/// [module docs](self), without looking at headers or body.
///
/// ```
/// use http::StatusCode;
/// use llm_resilience::{http::classify_status, ErrorKind};
///
/// assert_eq!(classify_status(StatusCode::TOO_MANY_REQUESTS), ErrorKind::RateLimit);
/// assert_eq!(classify_status(StatusCode::from_u16(529).unwrap()), ErrorKind::Overloaded);
/// assert_eq!(classify_status(StatusCode::UNAUTHORIZED), ErrorKind::Auth);
/// ```
pub fn classify_status(status: StatusCode) -> ErrorKind {
    codes::status_kind(status.as_u16())
}

/// The kind of failure a whole response is: the status, refined by a quota
/// code in the body and overridden by `x-should-retry`.
///
/// ```
/// use http::{HeaderMap, StatusCode};
/// use llm_resilience::{http::classify_response, ErrorKind};
///
/// let body = br#"{"error": {"type": "insufficient_quota", "code": "insufficient_quota"}}"#;
/// let kind = classify_response(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), body);
/// assert_eq!(kind, ErrorKind::Quota);
/// ```
pub fn classify_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ErrorKind {
    let mut kind = classify_status(status);
    if kind == ErrorKind::RateLimit && is_quota_body(body) {
        kind = ErrorKind::Quota;
    }
    match hints::header_str(headers, "x-should-retry") {
        Some(v) if v.eq_ignore_ascii_case("true") && !kind.is_transient() => ErrorKind::Server,
        Some(v) if v.eq_ignore_ascii_case("false") && kind.is_transient() => ErrorKind::Client,
        _ => kind,
    }
}

/// Whether a JSON error body carries one of the quota codes.
fn is_quota_body(body: &[u8]) -> bool {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    ["/error/code", "/error/type", "/code", "/type"]
        .iter()
        .any(|pointer| {
            json.pointer(pointer)
                .and_then(serde_json::Value::as_str)
                .is_some_and(|code| QUOTA_CODES.contains(&code))
        })
}

/// How long a response asks the caller to wait, read as the
/// [module docs](self) say. `None` when it does not say, or says so in a form
/// that cannot be read.
///
/// ```
/// use std::time::Duration;
/// use http::{HeaderMap, HeaderValue, StatusCode};
/// use llm_resilience::http::retry_after;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("retry-after-ms", HeaderValue::from_static("250"));
/// assert_eq!(retry_after(StatusCode::TOO_MANY_REQUESTS, &headers), Some(Duration::from_millis(250)));
/// ```
pub fn retry_after(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    hints::retry_after(
        headers,
        status == StatusCode::TOO_MANY_REQUESTS,
        SystemTime::now(),
    )
}

/// The provider's request budget, from the headers of any response (a
/// success included): how many requests are left, and how long until the
/// limit resets. Reads OpenAI's `x-ratelimit-remaining-requests` with
/// `x-ratelimit-reset-requests` (a duration such as `6m0s`), else
/// Anthropic's `anthropic-ratelimit-requests-remaining` with
/// `anthropic-ratelimit-requests-reset` (an RFC 3339 time). `None` when
/// either half is missing or cannot be read. Numbers too large for their
/// type saturate: a count at `u64::MAX`, a reset at `Duration::MAX`.
///
/// Hand it to an [`AdaptiveLimiter`](crate::AdaptiveLimiter), so that it
/// paces callers before the provider starts refusing them:
///
/// ```
/// use std::time::Duration;
/// use http::{HeaderMap, HeaderValue};
/// use llm_resilience::{http::requests_remaining, AdaptiveLimiter};
///
/// static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new();
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-ratelimit-remaining-requests", HeaderValue::from_static("30"));
/// headers.insert("x-ratelimit-reset-requests", HeaderValue::from_static("3s"));
/// let (remaining, reset) = requests_remaining(&headers).unwrap();
/// assert_eq!((remaining, reset), (30, Duration::from_secs(3)));
/// LIMITER.observe_remaining(remaining, reset);
/// assert_eq!(LIMITER.rate(), Some(10.0));
///
/// headers.insert("x-ratelimit-remaining-requests", HeaderValue::from_static("-1"));
/// assert_eq!(requests_remaining(&headers), None);
/// ```
pub fn requests_remaining(headers: &HeaderMap) -> Option<(u64, Duration)> {
    let count = |name| hints::header_str(headers, name).and_then(hints::parse_count);
    if let Some(remaining) = count("x-ratelimit-remaining-requests") {
        let reset = hints::header_str(headers, "x-ratelimit-reset-requests")
            .and_then(hints::parse_go_duration)?;
        return Some((remaining, reset));
    }
    let remaining = count("anthropic-ratelimit-requests-remaining")?;
    let at = hints::header_str(headers, "anthropic-ratelimit-requests-reset")
        .and_then(hints::parse_rfc3339)?;
    Some((remaining, hints::until(at, SystemTime::now())))
}

/// The provider's id for a request: `x-request-id` (OpenAI), else
/// `request-id` (Anthropic).
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use llm_resilience::http::request_id;
///
/// let mut headers = HeaderMap::new();
/// assert_eq!(request_id(&headers), None);
/// headers.insert("request-id", HeaderValue::from_static("req_011CSHoEeqs5C35K2UUqR7Fy"));
/// assert_eq!(request_id(&headers), Some("req_011CSHoEeqs5C35K2UUqR7Fy"));
/// headers.insert("x-request-id", HeaderValue::from_static("req_9f2c41"));
/// assert_eq!(request_id(&headers), Some("req_9f2c41")); // x-request-id comes first
/// ```
pub fn request_id(headers: &HeaderMap) -> Option<&str> {
    hints::header_str(headers, "x-request-id")
        .or_else(|| hints::header_str(headers, "request-id"))
        .filter(|id| !id.is_empty())
}

/// A failed HTTP call to a provider: a non-2xx response, a transport error or
/// a cut-off attempt, classified for retrying.
///
/// It implements [`Classify`] and `From<llm_resilience::Elapsed>` (and, with the
/// `reqwest` feature, `From<reqwest::Error>`), so `Result<T, HttpError>` works
/// as the return type of a `#[retry]` function as it is.
///
/// ```
/// use http::{HeaderMap, HeaderValue, StatusCode};
/// use llm_resilience::{http::HttpError, Classify, ErrorKind};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("retry-after", HeaderValue::from_static("2"));
/// headers.insert("x-request-id", HeaderValue::from_static("req_123"));
/// let e = HttpError::from_response(StatusCode::SERVICE_UNAVAILABLE, &headers, b"busy");
/// assert_eq!(e.kind(), ErrorKind::Overloaded);
/// assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(2)));
/// assert_eq!(e.request_id(), Some("req_123"));
/// assert_eq!(e.to_string(), "HTTP 503 Service Unavailable (Overloaded, request req_123, retry after 2s): busy");
/// ```
#[derive(Debug)]
pub struct HttpError {
    kind: ErrorKind,
    status: Option<StatusCode>,
    retry_after: Option<Duration>,
    request_id: Option<String>,
    body: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    /// The failure ended the call because the request could not be sent
    /// again (a streaming body), not because it was not worth a retry.
    not_replayable: bool,
}

impl HttpError {
    /// The error for a non-2xx response with these headers and (the start of)
    /// this body.
    ///
    /// ```
    /// use http::{HeaderMap, StatusCode};
    /// use llm_resilience::{http::HttpError, Classify, ErrorKind};
    ///
    /// let body = br#"{"error": {"message": "You exceeded your current quota", "code": "insufficient_quota"}}"#;
    /// let e = HttpError::from_response(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), body);
    /// assert_eq!(e.kind(), ErrorKind::Quota); // a 429 that waiting does not fix
    /// assert_eq!(e.status(), Some(StatusCode::TOO_MANY_REQUESTS));
    /// ```
    pub fn from_response(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let kept = &body[..body.len().min(BODY_KEPT)];
        HttpError {
            kind: classify_response(status, headers, body),
            status: Some(status),
            retry_after: retry_after(status, headers),
            request_id: request_id(headers).map(str::to_owned),
            body: String::from_utf8_lossy(kept).trim().to_owned(),
            source: None,
            not_replayable: false,
        }
    }

    /// An error of `kind` caused by `source`, with no response: a transport
    /// failure, for instance.
    ///
    /// ```
    /// use std::io;
    /// use llm_resilience::{http::HttpError, Classify, ErrorKind};
    ///
    /// let reset = io::Error::new(io::ErrorKind::ConnectionReset, "connection reset by peer");
    /// let e = HttpError::from_source(ErrorKind::Network, reset);
    /// assert_eq!(e.kind(), ErrorKind::Network);
    /// assert_eq!(e.to_string(), "Network error: connection reset by peer");
    /// assert!(std::error::Error::source(&e).is_some());
    /// ```
    pub fn from_source(
        kind: ErrorKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        HttpError {
            kind,
            status: None,
            retry_after: None,
            request_id: None,
            body: String::new(),
            source: Some(source.into()),
            not_replayable: false,
        }
    }

    /// The response's status, when there was a response.
    ///
    /// ```
    /// use http::{HeaderMap, StatusCode};
    /// use llm_resilience::{http::HttpError, ErrorKind};
    ///
    /// let e = HttpError::from_response(StatusCode::BAD_GATEWAY, &HeaderMap::new(), b"");
    /// assert_eq!(e.status(), Some(StatusCode::BAD_GATEWAY));
    /// let e = HttpError::from_source(ErrorKind::Timeout, "read timed out");
    /// assert_eq!(e.status(), None);
    /// ```
    pub fn status(&self) -> Option<StatusCode> {
        self.status
    }

    /// The provider's request id, when the response carried one.
    ///
    /// ```
    /// use http::{HeaderMap, HeaderValue, StatusCode};
    /// use llm_resilience::http::HttpError;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("request-id", HeaderValue::from_static("req_018EeWyXxfu5pfWkrYcMdjWG"));
    /// let e = HttpError::from_response(StatusCode::INTERNAL_SERVER_ERROR, &headers, b"");
    /// assert_eq!(e.request_id(), Some("req_018EeWyXxfu5pfWkrYcMdjWG"));
    /// ```
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// The start of the error body (up to 1 KiB), lossily decoded.
    ///
    /// ```
    /// use http::{HeaderMap, StatusCode};
    /// use llm_resilience::http::HttpError;
    ///
    /// let overloaded = br#" {"type": "error", "error": {"type": "overloaded_error"}} "#;
    /// let status = StatusCode::from_u16(529).unwrap();
    /// let e = HttpError::from_response(status, &HeaderMap::new(), overloaded);
    /// assert_eq!(e.body(), r#"{"type": "error", "error": {"type": "overloaded_error"}}"#);
    ///
    /// let huge = vec![b'x'; 64 * 1024];
    /// let e = HttpError::from_response(StatusCode::BAD_REQUEST, &HeaderMap::new(), &huge);
    /// assert_eq!(e.body().len(), 1024);
    /// ```
    pub fn body(&self) -> &str {
        &self.body
    }

    /// How long the response asked the caller to wait.
    ///
    /// ```
    /// use std::time::Duration;
    /// use http::{HeaderMap, HeaderValue, StatusCode};
    /// use llm_resilience::http::HttpError;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("retry-after", HeaderValue::from_static("2"));
    /// headers.insert("retry-after-ms", HeaderValue::from_static("1500"));
    /// let e = HttpError::from_response(StatusCode::TOO_MANY_REQUESTS, &headers, b"");
    /// assert_eq!(e.retry_after(), Some(Duration::from_millis(1500))); // `retry-after-ms` first
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The [`CircuitOpen`] refusal this error stands for, when the request
    /// was never sent because a circuit breaker was open (see
    /// [`From<CircuitOpen>`](#impl-From%3CCircuitOpen%3E-for-HttpError)).
    /// Such an error is [`Overloaded`](ErrorKind::Overloaded), so fallbacks
    /// for overload still run; this tells it apart from a provider's 503.
    ///
    /// ```
    /// use http::{HeaderMap, StatusCode};
    /// use llm_resilience::{http::HttpError, CircuitBreaker, Classify, ErrorKind};
    ///
    /// let breaker = CircuitBreaker::new().consecutive_failures(1);
    /// breaker.try_acquire().unwrap().failure(ErrorKind::Server);
    /// let refused = HttpError::from(breaker.try_acquire().unwrap_err());
    /// assert_eq!(refused.kind(), ErrorKind::Overloaded);
    /// assert!(refused.circuit_open().is_some());
    ///
    /// let busy = HttpError::from_response(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new(), b"");
    /// assert_eq!(busy.kind(), ErrorKind::Overloaded);
    /// assert!(busy.circuit_open().is_none()); // the provider said so
    /// ```
    pub fn circuit_open(&self) -> Option<&CircuitOpen> {
        self.source.as_deref()?.downcast_ref::<CircuitOpen>()
    }

    /// Whether the call stopped after this failure only because its request
    /// could not be sent again: its body was a stream, which a retry cannot
    /// replay. The failure was of a kind the policy retries; the request was
    /// sent once. Set by the `llm_resilience::tower` layer and the
    /// `llm_resilience::reqwest_middleware` middleware, and said in the
    /// error's message.
    ///
    /// ```
    /// use http::{HeaderMap, StatusCode};
    /// use llm_resilience::http::HttpError;
    ///
    /// let e = HttpError::from_response(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new(), b"");
    /// assert!(!e.is_not_replayable()); // a provider's 503, nothing more
    /// ```
    pub fn is_not_replayable(&self) -> bool {
        self.not_replayable
    }

    /// The error that any other error stands for, classified by its chain of
    /// causes as a `Box<dyn Error + Send + Sync>` is (see [`Classify`]): the
    /// first error of a type the crate knows (`io::Error`, [`Elapsed`],
    /// [`CircuitOpen`], `HttpError`, and with their features
    /// `reqwest::Error`, `hyper::Error`, `reqwest_middleware::Error`, async-openai's
    /// `OpenAIError`) gives its kind, wait and request id; a chain of unknown
    /// errors is [`Other`](ErrorKind::Other). An `HttpError` is returned as
    /// it is.
    ///
    /// For the transport errors of a client this crate has no feature for:
    /// `client.request(req).await.map_err(HttpError::from_error)?`.
    ///
    /// ```
    /// use std::io;
    /// use llm_resilience::{http::HttpError, Classify, ErrorKind};
    ///
    /// #[derive(Debug)]
    /// struct SendRequest(io::Error); // a client's error, wrapping the socket's
    /// impl std::fmt::Display for SendRequest {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         f.write_str("error sending request")
    ///     }
    /// }
    /// impl std::error::Error for SendRequest {
    ///     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
    ///         Some(&self.0)
    ///     }
    /// }
    ///
    /// let e = HttpError::from_error(SendRequest(io::ErrorKind::ConnectionReset.into()));
    /// assert_eq!(e.kind(), ErrorKind::Network);
    /// assert_eq!(e.to_string(), "Network error: error sending request");
    /// ```
    pub fn from_error(
        error: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        HttpError::from_classified(error.into())
    }

    /// The error for a failure that classifies itself: its kind, wait and
    /// request id, with the error as its source (an `HttpError` as it is).
    pub(crate) fn from_classified<E>(error: E) -> Self
    where
        E: Classify + Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    {
        let (kind, retry_after) = (error.kind(), error.retry_after());
        let request_id = error.request_id().map(str::to_owned);
        let source = error.into();
        let source = match source.downcast::<HttpError>() {
            Ok(http) => return *http,
            Err(source) => source,
        };
        HttpError {
            kind,
            status: None,
            retry_after,
            request_id,
            body: String::new(),
            source: Some(source),
            not_replayable: false,
        }
    }

    /// Mark the error as ending a call whose request could not be replayed,
    /// when it is of a kind `policy` would have retried.
    #[cfg(any(feature = "tower", feature = "reqwest-middleware"))]
    pub(crate) fn sent_once(mut self, policy: &crate::Policy) -> Self {
        // A call's deadline ends it whatever the body; a refusal sent nothing.
        let deadline = self
            .source
            .as_deref()
            .and_then(|s| s.downcast_ref::<Elapsed>())
            .is_some_and(Elapsed::is_deadline);
        self.not_replayable = policy.attempts_allowed() > 1
            && !self.kind.is_never_retried()
            && policy.on.contains(self.kind)
            && !deadline
            && self.circuit_open().is_none();
        self
    }

    /// The error's source, when it is of type `T` and the error says nothing
    /// more than its source does (no response, not marked as unreplayable).
    #[cfg(feature = "reqwest-middleware")]
    pub(crate) fn into_plain_source<T: std::error::Error + 'static>(mut self) -> Result<T, Self> {
        if self.status.is_some() || self.not_replayable {
            return Err(self);
        }
        let Some(source) = self.source.take() else {
            return Err(self);
        };
        match source.downcast::<T>() {
            Ok(plain) => Ok(*plain),
            Err(source) => {
                self.source = Some(source);
                Err(self)
            }
        }
    }
}

impl Classify for HttpError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }

    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(open) = self.circuit_open() {
            return write!(f, "refused without sending: {open}");
        }
        match self.status {
            Some(status) => write!(f, "HTTP {status} ({}", self.kind)?,
            None => write!(f, "{} error", self.kind)?,
        }
        if let Some(id) = &self.request_id {
            write!(f, ", request {id}")?;
        }
        if let Some(wait) = self.retry_after {
            write!(f, ", retry after {}", HumanWait(wait))?;
        }
        if self.status.is_some() {
            f.write_str(")")?;
        }
        if !self.body.is_empty() {
            write!(f, ": {}", self.body)?;
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        if self.not_replayable {
            f.write_str(" (sent once: the request's body is a stream, which cannot be sent again, so it was not retried)")?;
        }
        Ok(())
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// A call refused by an open [`CircuitBreaker`](crate::CircuitBreaker) is
/// [`Overloaded`](ErrorKind::Overloaded), with the time until the breaker
/// admits a probe as its `retry_after`, so that `Result<T, HttpError>` works
/// with `#[retry(breaker = ...)]` as it is. [`HttpError::circuit_open`]
/// tells it apart from a provider's overload, and its message says the
/// request was not sent.
///
/// ```
/// use std::time::Duration;
/// use llm_resilience::{http::HttpError, CircuitBreaker, Classify, ErrorKind};
///
/// let breaker = CircuitBreaker::new().consecutive_failures(1).break_for(Duration::from_secs(30));
/// breaker.try_acquire().unwrap().failure(ErrorKind::Server);
/// let error = HttpError::from(breaker.try_acquire().unwrap_err());
/// assert_eq!(error.kind(), ErrorKind::Overloaded);
/// assert!(error.retry_after().is_some());
/// assert_eq!(error.status(), None);
/// assert!(error.circuit_open().is_some());
/// assert_eq!(
///     error.to_string(),
///     "refused without sending: circuit breaker open; a probe is admitted in 30s"
/// );
/// ```
impl From<CircuitOpen> for HttpError {
    fn from(open: CircuitOpen) -> Self {
        let mut error = HttpError::from_source(ErrorKind::Overloaded, open);
        error.retry_after = open.retry_in();
        error
    }
}

/// A cut-off attempt is a [`Timeout`](ErrorKind::Timeout).
impl From<Elapsed> for HttpError {
    fn from(elapsed: Elapsed) -> Self {
        HttpError::from_source(ErrorKind::Timeout, elapsed)
    }
}
