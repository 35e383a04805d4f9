use llm_resilience::retry;

#[retry(max_attempt = 5)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
