//! Property tests: no header or body bytes make classification panic, and no
//! garbage shortens a wait.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use llm_resilience::http::{classify_response, requests_remaining, retry_after, HttpError};
use llm_resilience::{Classify, ErrorKind};
use proptest::prelude::*;

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
    "anthropic-ratelimit-tokens-reset",
];

fn headers_from(pairs: &[(usize, Vec<u8>)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        // Header values cannot hold control bytes; whatever else arrives on
        // the wire is fair game.
        if let Ok(value) = HeaderValue::from_bytes(value) {
            map.append(HeaderName::from_static(NAMES[name % NAMES.len()]), value);
        }
    }
    map
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_bytes_classify_without_panicking(
        status in 100u16..1000,
        pairs in proptest::collection::vec((0usize..64, proptest::collection::vec(any::<u8>(), 0..48)), 0..8),
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let status = StatusCode::from_u16(status).unwrap();
        let headers = headers_from(&pairs);
        let kind = classify_response(status, &headers, &body);
        let error = HttpError::from_response(status, &headers, &body);
        prop_assert_eq!(error.kind(), kind);
        if let Some((_, reset)) = requests_remaining(&headers) {
            // Feeding any budget read from the wire to a limiter is safe.
            llm_resilience::AdaptiveLimiter::new().observe_remaining(0, reset);
        }
        let _ = error.to_string();
        if let Some(wait) = Classify::retry_after(&error) {
            prop_assert!(wait > Duration::ZERO);
        }
        if status.is_success() {
            // 2xx is not an error at all; the table only covers failures.
            let _ = kind;
        } else if (500..600).contains(&status.as_u16()) && !headers.contains_key("x-should-retry") {
            prop_assert!(kind.is_transient());
        }
    }

    #[test]
    fn json_like_bodies_never_panic(body in "\\{\"(error|type|code)\": ?(\\{\"(type|code)\": ?\"[a-z_]{0,30}\"\\}|\"[a-z_]{0,30}\"|[0-9]+|null)\\}") {
        let kind = classify_response(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), body.as_bytes());
        prop_assert!(matches!(kind, ErrorKind::RateLimit | ErrorKind::Quota));
    }

    #[test]
    fn valid_seconds_are_never_undercut(secs in 1u32..100_000, frac in 0u32..1000) {
        let mut headers = HeaderMap::new();
        let text = format!("{secs}.{frac:03}");
        headers.insert("retry-after", HeaderValue::from_str(&text).unwrap());
        let wait = retry_after(StatusCode::SERVICE_UNAVAILABLE, &headers).unwrap();
        let asked = Duration::from_secs(u64::from(secs)) + Duration::from_millis(u64::from(frac));
        prop_assert!(wait >= asked - Duration::from_nanos(1), "{text}: {wait:?}");
    }

    #[test]
    fn garbage_retry_after_falls_back_to_ms_header(garbage in "[^0-9]{1,12}", ms in 1u32..10_000) {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(&garbage) {
            headers.insert("retry-after", value);
        }
        headers.insert("retry-after-ms", HeaderValue::from(ms));
        prop_assert_eq!(
            retry_after(StatusCode::TOO_MANY_REQUESTS, &headers),
            Some(Duration::from_millis(u64::from(ms)))
        );
    }
}

#[test]
fn status_table() {
    let cases = [
        (408, ErrorKind::Timeout),
        (409, ErrorKind::Server),
        (429, ErrorKind::RateLimit),
        (500, ErrorKind::Server),
        (502, ErrorKind::Server),
        (504, ErrorKind::Server),
        (599, ErrorKind::Server),
        (503, ErrorKind::Overloaded),
        (529, ErrorKind::Overloaded),
        (401, ErrorKind::Auth),
        (403, ErrorKind::Auth),
        (400, ErrorKind::Client),
        (404, ErrorKind::Client),
        (422, ErrorKind::Client),
    ];
    for (status, kind) in cases {
        let status = StatusCode::from_u16(status).unwrap();
        assert_eq!(
            classify_response(status, &HeaderMap::new(), b""),
            kind,
            "{status}"
        );
    }
}

#[test]
fn quota_bodies_and_should_retry_override() {
    let openai = br#"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#;
    let anthropic = br#"{"type":"error","error":{"type":"enforced_spend_limit_reached","message":"spend limit"}}"#;
    let plain = br#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#;
    let s429 = StatusCode::TOO_MANY_REQUESTS;
    assert_eq!(
        classify_response(s429, &HeaderMap::new(), openai),
        ErrorKind::Quota
    );
    assert_eq!(
        classify_response(s429, &HeaderMap::new(), anthropic),
        ErrorKind::Quota
    );
    assert_eq!(
        classify_response(s429, &HeaderMap::new(), plain),
        ErrorKind::RateLimit
    );

    let mut no = HeaderMap::new();
    no.insert("x-should-retry", HeaderValue::from_static("false"));
    assert_eq!(
        classify_response(StatusCode::BAD_GATEWAY, &no, b""),
        ErrorKind::Client
    );
    let mut yes = HeaderMap::new();
    yes.insert("x-should-retry", HeaderValue::from_static("true"));
    assert_eq!(
        classify_response(StatusCode::BAD_REQUEST, &yes, b""),
        ErrorKind::Server
    );
    assert_eq!(
        classify_response(StatusCode::TOO_MANY_REQUESTS, &yes, b""),
        ErrorKind::RateLimit
    );
}
