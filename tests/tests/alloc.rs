//! A retried call allocates nothing on the heap: not on the success path,
//! and not per retry, sync or async (with the default features, `tracing`
//! included, and no subscriber installed).
//!
//! A counting global allocator wraps `System` and counts allocations per
//! thread (a `const` thread-local `Cell`, which needs no allocation and no
//! destructor of its own), so tests running in parallel on other threads do
//! not disturb the count.
//!
//! Each test makes one call before the one it counts. What was seen to
//! allocate on first use: only tokio, once per runtime, the first time a task
//! calls `tokio::task::yield_now()` (the scheduler's list of deferred wakers
//! grows from empty). tokio's timer (sleeps, `attempt_timeout`, deadlines on
//! the paused clock), fastrand's thread-local generator and tracing's
//! callsites did not allocate even on their first use; the warm-up keeps the
//! tests independent of such details of the dependencies.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use llm_resilience::{attempt, retry, Classify, Elapsed, ErrorKind, Jitter, Policy, Wait};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: the thread-local may be gone while a thread shuts down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to `System` with the same arguments; the
// count on the side neither allocates nor touches the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded as is.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Heap allocations made on this thread while `f` runs.
fn allocations<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = ALLOCATIONS.with(Cell::get);
    let r = f();
    let after = ALLOCATIONS.with(Cell::get);
    (r, after - before)
}

#[test]
fn the_counter_sees_allocations() {
    let (v, n) = allocations(|| std::hint::black_box(vec![1u8; 64]));
    assert_eq!(v.len(), 64);
    assert_eq!(n, 1);
    let ((), n) = allocations(|| ());
    assert_eq!(n, 0);
}

/// An error that does not allocate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ApiError {
    Busy,
    Limited,
    Cut,
}

impl Classify for ApiError {
    fn kind(&self) -> ErrorKind {
        match self {
            ApiError::Busy => ErrorKind::Overloaded,
            ApiError::Limited => ErrorKind::RateLimit,
            ApiError::Cut => ErrorKind::Timeout,
        }
    }
    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Limited => Some(Duration::from_millis(1)),
            _ => None,
        }
    }
    fn request_id(&self) -> Option<&str> {
        Some("req-static")
    }
}

impl From<Elapsed> for ApiError {
    fn from(_: Elapsed) -> Self {
        ApiError::Cut
    }
}

impl From<llm_resilience::CircuitOpen> for ApiError {
    fn from(_: llm_resilience::CircuitOpen) -> Self {
        ApiError::Busy
    }
}

// ---------------------------------------------------------------------------
// With a circuit breaker, a retry budget and an adaptive limiter.

static BREAKER: llm_resilience::CircuitBreaker = llm_resilience::CircuitBreaker::new();
static BUDGET: llm_resilience::RetryBudget = llm_resilience::RetryBudget::new();
static LIMITER: llm_resilience::AdaptiveLimiter = llm_resilience::AdaptiveLimiter::new();
static PACED: llm_resilience::AdaptiveLimiter =
    llm_resilience::AdaptiveLimiter::new().initial_rate(1_000_000.0);

#[retry(max_attempts = 3, wait = none, breaker = BREAKER, budget = BUDGET, limiter = LIMITER)]
fn guarded_succeeds_at_once(x: u32) -> Result<u32, ApiError> {
    Ok(x + attempt().number())
}

/// Fails with a server error and a rate limit before it succeeds: the
/// breaker counts failures (reading the clock), the budget is drawn on, and
/// the limiter starts pacing.
#[retry(max_attempts = 4, wait = none, on = [Overloaded, RateLimit], breaker = BREAKER, budget = BUDGET, limiter = PACED)]
fn guarded_fails_then_succeeds(calls: &Cell<u32>) -> Result<u32, ApiError> {
    calls.set(calls.get() + 1);
    match calls.get() {
        1 => Err(ApiError::Busy),
        2 => Err(ApiError::Limited),
        n => Ok(n),
    }
}

#[test]
fn guarded_success_path_allocates_nothing() {
    assert_eq!(guarded_succeeds_at_once(1), Ok(2));
    let (r, n) = allocations(|| {
        (0..100)
            .map(|i| guarded_succeeds_at_once(std::hint::black_box(i)).unwrap())
            .sum::<u32>()
    });
    assert_eq!(r, (0..100).map(|i| i + 1).sum::<u32>());
    assert_eq!(n, 0, "allocations on the guarded success path");
}

#[test]
fn guarded_retries_allocate_nothing() {
    assert_eq!(guarded_fails_then_succeeds(&Cell::new(0)), Ok(3));
    let (r, n) = allocations(|| guarded_fails_then_succeeds(&Cell::new(0)));
    assert_eq!(r, Ok(3));
    assert_eq!(n, 0, "allocations on the guarded retry path");
}

