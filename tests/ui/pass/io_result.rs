// A `Result` alias as the return type: `io::Result<T>`, and a crate's own.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::cell::Cell;
use std::io;

use llm_resilience::retry;

type ApiResult<T> = Result<T, io::Error>;

#[retry(wait = none)]
fn read(calls: &Cell<u32>) -> io::Result<u32> {
    calls.set(calls.get() + 1);
    if calls.get() < 2 {
        return Err(io::ErrorKind::ConnectionRefused.into());
    }
    Ok(calls.get())
}

#[retry(wait = none)]
fn unit(calls: &Cell<u32>) -> io::Result<()> {
    calls.set(calls.get() + 1);
    Ok(())
}

#[retry(wait = none)]
async fn own_alias(calls: &Cell<u32>) -> ApiResult<u32> {
    calls.set(calls.get() + 1);
    if calls.get() < 3 {
        return Err(io::ErrorKind::TimedOut.into());
    }
    Ok(calls.get())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let calls = Cell::new(0);
    assert_eq!(read(&calls).unwrap(), 2);
    unit(&calls).unwrap();
    assert_eq!(calls.get(), 3);
    let calls = Cell::new(0);
    assert_eq!(own_alias(&calls).await.unwrap(), 3);
}
