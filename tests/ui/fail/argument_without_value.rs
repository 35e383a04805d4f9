use llm_resilience::retry;

#[retry(max_attempts)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
