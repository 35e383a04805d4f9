use llm_resilience::retry;

#[retry(on = [RateLimit, Timout])]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
