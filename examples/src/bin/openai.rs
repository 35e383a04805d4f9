//! One chat completion from an OpenAI-compatible endpoint, retried the way a
//! production caller wants. Run with
//! `OPENAI_API_KEY=... cargo run -p examples --bin openai -- "Hello"`
//! (set `OPENAI_BASE_URL` for another compatible endpoint).

use llm_resilience::http::{check, HttpError, RequestBuilderExt};
use llm_resilience::retry;
use serde_json::{json, Value};

struct OpenAi {
    http: reqwest::Client,
    base_url: String,
    api_key: String,
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
                "model": "gpt-4o-mini",
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
    let api = OpenAi {
        http: reqwest::Client::new(),
        base_url: std::env::var("OPENAI_BASE_URL").unwrap_or("https://api.openai.com/v1".into()),
        api_key: std::env::var("OPENAI_API_KEY").map_err(|_| "set OPENAI_API_KEY")?,
    };
    let prompt = std::env::args()
        .nth(1)
        .unwrap_or("Say hello in five words.".into());
    println!("{}", api.chat(&prompt).await?);
    Ok(())
}
