//! Rate limits the provider enforces: a requests bucket whose rate may follow
//! a schedule, an optional tokens-per-minute bucket, and the headers that
//! announce both.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use super::format::{go_duration, later, rfc3339};
use super::responses::text_of;

/// The longest wait the provider ever announces: a day.
const MAX_WAIT_SECS: f64 = 86_400.0;

/// Which provider's rate-limit headers are sent on every answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Announce {
    /// None on successes; a refusal says `retry-after` and
    /// `x-ratelimit-remaining-requests: 0` only.
    #[default]
    None,
    /// OpenAI's: `x-ratelimit-limit-requests` (requests per minute),
    /// `x-ratelimit-remaining-requests` (whole requests left in the bucket),
    /// `x-ratelimit-reset-requests` (until the bucket is full again, as a Go
    /// duration: `20ms`, `1.5s`, `6m0s`), and the same three with `-tokens`
    /// when a [`TokenLimit`] is on.
    OpenAi,
    /// Anthropic's: `anthropic-ratelimit-requests-limit` (per minute),
    /// `-remaining`, `-reset` (the RFC 3339 UTC time it is full again), and
    /// `anthropic-ratelimit-input-tokens-{limit,remaining,reset}` when a
    /// [`TokenLimit`] is on. Refusals then have Anthropic's
    /// `rate_limit_error` body.
    Anthropic,
}

/// A tokens-per-minute limit: a second bucket that every request draws its
/// [`request_tokens`] from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenLimit {
    /// Tokens added per minute (`per_minute / 60` per second).
    pub per_minute: u64,
    /// Size of the bucket, full at start. A request that costs more is never
    /// admitted.
    pub burst: u64,
}

/// What a [`Scenario::Limited`](super::Scenario::Limited) provider enforces.
///
/// ```
/// use std::time::Duration;
/// use examples::flaky::{Announce, Limits};
///
/// // 100/s; 10/s from 5 s to 15 s; OpenAI's headers on every answer.
/// let limits = Limits::requests(100.0, 20)
///     .then(Duration::from_secs(5), 10.0)
///     .then(Duration::from_secs(15), 100.0)
///     .announce(Announce::OpenAi);
/// assert_eq!(limits.rate_at(Duration::from_secs(7)), 10.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Requests added to the bucket per second, until the first change of
    /// the [`schedule`](Limits::schedule).
    pub rate: f64,
    /// Size of the requests bucket, full at start.
    pub burst: u32,
    /// Changes of the rate: from each time (since the server started) on,
    /// the rate is the one paired with it. In any order; the bucket's size
    /// stays `burst`.
    pub schedule: Vec<(Duration, f64)>,
    /// An optional tokens-per-minute bucket.
    pub tokens: Option<TokenLimit>,
    /// Which headers announce the limits on every answer.
    pub announce: Announce,
}

impl Limits {
    /// `rate` requests per second from a bucket of `burst`, full at start;
    /// no schedule, no token limit, nothing announced.
    pub fn requests(rate: f64, burst: u32) -> Limits {
        Limits {
            rate,
            burst,
            schedule: Vec::new(),
            tokens: None,
            announce: Announce::None,
        }
    }

    /// From `at` (since the server started) on, `rate` requests per second.
    pub fn then(mut self, at: Duration, rate: f64) -> Limits {
        self.schedule.push((at, rate));
        self
    }

    /// Adds a bucket of `burst` tokens (full at start) refilled at
    /// `per_minute` tokens per minute.
    pub fn tokens_per_minute(mut self, per_minute: u64, burst: u64) -> Limits {
        self.tokens = Some(TokenLimit { per_minute, burst });
        self
    }

    /// Announces the limits on every answer, in `announce`'s form.
    pub fn announce(mut self, announce: Announce) -> Limits {
        self.announce = announce;
        self
    }

    /// The request rate at `t` since the server started: that of the latest
    /// schedule entry at or before `t`, else [`rate`](Limits::rate). A rate
    /// that is not a positive number counts as 0.
    pub fn rate_at(&self, t: Duration) -> f64 {
        let rate = self
            .schedule
            .iter()
            .filter(|(at, _)| *at <= t)
            .max_by_key(|(at, _)| *at)
            .map_or(self.rate, |(_, rate)| *rate);
        sane(rate)
    }

    /// Requests added to the bucket between `from` and `to`, following the
    /// schedule.
    fn refill(&self, from: Duration, to: Duration) -> f64 {
        let mut total = 0.0;
        let mut t = from;
        while t < to {
            let end = self
                .schedule
                .iter()
                .map(|(at, _)| *at)
                .filter(|at| *at > t && *at < to)
                .min()
                .unwrap_or(to);
            total += (end - t).as_secs_f64() * self.rate_at(t);
            t = end;
        }
        total
    }
}

