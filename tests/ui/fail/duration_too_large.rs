use llm_resilience::retry;

#[retry(deadline = 1e30)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
