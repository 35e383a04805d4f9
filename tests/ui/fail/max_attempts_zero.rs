use llm_resilience::retry;

#[retry(max_attempts = 0)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
