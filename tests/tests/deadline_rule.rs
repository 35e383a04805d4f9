//! A call's deadline binds every wait of the call (backoff, Retry-After,
//! the limiter's pacing, a fallback), nothing scarce is held across a wait,
//! and an async retry loop gives the scheduler a turn on every attempt.
#![deny(warnings, clippy::all)]

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use llm_resilience::{
    retry, testing, AdaptiveLimiter, CircuitBreaker, CircuitOpen, Classify, Elapsed, ErrorKind,
    Policy, Wait,
};
use tokio::time::Instant;

const MS: fn(u64) -> Duration = Duration::from_millis;
const SECS: fn(u64) -> Duration = Duration::from_secs;

#[derive(Debug, PartialEq)]
enum Error {
    Overloaded,
    Deadline(Duration),
    Open,
}

impl Classify for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::Overloaded | Error::Open => ErrorKind::Overloaded,
            Error::Deadline(_) => ErrorKind::Timeout,
        }
    }
}

impl From<Elapsed> for Error {
    fn from(elapsed: Elapsed) -> Self {
        assert!(elapsed.is_deadline(), "{elapsed}");
        Error::Deadline(elapsed.limit())
    }
}

impl From<CircuitOpen> for Error {
    fn from(_: CircuitOpen) -> Self {
        Error::Open
    }
}

// ---- 1. The limiter's pacing never runs past the deadline. ----

static HINTED: AdaptiveLimiter = AdaptiveLimiter::new().initial_rate(10.0);
static HINTED_SENT: AtomicU32 = AtomicU32::new(0);

#[retry(deadline = 1s, limiter = HINTED)]
async fn hinted() -> Result<u32, Error> {
    HINTED_SENT.fetch_add(1, Ordering::Relaxed);
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn a_slot_known_to_lie_past_the_deadline_fails_at_once() {
    // "Nothing remains for 30 s".
    HINTED.observe_remaining(0, SECS(30));
    let start = Instant::now();
    assert_eq!(hinted().await, Err(Error::Deadline(SECS(1))));
    assert_eq!(start.elapsed(), Duration::ZERO, "gave up at once");
    assert_eq!(HINTED_SENT.load(Ordering::Relaxed), 0, "never started late");
}

static SLOW: AdaptiveLimiter = AdaptiveLimiter::new().initial_rate(0.2); // a slot each 5 s

#[retry(deadline = 1s, limiter = SLOW)]
async fn slow_one_second() -> Result<u32, Error> {
    Ok(1)
}

#[retry(deadline = 10s, limiter = SLOW)]
async fn slow_ten_seconds() -> Result<u32, Error> {
    Ok(2)
}

#[tokio::test(start_paused = true)]
async fn plain_pacing_respects_the_deadline_and_frees_the_slot() {
    let start = Instant::now();
    assert_eq!(slow_one_second().await, Ok(1), "the first slot is free");
    // The next slot is 5 s away: a 1 s deadline cannot use it.
    assert_eq!(slow_one_second().await, Err(Error::Deadline(SECS(1))));
    assert_eq!(start.elapsed(), Duration::ZERO);
    // The refused call reserved nothing: a call that can wait takes the
    // same slot, 5 s after the first.
    assert_eq!(slow_ten_seconds().await, Ok(2));
    let waited = start.elapsed();
    // (Sooner than 5 s: the rate grows while the caller waits, and its slot
    // moves with it; never a whole interval later.)
    assert!(waited > SECS(3) && waited <= SECS(5), "{waited:?}");
}

static SYNC_HINTED: AdaptiveLimiter = AdaptiveLimiter::new().initial_rate(10.0);

#[test]
fn policy_call_is_bound_by_its_deadline_too() {
    SYNC_HINTED.observe_remaining(0, SECS(30));
    let sleeps = testing::skip_sleeps();
    let mut sent = 0;
    let result: io::Result<u32> =
        Policy::new()
            .deadline(SECS(1))
            .limiter(&SYNC_HINTED)
            .call(|| {
                sent += 1;
                Ok(1)
            });
    let error = result.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    assert!(error.get_ref().unwrap().is::<Elapsed>(), "{error:?}");
    assert_eq!(sent, 0);
    assert_eq!(sleeps.total(), Duration::ZERO, "no wait at all");
}

static SYNC_SLOW: AdaptiveLimiter = AdaptiveLimiter::new().initial_rate(0.2);

#[retry(deadline = 1s, limiter = SYNC_SLOW)]
fn sync_paced() -> Result<u32, Error> {
    Ok(3)
}

#[test]
fn the_attribute_on_a_sync_fn_is_bound_by_its_deadline() {
    let sleeps = testing::skip_sleeps();
    assert_eq!(sync_paced(), Ok(3));
    assert_eq!(sync_paced(), Err(Error::Deadline(SECS(1))));
    assert_eq!(sleeps.paced(), Duration::ZERO);
}

// A retry whose next slot lies past the deadline ends with the deadline
// error too, and never waits for it.
static RETRY_SLOW: AdaptiveLimiter = AdaptiveLimiter::new().initial_rate(0.2);
static RETRY_SENT: AtomicU32 = AtomicU32::new(0);

#[retry(max_attempts = 5, wait = fixed(10ms), deadline = 3s, limiter = RETRY_SLOW)]
async fn retried_into_a_late_slot() -> Result<u32, Error> {
    RETRY_SENT.fetch_add(1, Ordering::Relaxed);
    Err(Error::Overloaded)
}

#[tokio::test(start_paused = true)]
async fn a_retry_is_never_paced_past_the_deadline() {
    let start = Instant::now();
    assert_eq!(
        retried_into_a_late_slot().await,
        Err(Error::Deadline(SECS(3)))
    );
    assert_eq!(RETRY_SENT.load(Ordering::Relaxed), 1);
    assert!(start.elapsed() < SECS(1), "{:?}", start.elapsed());
}

// ---- 1. A fallback ends no later than the call it replaces. ----

#[retry(max_attempts = 1, deadline = 1s, fallback = backup)]
async fn primary() -> Result<&'static str, Error> {
    Err(Error::Overloaded)
}

