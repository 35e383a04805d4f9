//! `CircuitBreaker` and `RetryBudget` on their own: every transition of the
//! breaker, on tokio's paused clock so that breaks and windows are exact; the
//! budget's limit, refills and floor; keyed budgets; and exact counts with
//! many threads at once.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::io::{self, Write};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration;

use llm_resilience::{
    retry, testing, BreakerState, CircuitBreaker, CircuitOpen, Classify, ErrorKind, KeyedBudgets,
    RetryBudget,
};
use tokio::time::advance;

const fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Report `n` calls that succeed.
fn succeed(breaker: &CircuitBreaker, n: usize) {
    for _ in 0..n {
        breaker.try_acquire().expect("closed").success();
    }
}

/// Report `n` calls that fail with `kind`.
fn fail(breaker: &CircuitBreaker, n: usize, kind: ErrorKind) {
    for _ in 0..n {
        breaker.try_acquire().expect("closed").failure(kind);
    }
}

fn is_open(breaker: &CircuitBreaker) -> bool {
    matches!(breaker.state(), BreakerState::Open { .. })
}

/// Open `breaker` with failures.
fn trip(breaker: &CircuitBreaker) {
    for _ in 0..1000 {
        // (Not `is_open`: with no break, an open breaker is half-open.)
        if breaker.state() != BreakerState::Closed {
            return;
        }
        fail(breaker, 1, ErrorKind::Server);
    }
    panic!("the breaker did not open: {breaker:?}");
}

// ---------------------------------------------------------------------------
// Closed -> open.

#[tokio::test(start_paused = true)]
async fn opens_when_the_failure_ratio_is_reached_over_min_calls() {
    let breaker = CircuitBreaker::new().failure_ratio(0.5).min_calls(20);
    // Successes recorded before any failure, without reading the clock,
    // still count.
    succeed(&breaker, 10);
    fail(&breaker, 9, ErrorKind::Server);
    assert_eq!(
        breaker.state(),
        BreakerState::Closed,
        "19 calls < min_calls"
    );
    fail(&breaker, 1, ErrorKind::Timeout);
    // 10 failures in 20 calls: exactly the ratio.
    assert_eq!(breaker.state(), BreakerState::Open { retry_in: s(30) });
    let refused = breaker.try_acquire().unwrap_err();
    assert_eq!(refused.retry_in(), Some(s(30)));
}

#[tokio::test(start_paused = true)]
async fn stays_closed_below_the_ratio() {
    let breaker = CircuitBreaker::new().failure_ratio(0.5).min_calls(20);
    succeed(&breaker, 11);
    fail(&breaker, 9, ErrorKind::Network);
    assert_eq!(breaker.state(), BreakerState::Closed, "9 in 20 < 0.5");
    fail(&breaker, 1, ErrorKind::Network);
    assert_eq!(breaker.state(), BreakerState::Closed, "10 in 21 < 0.5");
    fail(&breaker, 1, ErrorKind::Network);
    assert!(is_open(&breaker), "11 in 22: {breaker:?}");
}

#[tokio::test(start_paused = true)]
async fn min_calls_holds_off_a_small_sample() {
    let breaker = CircuitBreaker::new().min_calls(5);
    fail(&breaker, 4, ErrorKind::Overloaded);
    assert_eq!(breaker.state(), BreakerState::Closed, "100% of 4 calls");
    fail(&breaker, 1, ErrorKind::Overloaded);
    assert!(is_open(&breaker));
}

#[tokio::test(start_paused = true)]
async fn opens_on_consecutive_failures_and_a_success_ends_the_run() {
    let breaker = CircuitBreaker::new()
        .min_calls(1000)
        .consecutive_failures(3);
    fail(&breaker, 2, ErrorKind::Server);
    succeed(&breaker, 1);
    fail(&breaker, 2, ErrorKind::Timeout);
    assert_eq!(breaker.state(), BreakerState::Closed, "the run was broken");
    fail(&breaker, 1, ErrorKind::Network);
    assert!(is_open(&breaker), "three in a row");
}

