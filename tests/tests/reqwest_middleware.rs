//! `llm_resilience::reqwest_middleware::RetryMiddleware` over real HTTP
//! against the flaky provider: the guarantees of `#[retry]`
//! (`http_provider.rs`), stacked with another middleware, and a streaming
//! body sent once.
#![deny(warnings, clippy::all, unused_qualifications)]

#[path = "common/provider.rs"]
mod provider;

use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use examples::flaky::{Fault, QuotaStyle, RetryAfter, Scenario};
use http::Extensions;
use llm_resilience::http::HttpError;
use llm_resilience::reqwest_middleware::RetryMiddleware;
use llm_resilience::{testing, Classify, ErrorKind, Policy};
use provider::{chat_body, provider, reply_text, POLICY};
use reqwest::{Request, Response};
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware, Error, Middleware, Next};

fn client(policy: Policy) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(RetryMiddleware::new(policy))
        .build()
}

async fn chat(client: &ClientWithMiddleware, url: &str, user: &str) -> Result<String, Error> {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(chat_body(user))
        .send()
        .await?;
    Ok(reply_text(&response.bytes().await?))
}

/// The `HttpError` a call ended with.
fn http_error(error: &Error) -> &HttpError {
    match error {
        Error::Middleware(e) => e.downcast_ref::<HttpError>().expect("an HttpError"),
        Error::Reqwest(e) => panic!("a transport error: {e}"),
    }
}

#[tokio::test]
async fn retry_after_is_honoured_in_every_form() {
    let forms = [
        (RetryAfter::Millis(50.0), Duration::from_millis(50)),
        (RetryAfter::Seconds(0.25), Duration::from_millis(250)),
        (
            RetryAfter::OpenAiReset(Duration::from_millis(20)),
            Duration::from_millis(20),
        ),
    ];
    let client = client(POLICY);
    for (form, asked) in forms {
        let server = provider(Scenario::FailFirst {
            failures: 1,
            fault: Fault::RateLimit(form),
        });
        let sleeps = testing::skip_sleeps();
        let reply = chat(&client, &server.chat_completions_url(), "u").await;
        assert!(reply.is_ok(), "{form:?}: {reply:?}");
        let delays = sleeps.delays();
        assert_eq!(delays.len(), 1, "{form:?}");
        assert!(
            delays[0] >= asked,
            "{form:?}: slept {delays:?}, asked {asked:?}"
        );
        assert!(
            delays[0] <= asked + asked / 10 + Duration::from_millis(1),
            "{form:?}: {delays:?}"
        );
        assert_eq!(server.requests().len(), 2);
    }
}

#[tokio::test]
async fn permanent_failures_are_sent_once() {
    let client = client(POLICY);
    let cases = [
        (Fault::Status(400), ErrorKind::Client),
        (Fault::Status(401), ErrorKind::Auth),
        (Fault::Status(404), ErrorKind::Client),
        (Fault::Quota(QuotaStyle::OpenAi), ErrorKind::Quota),
        (Fault::Quota(QuotaStyle::Anthropic), ErrorKind::Quota),
    ];
    for (fault, kind) in cases {
        let server = provider(Scenario::Always(fault));
        let error = chat(&client, &server.chat_completions_url(), "u")
            .await
            .unwrap_err();
        assert_eq!(error.kind(), kind, "{fault:?}: {error}");
        assert_eq!(server.requests().len(), 1, "{fault:?} was sent again");
        let http = http_error(&error);
        assert!(http.status().is_some(), "{http}");
        assert!(
            error.request_id().is_some_and(|id| id.starts_with("req_")),
            "{error}"
        );
    }
}

#[tokio::test]
async fn transient_statuses_are_retried_until_they_clear() {
    let client = client(POLICY);
    for status in [500, 502, 503, 504, 529, 408, 409] {
        let server = provider(Scenario::FailFirst {
            failures: 2,
            fault: Fault::Status(status),
        });
        let _sleeps = testing::skip_sleeps();
        chat(&client, &server.chat_completions_url(), "u")
            .await
            .unwrap();
        assert_eq!(server.requests().len(), 3, "{status}");
    }
    // One that does not clear: the last answer, as an error.
    let server = provider(Scenario::Always(Fault::Status(503)));
    let _sleeps = testing::skip_sleeps();
    let error = chat(&client, &server.chat_completions_url(), "u")
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 4);
    assert_eq!(error.kind(), ErrorKind::Overloaded);
    assert_eq!(
        http_error(&error).status(),
        Some(http::StatusCode::SERVICE_UNAVAILABLE)
    );
}

