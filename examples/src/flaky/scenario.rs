//! What the flaky provider does wrong, and when.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::limits::{Announce, Limits};

/// How long a client should wait, in one of the forms real providers use on a
/// `429 Too Many Requests`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RetryAfter {
    /// No hint at all: the client has to pick its own backoff.
    None,
    /// `retry-after-ms: 50` (OpenAI); may be fractional, e.g. `50.5`.
    Millis(f64),
    /// `retry-after: 1`, or with a fraction, `retry-after: 0.25`.
    Seconds(f64),
    /// `retry-after: <IMF-fixdate>` this far in the future. HTTP dates have a
    /// one-second resolution: the date is rounded *up* to the next whole
    /// second, so the client waits at least this long (and up to 1 s more).
    HttpDate(Duration),
    /// No `retry-after`; instead OpenAI's `x-ratelimit-reset-requests` as a Go
    /// duration (`"20ms"`, `"1s"`, `"6m0s"`) with
    /// `x-ratelimit-remaining-requests: 0`.
    OpenAiReset(Duration),
    /// No `retry-after`; instead Anthropic's
    /// `anthropic-ratelimit-requests-reset: <RFC 3339 time>` (UTC, with
    /// milliseconds when the instant is not a whole second, e.g.
    /// `2025-01-01T12:00:00.250Z`) and `anthropic-ratelimit-requests-remaining: 0`.
    /// The body is Anthropic's `rate_limit_error` shape.
    AnthropicReset(Duration),
}

/// Which provider's "you are out of money" error a quota fault imitates.
/// Both are HTTP 429 and must not be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaStyle {
    /// OpenAI: `{"error": {"type": "insufficient_quota", "code": "insufficient_quota", ..}}`.
    OpenAi,
    /// Anthropic: `{"type": "error", "error": {"type": "enforced_spend_limit_reached", ..}}`.
    Anthropic,
}

/// One way a streamed answer (a request with `"stream": true`) goes wrong
/// after its `200 OK` and headers are sent.
///
/// "After `after` content events" counts the events that carry a piece of
/// the answer (OpenAI's chunks with `delta.content`, Anthropic's
/// `content_block_delta`s); the events before the first one (OpenAI's role
/// chunk; Anthropic's `message_start`, `content_block_start` and a `ping`)
/// are sent first, except where a variant says otherwise. An answer with
/// fewer tokens than `after` is sent whole, and the fault comes before its
/// terminal marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamFault {
    /// After `after` content events, an error event in the request's
    /// format, and the body ends. Its error is the one the provider sends
    /// with `status`: 529 (and 503 for Anthropic) `overloaded_error`, 429
    /// `rate_limit_error`/`rate_limit_exceeded`, 500 `api_error`/`server_error`,
    /// 400 `invalid_request_error`, 401 `authentication_error`/`invalid_api_key`,
    /// ... With `after: 0` the error event is the body's first event.
    ErrorEvent {
        /// Content events sent before the error.
        after: u32,
        /// The HTTP status whose error the event carries.
        status: u16,
    },
    /// After `after` content events (with `after: 0`, before the first
    /// event of all), nothing is sent for `stall`; then the answer goes on to
    /// its end.
    Stall {
        /// Content events sent before the stall.
        after: u32,
        /// How long nothing is sent.
        stall: Duration,
    },
    /// After `after` content events the body ends cleanly, without the rest
    /// of the answer and without the terminal marker (`data: [DONE]`,
    /// `event: message_stop`).
    EndEarly {
        /// Content events sent before the end.
        after: u32,
    },
    /// After `after` content events the connection is cut: the chunked body
    /// is never finished, which a client reads as a transport error.
    Drop {
        /// Content events sent before the cut.
        after: u32,
    },
    /// This long before every content event; the answer is complete.
    SlowTokens(Duration),
}