#[tokio::test(start_paused = true)]
async fn failures_older_than_the_window_are_forgotten() {
    let make = || {
        CircuitBreaker::new()
            .window(s(10))
            .min_calls(4)
            .failure_ratio(0.5)
    };
    // Three failures, then a fourth 8 s later: still in the window.
    let recent = make();
    fail(&recent, 3, ErrorKind::Server);
    advance(s(8)).await;
    fail(&recent, 1, ErrorKind::Server);
    assert!(is_open(&recent), "4 failures in 8 s: {recent:?}");

    // The same, 10 s later: the first three have left the window.
    let old = make();
    fail(&old, 3, ErrorKind::Server);
    advance(s(10)).await;
    fail(&old, 1, ErrorKind::Server);
    assert_eq!(old.state(), BreakerState::Closed);
    fail(&old, 2, ErrorKind::Server);
    assert_eq!(old.state(), BreakerState::Closed, "3 calls in the window");
    fail(&old, 1, ErrorKind::Server);
    assert!(is_open(&old));
}

#[tokio::test(start_paused = true)]
async fn successes_spread_over_a_long_quiet_spell_mostly_leave_the_window() {
    let breaker = CircuitBreaker::new()
        .window(s(10))
        .min_calls(10)
        .failure_ratio(0.5);
    fail(&breaker, 1, ErrorKind::Server);
    // 100 successes at unknown times over the next 100 s: about 9 of them
    // are in the last 10 s, not 100.
    succeed(&breaker, 100);
    advance(s(100)).await;
    fail(&breaker, 10, ErrorKind::Server);
    assert!(is_open(&breaker), "10 failures and about 9 successes");
}

// ---------------------------------------------------------------------------
// Open -> half-open -> closed or open.

