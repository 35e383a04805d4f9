// `when` and `on_retry`, as closures and as paths to functions.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::cell::{Cell, RefCell};
use std::time::Duration;

use llm_resilience::{retry, Classify, DelaySource, ErrorKind, RetryEvent};

#[derive(Debug, PartialEq)]
enum ApiError {
    Busy { retry_after: Option<Duration> },
    Fatal,
}

impl Classify for ApiError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Server
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::Busy { retry_after } => *retry_after,
            ApiError::Fatal => None,
        }
    }
}

fn is_busy(e: &ApiError) -> bool {
    matches!(e, ApiError::Busy { .. })
}

thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn log(event: &RetryEvent<'_, ApiError>) {
    let line = format!("{} {:?} {:?}", event.attempt(), event.kind(), event.error());
    LOG.with(|l| l.borrow_mut().push(line));
}

mod hooks {
    pub(crate) fn never<E>(_: &E) -> bool {
        false
    }
}

#[retry(max_attempts = 4, wait = fixed(10ms), when = is_busy, on_retry = log)]
fn fn_paths(errors: &RefCell<Vec<ApiError>>) -> Result<(), ApiError> {
    match errors.borrow_mut().pop() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[retry(
    max_attempts = 4,
    wait = fixed(10ms),
    when = |e: &ApiError| *e != ApiError::Fatal,
    on_retry = |event| {
        assert_eq!(event.source(), DelaySource::RetryAfter);
        assert_eq!(event.delay(), Duration::from_millis(5));
    },
    jitter = none,
)]
fn closures(errors: &RefCell<Vec<ApiError>>) -> Result<(), ApiError> {
    match errors.borrow_mut().pop() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[retry(max_attempts = 4, wait = none, when = hooks::never)]
fn module_path(calls: &Cell<u32>) -> Result<(), ApiError> {
    calls.set(calls.get() + 1);
    Err(ApiError::Busy { retry_after: None })
}

#[retry(wait = none, on_retry = |_| {})]
async fn closures_async(calls: &Cell<u32>) -> Result<u32, ApiError> {
    tokio::task::yield_now().await;
    calls.set(calls.get() + 1);
    if calls.get() < 2 {
        return Err(ApiError::Busy { retry_after: None });
    }
    Ok(calls.get())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let sleeps = llm_resilience::testing::skip_sleeps();

    let errors = RefCell::new(vec![
        ApiError::Busy { retry_after: None },
        ApiError::Busy { retry_after: None },
    ]);
    assert_eq!(fn_paths(&errors), Ok(()));
    assert_eq!(LOG.with(|l| l.borrow().len()), 2);

    let errors = RefCell::new(vec![ApiError::Fatal, ApiError::Busy { retry_after: None }]);
    assert_eq!(fn_paths(&errors), Err(ApiError::Fatal));

    let errors = RefCell::new(vec![ApiError::Busy {
        retry_after: Some(Duration::from_millis(5)),
    }]);
    assert_eq!(closures(&errors), Ok(()));

    let calls = Cell::new(0);
    assert!(module_path(&calls).is_err());
    assert_eq!(calls.get(), 1);

    let calls = Cell::new(0);
    assert_eq!(closures_async(&calls).await, Ok(2));

    drop(sleeps);
}
