use llm_resilience::retry;

#[retry(on = [RateLimit, Client])]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