#[tokio::test(start_paused = true)]
async fn open_turns_half_open_once_the_break_is_over() {
    let breaker = CircuitBreaker::new()
        .consecutive_failures(1)
        .break_for(s(30));
    trip(&breaker);
    advance(s(30) - ms(1)).await;
    assert_eq!(breaker.state(), BreakerState::Open { retry_in: ms(1) });
    let refused = breaker.try_acquire().unwrap_err();
    assert_eq!(refused.retry_in(), Some(ms(1)));
    assert_eq!(
        refused.to_string(),
        "circuit breaker open; a probe is admitted in 1ms"
    );

    advance(ms(1)).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    let probe = breaker.try_acquire().expect("a probe");
    assert!(probe.is_probe());
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    // One probe at a time by default.
    let refused = breaker.try_acquire().unwrap_err();
    assert!(refused.to_string().starts_with("circuit breaker half-open"));
    assert_eq!(refused.retry_in(), Some(s(30)));
    drop(probe);
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_succeeds_closes_it_with_an_empty_window() {
    let breaker = CircuitBreaker::new()
        .min_calls(4)
        .failure_ratio(0.5)
        .break_for(s(5));
    fail(&breaker, 4, ErrorKind::Server);
    assert!(is_open(&breaker));
    advance(s(5)).await;
    breaker.try_acquire().expect("a probe").success();
    assert_eq!(breaker.state(), BreakerState::Closed);
    let permit = breaker.try_acquire().expect("closed");
    assert!(!permit.is_probe());
    permit.success();
    // Had the four old failures been kept, 5 of 7 would reopen it.
    fail(&breaker, 1, ErrorKind::Server);
    assert_eq!(breaker.state(), BreakerState::Closed);
    fail(&breaker, 2, ErrorKind::Server);
    assert!(is_open(&breaker), "3 failures in 4 calls");
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_fails_opens_it_for_a_new_break() {
    let breaker = CircuitBreaker::new()
        .consecutive_failures(1)
        .break_for(s(30));
    trip(&breaker);
    advance(s(30)).await;
    breaker
        .try_acquire()
        .expect("a probe")
        .failure(ErrorKind::Overloaded);
    assert_eq!(breaker.state(), BreakerState::Open { retry_in: s(30) });
    advance(s(29)).await;
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_in(),
        Some(s(1)),
        "the new break runs from the probe's failure"
    );
    advance(s(1)).await;
    assert!(breaker.try_acquire().expect("a probe").is_probe());
}

#[tokio::test(start_paused = true)]
async fn half_open_admits_at_most_the_configured_probes() {
    let breaker = CircuitBreaker::new()
        .consecutive_failures(1)
        .break_for(s(10))
        .half_open_probes(3);
    trip(&breaker);
    advance(s(10)).await;
    let probes: Vec<_> = (0..10).filter_map(|_| breaker.try_acquire().ok()).collect();
    assert_eq!(probes.len(), 3);
    assert!(probes.iter().all(|p| p.is_probe()));
    // The first probe to succeed closes it; the others' results no longer
    // matter.
    let mut probes = probes.into_iter();
    probes.next().unwrap().success();
    assert_eq!(breaker.state(), BreakerState::Closed);
    probes.next().unwrap().failure(ErrorKind::Server);
    assert_eq!(breaker.state(), BreakerState::Closed, "a stale probe");
    drop(probes);
    assert!(breaker.try_acquire().is_ok());
}

#[test]
fn half_open_admits_at_most_the_configured_probes_to_callers_at_once() {
    const THREADS: usize = 16;
    for probes in [1, 3] {
        // No break: the breaker is half-open as soon as it opens.
        let breaker = CircuitBreaker::new()
            .consecutive_failures(1)
            .break_for(Duration::ZERO)
            .half_open_probes(probes);
        breaker.try_acquire().unwrap().failure(ErrorKind::Server);
        let start = Barrier::new(THREADS);
        let held = Barrier::new(THREADS);
        let admitted = Mutex::new(0);
        thread::scope(|scope| {
            for _ in 0..THREADS {
                scope.spawn(|| {
                    start.wait();
                    let permit = breaker.try_acquire();
                    if let Ok(permit) = &permit {
                        assert!(permit.is_probe());
                        *admitted.lock().unwrap() += 1;
                    }
                    // Hold every permit until all have asked.
                    held.wait();
                    drop(permit);
                });
            }
        });
        assert_eq!(*admitted.lock().unwrap(), probes);
    }
}

#[tokio::test(start_paused = true)]
async fn a_dropped_probe_gives_its_slot_back() {
    let breaker = CircuitBreaker::new()
        .consecutive_failures(1)
        .break_for(s(10));
    trip(&breaker);
    advance(s(10)).await;
    let probe = breaker.try_acquire().expect("a probe");
    assert!(breaker.try_acquire().is_err());
    drop(probe); // cancelled: no outcome
    assert_eq!(breaker.state(), BreakerState::HalfOpen, "nothing recorded");
    let probe = breaker.try_acquire().expect("the slot is free again");
    probe.success();
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_permit_records_nothing() {
    let breaker = CircuitBreaker::new()
        .min_calls(1000)
        .consecutive_failures(2);
    fail(&breaker, 1, ErrorKind::Server);
    // Dropped: neither a success (which would end the run) nor a failure.
    drop(breaker.try_acquire().unwrap());
    drop(breaker.try_acquire().unwrap());
    assert_eq!(breaker.state(), BreakerState::Closed);
    fail(&breaker, 1, ErrorKind::Server);
    assert!(is_open(&breaker), "the run of two was not broken");
}

#[tokio::test(start_paused = true)]
async fn probes_out_for_a_whole_break_are_presumed_lost() {
    let breaker = CircuitBreaker::new()
        .consecutive_failures(1)
        .break_for(s(10));
    trip(&breaker);
    advance(s(10)).await;
    let hung = breaker.try_acquire().expect("a probe");
    advance(s(9)).await;
    assert_eq!(breaker.try_acquire().unwrap_err().retry_in(), Some(s(1)));
    advance(s(1)).await;
    let fresh = breaker.try_acquire().expect("a new probe");
    // The hung probe's late failure belongs to a finished generation.
    hung.failure(ErrorKind::Timeout);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    fresh.success();
    assert_eq!(breaker.state(), BreakerState::Closed);
}

// ---------------------------------------------------------------------------
// What counts as a failure.

#[tokio::test(start_paused = true)]
async fn client_auth_quota_and_other_errors_never_open_it() {
    let breaker = CircuitBreaker::new()
        .min_calls(1)
        .failure_ratio(0.0)
        .consecutive_failures(1);
    for kind in [
        ErrorKind::Client,
        ErrorKind::Auth,
        ErrorKind::Quota,
        ErrorKind::Other,
    ] {
        fail(&breaker, 100, kind);
    }
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn errors_that_do_not_count_are_successes() {
    // They are calls in the window: 2 server errors in 4 calls is 0.5.
    let breaker = CircuitBreaker::new().min_calls(4).failure_ratio(0.5);
    fail(&breaker, 2, ErrorKind::Client);
    fail(&breaker, 1, ErrorKind::Server);
    assert_eq!(breaker.state(), BreakerState::Closed);
    fail(&breaker, 1, ErrorKind::Server);
    assert!(is_open(&breaker));

    // They end a run of failures.
    let breaker = CircuitBreaker::new()
        .min_calls(1000)
        .consecutive_failures(2);
    fail(&breaker, 1, ErrorKind::Server);
    fail(&breaker, 1, ErrorKind::Auth);
    fail(&breaker, 1, ErrorKind::Server);
    assert_eq!(breaker.state(), BreakerState::Closed);

    // From a probe, they close it: the provider answered.
    let breaker = CircuitBreaker::new()
        .consecutive_failures(1)
        .break_for(s(1));
    trip(&breaker);
    advance(s(1)).await;
    breaker
        .try_acquire()
        .expect("a probe")
        .failure(ErrorKind::Client);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn rate_limits_count_only_when_asked() {
    let ignoring = CircuitBreaker::new().min_calls(1).consecutive_failures(1);
    fail(&ignoring, 50, ErrorKind::RateLimit);
    assert_eq!(ignoring.state(), BreakerState::Closed);

    let counting = CircuitBreaker::new()
        .min_calls(1000)
        .consecutive_failures(3)
        .count_rate_limits(true);
    fail(&counting, 2, ErrorKind::RateLimit);
    assert_eq!(counting.state(), BreakerState::Closed);
    fail(&counting, 1, ErrorKind::RateLimit);
    assert!(is_open(&counting));
}

// ---------------------------------------------------------------------------
// Manual control, and the error.

#[tokio::test(start_paused = true)]
async fn isolate_holds_it_open_until_close() {
    let breaker = CircuitBreaker::new().min_calls(2).failure_ratio(0.5);
    let late = breaker.try_acquire().unwrap();
    fail(&breaker, 1, ErrorKind::Server);
    breaker.isolate();
    assert_eq!(breaker.state(), BreakerState::Isolated);
    let refused = breaker.try_acquire().unwrap_err();
    assert!(refused.is_isolated());
    assert_eq!(refused.retry_in(), None);
    assert_eq!(refused.retry_after(), None);
    assert_eq!(
        refused.to_string(),
        "circuit breaker isolated; no call is admitted until it is closed"
    );
    // Neither time nor calls admitted before change that.
    late.success();
    advance(s(3600)).await;
    assert_eq!(breaker.state(), BreakerState::Isolated);

    breaker.close();
    assert_eq!(breaker.state(), BreakerState::Closed);
    // The window was emptied: one failure of two calls would have opened it.
    fail(&breaker, 1, ErrorKind::Server);
    assert_eq!(breaker.state(), BreakerState::Closed);
    fail(&breaker, 1, ErrorKind::Server);
    assert!(is_open(&breaker));

    // Close also ends a break, and isolate overrides half-open.
    breaker.close();
    assert!(breaker.try_acquire().is_ok());
    trip(&breaker);
    breaker.isolate();
    advance(s(3600)).await;
    assert!(breaker.try_acquire().unwrap_err().is_isolated());
}

#[tokio::test(start_paused = true)]
async fn a_probe_in_flight_when_isolated_changes_nothing() {
    let breaker = CircuitBreaker::new()
        .consecutive_failures(1)
        .break_for(s(1));
    trip(&breaker);
    advance(s(1)).await;
    let probe = breaker.try_acquire().expect("a probe");
    breaker.isolate();
    probe.success();
    assert_eq!(breaker.state(), BreakerState::Isolated);
}

#[tokio::test(start_paused = true)]
async fn circuit_open_is_an_overloaded_error_with_a_retry_after() {
    let breaker = CircuitBreaker::new()
        .consecutive_failures(1)
        .break_for(ms(12_300));
    trip(&breaker);
    let refused: CircuitOpen = breaker.try_acquire().unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Overloaded);
    assert_eq!(refused.retry_after(), Some(ms(12_300)));
    assert_eq!(
        refused.to_string(),
        "circuit breaker open; a probe is admitted in 12.3s"
    );
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(refused);
    assert!(boxed.to_string().contains("12.3s"));
}

#[test]
fn a_breaker_sees_the_time_skipped_under_skip_sleeps() {
    static BREAKER: CircuitBreaker = CircuitBreaker::new()
        .consecutive_failures(1)
        .break_for(Duration::from_secs(60));

    #[retry(max_attempts = 3, wait = fixed(30s), jitter = none)]
    fn flaky(failures: &mut u32) -> Result<(), io::Error> {
        if *failures > 0 {
            *failures -= 1;
            return Err(io::ErrorKind::ConnectionReset.into());
        }
        Ok(())
    }

    let sleeps = testing::skip_sleeps();
    trip(&BREAKER);
    assert!(BREAKER.try_acquire().is_err());
    // Two retries skip 60 s of sleep: the break is over on this thread.
    flaky(&mut 2).unwrap();
    assert_eq!(sleeps.total(), s(60));
    assert_eq!(BREAKER.state(), BreakerState::HalfOpen);
    BREAKER.try_acquire().expect("a probe").success();
    assert_eq!(BREAKER.state(), BreakerState::Closed);
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Open, probe, reopen, probe, close, isolate and close a breaker.
fn every_transition() {
    let breaker = CircuitBreaker::new()
        .consecutive_failures(1)
        .break_for(Duration::ZERO);
    succeed(&breaker, 3); // no transition, no event
    trip(&breaker);
    breaker
        .try_acquire()
        .unwrap()
        .failure(ErrorKind::Overloaded);
    breaker.try_acquire().unwrap().success();
    breaker.isolate();
    breaker.close();
}

#[test]
fn every_transition_is_logged() {
    // Other tests here hit the same callsites from other threads without a
    // subscriber; one registering a callsite while `with_default` below
    // registers its subscriber can leave it disabled. Registering them all
    // first, under a subscriber that discards everything, makes the capture
    // below see every event.
    let discard = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(io::sink)
        .finish();
    tracing::subscriber::with_default(discard, every_transition);

    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .without_time()
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, every_transition);
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = logs.lines().collect();
    let expected = [
        ("WARN", "closed", "open", "circuit breaker opened"),
        ("WARN", "open", "half-open", "circuit breaker half-open"),
        ("WARN", "half-open", "open", "probe failed"),
        ("WARN", "open", "half-open", "circuit breaker half-open"),
        ("INFO", "half-open", "closed", "probe succeeded"),
        ("WARN", "closed", "isolated", "circuit breaker isolated"),
        ("INFO", "isolated", "closed", "closed manually"),
    ];
    assert_eq!(lines.len(), expected.len(), "{logs}");
    for (line, (level, from, to, message)) in lines.iter().zip(expected) {
        assert!(line.contains(level), "{line}");
        assert!(
            line.contains(&format!("from=\"{from}\" to=\"{to}\"")),
            "{line}"
        );
        assert!(line.contains(message), "{line}");
        assert!(line.contains("llm_resilience"), "{line}");
    }
    assert!(
        lines[0].contains("reason=\"consecutive failures\""),
        "{logs}"
    );
}

// ---------------------------------------------------------------------------
// Exact counts with many threads.

const THREADS: usize = 8;
const PER_THREAD: usize = 10_000;
const CALLS: u32 = (THREADS * PER_THREAD) as u32;

/// Half of `CALLS` fail, half succeed, from every thread at once.
fn hammer(breaker: &CircuitBreaker) {
    let start = Barrier::new(THREADS);
    thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                start.wait();
                for i in 0..PER_THREAD {
                    let permit = breaker.try_acquire().expect("closed");
                    if i % 2 == 0 {
                        permit.success();
                    } else {
                        permit.failure(ErrorKind::Server);
                    }
                }
            });
        }
    });
}

