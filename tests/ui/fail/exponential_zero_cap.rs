use llm_resilience::retry;

#[retry(wait = exponential(1, 0s))]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
