//! A soak test: minutes of chat calls against the flaky provider's chaos
//! scenario, over real HTTP and real time, through `#[retry]` with every
//! feature on at once (deadline, attempt timeout, idempotency keys, fallback,
//! circuit breaker, retry budget, adaptive limiter, tracing, metrics).
//!
//! Ignored by default. Run it with
//!
//! ```sh
//! cargo test --release -p tests --test soak -- --ignored --nocapture
//! SOAK_SECS=600 cargo test --release -p tests --test soak -- --ignored --nocapture
//! ```
//!
//! It asserts that nothing is billed twice, that no call outlives its
//! deadline (plus a small allowance for scheduling), that every failure is
//! classified, and that no task hangs: every call returns before the run's
//! own watchdog.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use examples::flaky::{FlakyProvider, Scenario};
use llm_resilience::http::{check, HttpError, RequestBuilderExt};
use llm_resilience::{
    retry, AdaptiveLimiter, CircuitBreaker, Classify, ErrorKind, KeyedBudgets, RetryBudget,
};
use serde_json::{json, Value};

/// Every call's ceiling.
const DEADLINE: Duration = Duration::from_secs(5);
/// What a call may take beyond its deadline: the scheduler's and the HTTP
/// client's slack on a loaded machine.
const SLACK: Duration = Duration::from_millis(250);

static BREAKER: CircuitBreaker = CircuitBreaker::new()
    .failure_ratio(0.8)
    .min_calls(50)
    .break_for(Duration::from_secs(1));
static BUDGET: RetryBudget = RetryBudget::new();
static PER_USER: KeyedBudgets<64> = KeyedBudgets::new(RetryBudget::new().ratio(0.5));
static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new();

static FALLBACKS: AtomicU64 = AtomicU64::new(0);

async fn post(client: &reqwest::Client, url: &str, user: &str) -> Result<String, HttpError> {
    let request = client
        .post(url)
        .json(&json!({
            "model": "soak",
            "messages": [{"role": "user", "content": format!("hello from {user}")}],
            "user": user,
        }))
        .retry_headers();
    let reply: Value = check(request.send().await?).await?.json().await?;
    Ok(reply["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

#[retry(
    max_attempts = 5,
    wait = exponential(5ms, 200ms),
    attempt_timeout = 500ms,
    deadline = 5s,
    breaker = BREAKER,
    budget = BUDGET,
    limiter = LIMITER,
    fallback = backup
)]
async fn chat(client: &reqwest::Client, url: &str, user: &str) -> Result<String, HttpError> {
    post(client, url, user).await
}

#[retry(max_attempts = 3, wait = exponential(5ms, 100ms), attempt_timeout = 500ms, budget = PER_USER.key(user))]
async fn backup(client: &reqwest::Client, url: &str, user: &str) -> Result<String, HttpError> {
    FALLBACKS.fetch_add(1, Ordering::Relaxed);
    post(client, url, user).await
}

#[test]
#[ignore = "runs for minutes; see the module docs"]
fn soak_chaos_with_every_feature() {
    let secs: u64 = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(120);
    let run_for = Duration::from_secs(secs);
    let provider = FlakyProvider::spawn(Scenario::Chaos {
        seed: 20261129,
        fault_rate: 0.3,
    })
    .expect("the provider starts");
    let url: Arc<str> = provider.chat_completions_url().into();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();

    let calls = Arc::new(AtomicU64::new(0));
    let succeeded = Arc::new(AtomicU64::new(0));
    let slowest = Arc::new(AtomicU64::new(0));
    let unclassified = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    rt.block_on(async {
        let mut workers = tokio::task::JoinSet::new();
        for worker in 0..48u64 {
            let (client, url) = (client.clone(), Arc::clone(&url));
            let (calls, succeeded, slowest, unclassified) = (
                Arc::clone(&calls),
                Arc::clone(&succeeded),
                Arc::clone(&slowest),
                Arc::clone(&unclassified),
            );
            workers.spawn(async move {
                let mut n = 0u64;
                while started.elapsed() < run_for {
                    let user = format!("user-{}", (worker * 7 + n) % 40);
                    n += 1;
                    let t = Instant::now();
                    let outcome = chat(&client, &url, &user).await;
                    let took = t.elapsed();
                    calls.fetch_add(1, Ordering::Relaxed);
                    slowest.fetch_max(took.as_micros() as u64, Ordering::Relaxed);
                    match outcome {
                        Ok(_) => {
                            succeeded.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) if e.kind() == ErrorKind::Other => {
                            unclassified.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => {}
                    }
                }
            });
        }
        // The watchdog: every worker ends within one call's worst case of
        // the end of the run (deadline, then a fallback with its own), or a
        // task hung.
        let watchdog = run_for + 2 * DEADLINE + Duration::from_secs(5);
        let all = async { while workers.join_next().await.is_some() {} };
        tokio::time::timeout(watchdog, all)
            .await
            .expect("a call hung past the watchdog");
    });

    let stats = provider.stats();
    let calls = calls.load(Ordering::Relaxed);
    let succeeded = succeeded.load(Ordering::Relaxed);
    let slowest = Duration::from_micros(slowest.load(Ordering::Relaxed));
    println!(
        "soak: {calls} calls in {:.0?}, {succeeded} succeeded, {} fell back, {} requests, \
         {} replayed, slowest call {slowest:.0?}, breaker {:?}, limiter {:?}",
        started.elapsed(),
        FALLBACKS.load(Ordering::Relaxed),
        stats.requests,
        stats.replayed,
        BREAKER.state(),
        LIMITER.rate(),
    );
    assert!(calls > 0);
    assert_eq!(stats.billed_twice, 0, "{stats:?}");
    assert_eq!(unclassified.load(Ordering::Relaxed), 0);
    // The fallback shares the primary's deadline, so no call, fallback
    // included, runs past it.
    assert!(
        slowest <= DEADLINE + SLACK,
        "a call took {slowest:?} under a deadline of {DEADLINE:?}"
    );
    assert!(succeeded * 10 >= calls * 9, "{succeeded} of {calls}");
}
