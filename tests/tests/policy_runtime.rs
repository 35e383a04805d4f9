//! The runtime form of the engine: `Policy::call`, `Policy::call_async`,
//! `when` and `on_retry` hooks, `Policy::validate`, how policies that fail
//! validation still behave, and the classification of `io::Error`.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use llm_resilience::testing::skip_sleeps;
use llm_resilience::{
    attempt, Classify, DelaySource, Elapsed, ErrorKind, Jitter, KindSet, Policy, PolicyError,
    RetryEvent, Wait,
};
use tokio::time::{sleep, Instant};

const fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ApiError {
    Api {
        kind: ErrorKind,
        attempt: u32,
        retry_after: Option<Duration>,
    },
    Cut(Elapsed),
}

impl Classify for ApiError {
    fn kind(&self) -> ErrorKind {
        match self {
            ApiError::Api { kind, .. } => *kind,
            ApiError::Cut(e) => e.kind(),
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Api { retry_after, .. } => *retry_after,
            ApiError::Cut(_) => None,
        }
    }
    fn request_id(&self) -> Option<&str> {
        Some("req-1")
    }
}

impl From<Elapsed> for ApiError {
    fn from(e: Elapsed) -> Self {
        ApiError::Cut(e)
    }
}

fn err(kind: ErrorKind, attempt: u32) -> ApiError {
    ApiError::Api {
        kind,
        attempt,
        retry_after: None,
    }
}

/// An operation that fails with `kinds[i]` on call `i + 1` and succeeds once
/// they run out; checks `attempt().number()` on every call.
fn op<'a>(
    calls: &'a Cell<u32>,
    kinds: &'a [ErrorKind],
) -> impl FnMut() -> Result<u32, ApiError> + 'a {
    move || {
        let n = calls.get() + 1;
        calls.set(n);
        assert_eq!(attempt().number(), n);
        match kinds.get(n as usize - 1) {
            Some(kind) => Err(err(*kind, n)),
            None => Ok(n),
        }
    }
}

// ---------------------------------------------------------------------------
// Policy::call.

const FAST: Policy = Policy::new()
    .max_attempts(4)
    .wait(Wait::exponential(
        Duration::from_secs(1),
        Duration::from_secs(3),
    ))
    .jitter(Jitter::None);

#[test]
fn call_retries_until_success() {
    let sleeps = skip_sleeps();
    let calls = Cell::new(0);
    let kinds = [ErrorKind::Server, ErrorKind::Timeout, ErrorKind::Network];
    assert_eq!(FAST.call(op(&calls, &kinds)), Ok(4));
    assert_eq!(calls.get(), 4);
    assert_eq!(sleeps.delays(), [s(1), s(2), s(3)]);
}

#[test]
fn call_gives_up_with_the_last_error() {
    let sleeps = skip_sleeps();
    let calls = Cell::new(0);
    let kinds = [ErrorKind::Server; 10];
    assert_eq!(
        FAST.call(op(&calls, &kinds)),
        Err(err(ErrorKind::Server, 4))
    );
    assert_eq!(calls.get(), 4);
    assert_eq!(sleeps.delays(), [s(1), s(2), s(3)]);
}

#[test]
fn default_policy_makes_three_attempts_with_full_jitter() {
    let sleeps = skip_sleeps();
    for _ in 0..100 {
        sleeps.clear();
        let calls = Cell::new(0);
        let kinds = [ErrorKind::Overloaded; 5];
        assert_eq!(
            Policy::new().call(op(&calls, &kinds)),
            Err(err(ErrorKind::Overloaded, 3))
        );
        let delays = sleeps.delays();
        assert_eq!(delays.len(), 2);
        assert!(delays[0] <= s(1) && delays[1] <= s(2), "{delays:?}");
    }
    assert_eq!(Policy::default(), Policy::new());
    assert_eq!(Wait::default(), Wait::exponential(s(1), s(60)));
    assert_eq!(Jitter::default(), Jitter::Full);
    assert_eq!(KindSet::default(), KindSet::transient());
}

