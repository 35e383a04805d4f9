use llm_resilience::retry;

#[retry(when = 5)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
