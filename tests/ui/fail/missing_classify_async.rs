use llm_resilience::retry;

#[derive(Debug)]
struct ApiError;

#[retry(wait = none)]
async fn call(prompt: &str) -> Result<String, ApiError> {
    Ok(prompt.to_owned())
}

fn main() {}
