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
//! - `tower_happy_path`: a tower service that answers a clone of one
//!   `http::Request` with a 200 at once (`service_fn`), called bare
//!   (`ready` then `call`), under `llm_resilience::tower::RetryLayer`
//!   (default policy; and with a breaker, budget and limiter), and under
//!   tower's own `retry` layer with a policy that never retries. Each
//!   future is polled once, as above.
//! - `http_client_happy_path`: a GET of a 2-byte body from a local hyper
//!   server over a kept-alive connection: a bare `reqwest::Client`, a
//!   `ClientWithMiddleware` with no middleware, and one with
//!   `llm_resilience::reqwest_middleware::RetryMiddleware`. Real HTTP, so
//!   the time is mostly the round trip; the differences are the layers'.
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
use tower::{Layer, Service, ServiceExt};

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

// ---------------------------------------------------------------------------
// Tower: a service that answers at once, bare and under retry layers.

type TowerRequest = http::Request<http_body_util::Full<bytes::Bytes>>;
type TowerResponse = http::Response<http_body_util::Full<bytes::Bytes>>;

fn tower_request() -> TowerRequest {
    http::Request::post("http://127.0.0.1:8080/v1/chat/completions")
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-bench")
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            br#"{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}"#,
        )))
        .expect("a valid request")
}

/// The provider: a 200 with a small body, ready at once.
fn answer(_: TowerRequest) -> std::future::Ready<Result<TowerResponse, std::convert::Infallible>> {
    std::future::ready(Ok(http::Response::new(http_body_util::Full::new(
        bytes::Bytes::from_static(b"{}"),
    ))))
}

/// One call of `service` with a clone of `request`, polled once.
#[inline(always)]
fn tower_call<S>(service: &mut S, request: &TowerRequest) -> bool
where
    S: Service<TowerRequest, Response = TowerResponse>,
{
    ready(async {
        let service = service.ready().await.ok()?;
        service.call(request.clone()).await.ok()
    })
    .is_some()
}

/// tower's retry policy that never retries (but clones each request, as
/// every retrying policy must, to have it for a retry).
#[derive(Clone)]
struct NeverRetry;

impl<E> tower::retry::Policy<TowerRequest, TowerResponse, E> for NeverRetry {
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        _: &mut TowerRequest,
        _: &mut Result<TowerResponse, E>,
    ) -> Option<Self::Future> {
        None
    }

    fn clone_request(&mut self, request: &TowerRequest) -> Option<TowerRequest> {
        Some(request.clone())
    }
}

fn tower_happy_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let _context = rt.enter();
    let request = tower_request();
    let mut group = c.benchmark_group("tower_happy_path");

    let mut bare = tower::service_fn(answer);
    assert!(tower_call(&mut bare, &request));
    group.bench_function("service_direct", |b| {
        b.iter(|| tower_call(&mut bare, black_box(&request)))
    });

    let mut layered =
        llm_resilience::tower::RetryLayer::new(POLICY).layer(tower::service_fn(answer));
    assert!(tower_call(&mut layered, &request));
    group.bench_function("retry_layer", |b| {
        b.iter(|| tower_call(&mut layered, black_box(&request)))
    });

    let mut guarded = llm_resilience::tower::RetryLayer::new(POLICY)
        .breaker(&BREAKER)
        .budget(&BUDGET)
        .limiter(&LIMITER)
        .layer(tower::service_fn(answer));
    assert!(tower_call(&mut guarded, &request));
    group.bench_function("retry_layer_breaker_budget_limiter", |b| {
        b.iter(|| tower_call(&mut guarded, black_box(&request)))
    });

    let mut towers = tower::retry::RetryLayer::new(NeverRetry).layer(tower::service_fn(answer));
    assert!(tower_call(&mut towers, &request));
    group.bench_function("tower_retry", |b| {
        b.iter(|| tower_call(&mut towers, black_box(&request)))
    });
    group.finish();
}

// ---------------------------------------------------------------------------
// reqwest: a local server, called bare and through middleware.

/// A hyper server on 127.0.0.1 that answers every request with `{}`, on a
/// thread and runtime of its own; its address.
fn local_server() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking listener");
    let addr = listener.local_addr().expect("its address");
    thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("the server's runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|_| async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from_static(b"{}")),
                        ))
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
    });
    addr
}

fn http_client_happy_path(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let url = format!("http://{}/v1/models", local_server());
    let bare = reqwest::Client::new();
    let plain = reqwest_middleware::ClientBuilder::new(bare.clone()).build();
    let retried = reqwest_middleware::ClientBuilder::new(bare.clone())
        .with(llm_resilience::reqwest_middleware::RetryMiddleware::new(
            POLICY,
        ))
        .build();
    let mut group = c.benchmark_group("http_client_happy_path");
    group.bench_function("reqwest_client", |b| {
        b.iter(|| {
            rt.block_on(async {
                let response = bare.get(&url).send().await.expect("an answer");
                assert!(response.status().is_success());
                response.bytes().await.expect("a body").len()
            })
        })
    });
    group.bench_function("client_with_middleware_none", |b| {
        b.iter(|| {
            rt.block_on(async {
                let response = plain.get(&url).send().await.expect("an answer");
                assert!(response.status().is_success());
                response.bytes().await.expect("a body").len()
            })
        })
    });
    group.bench_function("retry_middleware", |b| {
        b.iter(|| {
            rt.block_on(async {
                let response = retried.get(&url).send().await.expect("an answer");
                assert!(response.status().is_success());
                response.bytes().await.expect("a body").len()
            })
        })
    });
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
    targets = sync_happy_path, async_happy_path, breaker_closed_1_thread, breaker_closed_2_threads,
        tower_happy_path, http_client_happy_path
}
criterion_main!(benches);
