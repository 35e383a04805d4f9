//! The headers that make a retried request safe to send twice.

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::attempt;

/// The header that carries the call's idempotency key.
pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// The header that tells the provider how many times this request was
/// retried before (0 on the first attempt).
pub const ATTEMPT_HEADER: &str = "x-retry-count";

/// Add `Idempotency-Key` (the call's key, the same on every attempt; see
/// [`Attempt::idempotency_key`](crate::Attempt::idempotency_key)) and
/// `x-retry-count` (retries so far) to the headers of a request about to be
/// sent, for any client that builds an `http::Request` (hyper, tower
/// services). A key already there is kept, so a caller can choose its own;
/// the count is replaced.
///
/// The `llm_resilience::tower` layer and the
/// `llm_resilience::reqwest_middleware` middleware call it on every attempt;
/// reqwest's builder has `RequestBuilderExt::retry_headers` (feature
/// `reqwest`).
///
/// ```
/// use std::io;
/// use http::Request;
/// use llm_resilience::http::insert_retry_headers;
/// use llm_resilience::{Policy, Wait};
///
/// let mut sent = Vec::new();
/// let _: Result<(), io::Error> = Policy::new().wait(Wait::none()).call(|| {
///     let mut request = Request::post("https://api.openai.com/v1/chat/completions")
///         .body(String::from("{}"))
///         .unwrap();
///     insert_retry_headers(request.headers_mut());
///     sent.push(request);
///     Err(io::ErrorKind::ConnectionReset.into())
/// });
/// assert_eq!(sent[0].headers()["idempotency-key"], sent[2].headers()["idempotency-key"]);
/// assert_eq!(sent[2].headers()["x-retry-count"], "2");
/// ```
pub fn insert_retry_headers(headers: &mut HeaderMap) {
    const KEY: HeaderName = HeaderName::from_static(IDEMPOTENCY_HEADER);
    const COUNT: HeaderName = HeaderName::from_static(ATTEMPT_HEADER);
    let current = attempt();
    if !headers.contains_key(&KEY) {
        // The key is ASCII hex and hyphens: always a valid header value.
        if let Ok(key) = HeaderValue::from_bytes(&current.idempotency_key().to_bytes()) {
            headers.insert(KEY, key);
        }
    }
    let retries = match current.number().saturating_sub(1) {
        // The counts of almost every call, without allocating.
        n @ 0..=9 => {
            HeaderValue::from_static(["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"][n as usize])
        }
        n => HeaderValue::from(n),
    };
    headers.insert(COUNT, retries);
}
