use llm_resilience::retry;

#[retry(on = [Timeout(max_attempts = 4)])]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
