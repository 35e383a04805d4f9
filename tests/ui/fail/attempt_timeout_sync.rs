use llm_resilience::retry;

#[retry(attempt_timeout = 10s)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
