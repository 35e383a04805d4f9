// `breaker`, `budget` and `limiter` take a `static`, a reference, an `Arc`
// field or a keyed budget's entry, on sync and async functions and methods,
// and the async future stays `Send`.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::sync::Arc;

use llm_resilience::{
    retry, AdaptiveLimiter, CircuitBreaker, CircuitOpen, Classify, Elapsed, ErrorKind,
    KeyedBudgets, RetryBudget,
};

fn is_send<T: Send>(_: &T) {}

#[derive(Debug)]
enum ApiError {
    Busy,
    Open,
    CutOff,
}

impl Classify for ApiError {
    fn kind(&self) -> ErrorKind {
        match self {
            ApiError::Busy | ApiError::Open => ErrorKind::Overloaded,
            ApiError::CutOff => ErrorKind::Timeout,
        }
    }
}

impl From<CircuitOpen> for ApiError {
    fn from(_: CircuitOpen) -> Self {
        ApiError::Open
    }
}

impl From<Elapsed> for ApiError {
    fn from(_: Elapsed) -> Self {
        ApiError::CutOff
    }
}

static BREAKER: CircuitBreaker = CircuitBreaker::new();
static BUDGET: RetryBudget = RetryBudget::new();
static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new().initial_rate(50.0);
static PER_USER: KeyedBudgets<128> = KeyedBudgets::new(RetryBudget::new().ratio(0.2));

#[retry(breaker = BREAKER, budget = BUDGET, limiter = LIMITER)]
fn statics(prompt: &str) -> Result<usize, ApiError> {
    Ok(prompt.len())
}

#[retry(breaker = &BREAKER, budget = PER_USER.key(user), limiter = &LIMITER)]
fn references(user: &str, prompt: &str) -> Result<usize, ApiError> {
    if prompt.is_empty() {
        return Err(ApiError::Busy);
    }
    Ok(user.len() + prompt.len())
}

#[retry(deadline = 30s, clone(prompt), breaker = BREAKER, budget = BUDGET, limiter = LIMITER, fallback = backup)]
async fn chat(prompt: String) -> Result<String, ApiError> {
    Ok(prompt)
}

#[retry(max_attempts = 2, clone(prompt))]
async fn backup(prompt: String) -> Result<String, ApiError> {
    Ok(prompt)
}

struct Client {
    breaker: Arc<CircuitBreaker>,
    limiter: Arc<AdaptiveLimiter>,
    sent: u32,
}

impl Client {
    #[retry(breaker = self.breaker, limiter = self.limiter)]
    async fn get(&self, id: u32) -> Result<u32, ApiError> {
        Ok(id)
    }

    #[retry(breaker = Arc::clone(&self.breaker), limiter = Arc::clone(&self.limiter))]
    fn send(&mut self) -> Result<u32, ApiError> {
        self.sent += 1;
        Ok(self.sent)
    }
}

fn main() {
    let _ = statics("hi");
    let _ = references("alice", "hi");
    let future = chat("hi".to_owned());
    is_send(&future);
    drop(future);
    let mut client = Client {
        breaker: Arc::new(CircuitBreaker::new()),
        limiter: Arc::new(AdaptiveLimiter::new()),
        sent: 0,
    };
    is_send(&client.get(1));
    let _ = client.send();
}
