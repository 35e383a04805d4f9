use llm_resilience::{retry, CircuitOpen, Classify, ErrorKind, RetryBudget};

#[derive(Debug)]
struct ApiError;

impl Classify for ApiError {
    fn kind(&self) -> ErrorKind {
        ErrorKind::Server
    }
}

impl From<CircuitOpen> for ApiError {
    fn from(_: CircuitOpen) -> Self {
        ApiError
    }
}

static BUDGET: RetryBudget = RetryBudget::new();

#[retry(breaker = BUDGET)]
fn call() -> Result<u32, ApiError> {
    Err(ApiError)
}

#[retry(budget = "10%")]
fn other() -> Result<u32, ApiError> {
    Err(ApiError)
}

fn main() {}
