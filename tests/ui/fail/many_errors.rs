use llm_resilience::retry;

#[retry(
    max_attempts = 0,
    wait = exponential(2m, 60s),
    on = [Timout, Auth, RateLimit, RateLimit],
    jitter = fancy,
    deadline = 5h,
    retries = 3,
)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