/// One way an attempt can go wrong.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fault {
    /// `429` rate limit, with the wait hint in the given form.
    RateLimit(RetryAfter),
    /// `429` out of quota (not retryable).
    Quota(QuotaStyle),
    /// An error status with the provider's body for it: 500, 502, 503, 504,
    /// 529 (Anthropic `overloaded_error`), 400, 401, 403, 408, 409; any other
    /// code gets a generic OpenAI-shaped body.
    Status(u16),
    /// The request is processed (billed, and its response stored under its
    /// idempotency key) at once, but the answer is only sent after this
    /// long, past the client's timeout.
    Slow(Duration),
    /// The request is processed (billed, response stored) and then the
    /// connection is closed without any answer.
    DropAfterProcessing,
    /// The work itself takes this long: the request is billed at once, but
    /// its idempotency key stays *in progress* until the work is done (a
    /// request with the same key meanwhile gets `409`), then the response is
    /// stored and sent. Unlike [`Fault::Slow`], a client that times out and
    /// retries with the same key sees `409` until the work is finished.
    SlowProcessing(Duration),
    /// A fault of the streamed answer, after the `200`: the request is
    /// processed and billed, and its answer stored under its idempotency key
    /// (except after an [`ErrorEvent`](StreamFault::ErrorEvent): the work
    /// failed, so a retry with the same key is processed, and billed, again).
    /// Applies to requests with `"stream": true` only; any other request
    /// meets it as a success.
    Stream(StreamFault),
}

impl Fault {
    /// The name the fault is counted under in [`Stats::faults`](super::Stats::faults):
    /// `"429"`, `"429_retry_after_ms"`, `"429_retry_after_seconds"`,
    /// `"429_retry_after_date"`, `"429_openai_reset"`, `"429_anthropic_reset"`,
    /// `"quota_openai"`, `"quota_anthropic"`, the status code (`"503"`),
    /// `"slow"`, `"drop"` or `"slow_processing"`, and for stream faults
    /// `"stream_error"`, `"stream_stall"`, `"stream_truncated"`,
    /// `"stream_drop"` or `"stream_slow"`. Refusals by a token bucket are
    /// counted as `"token_bucket"`.
    pub fn name(&self) -> String {
        match self {
            Fault::RateLimit(RetryAfter::None) => "429".into(),
            Fault::RateLimit(RetryAfter::Millis(_)) => "429_retry_after_ms".into(),
            Fault::RateLimit(RetryAfter::Seconds(_)) => "429_retry_after_seconds".into(),
            Fault::RateLimit(RetryAfter::HttpDate(_)) => "429_retry_after_date".into(),
            Fault::RateLimit(RetryAfter::OpenAiReset(_)) => "429_openai_reset".into(),
            Fault::RateLimit(RetryAfter::AnthropicReset(_)) => "429_anthropic_reset".into(),
            Fault::Quota(QuotaStyle::OpenAi) => "quota_openai".into(),
            Fault::Quota(QuotaStyle::Anthropic) => "quota_anthropic".into(),
            Fault::Status(code) => code.to_string(),
            Fault::Slow(_) => "slow".into(),
            Fault::DropAfterProcessing => "drop".into(),
            Fault::SlowProcessing(_) => "slow_processing".into(),
            Fault::Stream(StreamFault::ErrorEvent { .. }) => "stream_error".into(),
            Fault::Stream(StreamFault::Stall { .. }) => "stream_stall".into(),
            Fault::Stream(StreamFault::EndEarly { .. }) => "stream_truncated".into(),
            Fault::Stream(StreamFault::Drop { .. }) => "stream_drop".into(),
            Fault::Stream(StreamFault::SlowTokens(_)) => "stream_slow".into(),
        }
    }
}

