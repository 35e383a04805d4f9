//! What retried calls report through the `metrics` facade (feature
//! `metrics`). Without the feature, all of it compiles to nothing.
//!
//! Every series carries a `function` label: the function's name, or the
//! `name = "..."` of `#[retry]`, or `"policy"` for [`Policy::call`] and its
//! kin.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `retry_calls_total` | counter | `function`, `outcome` | logical calls by outcome: `first_try_success`, `success_after_retry`, `gave_up` (failed after retrying, or stopped by the deadline, the budget or a breaker that opened meanwhile), `failed_fast` (refused by an open circuit breaker, never sent), `not_retried` (its one attempt failed with an error no retry fixes: a 400, 401 or exhausted quota, say) |
//! | `retry_attempt_failures_total` | counter | `function`, `kind` | failed attempts by error kind |
//! | `retry_retries_total` | counter | `function` | retries made (retry rate = this / `retry_calls_total`) |
//! | `retry_budget_refusals_total` | counter | `function` | retries refused by a retry budget |
//! | `retry_breaker_transitions_total` | counter | `function`, `to` | circuit breaker state changes seen by calls: `open`, `half_open`, `closed` |
//! | `retry_breaker_state` | gauge | `function` | 0 closed, 1 half-open, 2 open, 3 isolated |
//! | `retry_limiter_rate` | gauge | `function` | the adaptive limiter's admitted rate estimate, requests per second |
//! | `retry_call_duration_seconds` | histogram | `function` | total time of each logical call, sleeps included (a streamed call's, to the end of its stream) |
//! | `retry_stream_first_event_seconds` | histogram | `function` | streamed calls: time from the call's start to its first content or output event, retries included |
//! | `retry_stream_interruptions_total` | counter | `function`, `kind` | streams interrupted after content, by kind |
//! | `retry_stream_restarts_total` | counter | `function` | interrupted streams restarted or resumed |
//! | `retry_shared_fallbacks_total` | counter | `guard`, `name` | times a shared guard (feature `redis`: `guard` is `breaker`, `budget` or `limiter`, `name` its name) lost Redis and ran on local state, once per loss |
//! | `retry_shared_connected` | gauge | `guard`, `name` | 1 while a shared guard reaches Redis, 0 while it runs on local state |
//!
//! A streamed call is counted in `retry_calls_total` when its stream ends:
//! complete (a success, `success_after_retry` if it failed or restarted on
//! the way), or with an error item (`gave_up`); a stream dropped before
//! its end is not counted.
//!
//! The success-after-retry rate is `retry_calls_total{outcome="success_after_retry"}`
//! over all successes. With this feature on, each call reads the clock
//! twice to time itself; the keys of each function are built once, on its
//! first call, so recording allocates nothing after that (the recorder you
//! install may, as its own design decides).
//!
//! ```
//! # #[cfg(feature = "metrics")]
//! # fn main() {
//! # use std::sync::Mutex;
//! # use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
//! # // Keeps `name{label=value,...}` for every counter increment.
//! # #[derive(Default)]
//! # struct CounterLog(Mutex<Vec<String>>);
//! # impl Recorder for CounterLog {
//! #     fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
//! #     fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
//! #     fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
//! #     fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
//! #         let labels: Vec<String> =
//! #             key.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
//! #         let series = format!("{}{{{}}}", key.name(), labels.join(","));
//! #         self.0.lock().unwrap().push(series);
//! #         Counter::noop()
//! #     }
//! #     fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
//! #         Gauge::noop()
//! #     }
//! #     fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
//! #         Histogram::noop()
//! #     }
//! # }
//! # impl CounterLog {
//! #     fn has(&self, series: &str) -> bool {
//! #         self.0.lock().unwrap().iter().any(|s| s == series)
//! #     }
//! # }
//! use std::io;
//! use llm_resilience::{Policy, Wait};
//!
//! let recorder = CounterLog::default(); // any `metrics::Recorder`
//! metrics::with_local_recorder(&recorder, || {
//!     let policy = Policy::new().max_attempts(2).wait(Wait::none());
//!     let _: Result<(), io::Error> = policy.call(|| Err(io::ErrorKind::TimedOut.into()));
//! });
//! assert!(recorder.has("retry_attempt_failures_total{function=policy,kind=Timeout}"));
//! assert!(recorder.has("retry_retries_total{function=policy}"));
//! assert!(recorder.has("retry_calls_total{function=policy,outcome=gave_up}"));
//! # }
//! # #[cfg(not(feature = "metrics"))]
//! # fn main() {}
//! ```
//!
//! [`Policy::call`]: crate::Policy::call