#[retry(max_attempts = 3)]
async fn backup() -> Result<&'static str, Error> {
    tokio::time::sleep(SECS(10)).await;
    Ok("from the backup")
}

#[tokio::test(start_paused = true)]
async fn a_fallback_without_a_deadline_is_cut_off_at_the_callers() {
    let start = Instant::now();
    assert_eq!(primary().await, Err(Error::Deadline(SECS(1))));
    assert_eq!(start.elapsed(), SECS(1));
}

#[retry(max_attempts = 1, deadline = 20s, fallback = backup)]
async fn patient_primary() -> Result<&'static str, Error> {
    Err(Error::Overloaded)
}

#[tokio::test(start_paused = true)]
async fn a_fallback_within_the_deadline_is_not_cut_off() {
    assert_eq!(patient_primary().await, Ok("from the backup"));
}

#[tokio::test(start_paused = true)]
async fn a_chain_of_fallbacks_shares_one_deadline() {
    let start = Instant::now();
    let tried = AtomicU32::new(0);
    let reply = Policy::new()
        .max_attempts(1)
        .deadline(SECS(1))
        .call_each_async(["down", "slow", "never"], |item| {
            tried.fetch_add(1, Ordering::Relaxed);
            let item = *item;
            async move {
                match item {
                    "down" => Err(Error::Overloaded),
                    _ => {
                        tokio::time::sleep(SECS(10)).await;
                        Ok(item)
                    }
                }
            }
        })
        .await;
    assert_eq!(reply, Some(Err(Error::Deadline(SECS(1)))));
    assert_eq!(start.elapsed(), SECS(1));
    assert_eq!(
        tried.load(Ordering::Relaxed),
        2,
        "the chain stops at the deadline"
    );
}

