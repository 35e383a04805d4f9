//! The limiter under crowds and hostile inputs, on tokio's paused clock:
//! callers already waiting move with the rate, hints end at their reset,
//! test mode, token costs beyond the bucket, the initial window and
//! deadlines.
#![deny(warnings, clippy::all)]

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use llm_resilience::{retry, AdaptiveLimiter, Classify, Elapsed, ErrorKind, Policy};
use tokio::time::{sleep, Instant};

mod common;
use common::Scheduled;

const MS: Duration = Duration::from_millis(1);

#[derive(Debug)]
enum E {
    Refused,
    Deadline,
}
impl Classify for E {
    fn kind(&self) -> ErrorKind {
        match self {
            E::Refused => ErrorKind::RateLimit,
            E::Deadline => ErrorKind::Timeout,
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            E::Refused => Some(Duration::from_secs(1)),
            _ => None,
        }
    }
}
impl From<Elapsed> for E {
    fn from(_: Elapsed) -> Self {
        E::Deadline
    }
}

/// One-shot crowd: N callers each make ONE call; the limit drops 100 -> 10
/// from 2 s to 5 s, then returns. Nobody arrives later.
#[tokio::test(start_paused = true)]
async fn one_shot_crowd_drop_and_return() {
    let limiter = Arc::new(AdaptiveLimiter::new().initial_rate(100.0));
    let bucket = Arc::new(Mutex::new(Scheduled::new(
        vec![
            (Duration::ZERO, 100.0),
            (Duration::from_secs(2), 10.0),
            (Duration::from_secs(5), 100.0),
        ],
        20.0,
    )));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let (limiter, bucket) = (Arc::clone(&limiter), Arc::clone(&bucket));
        tasks.spawn(async move {
            let policy = Policy::new().max_attempts(50);
            let r = policy
                .limiter(&limiter)
                .call_async(|| async {
                    let ok = bucket.lock().unwrap().take();
                    sleep(2 * MS).await;
                    if ok {
                        Ok(())
                    } else {
                        Err(E::Refused)
                    }
                })
                .await;
            (r.is_ok(), start.elapsed())
        });
    }
    let mut last = Duration::ZERO;
    let mut failed = 0;
    while let Some(r) = tasks.join_next().await {
        let (ok, at) = r.unwrap();
        if !ok {
            failed += 1;
        }
        last = last.max(at);
    }
    let admitted = bucket.lock().unwrap().admitted.clone();
    eprintln!(
        "rate at end {:?}; failed {failed}; last done at {last:?}; admitted/s {admitted:?}",
        limiter.rate()
    );
    // ideal: ~200 + 30 + rest at 100/s => ~12 s; allow 10 s recovery => 20 s
    assert!(last <= Duration::from_secs(20), "last done at {last:?}");
}

/// Budget hint, then a one-shot crowd already queued: after the reset, do they go?
#[tokio::test(start_paused = true)]
async fn one_shot_crowd_budget_hint() {
    let limiter = Arc::new(AdaptiveLimiter::new().initial_rate(100.0));
    limiter.observe_remaining(2, Duration::from_secs(2));
    eprintln!("rate after hint {:?}", limiter.rate());
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let limiter = Arc::clone(&limiter);
        tasks.spawn(async move {
            let policy = Policy::new().max_attempts(1);
            let _ = policy
                .limiter(&limiter)
                .call_async(|| async { Ok::<(), E>(()) })
                .await;
            start.elapsed()
        });
    }
    let mut last = Duration::ZERO;
    while let Some(r) = tasks.join_next().await {
        last = last.max(r.unwrap());
    }
    eprintln!("rate at end {:?}; last done at {last:?}", limiter.rate());
    assert!(last <= Duration::from_secs(5), "last done at {last:?}");
}

