//! async-openai's client with its own retries turned off, its calls under
//! `#[retry]`, against the flaky provider: what its error lets a retry see,
//! and what it does not (no `Retry-After`, no idempotency key).
#![deny(warnings, clippy::all, unused_qualifications)]

#[path = "common/provider.rs"]
mod provider;

use std::cell::RefCell;

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::ReqwestService;
use async_openai::types::chat::{
    ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs,
};
use async_openai::Client;
use examples::flaky::{Fault, FlakyProvider, QuotaStyle, RetryAfter, Scenario};
use llm_resilience::{retry, testing, Classify, DelaySource, ErrorKind, RetryEvent};
use provider::provider;

thread_local! {
    static RETRIES: RefCell<Vec<(ErrorKind, DelaySource)>> = const { RefCell::new(Vec::new()) };
}

fn record(event: &RetryEvent<'_, OpenAIError>) {
    RETRIES.with(|r| r.borrow_mut().push((event.kind(), event.source())));
}

fn take_retries() -> Vec<(ErrorKind, DelaySource)> {
    RETRIES.with(|r| std::mem::take(&mut *r.borrow_mut()))
}

fn config(server: &FlakyProvider) -> OpenAIConfig {
    OpenAIConfig::new()
        .with_api_base(server.base_url())
        .with_api_key("sk-test")
}

/// async-openai's client with its own retries off: a plain reqwest service
/// in place of the one it wraps in its retry layer.
fn without_its_retries(server: &FlakyProvider) -> Client<OpenAIConfig> {
    Client::with_config(config(server))
        .with_http_service(ReqwestService::new(reqwest::Client::new()))
}

async fn ask(client: &Client<OpenAIConfig>, user: &str) -> Result<String, OpenAIError> {
    let request = CreateChatCompletionRequestArgs::default()
        .model("gpt-4o-mini")
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content(format!("hello from {user}"))
            .build()?
            .into()])
        // The provider tells the attempts of one call apart by it.
        .user(user)
        .build()?;
    let response = client.chat().create(request).await?;
    Ok(response.choices[0]
        .message
        .content
        .clone()
        .unwrap_or_default())
}

#[retry(max_attempts = 4, wait = exponential(1ms, 20ms), attempt_timeout = 300ms, on_retry = record, limiter = none)]
async fn chat(client: &Client<OpenAIConfig>, user: &str) -> Result<String, OpenAIError> {
    ask(client, user).await
}

#[tokio::test]
async fn transient_failures_are_retried() {
    for (fault, kind) in [
        (Fault::Status(503), ErrorKind::Overloaded),
        (Fault::Status(529), ErrorKind::Overloaded),
        (Fault::Status(500), ErrorKind::Server),
        (Fault::RateLimit(RetryAfter::None), ErrorKind::RateLimit),
        (Fault::Status(408), ErrorKind::Timeout),
    ] {
        let server = provider(Scenario::FailFirst { failures: 2, fault });
        let client = without_its_retries(&server);
        let _sleeps = testing::skip_sleeps();
        let reply = chat(&client, "u").await.unwrap();
        assert_eq!(reply, "hello from u");
        assert_eq!(server.requests().len(), 3, "{fault:?}");
        let kinds: Vec<ErrorKind> = take_retries().iter().map(|r| r.0).collect();
        assert_eq!(kinds, [kind, kind], "{fault:?}");
    }
}

#[tokio::test]
async fn quota_and_client_errors_are_sent_once() {
    for (fault, kind) in [
        (Fault::Quota(QuotaStyle::OpenAi), ErrorKind::Quota),
        (Fault::Quota(QuotaStyle::Anthropic), ErrorKind::Quota),
        (Fault::Status(400), ErrorKind::Client),
        (Fault::Status(401), ErrorKind::Auth),
        (Fault::Status(404), ErrorKind::Client),
    ] {
        let server = provider(Scenario::Always(fault));
        let client = without_its_retries(&server);
        let error = chat(&client, "u").await.unwrap_err();
        assert_eq!(error.kind(), kind, "{fault:?}: {error}");
        assert_eq!(server.requests().len(), 1, "{fault:?} was sent again");
        assert!(take_retries().is_empty());
    }
}

