use llm_resilience::retry;

#[retry(deadline = 5h)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
