// `?` (with `From` conversions) and early `return` inside the body: both end
// the attempt, not the whole call.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::cell::Cell;
use std::num::ParseIntError;

use llm_resilience::{retry, Classify, ErrorKind};

#[derive(Debug)]
enum ApiError {
    Busy,
    Parse(ParseIntError),
}

impl From<ParseIntError> for ApiError {
    fn from(e: ParseIntError) -> Self {
        ApiError::Parse(e)
    }
}

impl Classify for ApiError {
    fn kind(&self) -> ErrorKind {
        match self {
            ApiError::Busy => ErrorKind::Overloaded,
            ApiError::Parse(_) => ErrorKind::Client,
        }
    }
}

fn busy_until(calls: &Cell<u32>, n: u32) -> Result<(), ApiError> {
    calls.set(calls.get() + 1);
    if calls.get() < n {
        Err(ApiError::Busy)
    } else {
        Ok(())
    }
}

#[retry(max_attempts = 5, wait = none)]
fn question_mark(calls: &Cell<u32>, text: &str) -> Result<u32, ApiError> {
    busy_until(calls, 3)?;
    let n: u32 = text.parse()?;
    Ok(n)
}

#[retry(max_attempts = 5, wait = none)]
fn early_return(calls: &Cell<u32>) -> Result<u32, ApiError> {
    calls.set(calls.get() + 1);
    if calls.get() == 1 {
        return Err(ApiError::Busy);
    }
    if calls.get() == 2 {
        return Ok(2);
    }
    unreachable!("returned on the second attempt")
}

#[retry(max_attempts = 5, wait = none)]
fn loops_inside(calls: &Cell<u32>) -> Result<u32, ApiError> {
    let mut seen = 0;
    let v = loop {
        seen += 1;
        if seen < 3 {
            continue;
        }
        calls.set(calls.get() + 1);
        if calls.get() < 2 {
            return Err(ApiError::Busy);
        }
        break calls.get();
    };
    Ok(v + seen)
}

#[retry(max_attempts = 5, wait = none)]
async fn question_mark_async(calls: &Cell<u32>, text: &str) -> Result<u32, ApiError> {
    tokio::task::yield_now().await;
    busy_until(calls, 2)?;
    if text.is_empty() {
        return Ok(0);
    }
    Ok(text.parse::<u32>()?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let calls = Cell::new(0);
    assert_eq!(question_mark(&calls, "7").unwrap(), 7);
    assert_eq!(calls.get(), 3);

    // A parse error is a `Client` error: no retry.
    let calls = Cell::new(10);
    match question_mark(&calls, "x") {
        Err(ApiError::Parse(e)) => assert_eq!(e.to_string(), "invalid digit found in string"),
        other => panic!("expected a parse error, got {other:?}"),
    }
    assert_eq!(calls.get(), 11);

    let calls = Cell::new(0);
    assert_eq!(early_return(&calls).unwrap(), 2);

    let calls = Cell::new(0);
    assert_eq!(loops_inside(&calls).unwrap(), 5);

    let calls = Cell::new(0);
    assert_eq!(question_mark_async(&calls, "").await.unwrap(), 0);
    assert_eq!(calls.get(), 2);
}
