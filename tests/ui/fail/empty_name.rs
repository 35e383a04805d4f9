use llm_resilience::retry;

#[retry(name = "")]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
