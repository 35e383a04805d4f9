//! Loom model checks of the lock-free `CircuitBreaker` and `RetryBudget`:
//! every interleaving of two (at most three) threads, and every value each
//! atomic load may return under the memory model.
//!
//! ```text
//! RUSTFLAGS="--cfg retry_loom" CARGO_TARGET_DIR=/work/target-loom \
//!     cargo test -p llm-resilience --no-default-features --test loom --release
//! ```
//!
//! Under `cfg(retry_loom)` the crate's atomics are loom's (`src/sync.rs`) and
//! its clock is `__private::loom::set_now`, so that every execution of a
//! model reads the same times. `LOOM_LOG=trace LOOM_LOCATION=1` prints the
//! interleaving of a failing execution.
#![cfg(retry_loom)]

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use llm_resilience::__private::loom::set_now;
use llm_resilience::{
    BreakerPermit, BreakerState, CircuitBreaker, CircuitOpen, ErrorKind, RetryBudget,
};
use loom::thread;

/// A time at the epoch, as `now_ns` counts it.
const T0: u64 = 1 << 60;

const SEC: u64 = 1_000_000_000;

const BREAK: Duration = Duration::from_secs(10);

/// The model clock is global: one model at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Check `f` under every interleaving, with the clock at `T0` at the start of
/// each execution.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    loom::model(move || {
        set_now(T0);
        f();
    });
}

/// [`model`], exploring only the interleavings with at most `bound` preemptions
/// (unless `LOOM_MAX_PREEMPTIONS` says otherwise): for three threads, whose
/// every interleaving takes minutes.
fn model_bounded(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    /// Removes the bound it set, even if the model fails.
    struct Unset;
    impl Drop for Unset {
        fn drop(&mut self) {
            std::env::remove_var("LOOM_MAX_PREEMPTIONS");
        }
    }
    let _serial = SERIAL.lock().unwrap_or_else(PoisonError::into_inner);
    // `loom::model` reads the bound from the environment, and is what prints
    // the trace of `LOOM_LOG`; the lock keeps other models from seeing it.
    let _unset = std::env::var_os("LOOM_MAX_PREEMPTIONS").is_none().then(|| {
        std::env::set_var("LOOM_MAX_PREEMPTIONS", bound.to_string());
        Unset
    });
    loom::model(move || {
        set_now(T0);
        f();
    });
}

/// Model threads need `'static` borrows; a breaker or budget per execution
/// is small, so leak it.
fn leak<T>(t: T) -> &'static T {
    Box::leak(Box::new(t))
}

/// The outcomes a model saw across its executions, to show that it explored
/// the interleavings it is about.
struct Seen<T>(Mutex<BTreeSet<T>>);

impl<T: Ord> Seen<T> {
    fn new() -> &'static Self {
        leak(Seen(Mutex::new(BTreeSet::new())))
    }

    fn add(&self, t: T) {
        self.0.lock().unwrap().insert(t);
    }

    fn take(&self) -> BTreeSet<T> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

// ---------------------------------------------------------------------------
// (a) Opening.

/// Two failures at once on a breaker that opens after two in a row: it opens,
/// once, whichever thread counts the second failure.
#[test]
fn concurrent_failures_open_once() {
    model(|| {
        let breaker = leak(
            CircuitBreaker::new()
                .consecutive_failures(2)
                .break_for(BREAK),
        );
        let other = thread::spawn(move || {
            breaker.try_acquire().unwrap().failure(ErrorKind::Server);
        });
        breaker.try_acquire().unwrap().failure(ErrorKind::Timeout);
        other.join().unwrap();
        // Opened at T0 for exactly one break: the clock has not moved, so
        // a second opening would have had to close the breaker in between.
        assert_eq!(breaker.state(), BreakerState::Open { retry_in: BREAK });
        let refused = breaker.try_acquire().unwrap_err();
        assert_eq!(refused.retry_in(), Some(BREAK));
    });
}

/// The failure ratio sees every call and failure of two threads: 2 failures
/// in 4 calls reach 0.5 only if no count is lost, and the last failure
/// recorded always sees all four.
#[test]
fn window_counts_of_two_threads_are_exact() {
    model(|| {
        let breaker = leak(
            CircuitBreaker::new()
                .failure_ratio(0.5)
                .min_calls(4)
                .break_for(BREAK),
        );
        let other = thread::spawn(move || {
            breaker.try_acquire().unwrap().success();
            breaker.try_acquire().unwrap().failure(ErrorKind::Server);
        });
        breaker.try_acquire().unwrap().success();
        breaker.try_acquire().unwrap().failure(ErrorKind::Network);
        other.join().unwrap();
        assert_eq!(breaker.state(), BreakerState::Open { retry_in: BREAK });
    });
}