/// When the provider fails, and how.
#[derive(Debug, Clone, PartialEq)]
pub enum Scenario {
    /// Never fails.
    Healthy,
    /// Each *logical* request fails its first `failures` attempts with
    /// `fault`, then succeeds. A logical request is identified by its
    /// `Idempotency-Key` header, else by the `user` field of the JSON body,
    /// else every request is its own logical request.
    FailFirst {
        /// How many attempts of each logical request fail.
        failures: u32,
        /// How they fail.
        fault: Fault,
    },
    /// Every attempt fails with this fault.
    Always(Fault),
    /// An outage: every attempt that arrives from `from` (since the server
    /// started) for `down_for` fails with `fault`; every other succeeds.
    Outage {
        /// When the outage begins, since the server started.
        from: Duration,
        /// How long it lasts.
        down_for: Duration,
        /// How attempts fail meanwhile (a `503`, say).
        fault: Fault,
    },
    /// A token bucket: `rate` tokens per second, holding at most `burst`
    /// (full at start). A request that finds no token gets `429` with
    /// `retry-after: N`, N the whole seconds until the next token (at least
    /// 1), and `x-ratelimit-remaining-requests: 0`.
    TokenBucket {
        /// Tokens added per second.
        rate: f64,
        /// Size of the bucket.
        burst: u32,
    },
    /// Rate limits as providers enforce them (see [`Limits`]): a requests
    /// bucket whose rate may change on a schedule, an optional
    /// tokens-per-minute bucket (each request costs its
    /// [`request_tokens`](super::request_tokens)), and, if asked, the
    /// provider's rate-limit headers on every answer, successes included.
    /// A request refused for want of requests gets `429` with
    /// `retry-after: N` (whole seconds until the next one, at least 1); one
    /// refused for want of tokens while requests remain gets `429` with
    /// `"code": "rate_limit_exceeded"`, a message about tokens per min, and
    /// `retry-after` until enough tokens are back. Refusals are counted in
    /// [`Stats::faults`](super::Stats::faults) as `"token_bucket"` and
    /// `"tokens_per_minute"`. Without a schedule, a token limit or
    /// announcements, the same as [`Scenario::TokenBucket`].
    Limited(Limits),
    /// Each attempt fails with probability `fault_rate`, with a fault drawn
    /// from a mix: `429` in every wait-hint form (10–100 ms, or 1 s for an
    /// HTTP date), 500, 502, 503, 529, a 3 s slow answer, a dropped
    /// connection, and rarely (1 in 50 faults each) a 400 or a quota 429.
    /// The same seed gives the same sequence of decisions.
    Chaos {
        /// Seed of the random number generator.
        seed: u64,
        /// Probability that an attempt fails, 0.0 to 1.0.
        fault_rate: f64,
    },
    /// Like [`Scenario::Chaos`], for streamed calls: each attempt fails with
    /// probability `fault_rate`, with a fault drawn evenly from a mix that
    /// holds every [`StreamFault`] that breaks a stream and the HTTP faults
    /// that come before one: an error event as the first event (`529`
    /// overloaded, or a `429` rate limit), an error event (`500`) after 1 to
    /// 4 content events, a 3 s stall before the first event or after 1 to 4
    /// content events, an end without the terminal marker after 1 to 4
    /// content events, a connection cut before the first content event or
    /// after 1 to 4, and before any stream a `429` with `retry-after-ms`
    /// (10–100 ms), a `503`, a `529` or a connection dropped after
    /// processing. A request without `"stream": true` meets a stream fault
    /// as a success. The same seed gives the same sequence of decisions.
    StreamChaos {
        /// Seed of the random number generator.
        seed: u64,
        /// Probability that an attempt fails, 0.0 to 1.0.
        fault_rate: f64,
    },
}

/// The names [`Scenario::from_name`] knows, in a sensible order for help text.
const NAMES: &[&str] = &[
    "healthy",
    "chaos",
    "rate-limit",
    "announced-limits",
    "retry-after-ms",
    "retry-after-seconds",
    "retry-after-date",
    "reset-headers",
    "quota",
    "500",
    "503",
    "529",
    "400",
    "401",
    "slow",
    "drop",
    "outage",
    "stream-error-first",
    "stream-error-mid",
    "stream-stall-first",
    "stream-stall-mid",
    "stream-truncated",
    "stream-drop",
    "stream-slow",
    "stream-chaos",
];