#[tokio::test]
async fn a_rate_limit_waits_by_the_backoff_not_as_asked() {
    // The provider asks for a second; async-openai keeps no headers, so the
    // retry cannot know, and waits by its backoff.
    let server = provider(Scenario::FailFirst {
        failures: 1,
        fault: Fault::RateLimit(RetryAfter::Seconds(1.0)),
    });
    let client = without_its_retries(&server);
    let sleeps = testing::skip_sleeps();
    chat(&client, "u").await.unwrap();
    assert_eq!(
        take_retries(),
        [(ErrorKind::RateLimit, DelaySource::Backoff)]
    );
    assert!(sleeps.delays().iter().all(|d| d.as_millis() <= 20));
}

#[tokio::test]
async fn a_dropped_connection_is_retried_but_may_be_billed_twice() {
    // No idempotency key goes with its requests: the provider cannot tell a
    // retry from a new request.
    let server = provider(Scenario::FailFirst {
        failures: 1,
        fault: Fault::DropAfterProcessing,
    });
    let client = without_its_retries(&server);
    let _sleeps = testing::skip_sleeps();
    chat(&client, "u").await.unwrap();
    assert_eq!(take_retries()[0].0, ErrorKind::Network);
    assert_eq!(server.stats().billed_twice, 1);
}

#[tokio::test]
async fn its_own_retries_are_on_unless_turned_off() {
    // The default client retries a 503 by itself: under #[retry], each of
    // our attempts would be up to four of its own.
    let server = provider(Scenario::FailFirst {
        failures: 1,
        fault: Fault::Status(503),
    });
    let client = Client::with_config(config(&server));
    ask(&client, "u").await.unwrap();
    assert_eq!(server.requests().len(), 2, "it retried on its own");
}

#[test]
fn its_error_codes_types_and_variants_are_mapped() {
    use async_openai::error::{ApiError, ApiErrorResponse, StreamError};
    use http::StatusCode;
    let api = |status: u16, r#type: Option<&str>, code: Option<&str>| {
        OpenAIError::ApiError(ApiErrorResponse {
            status_code: StatusCode::from_u16(status).unwrap(),
            api_error: ApiError {
                message: "m".into(),
                r#type: r#type.map(str::to_owned),
                code: code.map(str::to_owned),
                ..ApiError::default()
            },
        })
    };
    let cases = [
        // A quota code wins over the status, on a 429 or not.
        (api(429, Some("insufficient_quota"), None), ErrorKind::Quota),
        (
            api(400, None, Some("billing_hard_limit_reached")),
            ErrorKind::Quota,
        ),
        (
            api(429, Some("requests"), Some("rate_limit_exceeded")),
            ErrorKind::RateLimit,
        ),
        (api(503, Some("server_error"), None), ErrorKind::Overloaded),
        (
            api(529, Some("overloaded_error"), None),
            ErrorKind::Overloaded,
        ),
        (api(500, None, None), ErrorKind::Server),
        (
            api(401, Some("invalid_request_error"), Some("invalid_api_key")),
            ErrorKind::Auth,
        ),
        (
            api(400, Some("invalid_request_error"), None),
            ErrorKind::Client,
        ),
        // A status that says nothing: the code or type does.
        (
            api(200, None, Some("rate_limit_exceeded")),
            ErrorKind::RateLimit,
        ),
        (api(200, Some("server_error"), None), ErrorKind::Server),
        (api(200, None, None), ErrorKind::Other),
        (
            OpenAIError::StreamError(Box::new(StreamError::EventStream("cut".into()))),
            ErrorKind::Network,
        ),
        (
            OpenAIError::InvalidArgument("no model".into()),
            ErrorKind::Client,
        ),
        (
            OpenAIError::JSONDeserialize(
                serde_json::from_str::<serde_json::Value>("<html>").unwrap_err(),
                "<html>".into(),
            ),
            ErrorKind::Other,
        ),
    ];
    for (error, kind) in cases {
        assert_eq!(error.kind(), kind, "{error}");
        assert_eq!(error.retry_after(), None, "it keeps no headers");
    }
    // A cut-off attempt and a breaker's refusal convert into it.
    let breaker = llm_resilience::CircuitBreaker::new();
    breaker.isolate();
    let refused = OpenAIError::from(breaker.try_acquire().unwrap_err());
    assert_eq!(refused.kind(), ErrorKind::Overloaded);
}
