use llm_resilience::retry;

#[retry(limiter = none, cost = 1_000)]
fn call() -> Result<u32, std::io::Error> {
    Ok(1)
}

fn main() {}
