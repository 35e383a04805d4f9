//! The adaptive rate limiter's logic, on tokio's paused clock: every test
//! is deterministic and takes no real time.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llm_resilience::{retry, AdaptiveLimiter, Classify, Elapsed, ErrorKind, Policy};

mod common;
use common::Scheduled;
use tokio::time::{advance, sleep, Instant};

const MS: Duration = Duration::from_millis(1);

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() <= expected * 1e-6
}

#[tokio::test(start_paused = true)]
async fn unlimited_until_a_429() {
    static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new();
    assert_eq!(LIMITER.rate(), None);
    for _ in 0..1000 {
        assert_eq!(LIMITER.acquire_delay(), Duration::ZERO);
        LIMITER.on_success();
        LIMITER.on_other_failure();
    }
    advance(Duration::from_secs(10)).await;
    assert_eq!(LIMITER.acquire_delay(), Duration::ZERO);
    assert_eq!(LIMITER.rate(), None);

    LIMITER.on_rate_limited(Some(Duration::from_secs(1)));
    let rate = LIMITER.rate().expect("a 429 starts pacing");
    assert!(rate.is_finite() && rate > 0.0, "{rate}");
}

#[tokio::test(start_paused = true)]
async fn the_first_guess_comes_from_the_successes_so_far() {
    let limiter = AdaptiveLimiter::new();
    for _ in 0..20 {
        limiter.on_success();
    }
    limiter.on_rate_limited(Some(Duration::from_secs(1)));
    // 20 successes, as if they took at most 0.1 s, started at 70 %.
    let rate = limiter.rate().unwrap();
    assert!(close(rate, 140.0), "{rate}");
    // More refusals and successes of the same unpaced burst raise it.
    for _ in 0..10 {
        limiter.on_success();
    }
    limiter.on_rate_limited(None);
    let rate = limiter.rate().unwrap();
    assert!(close(rate, 210.0), "{rate}");
}

#[tokio::test(start_paused = true)]
async fn the_rate_drops_with_every_refusal_until_measured() {
    let limiter = AdaptiveLimiter::new().initial_rate(100.0);
    assert_eq!(limiter.rate(), Some(100.0));
    limiter.on_rate_limited(None);
    assert!(close(limiter.rate().unwrap(), 95.0));
    advance(10 * MS).await;
    limiter.on_rate_limited(None);
    assert!(close(limiter.rate().unwrap(), 90.25));
    // Never below half the rate the episode began at, before measuring.
    for _ in 0..15 {
        advance(10 * MS).await;
        limiter.on_rate_limited(None);
    }
    assert!(close(limiter.rate().unwrap(), 50.0));
}

#[tokio::test(start_paused = true)]
async fn refusals_measure_the_admitted_rate() {
    let limiter = AdaptiveLimiter::new().initial_rate(100.0);
    limiter.on_rate_limited(Some(Duration::from_secs(1)));
    // 30 successes in the next 0.4 s, refusals all along: the provider
    // admits 75 per second; the limiter paces at 95 % of that.
    for _ in 0..4 {
        advance(100 * MS).await;
        for _ in 0..(30 / 4) {
            limiter.on_success();
        }
        limiter.on_rate_limited(Some(Duration::from_secs(1)));
    }
    let rate = limiter.rate().unwrap();
    assert!(close(rate, 28.0 / 0.4 * 0.95), "{rate}");
}

#[tokio::test(start_paused = true)]
async fn refusals_far_apart_are_separate_episodes() {
    let limiter = AdaptiveLimiter::new().initial_rate(100.0);
    limiter.on_rate_limited(None);
    assert!(close(limiter.rate().unwrap(), 95.0));
    for _ in 0..100 {
        limiter.on_success();
    }
    // Ten seconds later, with successes in between: a new episode, not a
    // measurement of 100 successes over 10 s.
    advance(Duration::from_secs(10)).await;
    limiter.on_rate_limited(None);
    let rate = limiter.rate().unwrap();
    assert!(rate > 85.0, "{rate}");
}