/// Named limiter + skip_sleeps: sequential calls, each would wait 1 s in real life.
static SKIP_L: AdaptiveLimiter = AdaptiveLimiter::new().initial_rate(1.0);
#[retry(max_attempts = 1, limiter = SKIP_L, deadline = 5s)]
fn paced_sync() -> Result<(), io::Error> {
    Ok(())
}
#[test]
fn skip_sleeps_named_limiter_sequential_calls() {
    let sleeps = llm_resilience::testing::skip_sleeps();
    let mut fails = vec![];
    for i in 0..20 {
        if paced_sync().is_err() {
            fails.push(i);
        }
    }
    eprintln!("paced {:?}; failed calls {fails:?}", sleeps.paced());
    assert!(
        fails.is_empty(),
        "calls failed: {fails:?}; total {:?}",
        sleeps.total()
    );
}

/// The implicit limiter with cost, taught a token limit outside skip_sleeps,
/// then used under skip_sleeps.
fn token_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        "x-ratelimit-limit-tokens",
        HeaderValue::from_static("60000"),
    );
    h.insert(
        "x-ratelimit-remaining-tokens",
        HeaderValue::from_static("0"),
    );
    h
}
#[retry(max_attempts = 1, cost = 5_000)]
fn implicit_with_cost() -> Result<(), io::Error> {
    llm_resilience::http::observe(&token_headers());
    Ok(())
}
#[test]
fn implicit_limiter_with_cost_under_skip_sleeps() {
    implicit_with_cost().unwrap(); // learns the token limit (not skipping)
    let sleeps = llm_resilience::testing::skip_sleeps();
    for _ in 0..5 {
        implicit_with_cost().unwrap();
    }
    eprintln!("paced under skip_sleeps: {:?}", sleeps.paced());
    assert_eq!(
        sleeps.paced(),
        Duration::ZERO,
        "implicit limiter paced under skip_sleeps"
    );
}

/// Token remaining > limit poisons the bucket size forever.
/// cost = u64::MAX without deadline blocks everyone after it.
#[tokio::test(start_paused = true)]
async fn huge_cost_head_of_line() {
    let limiter = Arc::new(AdaptiveLimiter::new());
    limiter.observe_token_limit(60_000, None);
    let l2 = Arc::clone(&limiter);
    let big = tokio::spawn(async move {
        let _: Result<(), E> = Policy::new()
            .max_attempts(1)
            .limiter(&l2)
            .cost(u64::MAX)
            .call_async(|| async { Ok(()) })
            .await;
    });
    sleep(MS).await;
    let small = tokio::time::timeout(Duration::from_secs(60), async {
        let _: Result<(), E> = Policy::new()
            .max_attempts(1)
            .limiter(&limiter)
            .cost(10)
            .call_async(|| async { Ok(()) })
            .await;
    })
    .await;
    eprintln!(
        "small call behind u64::MAX call finished within 60 s: {}",
        small.is_ok()
    );
    big.abort();
    let _ = big.await;
    let t = Instant::now();
    let _: Result<(), E> = Policy::new()
        .max_attempts(1)
        .limiter(&limiter)
        .cost(10)
        .call_async(|| async { Ok(()) })
        .await;
    eprintln!("after abort, small call took {:?}", t.elapsed());
    assert!(
        small.is_ok(),
        "a cost=10 call waited >60 s behind a cost=u64::MAX call"
    );
}

/// Inherited deadline binds pacing.
static DL_L: AdaptiveLimiter = AdaptiveLimiter::new().initial_rate(1.0);
#[retry(max_attempts = 1, limiter = DL_L)]
async fn inner_paced() -> Result<(), E> {
    Ok(())
}
#[retry(max_attempts = 1, limiter = none, deadline = 500ms)]
async fn outer() -> Result<(), E> {
    inner_paced().await
}
#[tokio::test(start_paused = true)]
async fn inherited_deadline_binds_pacing() {
    inner_paced().await.unwrap();
    let t = Instant::now();
    let r = outer().await;
    eprintln!("outer: {r:?} after {:?}", t.elapsed());
    assert!(t.elapsed() <= Duration::from_millis(500));
}

