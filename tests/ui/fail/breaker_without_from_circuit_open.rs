use llm_resilience::{retry, CircuitBreaker, Classify, ErrorKind};

#[derive(Debug)]
struct ApiError;

impl Classify for ApiError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Server
    }
}

static BREAKER: CircuitBreaker = CircuitBreaker::new();

#[retry(max_attempts = 3, breaker = BREAKER)]
fn call() -> Result<u32, ApiError> {
    Err(ApiError)
}

fn main() {}
