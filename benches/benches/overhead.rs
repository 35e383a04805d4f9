//! What a retried call that succeeds at once costs over a plain call, and
//! what a closed circuit breaker's check costs, beside peer crates.
//!
//! Groups, each reporting time per call (lower is better):
//!
//! - `sync_happy_path`: a direct call of a small `#[inline(never)]` function
//!   returning `Ok`, the same body under `#[retry]` (default policy), under
//!   `#[retry(breaker, budget, limiter)]`, through `Policy::call`, and through
//!   backon's blocking retry (default `ExponentialBuilder`).
//! - `async_happy_path`: the same as async functions, plus `tokio-retry2`.
//!   Every future completes on its first poll, so each is polled once with a
//!   no-op waker (inside a current-thread tokio runtime's context): the
//!   numbers are the call's, not an executor's.
//! - `breaker_closed_1_thread`: `CircuitBreaker::try_acquire` and
//!   `BreakerPermit::success` on a closed breaker, beside failsafe's and
//!   recloser's `call` with a closure returning `Ok`.
//! - `breaker_closed_2_threads`: the same while a second thread hammers the
//!   same breaker; the time is the measuring thread's, per call.
//!
//! Run with:
//!
//! ```sh
//! cargo bench -p benches
//! ```

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use backon::{BlockingRetryable, ExponentialBuilder, Retryable};
use criterion::{criterion_group, criterion_main, Criterion};
use failsafe::CircuitBreaker as _;
use llm_resilience::{
    retry, AdaptiveLimiter, CircuitBreaker, CircuitOpen, Classify, ErrorKind, Policy, RetryBudget,
};
use tokio_retry2::strategy::ExponentialBackoff;
use tokio_retry2::{Retry, RetryError};

/// The error of every benchmarked function; never produced.
#[derive(Debug)]
enum BenchError {
    Server,
    Open,
    Elapsed,
}

impl Classify for BenchError {
    fn kind(&self) -> ErrorKind {
        match self {
            BenchError::Server => ErrorKind::Server,
            BenchError::Open => ErrorKind::Overloaded,
            BenchError::Elapsed => ErrorKind::Timeout,
        }
    }
}

impl From<CircuitOpen> for BenchError {
    fn from(_: CircuitOpen) -> Self {
        BenchError::Open
    }
}

impl From<llm_resilience::Elapsed> for BenchError {
    fn from(_: llm_resilience::Elapsed) -> Self {
        BenchError::Elapsed
    }
}

/// The work every variant does: a little arithmetic, then `Ok`. The error
/// branch exists only so that the compiler cannot drop the `Err` paths.
#[inline(always)]
fn work(x: u64) -> Result<u64, BenchError> {
    if x == u64::MAX {
        return Err(BenchError::Server);
    }
    Ok(x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17))
}

const POLICY: Policy = Policy::new();
static BREAKER: CircuitBreaker = CircuitBreaker::new();
static BUDGET: RetryBudget = RetryBudget::new();
static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new();

// ---------------------------------------------------------------------------
// Sync variants: each one non-inlined function with the same body.

#[inline(never)]
fn direct_sync(x: u64) -> Result<u64, BenchError> {
    work(x)
}

#[retry]
#[inline(never)]
fn retry_default_sync(x: u64) -> Result<u64, BenchError> {
    work(x)
}

#[retry(breaker = BREAKER, budget = BUDGET, limiter = LIMITER)]
#[inline(never)]
fn retry_guarded_sync(x: u64) -> Result<u64, BenchError> {
    work(x)
}

#[inline(never)]
fn policy_call_sync(x: u64) -> Result<u64, BenchError> {
    POLICY.call(|| work(x))
}

#[inline(never)]
fn backon_sync(x: u64) -> Result<u64, BenchError> {
    (|| work(x)).retry(ExponentialBuilder::default()).call()
}

// ---------------------------------------------------------------------------
// Async variants: each one non-inlined function that makes the future and
// polls it to completion once.

/// Poll `fut` once with a no-op waker; every future here is ready at once.
#[inline(always)]
fn ready<F: Future>(fut: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(fut).poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("a benchmarked future was not ready on its first poll"),
    }
}

async fn direct_async_fn(x: u64) -> Result<u64, BenchError> {
    work(x)
}

#[retry]
async fn retry_default_async_fn(x: u64) -> Result<u64, BenchError> {
    work(x)
}

#[retry(breaker = BREAKER, budget = BUDGET, limiter = LIMITER)]
async fn retry_guarded_async_fn(x: u64) -> Result<u64, BenchError> {
    work(x)
}

#[inline(never)]
fn direct_async(x: u64) -> Result<u64, BenchError> {
    ready(direct_async_fn(x))
}

#[inline(never)]
fn retry_default_async(x: u64) -> Result<u64, BenchError> {
    ready(retry_default_async_fn(x))
}

#[inline(never)]
fn retry_guarded_async(x: u64) -> Result<u64, BenchError> {
    ready(retry_guarded_async_fn(x))
}