/// WindowFull + deadline.
#[tokio::test(start_paused = true)]
async fn window_full_deadline() {
    let limiter = Arc::new(AdaptiveLimiter::new().initial_window(1));
    let l2 = Arc::clone(&limiter);
    let hung = tokio::spawn(async move {
        let _: Result<(), E> = Policy::new()
            .max_attempts(1)
            .limiter(&l2)
            .call_async(|| async {
                sleep(Duration::from_secs(60)).await;
                Ok(())
            })
            .await;
    });
    sleep(MS).await;
    let t = Instant::now();
    let r: Result<(), E> = Policy::new()
        .max_attempts(1)
        .deadline(Duration::from_millis(100))
        .limiter(&limiter)
        .call_async(|| async { Ok(()) })
        .await;
    eprintln!(
        "window-full call with 100ms deadline: {r:?} after {:?}",
        t.elapsed()
    );
    assert!(t.elapsed() <= Duration::from_millis(100));
    hung.abort();
}

/// observe_limit raised: is the pace set at once?
#[tokio::test(start_paused = true)]
async fn announced_limit_raised() {
    let l = AdaptiveLimiter::new();
    l.observe_limit(600);
    l.observe_limit(6000);
    assert_eq!(
        l.rate(),
        Some(95.0),
        "a new announced limit sets the pace anew"
    );
}

/// Hostile builder inputs.
#[tokio::test(start_paused = true)]
async fn hostile_builders() {
    let ls = [
        AdaptiveLimiter::new().initial_rate(f64::NAN),
        AdaptiveLimiter::new().initial_window(u32::MAX),
        AdaptiveLimiter::new()
            .initial_rate(f64::MIN_POSITIVE)
            .burst(u32::MAX),
        AdaptiveLimiter::new()
            .initial_rate(1e-300)
            .min_rate(f64::NAN)
            .max_rate(f64::NAN)
            .headroom(f64::NAN),
    ];
    for l in &ls {
        for c in [0u64, 1, u64::MAX] {
            let r = tokio::time::timeout(Duration::from_secs(5), async {
                let r: Result<(), E> = Policy::new()
                    .max_attempts(2)
                    .deadline(Duration::from_secs(2))
                    .limiter(l)
                    .cost(c)
                    .call_async(|| async { Err(E::Refused) })
                    .await;
                r
            })
            .await;
            l.observe_token_limit(u64::MAX, Some(u64::MAX));
            l.observe_limit(u64::MAX);
            l.observe_remaining(u64::MAX, Duration::MAX);
            eprintln!("{l:?} cost {c}: {r:?}");
        }
    }
}

static COUNT: AtomicU64 = AtomicU64::new(0);
/// Implicit limiter: learns from 429, paces a one-shot crowd; then limit returns?
#[retry(max_attempts = 20)]
async fn implicit_call(bucket: Arc<Mutex<Scheduled>>) -> Result<(), E> {
    COUNT.fetch_add(1, Ordering::Relaxed);
    let ok = bucket.lock().unwrap().take();
    sleep(2 * MS).await;
    if ok {
        Ok(())
    } else {
        Err(E::Refused)
    }
}
#[tokio::test(start_paused = true)]
async fn implicit_one_shot_crowd() {
    let bucket = Arc::new(Mutex::new(Scheduled::new(
        vec![(Duration::ZERO, 10.0), (Duration::from_secs(3), 200.0)],
        20.0,
    )));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..600 {
        let b = Arc::clone(&bucket);
        tasks.spawn(async move { (implicit_call(b).await.is_ok(), start.elapsed()) });
    }
    let mut last = Duration::ZERO;
    let mut failed = 0;
    while let Some(r) = tasks.join_next().await {
        let (ok, at) = r.unwrap();
        if !ok {
            failed += 1
        }
        last = last.max(at);
    }
    let admitted = bucket.lock().unwrap().admitted.clone();
    eprintln!(
        "implicit: attempts {} failed {failed} last {last:?} admitted {admitted:?}",
        COUNT.load(Ordering::Relaxed)
    );
}

