// A free sync function: the body runs once per attempt, and state outside it
// is kept across attempts.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::cell::Cell;
use std::io;

use llm_resilience::retry;

#[retry(max_attempts = 3)]
fn fetch(calls: &Cell<u32>) -> Result<u32, io::Error> {
    calls.set(calls.get() + 1);
    if calls.get() < 3 {
        return Err(io::ErrorKind::ConnectionReset.into());
    }
    Ok(calls.get())
}

#[retry]
fn no_arguments() -> Result<&'static str, io::Error> {
    Ok("ok")
}

fn main() {
    let sleeps = llm_resilience::testing::skip_sleeps();
    let calls = Cell::new(0);
    assert_eq!(fetch(&calls).unwrap(), 3);
    assert_eq!(sleeps.delays().len(), 2);
    assert_eq!(no_arguments().unwrap(), "ok");
}

// A body that is a single expression: no lint may fire on the code around it.
#[retry(wait = none)]
fn single_expression(x: u32) -> Result<u32, io::Error> {
    Ok(x)
}

#[allow(dead_code)]
fn uses_single_expression() -> u32 {
    single_expression(1).unwrap()
}