// ---------------------------------------------------------------------------
// Sync.

#[retry(max_attempts = 3, wait = none)]
fn succeeds_at_once(x: u32) -> Result<u32, ApiError> {
    Ok(x + attempt().number())
}

/// Fails `fail` times, then succeeds. `wait = none` keeps real sleeps out;
/// the retry path (classification, decision, backoff, jitter, on_retry,
/// span) runs in full.
#[retry(max_attempts = 4, wait = none, on_retry = |ev| seen.set(seen.get() + ev.attempt()))]
fn fails_then_succeeds(calls: &Cell<u32>, fail: u32, seen: &Cell<u32>) -> Result<u32, ApiError> {
    calls.set(calls.get() + 1);
    // The idempotency key is made without allocating too.
    let key = attempt().idempotency_key();
    std::hint::black_box(key.to_bytes());
    if calls.get() <= fail {
        return Err(ApiError::Busy);
    }
    Ok(calls.get())
}

/// Real sleeps of at most a few milliseconds, with jitter, Retry-After and a
/// deadline, so the clock is read and random numbers are drawn.
#[retry(
    max_attempts = 4,
    wait = exponential(1ms, 2ms),
    jitter = decorrelated,
    deadline = 10s,
    on = [Overloaded, RateLimit]
)]
fn sleeps_a_little(calls: &Cell<u32>) -> Result<u32, ApiError> {
    calls.set(calls.get() + 1);
    let _ = attempt().remaining();
    match calls.get() {
        1 => Err(ApiError::Busy),
        2 => Err(ApiError::Limited),
        n => Ok(n),
    }
}

#[test]
fn sync_success_path_allocates_nothing() {
    assert_eq!(succeeds_at_once(1), Ok(2));
    let (r, n) = allocations(|| {
        (0..100)
            .map(|i| succeeds_at_once(std::hint::black_box(i)).unwrap())
            .sum::<u32>()
    });
    assert_eq!(r, (0..100).map(|i| i + 1).sum::<u32>());
    assert_eq!(n, 0, "allocations on the success path");
}

#[test]
fn sync_retries_allocate_nothing() {
    let run = |fail| {
        let calls = Cell::new(0);
        let seen = Cell::new(0);
        let r = fails_then_succeeds(&calls, fail, &seen);
        (r, calls.get(), seen.get())
    };
    // Warm up (the lazy thread-locals of the dependencies).
    assert_eq!(run(2), (Ok(3), 3, 1 + 2));

    let (r, none) = allocations(|| run(0));
    assert_eq!(r, (Ok(1), 1, 0));
    let (r, twice) = allocations(|| run(2));
    assert_eq!(r, (Ok(3), 3, 1 + 2));
    let (r, give_up) = allocations(|| run(10));
    assert_eq!(r, (Err(ApiError::Busy), 4, 1 + 2 + 3));
    assert_eq!((none, twice, give_up), (0, 0, 0));
}

#[test]
fn sync_retries_with_sleeps_jitter_and_deadline_allocate_nothing() {
    let calls = Cell::new(0);
    assert_eq!(sleeps_a_little(&calls), Ok(3));
    let calls = Cell::new(0);
    let (r, n) = allocations(|| sleeps_a_little(&calls));
    assert_eq!(r, Ok(3));
    assert_eq!(n, 0);
}

#[test]
fn policy_call_with_hooks_allocates_nothing() {
    let policy = Policy::new()
        .max_attempts(5)
        .wait(Wait::none())
        .jitter(Jitter::Equal);
    let run = || {
        let calls = Cell::new(0);
        let events = Cell::new(0);
        let r = policy
            .when(|e: &ApiError| *e != ApiError::Cut)
            .on_retry(|_| events.set(events.get() + 1))
            .call(|| {
                calls.set(calls.get() + 1);
                if calls.get() < 3 {
                    Err(ApiError::Busy)
                } else {
                    Ok(calls.get())
                }
            });
        (r, events.get())
    };
    assert_eq!(run(), (Ok(3), 2));
    let (r, n) = allocations(run);
    assert_eq!(r, (Ok(3), 2));
    assert_eq!(n, 0);
}

// ---------------------------------------------------------------------------
// Async, on a current-thread runtime with the clock paused: sleeps, attempt
// timeouts and deadlines all go through tokio's timer without waiting.

#[retry(max_attempts = 3, wait = fixed(1s))]
async fn async_succeeds_at_once(x: u32) -> Result<u32, ApiError> {
    tokio::task::yield_now().await;
    Ok(x + attempt().number())
}