#[test]
fn breaker_counts_are_exact_with_many_threads() {
    // Long windows, so that all of it counts however slow the machine.
    let window = Duration::from_secs(3600);
    // With every call counted, one more failure makes 40_001 of 80_001:
    // over half, and enough calls. A lost call or failure would leave it
    // closed.
    let exact = CircuitBreaker::new()
        .window(window)
        .min_calls(CALLS + 1)
        .failure_ratio(0.5);
    hammer(&exact);
    assert_eq!(exact.state(), BreakerState::Closed);
    fail(&exact, 1, ErrorKind::Server);
    assert!(is_open(&exact), "{exact:?}");

    // And one call fewer than needed keeps it closed: none counted twice.
    let short = CircuitBreaker::new()
        .window(window)
        .min_calls(CALLS + 2)
        .failure_ratio(0.5);
    hammer(&short);
    fail(&short, 1, ErrorKind::Server);
    assert_eq!(short.state(), BreakerState::Closed);
    fail(&short, 1, ErrorKind::Server);
    assert!(is_open(&short));
}

#[test]
fn budget_counts_are_exact_with_many_threads() {
    let budget = RetryBudget::new()
        .ratio(0.1)
        .min_retries_per_second(0)
        .window(Duration::from_secs(3600));
    let start = Barrier::new(THREADS);
    thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                start.wait();
                for _ in 0..PER_THREAD {
                    budget.record_call();
                }
            });
        }
    });
    assert_eq!(budget.available(), u64::from(CALLS) / 10);

    let granted = Mutex::new(0);
    thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                start.wait();
                let mine = (0..PER_THREAD).filter(|_| budget.try_retry()).count();
                *granted.lock().unwrap() += mine;
            });
        }
    });
    assert_eq!(*granted.lock().unwrap(), CALLS as usize / 10);
    assert_eq!(budget.available(), 0);
}

