use llm_resilience::retry;

#[retry(on = [RateLimit, Timeout, RateLimit])]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
