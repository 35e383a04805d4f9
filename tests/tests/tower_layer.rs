//! `llm_resilience::tower::RetryLayer`: against tower-test's mock service,
//! against tower's own retry with `RetryBudget` as its budget, and over
//! real HTTP against the flaky provider with hyper's and reqwest's clients
//! as the service: the guarantees of `#[retry]` (`http_provider.rs`).
#![deny(warnings, clippy::all, unused_qualifications)]

#[path = "common/provider.rs"]
mod provider;

use std::convert::Infallible;
use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use examples::flaky::{Fault, QuotaStyle, RetryAfter, Scenario};
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use llm_resilience::http::HttpError;
use llm_resilience::tower::RetryLayer;
use llm_resilience::{testing, CircuitBreaker, Classify, ErrorKind, Policy, RetryBudget, Wait};
use provider::{hyper_client, hyper_request, provider, reply_text, POLICY};
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt};
use tower_test::mock;

fn request() -> Request<String> {
    Request::post("http://provider.test/v1/chat/completions")
        .body(String::from("{}"))
        .unwrap()
}

fn response(status: u16, body: &str) -> Response<String> {
    Response::builder()
        .status(status)
        .header("x-request-id", "req_mock")
        .body(body.to_owned())
        .unwrap()
}

fn header(request: &Request<impl Sized>, name: &str) -> String {
    request.headers()[name].to_str().unwrap().to_owned()
}

#[tokio::test(start_paused = true)]
async fn a_503_is_retried_with_one_idempotency_key() {
    let (service, mut handle) = mock::pair::<Request<String>, Response<String>>();
    let service = RetryLayer::new(Policy::new().max_attempts(3)).layer(service);
    let call = tokio::spawn(service.oneshot(request()));
    let mut seen = Vec::new();
    for status in [503, 503, 200] {
        let (request, reply) = handle.next_request().await.unwrap();
        seen.push((
            header(&request, "idempotency-key"),
            header(&request, "x-retry-count"),
        ));
        reply.send_response(response(status, "{}"));
    }
    let response = call.await.unwrap().unwrap();
    assert_eq!(response.status(), 200);
    assert!(seen.iter().all(|(key, _)| *key == seen[0].0), "{seen:?}");
    let counts: Vec<&str> = seen.iter().map(|(_, count)| count.as_str()).collect();
    assert_eq!(counts, ["0", "1", "2"]);
    assert!(handle.next_request().await.is_none(), "no fourth attempt");
}

#[tokio::test]
async fn a_key_the_caller_set_is_kept() {
    let (service, mut handle) = mock::pair::<Request<String>, Response<String>>();
    let service = RetryLayer::new(Policy::new().wait(Wait::none())).layer(service);
    let mut keyed = request();
    keyed
        .headers_mut()
        .insert("idempotency-key", "mine".parse().unwrap());
    let call = tokio::spawn(service.oneshot(keyed));
    for status in [500, 200] {
        let (request, reply) = handle.next_request().await.unwrap();
        assert_eq!(header(&request, "idempotency-key"), "mine");
        reply.send_response(response(status, "{}"));
    }
    call.await.unwrap().unwrap();
}

#[tokio::test]
async fn permanent_failures_are_sent_once() {
    let quota = r#"{"error": {"type": "insufficient_quota", "code": "insufficient_quota"}}"#;
    for (status, body, kind) in [
        (400, "{}", ErrorKind::Client),
        (401, "{}", ErrorKind::Auth),
        (404, "{}", ErrorKind::Client),
        (429, quota, ErrorKind::Quota),
    ] {
        let (service, mut handle) = mock::pair::<Request<String>, Response<String>>();
        let service = RetryLayer::new(Policy::new().wait(Wait::none())).layer(service);
        let call = tokio::spawn(service.oneshot(request()));
        let (_, reply) = handle.next_request().await.unwrap();
        reply.send_response(response(status, body));
        let error = call.await.unwrap().unwrap_err();
        assert_eq!(error.kind(), kind, "{status}: {error}");
        assert_eq!(error.status().map(|s| s.as_u16()), Some(status));
        assert_eq!(error.request_id(), Some("req_mock"));
        assert!(!error.is_not_replayable());
        assert!(handle.next_request().await.is_none(), "{status} sent again");
    }
}

