//! Retries you can watch: a simulated LLM endpoint that rate-limits, times
//! out and overloads before answering, called through `#[retry]`.
//!
//! Run with `cargo run -p examples --bin retries`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use llm_resilience::{attempt, retry, Classify, Elapsed, ErrorKind, RetryEvent};

/// Retries you can watch: a simulated LLM endpoint that rate-limits, times
/// out and overloads before answering, called through `#[retry]`.
#[derive(Parser, Debug)]
#[command(name = "retries")]
struct Options {
    /// What to say to the simulated endpoint.
    #[arg(default_value = "Hi there")]
    prompt: String,
}

/// What the simulated provider can answer.
#[derive(Debug)]
enum ApiError {
    RateLimited { retry_after: Duration },
    Overloaded,
    TimedOut,
    BadRequest(&'static str),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::RateLimited { retry_after } => {
                write!(f, "429 rate limited, retry after {retry_after:?}")
            }
            ApiError::Overloaded => f.write_str("529 overloaded"),
            ApiError::TimedOut => f.write_str("attempt timed out"),
            ApiError::BadRequest(why) => write!(f, "400 bad request: {why}"),
        }
    }
}

impl Classify for ApiError {
    fn kind(&self) -> ErrorKind {
        match self {
            ApiError::RateLimited { .. } => ErrorKind::RateLimit,
            ApiError::Overloaded => ErrorKind::Overloaded,
            ApiError::TimedOut => ErrorKind::Timeout,
            ApiError::BadRequest(_) => ErrorKind::Client,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

impl From<Elapsed> for ApiError {
    fn from(_: Elapsed) -> Self {
        ApiError::TimedOut
    }
}

static CALLS: AtomicU32 = AtomicU32::new(0);

/// A provider that fails in four different ways before it answers.
async fn provider(prompt: &str) -> Result<String, ApiError> {
    match CALLS.fetch_add(1, Ordering::Relaxed) {
        0 => Err(ApiError::RateLimited {
            retry_after: Duration::from_millis(300),
        }),
        1 => {
            // Hangs: the attempt timeout cuts it off.
            tokio::time::sleep(Duration::from_secs(10)).await;
            Ok("too late".into())
        }
        2 => Err(ApiError::Overloaded),
        _ if prompt.is_empty() => Err(ApiError::BadRequest("empty prompt")),
        _ => Ok(format!("Hello! You said: {prompt}")),
    }
}

fn log(event: &RetryEvent<'_, ApiError>) {
    println!(
        "  attempt {} failed: {:<40} kind {:<10} -> sleeping {:>4} ms ({:?})",
        event.attempt(),
        event.error().to_string(),
        event.kind().to_string(),
        event.delay().as_millis(),
        event.source(),
    );
}

#[retry(
    max_attempts = 5,
    wait = exponential(100ms, 2s),
    attempt_timeout = 500ms,
    deadline = 10s,
    on_retry = log
)]
async fn chat(prompt: &str) -> Result<String, ApiError> {
    println!("  attempt {} starts", attempt().number());
    provider(prompt).await
}

#[tokio::main]
async fn main() {
    let options = Options::parse();
    println!(
        "chat({:?}) against a provider that answers 429, hangs, then 529:",
        options.prompt
    );
    let start = Instant::now();
    match chat(&options.prompt).await {
        Ok(reply) => println!("  => {reply:?} after {:?}\n", start.elapsed()),
        Err(e) => println!("  => gave up: {e}\n"),
    }

    println!("chat(\"\"): a 400 is never retried:");
    match chat("").await {
        Ok(reply) => println!("  => {reply:?}"),
        Err(e) => println!("  => gave up at once: {e}"),
    }
}
