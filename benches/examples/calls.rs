//! Successful calls in a loop, one variant at a time, for counting the
//! instructions a call costs with `valgrind --tool=cachegrind` (criterion's
//! times move from run to run; instruction counts do not).
//!
//! ```sh
//! cargo build --release -p benches --example calls
//! for n in 100000 200000; do
//!   valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
//!     target/release/examples/calls retry_async $n 2>&1 | grep 'I *refs'
//! done
//! ```
//!
//! The difference of the two totals over 100,000 is the cost of one call,
//! the loop and its dispatch included (compare with `direct` and
//! `direct_async`). `calls sizes` prints the size of each async variant's
//! future.
//!
//! Sync variants are called from the loop, where they may be inlined. Each
//! async variant is its own function that makes the future and polls it
//! once, as the `overhead` benchmark does.

use std::future::Future;
use std::hint::black_box;
use std::io;
use std::pin::pin;
use std::process::ExitCode;
use std::task::{Context, Poll, Waker};

use llm_resilience::{retry, Policy};

const VARIANTS: &str = "direct, retry, retry_no_limiter, policy, direct_async, retry_async, \
                        retry_async_no_limiter, policy_async, sizes";

/// The work every variant does: a few arithmetic instructions that can
/// fail, so that the error path exists.
#[inline(always)]
fn work(x: u64) -> Result<u64, io::Error> {
    if x == u64::MAX {
        return Err(io::ErrorKind::Other.into());
    }
    Ok(x.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17))
}

static POLICY: Policy = Policy::new();

#[inline(never)]
fn direct(x: u64) -> Result<u64, io::Error> {
    work(x)
}

#[retry]
#[inline(never)]
fn retried(x: u64) -> Result<u64, io::Error> {
    work(x)
}

#[retry(limiter = none)]
#[inline(never)]
fn retried_no_limiter(x: u64) -> Result<u64, io::Error> {
    work(x)
}

#[inline(never)]
fn policy(x: u64) -> Result<u64, io::Error> {
    POLICY.call(|| work(x))
}

async fn direct_async(x: u64) -> Result<u64, io::Error> {
    work(x)
}

#[retry]
async fn retried_async(x: u64) -> Result<u64, io::Error> {
    work(x)
}

#[retry(limiter = none)]
async fn retried_async_no_limiter(x: u64) -> Result<u64, io::Error> {
    work(x)
}

async fn policy_async(x: u64) -> Result<u64, io::Error> {
    POLICY.call_async(|| async move { work(x) }).await
}

/// Poll `fut` once with a no-op waker; every future here is ready at once.
#[inline(always)]
fn ready<F: Future>(fut: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(fut).poll(&mut cx) {
        Poll::Ready(out) => out,
        Poll::Pending => unreachable!("every future here is ready on its first poll"),
    }
}

#[inline(never)]
fn run_direct_async(x: u64) -> Result<u64, io::Error> {
    ready(direct_async(x))
}

#[inline(never)]
fn run_retried_async(x: u64) -> Result<u64, io::Error> {
    ready(retried_async(x))
}

#[inline(never)]
fn run_retried_async_no_limiter(x: u64) -> Result<u64, io::Error> {
    ready(retried_async_no_limiter(x))
}

#[inline(never)]
fn run_policy_async(x: u64) -> Result<u64, io::Error> {
    ready(policy_async(x))
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(variant) = args.next() else {
        eprintln!("usage: calls VARIANT [CALLS]; VARIANT is one of: {VARIANTS}");
        return ExitCode::FAILURE;
    };
    if variant == "sizes" {
        println!(
            "retry_async: {} bytes",
            std::mem::size_of_val(&retried_async(1))
        );
        println!(
            "retry_async_no_limiter: {} bytes",
            std::mem::size_of_val(&retried_async_no_limiter(1))
        );
        println!(
            "policy_async: {} bytes",
            std::mem::size_of_val(&policy_async(1))
        );
        println!(
            "direct_async: {} bytes",
            std::mem::size_of_val(&direct_async(1))
        );
        return ExitCode::SUCCESS;
    }
    let call: fn(u64) -> Result<u64, io::Error> = match variant.as_str() {
        "direct" => direct,
        "retry" => retried,
        "retry_no_limiter" => retried_no_limiter,
        "policy" => policy,
        "direct_async" => run_direct_async,
        "retry_async" => run_retried_async,
        "retry_async_no_limiter" => run_retried_async_no_limiter,
        "policy_async" => run_policy_async,
        other => {
            eprintln!("calls: unknown variant {other:?}; one of: {VARIANTS}");
            return ExitCode::FAILURE;
        }
    };
    let calls = match args.next().map(|n| n.parse::<u64>()) {
        None => 10_000_000,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("calls: CALLS must be a whole number: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The async variants run inside a runtime, as they would in a service.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("calls: cannot start a tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _inside = runtime.enter();
    let mut acc = 0u64;
    for i in 0..calls {
        match call(black_box(i)) {
            Ok(v) => acc ^= v,
            Err(e) => {
                eprintln!("calls: a call failed: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    black_box(acc);
    ExitCode::SUCCESS
}
