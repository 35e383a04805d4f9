//! The limits a provider announces on every answer reach the call's limiter
//! through `http::check`, over real HTTP against the flaky provider.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::sync::Arc;

use examples::flaky::{Announce, FlakyProvider, Limits, Scenario};
use http::{HeaderMap, HeaderValue};
use llm_resilience::http::{check, observe, HttpError};
use llm_resilience::{retry, AdaptiveLimiter, Policy};
use serde_json::json;

async fn post(client: &reqwest::Client, url: &str) -> Result<(), HttpError> {
    let request = client.post(url).json(&json!({
        "model": "test",
        "messages": [{"role": "user", "content": "hello"}],
    }));
    check(request.send().await?).await?;
    Ok(())
}

static OPENAI: AdaptiveLimiter = AdaptiveLimiter::new();

#[retry(max_attempts = 3, wait = fixed(10ms), limiter = OPENAI)]
async fn chat_openai(client: &reqwest::Client, url: &str) -> Result<(), HttpError> {
    post(client, url).await
}

fn provider(announce: Announce) -> FlakyProvider {
    FlakyProvider::spawn(Scenario::Limited(
        Limits::requests(100.0, 20).announce(announce),
    ))
    .expect("the flaky provider starts")
}

#[tokio::test]
async fn a_successful_answer_sets_the_pace_in_openai_form() {
    let provider = provider(Announce::OpenAi);
    let client = reqwest::Client::new();
    assert_eq!(OPENAI.rate(), None);
    chat_openai(&client, &provider.chat_completions_url())
        .await
        .unwrap();
    // 6000 a minute announced: 100 a second, less the 5 % headroom.
    assert_eq!(OPENAI.rate(), Some(95.0));
}

#[tokio::test]
async fn a_successful_answer_sets_the_pace_in_anthropic_form() {
    let provider = provider(Announce::Anthropic);
    let client = reqwest::Client::new();
    let limiter = Arc::new(AdaptiveLimiter::new());
    let url = provider.chat_completions_url();
    let policy = Policy::new().max_attempts(2);
    policy
        .limiter(&limiter)
        .call_async(|| post(&client, &url))
        .await
        .unwrap();
    assert_eq!(limiter.rate(), Some(95.0));
}

#[test]
fn outside_a_call_observe_does_nothing() {
    let mut headers = HeaderMap::new();
    headers.insert("x-ratelimit-limit-requests", HeaderValue::from_static("60"));
    observe(&headers); // no call, no limiter: nothing to feed, no panic
}

#[test]
fn an_exhausted_budget_holds_the_calls_back_until_the_next_request_is_due() {
    static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new();
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-ratelimit-limit-requests",
        HeaderValue::from_static("600"),
    );
    headers.insert(
        "x-ratelimit-remaining-requests",
        HeaderValue::from_static("0"),
    );
    headers.insert("x-ratelimit-reset-requests", HeaderValue::from_static("1m"));
    let sleeps = llm_resilience::testing::skip_sleeps();
    let policy = Policy::new();
    let policy = policy.limiter(&LIMITER);
    let first: std::io::Result<()> = policy.call(|| {
        observe(&headers);
        Ok(())
    });
    first.unwrap();
    let second: std::io::Result<()> = policy.call(|| Ok(()));
    second.unwrap();
    // 600 a minute: the next request is due 0.1 s after the bucket ran dry,
    // not a whole minute later.
    let paced = sleeps.paced();
    assert!(
        paced > std::time::Duration::from_millis(50)
            && paced <= std::time::Duration::from_millis(110),
        "{paced:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_that_states_its_cost_waits_for_the_tokens() {
    let limiter = AdaptiveLimiter::new();
    // 60 000 tokens a minute (1 000 a second, 950 with the headroom), 2 000
    // left now.
    limiter.observe_token_limit(60_000, Some(2_000));
    let start = tokio::time::Instant::now();
    let mut sent = Vec::new();
    for _ in 0..3 {
        let reply: std::io::Result<()> = Policy::new()
            .limiter(&limiter)
            .cost(1_900)
            .call_async(|| async { Ok(()) })
            .await;
        reply.unwrap();
        sent.push(start.elapsed());
    }
    // The first fits in what is left; each of the next waits until the
    // bucket, refilling at 950 a second, holds its 1 900 tokens: the second
    // needs 1 800 more (1.89 s), the third 1 900 more after it (3.89 s).
    assert_eq!(sent[0], std::time::Duration::ZERO);
    let ms = std::time::Duration::from_millis;
    assert!(sent[1] >= ms(1_890) && sent[1] <= ms(1_900), "{sent:?}");
    assert!(sent[2] >= ms(3_890) && sent[2] <= ms(3_900), "{sent:?}");

    // A call that states no cost is not held back by tokens.
    let before = start.elapsed();
    let reply: std::io::Result<()> = Policy::new()
        .limiter(&limiter)
        .call_async(|| async { Ok(()) })
        .await;
    reply.unwrap();
    assert_eq!(start.elapsed(), before);
}

static TOKENS: AdaptiveLimiter = AdaptiveLimiter::new();

#[retry(limiter = TOKENS, cost = prompt.len() as u64 / 4 + 1_000)]
async fn summarise(prompt: &str) -> Result<usize, std::io::Error> {
    Ok(prompt.len())
}

#[tokio::test(start_paused = true)]
async fn the_attribute_states_the_cost_per_call() {
    TOKENS.observe_token_limit(60_000, Some(0));
    let start = tokio::time::Instant::now();
    assert_eq!(summarise(&"x".repeat(4_000)).await.unwrap(), 4_000);
    // 2 000 tokens at 950 a second, from an empty bucket.
    let waited = start.elapsed();
    assert!(
        waited >= std::time::Duration::from_millis(2_000)
            && waited <= std::time::Duration::from_millis(2_200),
        "{waited:?}"
    );
}