/// A rate that is not a positive finite number counts as 0.
fn sane(rate: f64) -> f64 {
    if rate.is_finite() && rate > 0.0 {
        rate
    } else {
        0.0
    }
}

/// The tokens a chat request costs: a quarter of the characters of every
/// message's `content` (text parts included), rounded up, plus its
/// `max_tokens` (or `max_completion_tokens`) when present. Deterministic, so
/// a client can state the cost of a call before sending it; anything that is
/// not a chat request costs 0.
///
/// ```
/// use examples::flaky::request_tokens;
/// use serde_json::json;
///
/// let body = json!({
///     "messages": [{"role": "user", "content": "x".repeat(801)}],
///     "max_tokens": 50,
/// });
/// assert_eq!(request_tokens(&body), 201 + 50);
/// ```
pub fn request_tokens(body: &Value) -> u64 {
    let chars: u64 = body
        .get("messages")
        .and_then(Value::as_array)
        .map(|messages| {
            messages
                .iter()
                .map(|m| text_of(m.get("content")).chars().count() as u64)
                .fold(0u64, u64::saturating_add)
        })
        .unwrap_or(0);
    let completion = ["max_tokens", "max_completion_tokens"]
        .iter()
        .find_map(|name| body.get(*name).and_then(Value::as_u64))
        .unwrap_or(0);
    chars.div_ceil(4).saturating_add(completion)
}

/// Why the limits refused a request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Refusal {
    /// No request left; one comes back after `wait`.
    Requests { wait: Duration },
    /// Requests left, but not `cost` tokens: enough are back after `wait`.
    Tokens {
        wait: Duration,
        cost: u64,
        limit: u64,
    },
}

/// The buckets' levels.
pub(crate) struct Buckets {
    requests: f64,
    tokens: f64,
    last: Duration,
}

/// What the limits decided for one request.
pub(crate) struct Decision {
    /// `None` when admitted.
    pub refusal: Option<Refusal>,
    /// The announced headers (after this request), empty with
    /// [`Announce::None`].
    pub headers: Vec<(&'static str, String)>,
}

impl Buckets {
    /// Both buckets full, at time 0.
    pub fn new(limits: &Limits) -> Buckets {
        Buckets {
            requests: f64::from(limits.burst),
            tokens: limits.tokens.map_or(0.0, |t| t.burst as f64),
            last: Duration::ZERO,
        }
    }

    /// Refills both buckets up to `now` (since the server started), then
    /// takes one request and `cost` tokens, or refuses.
    pub fn take(
        &mut self,
        limits: &Limits,
        now: Duration,
        cost: u64,
        wall: SystemTime,
    ) -> Decision {
        if now > self.last {
            let burst = f64::from(limits.burst);
            self.requests = (self.requests + limits.refill(self.last, now)).min(burst);
            if let Some(t) = limits.tokens {
                let added = (now - self.last).as_secs_f64() * t.per_minute as f64 / 60.0;
                self.tokens = (self.tokens + added).min(t.burst as f64);
            }
            self.last = now;
        }
        let rate = limits.rate_at(now);
        let token_rate = limits.tokens.map_or(0.0, |t| t.per_minute as f64 / 60.0);
        let refusal = if self.requests < 1.0 {
            Some(Refusal::Requests {
                wait: wait(1.0 - self.requests, rate),
            })
        } else {
            match limits.tokens {
                Some(t) if self.tokens < cost as f64 => Some(Refusal::Tokens {
                    wait: wait(cost as f64 - self.tokens, token_rate),
                    cost,
                    limit: t.per_minute,
                }),
                _ => None,
            }
        };
        if refusal.is_none() {
            self.requests -= 1.0;
            if limits.tokens.is_some() {
                self.tokens -= cost as f64;
            }
        }
        Decision {
            refusal,
            headers: self.announced(limits, rate, token_rate, wall),
        }
    }

