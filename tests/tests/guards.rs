//! `breaker =`, `budget =` and `limiter =` on `#[retry]`, and the same guards
//! on a `Policy` through `Hooks`: fail-fast, breaker refusals of retries,
//! probes (finished and dropped), fallbacks from an open breaker, budget
//! exhaustion and refill, keyed budgets, and pacing by the limiter. Async
//! tests run on tokio's paused clock; sync ones skip their sleeps.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use llm_resilience::{
    retry, testing, AdaptiveLimiter, BreakerState, CircuitBreaker, CircuitOpen, Classify,
    ErrorKind, KeyedBudgets, Policy, RetryBudget, Wait,
};
use tokio::time::Instant;

/// What the provider answered, or the breaker's refusal.
#[derive(Debug, Clone, PartialEq)]
enum ApiError {
    Status(ErrorKind),
    RateLimited(Duration),
    Open(Option<Duration>),
}

impl Classify for ApiError {
    fn kind(&self) -> ErrorKind {
        match self {
            ApiError::Status(kind) => *kind,
            ApiError::RateLimited(_) => ErrorKind::RateLimit,
            ApiError::Open(_) => ErrorKind::Overloaded,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited(d) => Some(*d),
            _ => None,
        }
    }
}

impl From<CircuitOpen> for ApiError {
    fn from(open: CircuitOpen) -> Self {
        ApiError::Open(open.retry_in())
    }
}

impl From<llm_resilience::Elapsed> for ApiError {
    fn from(_: llm_resilience::Elapsed) -> Self {
        ApiError::Status(ErrorKind::Timeout)
    }
}

fn is_open(breaker: &CircuitBreaker) -> bool {
    matches!(breaker.state(), BreakerState::Open { .. })
}

// ---------------------------------------------------------------------------
// The circuit breaker.

#[test]
fn an_open_breaker_fails_calls_fast_without_running_them() {
    static BREAKER: CircuitBreaker = CircuitBreaker::new()
        .consecutive_failures(3)
        .break_for(Duration::from_secs(30));
    thread_local!(static RUNS: Cell<u32> = const { Cell::new(0) });

    #[retry(max_attempts = 3, wait = fixed(1s), breaker = BREAKER)]
    fn chat() -> Result<(), ApiError> {
        RUNS.set(RUNS.get() + 1);
        Err(ApiError::Status(ErrorKind::Overloaded))
    }

    let _sleeps = testing::skip_sleeps();
    assert_eq!(chat(), Err(ApiError::Status(ErrorKind::Overloaded)));
    assert_eq!(RUNS.get(), 3);
    assert!(is_open(&BREAKER));
    for _ in 0..5 {
        match chat() {
            Err(ApiError::Open(Some(retry_in))) => assert!(retry_in <= Duration::from_secs(30)),
            other => panic!("expected a fast failure, got {other:?}"),
        }
    }
    assert_eq!(RUNS.get(), 3, "a refused call must not run");
}

#[test]
fn a_breaker_that_opens_mid_call_ends_it_with_the_last_error() {
    static BREAKER: CircuitBreaker = CircuitBreaker::new().consecutive_failures(2);
    thread_local!(static RUNS: Cell<u32> = const { Cell::new(0) });

    #[retry(max_attempts = 5, wait = fixed(1s), jitter = none, breaker = &BREAKER)]
    fn chat() -> Result<(), ApiError> {
        RUNS.set(RUNS.get() + 1);
        Err(ApiError::Status(ErrorKind::Server))
    }

    let sleeps = testing::skip_sleeps();
    assert_eq!(chat(), Err(ApiError::Status(ErrorKind::Server)));
    assert_eq!(RUNS.get(), 2, "the second failure opens the breaker");
    assert_eq!(
        sleeps.delays(),
        [Duration::from_secs(1)],
        "no sleep once open"
    );
}

