//! `#[retry]` over real HTTP against the flaky provider: every response form
//! a provider sends, idempotency keys, and a chaos run.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::cell::RefCell;
use std::time::Duration;

use examples::flaky::{Fault, FlakyProvider, QuotaStyle, RetryAfter, Scenario};
use llm_resilience::http::{check, HttpError, RequestBuilderExt};
use llm_resilience::{retry, testing, Classify, DelaySource, ErrorKind, RetryEvent};
use serde_json::{json, Value};

thread_local! {
    /// (failed attempt, kind, delay, source) of every retry on this thread.
    static RETRIES: RefCell<Vec<(u32, ErrorKind, Duration, DelaySource)>> = const { RefCell::new(Vec::new()) };
}

fn record(event: &RetryEvent<'_, HttpError>) {
    RETRIES.with(|r| {
        r.borrow_mut()
            .push((event.attempt(), event.kind(), event.delay(), event.source()))
    });
}

fn take_retries() -> Vec<(u32, ErrorKind, Duration, DelaySource)> {
    RETRIES.with(|r| std::mem::take(&mut *r.borrow_mut()))
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    user: &str,
    keyed: bool,
) -> Result<String, HttpError> {
    let mut request = client.post(url).json(&json!({
        "model": "test",
        "messages": [{"role": "user", "content": format!("hello from {user}")}],
        "user": user,
    }));
    if keyed {
        request = request.retry_headers();
    }
    let reply: Value = check(request.send().await?).await?.json().await?;
    Ok(reply["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

#[retry(max_attempts = 4, wait = exponential(1ms, 20ms), attempt_timeout = 300ms, deadline = 30s, on_retry = record)]
async fn chat(client: &reqwest::Client, url: &str, user: &str) -> Result<String, HttpError> {
    post(client, url, user, true).await
}

#[retry(max_attempts = 4, wait = exponential(1ms, 20ms), attempt_timeout = 300ms, on_retry = record)]
async fn chat_without_key(
    client: &reqwest::Client,
    url: &str,
    user: &str,
) -> Result<String, HttpError> {
    post(client, url, user, false).await
}

fn provider(scenario: Scenario) -> FlakyProvider {
    FlakyProvider::spawn(scenario).expect("the flaky provider starts")
}

#[tokio::test]
async fn retry_after_is_honoured_in_every_form() {
    let forms = [
        (RetryAfter::Millis(50.0), Duration::from_millis(50)),
        (RetryAfter::Millis(50.5), Duration::from_micros(50_500)),
        (RetryAfter::Seconds(1.0), Duration::from_secs(1)),
        (RetryAfter::Seconds(0.25), Duration::from_millis(250)),
        (
            RetryAfter::OpenAiReset(Duration::from_millis(20)),
            Duration::from_millis(20),
        ),
    ];
    let client = reqwest::Client::new();
    for (form, asked) in forms {
        let server = provider(Scenario::FailFirst {
            failures: 1,
            fault: Fault::RateLimit(form),
        });
        let sleeps = testing::skip_sleeps();
        let reply = chat(&client, &server.chat_completions_url(), "u").await;
        assert!(reply.is_ok(), "{form:?}: {reply:?}");
        let retries = take_retries();
        assert_eq!(retries.len(), 1, "{form:?}");
        let (attempt, kind, delay, source) = retries[0];
        assert_eq!(
            (attempt, kind, source),
            (1, ErrorKind::RateLimit, DelaySource::RetryAfter)
        );
        assert!(delay >= asked, "{form:?}: slept {delay:?}, asked {asked:?}");
        assert!(
            delay <= asked + asked / 10 + Duration::from_millis(1),
            "{form:?}: {delay:?}"
        );
        assert_eq!(sleeps.delays(), [delay]);
        assert_eq!(server.requests().len(), 2);
    }
}

#[tokio::test]
async fn dated_and_anthropic_waits_are_honoured() {
    let client = reqwest::Client::new();
    for form in [
        RetryAfter::HttpDate(Duration::from_secs(1)),
        RetryAfter::AnthropicReset(Duration::from_millis(800)),
    ] {
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
        let (_, _, delay, source) = retries[0];
        assert_eq!(source, DelaySource::RetryAfter, "{form:?}");
        // Both forms are absolute times: what is left of them when the answer
        // is read, at most the time asked for (plus the spread).
        assert!(
            delay > Duration::from_millis(100) && delay <= Duration::from_millis(2200),
            "{form:?}: {delay:?}"
        );
    }
}

#[tokio::test]
async fn retry_after_ms_is_really_waited_for() {
    let server = provider(Scenario::FailFirst {
        failures: 2,
        fault: Fault::RateLimit(RetryAfter::Millis(50.0)),
    });
    let client = reqwest::Client::new();
    chat(&client, &server.chat_completions_url(), "u")
        .await
        .unwrap();
    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    for pair in seen.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(gap >= Duration::from_millis(50), "came back after {gap:?}");
    }
    take_retries();
}

#[tokio::test]
async fn permanent_failures_are_sent_exactly_once() {
    let client = reqwest::Client::new();
    let cases = [
        (Fault::Status(400), ErrorKind::Client),
        (Fault::Status(401), ErrorKind::Auth),
        (Fault::Status(403), ErrorKind::Auth),
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
        assert!(
            error.request_id().is_some_and(|id| id.starts_with("req_")),
            "{error}"
        );
        assert!(take_retries().is_empty());
    }
}

#[tokio::test]
async fn transient_statuses_are_retried_until_they_clear() {
    let client = reqwest::Client::new();
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
        let kinds: Vec<ErrorKind> = take_retries().iter().map(|r| r.1).collect();
        let expected = match status {
            503 | 529 => ErrorKind::Overloaded,
            408 => ErrorKind::Timeout,
            _ => ErrorKind::Server,
        };
        assert_eq!(kinds, [expected, expected], "{status}");
    }
}

#[tokio::test]
async fn dropped_connections_are_retried_without_double_billing() {
    let client = reqwest::Client::new();
    let server = provider(Scenario::FailFirst {
        failures: 2,
        fault: Fault::DropAfterProcessing,
    });
    let _sleeps = testing::skip_sleeps();
    let reply = chat(&client, &server.chat_completions_url(), "keyed")
        .await
        .unwrap();
    assert!(reply.contains("hello from keyed"), "{reply}");
    let retries = take_retries();
    assert_eq!(retries[0].1, ErrorKind::Network);
    let stats = server.stats();
    assert_eq!(stats.processed, 1);
    assert_eq!(stats.replayed, 1, "the retry got the stored answer");
    assert_eq!(stats.billed_twice, 0);

    // The same without an idempotency key: the provider cannot tell the retry
    // from a new request and does the work again.
    let server = provider(Scenario::FailFirst {
        failures: 1,
        fault: Fault::DropAfterProcessing,
    });
    chat_without_key(&client, &server.chat_completions_url(), "unkeyed")
        .await
        .unwrap();
    assert_eq!(server.stats().billed_twice, 1);
    take_retries();
}

#[tokio::test]
async fn slow_answers_are_cut_off_and_retried() {
    let client = reqwest::Client::new();
    let server = provider(Scenario::FailFirst {
        failures: 1,
        fault: Fault::Slow(Duration::from_secs(5)),
    });
    let _sleeps = testing::skip_sleeps();
    chat(&client, &server.chat_completions_url(), "u")
        .await
        .unwrap();
    let retries = take_retries();
    assert_eq!(retries.len(), 1);
    assert_eq!(retries[0].1, ErrorKind::Timeout);
    assert_eq!(server.stats().billed_twice, 0);
}

#[tokio::test]
async fn one_idempotency_key_per_call() {
    let client = reqwest::Client::new();
    let server = provider(Scenario::FailFirst {
        failures: 2,
        fault: Fault::Status(503),
    });
    let _sleeps = testing::skip_sleeps();
    chat(&client, &server.chat_completions_url(), "first")
        .await
        .unwrap();
    chat(&client, &server.chat_completions_url(), "second")
        .await
        .unwrap();
    take_retries();
    let seen = server.requests();
    assert_eq!(seen.len(), 6);
    let keys: Vec<&str> = seen
        .iter()
        .map(|r| {
            r.idempotency_key
                .as_deref()
                .expect("every attempt carries a key")
        })
        .collect();
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
async fn chaos_run_bills_nothing_twice_and_classifies_every_failure() {
    const CALLS: usize = 500;
    let server = provider(Scenario::Chaos {
        seed: 7,
        fault_rate: 0.3,
    });
    let url = server.chat_completions_url();
    let client = reqwest::Client::new();
    let _sleeps = testing::skip_sleeps();
    let local = tokio::task::LocalSet::new();
    let outcomes = local
        .run_until(async {
            let mut tasks = Vec::new();
            for chunk in 0..(CALLS / 50) {
                let mut batch = tokio::task::JoinSet::new();
                for i in 0..50 {
                    let client = client.clone();
                    let url = url.clone();
                    batch.spawn_local(async move {
                        chat(&client, &url, &format!("chaos-{chunk}-{i}"))
                            .await
                            .map_err(|e| e.kind())
                    });
                }
                while let Some(done) = batch.join_next().await {
                    tasks.push(done.expect("no call panics"));
                }
            }
            tasks
        })
        .await;
    take_retries();
    assert_eq!(outcomes.len(), CALLS);
    let stats = server.stats();
    assert_eq!(stats.billed_twice, 0, "{stats:?}");
    let succeeded = outcomes.iter().filter(|o| o.is_ok()).count();
    for failure in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert_ne!(*failure, ErrorKind::Other, "every failure is classified");
    }
    // With 4 attempts and 30% faults, almost every call gets through; the
    // rare permanent faults (400, quota) are the expected failures.
    assert!(
        succeeded >= CALLS * 95 / 100,
        "only {succeeded} of {CALLS} succeeded"
    );
    assert!(
        stats.requests as usize > CALLS,
        "faults were injected: {stats:?}"
    );
}

#[tokio::test]
async fn reqwest_errors_are_classified() {
    // A client-side timeout.
    let server = provider(Scenario::Always(Fault::Slow(Duration::from_secs(5))));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let error = client
        .post(server.chat_completions_url())
        .json(&json!({"messages": []}))
        .send()
        .await
        .unwrap_err();
    assert_eq!(Classify::kind(&error), ErrorKind::Timeout);
    assert_eq!(HttpError::from(error).kind(), ErrorKind::Timeout);

    // Nobody listening.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let error = reqwest::Client::new()
        .get(format!("http://{closed}/v1/models"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(Classify::kind(&error), ErrorKind::Network);

    // A status error from error_for_status.
    let server = provider(Scenario::Always(Fault::Status(503)));
    let error = reqwest::Client::new()
        .post(server.chat_completions_url())
        .json(&json!({"messages": []}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap_err();
    assert_eq!(Classify::kind(&error), ErrorKind::Overloaded);
    assert_eq!(
        HttpError::from(error).status().map(|s| s.as_u16()),
        Some(503)
    );

    // An invalid request never leaves the client.
    let error = reqwest::Client::new()
        .get("not a url")
        .send()
        .await
        .unwrap_err();
    assert_eq!(Classify::kind(&error), ErrorKind::Client);
}
