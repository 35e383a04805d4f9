//! The error types people already use classify as they are:
//! `Box<dyn Error + Send + Sync>` and `anyhow::Error`, by walking the chain
//! of causes to the first error of a type the crate knows. Retried on a
//! wrapped timeout, not on a wrapped 400, honouring a wrapped `retry_after`.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::cell::Cell;
use std::error::Error;
use std::fmt;
use std::io;
use std::time::Duration;

use anyhow::Context;
use http::{HeaderMap, HeaderValue, StatusCode};
use llm_resilience::http::HttpError;
use llm_resilience::testing::skip_sleeps;
use llm_resilience::{retry, CircuitBreaker, Classify, Elapsed, ErrorKind, Policy};

type BoxError = Box<dyn Error + Send + Sync>;

/// An error of the caller's own that only says what it was doing and keeps
/// the cause as its source.
#[derive(Debug)]
struct Doing {
    what: &'static str,
    cause: BoxError,
}

impl Doing {
    fn new(what: &'static str, cause: impl Into<BoxError>) -> Self {
        Doing {
            what,
            cause: cause.into(),
        }
    }
}

impl fmt::Display for Doing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "while {}", self.what)
    }
}

impl Error for Doing {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.cause)
    }
}

fn io_timeout() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "read timed out")
}

fn response(status: u16, pairs: &[(&'static str, &'static str)]) -> HttpError {
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        headers.insert(*name, HeaderValue::from_static(value));
    }
    HttpError::from_response(StatusCode::from_u16(status).unwrap(), &headers, b"")
}

fn bad_request() -> HttpError {
    response(400, &[("x-request-id", "req_400")])
}

fn rate_limited() -> HttpError {
    response(429, &[("retry-after", "7"), ("x-request-id", "req_429")])
}

/// What the scripted operations fail with.
#[derive(Clone, Copy)]
enum Failure {
    Timeout,
    BadRequest,
    RateLimited,
}

fn boxed(failure: Failure) -> BoxError {
    match failure {
        Failure::Timeout => Doing::new("reading the reply", io_timeout()).into(),
        Failure::BadRequest => Doing::new("sending the prompt", bad_request()).into(),
        Failure::RateLimited => Doing::new("sending the prompt", rate_limited()).into(),
    }
}

fn anyhow_error(failure: Failure) -> anyhow::Error {
    let result: Result<(), anyhow::Error> = match failure {
        Failure::Timeout => Err(io_timeout().into()),
        Failure::BadRequest => Err(bad_request().into()),
        Failure::RateLimited => Err(rate_limited().into()),
    };
    result
        .context("sending the prompt")
        .context("answering the user")
        .unwrap_err()
}

// ---------------------------------------------------------------------------
// `#[retry]` on functions returning these types.

#[retry(max_attempts = 3, jitter = none)]
fn sync_boxed(failure: Failure, attempts: &Cell<u32>) -> Result<u32, BoxError> {
    attempts.set(attempts.get() + 1);
    let error: BoxError = boxed(failure);
    Err(error)
}

#[retry(max_attempts = 3, jitter = none)]
async fn async_boxed(failure: Failure, attempts: &Cell<u32>) -> Result<u32, BoxError> {
    attempts.set(attempts.get() + 1);
    tokio::task::yield_now().await;
    let error: BoxError = boxed(failure);
    Err(error)
}

#[retry(max_attempts = 3, jitter = none)]
async fn async_anyhow(failure: Failure, attempts: &Cell<u32>) -> anyhow::Result<u32> {
    attempts.set(attempts.get() + 1);
    tokio::task::yield_now().await;
    Err(anyhow_error(failure))
}

#[retry(max_attempts = 3, jitter = none)]
fn sync_anyhow(failure: Failure, attempts: &Cell<u32>) -> anyhow::Result<u32> {
    attempts.set(attempts.get() + 1);
    Err(anyhow_error(failure))
}

/// Attempts made and delays slept for each failure, for one of the functions
/// above.
fn check(attempts_and_delays: impl Fn(Failure) -> (u32, Vec<Duration>)) {
    let (attempts, delays) = attempts_and_delays(Failure::Timeout);
    assert_eq!(attempts, 3, "a wrapped io timeout is retried");
    assert_eq!(delays.len(), 2);

    let (attempts, delays) = attempts_and_delays(Failure::BadRequest);
    assert_eq!(attempts, 1, "a wrapped 400 is not retried");
    assert!(delays.is_empty());

    let (attempts, delays) = attempts_and_delays(Failure::RateLimited);
    assert_eq!(attempts, 3);
    assert_eq!(
        delays,
        [Duration::from_secs(7); 2],
        "the wrapped retry-after"
    );
}

#[test]
fn sync_fn_returning_a_boxed_error() {
    check(|failure| {
        let sleeps = skip_sleeps();
        let attempts = Cell::new(0);
        assert!(sync_boxed(failure, &attempts).is_err());
        (attempts.get(), sleeps.delays())
    });
}

#[test]
fn sync_fn_returning_anyhow() {
    check(|failure| {
        let sleeps = skip_sleeps();
        let attempts = Cell::new(0);
        assert!(sync_anyhow(failure, &attempts).is_err());
        (attempts.get(), sleeps.delays())
    });
}

#[test]
fn async_fn_returning_a_boxed_error() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    check(|failure| {
        let sleeps = skip_sleeps();
        let attempts = Cell::new(0);
        assert!(rt.block_on(async_boxed(failure, &attempts)).is_err());
        (attempts.get(), sleeps.delays())
    });
}