    fn announced(
        &self,
        limits: &Limits,
        rate: f64,
        token_rate: f64,
        wall: SystemTime,
    ) -> Vec<(&'static str, String)> {
        let per_minute = (rate * 60.0).round() as u64;
        let requests_left = self.requests.max(0.0).floor() as u64;
        let requests_full = wait(f64::from(limits.burst) - self.requests, rate);
        let tokens = limits.tokens.map(|t| {
            (
                t.per_minute,
                self.tokens.max(0.0).floor() as u64,
                wait(t.burst as f64 - self.tokens, token_rate),
            )
        });
        let mut headers = Vec::new();
        match limits.announce {
            Announce::None => {}
            Announce::OpenAi => {
                headers.push(("x-ratelimit-limit-requests", per_minute.to_string()));
                headers.push(("x-ratelimit-remaining-requests", requests_left.to_string()));
                headers.push(("x-ratelimit-reset-requests", go_duration(requests_full)));
                if let Some((limit, left, full)) = tokens {
                    headers.push(("x-ratelimit-limit-tokens", limit.to_string()));
                    headers.push(("x-ratelimit-remaining-tokens", left.to_string()));
                    headers.push(("x-ratelimit-reset-tokens", go_duration(full)));
                }
            }
            Announce::Anthropic => {
                headers.push(("anthropic-ratelimit-requests-limit", per_minute.to_string()));
                headers.push((
                    "anthropic-ratelimit-requests-remaining",
                    requests_left.to_string(),
                ));
                headers.push((
                    "anthropic-ratelimit-requests-reset",
                    rfc3339(later(wall, requests_full)),
                ));
                if let Some((limit, left, full)) = tokens {
                    headers.push(("anthropic-ratelimit-input-tokens-limit", limit.to_string()));
                    headers.push((
                        "anthropic-ratelimit-input-tokens-remaining",
                        left.to_string(),
                    ));
                    headers.push((
                        "anthropic-ratelimit-input-tokens-reset",
                        rfc3339(later(wall, full)),
                    ));
                }
            }
        }
        headers
    }
}

/// How long until `missing` units come back at `rate` per second, rounded
/// up to the millisecond; zero when nothing is missing, a day at most.
fn wait(missing: f64, rate: f64) -> Duration {
    if missing.is_nan() || missing <= 0.0 {
        return Duration::ZERO;
    }
    let secs = if rate > 0.0 {
        (missing / rate).min(MAX_WAIT_SECS)
    } else {
        MAX_WAIT_SECS
    };
    Duration::from_millis((secs * 1000.0).ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn the_schedule_sets_the_rate_and_the_refill() {
        let limits = Limits::requests(100.0, 20)
            .then(S(15), 100.0)
            .then(S(5), 10.0);
        assert_eq!(limits.rate_at(S(0)), 100.0);
        assert_eq!(limits.rate_at(S(5)), 10.0);
        assert_eq!(limits.rate_at(S(14)), 10.0);
        assert_eq!(limits.rate_at(S(15)), 100.0);
        // 4 s at 100, 10 s at 10, 1 s at 100.
        let refill = limits.refill(S(1), S(16));
        assert!((refill - 600.0).abs() < 1e-6, "{refill}");
        assert_eq!(Limits::requests(f64::NAN, 1).rate_at(S(1)), 0.0);
    }

    #[test]
    fn the_buckets_admit_the_burst_then_the_rate() {
        let limits = Limits::requests(10.0, 5);
        let mut buckets = Buckets::new(&limits);
        let wall = SystemTime::now();
        let admitted = |b: &mut Buckets, at: Duration, n: usize| {
            (0..n)
                .filter(|_| b.take(&limits, at, 0, wall).refusal.is_none())
                .count()
        };
        assert_eq!(admitted(&mut buckets, S(0), 50), 5);
        assert_eq!(admitted(&mut buckets, S(1), 50), 5);
        assert_eq!(admitted(&mut buckets, S(100), 50), 5);
        assert_eq!(
            buckets.take(&limits, S(100), 0, wall).refusal,
            Some(Refusal::Requests {
                wait: Duration::from_millis(100)
            })
        );
    }

    #[test]
    fn a_token_refusal_keeps_the_request() {
        let limits = Limits::requests(100.0, 10).tokens_per_minute(6000, 1000);
        let mut buckets = Buckets::new(&limits);
        let wall = SystemTime::now();
        assert!(buckets.take(&limits, S(0), 800, wall).refusal.is_none());
        // 200 tokens left, 100 per second back: 400 more take 4 s.
        assert_eq!(
            buckets.take(&limits, S(0), 600, wall).refusal,
            Some(Refusal::Tokens {
                wait: S(4),
                cost: 600,
                limit: 6000
            })
        );
        assert!(buckets.take(&limits, S(4), 600, wall).refusal.is_none());
    }

    #[test]
    fn request_tokens_counts_content_and_max_tokens() {
        assert_eq!(request_tokens(&json!({})), 0);
        assert_eq!(request_tokens(&json!({"messages": "nope"})), 0);
        let body = json!({"messages": [
            {"role": "system", "content": "abcd"},
            {"role": "user", "content": [{"type": "text", "text": "abcde"}]},
        ], "max_completion_tokens": 7});
        assert_eq!(request_tokens(&body), 3 + 7);
    }

    #[test]
    fn waits_are_bounded() {
        assert_eq!(wait(-1.0, 1.0), Duration::ZERO);
        assert_eq!(wait(f64::NAN, 1.0), Duration::ZERO);
        assert_eq!(wait(1.0, 0.0), S(86_400));
        assert_eq!(wait(0.5, 4.0), Duration::from_millis(125));
    }
}
