use llm_resilience::{retry, AdaptiveLimiter, Classify, ErrorKind};

#[derive(Debug)]
struct ApiError;

impl Classify for ApiError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::RateLimit
    }
}

static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new();

#[retry(limiter = LIMITER)]
fn call() -> Result<u32, ApiError> {
    Err(ApiError)
}

fn main() {}
