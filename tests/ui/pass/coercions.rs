// The body type-checks as it would without the attribute: its tail and its
// `return`s are coercion sites against the declared return type (trait
// objects, unsizing, `impl Trait` inside `Ok`, diverging branches), in sync
// and async functions alike.
#![deny(warnings, clippy::all, unused_qualifications)]
#![forbid(unreachable_code)]

use std::cell::Cell;
use std::error::Error;
use std::future::Future;
use std::io;
use std::num::ParseIntError;
use std::pin::Pin;

use llm_resilience::{retry, Classify, ErrorKind};

type BoxFut = Pin<Box<dyn Future<Output = u32> + Send>>;
type BoxError = Box<dyn Error + Send + Sync>;

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

/// Fails the first attempt, so that every case below runs its body twice.
fn busy_once(calls: &Cell<u32>) -> Result<(), ApiError> {
    calls.set(calls.get() + 1);
    if calls.get() < 2 {
        Err(ApiError::Busy)
    } else {
        Ok(())
    }
}

fn io_error() -> io::Error {
    io::ErrorKind::ConnectionReset.into()
}

// A boxed future (the shape of a boxed stream of chunks).

#[retry(max_attempts = 2, wait = fixed(1ms))]
fn boxed_future(calls: &Cell<u32>) -> Result<BoxFut, ApiError> {
    busy_once(calls)?;
    Ok(Box::pin(async { 42 }))
}

#[retry(max_attempts = 2, wait = fixed(1ms))]
async fn boxed_future_async(calls: &Cell<u32>) -> Result<BoxFut, ApiError> {
    busy_once(calls)?;
    Ok(Box::pin(async { 42 }))
}

#[retry(max_attempts = 2, wait = fixed(1ms))]
async fn boxed_future_early_async(calls: &Cell<u32>) -> Result<BoxFut, ApiError> {
    busy_once(calls)?;
    if calls.get() > 0 {
        return Ok(Box::pin(async { 7 }));
    }
    Ok(Box::pin(std::future::ready(8)))
}

// A boxed error, through the tail and through an early `return`.

#[retry(max_attempts = 2, wait = none)]
fn boxed_error_tail(calls: &Cell<u32>) -> Result<BoxError, ApiError> {
    busy_once(calls)?;
    Ok(Box::new(io_error()))
}

#[retry(max_attempts = 2, wait = none)]
fn boxed_error_return(calls: &Cell<u32>) -> Result<BoxError, ApiError> {
    busy_once(calls)?;
    if calls.get() > 0 {
        return Ok(Box::new(io_error()));
    }
    Ok(Box::new(std::fmt::Error))
}

#[retry(max_attempts = 2, wait = none)]
async fn boxed_error_tail_async(calls: &Cell<u32>) -> Result<BoxError, ApiError> {
    tokio::task::yield_now().await;
    busy_once(calls)?;
    Ok(Box::new(io_error()))
}

#[retry(max_attempts = 2, wait = none)]
async fn boxed_error_return_async(calls: &Cell<u32>) -> Result<BoxError, ApiError> {
    busy_once(calls)?;
    if calls.get() > 0 {
        return Ok(Box::new(io_error()));
    }
    tokio::task::yield_now().await;
    Ok(Box::new(std::fmt::Error))
}

// Unsizing: a boxed slice, a boxed closure, a borrowed slice.

#[retry(max_attempts = 2, wait = none)]
fn boxed_slice(calls: &Cell<u32>) -> Result<Box<[u8]>, ApiError> {
    busy_once(calls)?;
    Ok(Box::new([1, 2, 3]))
}

#[retry(max_attempts = 2, wait = none)]
async fn boxed_slice_async(calls: &Cell<u32>) -> Result<Box<[u8]>, ApiError> {
    busy_once(calls)?;
    Ok(Box::new([1, 2, 3]))
}

#[retry(max_attempts = 2, wait = none)]
fn boxed_closure(calls: &Cell<u32>, add: u32) -> Result<Box<dyn Fn(u32) -> u32>, ApiError> {
    busy_once(calls)?;
    Ok(Box::new(move |n| n + add))
}

#[retry(max_attempts = 2, wait = none)]
async fn boxed_closure_async(
    calls: &Cell<u32>,
    add: u32,
) -> Result<Box<dyn Fn(u32) -> u32 + Send>, ApiError> {
    busy_once(calls)?;
    Ok(Box::new(move |n| n + add))
}

