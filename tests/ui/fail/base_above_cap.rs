use llm_resilience::retry;

#[retry(wait = exponential(2m, 60s))]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