#[tokio::test]
async fn one_idempotency_key_per_call() {
    let client = client(POLICY);
    let server = provider(Scenario::FailFirst {
        failures: 2,
        fault: Fault::Status(503),
    });
    let _sleeps = testing::skip_sleeps();
    for user in ["first", "second"] {
        let reply = chat(&client, &server.chat_completions_url(), user)
            .await
            .unwrap();
        assert_eq!(reply, format!("hello from {user}"));
    }
    let seen = server.requests();
    let keys: Vec<&str> = seen
        .iter()
        .map(|r| {
            r.idempotency_key
                .as_deref()
                .expect("every attempt carries a key")
        })
        .collect();
    assert_eq!(keys.len(), 6);
    assert!(keys[..3].iter().all(|k| *k == keys[0]), "{keys:?}");
    assert!(keys[3..].iter().all(|k| *k == keys[3]), "{keys:?}");
    assert_ne!(keys[0], keys[3]);
    let counts: Vec<&str> = seen
        .iter()
        .map(|r| r.retry_count.as_deref().unwrap())
        .collect();
    assert_eq!(counts, ["0", "1", "2", "0", "1", "2"]);
}

#[tokio::test]
async fn dropped_and_slow_answers_are_billed_once() {
    let client = client(POLICY);
    for fault in [
        Fault::DropAfterProcessing,
        Fault::Slow(Duration::from_secs(5)),
    ] {
        let server = provider(Scenario::FailFirst { failures: 1, fault });
        let _sleeps = testing::skip_sleeps();
        let reply = chat(&client, &server.chat_completions_url(), "keyed")
            .await
            .unwrap();
        assert_eq!(reply, "hello from keyed");
        let stats = server.stats();
        assert_eq!(stats.requests, 2, "{fault:?}: {stats:?}");
        assert_eq!(stats.processed, 1, "{fault:?}");
        assert_eq!(
            stats.replayed, 1,
            "{fault:?}: the retry got the stored answer"
        );
        assert_eq!(stats.billed_twice, 0, "{fault:?}");
    }
}

/// A middleware that records the `x-retry-count` of every request it sees
/// and marks them.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Option<String>>>>);

#[async_trait::async_trait]
impl Middleware for Recorder {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let count = request
            .headers()
            .get("x-retry-count")
            .map(|v| v.to_str().unwrap().to_owned());
        self.0.lock().unwrap().push(count);
        request
            .headers_mut()
            .insert("x-recorded", "yes".parse().unwrap());
        next.run(request, extensions).await
    }
}

#[tokio::test]
async fn stacked_with_another_middleware() {
    let server = provider(Scenario::FailFirst {
        failures: 2,
        fault: Fault::Status(500),
    });
    let (before, after) = (Recorder::default(), Recorder::default());
    let client = ClientBuilder::new(reqwest::Client::new())
        .with(before.clone())
        .with(RetryMiddleware::new(POLICY))
        .with(after.clone())
        .build();
    let _sleeps = testing::skip_sleeps();
    let reply = chat(&client, &server.chat_completions_url(), "stacked")
        .await
        .unwrap();
    assert_eq!(reply, "hello from stacked");
    // The one before sees the call once, before any header is added; the
    // one after sees every attempt, with its count.
    assert_eq!(*before.0.lock().unwrap(), [None]);
    let counts = after.0.lock().unwrap().clone();
    assert_eq!(
        counts,
        ["0", "1", "2"].map(|c| Some(c.to_owned())),
        "{counts:?}"
    );
    assert_eq!(server.requests().len(), 3);
    assert_eq!(server.stats().billed_twice, 0);
}

#[tokio::test]
async fn a_streaming_body_is_sent_once_with_a_clear_error() {
    let server = provider(Scenario::Always(Fault::Status(503)));
    let client = client(POLICY);
    let chunks = futures_util::stream::iter([Ok::<_, io::Error>(Bytes::from(chat_body("s")))]);
    let error = client
        .post(server.chat_completions_url())
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap_err();
    assert_eq!(server.requests().len(), 1, "a stream is sent once");
    let http = http_error(&error);
    assert!(http.is_not_replayable());
    assert_eq!(http.kind(), ErrorKind::Overloaded);
    let message = error.to_string();
    assert!(
        message.contains("HTTP 503") && message.contains("sent once"),
        "{message}"
    );
}

#[tokio::test]
async fn transport_errors_come_back_as_reqwests() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let client = client(POLICY);
    let _sleeps = testing::skip_sleeps();
    let error = client
        .get(format!("http://{closed}/v1/models"))
        .send()
        .await
        .unwrap_err();
    match &error {
        Error::Reqwest(e) => assert!(e.is_connect(), "{e}"),
        Error::Middleware(e) => panic!("not reqwest's own error: {e}"),
    }
    assert_eq!(error.kind(), ErrorKind::Network);
}

#[tokio::test]
async fn an_outer_retry_sees_what_the_middleware_saw() {
    // A function returning reqwest_middleware::Result can take #[retry]:
    // its error classifies, and a cut-off attempt converts into it.
    #[llm_resilience::retry(max_attempts = 2, wait = none, attempt_timeout = 200ms, limiter = none)]
    async fn once(client: &ClientWithMiddleware, url: &str) -> Result<String, Error> {
        chat(client, url, "outer").await
    }
    let server = provider(Scenario::Always(Fault::Quota(QuotaStyle::OpenAi)));
    let client = client(POLICY);
    let error = once(&client, &server.chat_completions_url())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Quota);
    assert_eq!(server.requests().len(), 1, "neither retry sent it again");
}
