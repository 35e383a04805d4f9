use llm_resilience::retry;

#[retry(max_attempts = 3, on = [RateLimit, Timeout(max_attempts = 5)])]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
