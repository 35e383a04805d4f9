//! Fuzz the classification of provider responses: any status, any header
//! names and values, any body bytes. Nothing may panic, every wait read from
//! the headers is positive and at most a year, and an `HttpError` built
//! from the response agrees with `classify_response`.
//!
//! ```sh
//! cargo install cargo-fuzz
//! cd fuzz && cargo +nightly fuzz run classify
//! ```
#![no_main]

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use libfuzzer_sys::fuzz_target;
use llm_resilience::http::{classify_response, requests_remaining, retry_after, HttpError};
use llm_resilience::Classify;

/// The headers classification reads, so that random input reaches them.
const NAMES: &[&str] = &[
    "retry-after",
    "retry-after-ms",
    "x-should-retry",
    "x-request-id",
    "request-id",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-reset-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-tokens",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-reset",
];

const YEAR: Duration = Duration::from_secs(366 * 24 * 3600);

fuzz_target!(|data: &[u8]| {
    // Layout: 2 bytes of status, then records of [name index, value length,
    // value bytes...], then the rest is the body.
    if data.len() < 2 {
        return;
    }
    let status = 100 + u16::from_le_bytes([data[0], data[1]]) % 900;
    let Ok(status) = StatusCode::from_u16(status) else {
        return;
    };
    let mut headers = HeaderMap::new();
    let mut rest = &data[2..];
    while rest.len() >= 2 && rest[0] < 0x80 {
        let name = NAMES[usize::from(rest[0]) % NAMES.len()];
        let len = usize::from(rest[1]).min(rest.len() - 2);
        if let Ok(value) = HeaderValue::from_bytes(&rest[2..2 + len]) {
            headers.append(HeaderName::from_static(name), value);
        }
        rest = &rest[2 + len..];
    }
    let body = rest;

    let kind = classify_response(status, &headers, body);
    if let Some(wait) = retry_after(status, &headers) {
        assert!(!wait.is_zero() && wait <= YEAR, "{wait:?}");
    }
    let _ = requests_remaining(&headers);
    let error = HttpError::from_response(status, &headers, body);
    assert_eq!(error.kind(), kind);
    let _ = error.to_string();
});