#[test]
fn budget_never_overdraws_while_calls_and_retries_race() {
    let budget = RetryBudget::new()
        .ratio(0.25)
        .min_retries_per_second(0)
        .window(Duration::from_secs(3600));
    let start = Barrier::new(THREADS);
    let granted = Mutex::new(0);
    thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                start.wait();
                let mut mine = 0;
                for _ in 0..PER_THREAD {
                    budget.record_call();
                    // Ask for more than the budget allows.
                    mine += usize::from(budget.try_retry());
                    mine += usize::from(budget.try_retry());
                }
                *granted.lock().unwrap() += mine;
            });
        }
    });
    let granted = *granted.lock().unwrap() as u64;
    let limit = u64::from(CALLS) / 4;
    assert!(granted <= limit, "{granted} retries for {CALLS} calls");
    assert_eq!(granted + budget.available(), limit);
}

// ---------------------------------------------------------------------------
// The budget.

#[tokio::test(start_paused = true)]
async fn a_budget_allows_its_ratio_of_calls_plus_its_floor_and_no_more() {
    // 10% of 100 calls, plus 10 a second over 10 s.
    let budget = RetryBudget::new()
        .ratio(0.1)
        .min_retries_per_second(10)
        .window(s(10));
    for _ in 0..100 {
        budget.record_call();
    }
    assert_eq!(budget.available(), 110);
    let granted = (0..1000).filter(|_| budget.try_retry()).count();
    assert_eq!(granted, 110);
    assert_eq!(budget.available(), 0);

    let no_floor = RetryBudget::new().ratio(0.1).min_retries_per_second(0);
    for _ in 0..100 {
        no_floor.record_call();
    }
    assert_eq!((0..1000).filter(|_| no_floor.try_retry()).count(), 10);
}

