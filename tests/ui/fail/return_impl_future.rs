use std::future::Future;

use retry_core::retry;

#[retry]
fn call() -> impl Future<Output = Result<u32, std::io::Error>> {
    async { Ok(1) }
}

fn main() {}
