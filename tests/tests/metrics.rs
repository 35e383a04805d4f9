//! What retried calls report through the `metrics` facade.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::collections::HashMap;

use llm_resilience::{retry, testing, Classify, ErrorKind};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::{CompositeKey, MetricKind};

#[path = "common/sse.rs"]
mod sse;

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

/// What a recorder holds: a snapshot takes (and empties) its histograms.
type Snapshot = Vec<(
    CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

/// Counters as `name{label=value,...}` → value.
fn counters(recorder: &DebuggingRecorder) -> HashMap<String, u64> {
    counters_in(recorder.snapshotter().snapshot().into_vec())
}

/// The counters of `snapshot`, as [`counters`] has them.
fn counters_in(snapshot: Snapshot) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    for (key, _, _, value) in snapshot {
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

/// The samples of the histogram `name` in `snapshot`, in the order recorded.
fn histogram(snapshot: &Snapshot, name: &str) -> Vec<f64> {
    snapshot
        .iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Histogram(samples) if key.key().name() == name => {
                Some(samples.iter().map(|s| s.into_inner()))
            }
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn streamed_calls_report_first_events_interruptions_and_restarts() {
    use llm_resilience::stream::OnInterrupt;
    use sse::{content, read, whole, OPEN, OPTIONS, OVERLOADED, WAIT};

    let recorder = DebuggingRecorder::new();
    let runtime = sse::paused_runtime();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            // First try.
            let (text, error) = read(OPTIONS, &[whole()]).await;
            assert_eq!((text.as_str(), error.is_none()), ("hello world", true));
            // An error event first: retried, content on the second attempt.
            let (text, error) = read(OPTIONS, &[OVERLOADED.to_owned(), whole()]).await;
            assert_eq!((text.as_str(), error.is_none()), ("hello world", true));
            // Content, then the body ends without its marker: an error item.
            let cut = content("hello ") + &content("wor");
            let (text, error) = read(OPTIONS, &[cut]).await;
            assert_eq!(text, "hello wor");
            assert_eq!(error.unwrap().kind(), ErrorKind::Network);
            // Content, then an error event: restarted, then whole.
            let restart = OPTIONS.on_interrupt(OnInterrupt::Restart);
            let broken = content("hello ") + OVERLOADED;
            let (text, error) = read(restart, &[broken, whole()]).await;
            assert_eq!((text.as_str(), error.is_none()), ("hello world", true));
        })
    });

    // One sample per call, from the call's start to its first content
    // event: the attempt's time, and the failed attempt and the wait before
    // it for the second call. The restart does not make a second sample.
    let seconds = OPEN.as_secs_f64();
    let want = [
        seconds,
        2.0 * seconds + WAIT.as_secs_f64(),
        seconds,
        seconds,
    ];
    let snapshot = recorder.snapshotter().snapshot().into_vec();
    let got = histogram(&snapshot, "retry_stream_first_event_seconds");
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (got, want) in got.iter().zip(want) {
        assert!((got - want).abs() < 1e-6, "{got} != {want}");
    }

    let c = counters_in(snapshot);
    let get = |k: &str| c.get(k).copied().unwrap_or(0);
    let interruptions: u64 = c
        .iter()
        .filter(|(k, _)| k.starts_with("retry_stream_interruptions_total"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(interruptions, 2, "{c:?}");
    assert_eq!(
        get("retry_stream_interruptions_total{function=policy,kind=Network}"),
        1,
        "{c:?}"
    );
    assert_eq!(
        get("retry_stream_interruptions_total{function=policy,kind=Overloaded}"),
        1,
        "{c:?}"
    );
    assert_eq!(
        get("retry_stream_restarts_total{function=policy}"),
        1,
        "{c:?}"
    );
    // The error event before the first content, and the interruption that
    // was restarted, were failed attempts of their kind; so was the one
    // that ended its call.
    assert_eq!(
        get("retry_attempt_failures_total{function=policy,kind=Overloaded}"),
        2,
        "{c:?}"
    );
    assert_eq!(
        get("retry_attempt_failures_total{function=policy,kind=Network}"),
        1,
        "{c:?}"
    );
    // Four calls, each counted once, when its stream ended: the first
    // whole at once; the second and the restarted fourth whole after a
    // failure; the third interrupted, which gave up.
    let calls: u64 = c
        .iter()
        .filter(|(k, _)| k.starts_with("retry_calls_total"))
        .map(|(_, n)| n)
        .sum();
    assert_eq!(calls, 4, "{c:?}");
    for (outcome, n) in [
        ("first_try_success", 1),
        ("success_after_retry", 2),
        ("gave_up", 1),
    ] {
        let key = format!("retry_calls_total{{function=policy,outcome={outcome}}}");
        assert_eq!(get(&key), n, "{key}: {c:?}");
    }
}