// ---- 2. Nothing scarce is held across a wait. ----

static HALF_OPEN: CircuitBreaker = CircuitBreaker::new()
    .consecutive_failures(1)
    .break_for(Duration::from_secs(1));
static PACED_SLOWLY: AdaptiveLimiter = AdaptiveLimiter::new().initial_rate(0.1); // 10 s apart

#[retry(max_attempts = 1, breaker = HALF_OPEN, limiter = PACED_SLOWLY)]
async fn paced_behind_the_breaker() -> Result<&'static str, Error> {
    Ok("paced")
}

#[retry(max_attempts = 1, breaker = HALF_OPEN)]
async fn unpaced_behind_the_breaker() -> Result<&'static str, Error> {
    Ok("unpaced")
}

#[tokio::test(start_paused = true)]
async fn a_probe_slot_is_not_held_while_pacing() {
    // Use the limiter's free slot: the next one is 10 s away.
    assert_eq!(PACED_SLOWLY.acquire_delay(), Duration::ZERO);
    // Open the breaker, and let the break pass: half-open, one probe.
    HALF_OPEN.try_acquire().unwrap().failure(ErrorKind::Server);
    tokio::time::sleep(SECS(2)).await;

    let paced = tokio::spawn(paced_behind_the_breaker());
    tokio::time::sleep(MS(100)).await;
    assert!(!paced.is_finished(), "waiting for its send slot");
    // While it paces, the probe slot is free for another caller.
    assert_eq!(unpaced_behind_the_breaker().await, Ok("unpaced"));
    // The probe closed the breaker; the paced call goes when its slot comes.
    let start = Instant::now();
    assert_eq!(paced.await.unwrap(), Ok("paced"));
    assert!(start.elapsed() > SECS(7), "{:?}", start.elapsed());
}

// ---- 3. An async retry loop yields. ----

#[retry(max_attempts = 4294967295, wait = none, deadline = 1s)]
async fn fails_at_once_forever() -> Result<(), Error> {
    Err(Error::Overloaded)
}

#[tokio::test(start_paused = true)]
async fn a_loop_of_instant_failures_reaches_its_deadline_on_a_paused_clock() {
    let start = Instant::now();
    let outcome = tokio::time::timeout(SECS(60), fails_at_once_forever()).await;
    let error = outcome.expect("the deadline ends the loop").unwrap_err();
    assert!(
        matches!(error, Error::Overloaded | Error::Deadline(_)),
        "{error:?}"
    );
    let took = start.elapsed();
    assert!(took >= MS(990) && took <= MS(1010), "{took:?}");
}

