use llm_resilience::retry;

#[retry(wait = exponential(0, 10s))]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
