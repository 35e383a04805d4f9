//! The `tracing` side of a retried call: a span per call, opened at its first
//! failure, and an event per failed attempt and at the end. Without the
//! `tracing` feature, all of it compiles to nothing.

use std::time::Duration;

use crate::{DelaySource, ErrorKind, IdempotencyKey};

/// Why a call stopped retrying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GiveUp {
    /// The kind is never retried, or not in `on`.
    NotRetried(ErrorKind),
    /// The `when` predicate said no.
    Rejected,
    /// `max_attempts` reached.
    Exhausted,
    /// The per-kind cap reached.
    KindCap(ErrorKind),
    /// The server asked for a wait longer than `retry_after_cap`.
    RetryAfterTooLong(Duration),
    /// The next attempt could not start before the deadline.
    Deadline,
    /// The limiter's next send slot comes after the deadline.
    PacedPastDeadline,
    /// The retry budget is spent.
    Budget,
    /// The circuit breaker refused the next attempt.
    CircuitOpen,
}

impl GiveUp {
    #[cfg_attr(not(feature = "tracing"), allow(dead_code))]
    pub(crate) fn describe(self) -> &'static str {
        match self {
            GiveUp::NotRetried(kind) if kind.is_never_retried() => {
                "the error is of a kind that is never retried"
            }
            GiveUp::NotRetried(_) => "the error is of a kind the policy does not retry",
            GiveUp::Rejected => "the policy's `when` predicate rejected the error",
            GiveUp::Exhausted => "max_attempts reached",
            GiveUp::KindCap(_) => "the per-kind max_attempts for this kind reached",
            GiveUp::RetryAfterTooLong(_) => "the server asked for a wait above retry_after_cap",
            GiveUp::Deadline => "the deadline comes before the next attempt could start",
            GiveUp::PacedPastDeadline => {
                "the rate limiter's next send slot comes after the deadline; nothing was sent"
            }
            GiveUp::Budget => "the retry budget is spent",
            GiveUp::CircuitOpen => "the circuit breaker is open",
        }
    }
}

/// The span of one retried call, or nothing without the `tracing` feature.
#[cfg(feature = "tracing")]
pub type CallSpan = tracing::Span;

/// The span of one retried call, or nothing without the `tracing` feature.
#[cfg(not(feature = "tracing"))]
#[derive(Clone, Debug, Default)]
pub struct CallSpan;

/// Makes the span of a call, at its first failure. The macro passes one that
/// names the span after the function.
pub type MakeSpan = fn() -> CallSpan;

/// What is known of a failed attempt, for the events.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) struct Failure<'a> {
    pub(crate) attempt: u32,
    pub(crate) kind: ErrorKind,
    pub(crate) request_id: Option<&'a str>,
    pub(crate) key: Option<IdempotencyKey>,
}

#[cfg(feature = "tracing")]
mod imp {
    use super::*;

