use llm_resilience::retry;

#[retry(deadline = -5s)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
