use llm_resilience::retry;

#[retry(on = [Auth], max_attempts = 3 wait = none)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