#[test]
fn call_never_retries_client_auth_quota_even_when_listed() {
    let _sleeps = skip_sleeps();
    let everything: KindSet = ErrorKind::ALL.into_iter().collect();
    let policy = Policy::new().retry_on(everything).wait(Wait::none());
    for kind in [ErrorKind::Client, ErrorKind::Auth, ErrorKind::Quota] {
        let calls = Cell::new(0);
        assert_eq!(policy.call(op(&calls, &[kind; 3])), Err(err(kind, 1)));
        assert_eq!(calls.get(), 1);
    }
    // `Other` is in this set, so it is retried.
    let calls = Cell::new(0);
    assert_eq!(policy.call(op(&calls, &[ErrorKind::Other; 2])), Ok(3));
    // And not in the default set.
    let calls = Cell::new(0);
    assert_eq!(
        Policy::new().call(op(&calls, &[ErrorKind::Other; 2])),
        Err(err(ErrorKind::Other, 1))
    );
}

#[test]
fn call_honours_per_kind_caps() {
    let _sleeps = skip_sleeps();
    let policy = Policy::new()
        .max_attempts(6)
        .wait(Wait::none())
        .kind_max_attempts(ErrorKind::Timeout, 2);
    let calls = Cell::new(0);
    assert_eq!(
        policy.call(op(&calls, &[ErrorKind::Timeout; 6])),
        Err(err(ErrorKind::Timeout, 2))
    );
    let calls = Cell::new(0);
    let mixed = [
        ErrorKind::Timeout,
        ErrorKind::Server,
        ErrorKind::Server,
        ErrorKind::Timeout,
    ];
    assert_eq!(
        policy.call(op(&calls, &mixed)),
        Err(err(ErrorKind::Timeout, 4))
    );
    // 0 removes the cap again.
    let calls = Cell::new(0);
    assert_eq!(
        policy
            .kind_max_attempts(ErrorKind::Timeout, 0)
            .call(op(&calls, &[ErrorKind::Timeout; 6])),
        Err(err(ErrorKind::Timeout, 6))
    );
}

#[test]
fn call_honours_retry_after_and_its_cap() {
    let sleeps = skip_sleeps();
    let policy = Policy::new()
        .wait(Wait::fixed(s(10)))
        .jitter(Jitter::None)
        .retry_after_cap(s(5));
    let asking = |after: Duration| {
        let calls = Cell::new(0);
        move || -> Result<u32, ApiError> {
            calls.set(calls.get() + 1);
            if calls.get() == 1 {
                return Err(ApiError::Api {
                    kind: ErrorKind::RateLimit,
                    attempt: 1,
                    retry_after: Some(after),
                });
            }
            Ok(calls.get())
        }
    };
    assert_eq!(policy.call(asking(s(5))), Ok(2));
    assert_eq!(sleeps.delays(), [s(5)]);
    sleeps.clear();
    assert!(policy.call(asking(ms(5001))).is_err());
    assert!(sleeps.delays().is_empty());

    // With jitter, a spread of at most 10% (at most 1 s) on top.
    let policy = policy.jitter(Jitter::Equal);
    let mut seen = HashSet::new();
    for _ in 0..1000 {
        sleeps.clear();
        assert_eq!(policy.call(asking(s(4))), Ok(2));
        let d = sleeps.delays()[0];
        assert!(d >= s(4) && d <= ms(4400), "{d:?}");
        seen.insert(d);
    }
    assert!(seen.len() > 900);
}

#[test]
fn call_respects_a_deadline_on_the_virtual_clock() {
    let sleeps = skip_sleeps();
    let policy = Policy::new()
        .max_attempts(20)
        .wait(Wait::fixed(s(3)))
        .jitter(Jitter::None)
        .deadline(s(10));
    let calls = Cell::new(0);
    // Sleeps end at 3, 6, 9 s; the next would end at 12 s.
    assert_eq!(
        policy.call(op(&calls, &[ErrorKind::Server; 20])),
        Err(err(ErrorKind::Server, 4))
    );
    assert_eq!(sleeps.delays(), [s(3); 3]);
}

