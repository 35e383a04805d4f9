//! The limits a provider announces on every answer reach the call's limiter
//! through `http::check`, over real HTTP against the flaky provider.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::sync::Arc;

use examples::flaky::{Announce, FlakyProvider, Limits, Scenario};
use http::{HeaderMap, HeaderValue};
use retry_core::http::{check, observe, HttpError};
use retry_core::{retry, AdaptiveLimiter, Policy};
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
    let sleeps = retry_core::testing::skip_sleeps();
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
