use llm_resilience::{retry, Classify, ErrorKind};

#[derive(Debug)]
struct ApiError;

impl Classify for ApiError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Server
    }
}

#[retry(max_attempts = 5, deadline = 30s)]
async fn call() -> Result<u32, ApiError> {
    Err(ApiError)
}

fn main() {}
