// Every argument, every wait, every jitter, every duration form, and every
// retryable kind, in one place.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::cell::Cell;
use std::time::Duration;

use llm_resilience::{retry, Classify, Elapsed, ErrorKind, RetryEvent};

#[derive(Debug, PartialEq)]
enum ApiError {
    Kind(ErrorKind),
    CutOff,
}

impl Classify for ApiError {
    fn kind(&self) -> ErrorKind {
        match self {
            ApiError::Kind(kind) => *kind,
            ApiError::CutOff => ErrorKind::Timeout,
        }
    }
}

impl From<Elapsed> for ApiError {
    fn from(_: Elapsed) -> Self {
        ApiError::CutOff
    }
}

fn fail_until(calls: &Cell<u32>, n: u32, kind: ErrorKind) -> Result<u32, ApiError> {
    calls.set(calls.get() + 1);
    if calls.get() < n {
        Err(ApiError::Kind(kind))
    } else {
        Ok(calls.get())
    }
}

fn note(event: &RetryEvent<'_, ApiError>) {
    assert!(event.attempt() >= 1);
}

#[retry(
    max_attempts = 6,
    wait = exponential(500ms, 1m, 1.5),
    jitter = decorrelated,
    on = [RateLimit, Overloaded, Server, Timeout(max_attempts = 2), Network, Other(max_attempts = 6)],
    when = |e: &ApiError| *e != ApiError::CutOff,
    retry_after_cap = 30s,
    deadline = 2m,
    on_retry = note,
    clone(label),
    crate = "::llm_resilience",
    name = "everything",
)]
fn sync_everything(calls: &Cell<u32>, label: String, kind: ErrorKind) -> Result<String, ApiError> {
    let n = fail_until(calls, 4, kind)?;
    Ok(label + &n.to_string())
}

#[retry(
    max_attempts = 6,
    wait = exponential(0.5, 60, 2),
    jitter = equal,
    on = [RateLimit, Overloaded, Server, Timeout(max_attempts = 3), Network, Other],
    when = |_: &ApiError| true,
    retry_after_cap = 0.25,
    deadline = 1.5s,
    attempt_timeout = 250ms,
    on_retry = |event| assert!(event.delay() <= Duration::from_secs(60)),
    clone(label),
    crate = "::llm_resilience",
    name = "everything_async",
)]
async fn async_everything(calls: &Cell<u32>, label: String) -> Result<String, ApiError> {
    tokio::task::yield_now().await;
    let n = fail_until(calls, 3, ErrorKind::Overloaded)?;
    Ok(label + &n.to_string())
}

#[retry(wait = exponential(1, 60), jitter = full)]
fn exponential_default_factor(calls: &Cell<u32>) -> Result<u32, ApiError> {
    fail_until(calls, 2, ErrorKind::RateLimit)
}

#[retry(wait = fixed(1), jitter = none, max_attempts = 2)]
fn fixed_seconds(calls: &Cell<u32>) -> Result<u32, ApiError> {
    fail_until(calls, 2, ErrorKind::Network)
}

#[retry(wait = fixed(0), max_attempts = 1, attempt_timeout = 1m)]
async fn attempt_timeout_alone(calls: &Cell<u32>) -> Result<u32, ApiError> {
    fail_until(calls, 1, ErrorKind::Server)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let sleeps = llm_resilience::testing::skip_sleeps();

    let calls = Cell::new(0);
    let got = sync_everything(&calls, "n=".to_owned(), ErrorKind::Other).unwrap();
    assert_eq!(got, "n=4");

    // `Timeout(max_attempts = 2)`: gives up once two attempts timed out.
    let calls = Cell::new(0);
    let got = sync_everything(&calls, "n=".to_owned(), ErrorKind::Timeout);
    assert_eq!(got, Err(ApiError::Kind(ErrorKind::Timeout)));
    assert_eq!(calls.get(), 2);

    let calls = Cell::new(0);
    assert_eq!(
        async_everything(&calls, "a".to_owned()).await.unwrap(),
        "a3"
    );

    let calls = Cell::new(0);
    assert_eq!(exponential_default_factor(&calls).unwrap(), 2);

    let calls = Cell::new(0);
    assert_eq!(fixed_seconds(&calls).unwrap(), 2);
    assert_eq!(sleeps.delays().last(), Some(&Duration::from_secs(1)));

    let calls = Cell::new(0);
    assert_eq!(attempt_timeout_alone(&calls).await.unwrap(), 1);
}
