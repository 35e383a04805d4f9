//! The rate limits a provider announces on its answers, and feeding them to
//! the limiter of the call that received them.

use std::time::{Duration, SystemTime};

use http::HeaderMap;

use super::hints;

/// One announced limit: OpenAI's `x-ratelimit-{limit,remaining,reset}-NAME`
/// or Anthropic's `anthropic-ratelimit-NAME-{limit,remaining,reset}`. Each
/// part is `None` when its header is missing or cannot be read; numbers too
/// large for their type saturate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Quota {
    /// The limit, per minute (`x-ratelimit-limit-requests: 6000`).
    pub limit: Option<u64>,
    /// What is left of it now.
    pub remaining: Option<u64>,
    /// How long until it is whole again: OpenAI sends a duration (`6m0s`,
    /// `20ms`), Anthropic an RFC 3339 time, read against the system clock.
    pub reset: Option<Duration>,
}

impl Quota {
    fn is_empty(&self) -> bool {
        self.limit.is_none() && self.remaining.is_none() && self.reset.is_none()
    }
}

/// The limits a response announces on requests and on tokens (OpenAI's
/// `tokens`, Anthropic's `tokens`, else its `input-tokens`), as
/// [`announced`] reads them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Announced {
    /// Requests per minute.
    pub requests: Option<Quota>,
    /// Tokens per minute.
    pub tokens: Option<Quota>,
}

/// Read the rate limits a response announces, in OpenAI's form or
/// Anthropic's. Providers send them on every answer, successes included, so
/// a client that reads them can pace before it is ever refused.
///
/// ```
/// use std::time::Duration;
/// use http::{HeaderMap, HeaderValue};
/// use llm_resilience::http::{announced, Quota};
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-ratelimit-limit-requests", HeaderValue::from_static("6000"));
/// headers.insert("x-ratelimit-remaining-requests", HeaderValue::from_static("5999"));
/// headers.insert("x-ratelimit-reset-requests", HeaderValue::from_static("10ms"));
/// let limits = announced(&headers);
/// assert_eq!(
///     limits.requests,
///     Some(Quota { limit: Some(6000), remaining: Some(5999), reset: Some(Duration::from_millis(10)) })
/// );
/// assert_eq!(limits.tokens, None);
/// ```
pub fn announced(headers: &HeaderMap) -> Announced {
    // Most answers of most servers announce nothing: one pass over the
    // names says so, before fifteen lookups.
    let announces = headers.keys().any(|name| {
        let name = name.as_str();
        name.starts_with("x-ratelimit-") || name.starts_with("anthropic-ratelimit-")
    });
    if !announces {
        return Announced::default();
    }
    let count = |name: &str| hints::header_str(headers, name).and_then(hints::parse_count);
    // The header names are spelled out, not formatted: this runs on every
    // answer, successes included, and must not allocate.
    let openai = |[limit, remaining, reset]: [&str; 3]| Quota {
        limit: count(limit),
        remaining: count(remaining),
        reset: hints::header_str(headers, reset).and_then(hints::parse_go_duration),
    };
    let anthropic = |[limit, remaining, reset]: [&str; 3]| Quota {
        limit: count(limit),
        remaining: count(remaining),
        reset: hints::header_str(headers, reset)
            .and_then(hints::parse_rfc3339)
            .map(|at| hints::until(at, SystemTime::now())),
    };
    let first = |quotas: &[Quota]| quotas.iter().copied().find(|q| !q.is_empty());
    Announced {
        requests: first(&[
            openai([
                "x-ratelimit-limit-requests",
                "x-ratelimit-remaining-requests",
                "x-ratelimit-reset-requests",
            ]),
            anthropic([
                "anthropic-ratelimit-requests-limit",
                "anthropic-ratelimit-requests-remaining",
                "anthropic-ratelimit-requests-reset",
            ]),
        ]),
        tokens: first(&[
            openai([
                "x-ratelimit-limit-tokens",
                "x-ratelimit-remaining-tokens",
                "x-ratelimit-reset-tokens",
            ]),
            anthropic([
                "anthropic-ratelimit-tokens-limit",
                "anthropic-ratelimit-tokens-remaining",
                "anthropic-ratelimit-tokens-reset",
            ]),
            anthropic([
                "anthropic-ratelimit-input-tokens-limit",
                "anthropic-ratelimit-input-tokens-remaining",
                "anthropic-ratelimit-input-tokens-reset",
            ]),
        ]),
    }
}

/// Feed the limits a response announces to the
/// [`AdaptiveLimiter`](crate::AdaptiveLimiter) of the call whose attempt is
/// running on this thread (`#[retry(limiter = ...)]`, or
/// [`Policy::limiter`](crate::Policy::limiter)), if it has one: the
/// announced limit caps its rate
/// ([`observe_limit`](crate::AdaptiveLimiter::observe_limit)), an exhausted
/// budget holds it back until its reset
/// ([`observe_remaining`](crate::AdaptiveLimiter::observe_remaining)), and
/// an announced token limit paces the calls that state their cost
/// ([`observe_token_limit`](crate::AdaptiveLimiter::observe_token_limit)).
/// Outside such a call, or without a limiter, it does nothing and reads no
/// header.
///
/// [`check`](super::check) calls it on every response; call it yourself
/// with the headers of responses from another client.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use llm_resilience::{http::observe, AdaptiveLimiter, Policy};
///
/// static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new();
///
/// let mut headers = HeaderMap::new();
/// headers.insert("anthropic-ratelimit-requests-limit", HeaderValue::from_static("1200"));
/// let reply: std::io::Result<&str> = Policy::new().limiter(&LIMITER).call(|| {
///     observe(&headers); // what the provider's answer said
///     Ok("answer")
/// });
/// assert_eq!(reply.unwrap(), "answer");
/// assert_eq!(LIMITER.rate(), Some(19.0)); // 1200 a minute, less 5 % headroom
/// ```
pub fn observe(headers: &HeaderMap) {
    crate::engine::attempt::with_limiter(|limiter| {
        if !limiter.learns_now() {
            return;
        }
        let limits = announced(headers);
        if let Some(tokens) = limits.tokens {
            if let Some(limit) = tokens.limit {
                limiter.observe_token_limit(limit, tokens.remaining);
            }
        }
        let Some(requests) = limits.requests else {
            return;
        };
        if let Some(limit) = requests.limit {
            limiter.observe_limit(limit);
        }
        if let (Some(remaining), Some(reset)) = (requests.remaining, requests.reset) {
            limiter.observe_remaining(remaining, reset);
        }
    });
}
