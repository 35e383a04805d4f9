use llm_resilience::retry;

#[retry(wait = linear(1s))]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