#[retry(max_attempts = 2, wait = none)]
fn static_slice(calls: &Cell<u32>) -> Result<&'static [u8], ApiError> {
    busy_once(calls)?;
    if calls.get() == 0 {
        return Ok(&[]);
    }
    Ok(&[1, 2, 3])
}

#[retry(max_attempts = 2, wait = none)]
async fn static_slice_async(calls: &Cell<u32>) -> Result<&'static [u8], ApiError> {
    busy_once(calls)?;
    if calls.get() == 0 {
        return Ok(&[]);
    }
    Ok(&[1, 2, 3])
}

// `impl Trait` inside `Ok`.

#[retry(max_attempts = 2, wait = none)]
fn numbers(calls: &Cell<u32>) -> Result<impl Iterator<Item = u32>, ApiError> {
    busy_once(calls)?;
    if calls.get() == 0 {
        return Ok(vec![].into_iter());
    }
    Ok(vec![1, 2, 3].into_iter())
}

#[retry(max_attempts = 2, wait = none)]
async fn numbers_async(calls: &Cell<u32>) -> Result<impl Iterator<Item = u32>, ApiError> {
    busy_once(calls)?;
    if calls.get() == 0 {
        return Ok(vec![].into_iter());
    }
    tokio::task::yield_now().await;
    Ok(vec![1, 2, 3].into_iter())
}

// Diverging branches and bodies.

#[retry(max_attempts = 2, wait = none)]
fn diverging(calls: &Cell<u32>, which: u8) -> Result<u32, ApiError> {
    busy_once(calls)?;
    match which {
        0 => Ok(0),
        1 => panic!("never called with 1"),
        2 => loop {
            if calls.get() >= 3 {
                return Ok(2);
            }
            calls.set(calls.get() + 1);
        },
        _ => unreachable!("never called with {which}"),
    }
}

#[retry(max_attempts = 2, wait = none)]
async fn diverging_async(calls: &Cell<u32>, which: u8) -> Result<u32, ApiError> {
    busy_once(calls)?;
    match which {
        0 => Ok(0),
        1 => panic!("never called with 1"),
        2 => loop {
            if calls.get() >= 3 {
                return Ok(2);
            }
            calls.set(calls.get() + 1);
        },
        _ => unreachable!("never called with {which}"),
    }
}

#[retry(max_attempts = 2, wait = none)]
fn only_panics() -> Result<u32, ApiError> {
    unimplemented!("not yet")
}

#[retry(max_attempts = 2, wait = none)]
async fn only_panics_async() -> Result<u32, ApiError> {
    unimplemented!("not yet")
}

#[retry(max_attempts = 2, wait = none)]
async fn only_loops_async(calls: &Cell<u32>) -> Result<u32, ApiError> {
    loop {
        tokio::task::yield_now().await;
        if calls.get() >= 3 {
            return Ok(calls.get());
        }
        calls.set(calls.get() + 1);
    }
}

// A coercing body keeps the future `Send`.

#[retry(max_attempts = 2, wait = fixed(1ms))]
async fn sendable(text: String) -> Result<BoxError, ApiError> {
    tokio::task::yield_now().await;
    let n: u32 = text.parse()?;
    if n == 0 {
        return Ok(Box::new(std::fmt::Error));
    }
    Ok(Box::new(io_error()))
}

// `?` converting another error type with `From`, with a boxed result.

#[retry(max_attempts = 2, wait = none)]
fn parsed(calls: &Cell<u32>, text: &str) -> Result<Box<dyn Fn() -> u32>, ApiError> {
    busy_once(calls)?;
    let n: u32 = text.parse()?;
    Ok(Box::new(move || n))
}

#[retry(max_attempts = 2, wait = none)]
async fn parsed_async(calls: &Cell<u32>, text: &str) -> Result<BoxFut, ApiError> {
    busy_once(calls)?;
    let n: u32 = text.parse()?;
    Ok(Box::pin(async move { n }))
}

// The same on `&mut self`.

#[derive(Default)]
struct Client {
    calls: Cell<u32>,
    seen: Vec<u32>,
}