#[inline(never)]
fn policy_call_async(x: u64) -> Result<u64, BenchError> {
    ready(POLICY.call_async(|| async move { work(x) }))
}

#[inline(never)]
fn backon_async(x: u64) -> Result<u64, BenchError> {
    ready((|| async move { work(x) }).retry(ExponentialBuilder::default()))
}

#[inline(never)]
fn tokio_retry2_async(x: u64) -> Result<u64, BenchError> {
    // Three attempts, as the others make by default.
    let strategy = ExponentialBackoff::from_millis(1000).take(2);
    ready(Retry::spawn(strategy, || async move {
        work(x).map_err(RetryError::transient)
    }))
}

// ---------------------------------------------------------------------------
// The benchmarks.

type Variant = (&'static str, fn(u64) -> Result<u64, BenchError>);

fn bench_variants(c: &mut Criterion, group: &str, variants: &[Variant]) {
    let mut group = c.benchmark_group(group);
    for &(name, f) in variants {
        // Each variant must succeed, or it measures something else.
        assert!(f(7).is_ok(), "{name} failed");
        group.bench_function(name, |b| b.iter(|| f(black_box(7)).ok()));
    }
    group.finish();
}

fn sync_happy_path(c: &mut Criterion) {
    bench_variants(
        c,
        "sync_happy_path",
        &[
            ("direct", direct_sync),
            ("retry_default", retry_default_sync),
            ("retry_breaker_budget_limiter", retry_guarded_sync),
            ("policy_call", policy_call_sync),
            ("backon", backon_sync),
        ],
    );
}

fn async_happy_path(c: &mut Criterion) {
    // Nothing here waits, but a runtime's context is there for anything
    // that looks for one.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let _context = rt.enter();
    bench_variants(
        c,
        "async_happy_path",
        &[
            ("direct", direct_async),
            ("retry_default", retry_default_async),
            ("retry_breaker_budget_limiter", retry_guarded_async),
            ("policy_call", policy_call_async),
            ("backon", backon_async),
            ("tokio_retry2", tokio_retry2_async),
        ],
    );
}

/// Each breaker's closed-state check and success report.
struct Breakers {
    ours: CircuitBreaker,
    failsafe: failsafe::StateMachine<
        failsafe::failure_policy::OrElse<
            failsafe::failure_policy::SuccessRateOverTimeWindow<failsafe::backoff::EqualJittered>,
            failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::EqualJittered>,
        >,
        (),
    >,
    recloser: recloser::Recloser,
}

impl Breakers {
    fn new() -> Self {
        Breakers {
            ours: CircuitBreaker::new(),
            failsafe: failsafe::Config::new().build(),
            recloser: recloser::Recloser::default(),
        }
    }

    #[inline(always)]
    fn ours(&self) {
        match black_box(&self.ours).try_acquire() {
            Ok(permit) => permit.success(),
            Err(open) => panic!("the breaker opened: {open}"),
        }
    }

    #[inline(always)]
    fn failsafe(&self) {
        let out = black_box(&self.failsafe).call(|| Ok::<_, ()>(black_box(1u64)));
        assert!(out.is_ok(), "failsafe's breaker refused a call");
    }

    #[inline(always)]
    fn recloser(&self) {
        let out = black_box(&self.recloser).call(|| Ok::<_, ()>(black_box(1u64)));
        assert!(out.is_ok(), "recloser's breaker refused a call");
    }
}

type Check = (&'static str, fn(&Breakers));

const CHECKS: [Check; 3] = [
    ("llm_resilience", Breakers::ours),
    ("failsafe", Breakers::failsafe),
    ("recloser", Breakers::recloser),
];

fn breaker_closed_1_thread(c: &mut Criterion) {
    let breakers = Breakers::new();
    let mut group = c.benchmark_group("breaker_closed_1_thread");
    for (name, check) in CHECKS {
        group.bench_function(name, |b| b.iter(|| check(&breakers)));
    }
    group.finish();
}

/// `iters` checks on this thread, timed, while another thread makes the
/// same check on the same breaker in a loop until they are done.
fn contended(breakers: &Breakers, check: fn(&Breakers), iters: u64) -> Duration {
    let started = AtomicBool::new(false);
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            started.store(true, Ordering::Release);
            while !stop.load(Ordering::Relaxed) {
                check(breakers);
            }
        });
        while !started.load(Ordering::Acquire) {
            std::hint::spin_loop();
        }
        let start = Instant::now();
        for _ in 0..iters {
            check(breakers);
        }
        let took = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        took
    })
}

fn breaker_closed_2_threads(c: &mut Criterion) {
    let breakers = Breakers::new();
    let mut group = c.benchmark_group("breaker_closed_2_threads");
    for (name, check) in CHECKS {
        group.bench_function(name, |b| {
            b.iter_custom(|iters| contended(&breakers, check, iters))
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
}

criterion_group! {
    name = benches;
    config = config();
    targets = sync_happy_path, async_happy_path, breaker_closed_1_thread, breaker_closed_2_threads
}
criterion_main!(benches);
