//! A tower [`Layer`] that runs any [`Service`] under a [`Policy`] (feature
//! `tower`).
//!
//! [`RetryLayer`] wraps a service whose requests can be sent again
//! ([`Replay`]: `http::Request<B>` with a buffered body, `reqwest::Request`,
//! or a type of your own) and runs each call as [`Policy::call_async`]
//! does: with its breaker, budget, limiter, deadline and attempt timeout,
//! its tracing span and metrics (labelled `function="policy"`). Responses
//! are classified by [`CheckResponse`] (a 2xx `http::Response` is a
//! success; any other status is an [`HttpError`] of the kind the
//! [`http`](crate::http) table gives, with the provider's wait, request id
//! and the start of the body) and the service's errors by [`Classify`]. A
//! service whose error type does not implement it can be mapped to
//! `Box<dyn Error + Send + Sync>`, classified by its chain of causes:
//! `.map_err(BoxError::from)`.
//!
//! Every attempt of an `http::Request` or `reqwest::Request` carries the
//! call's `Idempotency-Key` (one per call, the same on every attempt; one
//! the caller set is kept) and `x-retry-count`, as
//! [`insert_retry_headers`](crate::http::insert_retry_headers) adds them.
//!
//! A request whose body cannot be replayed (a stream) is sent once: a
//! failure that would have been retried ends the call, and the error says
//! so ([`HttpError::is_not_replayable`], and its message).
//!
//! The service's error is [`HttpError`]: a failed response, the inner
//! service's error (as its source, with its kind, wait and request id), a
//! cut-off attempt or a breaker's refusal.
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::atomic::{AtomicU32, Ordering};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use http::{Request, Response};
//! use llm_resilience::tower::RetryLayer;
//! use llm_resilience::{CircuitBreaker, Policy, Wait};
//! use tower::{service_fn, Layer, ServiceExt};
//!
//! static BREAKER: CircuitBreaker = CircuitBreaker::new();
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // A provider that is overloaded once, then answers.
//! let calls = Arc::new(AtomicU32::new(0));
//! let provider = service_fn(move |request: Request<String>| {
//!     let n = calls.fetch_add(1, Ordering::SeqCst);
//!     assert_eq!(request.headers()["x-retry-count"], n.to_string().as_str());
//!     let status = if n == 0 { 503 } else { 200 };
//!     let response = Response::builder().status(status).body(String::from("{}")).unwrap();
//!     async move { Ok::<_, Infallible>(response) }
//! });
//!
//! let policy = Policy::new().max_attempts(3).wait(Wait::fixed(Duration::from_millis(1)));
//! let service = RetryLayer::new(policy).breaker(&BREAKER).layer(provider);
//! let request = Request::post("http://127.0.0.1:9/v1/chat/completions").body(String::from("{}")).unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! # }
//! ```
//!
//! [`RetryBudget`] also implements tower's own retry
//! [`Budget`](::tower::retry::budget::Budget) (`deposit` records a call,
//! `withdraw` asks for a retry), so one budget can cap the retries of an
//! existing `tower::retry` stack and of `#[retry]` functions together.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use ::tower::{Layer, Service};

use crate::http::{check_response, CheckResponseFuture, HttpError};
use crate::integrations::{call_guarded, guard_builders, Guarded};
use crate::{Classify, ErrorKind, Policy, RetryBudget};

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A request that can be sent again: what [`RetryLayer`] needs of a
/// service's request type.
///
/// Implemented for `http::Request<B>` whose body is a [`ReplayBody`] and,
/// with the `reqwest` feature, for `reqwest::Request` (by `try_clone`, which
/// gives `None` for a streaming body). Implement it for a request type of
/// your own: a `Clone` type returns `Some(self.clone())`.
///
/// ```
/// use llm_resilience::tower::Replay;
///
/// #[derive(Clone)]
/// struct Embed {
///     text: String,
/// }
///
/// impl Replay for Embed {
///     fn replay(&self) -> Option<Self> {
///         Some(self.clone())
///     }
/// }
///
/// let request = Embed { text: "hello".into() };
/// assert_eq!(request.replay().unwrap().text, "hello");
/// ```
pub trait Replay: Sized {
    /// A copy of the request to send again, or `None` when it cannot be sent
    /// twice (its body is a stream): the call is then sent once.
    fn replay(&self) -> Option<Self>;