impl Client {
    #[retry(max_attempts = 2, wait = none)]
    fn chunks(&mut self, text: &str) -> Result<BoxError, ApiError> {
        busy_once(&self.calls)?;
        let n: u32 = text.parse()?;
        self.seen.push(n);
        if n == 0 {
            return Ok(Box::new(std::fmt::Error));
        }
        Ok(Box::new(io_error()))
    }

    #[retry(max_attempts = 2, wait = fixed(1ms))]
    async fn chunks_async(&mut self, text: &str) -> Result<BoxFut, ApiError> {
        busy_once(&self.calls)?;
        let n: u32 = text.parse()?;
        self.seen.push(n);
        if n == 0 {
            return Ok(Box::pin(async { 0 }));
        }
        tokio::task::yield_now().await;
        Ok(Box::pin(async move { n * 2 }))
    }
}

fn is_send<T: Send>(_: &T) {}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let calls = Cell::new(0);
    assert_eq!(boxed_future(&calls).unwrap().await, 42);
    assert_eq!(calls.get(), 2);
    let calls = Cell::new(0);
    assert_eq!(boxed_future_async(&calls).await.unwrap().await, 42);
    let calls = Cell::new(0);
    assert_eq!(boxed_future_early_async(&calls).await.unwrap().await, 7);

    let reset = io_error().to_string();
    let calls = Cell::new(0);
    assert_eq!(boxed_error_tail(&calls).unwrap().to_string(), reset);
    let calls = Cell::new(0);
    assert_eq!(boxed_error_return(&calls).unwrap().to_string(), reset);
    let calls = Cell::new(0);
    assert_eq!(boxed_error_tail_async(&calls).await.unwrap().to_string(), reset);
    let calls = Cell::new(0);
    assert_eq!(boxed_error_return_async(&calls).await.unwrap().to_string(), reset);

    let calls = Cell::new(0);
    assert_eq!(&*boxed_slice(&calls).unwrap(), [1, 2, 3]);
    let calls = Cell::new(0);
    assert_eq!(&*boxed_slice_async(&calls).await.unwrap(), [1, 2, 3]);
    let calls = Cell::new(0);
    assert_eq!(boxed_closure(&calls, 2).unwrap()(40), 42);
    let calls = Cell::new(0);
    assert_eq!(boxed_closure_async(&calls, 2).await.unwrap()(40), 42);
    let calls = Cell::new(0);
    assert_eq!(static_slice(&calls).unwrap(), [1, 2, 3]);
    let calls = Cell::new(0);
    assert_eq!(static_slice_async(&calls).await.unwrap(), [1, 2, 3]);

    let calls = Cell::new(0);
    assert_eq!(numbers(&calls).unwrap().sum::<u32>(), 6);
    let calls = Cell::new(0);
    assert_eq!(numbers_async(&calls).await.unwrap().sum::<u32>(), 6);

    let calls = Cell::new(0);
    assert_eq!(diverging(&calls, 2).unwrap(), 2);
    let calls = Cell::new(0);
    assert_eq!(diverging_async(&calls, 0).await.unwrap(), 0);
    let calls = Cell::new(0);
    assert_eq!(only_loops_async(&calls).await.unwrap(), 3);
    let _: fn() -> Result<u32, ApiError> = only_panics;

    let calls = Cell::new(0);
    assert_eq!(parsed(&calls, "5").unwrap()(), 5);
    let calls = Cell::new(0);
    assert_eq!(parsed_async(&calls, "6").await.unwrap().await, 6);
    let calls = Cell::new(10);
    match parsed(&calls, "x") {
        Err(ApiError::Parse(e)) => assert_eq!(e.to_string(), "invalid digit found in string"),
        _ => panic!("expected a parse error"),
    }
    let calls = Cell::new(10);
    assert!(matches!(parsed_async(&calls, "x").await, Err(ApiError::Parse(_))));

    let mut client = Client::default();
    assert_eq!(client.chunks("3").unwrap().to_string(), reset);
    assert_eq!(client.seen, [3]);
    client.calls.set(0);
    assert_eq!(client.chunks_async("4").await.unwrap().await, 8);
    assert_eq!(client.seen, [3, 4]);

    let fut = sendable("1".to_owned());
    is_send(&fut);
    let spawned = tokio::spawn(fut).await.unwrap();
    assert_eq!(spawned.unwrap().to_string(), reset);
    let fut = only_panics_async();
    is_send(&fut);
    drop(fut);
}
