use llm_resilience::retry;

#[retry(on = [Timeout(max_attempts = 2, 3)])]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
