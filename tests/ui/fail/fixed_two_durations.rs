use llm_resilience::retry;

#[retry(max_attempts = 0, wait = fixed(1s, 2s))]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