/// Three successes and one failure never open a breaker at 0.5 with
/// `min_calls(4)`: no event is counted twice either.
#[test]
fn window_counts_do_not_overcount() {
    model(|| {
        let breaker = leak(
            CircuitBreaker::new()
                .failure_ratio(0.5)
                .min_calls(4)
                .break_for(BREAK),
        );
        let other = thread::spawn(move || {
            breaker.try_acquire().unwrap().success();
            breaker.try_acquire().unwrap().failure(ErrorKind::Server);
        });
        breaker.try_acquire().unwrap().success();
        breaker.try_acquire().unwrap().success();
        other.join().unwrap();
        assert_eq!(breaker.state(), BreakerState::Closed);
    });
}

// ---------------------------------------------------------------------------
// (b) Half-open: one probe at a time.

/// A breaker that opened at `T0` and whose break is over at `T0 + BREAK`,
/// with the clock there: the next `try_acquire` turns it half-open.
fn past_its_break(probes: u32) -> &'static CircuitBreaker {
    let breaker = leak(
        CircuitBreaker::new()
            .consecutive_failures(1)
            .break_for(BREAK)
            .half_open_probes(probes),
    );
    breaker.try_acquire().unwrap().failure(ErrorKind::Server);
    set_now(T0 + BREAK.as_secs() * SEC);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    breaker
}

/// Two threads `try_acquire` at once: exactly one probe, and the other is
/// refused until the probe is presumed lost (one break).
fn race_for_the_probe(breaker: &'static CircuitBreaker) -> (BreakerPermit<'static>, CircuitOpen) {
    let other = thread::spawn(move || breaker.try_acquire());
    let mine = breaker.try_acquire();
    let theirs = other.join().unwrap();
    let (probe, refused) = match (mine, theirs) {
        (Ok(probe), Err(refused)) | (Err(refused), Ok(probe)) => (probe, refused),
        (mine, theirs) => panic!(
            "expected one probe and one refusal, got {:?} and {:?}",
            mine.map(|p| p.is_probe()),
            theirs.map(|p| p.is_probe())
        ),
    };
    assert!(probe.is_probe());
    assert!(!refused.is_isolated());
    assert_eq!(refused.retry_in(), Some(BREAK));
    (probe, refused)
}

#[derive(Clone, Copy, Debug)]
enum Outcome {
    Success,
    Failure,
    Dropped,
}

fn report(probe: BreakerPermit<'_>, outcome: Outcome) {
    match outcome {
        Outcome::Success => probe.success(),
        Outcome::Failure => probe.failure(ErrorKind::Overloaded),
        Outcome::Dropped => drop(probe),
    }
}

/// What another thread's `try_acquire` got while the probe's outcome was
/// being reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Got {
    Refused,
    Call,
    Probe,
}

/// The race for the probe, then its outcome reported while another thread
/// asks again (and reports success, or drops a probe it gets).
fn probe_then(outcome: Outcome, expect: fn(&CircuitBreaker, Got)) -> BTreeSet<Got> {
    let seen = Seen::new();
    model(move || {
        let breaker = past_its_break(1);
        let (probe, _) = race_for_the_probe(breaker);
        let other = thread::spawn(move || match breaker.try_acquire() {
            Err(_) => Got::Refused,
            Ok(permit) if permit.is_probe() => Got::Probe, // dropped: no outcome
            Ok(permit) => {
                permit.success();
                Got::Call
            }
        });
        report(probe, outcome);
        let got = other.join().unwrap();
        seen.add(got);
        expect(breaker, got);
    });
    seen.take()
}

#[test]
fn one_probe_then_success_closes() {
    let seen = probe_then(Outcome::Success, |breaker, got| {
        // Refused while the probe was out, or admitted once it had closed.
        assert_ne!(got, Got::Probe);
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(!breaker.try_acquire().unwrap().is_probe());
    });
    assert_eq!(seen, [Got::Refused, Got::Call].into());
}

#[test]
fn one_probe_then_failure_reopens() {
    let seen = probe_then(Outcome::Failure, |breaker, got| {
        assert_eq!(got, Got::Refused);
        // Opened again for a whole break from the probe's failure.
        assert_eq!(breaker.state(), BreakerState::Open { retry_in: BREAK });
        assert_eq!(breaker.try_acquire().unwrap_err().retry_in(), Some(BREAK));
    });
    assert_eq!(seen, [Got::Refused].into());
}