#[test]
fn decorrelated_jitter_over_many_draws_with_a_low_cap() {
    let sleeps = skip_sleeps();
    let policy = Policy::new()
        .max_attempts(11)
        .wait(Wait::exponential(ms(10), ms(100)))
        .jitter(Jitter::Decorrelated);
    let mut all = Vec::new();
    let mut at_cap = 0;
    for _ in 0..100 {
        sleeps.clear();
        let calls = Cell::new(0);
        assert!(policy.call(op(&calls, &[ErrorKind::Server; 11])).is_err());
        let mut previous = ms(10);
        for d in sleeps.delays() {
            let hi = (previous * 3).min(ms(100));
            assert!(d >= ms(10) && d <= hi, "{d:?} outside [10ms, {hi:?}]");
            if hi == ms(100) {
                at_cap += 1;
            }
            previous = d;
            all.push(d);
        }
    }
    assert_eq!(all.len(), 1000);
    assert!(at_cap > 100, "the cap should bind often");
    // Every draw below the cap is fresh; draws past it land on the cap.
    let below_cap: Vec<_> = all.iter().filter(|d| **d < ms(100)).collect();
    let distinct: HashSet<_> = below_cap.iter().collect();
    assert!(
        below_cap.len() > 300,
        "{} draws below the cap",
        below_cap.len()
    );
    assert!(distinct.len() * 10 > below_cap.len() * 9);
}

/// The documented formula is `min(CAP, uniform in [BASE, 3 * previous])`:
/// draw first, then cap. Once `3 * previous` passes the cap, that puts a
/// share `(3 * previous - CAP) / (3 * previous - BASE)` of the draws exactly
/// on the cap. Drawing in `[BASE, min(CAP, 3 * previous)]` instead has the
/// same bounds but (almost) never lands on the cap, making delays near the
/// cap shorter than documented; this test tells the two apart.
#[test]
fn decorrelated_jitter_follows_the_documented_distribution_at_the_cap() {
    let sleeps = skip_sleeps();
    let (base, cap) = (ms(10), ms(100));
    let policy = Policy::new()
        .max_attempts(11)
        .wait(Wait::exponential(base, cap))
        .jitter(Jitter::Decorrelated);
    let mut expected_at_cap = 0.0;
    let mut at_cap = 0;
    for _ in 0..100 {
        sleeps.clear();
        let calls = Cell::new(0);
        assert!(policy.call(op(&calls, &[ErrorKind::Server; 11])).is_err());
        let mut previous = base;
        for d in sleeps.delays() {
            let top = previous * 3;
            if top > cap {
                expected_at_cap += (top - cap).as_secs_f64() / (top - base).as_secs_f64();
            }
            if d == cap {
                at_cap += 1;
            }
            previous = d;
        }
    }
    assert!(expected_at_cap > 100.0);
    assert!(
        f64::from(at_cap) > expected_at_cap / 2.0,
        "{at_cap} draws at the cap, about {expected_at_cap:.0} expected"
    );
}

// ---------------------------------------------------------------------------
// when / on_retry.

type Seen = (u32, ErrorKind, Duration, DelaySource);

