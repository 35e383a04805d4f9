//! Plain `http` responses: `#[retry]` over hyper's client (no reqwest),
//! with `http::check_response` and `http::insert_retry_headers`, against
//! the flaky provider.
#![deny(warnings, clippy::all, unused_qualifications)]

#[path = "common/provider.rs"]
mod provider;

use std::cell::RefCell;
use std::time::Duration;

use examples::flaky::{Fault, QuotaStyle, RetryAfter, Scenario};
use http_body_util::BodyExt;
use llm_resilience::http::{check_response, insert_retry_headers, HttpError};
use llm_resilience::{retry, testing, Classify, DelaySource, ErrorKind, RetryEvent};
use provider::{hyper_client, hyper_request, provider, reply_text, HyperClient};

thread_local! {
    static RETRIES: RefCell<Vec<(ErrorKind, Duration, DelaySource)>> = const { RefCell::new(Vec::new()) };
}

fn record(event: &RetryEvent<'_, HttpError>) {
    RETRIES.with(|r| {
        r.borrow_mut()
            .push((event.kind(), event.delay(), event.source()))
    });
}

fn take_retries() -> Vec<(ErrorKind, Duration, DelaySource)> {
    RETRIES.with(|r| std::mem::take(&mut *r.borrow_mut()))
}

#[retry(max_attempts = 4, wait = exponential(1ms, 20ms), attempt_timeout = 300ms, on_retry = record, limiter = none)]
async fn chat(client: &HyperClient, url: &str, user: &str) -> Result<String, HttpError> {
    let mut request = hyper_request(url, user);
    insert_retry_headers(request.headers_mut());
    let response = client
        .request(request)
        .await
        .map_err(HttpError::from_error)?;
    let body = check_response(response)
        .await?
        .into_body()
        .collect()
        .await
        .map_err(HttpError::from_error)?
        .to_bytes();
    Ok(reply_text(&body))
}

#[tokio::test]
async fn retry_after_is_honoured_in_every_form() {
    let forms = [
        (RetryAfter::Millis(50.0), Duration::from_millis(50)),
        (RetryAfter::Seconds(1.0), Duration::from_secs(1)),
        (
            RetryAfter::OpenAiReset(Duration::from_millis(20)),
            Duration::from_millis(20),
        ),
    ];
    let client = hyper_client();
    for (form, asked) in forms {
        let server = provider(Scenario::FailFirst {
            failures: 1,
            fault: Fault::RateLimit(form),
        });
        let _sleeps = testing::skip_sleeps();
        chat(&client, &server.chat_completions_url(), "u")
            .await
            .unwrap();
        let retries = take_retries();
        assert_eq!(retries.len(), 1, "{form:?}");
        let (kind, delay, source) = retries[0];
        assert_eq!(
            (kind, source),
            (ErrorKind::RateLimit, DelaySource::RetryAfter)
        );
        assert!(
            delay >= asked && delay <= asked + asked / 10 + Duration::from_millis(1),
            "{form:?}: slept {delay:?}, asked {asked:?}"
        );
    }
}

#[tokio::test]
async fn statuses_headers_and_bodies_are_classified() {
    let client = hyper_client();
    let permanent = [
        (Fault::Status(400), ErrorKind::Client),
        (Fault::Status(401), ErrorKind::Auth),
        (Fault::Quota(QuotaStyle::OpenAi), ErrorKind::Quota),
        (Fault::Quota(QuotaStyle::Anthropic), ErrorKind::Quota),
    ];
    for (fault, kind) in permanent {
        let server = provider(Scenario::Always(fault));
        let error = chat(&client, &server.chat_completions_url(), "u")
            .await
            .unwrap_err();
        assert_eq!(error.kind(), kind, "{fault:?}: {error}");
        assert_eq!(server.requests().len(), 1, "{fault:?} was sent again");
        assert!(error.request_id().is_some_and(|id| id.starts_with("req_")));
        assert!(!error.body().is_empty(), "the start of the body is kept");
    }
    for (status, kind) in [
        (503, ErrorKind::Overloaded),
        (529, ErrorKind::Overloaded),
        (500, ErrorKind::Server),
    ] {
        let server = provider(Scenario::FailFirst {
            failures: 2,
            fault: Fault::Status(status),
        });
        let _sleeps = testing::skip_sleeps();
        chat(&client, &server.chat_completions_url(), "u")
            .await
            .unwrap();
        let kinds: Vec<ErrorKind> = take_retries().iter().map(|r| r.0).collect();
        assert_eq!(kinds, [kind, kind], "{status}");
    }
}

#[tokio::test]
async fn a_dropped_connection_is_a_network_error_and_billed_once() {
    let client = hyper_client();
    let server = provider(Scenario::FailFirst {
        failures: 1,
        fault: Fault::DropAfterProcessing,
    });
    let _sleeps = testing::skip_sleeps();
    let reply = chat(&client, &server.chat_completions_url(), "keyed")
        .await
        .unwrap();
    assert_eq!(reply, "hello from keyed");
    // hyper's error, in the chain of the client's: a connection closed
    // before the answer came.
    assert_eq!(take_retries()[0].0, ErrorKind::Network);
    let stats = server.stats();
    assert_eq!(
        (stats.processed, stats.replayed, stats.billed_twice),
        (1, 1, 0)
    );
}
