//! `Classify` for async-openai's error (feature `async-openai`).

use std::time::Duration;

use ::async_openai::error::{ApiError, OpenAIError};

use crate::http::classify_status;
use crate::{CircuitOpen, Classify, Elapsed, ErrorKind};

/// The error codes and types of OpenAI's error bodies (and of the
/// compatible APIs that imitate them) that say what a failure is, whatever
/// the status.
fn kind_of_code(code: &str) -> Option<ErrorKind> {
    Some(match code {
        // Out of credit or over a spend limit: waiting does not help.
        "insufficient_quota"
        | "billing_hard_limit_reached"
        | "billing_not_active"
        | "enforced_spend_limit_reached" => ErrorKind::Quota,
        // A 429 that clears: requests or tokens per minute.
        "rate_limit_exceeded" | "rate_limit_error" | "requests" | "tokens" => ErrorKind::RateLimit,
        "overloaded_error" | "engine_overloaded" | "server_overloaded" => ErrorKind::Overloaded,
        "server_error" | "api_error" => ErrorKind::Server,
        "timeout" | "timeout_error" => ErrorKind::Timeout,
        "invalid_api_key" | "authentication_error" | "permission_error" => ErrorKind::Auth,
        "invalid_request_error" | "not_found_error" | "model_not_found" => ErrorKind::Client,
        _ => return None,
    })
}

fn kind_of_api_error(status: http::StatusCode, error: &ApiError) -> ErrorKind {
    let by_code = [error.code.as_deref(), error.r#type.as_deref()]
        .into_iter()
        .flatten()
        .find_map(kind_of_code);
    match (by_code, classify_status(status)) {
        // An account out of credit is said in the body, on a 429 or not.
        (Some(ErrorKind::Quota), _) => ErrorKind::Quota,
        // The status says the rest; the body speaks for a status that
        // does not (a 200 or 3xx carrying an error object).
        (_, ErrorKind::Other) => by_code.unwrap_or(ErrorKind::Other),
        (_, by_status) => by_status,
    }
}

/// What async-openai's error says, as far as it carries it.
///
/// | error | kind |
/// |---|---|
/// | `ApiError` whose `code` or `type` is `insufficient_quota`, `billing_hard_limit_reached`, `billing_not_active` or `enforced_spend_limit_reached` | [`Quota`](ErrorKind::Quota), whatever the status |
/// | other `ApiError`s | by their status, as the [`http`](crate::http) table says: 429 [`RateLimit`](ErrorKind::RateLimit), 503/529 [`Overloaded`](ErrorKind::Overloaded), 5xx [`Server`](ErrorKind::Server), 408 [`Timeout`](ErrorKind::Timeout), 401/403 [`Auth`](ErrorKind::Auth), other 4xx [`Client`](ErrorKind::Client); for a status that says nothing, by the code or type (`rate_limit_exceeded`, `server_error`, `overloaded_error`, `invalid_request_error`, ...) |
/// | `Reqwest` | as `reqwest::Error` classifies: timeouts, connections refused or dropped |
/// | `StreamError` | [`Network`](ErrorKind::Network): the event stream broke off |
/// | `Boxed` | by its chain of causes ([`Elapsed`], [`CircuitOpen`], an [`HttpError`](crate::http::HttpError) from a tower layer ...) |
/// | `InvalidArgument` | [`Client`](ErrorKind::Client) |
/// | `JSONDeserialize`, `FileSaveError`, `FileReadError` | [`Other`](ErrorKind::Other) |
///
/// What it cannot say: async-openai keeps the status and the body of a
/// failed response but none of its headers, so there is no `Retry-After`
/// (a 429 waits by the backoff, not as long as the provider asked), no
/// request id and no `x-should-retry`; a non-JSON error body of a 4xx (a
/// proxy's HTML 429, say) becomes `JSONDeserialize`, whose status is lost,
/// and is [`Other`](ErrorKind::Other), not retried. It sends no
/// idempotency key either, so a dropped connection that is retried may be
/// billed twice.
///
/// ```
/// use async_openai::error::{ApiError, ApiErrorResponse, OpenAIError};
/// use llm_resilience::{Classify, ErrorKind};
///
/// let quota = OpenAIError::ApiError(ApiErrorResponse {
///     status_code: http::StatusCode::TOO_MANY_REQUESTS,
///     api_error: ApiError {
///         message: "You exceeded your current quota".into(),
///         r#type: Some("insufficient_quota".into()),
///         code: Some("insufficient_quota".into()),
///         ..ApiError::default()
///     },
/// });
/// assert_eq!(quota.kind(), ErrorKind::Quota);
/// ```
impl Classify for OpenAIError {
    fn kind(&self) -> ErrorKind {
        match self {
            OpenAIError::ApiError(response) => {
                kind_of_api_error(response.status_code, &response.api_error)
            }
            OpenAIError::Reqwest(e) => e.kind(),
            OpenAIError::StreamError(_) => ErrorKind::Network,
            OpenAIError::Boxed(e) => e.kind(),
            OpenAIError::InvalidArgument(_) => ErrorKind::Client,
            _ => ErrorKind::Other,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            OpenAIError::Boxed(e) => e.retry_after(),
            _ => None,
        }
    }

    fn request_id(&self) -> Option<&str> {
        match self {
            OpenAIError::Boxed(e) => e.request_id(),
            _ => None,
        }
    }
}

/// A cut-off attempt, for `#[retry(attempt_timeout = ..., deadline = ...)]`
/// on a function that returns async-openai's error: `Boxed`, holding the
/// [`Elapsed`] (a [`Timeout`](ErrorKind::Timeout)).
impl From<Elapsed> for OpenAIError {
    fn from(elapsed: Elapsed) -> Self {
        OpenAIError::Boxed(Box::new(elapsed))
    }
}

/// A breaker's refusal, for `#[retry(breaker = ...)]`: `Boxed`, holding the
/// [`CircuitOpen`] (an [`Overloaded`](ErrorKind::Overloaded) error, not
/// sent).
impl From<CircuitOpen> for OpenAIError {
    fn from(open: CircuitOpen) -> Self {
        OpenAIError::Boxed(Box::new(open))
    }
}
