use llm_resilience::retry;

#[retry(crate = "retry core")]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
