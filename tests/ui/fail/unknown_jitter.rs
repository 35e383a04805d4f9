use llm_resilience::retry;

#[retry(jitter = random)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
