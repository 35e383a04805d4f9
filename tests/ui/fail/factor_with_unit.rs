use llm_resilience::retry;

#[retry(wait = exponential(1, 60, 2x))]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