#[retry(max_attempts = 4, wait = exponential(1, 60), on_retry = |ev| seen.set(seen.get() + ev.attempt()))]
async fn async_fails_then_succeeds(
    calls: &Cell<u32>,
    fail: u32,
    seen: &Cell<u32>,
) -> Result<u32, ApiError> {
    calls.set(calls.get() + 1);
    tokio::task::yield_now().await;
    std::hint::black_box(attempt().idempotency_key());
    if calls.get() <= fail {
        return Err(ApiError::Busy);
    }
    Ok(calls.get())
}

/// Attempts cut off by `attempt_timeout` (the first two hang), under a
/// deadline.
#[retry(max_attempts = 4, wait = fixed(1s), jitter = equal, attempt_timeout = 2s, deadline = 60s)]
async fn async_hangs_then_succeeds(calls: &Cell<u32>) -> Result<u32, ApiError> {
    calls.set(calls.get() + 1);
    if calls.get() <= 2 {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    Ok(calls.get())
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

#[test]
fn async_success_path_allocates_nothing() {
    let rt = paused_runtime();
    rt.block_on(async {
        assert_eq!(async_succeeds_at_once(1).await, Ok(2));
        let before = ALLOCATIONS.with(Cell::get);
        let r = async_succeeds_at_once(std::hint::black_box(5)).await;
        let after = ALLOCATIONS.with(Cell::get);
        assert_eq!(r, Ok(6));
        assert_eq!(after - before, 0);
    });
}

#[test]
fn async_retries_allocate_nothing() {
    let rt = paused_runtime();
    rt.block_on(async {
        let run = |fail| async move {
            let calls = Cell::new(0);
            let seen = Cell::new(0);
            let r = async_fails_then_succeeds(&calls, fail, &seen).await;
            (r, calls.get(), seen.get())
        };
        // Warm up: the first `yield_now` on this runtime allocates tokio's
        // list of deferred wakers.
        assert_eq!(run(2).await, (Ok(3), 3, 3));

        let start = tokio::time::Instant::now();
        let before = ALLOCATIONS.with(Cell::get);
        let twice = run(2).await;
        let after = ALLOCATIONS.with(Cell::get);
        assert_eq!(twice, (Ok(3), 3, 1 + 2));
        assert_eq!(after - before, 0, "allocations in a call retried twice");
        // It did sleep (full jitter: up to 1 + 2 s, on the paused clock).
        assert!(start.elapsed() <= Duration::from_secs(3) + Duration::from_millis(2));

        let before = ALLOCATIONS.with(Cell::get);
        let none = run(0).await;
        let after = ALLOCATIONS.with(Cell::get);
        assert_eq!(none, (Ok(1), 1, 0));
        assert_eq!(after - before, 0, "allocations in a call that succeeds");

        let before = ALLOCATIONS.with(Cell::get);
        let give_up = run(10).await;
        let after = ALLOCATIONS.with(Cell::get);
        assert_eq!(give_up, (Err(ApiError::Busy), 4, 1 + 2 + 3));
        assert_eq!(after - before, 0, "allocations in a call that gives up");
    });
}

#[test]
fn async_attempt_timeouts_and_deadline_allocate_nothing() {
    let rt = paused_runtime();
    rt.block_on(async {
        let calls = Cell::new(0);
        assert_eq!(async_hangs_then_succeeds(&calls).await, Ok(3));

        let calls = Cell::new(0);
        let start = tokio::time::Instant::now();
        let before = ALLOCATIONS.with(Cell::get);
        let r = async_hangs_then_succeeds(&calls).await;
        let after = ALLOCATIONS.with(Cell::get);
        assert_eq!(r, Ok(3));
        // Two attempts cut off at 2 s, two sleeps of 0.5 to 1 s.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_secs(5) && elapsed <= Duration::from_millis(6002));
        assert_eq!(after - before, 0);
    });
}

#[test]
fn policy_call_async_allocates_nothing() {
    let rt = paused_runtime();
    let policy = Policy::new()
        .max_attempts(4)
        .wait(Wait::fixed(Duration::from_secs(1)))
        .attempt_timeout(Duration::from_secs(5));
    rt.block_on(async {
        let run = || async {
            let calls = Cell::new(0);
            policy
                .call_async(|| {
                    calls.set(calls.get() + 1);
                    let n = calls.get();
                    async move {
                        tokio::task::yield_now().await;
                        if n < 3 {
                            Err(ApiError::Limited)
                        } else {
                            Ok(n)
                        }
                    }
                })
                .await
        };
        assert_eq!(run().await, Ok(3));
        let before = ALLOCATIONS.with(Cell::get);
        let r = run().await;
        let after = ALLOCATIONS.with(Cell::get);
        assert_eq!(r, Ok(3));
        assert_eq!(after - before, 0);
    });
}

#[retry(max_attempts = 3, wait = fixed(1s))]
async fn allocates_per_attempt(calls: &Cell<u32>) -> Result<usize, ApiError> {
    calls.set(calls.get() + 1);
    let text = std::hint::black_box(format!("attempt {}", attempt().number()));
    tokio::task::yield_now().await;
    if calls.get() < 3 {
        return Err(ApiError::Busy);
    }
    Ok(text.len())
}

#[test]
fn the_counter_sees_allocations_inside_block_on() {
    // The async measurements above would notice an allocation: here the body
    // allocates once per attempt, and exactly that is counted.
    let rt = paused_runtime();
    rt.block_on(async {
        assert_eq!(allocates_per_attempt(&Cell::new(0)).await, Ok(9));
        let calls = Cell::new(0);
        let before = ALLOCATIONS.with(Cell::get);
        let r = allocates_per_attempt(&calls).await;
        let after = ALLOCATIONS.with(Cell::get);
        assert_eq!(r, Ok(9));
        assert_eq!(after - before, 3);
    });
}

// ---------------------------------------------------------------------------
// Streams: what `Policy::stream` adds to decoding does not grow with the
// number of events.

impl From<llm_resilience::stream::StreamError> for ApiError {
    fn from(_: llm_resilience::stream::StreamError) -> Self {
        ApiError::Cut
    }
}

/// One content event of OpenAI's format.
const EVENT: &[u8] = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi \"}}]}\n\n";

/// An in-memory body of `events` content events and `[DONE]`, one chunk
/// each, every chunk after one `Pending` (its waker woken at once), as a
/// socket that has to wait for each event would: the stream's idle timer
/// is armed for every event.
struct Trickle {
    events: usize,
    done: bool,
    ready: bool,
}

impl Trickle {
    fn new(events: usize) -> Self {
        Trickle {
            events,
            done: false,
            ready: false,
        }
    }
}

impl futures_util::Stream for Trickle {
    type Item = Result<&'static [u8], std::convert::Infallible>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        if self.done {
            return Poll::Ready(None);
        }
        if !self.ready {
            self.ready = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = false;
        if self.events == 0 {
            self.done = true;
            return Poll::Ready(Some(Ok(b"data: [DONE]\n\n")));
        }
        self.events -= 1;
        Poll::Ready(Some(Ok(EVENT)))
    }
}

/// Allocations of reading `events` content events straight from `decode`.
async fn direct(events: usize) -> u64 {
    use futures_util::StreamExt;
    use llm_resilience::stream::{decode, Frame, OpenAi};
    let before = ALLOCATIONS.with(Cell::get);
    let mut frames = decode(Trickle::new(events), OpenAi);
    let mut content = 0;
    while let Some(frame) = frames.next().await {
        if let Frame::Content(text) = frame.unwrap() {
            content += text.len();
        }
    }
    drop(frames);
    let after = ALLOCATIONS.with(Cell::get);
    assert_eq!(content, 3 * events);
    after - before
}

/// Allocations of reading the same through `Policy::stream`.
async fn wrapped(events: usize) -> u64 {
    use futures_util::StreamExt;
    use llm_resilience::stream::{OpenAi, Received, StreamItem, StreamOptions};
    const POLICY: Policy = Policy::new().max_attempts(3);
    const OPTIONS: StreamOptions = StreamOptions::new();
    let before = ALLOCATIONS.with(Cell::get);
    let mut stream = POLICY
        .stream(OPTIONS, OpenAi, |_: &Received| async move {
            Ok::<_, ApiError>(Trickle::new(events))
        })
        .await
        .unwrap();
    let mut content = 0;
    while let Some(item) = stream.next().await {
        if let StreamItem::Content(text) = item.unwrap() {
            content += text.len();
        }
    }
    drop(stream);
    let after = ALLOCATIONS.with(Cell::get);
    assert_eq!(content, 3 * events);
    after - before
}

#[test]
fn a_retried_stream_allocates_nothing_per_event() {
    const N: usize = 200;
    let rt = paused_runtime();
    rt.block_on(async {
        // Warm up both paths.
        direct(N).await;
        wrapped(N).await;
        let direct_n = direct(N).await;
        let direct_2n = direct(2 * N).await;
        let wrapped_n = wrapped(N).await;
        let wrapped_2n = wrapped(2 * N).await;
        // Decoding allocates per event (each event's text is a String): the
        // count must see that, or it could not see the wrapper's either.
        assert!(direct_2n >= direct_n + N as u64, "{direct_n} {direct_2n}");
        let added_n = wrapped_n.saturating_sub(direct_n);
        let added_2n = wrapped_2n.saturating_sub(direct_2n);
        assert!(
            wrapped_n >= direct_n && wrapped_2n >= direct_2n,
            "direct {direct_n}/{direct_2n}, wrapped {wrapped_n}/{wrapped_2n}"
        );
        assert!(
            added_2n.abs_diff(added_n) <= 2,
            "the wrapper's own allocations grow with the events: {added_n} for {N} events, \
             {added_2n} for {}",
            2 * N
        );
    });
}