#[test]
fn async_fn_returning_anyhow() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    check(|failure| {
        let sleeps = skip_sleeps();
        let attempts = Cell::new(0);
        assert!(rt.block_on(async_anyhow(failure, &attempts)).is_err());
        (attempts.get(), sleeps.delays())
    });
}

#[tokio::test(start_paused = true)]
async fn an_attempt_timeout_reaches_a_boxed_error_as_elapsed() {
    #[retry(max_attempts = 2, wait = none, attempt_timeout = 50ms)]
    async fn hangs(attempts: &Cell<u32>) -> Result<(), BoxError> {
        attempts.set(attempts.get() + 1);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        Ok(())
    }
    let attempts = Cell::new(0);
    let error = hangs(&attempts).await.unwrap_err();
    assert_eq!(attempts.get(), 2, "a cut-off attempt is retried");
    assert_eq!(error.kind(), ErrorKind::Timeout);
    assert!(error.downcast_ref::<Elapsed>().is_some(), "{error}");
}

// ---------------------------------------------------------------------------
// The walk itself.

#[tokio::test(start_paused = true)]
async fn an_io_error_wrapping_elapsed_is_a_timeout_however_wrapped() {
    let cut: Result<(), io::Error> = Policy::new()
        .max_attempts(1)
        .attempt_timeout(Duration::from_millis(10))
        .call_async(|| async {
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        })
        .await;
    let io = cut.unwrap_err();
    assert_eq!(io.kind(), io::ErrorKind::TimedOut);
    let elapsed = *io.get_ref().unwrap().downcast_ref::<Elapsed>().unwrap();
    assert!(!elapsed.is_deadline());

    // Wrapped in something that says nothing of its own: io::ErrorKind::Other.
    let hidden = io::Error::other(io::Error::from(elapsed));
    assert_eq!(Classify::kind(&hidden), ErrorKind::Other); // io alone sees Other
    let boxed: BoxError = Doing::new("streaming", hidden).into();
    assert_eq!(boxed.kind(), ErrorKind::Timeout);
    let any = anyhow::Error::from(io).context("streaming");
    assert_eq!(any.kind(), ErrorKind::Timeout);
    let plain: BoxError = Box::new(elapsed);
    assert_eq!(plain.kind(), ErrorKind::Timeout);
}

#[test]
fn the_first_known_error_with_a_kind_decides() {
    // An HttpError without a kind of its own (a redirect) defers to its cause.
    let redirect = HttpError::from_source(ErrorKind::Other, io_timeout());
    let boxed: BoxError = Doing::new("following", redirect).into();
    assert_eq!(boxed.kind(), ErrorKind::Timeout);

    // The outer known error wins over the inner one.
    let outer = HttpError::from_source(ErrorKind::Auth, io_timeout());
    let boxed: BoxError = Doing::new("signing in", outer).into();
    assert_eq!(boxed.kind(), ErrorKind::Auth);

    let unknown: BoxError = Doing::new("parsing", "model returned nonsense").into();
    assert_eq!(unknown.kind(), ErrorKind::Other);
    assert_eq!(unknown.retry_after(), None);
    assert_eq!(unknown.request_id(), None);
}

#[test]
fn retry_after_and_request_id_come_from_the_error_that_has_them() {
    let boxed = boxed(Failure::RateLimited);
    assert_eq!(boxed.kind(), ErrorKind::RateLimit);
    assert_eq!(boxed.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(boxed.request_id(), Some("req_429"));

    let any = anyhow_error(Failure::BadRequest);
    assert_eq!(any.kind(), ErrorKind::Client);
    assert_eq!(any.request_id(), Some("req_400"));
    assert_eq!(any.retry_after(), None);

    // A first known error without them leaves them to the next one.
    let inner = rate_limited();
    let outer = HttpError::from_source(ErrorKind::Other, inner);
    let boxed: BoxError = Box::new(outer);
    assert_eq!(boxed.kind(), ErrorKind::RateLimit);
    assert_eq!(boxed.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(boxed.request_id(), Some("req_429"));
}

#[test]
fn a_refusal_and_a_reqwest_error_are_known() {
    let breaker = CircuitBreaker::new().consecutive_failures(1);
    breaker.try_acquire().unwrap().failure(ErrorKind::Server);
    let refused = breaker.try_acquire().unwrap_err();
    let boxed: BoxError = Doing::new("calling", refused).into();
    assert_eq!(boxed.kind(), ErrorKind::Overloaded);
    assert_eq!(boxed.retry_after(), refused.retry_in());

    let invalid = reqwest::Client::new().get("not a url").build().unwrap_err();
    let any = anyhow::Error::from(invalid).context("building the request");
    assert_eq!(any.kind(), ErrorKind::Client);
}

#[test]
fn other_box_flavours_classify_the_same() {
    let not_send: Box<dyn Error> = Box::new(Doing::new("reading", io_timeout()));
    assert_eq!(not_send.kind(), ErrorKind::Timeout);
    let shared: std::sync::Arc<dyn Error + Send + Sync> =
        std::sync::Arc::new(Doing::new("reading", io_timeout()));
    assert_eq!(shared.kind(), ErrorKind::Timeout);
}

#[test]
fn a_chain_that_loops_still_ends() {
    #[derive(Debug)]
    struct Loop;
    static LOOP: Loop = Loop;
    impl fmt::Display for Loop {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("loop")
        }
    }
    impl Error for Loop {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&LOOP)
        }
    }
    let boxed: BoxError = Box::new(Loop);
    assert_eq!(boxed.kind(), ErrorKind::Other);
}