/// How a logical call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) enum Outcome {
    FirstTrySuccess = 0,
    SuccessAfterRetry = 1,
    GaveUp = 2,
    FailedFast = 3,
    NotRetried = 4,
}

/// The metric keys of one retried function, built once on first use and
/// kept, so that recording allocates nothing. `#[retry]` makes one per
/// function, in a `static`.
#[doc(hidden)]
pub struct MetricKeys {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    function: &'static str,
    #[cfg(feature = "metrics")]
    keys: std::sync::OnceLock<imp::Keys>,
}

impl MetricKeys {
    /// The keys of the function called `function`.
    pub const fn new(function: &'static str) -> Self {
        MetricKeys {
            function,
            #[cfg(feature = "metrics")]
            keys: std::sync::OnceLock::new(),
        }
    }
}

impl std::fmt::Debug for MetricKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricKeys")
            .field("function", &self.function)
            .finish()
    }
}

/// The keys of calls run through [`Policy::call`] and its kin.
pub(crate) static POLICY_KEYS: MetricKeys = MetricKeys::new("policy");

#[cfg(feature = "metrics")]
mod imp {
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::time::Instant;

    use metrics::{Key, Label, Level, Metadata};

    use super::{MetricKeys, Outcome};
    use crate::ErrorKind;

    const METADATA: Metadata<'static> =
        Metadata::new("llm_resilience", Level::INFO, Some("llm_resilience"));

    const OUTCOMES: [&str; 5] = [
        "first_try_success",
        "success_after_retry",
        "gave_up",
        "failed_fast",
        "not_retried",
    ];
    const TRANSITIONS: [&str; 3] = ["closed", "half_open", "open"];

    pub(crate) struct Keys {
        calls: [Key; 5],
        failures: [Key; ErrorKind::COUNT],
        retries: Key,
        budget_refusals: Key,
        transitions: [Key; 3],
        breaker_state: Key,
        limiter_rate: Key,
        duration: Key,
        first_event: Key,
        interruptions: [Key; ErrorKind::COUNT],
        restarts: Key,
        /// The breaker state this function last saw.
        last_breaker: AtomicU8,
    }

