use llm_resilience::retry;

#[retry(wait = fixed)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