impl Scenario {
    /// The scenario with this name (see [`Scenario::names`]), as used by a
    /// `--scenario` flag:
    ///
    /// | name | scenario |
    /// | --- | --- |
    /// | `healthy` | [`Scenario::Healthy`] |
    /// | `chaos` | [`Scenario::Chaos`], seed 42, fault rate 0.3 |
    /// | `rate-limit` | [`Scenario::TokenBucket`], 100/s, burst 20 |
    /// | `announced-limits` | [`Scenario::Limited`], 100/s, burst 20, OpenAI's headers on every answer |
    /// | `retry-after-ms` | 2 × 429 `retry-after-ms: 50` |
    /// | `retry-after-seconds` | 2 × 429 `retry-after: 1` |
    /// | `retry-after-date` | 2 × 429 `retry-after: <HTTP date 1 s ahead>` |
    /// | `reset-headers` | 2 × 429 `x-ratelimit-reset-requests: 20ms` |
    /// | `quota` | 2 × OpenAI `insufficient_quota` 429 |
    /// | `500`, `503`, `529`, `400`, `401` | 2 × that status |
    /// | `slow` | 2 × answered after 3 s |
    /// | `drop` | 2 × connection dropped after processing |
    /// | `outage` | [`Scenario::Always`] `503`: a provider that is down |
    /// | `stream-error-first` | 2 × an `overloaded_error` event (529) as the first event of a `200` stream |
    /// | `stream-error-mid` | 2 × an `api_error`/`server_error` event (500) after 3 content events |
    /// | `stream-stall-first` | 2 × nothing for 3 s before the first event |
    /// | `stream-stall-mid` | 2 × nothing for 3 s after 3 content events |
    /// | `stream-truncated` | 2 × the body ends after 3 content events, without its terminal marker |
    /// | `stream-drop` | 2 × the connection is cut after 3 content events |
    /// | `stream-slow` | [`Scenario::Always`] 50 ms before every content event |
    /// | `stream-chaos` | [`Scenario::StreamChaos`], seed 42, fault rate 0.4 |
    ///
    /// "2 ×" means [`Scenario::FailFirst`] with `failures: 2`: every logical
    /// request recovers on its third attempt (on its second for `slow`,
    /// `drop` and the stream faults other than error events when it carries
    /// an `Idempotency-Key`, as the stored answer is replayed). Only `outage`
    /// fails every attempt. The `stream-*` faults (but `stream-chaos`, a mix) ([`Fault::Stream`]) hit
    /// streamed requests only; the others hit every request, streamed or
    /// not, before its stream starts.
    pub fn from_name(name: &str) -> Option<Scenario> {
        let fail_twice = |fault| Scenario::FailFirst { failures: 2, fault };
        Some(match name {
            "healthy" => Scenario::Healthy,
            "chaos" => Scenario::Chaos {
                seed: 42,
                fault_rate: 0.3,
            },
            "rate-limit" => Scenario::TokenBucket {
                rate: 100.0,
                burst: 20,
            },
            "announced-limits" => {
                Scenario::Limited(Limits::requests(100.0, 20).announce(Announce::OpenAi))
            }
            "retry-after-ms" => fail_twice(Fault::RateLimit(RetryAfter::Millis(50.0))),
            "retry-after-seconds" => fail_twice(Fault::RateLimit(RetryAfter::Seconds(1.0))),
            "retry-after-date" => fail_twice(Fault::RateLimit(RetryAfter::HttpDate(
                Duration::from_secs(1),
            ))),
            "reset-headers" => fail_twice(Fault::RateLimit(RetryAfter::OpenAiReset(
                Duration::from_millis(20),
            ))),
            "quota" => fail_twice(Fault::Quota(QuotaStyle::OpenAi)),
            "500" => fail_twice(Fault::Status(500)),
            "503" => fail_twice(Fault::Status(503)),
            "529" => fail_twice(Fault::Status(529)),
            "400" => fail_twice(Fault::Status(400)),
            "401" => fail_twice(Fault::Status(401)),
            "slow" => fail_twice(Fault::Slow(Duration::from_secs(3))),
            "drop" => fail_twice(Fault::DropAfterProcessing),
            "outage" => Scenario::Always(Fault::Status(503)),
            "stream-error-first" => fail_twice(Fault::Stream(StreamFault::ErrorEvent {
                after: 0,
                status: 529,
            })),
            "stream-error-mid" => fail_twice(Fault::Stream(StreamFault::ErrorEvent {
                after: 3,
                status: 500,
            })),
            "stream-stall-first" => fail_twice(Fault::Stream(StreamFault::Stall {
                after: 0,
                stall: STREAM_STALL,
            })),
            "stream-stall-mid" => fail_twice(Fault::Stream(StreamFault::Stall {
                after: 3,
                stall: STREAM_STALL,
            })),
            "stream-truncated" => fail_twice(Fault::Stream(StreamFault::EndEarly { after: 3 })),
            "stream-drop" => fail_twice(Fault::Stream(StreamFault::Drop { after: 3 })),
            "stream-slow" => Scenario::Always(Fault::Stream(StreamFault::SlowTokens(
                Duration::from_millis(50),
            ))),
            "stream-chaos" => Scenario::StreamChaos {
                seed: 42,
                fault_rate: 0.4,
            },
            _ => return None,
        })
    }

