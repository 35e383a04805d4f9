//! Dropping a retrying future at any await point (mid-attempt, mid-sleep,
//! while waiting for the limiter, as a half-open probe) leaves the breaker,
//! the budget and the limiter consistent: no probe slot stays taken, no
//! count goes astray, and the next calls behave as if the dropped call had
//! never been.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use llm_resilience::{
    retry, AdaptiveLimiter, BreakerState, CircuitBreaker, CircuitOpen, Classify, ErrorKind, Policy,
    RetryBudget, Wait,
};
use tokio::time::{advance, sleep, timeout};

#[derive(Debug, Clone, PartialEq)]
enum ApiError {
    Server,
    Open,
}

impl Classify for ApiError {
    fn kind(&self) -> ErrorKind {
        match self {
            ApiError::Server => ErrorKind::Server,
            ApiError::Open => ErrorKind::Overloaded,
        }
    }
}

impl From<CircuitOpen> for ApiError {
    fn from(_: CircuitOpen) -> Self {
        ApiError::Open
    }
}

impl From<llm_resilience::Elapsed> for ApiError {
    fn from(_: llm_resilience::Elapsed) -> Self {
        ApiError::Server
    }
}

const fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_mid_sleep_leaves_no_probe_slot_taken() {
    static BREAKER: CircuitBreaker = CircuitBreaker::new()
        .consecutive_failures(1)
        .break_for(Duration::from_secs(30))
        .half_open_probes(1);

    // Its first attempt takes 40 s and fails; its retry waits 100 s.
    #[retry(max_attempts = 2, wait = fixed(100s), jitter = none, breaker = BREAKER)]
    async fn slow() -> Result<(), ApiError> {
        sleep(s(40)).await;
        Err(ApiError::Server)
    }

    #[retry(max_attempts = 1, breaker = BREAKER)]
    async fn quick() -> Result<(), ApiError> {
        Ok(())
    }

    let call = tokio::spawn(slow());
    tokio::task::yield_now().await; // admitted while closed
    BREAKER
        .try_acquire()
        .expect("closed")
        .failure(ErrorKind::Server);
    assert!(matches!(BREAKER.state(), BreakerState::Open { .. }));
    // At 40 s the break is over: the slow call's failure is only counted
    // (it was admitted before the breaker opened), and its retry sleeps
    // without holding a probe slot.
    advance(s(41)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    // Dropped mid-sleep, it leaves no slot taken: a probe goes through at
    // once, long before probes are presumed lost (30 s).
    assert_eq!(quick().await, Ok(()));
    assert_eq!(BREAKER.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_probe_dropped_mid_attempt_gives_its_slot_back() {
    static BREAKER: CircuitBreaker = CircuitBreaker::new()
        .consecutive_failures(1)
        .break_for(Duration::from_secs(30));

    #[retry(max_attempts = 3, breaker = BREAKER)]
    async fn hangs() -> Result<(), ApiError> {
        sleep(s(3600)).await;
        Ok(())
    }

    BREAKER
        .try_acquire()
        .expect("closed")
        .failure(ErrorKind::Server);
    advance(s(30)).await;
    assert!(timeout(s(5), hangs()).await.is_err());
    // Not refused as "half-open with its probes in flight".
    let permit = BREAKER.try_acquire().expect("the slot came back");
    assert!(permit.is_probe());
    permit.success();
    assert_eq!(BREAKER.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn calls_dropped_while_waiting_for_the_limiter_do_not_hold_the_others_back_for_ever() {
    static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new().initial_rate(10.0).burst(1);

    #[retry(limiter = LIMITER)]
    async fn chat() -> Result<(), ApiError> {
        Ok(())
    }

    // 50 calls reserve slots 0.1 s apart, then all but the first are
    // dropped while they wait.
    let mut waiting: Vec<_> = (0..50).map(|_| tokio::spawn(chat())).collect();
    tokio::task::yield_now().await;
    for call in waiting.drain(1..) {
        call.abort();
    }
    // The slots they reserved are spent, not stacked forever: a new call is
    // sent within the 5 s those 49 slots covered.
    let start = tokio::time::Instant::now();
    chat().await.unwrap();
    assert!(start.elapsed() <= s(5), "{:?}", start.elapsed());
    assert!(LIMITER.rate().is_some());
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_mid_sleep_has_spent_its_retry_and_nothing_more() {
    static BUDGET: RetryBudget = RetryBudget::new().ratio(0.5).min_retries_per_second(0);
    static RUNS: AtomicU32 = AtomicU32::new(0);

    #[retry(max_attempts = 5, wait = fixed(10s), jitter = none, budget = BUDGET)]
    async fn chat() -> Result<(), ApiError> {
        RUNS.fetch_add(1, Ordering::SeqCst);
        Err(ApiError::Server)
    }

    // Four calls recorded: two retries allowed.
    for _ in 0..3 {
        BUDGET.record_call();
    }
    let call = tokio::spawn(chat());
    advance(s(1)).await;
    assert_eq!(RUNS.load(Ordering::SeqCst), 1);
    call.abort();
    let _ = call.await;
    // The dropped call took one retry (withdrawn before its sleep); one is
    // left.
    assert_eq!(BUDGET.available(), 1);
}

#[test]
fn many_threads_dropping_calls_at_random_points_leave_exact_probe_slots() {
    let breaker = Arc::new(
        CircuitBreaker::new()
            .consecutive_failures(1)
            .break_for(Duration::ZERO)
            .half_open_probes(2),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .build()
        .unwrap();
    let policy: &'static Policy = Box::leak(Box::new(
        Policy::new()
            .max_attempts(3)
            .wait(Wait::fixed(Duration::from_micros(200))),
    ));
    rt.block_on(async {
        let mut tasks = Vec::new();
        for i in 0..400u64 {
            let breaker = Arc::clone(&breaker);
            tasks.push(tokio::spawn(async move {
                let guarded = policy.breaker(&breaker);
                let call = guarded.call_async(|| async move {
                    sleep(Duration::from_micros(100 + i % 7 * 50)).await;
                    if i % 3 == 0 {
                        Err(ApiError::Server)
                    } else {
                        Ok(())
                    }
                });
                // Some calls are dropped part-way: mid-attempt, mid-sleep.
                let _ = timeout(Duration::from_micros(50 + i % 11 * 60), call).await;
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
    // Every call is gone. The breaker is closed, or half-open/open with no
    // probe in flight: after its (zero) break, exactly two probes are
    // admitted at once, no more and no fewer.
    if breaker.state() != BreakerState::Closed {
        let first = breaker.try_acquire().expect("a first probe");
        let second = breaker.try_acquire().expect("a second probe");
        assert!(first.is_probe() && second.is_probe());
        assert!(breaker.try_acquire().is_err(), "a third probe slot leaked");
        drop((first, second));
    }
    let probe = breaker.try_acquire().expect("slots came back");
    probe.success();
    assert_eq!(breaker.state(), BreakerState::Closed);
}
