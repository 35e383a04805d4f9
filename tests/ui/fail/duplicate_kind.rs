use retry_core::retry;

#[retry(on = [RateLimit, Timeout, RateLimit])]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
