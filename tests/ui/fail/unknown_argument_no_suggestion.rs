use llm_resilience::retry;

#[retry(backoff = fixed(1s))]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