#[test]
fn client_and_auth_errors_never_trip_the_breaker() {
    static BREAKER: CircuitBreaker = CircuitBreaker::new().consecutive_failures(1);

    #[retry(breaker = BREAKER)]
    fn chat(kind: ErrorKind) -> Result<(), ApiError> {
        Err(ApiError::Status(kind))
    }

    for _ in 0..10 {
        assert_eq!(
            chat(ErrorKind::Client),
            Err(ApiError::Status(ErrorKind::Client))
        );
        assert_eq!(
            chat(ErrorKind::Auth),
            Err(ApiError::Status(ErrorKind::Auth))
        );
    }
    assert_eq!(BREAKER.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn after_the_break_a_probe_goes_through_and_its_success_closes_the_breaker() {
    static BREAKER: CircuitBreaker = CircuitBreaker::new()
        .consecutive_failures(1)
        .break_for(Duration::from_secs(10));
    static UP: AtomicU32 = AtomicU32::new(0);

    #[retry(max_attempts = 1, breaker = BREAKER)]
    async fn chat() -> Result<&'static str, ApiError> {
        if UP.load(Ordering::SeqCst) == 1 {
            Ok("hello")
        } else {
            Err(ApiError::Status(ErrorKind::Timeout))
        }
    }

    assert!(chat().await.is_err());
    assert!(is_open(&BREAKER));
    UP.store(1, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(9)).await;
    assert!(matches!(chat().await, Err(ApiError::Open(_))));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(chat().await, Ok("hello"));
    assert_eq!(BREAKER.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_opens_the_breaker_again() {
    static BREAKER: CircuitBreaker = CircuitBreaker::new()
        .consecutive_failures(1)
        .break_for(Duration::from_secs(10));

    #[retry(max_attempts = 3, wait = fixed(1s), breaker = BREAKER)]
    async fn chat() -> Result<(), ApiError> {
        Err(ApiError::Status(ErrorKind::Network))
    }

    let start = Instant::now();
    assert_eq!(chat().await, Err(ApiError::Status(ErrorKind::Network)));
    assert_eq!(start.elapsed(), Duration::ZERO, "no retry sleep once open");
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(BREAKER.state(), BreakerState::HalfOpen);
    assert_eq!(chat().await, Err(ApiError::Status(ErrorKind::Network)));
    assert!(is_open(&BREAKER));
}

#[tokio::test(start_paused = true)]
async fn a_probe_whose_future_is_dropped_gives_its_slot_back() {
    static BREAKER: CircuitBreaker = CircuitBreaker::new()
        .consecutive_failures(1)
        .break_for(Duration::from_secs(5));
    static SLOW: AtomicU32 = AtomicU32::new(1);

    #[retry(max_attempts = 1, breaker = BREAKER)]
    async fn chat() -> Result<(), ApiError> {
        if SLOW.load(Ordering::SeqCst) == 1 {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        Err(ApiError::Status(ErrorKind::Server))
    }

    SLOW.store(0, Ordering::SeqCst);
    assert!(chat().await.is_err());
    tokio::time::advance(Duration::from_secs(5)).await;
    SLOW.store(1, Ordering::SeqCst);
    // The probe hangs; the caller gives up on it.
    let dropped = tokio::time::timeout(Duration::from_millis(10), chat()).await;
    assert!(dropped.is_err());
    // Its slot is back: the next call is admitted as a probe (and fails,
    // reopening), not refused as if a probe were still in flight.
    SLOW.store(0, Ordering::SeqCst);
    assert_eq!(chat().await, Err(ApiError::Status(ErrorKind::Server)));
    assert!(is_open(&BREAKER));
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_while_half_open_get_one_probe_slot() {
    static BREAKER: CircuitBreaker = CircuitBreaker::new()
        .consecutive_failures(1)
        .break_for(Duration::from_secs(5));
    static RUNS: AtomicU32 = AtomicU32::new(0);

    #[retry(max_attempts = 1, breaker = BREAKER)]
    async fn chat() -> Result<(), ApiError> {
        RUNS.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    }

    BREAKER
        .try_acquire()
        .expect("closed")
        .failure(ErrorKind::Server);
    tokio::time::advance(Duration::from_secs(5)).await;
    let results = futures_join(10, chat).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(ApiError::Open(_))))
        .count();
    assert_eq!((ok, refused), (1, 9), "{results:?}");
    assert_eq!(RUNS.load(Ordering::SeqCst), 1);
    assert_eq!(BREAKER.state(), BreakerState::Closed);
}

/// Run `n` calls of `f` at once on the current task and collect them.
async fn futures_join<F, Fut, T>(n: usize, f: F) -> Vec<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|_| tokio::spawn(f())).collect();
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

#[test]
fn a_call_refused_by_the_breaker_goes_to_its_fallback() {
    static BREAKER: CircuitBreaker = CircuitBreaker::new().consecutive_failures(1);
    thread_local!(static PRIMARY: Cell<u32> = const { Cell::new(0) });

    #[retry(max_attempts = 1, breaker = BREAKER, fallback = backup)]
    fn primary(prompt: &str) -> Result<String, ApiError> {
        PRIMARY.set(PRIMARY.get() + 1);
        let _ = prompt;
        Err(ApiError::Status(ErrorKind::Overloaded))
    }

    #[retry(max_attempts = 1)]
    fn backup(prompt: &str) -> Result<String, ApiError> {
        Ok(format!("backup: {prompt}"))
    }

    assert_eq!(primary("a").as_deref(), Ok("backup: a"));
    assert_eq!(primary("b").as_deref(), Ok("backup: b"));
    assert_eq!(PRIMARY.get(), 1, "the open breaker skips the primary");
}

#[test]
fn a_breaker_in_an_arc_field_serves_methods() {
    struct Client {
        breaker: Arc<CircuitBreaker>,
        calls: u32,
    }

    impl Client {
        #[retry(max_attempts = 2, wait = none, breaker = self.breaker)]
        fn get(&self) -> Result<u32, ApiError> {
            Err(ApiError::Status(ErrorKind::Server))
        }

        #[retry(max_attempts = 2, wait = none, breaker = Arc::clone(&self.breaker))]
        fn bump(&mut self) -> Result<u32, ApiError> {
            self.calls += 1;
            Ok(self.calls)
        }
    }

    let mut client = Client {
        breaker: Arc::new(CircuitBreaker::new().consecutive_failures(2)),
        calls: 0,
    };
    assert_eq!(client.bump(), Ok(1));
    assert_eq!(client.get(), Err(ApiError::Status(ErrorKind::Server)));
    assert!(is_open(&client.breaker));
    assert!(matches!(client.bump(), Err(ApiError::Open(_))));
    assert_eq!(client.calls, 1);
}

// ---------------------------------------------------------------------------
// The retry budget.

#[test]
fn a_spent_budget_ends_the_call_with_its_last_error() {
    static BUDGET: RetryBudget = RetryBudget::new().ratio(0.0).min_retries_per_second(0);
    thread_local!(static RUNS: Cell<u32> = const { Cell::new(0) });

    #[retry(max_attempts = 5, wait = fixed(1s), budget = BUDGET)]
    fn chat() -> Result<(), ApiError> {
        RUNS.set(RUNS.get() + 1);
        Err(ApiError::Status(ErrorKind::Server))
    }

    let sleeps = testing::skip_sleeps();
    assert_eq!(chat(), Err(ApiError::Status(ErrorKind::Server)));
    assert_eq!(RUNS.get(), 1);
    assert!(sleeps.delays().is_empty());
}

#[test]
fn the_budget_allows_its_ratio_of_calls_as_retries() {
    // 10% of calls, no floor: of 100 calls that each fail once, 10 retry.
    static BUDGET: RetryBudget = RetryBudget::new().ratio(0.1).min_retries_per_second(0);
    thread_local!(static RUNS: Cell<u32> = const { Cell::new(0) });

    #[retry(max_attempts = 5, wait = fixed(1ms), budget = BUDGET)]
    fn down() -> Result<u32, ApiError> {
        RUNS.set(RUNS.get() + 1);
        Err(ApiError::Status(ErrorKind::Overloaded))
    }

    let _sleeps = testing::skip_sleeps();
    for _ in 0..100 {
        assert!(down().is_err());
    }
    // Each call counts before its first attempt, so retries become possible
    // as calls accumulate: 100 calls, 10 retries.
    assert_eq!(RUNS.get(), 110);
}

#[tokio::test(start_paused = true)]
async fn a_budget_refills_as_its_window_moves_on() {
    static BUDGET: RetryBudget = RetryBudget::new()
        .ratio(0.0)
        .min_retries_per_second(1)
        .window(Duration::from_secs(10));
    static RUNS: AtomicU32 = AtomicU32::new(0);

    #[retry(max_attempts = 100, wait = none, budget = BUDGET)]
    async fn chat() -> Result<(), ApiError> {
        RUNS.fetch_add(1, Ordering::SeqCst);
        Err(ApiError::Status(ErrorKind::Timeout))
    }

    assert!(chat().await.is_err());
    assert_eq!(RUNS.load(Ordering::SeqCst), 11, "1 attempt + 10 retries");
    assert!(chat().await.is_err());
    assert_eq!(RUNS.load(Ordering::SeqCst), 12, "the budget is spent");
    tokio::time::advance(Duration::from_secs(11)).await;
    assert!(chat().await.is_err());
    assert_eq!(
        RUNS.load(Ordering::SeqCst),
        23,
        "a new window, 10 more retries"
    );
}

#[test]
fn keyed_budgets_cap_each_user_separately() {
    static BUDGETS: KeyedBudgets<64> =
        KeyedBudgets::new(RetryBudget::new().ratio(0.0).min_retries_per_second(0));
    static FLOOR: KeyedBudgets<64> =
        KeyedBudgets::new(RetryBudget::new().ratio(0.0).min_retries_per_second(1));
    thread_local!(static RUNS: Cell<u32> = const { Cell::new(0) });

    #[retry(max_attempts = 4, wait = none, budget = BUDGETS.key(user))]
    fn spent(user: &str) -> Result<(), ApiError> {
        let _ = user;
        RUNS.set(RUNS.get() + 1);
        Err(ApiError::Status(ErrorKind::Server))
    }

    #[retry(max_attempts = 4, wait = none, budget = FLOOR.key(&user))]
    fn floor(user: String) -> Result<(), ApiError> {
        let _ = user;
        RUNS.set(RUNS.get() + 1);
        Err(ApiError::Status(ErrorKind::Server))
    }

    let _sleeps = testing::skip_sleeps();
    assert!(spent("alice").is_err());
    assert_eq!(RUNS.replace(0), 1);
    // With 10 retries per 10 s per key, alice spends hers...
    for _ in 0..5 {
        assert!(floor("alice".to_owned()).is_err());
    }
    assert_eq!(RUNS.replace(0), 5 + 10);
    // ...and bob still has all of his.
    assert!(floor("bob".to_owned()).is_err());
    assert_eq!(RUNS.replace(0), 4);
}

// ---------------------------------------------------------------------------
// The adaptive limiter.

#[tokio::test(start_paused = true)]
async fn the_limiter_paces_first_attempts() {
    static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new().initial_rate(10.0).burst(1);
    static SENT: std::sync::Mutex<Vec<Duration>> = std::sync::Mutex::new(Vec::new());

    #[retry(limiter = LIMITER)]
    async fn chat(start: Instant) -> Result<(), ApiError> {
        SENT.lock().unwrap().push(start.elapsed());
        Ok(())
    }

    let start = Instant::now();
    futures_join(5, move || chat(start)).await;
    let mut sent = SENT.lock().unwrap().clone();
    sent.sort();
    // 10 a second, one at a time: 0, 100, 200, 300, 400 ms (the rate may
    // grow a little with each success, never shrink).
    assert_eq!(sent.len(), 5);
    assert_eq!(sent[0], Duration::ZERO);
    for pair in sent.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap > Duration::from_millis(60) && gap <= Duration::from_millis(101),
            "{sent:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn rate_limits_teach_the_limiter_to_pace() {
    static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new();
    static RUNS: AtomicU32 = AtomicU32::new(0);

    #[retry(max_attempts = 2, limiter = LIMITER)]
    async fn chat() -> Result<(), ApiError> {
        if RUNS.fetch_add(1, Ordering::SeqCst) == 20 {
            Err(ApiError::RateLimited(Duration::from_millis(100)))
        } else {
            Ok(())
        }
    }

    assert_eq!(LIMITER.rate(), None);
    for _ in 0..20 {
        chat().await.unwrap();
    }
    assert_eq!(LIMITER.rate(), None, "unlimited until refused");
    let start = Instant::now();
    chat().await.unwrap();
    assert!(
        start.elapsed() >= Duration::from_millis(100),
        "Retry-After honoured"
    );
    assert!(LIMITER.rate().is_some(), "pacing after a 429");
}

#[test]
fn skipped_pacing_moves_the_clock_but_is_not_a_retry_delay() {
    static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new().initial_rate(2.0).burst(1);

    #[retry(limiter = LIMITER)]
    fn chat() -> Result<(), ApiError> {
        Ok(())
    }

    let sleeps = testing::skip_sleeps();
    for _ in 0..4 {
        chat().unwrap();
    }
    assert!(sleeps.delays().is_empty());
    assert!(sleeps.paced() >= Duration::from_millis(500), "{sleeps:?}");
}

// ---------------------------------------------------------------------------
// All three on one async function, and the runtime form.

#[tokio::test(start_paused = true)]
async fn breaker_budget_and_limiter_together() {
    static BREAKER: CircuitBreaker = CircuitBreaker::new().consecutive_failures(5);
    static BUDGET: RetryBudget = RetryBudget::new();
    static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new().initial_rate(100.0);
    static RUNS: AtomicU32 = AtomicU32::new(0);

    #[retry(max_attempts = 3, wait = fixed(10ms), deadline = 10s, clone(prompt), breaker = BREAKER, budget = BUDGET, limiter = LIMITER)]
    async fn chat(prompt: String) -> Result<String, ApiError> {
        if RUNS.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
            return Err(ApiError::Status(ErrorKind::Server));
        }
        Ok(prompt)
    }

    for i in 0..10 {
        assert_eq!(chat(format!("{i}")).await, Ok(format!("{i}")));
    }
    assert_eq!(RUNS.load(Ordering::SeqCst), 20);
    assert_eq!(BREAKER.state(), BreakerState::Closed);
}

#[test]
fn the_runtime_form_takes_the_same_guards() {
    static BREAKER: CircuitBreaker = CircuitBreaker::new().consecutive_failures(3);
    static BUDGET: RetryBudget = RetryBudget::new().ratio(0.0).min_retries_per_second(0);
    let policy = Policy::new().max_attempts(5).wait(Wait::none());

    let mut runs = 0;
    let result: Result<(), ApiError> = policy.budget(&BUDGET).call(|| {
        runs += 1;
        Err(ApiError::Status(ErrorKind::Server))
    });
    assert!(result.is_err());
    assert_eq!(runs, 1, "no budget, no retry");

    let mut runs = 0;
    let result: Result<(), ApiError> = policy.breaker(&BREAKER).call(|| {
        runs += 1;
        Err(ApiError::Status(ErrorKind::Server))
    });
    assert_eq!(result, Err(ApiError::Status(ErrorKind::Server)));
    assert_eq!(runs, 3, "the third failure opens the breaker");
    let result: Result<(), ApiError> = policy
        .breaker(&BREAKER)
        .budget(&BUDGET)
        .on_retry(|_| {})
        .call(|| Ok(()));
    assert!(matches!(result, Err(ApiError::Open(_))));
}

#[tokio::test(start_paused = true)]
async fn a_retry_whose_breaker_opened_while_it_slept_is_refused_when_it_wakes() {
    static BREAKER: CircuitBreaker = CircuitBreaker::new().consecutive_failures(2);
    static RUNS: AtomicU32 = AtomicU32::new(0);

    #[retry(max_attempts = 5, wait = fixed(10s), jitter = none, breaker = BREAKER)]
    async fn chat() -> Result<(), ApiError> {
        RUNS.fetch_add(1, Ordering::SeqCst);
        Err(ApiError::Status(ErrorKind::Server))
    }

    let call = tokio::spawn(chat());
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(RUNS.load(Ordering::SeqCst), 1, "asleep before its retry");
    // Other calls trip the breaker meanwhile.
    BREAKER
        .try_acquire()
        .expect("closed")
        .failure(ErrorKind::Server);
    assert!(is_open(&BREAKER));
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(matches!(call.await.unwrap(), Err(ApiError::Open(_))));
    assert_eq!(
        RUNS.load(Ordering::SeqCst),
        1,
        "the retry never reached the provider"
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_does_not_hold_a_probe_slot_through_its_sleep() {
    static BREAKER: CircuitBreaker = CircuitBreaker::new()
        .consecutive_failures(1)
        .break_for(Duration::from_secs(30));
    static RUNS: AtomicU32 = AtomicU32::new(0);

    // Its first attempt is admitted while closed and fails late, after the
    // breaker opened and its break ended; its retry then sleeps 20 s.
    #[retry(max_attempts = 2, wait = fixed(20s), jitter = none, breaker = BREAKER)]
    async fn slow() -> Result<(), ApiError> {
        if RUNS.fetch_add(1, Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_secs(40)).await;
        }
        Err(ApiError::Status(ErrorKind::Server))
    }

    #[retry(max_attempts = 1, breaker = BREAKER)]
    async fn quick() -> Result<(), ApiError> {
        Ok(())
    }

    let call = tokio::spawn(slow());
    tokio::task::yield_now().await;
    BREAKER
        .try_acquire()
        .expect("closed")
        .failure(ErrorKind::Server);
    tokio::time::advance(Duration::from_secs(41)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(RUNS.load(Ordering::SeqCst), 1, "the slow call sleeps");
    // The slot is free for another caller's probe, which closes the breaker.
    assert_eq!(quick().await, Ok(()));
    assert_eq!(BREAKER.state(), BreakerState::Closed);
    call.abort();
}

#[test]
fn many_tasks_on_a_multi_thread_runtime_keep_the_budget_exact() {
    static BUDGET: RetryBudget = RetryBudget::new()
        .ratio(0.5)
        .min_retries_per_second(0)
        .window(Duration::from_secs(3600));
    // Counts every attempt, never opens.
    static BREAKER: CircuitBreaker = CircuitBreaker::new()
        .window(Duration::from_secs(3600))
        .min_calls(u32::MAX);
    static RUNS: AtomicU32 = AtomicU32::new(0);
    const CALLS: u32 = 2000;

    // Each call fails once, then succeeds if the budget lets it retry.
    #[retry(max_attempts = 2, wait = none, breaker = BREAKER, budget = BUDGET)]
    async fn chat(first: Arc<std::sync::atomic::AtomicBool>) -> Result<(), ApiError> {
        RUNS.fetch_add(1, Ordering::SeqCst);
        tokio::task::yield_now().await;
        if first.swap(false, Ordering::SeqCst) {
            return Err(ApiError::Status(ErrorKind::Server));
        }
        Ok(())
    }

    // No `enable_time`: with `wait = none` a retry needs no timer.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .build()
        .unwrap();
    let succeeded = rt.block_on(async {
        let tasks: Vec<_> = (0..CALLS)
            .map(|_| tokio::spawn(chat(Arc::new(std::sync::atomic::AtomicBool::new(true)))))
            .collect();
        let mut ok = 0u32;
        for task in tasks {
            ok += u32::from(task.await.unwrap().is_ok());
        }
        ok
    });
    let retries = RUNS.load(Ordering::SeqCst) - CALLS;
    assert_eq!(succeeded, retries, "every retry succeeds");
    assert!(retries <= CALLS / 2);
    // Every call and every retry counted, none twice: what is left is the
    // limit less what was spent.
    assert_eq!(BUDGET.available(), u64::from(CALLS / 2 - retries));
    assert_eq!(BREAKER.state(), BreakerState::Closed);
}
