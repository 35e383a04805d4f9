//! What retried calls report through the `metrics` facade.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::collections::HashMap;

use llm_resilience::{retry, testing, Classify, ErrorKind};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};

#[derive(Debug)]
struct Failure(ErrorKind);

impl Classify for Failure {
    fn kind(&self) -> ErrorKind {
        self.0
    }
}

#[retry(max_attempts = 3, wait = none, name = "chat")]
fn chat(script: &mut Vec<ErrorKind>) -> Result<(), Failure> {
    match script.pop() {
        Some(kind) => Err(Failure(kind)),
        None => Ok(()),
    }
}

/// Counters as `name{label=value,...}` → value.
fn counters(recorder: &DebuggingRecorder) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for (key, _, _, value) in recorder.snapshotter().snapshot().into_vec() {
        let key: CompositeKey = key;
        if key.kind() != MetricKind::Counter {
            continue;
        }
        let (_, key) = key.into_parts();
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        if let DebugValue::Counter(n) = value {
            out.insert(format!("{}{{{}}}", key.name(), labels.join(",")), n);
        }
    }
    out
}

#[test]
fn calls_attempts_and_retries_are_counted_by_function() {
    let recorder = DebuggingRecorder::new();
    let _sleeps = testing::skip_sleeps();
    metrics::with_local_recorder(&recorder, || {
        chat(&mut vec![]).unwrap();
        chat(&mut vec![]).unwrap();
        chat(&mut vec![ErrorKind::Timeout, ErrorKind::Overloaded]).unwrap();
        chat(&mut vec![ErrorKind::Server; 3]).unwrap_err();
        chat(&mut vec![ErrorKind::Auth]).unwrap_err();
    });
    let c = counters(&recorder);
    let get = |k: &str| c.get(k).copied().unwrap_or(0);
    assert_eq!(
        get("retry_calls_total{function=chat,outcome=first_try_success}"),
        2,
        "{c:?}"
    );
    assert_eq!(
        get("retry_calls_total{function=chat,outcome=success_after_retry}"),
        1,
        "{c:?}"
    );
    assert_eq!(
        get("retry_calls_total{function=chat,outcome=gave_up}"),
        1,
        "{c:?}"
    );
    // The `Auth` failure was never retried: an outcome of its own.
    assert_eq!(
        get("retry_calls_total{function=chat,outcome=not_retried}"),
        1,
        "{c:?}"
    );
    assert_eq!(
        get("retry_attempt_failures_total{function=chat,kind=Server}"),
        3,
        "{c:?}"
    );
    assert_eq!(
        get("retry_attempt_failures_total{function=chat,kind=Overloaded}"),
        1,
        "{c:?}"
    );
    assert_eq!(
        get("retry_attempt_failures_total{function=chat,kind=Timeout}"),
        1,
        "{c:?}"
    );
    assert_eq!(
        get("retry_attempt_failures_total{function=chat,kind=Auth}"),
        1,
        "{c:?}"
    );
    assert_eq!(get("retry_retries_total{function=chat}"), 4, "{c:?}");
}

#[test]
fn every_call_is_timed() {
    let recorder = DebuggingRecorder::new();
    metrics::with_local_recorder(&recorder, || {
        for _ in 0..5 {
            chat(&mut vec![]).unwrap();
        }
    });
    let histograms: Vec<usize> = recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Histogram(samples) if key.key().name() == "retry_call_duration_seconds" => {
                Some(samples.len())
            }
            _ => None,
        })
        .collect();
    assert_eq!(histograms, [5]);
}

#[derive(Debug)]
enum Guarded {
    Down,
    Open,
}

impl Classify for Guarded {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Overloaded
    }
}

impl From<llm_resilience::CircuitOpen> for Guarded {
    fn from(_: llm_resilience::CircuitOpen) -> Self {
        Guarded::Open
    }
}

static BREAKER: llm_resilience::CircuitBreaker =
    llm_resilience::CircuitBreaker::new().consecutive_failures(2);
static BUDGET: llm_resilience::RetryBudget = llm_resilience::RetryBudget::new()
    .ratio(0.0)
    .min_retries_per_second(0);

#[retry(max_attempts = 3, wait = none, breaker = BREAKER, name = "guarded")]
fn guarded() -> Result<(), Guarded> {
    Err(Guarded::Down)
}

#[retry(max_attempts = 3, wait = none, budget = BUDGET, name = "budgeted")]
fn budgeted() -> Result<(), Guarded> {
    Err(Guarded::Down)
}

#[test]
fn fast_failures_budget_refusals_and_breaker_transitions_are_counted() {
    let recorder = DebuggingRecorder::new();
    metrics::with_local_recorder(&recorder, || {
        assert!(matches!(guarded(), Err(Guarded::Down)));
        assert!(matches!(guarded(), Err(Guarded::Open)));
        assert!(matches!(guarded(), Err(Guarded::Open)));
        assert!(matches!(budgeted(), Err(Guarded::Down)));
    });
    let c = counters(&recorder);
    let get = |k: &str| c.get(k).copied().unwrap_or(0);
    assert_eq!(
        get("retry_calls_total{function=guarded,outcome=gave_up}"),
        1,
        "{c:?}"
    );
    assert_eq!(
        get("retry_calls_total{function=guarded,outcome=failed_fast}"),
        2,
        "{c:?}"
    );
    assert_eq!(
        get("retry_breaker_transitions_total{function=guarded,to=open}"),
        1,
        "{c:?}"
    );
    assert_eq!(
        get("retry_budget_refusals_total{function=budgeted}"),
        1,
        "{c:?}"
    );
    assert_eq!(get("retry_retries_total{function=budgeted}"), 0, "{c:?}");
}

#[test]
fn calls_never_retried_have_an_outcome_of_their_own() {
    let recorder = DebuggingRecorder::new();
    let _sleeps = testing::skip_sleeps();
    metrics::with_local_recorder(&recorder, || {
        // One attempt, an error no retry fixes: not retried.
        chat(&mut vec![ErrorKind::Client]).unwrap_err();
        chat(&mut vec![ErrorKind::Quota]).unwrap_err();
        // Retried once, then an error no retry fixes: it gave up.
        chat(&mut vec![ErrorKind::Client, ErrorKind::Timeout]).unwrap_err();
    });
    let c = counters(&recorder);
    let get = |k: &str| c.get(k).copied().unwrap_or(0);
    assert_eq!(
        get("retry_calls_total{function=chat,outcome=not_retried}"),
        2,
        "{c:?}"
    );
    assert_eq!(
        get("retry_calls_total{function=chat,outcome=gave_up}"),
        1,
        "{c:?}"
    );
}