#[test]
fn when_and_on_retry_hooks() {
    let _sleeps = skip_sleeps();
    let policy = Policy::new().max_attempts(5).jitter(Jitter::None);
    let kinds = [
        ErrorKind::Server,
        ErrorKind::Overloaded,
        ErrorKind::Timeout,
        ErrorKind::Server,
    ];

    // when: stop at the first Timeout.
    let calls = Cell::new(0);
    let result = policy
        .when(|e: &ApiError| e.kind() != ErrorKind::Timeout)
        .call(op(&calls, &kinds));
    assert_eq!(result, Err(err(ErrorKind::Timeout, 3)));

    // on_retry: one event per sleep, in order.
    let log: RefCell<Vec<Seen>> = RefCell::new(Vec::new());
    let calls = Cell::new(0);
    let result = policy
        .on_retry(|ev: &RetryEvent<'_, ApiError>| {
            assert_eq!(ev.error().request_id(), Some("req-1"));
            log.borrow_mut()
                .push((ev.attempt(), ev.kind(), ev.delay(), ev.source()));
        })
        .call(op(&calls, &kinds));
    assert_eq!(result, Ok(5));
    assert_eq!(
        *log.borrow(),
        [
            (1, ErrorKind::Server, s(1), DelaySource::Backoff),
            (2, ErrorKind::Overloaded, s(2), DelaySource::Backoff),
            (3, ErrorKind::Timeout, s(4), DelaySource::Backoff),
            (4, ErrorKind::Server, s(8), DelaySource::Backoff),
        ]
    );

    // Both, chained either way: events only for the retries `when` allows.
    for order in 0..2 {
        log.borrow_mut().clear();
        let calls = Cell::new(0);
        let when = |e: &ApiError| e.kind() != ErrorKind::Timeout;
        let hook = |ev: &RetryEvent<'_, ApiError>| {
            log.borrow_mut()
                .push((ev.attempt(), ev.kind(), ev.delay(), ev.source()));
        };
        let result = if order == 0 {
            policy.when(when).on_retry(hook).call(op(&calls, &kinds))
        } else {
            policy.on_retry(hook).when(when).call(op(&calls, &kinds))
        };
        assert_eq!(result, Err(err(ErrorKind::Timeout, 3)));
        let attempts: Vec<u32> = log.borrow().iter().map(|seen| seen.0).collect();
        assert_eq!(attempts, [1, 2], "order {order}");
    }

    // No event on first-try success.
    log.borrow_mut().clear();
    let calls = Cell::new(0);
    let result = policy
        .on_retry(|ev: &RetryEvent<'_, ApiError>| {
            log.borrow_mut()
                .push((ev.attempt(), ev.kind(), ev.delay(), ev.source()))
        })
        .call(op(&calls, &[]));
    assert_eq!(result, Ok(1));
    assert!(log.borrow().is_empty());
}

// ---------------------------------------------------------------------------
// Policy::call_async.

