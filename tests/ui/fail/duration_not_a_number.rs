use llm_resilience::retry;

#[retry(retry_after_cap = "30s")]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
