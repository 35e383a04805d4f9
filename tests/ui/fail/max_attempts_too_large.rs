use llm_resilience::retry;

#[retry(max_attempts = 99999999999)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
