use llm_resilience::retry;

#[retry(on = [Timeout(attempts = 2)])]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
