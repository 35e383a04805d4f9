use llm_resilience::retry;

#[derive(Debug)]
struct ApiError;

#[retry]
fn call() -> Result<u32, ApiError> {
    Err(ApiError)
}

fn main() {}
