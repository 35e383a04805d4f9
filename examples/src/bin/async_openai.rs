//! async-openai, the most used Rust OpenAI client, with its own retries
//! turned off and its call under `#[retry]`.
//!
//! ```sh
//! cargo run -p examples --bin async_openai                       # a local provider that fails twice
//! cargo run -p examples --bin async_openai -- --scenario quota   # one that is out of credit
//! OPENAI_API_KEY=sk-... cargo run -p examples --bin async_openai -- \
//!     --base-url https://api.openai.com/v1 "Say hello in five words."
//! ```
//!
//! async-openai retries 429s and 5xx by itself (three times, with its own
//! backoff). Under `#[retry]` each of our attempts would be up to four of
//! its own, so the client is built with a plain `ReqwestService` (its
//! `middleware` feature) in place of the one it wraps in its retry layer.
//!
//! What its error carries, and so what a retry can see: the status and the
//! body's error `type` and `code`, so quota errors (`insufficient_quota`),
//! 400s and 401s are not retried and 429s, 5xx, timeouts and dropped
//! connections are. What it does not: no header of the failed response is
//! kept, so there is no `Retry-After` (a 429 waits by the backoff, not as
//! long as the provider asked) and no request id; and it sends no
//! idempotency key, so a retried request whose connection dropped after the
//! provider did the work is billed twice. `--scenario drop` shows it.

use std::time::Instant;

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::ReqwestService;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs,
};
use async_openai::Client;
use clap::builder::PossibleValuesParser;
use clap::Parser;
use examples::flaky::{FlakyProvider, Scenario};
use llm_resilience::{attempt, retry, RetryEvent};

/// One chat completion through async-openai, with its own retries off and
/// the call under `#[retry]`.
#[derive(Parser, Debug)]
#[command(name = "async_openai")]
struct Options {
    /// What to ask.
    #[arg(default_value = "Say hello in five words.")]
    prompt: String,
    /// Call this OpenAI-compatible endpoint instead of a local flaky
    /// provider; the key comes from OPENAI_API_KEY.
    #[arg(long, value_name = "URL", env = "OPENAI_BASE_URL")]
    base_url: Option<String>,
    /// The API key (only with --base-url).
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// The model to ask.
    #[arg(long, default_value = "gpt-4o-mini")]
    model: String,
    /// The local provider's faults, without --base-url.
    #[arg(
        long,
        default_value = "503",
        value_parser = PossibleValuesParser::new(Scenario::names()),
    )]
    scenario: String,
}

fn log(event: &RetryEvent<'_, OpenAIError>) {
    println!(
        "  attempt {} failed ({}): {} -> retrying in {} ms",
        event.attempt(),
        event.kind(),
        event.error(),
        event.delay().as_millis(),
    );
}

/// 429s, 5xx, timeouts and dropped connections are retried with backoff and
/// jitter; quota errors, 400s and 401s are not.
#[retry(max_attempts = 4, wait = exponential(500ms, 8s), attempt_timeout = 60s, deadline = 120s, on_retry = log)]
async fn chat(
    client: &Client<OpenAIConfig>,
    model: &str,
    prompt: &str,
) -> Result<String, OpenAIError> {
    println!("  attempt {}", attempt().number());
    let request = CreateChatCompletionRequestArgs::default()
        .model(model)
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content(prompt)
            .build()?
            .into()])
        // Who asks: the local provider also tells the attempts of one call
        // apart by it, having no idempotency key to go by.
        .user("async-openai-example")
        .build()?;
    let response = client.chat().create(request).await?;
    Ok(response
        .choices
        .first()
        .and_then(|choice| choice.message.content.clone())
        .unwrap_or_default())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let options = Options::parse();
    // A real endpoint, or the local provider.
    let (config, local) = match &options.base_url {
        Some(url) => {
            let key = options.api_key.clone().ok_or("set OPENAI_API_KEY")?;
            (
                OpenAIConfig::new().with_api_base(url).with_api_key(key),
                None,
            )
        }
        None => {
            let provider = FlakyProvider::spawn(
                Scenario::from_name(&options.scenario).ok_or("unknown scenario")?,
            )?;
            println!(
                "A local provider at {} (scenario {}).",
                provider.base_url(),
                options.scenario
            );
            let config = OpenAIConfig::new()
                .with_api_base(provider.base_url())
                .with_api_key("sk-local");
            (config, Some(provider))
        }
    };
    // Its own retries off: a plain reqwest service, not the one it wraps in
    // its retry layer.
    let client =
        Client::with_config(config).with_http_service(ReqwestService::new(reqwest::Client::new()));

    let started = Instant::now();
    let reply = chat(&client, &options.model, &options.prompt).await;
    match &reply {
        Ok(text) => println!("=> {text:?} after {:.1?}", started.elapsed()),
        Err(e) => println!("=> gave up after {:.1?}: {e}", started.elapsed()),
    }
    if let Some(provider) = &local {
        let stats = provider.stats();
        println!(
            "requests the provider saw: {}, billed twice: {}",
            stats.requests, stats.billed_twice
        );
    }
    Ok(())
}