#[test]
fn one_probe_then_drop_frees_its_slot() {
    let seen = probe_then(Outcome::Dropped, |breaker, got| {
        // Refused while the probe was out; a probe of its own once it was
        // dropped (and dropped in turn). Either way the slot is free.
        assert_ne!(got, Got::Call);
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        let probe = breaker.try_acquire().unwrap();
        assert!(probe.is_probe());
        // ... and only one.
        assert!(breaker.try_acquire().is_err());
        probe.success();
        assert_eq!(breaker.state(), BreakerState::Closed);
    });
    assert_eq!(seen, [Got::Refused, Got::Probe].into());
}

/// With two probe slots, three threads at once: two probes, one refusal,
/// and the slots are counted exactly (both dropped: two fresh probes).
/// Bounded to 4 preemptions: every interleaving takes 600 000 executions.
#[test]
fn two_probe_slots_three_threads() {
    model_bounded(4, || {
        let breaker = past_its_break(2);
        let a = thread::spawn(move || breaker.try_acquire());
        let b = thread::spawn(move || breaker.try_acquire());
        let c = breaker.try_acquire();
        let all = [a.join().unwrap(), b.join().unwrap(), c];
        let probes = all
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|p| p.is_probe()))
            .count();
        let refused = all.iter().filter(|r| r.is_err()).count();
        assert_eq!((probes, refused), (2, 1));
        drop(all);
        let again = [
            breaker.try_acquire(),
            breaker.try_acquire(),
            breaker.try_acquire(),
        ];
        assert!(again[0].as_ref().unwrap().is_probe());
        assert!(again[1].as_ref().unwrap().is_probe());
        assert!(again[2].is_err());
    });
}

// ---------------------------------------------------------------------------
// (c) Manual transitions against a probe in flight.

#[derive(Clone, Copy, Debug)]
enum Manual {
    Close,
    Isolate,
}

/// A probe in flight reports `outcome` while another thread makes the manual
/// transitions `ops`, in order: the last of them decides the state, and the
/// probe's result (stale once the first one is made) changes nothing.
fn manual_against_probe(outcome: Outcome, ops: &'static [Manual]) {
    model(move || {
        let breaker = past_its_break(1);
        let probe = breaker.try_acquire().unwrap();
        assert!(probe.is_probe());
        let prober = thread::spawn(move || report(probe, outcome));
        for op in ops {
            match op {
                Manual::Close => breaker.close(),
                Manual::Isolate => breaker.isolate(),
            }
        }
        prober.join().unwrap();
        match ops.last().unwrap() {
            Manual::Close => {
                assert_eq!(breaker.state(), BreakerState::Closed, "{outcome:?} {ops:?}");
                assert!(!breaker.try_acquire().unwrap().is_probe());
            }
            Manual::Isolate => {
                assert_eq!(
                    breaker.state(),
                    BreakerState::Isolated,
                    "{outcome:?} {ops:?}"
                );
                assert!(breaker.try_acquire().unwrap_err().is_isolated());
            }
        }
    });
}

const MANUAL: [&[Manual]; 4] = [
    &[Manual::Close],
    &[Manual::Isolate],
    &[Manual::Isolate, Manual::Close],
    &[Manual::Close, Manual::Isolate],
];

#[test]
fn close_or_isolate_beats_a_succeeding_probe() {
    for ops in MANUAL {
        manual_against_probe(Outcome::Success, ops);
    }
}

#[test]
fn close_or_isolate_beats_a_failing_probe() {
    for ops in MANUAL {
        manual_against_probe(Outcome::Failure, ops);
    }
}

#[test]
fn close_or_isolate_beats_a_dropped_probe() {
    for ops in MANUAL {
        manual_against_probe(Outcome::Dropped, ops);
    }
}

/// A probe from an earlier half-open state reports while the breaker has
/// been closed, opened again and turned half-open with a probe of its own:
/// the stale result changes nothing; the new probe alone decides.
fn stale_probe_against_new_generation(outcome: Outcome, break_for: Duration) {
    model(move || {
        let breaker = leak(
            CircuitBreaker::new()
                .consecutive_failures(1)
                .break_for(break_for),
        );
        breaker.try_acquire().unwrap().failure(ErrorKind::Server);
        set_now(T0 + break_for.as_nanos() as u64);
        let stale = breaker.try_acquire().unwrap();
        assert!(stale.is_probe());
        let prober = thread::spawn(move || report(stale, outcome));
        // Meanwhile: closed by hand, a failure opens it again, and once the
        // break is over a new probe goes out.
        breaker.close();
        breaker.try_acquire().unwrap().failure(ErrorKind::Server);
        set_now(T0 + 2 * break_for.as_nanos() as u64);
        let fresh = breaker.try_acquire();
        prober.join().unwrap();
        match fresh {
            Ok(fresh) => {
                assert!(fresh.is_probe());
                // The fresh probe is the only one allowed out.
                assert_eq!(breaker.state(), BreakerState::HalfOpen, "{outcome:?}");
                assert!(
                    breaker.try_acquire().is_err(),
                    "{outcome:?}: a second probe"
                );
                fresh.success();
                assert_eq!(breaker.state(), BreakerState::Closed);
            }
            Err(refused) => panic!("{outcome:?}: no probe after the break: {refused}"),
        }
    });
}

