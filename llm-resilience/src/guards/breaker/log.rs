//! The breaker's events, through `tracing` (built with the feature only):
//! every change of state, at WARN, but closing, at INFO.

use super::state::State;

fn ms(ns: u64) -> u64 {
    ns / 1_000_000
}

pub(super) fn opened(by_ratio: bool, calls: u64, failures: u64, streak: u32, break_ns: u64) {
    tracing::warn!(
        target: "llm_resilience",
        from = "closed",
        to = "open",
        reason = if by_ratio { "failure ratio" } else { "consecutive failures" },
        calls,
        failures,
        consecutive_failures = streak,
        break_ms = ms(break_ns),
        "circuit breaker opened"
    );
}

pub(super) fn half_open(renewed: bool) {
    if renewed {
        tracing::warn!(
            target: "llm_resilience",
            from = "half-open",
            to = "half-open",
            "circuit breaker probes presumed lost; admitting new probes"
        );
    } else {
        tracing::warn!(
            target: "llm_resilience",
            from = "open",
            to = "half-open",
            "circuit breaker half-open; admitting a probe"
        );
    }
}

pub(super) fn reopened(break_ns: u64) {
    tracing::warn!(
        target: "llm_resilience",
        from = "half-open",
        to = "open",
        break_ms = ms(break_ns),
        "circuit breaker probe failed; opened again"
    );
}

pub(super) fn closed(before: u64, manual: bool) {
    if manual {
        tracing::info!(
            target: "llm_resilience",
            from = State::name(before),
            to = "closed",
            "circuit breaker closed manually"
        );
    } else {
        tracing::info!(
            target: "llm_resilience",
            from = State::name(before),
            to = "closed",
            "circuit breaker probe succeeded; closed"
        );
    }
}

pub(super) fn isolated(before: u64) {
    tracing::warn!(
        target: "llm_resilience",
        from = State::name(before),
        to = "isolated",
        "circuit breaker isolated"
    );
}