/// AdaptiveLimiter::new() against a provider with no limit, slow (30 s) calls:
/// README says it does not pace until the first 429 / announced limit.
#[tokio::test(start_paused = true)]
async fn window_throttles_slow_calls_without_any_limit() {
    let limiter = Arc::new(AdaptiveLimiter::new());
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let limiter = Arc::clone(&limiter);
        tasks.spawn(async move {
            let _: Result<(), E> = Policy::new()
                .max_attempts(1)
                .limiter(&limiter)
                .call_async(|| async {
                    sleep(Duration::from_secs(30)).await;
                    Ok(())
                })
                .await;
            start.elapsed()
        });
    }
    let mut last = Duration::ZERO;
    while let Some(r) = tasks.join_next().await {
        last = last.max(r.unwrap());
    }
    eprintln!(
        "200 x 30 s calls, no limit anywhere: last done at {last:?}; rate {:?}",
        limiter.rate()
    );
    // Slow answers do not hold the herd back: the window doubles every
    // 250 ms it stays full, so the last of 200 leaves within about a second.
    assert!(last <= Duration::from_secs(32), "{last:?}");
}

#[tokio::test(start_paused = true)]
async fn window_full_deadline_odd() {
    let limiter = Arc::new(AdaptiveLimiter::new().initial_window(1));
    let l2 = Arc::clone(&limiter);
    let hung = tokio::spawn(async move {
        let _: Result<(), E> = Policy::new()
            .max_attempts(1)
            .limiter(&l2)
            .call_async(|| async {
                sleep(Duration::from_secs(60)).await;
                Ok(())
            })
            .await;
    });
    sleep(MS).await;
    for dl in [1u64, 3, 7, 103] {
        let t = Instant::now();
        let r: Result<(), E> = Policy::new()
            .max_attempts(1)
            .deadline(Duration::from_millis(dl))
            .limiter(&limiter)
            .call_async(|| async { Ok(()) })
            .await;
        eprintln!(
            "window-full call with {dl}ms deadline: {r:?} after {:?}",
            t.elapsed()
        );
    }
    hung.abort();
}

/// Callers asleep until their next look at the schedule (every 250 ms)
/// while the rate rises: their slots move earlier, several into the past,
/// and the callers must still leave one slot apart when they wake, not
/// together.
#[tokio::test(start_paused = true)]
async fn callers_whose_slots_moved_earlier_while_they_slept_leave_spaced() {
    let limiter = Arc::new(AdaptiveLimiter::new().initial_rate(4.0)); // a slot every 250 ms
    let sends = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (limiter, sends) = (Arc::clone(&limiter), Arc::clone(&sends));
        tasks.spawn(async move {
            let _: Result<(), E> = Policy::new()
                .max_attempts(1)
                .limiter(&limiter)
                .call_async(|| async {
                    sends.lock().unwrap().push(start.elapsed());
                    Ok(())
                })
                .await;
        });
    }
    // Every caller holds its slot: the first due now, the others up to
    // 2.25 s away.
    sleep(100 * MS).await;
    // Announced: 6000 a minute, paced at 95 a second (a slot every 10.5 ms).
    limiter.observe_limit(6_000);
    assert_eq!(limiter.rate(), Some(95.0));
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    let mut sends = sends.lock().unwrap().clone();
    sends.sort();
    assert_eq!(sends.len(), 10);
    let interval = Duration::from_secs_f64(1.0 / 95.0);
    for pair in sends[1..].windows(2) {
        assert!(
            pair[1] - pair[0] >= interval / 2,
            "two callers left {:?} apart (the pace is {interval:?}): {sends:?}",
            pair[1] - pair[0]
        );
    }
    // And none of them waited for its old slot.
    assert!(sends[9] < Duration::from_millis(600), "{sends:?}");
}