    /// Every name [`Scenario::from_name`] accepts.
    pub fn names() -> &'static [&'static str] {
        NAMES
    }
}

/// The error of parsing an unknown scenario name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownScenario(pub String);

impl fmt::Display for UnknownScenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown scenario {:?}; expected one of: {}",
            self.0,
            NAMES.join(", ")
        )
    }
}

impl std::error::Error for UnknownScenario {}

impl FromStr for Scenario {
    type Err = UnknownScenario;

    /// Same as [`Scenario::from_name`], with an error that lists the names.
    fn from_str(name: &str) -> Result<Scenario, UnknownScenario> {
        Scenario::from_name(name).ok_or_else(|| UnknownScenario(name.to_owned()))
    }
}

/// How long the named stream stalls send nothing: past a typical client
/// idle timeout.
const STREAM_STALL: Duration = Duration::from_secs(3);

/// How long a chaos `Slow` fault holds its answer: past a typical client
/// timeout.
pub(crate) const CHAOS_SLOW: Duration = Duration::from_secs(3);

/// One fault from the chaos mix.
pub(crate) fn chaos_fault(rng: &mut fastrand::Rng) -> Fault {
    // 1 in 50: a 400; 1 in 50: a quota 429; the rest spread evenly.
    match rng.u32(0..50) {
        0 => return Fault::Status(400),
        1 => {
            return Fault::Quota(if rng.bool() {
                QuotaStyle::OpenAi
            } else {
                QuotaStyle::Anthropic
            })
        }
        _ => {}
    }
    let small = |rng: &mut fastrand::Rng| Duration::from_millis(rng.u64(10..=100));
    match rng.u32(0..12) {
        0 => Fault::RateLimit(RetryAfter::None),
        1 => {
            // Sometimes fractional, as OpenAI sends it.
            let ms = rng.u32(10..=100) as f64;
            Fault::RateLimit(RetryAfter::Millis(if rng.bool() { ms } else { ms + 0.5 }))
        }
        2 => Fault::RateLimit(RetryAfter::Seconds(rng.u32(10..=100) as f64 / 1000.0)),
        3 => Fault::RateLimit(RetryAfter::HttpDate(Duration::from_secs(1))),
        4 => Fault::RateLimit(RetryAfter::OpenAiReset(small(rng))),
        5 => Fault::RateLimit(RetryAfter::AnthropicReset(small(rng))),
        6 => Fault::Status(500),
        7 => Fault::Status(502),
        8 => Fault::Status(503),
        9 => Fault::Status(529),
        10 => Fault::Slow(CHAOS_SLOW),
        _ => Fault::DropAfterProcessing,
    }
}

