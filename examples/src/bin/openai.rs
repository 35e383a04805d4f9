//! One chat completion from an OpenAI-compatible endpoint, retried the way a
//! production caller wants. Run with
//! `OPENAI_API_KEY=... cargo run -p examples --bin openai -- "Hello"`
//! (set `OPENAI_BASE_URL`, or pass `--base-url`, for another compatible
//! endpoint; `--help` lists the options).

use clap::Parser;
use llm_resilience::http::{check, HttpError, RequestBuilderExt};
use llm_resilience::retry;
use serde_json::{json, Value};

/// One chat completion through `#[retry]` and reqwest.
#[derive(Parser, Debug)]
#[command(name = "openai")]
struct Options {
    /// What to ask.
    #[arg(default_value = "Say hello in five words.")]
    prompt: String,
    /// The API's base URL.
    #[arg(
        long,
        env = "OPENAI_BASE_URL",
        default_value = "https://api.openai.com/v1"
    )]
    base_url: String,
    /// The API key.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    api_key: String,
    /// The model to ask.
    #[arg(long, default_value = "gpt-4o-mini")]
    model: String,
}

struct OpenAi {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
    model: String,
}

impl OpenAi {
    /// 429s, 5xx, timeouts and dropped connections are retried with backoff
    /// and jitter, honouring Retry-After; 400, 401/403 and quota errors are
    /// not. Every attempt carries the same Idempotency-Key, so a request the
    /// server processed before the connection dropped is not billed twice.
    #[retry(max_attempts = 4, wait = exponential(500ms, 8s), attempt_timeout = 60s, deadline = 120s)]
    async fn chat(&self, prompt: &str) -> Result<String, HttpError> {
        let response = self
            .http
            .post(format!("{}/chat/completions", self.base_url))
            .bearer_auth(&self.api_key)
            .json(&json!({
                "model": self.model,
                "messages": [{ "role": "user", "content": prompt }],
            }))
            .retry_headers()
            .send()
            .await?;
        let reply: Value = check(response).await?.json().await?;
        Ok(reply["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = Options::parse();
    let api = OpenAi {
        http: reqwest::Client::new(),
        base_url: options.base_url,
        api_key: options.api_key,
        model: options.model,
    };
    println!("{}", api.chat(&options.prompt).await?);
    Ok(())
}
