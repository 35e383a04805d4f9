use llm_resilience::retry;

#[retry(attempt_timeout = 0)]
async fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
