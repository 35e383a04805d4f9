use http::HeaderValue;

use super::{HttpError, ATTEMPT_HEADER, IDEMPOTENCY_HEADER};
use crate::{attempt, Classify, ErrorKind};

/// The most of an error body [`check`] reads.
const BODY_READ: usize = 64 * 1024;

/// `Ok(response)` for a 2xx response; otherwise reads (the start of) the body
/// and returns it as a classified [`HttpError`].
///
/// ```no_run
/// use llm_resilience::{http::{check, HttpError, RequestBuilderExt}, retry};
///
/// #[retry(max_attempts = 4, wait = exponential(500ms, 8s), deadline = 60s)]
/// async fn models(client: &reqwest::Client) -> Result<String, HttpError> {
///     let response = client
///         .get("https://api.openai.com/v1/models")
///         .retry_headers()
///         .send()
///         .await?;
///     Ok(check(response).await?.text().await?)
/// }
/// ```
pub async fn check(mut response: reqwest::Response) -> Result<reqwest::Response, HttpError> {
    let status = response.status();
    // Every answer announces what is left of the rate limit: the call's
    // limiter paces by it, successes included.
    super::observe(response.headers());
    if status.is_success() {
        return Ok(response);
    }
    let headers = std::mem::take(response.headers_mut());
    let mut body = Vec::new();
    while body.len() < BODY_READ {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                body.extend_from_slice(&chunk[..chunk.len().min(BODY_READ - body.len())])
            }
            // A body cut short still says what it said so far.
            Ok(None) | Err(_) => break,
        }
    }
    Err(HttpError::from_response(status, &headers, &body))
}

/// Timeouts are [`Timeout`](ErrorKind::Timeout); connect failures, requests
/// that failed in transit and bodies cut short are
/// [`Network`](ErrorKind::Network); status errors (from
/// `error_for_status`) follow the status table; an invalid request is
/// [`Client`](ErrorKind::Client); the rest are [`Other`](ErrorKind::Other).
impl Classify for reqwest::Error {
    fn kind(&self) -> ErrorKind {
        if self.is_timeout() {
            ErrorKind::Timeout
        } else if let Some(status) = self.status() {
            super::classify_status(status)
        } else if self.is_connect() || self.is_request() || self.is_body() {
            ErrorKind::Network
        } else if self.is_builder() {
            ErrorKind::Client
        } else {
            ErrorKind::Other
        }
    }
}

impl From<reqwest::Error> for HttpError {
    fn from(error: reqwest::Error) -> Self {
        let mut e = HttpError::from_source(error.kind(), error);
        if let Some(status) = e
            .source
            .as_deref()
            .and_then(|s| s.downcast_ref::<reqwest::Error>())
            .and_then(reqwest::Error::status)
        {
            e.status = Some(status);
        }
        e
    }
}

/// Adds the headers that make a retried request safe to send twice.
///
/// ```
/// use std::io;
/// use llm_resilience::{http::RequestBuilderExt, Policy, Wait};
///
/// let client = reqwest::Client::new();
/// let mut sent = Vec::new();
/// let _: Result<(), io::Error> = Policy::new().wait(Wait::none()).call(|| {
///     let request = client.post("https://api.openai.com/v1/chat/completions");
///     sent.push(request.retry_headers().build().unwrap());
///     Err(io::ErrorKind::ConnectionReset.into())
/// });
/// assert_eq!(sent[0].headers()["idempotency-key"], sent[2].headers()["idempotency-key"]);
/// assert_eq!(sent[2].headers()["x-retry-count"], "2");
/// ```
pub trait RequestBuilderExt {
    /// Add `Idempotency-Key` (the call's key, the same on every attempt; see
    /// [`Attempt::idempotency_key`](crate::Attempt::idempotency_key)) and
    /// `x-retry-count` (retries so far) to the request.
    ///
    /// A provider that honours idempotency keys answers a retried POST whose
    /// first attempt it already processed with the stored response, so a
    /// connection lost after the work was done is not billed twice.
    fn retry_headers(self) -> Self;
}

impl RequestBuilderExt for reqwest::RequestBuilder {
    fn retry_headers(self) -> Self {
        let current = attempt();
        let key = current.idempotency_key().to_bytes();
        let retries = HeaderValue::from(current.number().saturating_sub(1));
        let builder = match HeaderValue::from_bytes(&key) {
            Ok(value) => self.header(IDEMPOTENCY_HEADER, value),
            // The key is ASCII hex and hyphens; this cannot happen.
            Err(_) => self,
        };
        builder.header(ATTEMPT_HEADER, retries)
    }
}