/// One fault from the stream chaos mix (see [`Scenario::StreamChaos`]).
pub(crate) fn stream_chaos_fault(rng: &mut fastrand::Rng) -> Fault {
    let mid = |rng: &mut fastrand::Rng| rng.u32(1..=4);
    let stream = Fault::Stream;
    match rng.u32(0..12) {
        0 => stream(StreamFault::ErrorEvent {
            after: 0,
            status: 529,
        }),
        1 => stream(StreamFault::ErrorEvent {
            after: 0,
            status: 429,
        }),
        2 => stream(StreamFault::ErrorEvent {
            after: mid(rng),
            status: 500,
        }),
        3 => stream(StreamFault::Stall {
            after: 0,
            stall: STREAM_STALL,
        }),
        4 => stream(StreamFault::Stall {
            after: mid(rng),
            stall: STREAM_STALL,
        }),
        5 => stream(StreamFault::EndEarly { after: mid(rng) }),
        6 => stream(StreamFault::Drop { after: 0 }),
        7 => stream(StreamFault::Drop { after: mid(rng) }),
        8 => Fault::RateLimit(RetryAfter::Millis(f64::from(rng.u32(10..=100)))),
        9 => Fault::Status(503),
        10 => Fault::Status(529),
        _ => Fault::DropAfterProcessing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_and_unknown_does_not() {
        for name in Scenario::names() {
            assert!(Scenario::from_name(name).is_some(), "{name}");
            assert!(name.parse::<Scenario>().is_ok());
        }
        assert_eq!(Scenario::from_name("nope"), None);
        let err = "nope".parse::<Scenario>().unwrap_err().to_string();
        assert!(err.contains("rate-limit"), "{err}");
    }

    #[test]
    fn outage_is_503_to_everything_and_the_recoverable_ones_are_not() {
        assert_eq!(
            Scenario::from_name("outage"),
            Some(Scenario::Always(Fault::Status(503)))
        );
        for name in ["500", "503", "529", "slow", "drop"].into_iter().chain(
            Scenario::names().iter().copied().filter(|n| {
                n.starts_with("stream-") && !["stream-slow", "stream-chaos"].contains(n)
            }),
        ) {
            assert!(
                matches!(
                    Scenario::from_name(name),
                    Some(Scenario::FailFirst { failures: 2, .. })
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn stream_names_are_stream_faults_with_distinct_names() {
        let stream: Vec<Fault> = Scenario::names()
            .iter()
            .filter(|n| n.starts_with("stream-") && **n != "stream-chaos")
            .map(|n| match Scenario::from_name(n) {
                Some(Scenario::FailFirst { fault, .. } | Scenario::Always(fault)) => fault,
                other => panic!("{n}: {other:?}"),
            })
            .collect();
        assert_eq!(stream.len(), 7);
        assert!(stream.iter().all(|f| matches!(f, Fault::Stream(_))));
        let names: std::collections::BTreeSet<String> = stream.iter().map(Fault::name).collect();
        assert_eq!(names.len(), 5, "{names:?}"); // two error events, two stalls
    }

    #[test]
    fn stream_chaos_holds_every_stream_fault_and_http_faults() {
        let mut rng = fastrand::Rng::with_seed(7);
        let faults: Vec<Fault> = (0..2000).map(|_| stream_chaos_fault(&mut rng)).collect();
        let mut again = fastrand::Rng::with_seed(7);
        assert!(faults.iter().all(|f| *f == stream_chaos_fault(&mut again)));
        let has = |want: &dyn Fn(&Fault) -> bool| faults.iter().any(want);
        use StreamFault as S;
        assert!(has(&|f| matches!(
            f,
            Fault::Stream(S::ErrorEvent { after: 0, .. })
        )));
        assert!(has(&|f| matches!(
            f,
            Fault::Stream(S::ErrorEvent { after: 1.., .. })
        )));
        assert!(has(&|f| matches!(
            f,
            Fault::Stream(S::Stall { after: 0, .. })
        )));
        assert!(has(&|f| matches!(
            f,
            Fault::Stream(S::Stall { after: 1.., .. })
        )));
        assert!(has(&|f| matches!(
            f,
            Fault::Stream(S::EndEarly { after: 1.. })
        )));
        assert!(has(&|f| matches!(f, Fault::Stream(S::Drop { after: 0 }))));
        assert!(has(&|f| matches!(f, Fault::Stream(S::Drop { after: 1.. }))));
        assert!(has(&|f| matches!(f, Fault::RateLimit(_))));
        assert!(has(&|f| matches!(f, Fault::Status(503))));
        assert!(has(&|f| matches!(f, Fault::DropAfterProcessing)));
        assert_eq!(
            Scenario::from_name("stream-chaos"),
            Some(Scenario::StreamChaos {
                seed: 42,
                fault_rate: 0.4
            })
        );
    }

    #[test]
    fn chaos_is_deterministic_and_mixed() {
        let draw = |seed| {
            let mut rng = fastrand::Rng::with_seed(seed);
            (0..2000).map(|_| chaos_fault(&mut rng)).collect::<Vec<_>>()
        };
        let a = draw(7);
        assert_eq!(a, draw(7));
        let names: std::collections::BTreeSet<String> = a.iter().map(Fault::name).collect();
        for want in [
            "429",
            "429_retry_after_ms",
            "429_retry_after_seconds",
            "429_retry_after_date",
            "429_openai_reset",
            "429_anthropic_reset",
            "500",
            "502",
            "503",
            "529",
            "slow",
            "drop",
            "400",
        ] {
            assert!(names.contains(want), "{want} missing from {names:?}");
        }
        assert!(names.iter().any(|n| n.starts_with("quota_")));
        let rare = a.iter().filter(|f| **f == Fault::Status(400)).count();
        assert!(rare < 100, "400 should be rare, got {rare}/2000");
    }
}
