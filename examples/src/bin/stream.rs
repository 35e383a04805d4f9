//! A streamed chat completion from an OpenAI-compatible endpoint, printed
//! token by token. Everything before the first token (connection errors,
//! 429s and 5xx, an error event first, no first token in time) is retried;
//! an interruption after it ends the stream with a classified error, never
//! a silently truncated answer. Run with
//! `OPENAI_API_KEY=... cargo run -p examples --bin stream -- "Hello"`.

use std::io::Write;
use std::time::Duration;

use clap::Parser;
use futures_util::StreamExt;
use llm_resilience::http::{check, RequestBuilderExt};
use llm_resilience::stream::{OpenAi, StreamItem, StreamOptions};
use llm_resilience::{Policy, Wait};
use serde_json::json;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Parser)]
struct Args {
    /// The prompt.
    prompt: String,
    /// An OpenAI-compatible API.
    #[arg(long, default_value = "https://api.openai.com/v1")]
    base_url: String,
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
const OPTIONS: StreamOptions = StreamOptions::new()
    .first_event_timeout(Duration::from_secs(20))
    .idle_timeout(Duration::from_secs(30));

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = Args::parse();
    let key = std::env::var("OPENAI_API_KEY").unwrap_or_default();
    let http = reqwest::Client::new();
    let url = format!("{}/chat/completions", args.base_url);
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
        match item? {
            StreamItem::Content(text) => print!("{text}"),
            StreamItem::Restarted => println!("\n[restarted]"),
            _ => {}
        }
        std::io::stdout().flush()?;
    }
    println!();
    Ok(())
}
