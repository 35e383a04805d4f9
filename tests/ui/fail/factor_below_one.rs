use llm_resilience::retry;

#[retry(wait = exponential(1, 60, 0.5))]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