    /// Called on the request of each attempt, inside the attempt, just
    /// before it is sent: the place to add what identifies the call and the
    /// attempt (for http requests, `Idempotency-Key` and `x-retry-count`).
    /// Does nothing by default.
    fn prepare(&mut self) {}
}

/// A request body that can be sent again: buffered bodies can, streams
/// cannot. The body of an `http::Request` that [`RetryLayer`] retries.
///
/// | body | replayed |
/// |---|---|
/// | `String`, `Vec<u8>`, `bytes::Bytes`, `&'static str`, `&'static [u8]` | yes |
/// | `http_body_util::Full<D>`, `Empty<D>` | yes |
/// | `http_body_util::Either<L, R>` | when the side it holds is |
/// | `http_body_util::combinators::BoxBody`, `UnsyncBoxBody` | no: sent once |
///
/// ```
/// use http_body_util::{BodyExt, Full};
/// use llm_resilience::tower::ReplayBody;
///
/// let full = Full::new(bytes::Bytes::from_static(b"{}"));
/// assert!(full.replay_body().is_some());
/// let stream = full.map_err(|never| match never {}).boxed(); // a stream, as far as anyone knows
/// assert!(stream.replay_body().is_none());
/// ```
pub trait ReplayBody: Sized {
    /// A copy of the body, or `None` when it is a stream.
    fn replay_body(&self) -> Option<Self>;
}

macro_rules! cloned_bodies {
    ($($ty:ty),*) => {$(
        impl ReplayBody for $ty {
            #[inline]
            fn replay_body(&self) -> Option<Self> {
                Some(self.clone())
            }
        }
    )*};
}

cloned_bodies!(String, Vec<u8>, bytes::Bytes, &'static str, &'static [u8]);

impl<D: Clone> ReplayBody for http_body_util::Full<D> {
    #[inline]
    fn replay_body(&self) -> Option<Self> {
        Some(self.clone())
    }
}

impl<D> ReplayBody for http_body_util::Empty<D> {
    #[inline]
    fn replay_body(&self) -> Option<Self> {
        Some(http_body_util::Empty::new())
    }
}

impl<L: ReplayBody, R: ReplayBody> ReplayBody for http_body_util::Either<L, R> {
    fn replay_body(&self) -> Option<Self> {
        match self {
            http_body_util::Either::Left(left) => left.replay_body().map(Self::Left),
            http_body_util::Either::Right(right) => right.replay_body().map(Self::Right),
        }
    }
}

impl<D, E> ReplayBody for http_body_util::combinators::BoxBody<D, E> {
    /// `None`: a boxed body may be a stream.
    fn replay_body(&self) -> Option<Self> {
        None
    }
}

impl<D, E> ReplayBody for http_body_util::combinators::UnsyncBoxBody<D, E> {
    /// `None`: a boxed body may be a stream.
    fn replay_body(&self) -> Option<Self> {
        None
    }
}

impl<B: ReplayBody> Replay for http::Request<B> {
    /// The same method, URI, version, headers and extensions, with a copy
    /// of the body; `None` when the body is a stream.
    fn replay(&self) -> Option<Self> {
        let mut copy = http::Request::new(self.body().replay_body()?);
        *copy.method_mut() = self.method().clone();
        *copy.uri_mut() = self.uri().clone();
        *copy.version_mut() = self.version();
        *copy.headers_mut() = self.headers().clone();
        *copy.extensions_mut() = self.extensions().clone();
        Some(copy)
    }

    /// `Idempotency-Key` and `x-retry-count`, by
    /// [`insert_retry_headers`](crate::http::insert_retry_headers).
    fn prepare(&mut self) {
        crate::http::insert_retry_headers(self.headers_mut());
    }
}

#[cfg(feature = "reqwest")]
impl Replay for reqwest::Request {
    /// `try_clone`: `None` for a streaming body.
    fn replay(&self) -> Option<Self> {
        self.try_clone()
    }

    /// `Idempotency-Key` and `x-retry-count`, by
    /// [`insert_retry_headers`](crate::http::insert_retry_headers).
    fn prepare(&mut self) {
        crate::http::insert_retry_headers(self.headers_mut());
    }
}