#[tokio::test(start_paused = true)]
async fn call_async_retries_on_the_paused_clock() {
    let start = Instant::now();
    let calls = Cell::new(0);
    let result: Result<u32, ApiError> = FAST
        .call_async(|| {
            let n = calls.get() + 1;
            calls.set(n);
            async move {
                tokio::task::yield_now().await;
                assert_eq!(attempt().number(), n);
                if n < 4 {
                    Err(err(ErrorKind::Network, n))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
    assert_eq!(result, Ok(4));
    assert_eq!(start.elapsed(), s(1 + 2 + 3));
}

#[tokio::test(start_paused = true)]
async fn call_async_with_hooks_deadline_and_attempt_timeout() {
    let policy = Policy::new()
        .max_attempts(10)
        .wait(Wait::fixed(s(1)))
        .jitter(Jitter::None)
        .attempt_timeout(s(2))
        .deadline(s(9));
    let log: RefCell<Vec<Seen>> = RefCell::new(Vec::new());
    let calls = Cell::new(0);
    let start = Instant::now();
    let result: Result<(), ApiError> = policy
        .on_retry(|ev: &RetryEvent<'_, ApiError>| {
            log.borrow_mut()
                .push((ev.attempt(), ev.kind(), ev.delay(), ev.source()));
        })
        .call_async(|| {
            calls.set(calls.get() + 1);
            async {
                sleep(s(3600)).await;
                Ok(())
            }
        })
        .await;
    // Cut at 2, 5, 8 s by the attempt timeout (sleeping 1 s between);
    // the next sleep would end at 9 s, not before the deadline.
    assert_eq!(calls.get(), 3);
    assert_eq!(start.elapsed(), s(8));
    match result {
        Err(ApiError::Cut(e)) => {
            assert!(!e.is_deadline());
            assert_eq!(e.limit(), s(2));
        }
        other => panic!("expected a cut-off, got {other:?}"),
    }
    assert_eq!(
        *log.borrow(),
        [
            (1, ErrorKind::Timeout, s(1), DelaySource::Backoff),
            (2, ErrorKind::Timeout, s(1), DelaySource::Backoff),
        ]
    );

    // `when` sees the converted error.
    let calls = Cell::new(0);
    let result: Result<(), ApiError> = policy
        .when(|e: &ApiError| !matches!(e, ApiError::Cut(_)))
        .call_async(|| {
            calls.set(calls.get() + 1);
            async {
                sleep(s(3600)).await;
                Ok(())
            }
        })
        .await;
    assert!(matches!(result, Err(ApiError::Cut(_))));
    assert_eq!(calls.get(), 1);
}

#[tokio::test(start_paused = true)]
async fn call_async_deadline_cuts_off_the_attempt_in_flight() {
    let policy = Policy::new().deadline(s(5));
    let start = Instant::now();
    let result: Result<(), ApiError> = policy
        .call_async(|| async {
            sleep(s(3600)).await;
            Ok(())
        })
        .await;
    assert_eq!(start.elapsed(), s(5));
    match result {
        Err(ApiError::Cut(e)) => {
            assert!(e.is_deadline());
            assert_eq!(e.limit(), s(5));
            assert_eq!(e.kind(), ErrorKind::Timeout);
        }
        other => panic!("expected a cut-off, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// validate, and what an invalid policy does anyway.

#[test]
fn validate_accepts_sensible_policies() {
    assert_eq!(Policy::new().validate(), Ok(()));
    assert_eq!(FAST.validate(), Ok(()));
    let p = Policy::new()
        .max_attempts(5)
        .wait(Wait::exponential_with_factor(ms(100), s(8), 1.5))
        .jitter(Jitter::Decorrelated)
        .retry_on(KindSet::transient().with(ErrorKind::Other))
        .kind_max_attempts(ErrorKind::Timeout, 5)
        .retry_after_cap(s(120))
        .deadline(s(30))
        .attempt_timeout(s(10));
    assert_eq!(p.validate(), Ok(()));
    assert_eq!(Policy::new().wait(Wait::none()).validate(), Ok(()));
    assert_eq!(
        Policy::new().wait(Wait::fixed(Duration::ZERO)).validate(),
        Ok(())
    );
    // Factor exactly 1 is fine.
    assert_eq!(
        Policy::new()
            .wait(Wait::exponential_with_factor(s(1), s(2), 1.0))
            .validate(),
        Ok(())
    );
}

#[test]
fn validate_reports_each_mistake() {
    let cases: Vec<(Policy, PolicyError)> = vec![
        (Policy::new().max_attempts(0), PolicyError::ZeroAttempts),
        (
            Policy::new().wait(Wait::exponential(Duration::ZERO, Duration::ZERO)),
            PolicyError::ZeroCap,
        ),
        (
            Policy::new().wait(Wait::exponential(s(10), s(5))),
            PolicyError::BaseAboveCap,
        ),
        (
            Policy::new().wait(Wait::exponential_with_factor(s(1), s(5), 0.5)),
            PolicyError::FactorBelowOne(0.5),
        ),
        (
            Policy::new().wait(Wait::exponential_with_factor(s(1), s(5), f64::INFINITY)),
            PolicyError::FactorBelowOne(f64::INFINITY),
        ),
        (
            Policy::new().retry_on(KindSet::transient().with(ErrorKind::Quota)),
            PolicyError::NeverRetried(ErrorKind::Quota),
        ),
        (
            Policy::new().retry_on(KindSet::empty().with(ErrorKind::Client)),
            PolicyError::NeverRetried(ErrorKind::Client),
        ),
        (
            Policy::new().kind_max_attempts(ErrorKind::Timeout, 4),
            PolicyError::KindCapAboveMax {
                kind: ErrorKind::Timeout,
                cap: 4,
                max_attempts: 3,
            },
        ),
        (
            Policy::new().deadline(Duration::ZERO),
            PolicyError::ZeroDeadline,
        ),
        (
            Policy::new().attempt_timeout(Duration::ZERO),
            PolicyError::ZeroAttemptTimeout,
        ),
    ];
    for (policy, expected) in cases {
        assert_eq!(policy.validate(), Err(expected), "{policy:?}");
        assert!(!expected.to_string().is_empty());
    }
    // NaN is not equal to itself: check the variant.
    let nan = Policy::new().wait(Wait::exponential_with_factor(s(1), s(5), f64::NAN));
    assert!(matches!(nan.validate(), Err(PolicyError::FactorBelowOne(f)) if f.is_nan()));
}

#[test]
fn invalid_policies_still_run_without_panicking() {
    let sleeps = skip_sleeps();
    // Zero attempts act as one.
    let calls = Cell::new(0);
    let zero = Policy::new().max_attempts(0);
    assert_eq!(
        zero.call(op(&calls, &[ErrorKind::Server; 3])),
        Err(err(ErrorKind::Server, 1))
    );
    assert_eq!(calls.get(), 1);
    // A factor below 1 acts as 1: the delay never shrinks below the base.
    let shrinking = Policy::new()
        .max_attempts(5)
        .wait(Wait::exponential_with_factor(s(2), s(10), 0.5))
        .jitter(Jitter::None);
    let calls = Cell::new(0);
    assert!(shrinking.call(op(&calls, &[ErrorKind::Server; 5])).is_err());
    assert_eq!(sleeps.delays(), [s(2); 4]);
    // A base above the cap acts as the cap.
    sleeps.clear();
    let inverted = Policy::new()
        .max_attempts(3)
        .wait(Wait::exponential(s(10), s(5)))
        .jitter(Jitter::None);
    let calls = Cell::new(0);
    assert!(inverted.call(op(&calls, &[ErrorKind::Server; 5])).is_err());
    assert_eq!(sleeps.delays(), [s(5); 2]);
    // A huge attempt count saturates at the cap instead of overflowing.
    sleeps.clear();
    let many = Policy::new()
        .max_attempts(80)
        .wait(Wait::exponential(s(1), s(7)))
        .jitter(Jitter::None);
    let calls = Cell::new(0);
    assert!(many.call(op(&calls, &[ErrorKind::Server; 80])).is_err());
    assert_eq!(calls.get(), 80);
    let delays = sleeps.delays();
    assert_eq!(&delays[..4], [s(1), s(2), s(4), s(7)]);
    assert!(delays[3..].iter().all(|d| *d == s(7)));
}

#[test]
fn wait_delay_and_bounds() {
    let w = Wait::exponential(s(1), s(60));
    assert_eq!(
        (1..=9).map(|n| w.delay(n)).collect::<Vec<_>>(),
        [1, 2, 4, 8, 16, 32, 60, 60, 60].map(s)
    );
    assert_eq!(w.delay(u32::MAX), s(60));
    assert_eq!(w.bounds(), (s(1), s(60)));
    assert_eq!(Wait::fixed(ms(7)).delay(9), ms(7));
    assert_eq!(Wait::none().delay(1), Duration::ZERO);
    let f = Wait::exponential_with_factor(s(1), s(10), 1.5);
    assert_eq!(f.delay(4), ms(3375));
}

// ---------------------------------------------------------------------------
// Classification.

#[test]
fn io_error_kinds_map_to_retry_kinds() {
    use io::ErrorKind as K;
    let table = [
        (K::TimedOut, ErrorKind::Timeout),
        (K::WouldBlock, ErrorKind::Timeout),
        (K::ConnectionReset, ErrorKind::Network),
        (K::ConnectionRefused, ErrorKind::Network),
        (K::ConnectionAborted, ErrorKind::Network),
        (K::BrokenPipe, ErrorKind::Network),
        (K::NotConnected, ErrorKind::Network),
        (K::UnexpectedEof, ErrorKind::Network),
        (K::NotFound, ErrorKind::Other),
        (K::PermissionDenied, ErrorKind::Other),
        (K::InvalidInput, ErrorKind::Other),
        (K::InvalidData, ErrorKind::Other),
        (K::AddrInUse, ErrorKind::Other),
        (K::Interrupted, ErrorKind::Other),
        (K::Other, ErrorKind::Other),
    ];
    for (io_kind, kind) in table {
        let e = io::Error::from(io_kind);
        assert_eq!(Classify::kind(&e), kind, "{io_kind:?}");
        assert_eq!(Classify::kind(&io_kind), kind, "{io_kind:?}");
        assert_eq!(
            Classify::kind(&io::Error::new(io_kind, "with a message")),
            kind
        );
        assert_eq!(e.retry_after(), None);
        assert_eq!(e.request_id(), None);
    }
}

#[test]
fn io_errors_are_retried_by_kind() {
    let _sleeps = skip_sleeps();
    let policy = Policy::new().max_attempts(3).wait(Wait::none());
    for (io_kind, calls_expected) in [
        (io::ErrorKind::TimedOut, 3),
        (io::ErrorKind::ConnectionReset, 3),
        (io::ErrorKind::NotFound, 1),
        (io::ErrorKind::PermissionDenied, 1),
    ] {
        let calls = Cell::new(0);
        let result: Result<(), io::Error> = policy.call(|| {
            calls.set(calls.get() + 1);
            Err(io::Error::new(io_kind, format!("call {}", calls.get())))
        });
        let e = result.unwrap_err();
        assert_eq!(e.kind(), io_kind);
        // The last error, unchanged.
        assert_eq!(e.to_string(), format!("call {calls_expected}"));
        assert_eq!(calls.get(), calls_expected, "{io_kind:?}");
    }
}

#[test]
fn classify_delegates_through_references_and_smart_pointers() {
    let e = ApiError::Api {
        kind: ErrorKind::RateLimit,
        attempt: 1,
        retry_after: Some(s(3)),
    };
    let boxed: Box<ApiError> = Box::new(e);
    let shared: Arc<ApiError> = Arc::new(e);
    let dynamic: Box<dyn Classify> = Box::new(e);
    for c in [&e as &dyn Classify, &&e, &boxed, &shared, &dynamic] {
        assert_eq!(c.kind(), ErrorKind::RateLimit);
        assert_eq!(c.retry_after(), Some(s(3)));
        assert_eq!(c.request_id(), Some("req-1"));
    }
}

#[tokio::test(start_paused = true)]
async fn elapsed_errors_classify_as_timeout() {
    let tokio_elapsed = tokio::time::timeout(ms(1), sleep(s(1))).await.unwrap_err();
    assert_eq!(Classify::kind(&tokio_elapsed), ErrorKind::Timeout);
    let result: Result<(), ApiError> = Policy::new()
        .attempt_timeout(ms(10))
        .max_attempts(1)
        .call_async(|| async {
            sleep(s(1)).await;
            Ok(())
        })
        .await;
    let Err(ApiError::Cut(e)) = result else {
        panic!("expected a cut-off, got {result:?}");
    };
    assert_eq!(Classify::kind(&e), ErrorKind::Timeout);
    assert!(!e.to_string().is_empty());
}

#[test]
fn kind_sets_and_kinds() {
    let transient = KindSet::transient();
    for kind in ErrorKind::ALL {
        assert_eq!(transient.contains(kind), kind.is_transient(), "{kind}");
        assert_eq!(
            kind.is_never_retried(),
            matches!(kind, ErrorKind::Client | ErrorKind::Auth | ErrorKind::Quota)
        );
        assert_eq!(kind.to_string(), kind.name());
    }
    assert!(KindSet::empty().is_empty());
    assert!(!transient
        .without(ErrorKind::Server)
        .contains(ErrorKind::Server));
    assert_eq!(transient.iter().count(), 5);
}

/// The closure given to `call_async` runs inside its attempt: `attempt()`
/// in it (before its future is even made) sees the attempt's number and the
/// call's one idempotency key, as the future's own code does.
#[tokio::test(start_paused = true)]
async fn call_async_closures_run_inside_their_attempt() {
    let seen = RefCell::new(Vec::new());
    let result: Result<(), io::Error> = Policy::new()
        .max_attempts(3)
        .wait(Wait::none())
        .call_async(|| {
            let now = attempt();
            seen.borrow_mut()
                .push((now.number(), now.idempotency_key()));
            async { Err(io::ErrorKind::ConnectionReset.into()) }
        })
        .await;
    assert!(result.is_err());
    let seen = seen.into_inner();
    assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(
        seen.iter().all(|s| s.1 == seen[0].1),
        "one key per call: {seen:?}"
    );
}

/// A call the open breaker refuses never calls its closure: nothing of the
/// request is built, nothing is sent.
#[tokio::test(start_paused = true)]
async fn a_refused_call_async_never_calls_its_closure() {
    let breaker = llm_resilience::CircuitBreaker::new();
    breaker.isolate();
    let called = Cell::new(false);
    let result: Result<(), llm_resilience::http::HttpError> = Policy::new()
        .breaker(&breaker)
        .call_async(|| {
            called.set(true);
            async { Ok(()) }
        })
        .await;
    assert!(result.unwrap_err().circuit_open().is_some());
    assert!(!called.get());
}
