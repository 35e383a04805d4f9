//! A streamed chat completion from an OpenAI-compatible endpoint, printed
//! token by token. Every failure before the first token is retried; after
//! it, an interruption ends the stream with a classified error, never a
//! silently truncated answer. Run: `OPENAI_API_KEY=... cargo run -p examples
//! --bin stream -- "Hello"`, or, against the flaky provider (`cargo run -p
//! examples --bin provider`), `OPENAI_BASE_URL=http://127.0.0.1:8080/v1 ...`.

use std::io::Write;
use std::time::Duration;

use clap::Parser;
use futures_util::StreamExt;
use llm_resilience::http::{check, RequestBuilderExt};
use llm_resilience::stream::{OpenAi, StreamItem, StreamOptions};
use llm_resilience::{Policy, Wait};
use serde_json::json;

type Error = Box<dyn std::error::Error + Send + Sync>;
const OPENAI: &str = "https://api.openai.com/v1";

/// Streams a chat completion, printing its tokens as they arrive.
#[derive(Parser)]
struct Args {
    /// The prompt.
    prompt: String,
    /// An OpenAI-compatible API.
    #[arg(long, env = "OPENAI_BASE_URL", default_value = OPENAI)]
    base_url: String,
    /// The model to ask.
    #[arg(long, default_value = "gpt-4o-mini")]
    model: String,
}

const POLICY: Policy = Policy::new()
    .max_attempts(4)
    .wait(Wait::exponential(
        Duration::from_millis(500),
        Duration::from_secs(8),
    ))
    .deadline(Duration::from_secs(60)); // to the first token
const OPTIONS: StreamOptions = StreamOptions::new().first_event_timeout(Duration::from_secs(20)); // and 30 s between events

#[tokio::main]
async fn main() {
    if let Err(e) = run(Args::parse()).await {
        eprintln!("\nstream: {e}"); // classified: a StreamError, an HttpError
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), Error> {
    let key = std::env::var("OPENAI_API_KEY").unwrap_or_default();
    let http = reqwest::Client::new();
    let url = format!("{}/chat/completions", args.base_url.trim_end_matches('/'));
    let body = json!({
        "model": args.model,
        "stream": true,
        "messages": [{ "role": "user", "content": args.prompt }],
    });
    // `open` sends one attempt; it is called again for each retry, with the
    // same Idempotency-Key (set by `retry_headers`).
    let open = |_: &_| {
        let request = http
            .post(&url)
            .bearer_auth(&key)
            .json(&body)
            .retry_headers();
        async move { Ok::<_, Error>(check(request.send().await?).await?.bytes_stream()) }
    };
    let mut answer = POLICY.stream(OPTIONS, OpenAi, open).await?;
    while let Some(item) = answer.next().await {
        if let StreamItem::Content(text) = item? {
            print!("{text}");
        }
        std::io::stdout().flush()?;
    }
    println!();
    Ok(())
}