/// How [`RetryLayer`] tells a failed response from a success: `Ok(self)`,
/// or the failure as an [`HttpError`]. Implemented for `http::Response<B>`
/// ([`check_response`]) and, with the `reqwest` feature, for
/// `reqwest::Response` ([`check`](crate::http::check)).
///
/// For a service whose responses are not HTTP responses, a success is
/// `ready(Ok(self))`:
///
/// ```
/// use std::future::{ready, Ready};
/// use llm_resilience::{http::HttpError, tower::CheckResponse};
///
/// struct Embedding(Vec<f32>);
///
/// impl CheckResponse for Embedding {
///     type Future = Ready<Result<Self, HttpError>>;
///     fn check(self) -> Self::Future {
///         ready(Ok(self)) // every response is a success; failures are the service's errors
///     }
/// }
/// ```
pub trait CheckResponse: Sized {
    /// What [`check`](CheckResponse::check) returns.
    type Future: Future<Output = Result<Self, HttpError>>;

    /// `Ok(self)` for a success; the failure it stands for otherwise.
    fn check(self) -> Self::Future;
}

impl<B: http_body::Body> CheckResponse for http::Response<B> {
    type Future = CheckResponseFuture<B>;

    #[inline]
    fn check(self) -> Self::Future {
        check_response(self)
    }
}

#[cfg(feature = "reqwest")]
impl CheckResponse for reqwest::Response {
    type Future = CheckReqwestFuture;

    #[inline]
    fn check(self) -> Self::Future {
        CheckReqwestFuture {
            state: ReqwestState::Start(Some(self)),
        }
    }
}

/// The future of [`CheckResponse::check`] for a `reqwest::Response`: ready
/// at once for a 2xx, without allocating; otherwise
/// [`check`](crate::http::check).
#[cfg(feature = "reqwest")]
#[must_use = "futures do nothing unless polled"]
pub struct CheckReqwestFuture {
    state: ReqwestState,
}

#[cfg(feature = "reqwest")]
type ReqwestCheck = Pin<Box<dyn Future<Output = Result<reqwest::Response, HttpError>> + Send>>;

#[cfg(feature = "reqwest")]
enum ReqwestState {
    Start(Option<reqwest::Response>),
    Failed(ReqwestCheck),
}

#[cfg(feature = "reqwest")]
impl std::fmt::Debug for CheckReqwestFuture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckReqwestFuture").finish_non_exhaustive()
    }
}

#[cfg(feature = "reqwest")]
impl Future for CheckReqwestFuture {
    type Output = Result<reqwest::Response, HttpError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match &mut self.state {
                ReqwestState::Start(response) => {
                    let response = response
                        .take()
                        .expect("CheckReqwestFuture polled after completion");
                    if response.status().is_success() {
                        crate::http::observe(response.headers());
                        return Poll::Ready(Ok(response));
                    }
                    self.state = ReqwestState::Failed(Box::pin(crate::http::check(response)));
                }
                ReqwestState::Failed(check) => return check.as_mut().poll(cx),
            }
        }
    }
}

/// A tower [`Layer`] that runs every call of the service it wraps under a
/// [`Policy`], with the guards given to it. See the [module docs](self).
///
/// The guards are shared: give it a `&'static` one (a `static`), an `Arc`
/// of one, or one of its own, which all the services it makes share.
///
/// ```
/// use std::time::Duration;
/// use llm_resilience::tower::RetryLayer;
/// use llm_resilience::{AdaptiveLimiter, CircuitBreaker, Policy, RetryBudget};
///
/// static BREAKER: CircuitBreaker = CircuitBreaker::new();
/// static BUDGET: RetryBudget = RetryBudget::new();
/// static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new();
///
/// let policy = Policy::new()
///     .max_attempts(4)
///     .attempt_timeout(Duration::from_secs(60))
///     .deadline(Duration::from_secs(120));
/// let layer = RetryLayer::new(policy).breaker(&BREAKER).budget(&BUDGET).limiter(&LIMITER);
/// # let _ = layer;
/// ```
#[derive(Clone, Debug)]
pub struct RetryLayer {
    guarded: Guarded,
}

impl RetryLayer {
    /// A layer that runs calls under `policy`, with no breaker, budget or
    /// limiter.
    pub fn new(policy: Policy) -> Self {
        RetryLayer {
            guarded: Guarded::new(policy),
        }
    }
}

guard_builders!(RetryLayer);

impl<S> Layer<S> for RetryLayer {
    type Service = Retry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Retry {
            inner,
            guarded: Arc::new(self.guarded.clone()),
        }
    }
}

/// The service [`RetryLayer`] makes. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct Retry<S> {
    inner: S,
    guarded: Arc<Guarded>,
}

