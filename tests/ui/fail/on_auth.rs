use llm_resilience::retry;

#[retry(on = [Auth])]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
