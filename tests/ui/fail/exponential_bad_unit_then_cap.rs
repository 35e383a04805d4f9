use llm_resilience::retry;

#[retry(wait = exponential(5h, 60))]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
