use llm_resilience::retry;

#[retry(crate = llm_resilience)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
