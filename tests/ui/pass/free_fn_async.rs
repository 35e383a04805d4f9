// A free async function, driven by a current-thread runtime.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

use llm_resilience::retry;

#[retry(max_attempts = 4, wait = none)]
async fn fetch(calls: &AtomicU32, prompt: &str) -> Result<String, io::Error> {
    tokio::task::yield_now().await;
    if calls.fetch_add(1, Ordering::SeqCst) < 2 {
        return Err(io::ErrorKind::TimedOut.into());
    }
    Ok(format!("echo: {prompt}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let calls = AtomicU32::new(0);
    assert_eq!(fetch(&calls, "hi").await.unwrap(), "echo: hi");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}