    impl Keys {
        fn new(function: &'static str) -> Self {
            let f = || Label::from_static_parts("function", function);
            let with = |name: &'static str, key: &'static str, value: &'static str| {
                Key::from_parts(name, vec![f(), Label::from_static_parts(key, value)])
            };
            Keys {
                calls: OUTCOMES.map(|o| with("retry_calls_total", "outcome", o)),
                failures: ErrorKind::ALL
                    .map(|k| with("retry_attempt_failures_total", "kind", k.name())),
                retries: Key::from_parts("retry_retries_total", vec![f()]),
                budget_refusals: Key::from_parts("retry_budget_refusals_total", vec![f()]),
                transitions: TRANSITIONS.map(|t| with("retry_breaker_transitions_total", "to", t)),
                breaker_state: Key::from_parts("retry_breaker_state", vec![f()]),
                limiter_rate: Key::from_parts("retry_limiter_rate", vec![f()]),
                duration: Key::from_parts("retry_call_duration_seconds", vec![f()]),
                first_event: Key::from_parts("retry_stream_first_event_seconds", vec![f()]),
                interruptions: ErrorKind::ALL
                    .map(|k| with("retry_stream_interruptions_total", "kind", k.name())),
                restarts: Key::from_parts("retry_stream_restarts_total", vec![f()]),
                last_breaker: AtomicU8::new(0),
            }
        }
    }

    impl MetricKeys {
        fn keys(&self) -> &Keys {
            self.keys.get_or_init(|| Keys::new(self.function))
        }
    }

    fn count(key: &Key) {
        metrics::with_recorder(|r| r.register_counter(key, &METADATA).increment(1));
    }

    pub(crate) type Started = Instant;

    #[inline]
    pub(crate) fn start() -> Started {
        Instant::now()
    }

    pub(crate) fn call_finished(m: &MetricKeys, outcome: Outcome, started: Started) {
        let keys = m.keys();
        count(&keys.calls[outcome as usize]);
        let took = started.elapsed().as_secs_f64();
        metrics::with_recorder(|r| r.register_histogram(&keys.duration, &METADATA).record(took));
    }

    pub(crate) fn attempt_failed(m: &MetricKeys, kind: ErrorKind) {
        count(&m.keys().failures[kind.index()]);
    }

    pub(crate) fn retried(m: &MetricKeys) {
        count(&m.keys().retries);
    }

    pub(crate) fn budget_refused(m: &MetricKeys) {
        count(&m.keys().budget_refusals);
    }

    /// Set the breaker's state gauge (0 closed, 1 half-open, 2 open,
    /// 3 isolated), and count a transition when it differs from what this
    /// function last saw.
    pub(crate) fn breaker_state(m: &MetricKeys, code: u8) {
        let keys = m.keys();
        metrics::with_recorder(|r| {
            r.register_gauge(&keys.breaker_state, &METADATA)
                .set(f64::from(code))
        });
        let before = keys.last_breaker.swap(code, Ordering::Relaxed);
        if before != code {
            if let Some(to) = keys.transitions.get(usize::from(code)) {
                count(to);
            }
        }
    }

    #[allow(dead_code)]
    pub(crate) fn stream_first_event(m: &MetricKeys, took: std::time::Duration) {
        let keys = m.keys();
        let took = took.as_secs_f64();
        metrics::with_recorder(|r| {
            r.register_histogram(&keys.first_event, &METADATA)
                .record(took)
        });
    }

    #[allow(dead_code)]
    pub(crate) fn stream_interrupted(m: &MetricKeys, kind: ErrorKind) {
        count(&m.keys().interruptions[kind.index()]);
    }

    #[allow(dead_code)]
    pub(crate) fn stream_restarted(m: &MetricKeys) {
        count(&m.keys().restarts);
    }

    pub(crate) fn limiter_rate(m: &MetricKeys, rate: f64) {
        let keys = m.keys();
        metrics::with_recorder(|r| r.register_gauge(&keys.limiter_rate, &METADATA).set(rate));
    }
}

#[cfg(not(feature = "metrics"))]
#[allow(dead_code)]
mod imp {
    use super::{MetricKeys, Outcome};
    use crate::ErrorKind;

    pub(crate) type Started = ();

    #[inline]
    pub(crate) fn start() -> Started {}

    #[inline]
    pub(crate) fn call_finished(_: &MetricKeys, _: Outcome, _: Started) {}

    #[inline]
    pub(crate) fn attempt_failed(_: &MetricKeys, _: ErrorKind) {}

    #[inline]
    pub(crate) fn retried(_: &MetricKeys) {}

    #[inline]
    pub(crate) fn budget_refused(_: &MetricKeys) {}

    #[inline]
    pub(crate) fn breaker_state(_: &MetricKeys, _: u8) {}

    #[inline]
    pub(crate) fn limiter_rate(_: &MetricKeys, _: f64) {}

    #[inline]
    pub(crate) fn stream_first_event(_: &MetricKeys, _: std::time::Duration) {}

    #[inline]
    pub(crate) fn stream_interrupted(_: &MetricKeys, _: ErrorKind) {}

    #[inline]
    pub(crate) fn stream_restarted(_: &MetricKeys) {}
}

#[allow(unused_imports)]
pub(crate) use imp::*;