#[tokio::test]
async fn the_services_errors_are_classified() {
    let (service, mut handle) = mock::pair::<Request<String>, Response<String>>();
    let service = RetryLayer::new(Policy::new().max_attempts(5).wait(Wait::none())).layer(service);
    let call = tokio::spawn(service.oneshot(request()));
    // A reset connection is retried; an error of no known kind is not.
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_error(io::Error::from(io::ErrorKind::ConnectionReset));
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_error("the model returned nonsense");
    let error = call.await.unwrap().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Other);
    assert_eq!(
        error.to_string(),
        "Other error: the model returned nonsense"
    );
    assert!(handle.next_request().await.is_none());
}

#[tokio::test]
async fn a_streaming_body_is_sent_once_and_the_error_says_so() {
    type Stream = BoxBody<Bytes, Infallible>;
    let body = || Full::new(Bytes::from_static(b"{}")).boxed();
    for (status, said) in [(503, true), (400, false)] {
        let (service, mut handle) = mock::pair::<Request<Stream>, Response<String>>();
        let service = RetryLayer::new(Policy::new().wait(Wait::none())).layer(service);
        let streamed = Request::post("http://provider.test/v1/files")
            .body(body())
            .unwrap();
        let call = tokio::spawn(service.oneshot(streamed));
        let (request, reply) = handle.next_request().await.unwrap();
        assert_eq!(header(&request, "x-retry-count"), "0");
        reply.send_response(response(status, "busy"));
        let error = call.await.unwrap().unwrap_err();
        assert!(handle.next_request().await.is_none(), "{status} sent again");
        // A 503 would have been retried: the error says why it was not. A
        // 400 would not have been, and says nothing of it.
        assert_eq!(error.is_not_replayable(), said, "{error}");
        assert_eq!(error.to_string().contains("sent once"), said, "{error}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_hung_attempt_is_cut_off_and_retried() {
    let (service, mut handle) = mock::pair::<Request<String>, Response<String>>();
    let policy = Policy::new()
        .wait(Wait::none())
        .attempt_timeout(Duration::from_secs(10));
    let service = RetryLayer::new(policy).layer(service);
    let call = tokio::spawn(service.oneshot(request()));
    let (_, hung) = handle.next_request().await.unwrap(); // never answered
    let (request, reply) = handle.next_request().await.unwrap();
    assert_eq!(header(&request, "x-retry-count"), "1");
    reply.send_response(response(200, "{}"));
    assert_eq!(call.await.unwrap().unwrap().status(), 200);
    drop(hung);
}

#[tokio::test]
async fn an_open_breaker_refuses_without_sending() {
    let breaker = Arc::new(CircuitBreaker::new());
    breaker.isolate();
    let (service, mut handle) = mock::pair::<Request<String>, Response<String>>();
    let service = RetryLayer::new(Policy::new())
        .breaker(Arc::clone(&breaker))
        .layer(service);
    let error = service.oneshot(request()).await.unwrap_err();
    assert!(error.circuit_open().is_some_and(|open| open.is_isolated()));
    assert_eq!(error.kind(), ErrorKind::Overloaded);
    assert!(!error.is_not_replayable());
    assert!(handle.next_request().await.is_none(), "nothing was sent");
}

#[tokio::test]
async fn the_budget_caps_the_layers_retries() {
    static BUDGET: RetryBudget = RetryBudget::new().ratio(0.0).min_retries_per_second(0);
    let (service, mut handle) = mock::pair::<Request<String>, Response<String>>();
    let service = RetryLayer::new(Policy::new().wait(Wait::none()))
        .budget(&BUDGET)
        .layer(service);
    let call = tokio::spawn(service.oneshot(request()));
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_response(response(503, "busy"));
    assert_eq!(
        call.await.unwrap().unwrap_err().kind(),
        ErrorKind::Overloaded
    );
    assert!(
        handle.next_request().await.is_none(),
        "an empty budget allows no retry"
    );
}

/// A `tower::retry` policy that retries errors while its budget allows.
#[derive(Clone)]
struct WhileBudget(Arc<RetryBudget>);

impl<Req: Clone, Res, E> tower::retry::Policy<Req, Res, E> for WhileBudget {
    type Future = std::future::Ready<()>;

    fn retry(&mut self, _: &mut Req, result: &mut Result<Res, E>) -> Option<Self::Future> {
        use tower::retry::budget::Budget;
        match result {
            Ok(_) => None,
            Err(_) => self.0.withdraw().then(|| std::future::ready(())),
        }
    }

    fn clone_request(&mut self, request: &Req) -> Option<Req> {
        Some(request.clone())
    }
}

#[tokio::test]
async fn retry_budget_is_towers_budget_too() {
    use tower::retry::budget::Budget;
    // Half a retry per call; the same budget caps tower's retries and the
    // layer's.
    let budget = Arc::new(RetryBudget::new().ratio(0.5).min_retries_per_second(0));
    let attempts = Arc::new(AtomicU32::new(0));
    let down = {
        let attempts = Arc::clone(&attempts);
        tower::service_fn(move |_: String| {
            attempts.fetch_add(1, Ordering::SeqCst);
            std::future::ready(Err::<String, BoxError>("down".into()))
        })
    };
    let mut service = tower::retry::RetryLayer::new(WhileBudget(Arc::clone(&budget))).layer(down);
    for _ in 0..4 {
        budget.deposit(); // one call
        let result = service
            .ready()
            .await
            .unwrap()
            .call("hello".to_owned())
            .await;
        assert!(result.is_err());
    }
    // 4 calls, and the 2 retries that half a retry per call allows.
    assert_eq!(attempts.load(Ordering::SeqCst), 6);
    assert_eq!(budget.available(), 0);

    // The layer finds the budget spent.
    let (mock, mut handle) = mock::pair::<Request<String>, Response<String>>();
    let layered = RetryLayer::new(Policy::new().wait(Wait::none()))
        .budget(Arc::clone(&budget))
        .layer(mock);
    let call = tokio::spawn(layered.oneshot(request()));
    let (_, reply) = handle.next_request().await.unwrap();
    reply.send_response(response(500, ""));
    assert!(call.await.unwrap().is_err());
    // Its own call earned half a retry, which rounds down to none.
    assert!(handle.next_request().await.is_none());
}

/// hyper's client under the layer. Its error type does not classify itself;
/// boxed, it classifies by its chain (a reset socket, a connection hyper saw
/// close).
fn hyper_service(
) -> impl Service<Request<Full<Bytes>>, Response = Response<hyper::body::Incoming>, Error = HttpError>
       + Clone {
    ServiceBuilder::new()
        .layer(RetryLayer::new(POLICY))
        .map_err(|e: hyper_util::client::legacy::Error| BoxError::from(e))
        .service(hyper_client())
}

async fn hyper_chat(url: &str, user: &str) -> Result<String, HttpError> {
    let response = hyper_service().oneshot(hyper_request(url, user)).await?;
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(HttpError::from_error)?;
    Ok(reply_text(&body.to_bytes()))
}

#[tokio::test]
async fn over_http_retry_after_is_honoured_in_every_form() {
    let forms = [
        (RetryAfter::Millis(50.0), Duration::from_millis(50)),
        (RetryAfter::Seconds(1.0), Duration::from_secs(1)),
        (
            RetryAfter::OpenAiReset(Duration::from_millis(20)),
            Duration::from_millis(20),
        ),
    ];
    for (form, asked) in forms {
        let server = provider(Scenario::FailFirst {
            failures: 1,
            fault: Fault::RateLimit(form),
        });
        let sleeps = testing::skip_sleeps();
        let reply = hyper_chat(&server.chat_completions_url(), "u").await;
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
async fn over_http_permanent_failures_are_sent_once() {
    let cases = [
        (Fault::Status(400), ErrorKind::Client),
        (Fault::Status(401), ErrorKind::Auth),
        (Fault::Status(403), ErrorKind::Auth),
        (Fault::Quota(QuotaStyle::OpenAi), ErrorKind::Quota),
        (Fault::Quota(QuotaStyle::Anthropic), ErrorKind::Quota),
    ];
    for (fault, kind) in cases {
        let server = provider(Scenario::Always(fault));
        let error = hyper_chat(&server.chat_completions_url(), "u")
            .await
            .unwrap_err();
        assert_eq!(error.kind(), kind, "{fault:?}: {error}");
        assert_eq!(server.requests().len(), 1, "{fault:?} was sent again");
        assert!(
            error.request_id().is_some_and(|id| id.starts_with("req_")),
            "{error}"
        );
    }
}

#[tokio::test]
async fn over_http_one_idempotency_key_per_call() {
    let server = provider(Scenario::FailFirst {
        failures: 2,
        fault: Fault::Status(503),
    });
    let _sleeps = testing::skip_sleeps();
    for user in ["first", "second"] {
        let reply = hyper_chat(&server.chat_completions_url(), user)
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
async fn over_http_dropped_and_slow_answers_are_billed_once() {
    for fault in [
        Fault::DropAfterProcessing,
        Fault::Slow(Duration::from_secs(5)),
    ] {
        let server = provider(Scenario::FailFirst { failures: 1, fault });
        let _sleeps = testing::skip_sleeps();
        let reply = hyper_chat(&server.chat_completions_url(), "keyed")
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

#[tokio::test]
async fn over_http_a_chaos_run_bills_nothing_twice() {
    const CALLS: usize = 200;
    let server = provider(Scenario::Chaos {
        seed: 11,
        fault_rate: 0.3,
    });
    let url = server.chat_completions_url();
    let service = hyper_service();
    let _sleeps = testing::skip_sleeps();
    let mut outcomes = Vec::new();
    for chunk in 0..CALLS / 20 {
        let calls = (0..20).map(|i| {
            let request = hyper_request(&url, &format!("chaos-{chunk}-{i}"));
            service.clone().oneshot(request)
        });
        for outcome in futures_util::future::join_all(calls).await {
            outcomes.push(outcome.map(|_| ()).map_err(|e| e.kind()));
        }
    }
    let stats = server.stats();
    assert_eq!(stats.billed_twice, 0, "{stats:?}");
    for failure in outcomes.iter().filter_map(|o| o.as_ref().err()) {
        assert_ne!(*failure, ErrorKind::Other, "every failure is classified");
    }
    let succeeded = outcomes.iter().filter(|o| o.is_ok()).count();
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
async fn reqwest_client_as_the_service() {
    let server = provider(Scenario::FailFirst {
        failures: 2,
        fault: Fault::Status(529),
    });
    let client = reqwest::Client::new();
    let service = RetryLayer::new(POLICY).layer(client.clone());
    let request = client
        .post(server.chat_completions_url())
        .header("content-type", "application/json")
        .body(provider::chat_body("reqwest"))
        .build()
        .unwrap();
    let _sleeps = testing::skip_sleeps();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(
        reply_text(&response.bytes().await.unwrap()),
        "hello from reqwest"
    );
    let seen = server.requests();
    assert_eq!(seen.len(), 3);
    assert!(seen
        .iter()
        .all(|r| r.idempotency_key == seen[0].idempotency_key));
    assert_eq!(server.stats().billed_twice, 0);
}