#[tokio::test(start_paused = true)]
async fn callers_after_the_same_retry_after_get_distinct_slots() {
    let limiter = Arc::new(AdaptiveLimiter::new());
    for _ in 0..20 {
        limiter.on_success();
    }
    let sends = Arc::new(Mutex::new(Vec::new()));
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (limiter, sends) = (Arc::clone(&limiter), Arc::clone(&sends));
        callers.spawn(async move {
            // Every caller is refused at once, told to come back in 1 s.
            limiter.on_rate_limited(Some(Duration::from_secs(1)));
            sleep(Duration::from_secs(1)).await;
            let delay = limiter.acquire_delay();
            sleep(delay).await;
            sends.lock().unwrap().push(Instant::now());
        });
    }
    while callers.join_next().await.is_some() {}
    let mut sends = sends.lock().unwrap().clone();
    assert_eq!(sends.len(), 50);
    sends.sort();
    let rate = limiter.rate().unwrap();
    let interval = Duration::from_secs_f64(1.0 / rate);
    for pair in sends.windows(2) {
        let gap = pair[1] - pair[0];
        // Distinct send times, one pacing interval apart (give or take the
        // timer's millisecond).
        assert!(
            gap + MS >= interval && gap > Duration::ZERO,
            "{gap:?} < {interval:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_initial_rate_paces_from_the_start_after_a_burst() {
    let limiter = AdaptiveLimiter::new().initial_rate(10.0).burst(3);
    let delays: Vec<Duration> = (0..6).map(|_| limiter.acquire_delay()).collect();
    assert_eq!(delays[..3], [Duration::ZERO; 3]);
    for (i, delay) in delays[3..].iter().enumerate() {
        let expected = Duration::from_millis(100 * (i as u64 + 1));
        assert!(delay.abs_diff(expected) < MS, "{delays:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_refusal_leaves_no_burst_credit() {
    let limiter = AdaptiveLimiter::new().initial_rate(10.0).burst(10);
    advance(Duration::from_secs(5)).await;
    limiter.on_rate_limited(None);
    let delays: Vec<Duration> = (0..3).map(|_| limiter.acquire_delay()).collect();
    assert_eq!(delays[0], Duration::ZERO);
    assert!(delays[0] < delays[1] && delays[1] < delays[2], "{delays:?}");
}

/// Successes and slots over `seconds` of paced traffic (or until the limiter
/// stops pacing): each turn takes a slot, waits for it and succeeds.
async fn succeed_for(limiter: &AdaptiveLimiter, seconds: u64) {
    let end = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < end && limiter.rate().is_some() {
        sleep(limiter.acquire_delay().max(MS)).await;
        limiter.on_success();
    }
}

#[tokio::test(start_paused = true)]
async fn after_a_measurement_the_rate_holds_then_probes_upward() {
    let limiter = AdaptiveLimiter::new()
        .initial_rate(100.0)
        .probe_after(Duration::from_secs(5))
        .max_rate(200.0);
    limiter.on_rate_limited(None);
    for _ in 0..3 {
        advance(100 * MS).await;
        for _ in 0..5 {
            limiter.on_success();
        }
        limiter.on_rate_limited(None);
    }
    let measured = limiter.rate().unwrap();
    assert!(close(measured, 50.0 * 0.95), "{measured}");

    // Held for 5 s after the last refusal...
    succeed_for(&limiter, 4).await;
    assert!(close(limiter.rate().unwrap(), measured));
    // ... then probes upward (fast, with a single caller and no backlog),
    succeed_for(&limiter, 2).await;
    let probing = limiter.rate().unwrap();
    assert!(probing > measured * 1.1, "{probing} <= {measured}");
    // and without refusals it ends up unlimited again.
    succeed_for(&limiter, 120).await;
    assert_eq!(limiter.rate(), None);
    assert_eq!(limiter.acquire_delay(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn growth_is_clocked_by_successes_not_time() {
    let limiter = AdaptiveLimiter::new().initial_rate(10.0);
    limiter.on_rate_limited(None);
    let cut = limiter.rate().unwrap();
    advance(Duration::from_secs(3600)).await;
    for _ in 0..10 {
        limiter.acquire_delay();
    }
    assert!(close(limiter.rate().unwrap(), cut));
}

#[tokio::test(start_paused = true)]
async fn observe_remaining_sets_a_sane_rate() {
    let limiter = AdaptiveLimiter::new();
    // Plenty left: nothing to do.
    limiter.observe_remaining(4_999, Duration::from_millis(12));
    assert_eq!(limiter.rate(), None);
    // 30 left for 3 s: 10 per second.
    limiter.observe_remaining(30, Duration::from_secs(3));
    assert!(close(limiter.rate().unwrap(), 10.0));
    // A looser budget does not raise it; a tighter one lowers it.
    limiter.observe_remaining(300, Duration::from_secs(3));
    assert!(close(limiter.rate().unwrap(), 10.0));
    limiter.observe_remaining(10, Duration::from_secs(5));
    assert!(close(limiter.rate().unwrap(), 2.0));
    // A window that resets now says nothing.
    limiter.observe_remaining(0, Duration::ZERO);
    assert!(close(limiter.rate().unwrap(), 2.0));
}

#[tokio::test(start_paused = true)]
async fn nothing_remaining_holds_everyone_until_the_reset() {
    let limiter = AdaptiveLimiter::new();
    limiter.observe_remaining(0, Duration::from_secs(2));
    assert!(limiter.rate().is_some());
    let delays: Vec<Duration> = (0..3).map(|_| limiter.acquire_delay()).collect();
    assert!(delays[0] >= Duration::from_secs(2), "{delays:?}");
    assert!(delays[0] < delays[1] && delays[1] < delays[2], "{delays:?}");
    // Never more than a minute, whatever the header says.
    let limiter = AdaptiveLimiter::new();
    limiter.observe_remaining(0, Duration::MAX);
    let delay = limiter.acquire_delay();
    assert!(
        delay >= Duration::from_secs(60) && delay < Duration::from_secs(61),
        "{delay:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_closed_window_holds_the_fleet_for_retry_after() {
    let limiter = AdaptiveLimiter::new().initial_rate(10.0);
    // Refusals every 0.4 s and nothing admitted for 1.2 s (long enough to
    // measure at this rate): the window is closed, wait for it.
    limiter.on_rate_limited(Some(Duration::from_secs(30)));
    for _ in 0..3 {
        advance(400 * MS).await;
        limiter.on_rate_limited(Some(Duration::from_secs(30)));
    }
    let delay = limiter.acquire_delay();
    assert!(delay >= Duration::from_secs(30), "{delay:?}");
    let rate = limiter.rate().unwrap();
    assert!(rate >= 5.0, "{rate}");
}

#[tokio::test(start_paused = true)]
async fn at_the_floor_retry_after_holds_the_fleet() {
    let limiter = AdaptiveLimiter::new().initial_rate(1.0).min_rate(1.0);
    limiter.on_rate_limited(Some(Duration::from_secs(3)));
    assert_eq!(limiter.rate(), Some(1.0));
    let delay = limiter.acquire_delay();
    assert!(delay >= Duration::from_secs(3), "{delay:?}");
}

#[tokio::test(start_paused = true)]
async fn extreme_inputs_never_panic() {
    let weird = [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        -1.0,
        0.0,
        f64::MIN_POSITIVE,
        1e-300,
        1e300,
        f64::MAX,
    ];
    let durations = [Duration::ZERO, Duration::from_nanos(1), Duration::MAX];
    for &x in &weird {
        for &burst in &[0, 1, u32::MAX] {
            for &hold in &durations {
                let limiter = AdaptiveLimiter::new()
                    .initial_rate(x)
                    .burst(burst)
                    .min_rate(x)
                    .max_rate(x)
                    .headroom(x)
                    .probe_after(hold);
                exercise(&limiter, &durations).await;
                let limiter = AdaptiveLimiter::new()
                    .initial_rate(x)
                    .min_rate(1e6)
                    .max_rate(1.0);
                exercise(&limiter, &durations).await;
            }
        }
    }
}

async fn exercise(limiter: &AdaptiveLimiter, durations: &[Duration]) {
    for &d in durations {
        let _ = limiter.acquire_delay();
        limiter.on_success();
        limiter.on_rate_limited(Some(d));
        limiter.on_rate_limited(None);
        limiter.on_other_failure();
        for remaining in [0, 1, u64::MAX] {
            limiter.observe_remaining(remaining, d);
        }
        advance(100 * MS).await;
        limiter.on_rate_limited(Some(d));
        let _ = limiter.acquire_delay();
        if let Some(rate) = limiter.rate() {
            assert!(rate > 0.0 && !rate.is_nan(), "{rate} from {limiter:?}");
        }
    }
    let _ = format!("{limiter:?}");
}

/// A provider admitting `rate` requests per second from a bucket of `burst`,
/// full at start, on the paused clock.
/// A `429` with `Retry-After: 1`.
#[derive(Debug)]
struct Refused;

impl Classify for Refused {
    fn kind(&self) -> ErrorKind {
        ErrorKind::RateLimit
    }
    fn retry_after(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }
}

impl From<Elapsed> for Refused {
    fn from(_: Elapsed) -> Self {
        unreachable!("no deadline")
    }
}

struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        let earned = (now - self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + earned).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// `calls` logical calls, `concurrency` at a time, against a token bucket:
/// every attempt waits for its slot, takes 2 ms, and a refused one waits for
/// `Retry-After: 1` (plus a spread) before trying again. Returns the attempts
/// and the time taken.
async fn fleet(
    limiter: Option<Arc<AdaptiveLimiter>>,
    calls: u64,
    concurrency: u64,
) -> (u64, Duration) {
    let bucket = Arc::new(Mutex::new(Bucket {
        rate: 50.0,
        burst: 10.0,
        tokens: 10.0,
        last: Instant::now(),
    }));
    let left = Arc::new(AtomicU64::new(calls));
    let attempts = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..concurrency {
        let (limiter, bucket, left, attempts) = (
            limiter.clone(),
            Arc::clone(&bucket),
            Arc::clone(&left),
            Arc::clone(&attempts),
        );
        tasks.spawn(async move {
            while left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                loop {
                    // One attempt, paced by the limiter as the retry engine
                    // paces it, which reports its outcome.
                    let attempt = || async {
                        attempts.fetch_add(1, Ordering::Relaxed);
                        let admitted = bucket.lock().unwrap().take();
                        sleep(2 * MS).await;
                        if admitted {
                            Ok(())
                        } else {
                            Err(Refused)
                        }
                    };
                    let once = Policy::new().max_attempts(1);
                    let outcome = match &limiter {
                        Some(limiter) => once.limiter(limiter).call_async(attempt).await,
                        None => once.call_async(attempt).await,
                    };
                    if outcome.is_ok() {
                        break;
                    }
                    sleep(Duration::from_secs(1) + Duration::from_millis(task % 10 * 10)).await;
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    (attempts.load(Ordering::Relaxed), started.elapsed())
}

#[tokio::test(start_paused = true)]
async fn a_fleet_learns_a_token_bucket() {
    // 50 per second, burst 10: 400 calls take at best (400 - 10) / 50 = 7.8 s.
    let limiter = Arc::new(AdaptiveLimiter::new().initial_rate(75.0));
    let (attempts, took) = fleet(Some(Arc::clone(&limiter)), 400, 50).await;
    let rate = limiter.rate().unwrap();
    eprintln!("learnt {rate}/s; {attempts} attempts; took {took:?}");
    assert!((40.0..=55.0).contains(&rate), "learnt {rate}/s");
    assert!(attempts <= 440, "{attempts} attempts for 400 calls");
    assert!(took <= Duration::from_secs_f64(7.8 * 1.15), "{took:?}");

    // Without a limiter, the same fleet is refused over and over.
    let (attempts, _) = fleet(None, 400, 50).await;
    eprintln!("without a limiter: {attempts} attempts");
    assert!(attempts > 600, "{attempts}");
}

#[test]
fn threads_get_distinct_slots() {
    // Outside a runtime the limiter reads the system clock; a rate of 1 per
    // second makes the real time the threads take negligible.
    let limiter = Arc::new(AdaptiveLimiter::new().initial_rate(1.0).burst(1));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let limiter = Arc::clone(&limiter);
            std::thread::spawn(move || {
                (0..10)
                    .map(|_| limiter.acquire_delay().as_secs_f64().round() as u64)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut seconds: Vec<u64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    seconds.sort_unstable();
    assert_eq!(seconds, (0..80).collect::<Vec<_>>());
}

/// `callers` tasks calling in a loop for `run` through the engine, paced by
/// `limiter`, against a provider at 100/s that drops to 10/s from 5 s to
/// 15 s; a refusal waits `Retry-After: 1`. Returns the admitted count of
/// every second.
async fn drop_and_return(limiter: Arc<AdaptiveLimiter>, callers: u64, run: Duration) -> Vec<u32> {
    let start = Instant::now();
    let bucket = Arc::new(Mutex::new(Scheduled::new(
        vec![
            (Duration::ZERO, 100.0),
            (Duration::from_secs(5), 10.0),
            (Duration::from_secs(15), 100.0),
        ],
        20.0,
    )));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers {
        let (limiter, bucket) = (Arc::clone(&limiter), Arc::clone(&bucket));
        tasks.spawn(async move {
            let policy = Policy::new()
                .max_attempts(8)
                .deadline(Duration::from_secs(120));
            while start.elapsed() < run {
                let _ = policy
                    .limiter(&limiter)
                    .call_async(|| async {
                        let admitted = bucket.lock().unwrap().take();
                        sleep(2 * MS).await;
                        if admitted {
                            Ok(())
                        } else {
                            Err(Refused)
                        }
                    })
                    .await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let admitted = bucket.lock().unwrap().admitted.clone();
    admitted
}

/// Seconds from the limit's return (15 s) to the first second in which at
/// least 80 requests were admitted.
fn recovery(admitted: &[u32]) -> Option<usize> {
    admitted
        .iter()
        .enumerate()
        .skip(15)
        .find(|(_, n)| **n >= 80)
        .map(|(second, _)| second - 15)
}

/// A limit that drops and comes back, `callers` in a loop: the rate is
/// back above 80/s within 10 s of the return, and stays there. Returns the
/// admitted count of every second.
async fn assert_recovers(callers: u64) -> Vec<u32> {
    let limiter = Arc::new(AdaptiveLimiter::new().initial_rate(100.0));
    let admitted = drop_and_return(limiter, callers, Duration::from_secs(40)).await;
    eprintln!("admitted per second: {admitted:?}");
    let back = recovery(&admitted).expect("the rate comes back");
    assert!(
        back <= 10,
        "{back} s after the limit returned: {admitted:?}"
    );
    let after: u32 = admitted[27..39].iter().sum();
    assert!(after >= 12 * 80, "{after} in 12 s: {admitted:?}");
    admitted
}

#[tokio::test(start_paused = true)]
async fn a_limit_that_comes_back_is_used_again_within_seconds_by_a_small_crowd() {
    let admitted = assert_recovers(20).await;
    // While the limit was low, the fleet kept to it.
    assert!(admitted[8..15].iter().all(|n| *n <= 12), "{admitted:?}");
}

#[tokio::test(start_paused = true)]
async fn a_limit_that_comes_back_is_used_again_within_seconds_by_a_large_crowd() {
    // Growth must not be divided by the number of callers waiting.
    assert_recovers(200).await;
}

#[tokio::test(start_paused = true)]
async fn a_budget_hint_stops_holding_callers_back_after_its_reset() {
    let limiter = AdaptiveLimiter::new().initial_rate(100.0);
    // "2 requests left until the reset in 2 s": about 1 a second.
    limiter.observe_remaining(2, Duration::from_secs(2));
    assert!(limiter.rate().unwrap() <= 1.0, "{:?}", limiter.rate());
    advance(Duration::from_secs(3)).await;
    let _ = limiter.acquire_delay();
    assert_eq!(limiter.rate(), Some(100.0), "the rate from before the hint");

    let unlimited = AdaptiveLimiter::new();
    unlimited.observe_remaining(0, Duration::from_secs(5));
    assert!(unlimited.acquire_delay() > Duration::from_secs(4));
    advance(Duration::from_secs(6)).await;
    assert_eq!(unlimited.acquire_delay(), Duration::ZERO);
    assert_eq!(
        unlimited.rate(),
        None,
        "unlimited again once the window reset"
    );
}

// ---- The limiter every `#[retry]` function has unless it names one. ----

static HERD_BUCKET: Mutex<Option<Scheduled>> = Mutex::new(None);
static HERD_SENT: Mutex<Vec<Duration>> = Mutex::new(Vec::new());

#[derive(Debug)]
struct Busy;

impl Classify for Busy {
    fn kind(&self) -> ErrorKind {
        ErrorKind::RateLimit
    }
    fn retry_after(&self) -> Option<Duration> {
        Some(Duration::from_secs(1))
    }
}

/// A chat call as users first write it: no limiter named.
#[retry(max_attempts = 8)]
async fn herd_call(start: Instant) -> Result<(), Busy> {
    HERD_SENT.lock().unwrap().push(start.elapsed());
    let admitted = HERD_BUCKET.lock().unwrap().as_mut().unwrap().take();
    sleep(2 * MS).await;
    if admitted {
        Ok(())
    } else {
        Err(Busy)
    }
}

#[tokio::test(start_paused = true)]
async fn callers_told_the_same_retry_after_do_not_come_back_in_lockstep() {
    let start = Instant::now();
    *HERD_BUCKET.lock().unwrap() = Some(Scheduled::new(vec![(Duration::ZERO, 100.0)], 20.0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..300 {
        tasks.spawn(herd_call(start));
        if tasks.len() == 100 {
            assert!(
                tasks.join_next().await.unwrap().unwrap().is_ok(),
                "no call is lost"
            );
        }
    }
    while let Some(done) = tasks.join_next().await {
        assert!(done.unwrap().is_ok(), "no call is lost");
    }
    let sent = HERD_SENT.lock().unwrap().clone();
    let per_success = sent.len() as f64 / 300.0;
    eprintln!("{} attempts for 300 calls", sent.len());
    assert!(per_success <= 1.5, "{per_success} attempts per success");
    // The 80 callers refused at the start were all told `Retry-After: 1`:
    // they come back spread out at about the rate the provider admits, not
    // in the same instant. No 100 ms after the first second carries more
    // than a burst and the provider's 100 ms worth, with some headroom.
    let mut windows = [0u32; 100];
    for at in sent.iter().filter(|at| **at >= Duration::from_secs(1)) {
        let window = (at.as_millis() / 100) as usize;
        if window < windows.len() {
            windows[window] += 1;
        }
    }
    let crowded = windows.iter().max().copied().unwrap_or(0);
    assert!(
        crowded <= 40,
        "{crowded} attempts within 100 ms: {windows:?}"
    );
}

// ---- The initial window of a limiter that knows nothing yet. ----

#[tokio::test(start_paused = true)]
async fn a_herd_at_start_up_is_let_out_a_window_at_a_time() {
    let start = Instant::now();
    let bucket = Arc::new(Mutex::new(Scheduled::new(
        vec![(Duration::ZERO, 100.0)],
        20.0,
    )));
    let limiter = Arc::new(AdaptiveLimiter::new());
    let attempts = Arc::new(AtomicU64::new(0));
    let left = Arc::new(AtomicU64::new(500));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (bucket, limiter, attempts, left) = (
            Arc::clone(&bucket),
            Arc::clone(&limiter),
            Arc::clone(&attempts),
            Arc::clone(&left),
        );
        tasks.spawn(async move {
            let policy = Policy::new().max_attempts(8);
            while left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
            {
                let outcome = policy
                    .limiter(&limiter)
                    .call_async(|| async {
                        attempts.fetch_add(1, Ordering::Relaxed);
                        let admitted = bucket.lock().unwrap().take();
                        sleep(2 * MS).await;
                        if admitted {
                            Ok(())
                        } else {
                            Err(Refused)
                        }
                    })
                    .await;
                assert!(outcome.is_ok(), "no call is lost");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    let attempts = attempts.load(Ordering::Relaxed);
    // Without the window, the first 100 leave together and 80 are refused.
    assert!(attempts <= 550, "{attempts} attempts for 500 calls");
    let took = start.elapsed();
    assert!(took <= Duration::from_secs_f64(4.8 * 1.15), "{took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_call_dropped_in_the_window_frees_its_place() {
    let limiter = AdaptiveLimiter::new().initial_window(1);
    let policy = Policy::new().max_attempts(1);
    let paced = policy.limiter(&limiter);
    let hung = paced.call_async(|| async {
        sleep(Duration::from_secs(60)).await;
        Ok::<(), Refused>(())
    });
    assert!(tokio::time::timeout(Duration::from_secs(1), hung)
        .await
        .is_err());
    let start = Instant::now();
    let reply: Result<(), Refused> = paced.call_async(|| async { Ok(()) }).await;
    assert!(reply.is_ok());
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "the place was free at once"
    );
}

/// One call in a window of one, answered after `answer`; how long a second
/// call waits for its place.
async fn second_call_waits(answer: Duration) -> Duration {
    let limiter = Arc::new(AdaptiveLimiter::new().initial_window(1));
    let first = tokio::spawn({
        let limiter = Arc::clone(&limiter);
        async move {
            Policy::new()
                .limiter(&limiter)
                .call_async(|| async {
                    sleep(answer).await;
                    Ok::<(), Refused>(())
                })
                .await
        }
    });
    sleep(MS).await;
    let start = Instant::now();
    let second: Result<(), Refused> = Policy::new()
        .limiter(&limiter)
        .call_async(|| async { Ok(()) })
        .await;
    assert!(second.is_ok());
    let waited = start.elapsed();
    first.abort();
    waited
}

#[tokio::test(start_paused = true)]
async fn a_full_window_holds_the_next_call_until_an_answer() {
    let waited = second_call_waits(Duration::from_millis(100)).await;
    assert!(
        waited >= Duration::from_millis(99) && waited < Duration::from_millis(250),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_window_that_stays_full_grows_with_time() {
    // An answer that takes a minute does not hold the next call a minute.
    let waited = second_call_waits(Duration::from_secs(60)).await;
    assert!(waited <= Duration::from_millis(510), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn two_refusals_alone_do_not_measure_a_rate() {
    // A refusal, then 0.25 s in which the callers sent less than the
    // provider admits (15 successes), then another: nothing shows that the
    // provider stayed exhausted in between, so 60 a second is no limit,
    // and the second refusal only cuts the rate by another 5 %.
    let limiter = AdaptiveLimiter::new().initial_rate(100.0);
    limiter.on_rate_limited(None);
    advance(250 * MS).await;
    for _ in 0..15 {
        limiter.on_success();
    }
    limiter.on_rate_limited(None);
    let rate = limiter.rate().unwrap();
    assert!(close(rate, 90.25), "{rate}");
    // Refusals that keep coming do measure it: 3 more, 0.1 s apart, with
    // 10 successes each: 45 over 0.55 s.
    for _ in 0..3 {
        advance(100 * MS).await;
        for _ in 0..10 {
            limiter.on_success();
        }
        limiter.on_rate_limited(None);
    }
    let rate = limiter.rate().unwrap();
    assert!(close(rate, 45.0 / 0.55 * 0.95), "{rate}");
}
