//! One chat completion over HTTP, as the load examples (`rate_limit`,
//! `fleet`) send it inside their retried functions, and the paced call
//! both run.

use llm_resilience::http::{check, HttpError, RequestBuilderExt};
use llm_resilience::{retry, AdaptiveLimiter};
use serde_json::Value;

/// POST `body` to `url` and read the whole answer.
///
/// The request carries the retry headers (`RequestBuilderExt::retry_headers`),
/// and the response goes through [`check`], which classifies an error
/// status (a `429` with its `Retry-After`, a `5xx`) and feeds the call's
/// limiter from the rate-limit headers of every answer.
///
/// # Errors
///
/// The [`HttpError`] of a failed send, an error status, or a body cut off.
pub async fn send(client: &reqwest::Client, url: &str, body: &Value) -> Result<(), HttpError> {
    let response = client.post(url).json(body).retry_headers().send().await?;
    check(response).await?.bytes().await?;
    Ok(())
}

/// [`send`], retried up to 8 attempts and paced by `limiter`: every
/// attempt waits for its slot, and every answer teaches the limiter.
///
/// # Errors
///
/// The last attempt's [`HttpError`].
#[retry(max_attempts = 8, limiter = limiter)]
pub async fn paced(
    client: &reqwest::Client,
    url: &str,
    limiter: &AdaptiveLimiter,
    body: &Value,
) -> Result<(), HttpError> {
    send(client, url, body).await
}