    fn source_name(source: DelaySource) -> &'static str {
        match source {
            DelaySource::Backoff => "backoff",
            DelaySource::RetryAfter => "retry_after",
        }
    }

    pub(crate) fn retrying(span: &CallSpan, f: &Failure<'_>, delay: Duration, source: DelaySource) {
        tracing::info!(
            target: "llm_resilience",
            parent: span,
            attempt = f.attempt,
            kind = f.kind.name(),
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            delay_source = source_name(source),
            request_id = f.request_id,
            idempotency_key = f.key.map(display),
            "attempt failed; retrying"
        );
    }

    pub(crate) fn gave_up(span: &CallSpan, f: &Failure<'_>, why: GiveUp) {
        if f.attempt > 1 {
            tracing::warn!(
                target: "llm_resilience",
            parent: span,
                attempts = f.attempt,
                kind = f.kind.name(),
                request_id = f.request_id,
                idempotency_key = f.key.map(display),
                reason = why.describe(),
                "gave up"
            );
        } else {
            tracing::debug!(
                target: "llm_resilience",
            parent: span,
                attempts = f.attempt,
                kind = f.kind.name(),
                request_id = f.request_id,
                idempotency_key = f.key.map(display),
                reason = why.describe(),
                "failed without retrying"
            );
        }
    }

    pub(crate) fn failed_fast(open: &crate::CircuitOpen, attempt: u32) {
        let retry_in_ms = open
            .retry_in()
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        if attempt == 1 {
            tracing::debug!(
                target: "llm_resilience",
                retry_in_ms,
                refused = true,
                "circuit breaker open; failing fast, refused without sending"
            );
        } else {
            tracing::debug!(
                target: "llm_resilience",
                attempt,
                retry_in_ms,
                refused = true,
                "circuit breaker opened while waiting to retry; giving up without sending"
            );
        }
    }

    pub(crate) fn succeeded(span: &CallSpan, attempts: u32, key: Option<IdempotencyKey>) {
        tracing::info!(
            target: "llm_resilience",
            parent: span,
            attempts,
            idempotency_key = key.map(display),
            "succeeded after retries"
        );
    }

    /// A streamed call's first content event came, `ttfe` after the call
    /// started, in attempt `attempt`.
    #[cfg_attr(not(all(feature = "stream", feature = "tokio")), allow(dead_code))]
    pub(crate) fn first_event(span: Option<&CallSpan>, ttfe: Duration, attempt: u32) {
        let ttfe_ms = ttfe.as_secs_f64() * 1e3;
        match span {
            Some(span) => {
                span.record("time_to_first_event_ms", ttfe_ms);
                tracing::debug!(target: "llm_resilience", parent: span, attempt, ttfe_ms, "first event");
            }
            None => tracing::debug!(target: "llm_resilience", attempt, ttfe_ms, "first event"),
        }
    }

    /// A stream was interrupted after `delivered` content events; `then`
    /// says what follows (`"failed"`, `"restarting"`, `"resuming"`).
    #[cfg_attr(not(all(feature = "stream", feature = "tokio")), allow(dead_code))]
    pub(crate) fn interrupted(
        span: Option<&CallSpan>,
        kind: ErrorKind,
        delivered: u64,
        then: &'static str,
    ) {
        match span {
            Some(span) => tracing::warn!(
                target: "llm_resilience",
                parent: span,
                kind = kind.name(),
                delivered,
                then,
                "stream interrupted after content"
            ),
            None => tracing::warn!(
                target: "llm_resilience",
                kind = kind.name(),
                delivered,
                then,
                "stream interrupted after content"
            ),
        }
    }

    /// Run `f` inside `span`, if the call has one.
    #[inline]
    pub(crate) fn in_span<R>(span: Option<&CallSpan>, f: impl FnOnce() -> R) -> R {
        match span {
            Some(span) => span.in_scope(f),
            None => f(),
        }
    }
}

#[cfg(not(feature = "tracing"))]
mod imp {
    use super::*;

    #[inline]
    pub(crate) fn retrying(_: &CallSpan, _: &Failure<'_>, _: Duration, _: DelaySource) {}

    #[inline]
    pub(crate) fn gave_up(_: &CallSpan, _: &Failure<'_>, _: GiveUp) {}

    #[inline]
    pub(crate) fn failed_fast(_: &crate::CircuitOpen, _: u32) {}

    #[inline]
    pub(crate) fn succeeded(_: &CallSpan, _: u32, _: Option<IdempotencyKey>) {}

    #[inline]
    pub(crate) fn in_span<R>(_: Option<&CallSpan>, f: impl FnOnce() -> R) -> R {
        f()
    }

    #[allow(dead_code)]
    pub(crate) fn first_event(_: Option<&CallSpan>, _: Duration, _: u32) {}

    #[allow(dead_code)]
    pub(crate) fn interrupted(_: Option<&CallSpan>, _: ErrorKind, _: u64, _: &'static str) {}
}

pub(crate) use imp::{failed_fast, gave_up, in_span, retrying, succeeded};
#[cfg(all(feature = "tokio", feature = "stream"))]
pub(crate) use imp::{first_event, interrupted};

/// The span the macro makes for a call: named after the function, at INFO.
#[cfg(feature = "tracing")]
#[doc(hidden)]
#[macro_export]
macro_rules! __call_span {
    ($name:literal) => {
        $crate::__private::tracing::info_span!($name)
    };
    ($name:literal, stream) => {
        $crate::__private::tracing::info_span!(
            $name,
            time_to_first_event_ms = $crate::__private::tracing::field::Empty
        )
    };
}

/// Without the `tracing` feature, a call has no span.
#[cfg(not(feature = "tracing"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __call_span {
    ($name:literal) => {
        $crate::__private::CallSpan
    };
    ($name:literal, stream) => {
        $crate::__private::CallSpan
    };
}

/// The span of a streamed call run through [`Policy`](crate::Policy): the
/// same as [`policy_span`], with a `time_to_first_event_ms` field.
#[cfg(all(feature = "tokio", feature = "stream"))]
pub(crate) fn stream_span() -> CallSpan {
    #[cfg(feature = "tracing")]
    {
        tracing::info_span!("retry", time_to_first_event_ms = tracing::field::Empty)
    }
    #[cfg(not(feature = "tracing"))]
    {
        CallSpan
    }
}

/// The span of calls run through [`Policy::call`](crate::Policy::call).
pub(crate) fn policy_span() -> CallSpan {
    #[cfg(feature = "tracing")]
    {
        tracing::info_span!("retry")
    }
    #[cfg(not(feature = "tracing"))]
    {
        CallSpan
    }
}
