use llm_resilience::retry;

#[retry(on = [Server, Quota(max_attempts = 2)])]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