#[tokio::test(start_paused = true)]
async fn a_budget_never_lets_through_more_than_its_ratio() {
    // At ratios where `retries / (calls + retries)` arithmetic would let
    // twice the load through, retries stay at ratio × calls.
    for (ratio, calls, allowed) in [(0.5, 100, 50), (1.0, 100, 100), (0.1, 19, 1), (0.1, 20, 2)] {
        let budget = RetryBudget::new().ratio(ratio).min_retries_per_second(0);
        for _ in 0..calls {
            budget.record_call();
        }
        let granted = (0..1000).filter(|_| budget.try_retry()).count();
        assert_eq!(granted, allowed, "ratio {ratio}, {calls} calls");
    }
}

#[tokio::test(start_paused = true)]
async fn a_budget_refills_as_calls_come_in() {
    let budget = RetryBudget::new().ratio(0.1).min_retries_per_second(0);
    for _ in 0..100 {
        budget.record_call();
    }
    assert_eq!((0..100).filter(|_| budget.try_retry()).count(), 10);
    assert!(!budget.try_retry());
    for _ in 0..9 {
        budget.record_call();
    }
    assert!(!budget.try_retry(), "109 calls: still 10");
    budget.record_call();
    assert!(budget.try_retry(), "110 calls: 11");
    assert!(!budget.try_retry());
}

