use llm_resilience::retry;

#[retry(on = [Flaky])]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
