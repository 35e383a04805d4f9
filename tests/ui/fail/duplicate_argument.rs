use llm_resilience::retry;

#[retry(max_attempts = 3, wait = none, max_attempts = 5)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