impl<S> Retry<S> {
    /// The service it wraps.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The service it wraps.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// The future of a [`Retry`] call.
pub type ResponseFuture<T> = Pin<Box<dyn Future<Output = Result<T, HttpError>> + Send + 'static>>;

impl<S, Req> Service<Req> for Retry<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Response: CheckResponse + Send + 'static,
    <S::Response as CheckResponse>::Future: Send,
    S::Error: Classify + Into<BoxError>,
    S::Future: Send + 'static,
    Req: Replay + Send + 'static,
{
    type Response = S::Response;
    type Error = HttpError;
    type Future = ResponseFuture<S::Response>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner
            .poll_ready(cx)
            .map_err(HttpError::from_classified)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        // The service that was made ready goes with this call; the layer
        // keeps a clone for the next.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        Box::pin(run(Arc::clone(&self.guarded), ready, request))
    }
}

/// The service, lent to one attempt at a time: it comes back to the slot
/// when the attempt is done with it, or is dropped (cut off).
struct Lease<'a, S> {
    slot: &'a Mutex<Option<S>>,
    service: Option<S>,
}

impl<'a, S> Lease<'a, S> {
    fn take(slot: &'a Mutex<Option<S>>) -> Self {
        let service = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        Lease { slot, service }
    }
}

impl<S> Drop for Lease<'_, S> {
    fn drop(&mut self) {
        if let Some(service) = self.service.take() {
            *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(service);
        }
    }
}

/// One call through the layer: every attempt on the service, until the
/// policy is done.
async fn run<S, Req>(
    guarded: Arc<Guarded>,
    ready: S,
    request: Req,
) -> Result<S::Response, HttpError>
where
    S: Service<Req>,
    S::Response: CheckResponse,
    S::Error: Classify + Into<BoxError>,
    Req: Replay,
{
    let mut template = request.replay();
    let replayable = template.is_some();
    let slot = Mutex::new(Some(ready));
    let mut first = Some(request);
    let mut sent = false;
    let op = || {
        sent = true;
        let number = crate::attempt().number();
        let mut request = first
            .take()
            // Borrowed uniquely, so that the future need not be `Sync`.
            .or_else(|| template.as_mut().and_then(|t| t.replay()));
        if let Some(request) = &mut request {
            request.prepare();
        }
        let slot = &slot;
        async move {
            let Some(request) = request else {
                return Err(HttpError::from_source(
                    ErrorKind::Other,
                    "the request was sent once and cannot be replayed",
                ));
            };
            let response = {
                let mut lease = Lease::take(slot);
                let Some(service) = lease.service.as_mut() else {
                    return Err(HttpError::from_source(
                        ErrorKind::Other,
                        "the service was lost by an earlier attempt",
                    ));
                };
                if number > 1 {
                    // The first attempt's service was made ready by the
                    // caller; a retry's is made ready again.
                    std::future::poll_fn(|cx| service.poll_ready(cx))
                        .await
                        .map_err(HttpError::from_classified)?;
                }
                service.call(request)
            };
            let response = response.await.map_err(HttpError::from_classified)?;
            response.check().await
        }
    };
    let outcome = call_guarded!(&guarded, replayable, op);
    outcome.map_err(|error| guarded.finish(error, replayable, sent))
}

/// Tower's retry budget, for a `tower::retry::Policy`: a
/// [`deposit`](::tower::retry::budget::Budget::deposit) is a call
/// ([`record_call`](RetryBudget::record_call)), a
/// [`withdraw`](::tower::retry::budget::Budget::withdraw) a retry
/// ([`try_retry`](RetryBudget::try_retry)). One budget can then cap the
/// retries of a `tower::retry` stack and of `#[retry]` functions together.
///
/// ```
/// use tower::retry::budget::Budget;
/// use llm_resilience::RetryBudget;
///
/// let budget = RetryBudget::new().ratio(0.5).min_retries_per_second(0);
/// for _ in 0..4 {
///     budget.deposit();
/// }
/// assert!(budget.withdraw());
/// assert!(budget.withdraw());
/// assert!(!budget.withdraw()); // half of 4 calls
/// ```
impl ::tower::retry::budget::Budget for RetryBudget {
    #[inline]
    fn deposit(&self) {
        self.record_call();
    }

    #[inline]
    fn withdraw(&self) -> bool {
        self.try_retry()
    }
}