#[tokio::test(start_paused = true)]
async fn a_budget_refills_as_time_passes() {
    let budget = RetryBudget::new()
        .ratio(0.0)
        .min_retries_per_second(1)
        .window(s(10));
    assert_eq!((0..100).filter(|_| budget.try_retry()).count(), 10);
    advance(s(5)).await;
    assert_eq!(budget.available(), 0, "the retries are still in the window");
    assert!(!budget.try_retry());
    advance(s(5)).await;
    // A retry leaves the count only once a whole window has passed since
    // it: at the start of the second bucket after the window's end.
    assert_eq!(budget.available(), 0, "a whole window has not passed");
    advance(s(1)).await;
    assert_eq!(budget.available(), 10, "they have left it");
    assert_eq!((0..100).filter(|_| budget.try_retry()).count(), 10);
}

#[tokio::test(start_paused = true)]
async fn calls_leave_the_window_too() {
    let budget = RetryBudget::new()
        .ratio(0.5)
        .min_retries_per_second(0)
        .window(s(10));
    budget.try_retry(); // read the clock: the calls below come after it
    for _ in 0..20 {
        budget.record_call();
    }
    assert_eq!(budget.available(), 10);
    advance(s(20)).await;
    // 20 calls at unknown times over the last 20 s: some are still counted,
    // but not all.
    let left = budget.available();
    assert!((1..10).contains(&left), "{left}");
    advance(s(10)).await;
    assert_eq!(budget.available(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_floor_lets_a_quiet_caller_retry() {
    let budget = RetryBudget::new()
        .ratio(0.1)
        .min_retries_per_second(2)
        .window(s(5));
    budget.record_call();
    // 0.1 × 1 call + 2 a second × 5 s.
    assert_eq!((0..100).filter(|_| budget.try_retry()).count(), 10);
    // The window and one bucket (0.5 s) later, the retries have left it.
    advance(ms(5500)).await;
    assert_eq!((0..100).filter(|_| budget.try_retry()).count(), 10);
}

#[tokio::test(start_paused = true)]
async fn retries_count_for_a_whole_window_however_it_lines_up_with_the_buckets() {
    // 10% of calls, no floor, a 10 s window in 1 s buckets, 100 calls a
    // second. For 10 s the calls all succeed; then every call wants a retry
    // (an outage). The calls before it pay for a burst of retries at its
    // start; those must not leave the count before 10 s have passed, or a
    // second burst would fall within the same 10 s.
    let budget = RetryBudget::new()
        .ratio(0.1)
        .min_retries_per_second(0)
        .window(s(10));
    budget.try_retry(); // start the window
    let mut by_tick = Vec::new();
    for tick in 0..300u64 {
        for _ in 0..10 {
            budget.record_call();
        }
        if tick >= 100 {
            while budget.try_retry() {
                by_tick.push(tick);
            }
        }
        advance(ms(100)).await;
    }
    // Over every 10 s stretch of the outage: at most 10% of the 1000 calls
    // a window holds, plus what one bucket of lag may add (10 retries).
    for start in 100..200 {
        let in_stretch = by_tick
            .iter()
            .filter(|&&t| t >= start && t < start + 100)
            .count();
        assert!(
            in_stretch <= 100 + 10,
            "{in_stretch} retries in the 10 s from tick {start}"
        );
    }
    assert!(by_tick.len() >= 150, "{} retries in all", by_tick.len());
}

#[test]
fn keyed_budgets_are_independent_and_bounded() {
    static BUDGETS: KeyedBudgets<4> =
        KeyedBudgets::new(RetryBudget::new().ratio(0.1).min_retries_per_second(0));

    let keys: Vec<String> = (0..100).map(|i| format!("model-{i}")).collect();
    let mut distinct: Vec<&RetryBudget> = Vec::new();
    for key in &keys {
        let budget = BUDGETS.key(key.as_str());
        assert!(std::ptr::eq(budget, BUDGETS.key(key.as_str())), "stable");
        if !distinct.iter().any(|b| std::ptr::eq(*b, budget)) {
            distinct.push(budget);
        }
    }
    assert_eq!(distinct.len(), 4, "100 keys share 4 budgets");

    // Two keys with budgets of their own, and one that shares the first's.
    let a = keys[0].as_str();
    let b = keys
        .iter()
        .find(|k| !std::ptr::eq(BUDGETS.key(k.as_str()), BUDGETS.key(a)))
        .unwrap();
    let shares_a = keys[1..]
        .iter()
        .find(|k| std::ptr::eq(BUDGETS.key(k.as_str()), BUDGETS.key(a)))
        .unwrap();
    for _ in 0..10 {
        BUDGETS.key(a).record_call();
        BUDGETS.key(b.as_str()).record_call();
    }
    assert!(BUDGETS.key(a).try_retry());
    assert!(!BUDGETS.key(a).try_retry(), "a's budget is spent");
    assert!(!BUDGETS.key(shares_a.as_str()).try_retry(), "and shared");
    assert!(BUDGETS.key(b.as_str()).try_retry(), "b's is its own");
}

#[test]
fn keyed_budgets_take_any_hashable_key() {
    let budgets: KeyedBudgets<16> = KeyedBudgets::new(RetryBudget::new());
    let by_tuple = budgets.key(&("anthropic", 3_u8));
    assert!(std::ptr::eq(by_tuple, budgets.key(&("anthropic", 3_u8))));
    assert_eq!(by_tuple.available(), 100, "the template's settings");
    let by_str: &RetryBudget = budgets.key("openai");
    assert_eq!(by_str.available(), 100);
}
