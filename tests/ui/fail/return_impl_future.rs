use std::future::Future;

use llm_resilience::retry;

#[retry]
fn call() -> impl Future<Output = Result<u32, std::io::Error>> {
    async { Ok(1) }
}

fn main() {}