#[test]
fn stale_probe_does_not_touch_a_new_half_open_state() {
    for outcome in [Outcome::Success, Outcome::Failure, Outcome::Dropped] {
        stale_probe_against_new_generation(outcome, BREAK);
        // A clock that has not moved between the two half-open states (a
        // zero break on tokio's paused clock): they still differ.
        stale_probe_against_new_generation(outcome, Duration::ZERO);
    }
}

/// A call admitted because it found the breaker closed is counted after
/// `close()` empties the window, never wiped by it: with `min_calls(2)`, a
/// failure afterwards opens the breaker exactly when that call got through.
#[test]
fn close_never_wipes_a_call_it_admitted() {
    let seen = Seen::new();
    model(move || {
        let breaker = leak(
            CircuitBreaker::new()
                .failure_ratio(0.5)
                .min_calls(2)
                .break_for(BREAK),
        );
        breaker.isolate();
        let caller = thread::spawn(move || match breaker.try_acquire() {
            Ok(permit) => {
                permit.success();
                true
            }
            Err(_) => false,
        });
        breaker.close();
        let admitted = caller.join().unwrap();
        seen.add(admitted);
        breaker.try_acquire().unwrap().failure(ErrorKind::Server);
        if admitted {
            // 1 failure in 2 calls.
            assert_eq!(breaker.state(), BreakerState::Open { retry_in: BREAK });
        } else {
            assert_eq!(breaker.state(), BreakerState::Closed);
        }
    });
    assert_eq!(seen.take(), [false, true].into());
}

// ---------------------------------------------------------------------------
// (d) The retry budget never overdraws.

/// An allowance of exactly one retry, two threads asking at once: one gets it.
#[test]
fn budget_of_one_retry_grants_one() {
    model(|| {
        let budget = leak(RetryBudget::new().ratio(0.5).min_retries_per_second(0));
        budget.record_call();
        budget.record_call();
        assert_eq!(budget.available(), 1);
        let other = thread::spawn(move || budget.try_retry());
        let mine = budget.try_retry();
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "granted {mine} and {theirs}");
        assert_eq!(budget.available(), 0);
    });
}

/// A call recorded while two threads ask for retries: the second call is what
/// makes one retry affordable, so at most one is granted, and only once the
/// call is counted. Afterwards the budget holds exactly what is left.
#[test]
fn budget_calls_racing_retries_never_overdraw() {
    let seen = Seen::new();
    model(move || {
        let budget = leak(RetryBudget::new().ratio(0.5).min_retries_per_second(0));
        budget.record_call();
        let caller = thread::spawn(move || budget.record_call());
        let other = thread::spawn(move || budget.try_retry());
        let mine = budget.try_retry();
        let theirs = other.join().unwrap();
        caller.join().unwrap();
        let granted = u64::from(mine) + u64::from(theirs);
        assert!(granted <= 1, "two retries on two calls at 0.5");
        assert_eq!(budget.available(), 1 - granted);
        seen.add(granted);
    });
    // Both: retries asked before the call was counted are refused.
    assert_eq!(seen.take(), [0, 1].into());
}

/// Calls and retries of two threads are counted exactly: each thread's retry
/// comes after its call, so both are granted at a ratio of 1, and nothing is
/// left over.
#[test]
fn budget_counts_of_two_threads_are_exact() {
    model(|| {
        let budget = leak(RetryBudget::new().ratio(1.0).min_retries_per_second(0));
        let other = thread::spawn(move || {
            budget.record_call();
            budget.try_retry()
        });
        budget.record_call();
        let mine = budget.try_retry();
        assert!(other.join().unwrap());
        assert!(mine);
        assert_eq!(budget.available(), 0);
        budget.record_call();
        assert_eq!(budget.available(), 1);
    });
}

/// The window moves on by a bucket while two threads use the budget: both
/// race to advance it, and the counts stay exact (nothing has left the
/// window yet).
#[test]
fn budget_counts_stay_exact_across_a_bucket() {
    model(|| {
        let budget = leak(RetryBudget::new().ratio(1.0).min_retries_per_second(0));
        budget.record_call();
        budget.record_call();
        assert!(budget.try_retry());
        set_now(T0 + SEC); // the next of the ten one-second buckets
        let other = thread::spawn(move || {
            budget.record_call();
            budget.try_retry()
        });
        let mine = budget.try_retry();
        assert!(other.join().unwrap());
        assert!(mine);
        assert_eq!(budget.available(), 0);
    });
}