#[retry(max_attempts = 1000, wait = none)]
async fn until_the_other_task_ran(ran: &AtomicBool, attempts: &AtomicU32) -> Result<u32, Error> {
    let n = attempts.fetch_add(1, Ordering::Relaxed) + 1;
    if ran.load(Ordering::Relaxed) {
        Ok(n)
    } else {
        Err(Error::Overloaded)
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_zero_wait_gives_other_tasks_a_turn() {
    let ran = Arc::new(AtomicBool::new(false));
    let other = tokio::spawn({
        let ran = Arc::clone(&ran);
        async move { ran.store(true, Ordering::Relaxed) }
    });
    let attempts = AtomicU32::new(0);
    // On one thread, the other task runs only if the loop yields.
    let n = until_the_other_task_ran(&ran, &attempts).await.unwrap();
    assert!(n <= 3, "the other task waited {n} attempts");
    other.await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn policy_call_async_yields_too() {
    let ran = Arc::new(AtomicBool::new(false));
    let other = tokio::spawn({
        let ran = Arc::clone(&ran);
        async move { ran.store(true, Ordering::Relaxed) }
    });
    let mut attempts = 0;
    let result = Policy::new()
        .max_attempts(1000)
        .wait(Wait::none())
        .call_async(|| {
            attempts += 1;
            let ran = ran.load(Ordering::Relaxed);
            async move {
                if ran {
                    Ok(())
                } else {
                    Err(Error::Overloaded)
                }
            }
        })
        .await;
    assert_eq!(result, Ok(()));
    assert!(attempts <= 3, "the other task waited {attempts} attempts");
    other.await.unwrap();
}

// ---- 1. ... whether or not the nested call has a deadline of its own. ----

static NESTED: AdaptiveLimiter = AdaptiveLimiter::new().initial_rate(0.2);
static NESTED_SENT: AtomicU32 = AtomicU32::new(0);

#[retry(limiter = NESTED)]
fn nested_inner() -> Result<u32, Error> {
    NESTED_SENT.fetch_add(1, Ordering::Relaxed);
    Ok(1)
}

#[retry(max_attempts = 1, deadline = 1s)]
fn nested_outer() -> Result<u32, Error> {
    nested_inner()
}

#[test]
fn a_nested_sync_call_is_never_paced_past_the_deadline_it_inherits() {
    let sleeps = testing::skip_sleeps();
    assert_eq!(nested_outer(), Ok(1));
    let error = nested_outer().unwrap_err();
    assert!(matches!(error, Error::Deadline(_)), "{error:?}");
    assert_eq!(
        sleeps.paced(),
        Duration::ZERO,
        "no wait for a slot it cannot use"
    );
    assert_eq!(NESTED_SENT.load(Ordering::Relaxed), 1, "nothing sent late");
}

static NESTED_ASYNC: AdaptiveLimiter = AdaptiveLimiter::new().initial_rate(0.2);

#[retry(limiter = NESTED_ASYNC)]
async fn nested_inner_async() -> Result<u32, Error> {
    Ok(2)
}

#[retry(max_attempts = 1, deadline = 1s)]
async fn nested_outer_async() -> Result<u32, Error> {
    nested_inner_async().await
}

#[retry(deadline = 30s, limiter = NESTED_ASYNC)]
async fn patient_on_nested() -> Result<u32, Error> {
    Ok(3)
}

#[tokio::test(start_paused = true)]
async fn a_nested_async_call_fails_at_once_and_takes_no_slot() {
    let start = Instant::now();
    assert_eq!(nested_outer_async().await, Ok(2));
    let error = nested_outer_async().await.unwrap_err();
    assert!(matches!(error, Error::Deadline(_)), "{error:?}");
    assert_eq!(start.elapsed(), Duration::ZERO, "at once");
    // The slot 5 s ahead is still free.
    assert_eq!(patient_on_nested().await, Ok(3));
    let waited = start.elapsed();
    // (Sooner than 5 s: the rate grows while the caller waits, and its slot
    // moves with it; never a whole interval later.)
    assert!(waited > SECS(3) && waited <= SECS(5), "{waited:?}");
}

// ---- A call dropped while it waits for its slot gives it back. ----

static DROPPED: AdaptiveLimiter = AdaptiveLimiter::new().initial_rate(0.2);

#[retry(deadline = 60s, limiter = DROPPED)]
async fn waits_long() -> Result<u32, Error> {
    Ok(1)
}

#[retry(deadline = 6s, limiter = DROPPED)]
async fn within_six_seconds() -> Result<u32, Error> {
    Ok(6)
}

#[tokio::test(start_paused = true)]
async fn a_dropped_wait_gives_its_slot_back() {
    assert_eq!(waits_long().await, Ok(1)); // the slot at 0 s
                                           // Takes the slot at 5 s, and is dropped at 1 s.
    assert!(tokio::time::timeout(SECS(1), waits_long()).await.is_err());
    let start = Instant::now();
    assert_eq!(within_six_seconds().await, Ok(6));
    let waited = start.elapsed();
    // (The slot 5 s after the first, 4 s from now at most; sooner as the
    // rate grows while the caller waits.)
    assert!(waited > SECS(2) && waited <= SECS(4), "{waited:?}");
}
