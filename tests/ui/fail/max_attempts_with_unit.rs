use llm_resilience::retry;

#[retry(max_attempts = 3s)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
