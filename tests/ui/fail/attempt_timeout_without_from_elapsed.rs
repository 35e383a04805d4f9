use llm_resilience::{retry, Classify, ErrorKind};

#[derive(Debug)]
struct ApiError;

impl Classify for ApiError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Timeout
    }
}

#[retry(wait = none, attempt_timeout = 5s)]
async fn call() -> Result<u32, ApiError> {
    Ok(1)
}

fn main() {}
