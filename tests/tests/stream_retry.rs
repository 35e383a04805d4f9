//! Streamed calls retried through `Policy::stream` / `Hooks::stream` over
//! real HTTP against the flaky provider, in both formats: every fault before
//! the first content event is retried; every interruption after it is a
//! classified error item (never a clean end); restart and resume; a consumer
//! that drops the stream; a chaos run.
#![deny(warnings, clippy::all, unused_qualifications)]

#[path = "common/provider.rs"]
mod common;

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::time::Duration;

use common::{keys, provider, reqwest_client as client};
use examples::flaky::{Fault, FlakyProvider, RetryAfter, Scenario, StreamFault};
use futures_util::{Stream, StreamExt};
use llm_resilience::http::check;
use llm_resilience::stream::{
    Anthropic, EventFormat, OnInterrupt, OpenAi, Received, RetriedStream, StreamError,
    StreamFailure, StreamItem, StreamOptions,
};
use llm_resilience::{
    attempt, AdaptiveLimiter, BreakerState, CircuitBreaker, CircuitOpen, Classify, ErrorKind,
    Jitter, Policy, RetryBudget, Wait,
};
use serde_json::{json, Value};

type Error = Box<dyn StdError + Send + Sync>;
type Format = std::sync::Arc<dyn EventFormat + Send + Sync>;

/// The provider echoes the prompt in six content events.
const PROMPT: &str = "one two three four five six";

/// How long anything that is not meant to stall may take.
const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    OpenAi,
    Anthropic,
}

const APIS: [Api; 2] = [Api::OpenAi, Api::Anthropic];

impl Api {
    fn url(self, provider: &FlakyProvider) -> String {
        match self {
            Api::OpenAi => provider.chat_completions_url(),
            Api::Anthropic => provider.messages_url(),
        }
    }

    fn format(self) -> Format {
        match self {
            Api::OpenAi => std::sync::Arc::new(OpenAi),
            Api::Anthropic => std::sync::Arc::new(Anthropic),
        }
    }

    fn body(self, prompt: &str) -> Value {
        let mut body = json!({
            "model": "test-model",
            "stream": true,
            "messages": [{"role": "user", "content": prompt}],
        });
        if self == Api::Anthropic {
            body["max_tokens"] = json!(256);
        }
        body
    }
}

fn twice(fault: Fault) -> Scenario {
    Scenario::FailFirst { failures: 2, fault }
}

fn stream_fault(fault: StreamFault) -> Fault {
    Fault::Stream(fault)
}

/// Short timeouts: the provider's stalls last seconds.
const OPTIONS: StreamOptions = StreamOptions::new()
    .first_event_timeout(Duration::from_millis(300))
    .idle_timeout(Duration::from_millis(300));

const POLICY: Policy = Policy::new()
    .max_attempts(4)
    .wait(Wait::fixed(Duration::from_millis(1)))
    .jitter(Jitter::None)
    .retry_after_cap(Duration::from_secs(2));

/// Sends `prompt` to `url` with the call's idempotency key (or `key`).
async fn send(
    client: reqwest::Client,
    url: String,
    body: Value,
    key: Option<String>,
) -> Result<impl Stream<Item = reqwest::Result<bytes::Bytes>> + Send, Error> {
    let key = key.unwrap_or_else(|| attempt().idempotency_key().to_string());
    let response = client
        .post(url)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await?;
    Ok(check(response).await?.bytes_stream())
}

/// Opens a streamed call of `api` against `provider` under `policy`.
async fn open<'p>(
    policy: &'p Policy,
    options: StreamOptions,
    provider: &FlakyProvider,
    api: Api,
) -> Result<RetriedStream<'p, Error>, Error> {
    let client = client();
    let url = api.url(provider);
    tokio::time::timeout(
        PATIENCE,
        policy.stream(options, api.format(), move |_: &Received| {
            send(client.clone(), url.clone(), api.body(PROMPT), None)
        }),
    )
    .await
    .expect("the stream opens in time")
}

/// What a stream came to.
#[derive(Debug, Default)]
struct Read {
    content: Vec<String>,
    restarts: usize,
    /// Content before the last restart.
    discarded: usize,
    error: Option<Error>,
    /// Items after the error (there must be none).
    after_error: usize,
}

impl Read {
    fn text(&self) -> String {
        self.content.concat()
    }

    fn stream_error(&self) -> &StreamError {
        self.error
            .as_deref()
            .and_then(find_stream_error)
            .expect("a stream error")
    }
}

async fn read_all<E>(mut stream: RetriedStream<'_, E>) -> Read
where
    E: Into<Error> + Classify + From<StreamError>,
{
    let mut read = Read::default();
    loop {
        let next = tokio::time::timeout(PATIENCE, stream.next())
            .await
            .expect("the stream ends in time");
        match next {
            Some(Ok(StreamItem::Content(text))) => {
                assert!(read.error.is_none());
                read.content.push(text);
                assert_eq!(stream.delivered(), read.content.len() as u64);
            }
            Some(Ok(StreamItem::Restarted)) => {
                read.restarts += 1;
                read.discarded += read.content.len();
                read.content.clear();
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                if read.error.is_some() {
                    read.after_error += 1;
                }
                read.error = Some(error.into());
            }
            None => break,
        }
    }
    read
}

/// The `StreamError` in an error's chain.
fn find_stream_error<'e>(
    error: &'e (dyn StdError + Send + Sync + 'static),
) -> Option<&'e StreamError> {
    let mut next: Option<&(dyn StdError + 'static)> = Some(error);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<StreamError>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

fn assert_complete(read: &Read, what: &str) {
    assert!(read.error.is_none(), "{what}: {:?}", read.error);
    assert_eq!(read.text(), PROMPT, "{what}");
}

#[tokio::test]
async fn every_fault_before_the_first_event_is_retried_in_both_formats() {
    let scenarios = [
        (
            "stream-error-first",
            Scenario::from_name("stream-error-first").unwrap(),
        ),
        (
            "stream-stall-first",
            Scenario::from_name("stream-stall-first").unwrap(),
        ),
        (
            "ends-before-content",
            twice(stream_fault(StreamFault::EndEarly { after: 0 })),
        ),
        (
            "drop-before-content",
            twice(stream_fault(StreamFault::Drop { after: 0 })),
        ),
        ("503", twice(Fault::Status(503))),
        ("529", twice(Fault::Status(529))),
        ("500", twice(Fault::Status(500))),
        ("429", twice(Fault::RateLimit(RetryAfter::Millis(5.0)))),
        ("dropped connection", twice(Fault::DropAfterProcessing)),
        ("slow answer", twice(Fault::Slow(Duration::from_secs(3)))),
    ];
    for (name, scenario) in scenarios {
        for api in APIS {
            let provider = provider(scenario.clone());
            let stream = open(&POLICY, OPTIONS, &provider, api).await;
            let stream = stream.unwrap_or_else(|e| panic!("{name} {api:?}: {e}"));
            let read = read_all(stream).await;
            assert_complete(&read, name);
            assert_eq!(read.restarts, 0);
            let sent = keys(&provider);
            assert!(sent.len() >= 2, "{name} {api:?}: retried");
            assert!(sent.iter().all(|k| *k == sent[0]), "one idempotency key");
            if name != "stream-error-first" {
                // An error event says the work failed: the provider bills the
                // retry again. Anything else is replayed or was never done.
                assert_eq!(provider.stats().billed_twice, 0, "{name} {api:?}");
            }
        }
    }
}

#[tokio::test]
async fn a_call_that_never_gets_content_gives_up_with_the_classified_error() {
    for api in APIS {
        let provider = provider(Scenario::Always(stream_fault(StreamFault::ErrorEvent {
            after: 0,
            status: 529,
        })));
        let error = open(&POLICY, OPTIONS, &provider, api).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Overloaded);
        let error = error.downcast_ref::<StreamError>().unwrap();
        assert!(error.is_before_content());
        assert_eq!(provider.requests().len(), 4, "max_attempts");

        let provider = provider_of(Fault::Status(400));
        let error = open(&POLICY, OPTIONS, &provider, api).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Client);
        assert_eq!(provider.requests().len(), 1, "never retried");
    }
}

fn provider_of(fault: Fault) -> FlakyProvider {
    provider(Scenario::Always(fault))
}

/// The faults after three content events, and what they are classified as.
fn interruptions() -> Vec<(&'static str, Fault, ErrorKind)> {
    vec![
        (
            "error event (500)",
            stream_fault(StreamFault::ErrorEvent {
                after: 3,
                status: 500,
            }),
            ErrorKind::Server,
        ),
        (
            "error event (overloaded_error)",
            stream_fault(StreamFault::ErrorEvent {
                after: 3,
                status: 529,
            }),
            ErrorKind::Overloaded,
        ),
        (
            "stall",
            stream_fault(StreamFault::Stall {
                after: 3,
                stall: Duration::from_secs(3),
            }),
            ErrorKind::Timeout,
        ),
        (
            "truncated",
            stream_fault(StreamFault::EndEarly { after: 3 }),
            ErrorKind::Network,
        ),
        (
            "drop",
            stream_fault(StreamFault::Drop { after: 3 }),
            ErrorKind::Network,
        ),
    ]
}

#[tokio::test]
async fn an_interruption_after_content_is_a_classified_error_item_in_both_formats() {
    for (name, fault, kind) in interruptions() {
        for api in APIS {
            let provider = provider_of(fault);
            let stream = open(&POLICY, OPTIONS, &provider, api).await.unwrap();
            let read = read_all(stream).await;
            assert_eq!(read.content.len(), 3, "{name} {api:?}");
            assert_eq!(read.after_error, 0);
            let error = read.stream_error();
            assert_eq!(error.kind(), kind, "{name} {api:?}: {error}");
            assert_eq!(error.delivered(), 3, "{name} {api:?}");
            if kind == ErrorKind::Overloaded {
                let provider_error = error.provider_error().unwrap();
                assert_eq!(provider_error.error_type(), Some("overloaded_error"));
            }
            // Not retried by default: one request.
            assert_eq!(provider.requests().len(), 1, "{name} {api:?}");
            assert_eq!(provider.stats().billed_twice, 0);
        }
    }
}

#[tokio::test]
async fn a_whole_stream_deadline_interrupts_a_slow_stream() {
    for api in APIS {
        let provider = provider_of(stream_fault(StreamFault::SlowTokens(
            Duration::from_millis(60),
        )));
        let options = OPTIONS.stream_deadline(Duration::from_millis(150));
        let stream = open(&POLICY, options, &provider, api).await.unwrap();
        let read = read_all(stream).await;
        let error = read.stream_error();
        assert!(
            matches!(error.failure(), StreamFailure::StreamDeadline(_)),
            "{error}"
        );
        assert_eq!(error.kind(), ErrorKind::Timeout);
        assert_eq!(error.delivered(), read.content.len() as u64);
        assert!(read.content.len() < 6);
    }
}

#[tokio::test]
async fn restart_signals_then_streams_the_whole_answer_again_in_both_formats() {
    let options = OPTIONS.on_interrupt(OnInterrupt::Restart);
    for (name, fault, _) in interruptions() {
        for api in APIS {
            let provider = provider(Scenario::FailFirst { failures: 1, fault });
            let stream = open(&POLICY, options, &provider, api).await.unwrap();
            let read = read_all(stream).await;
            assert_complete(&read, name);
            assert_eq!((read.restarts, read.discarded), (1, 3), "{name} {api:?}");
            let sent = keys(&provider);
            assert_eq!(sent.len(), 2, "{name} {api:?}");
            assert_eq!(sent[0], sent[1], "a restart keeps the idempotency key");
            if !name.starts_with("error event") {
                // The stored answer is replayed: billed once.
                assert_eq!(provider.stats().billed_twice, 0, "{name} {api:?}");
                assert_eq!(provider.stats().replayed, 1, "{name} {api:?}");
            }
        }
    }
}

#[tokio::test]
async fn restarts_count_against_max_attempts() {
    let policy = POLICY.max_attempts(3);
    let options = OPTIONS.on_interrupt(OnInterrupt::Restart);
    for api in APIS {
        let provider = provider_of(stream_fault(StreamFault::ErrorEvent {
            after: 3,
            status: 500,
        }));
        let stream = open(&policy, options, &provider, api).await.unwrap();
        let read = read_all(stream).await;
        assert_eq!(read.restarts, 2);
        assert_eq!(read.stream_error().kind(), ErrorKind::Server);
        assert_eq!(read.stream_error().delivered(), 3);
        assert_eq!(provider.requests().len(), 3);
    }
}

#[tokio::test]
async fn resume_continues_from_what_was_received_in_both_formats() {
    let options = OPTIONS.on_interrupt(OnInterrupt::Resume);
    for (name, fault, _) in interruptions() {
        for api in APIS {
            // The first request meets the fault; the continuation goes to a
            // healthy replica, with a key of its own.
            let broken = provider_of(fault);
            let healthy = provider(Scenario::Healthy);
            let client = client();
            let (first, second) = (api.url(&broken), api.url(&healthy));
            let stream = policy_stream(&POLICY, options, api, move |received: &Received| {
                let key = attempt().idempotency_key().to_string();
                if received.is_resume() {
                    let rest = PROMPT[received.text().len()..].to_owned();
                    let key = format!("{key}-resume-{}", received.resumes());
                    send(client.clone(), second.clone(), api.body(&rest), Some(key))
                } else {
                    send(client.clone(), first.clone(), api.body(PROMPT), Some(key))
                }
            })
            .await
            .unwrap();
            let read = read_all(stream).await;
            assert_complete(&read, name);
            assert_eq!(read.restarts, 0);
            assert_eq!(broken.requests().len(), 1, "{name} {api:?}");
            assert_eq!(healthy.requests().len(), 1, "{name} {api:?}");
            let original = keys(&broken).remove(0);
            assert_eq!(keys(&healthy), [format!("{original}-resume-1")]);
            assert_eq!(
                broken.stats().billed_twice + healthy.stats().billed_twice,
                0
            );
        }
    }
}

async fn policy_stream<'p, O, Fut, S>(
    policy: &'p Policy,
    options: StreamOptions,
    api: Api,
    open: O,
) -> Result<RetriedStream<'p, Error>, Error>
where
    O: FnMut(&Received) -> Fut + Send + 'p,
    Fut: std::future::Future<Output = Result<S, Error>> + Send + 'p,
    S: Stream<Item = reqwest::Result<bytes::Bytes>> + Send + 'p,
{
    tokio::time::timeout(PATIENCE, policy.stream(options, api.format(), open))
        .await
        .expect("the stream opens in time")
}

/// The error of a call under a breaker: `Box<dyn Error>` has no
/// `From<CircuitOpen>` of its own, so a wrapper that does.
#[derive(Debug)]
struct Guarded(Error);

impl std::fmt::Display for Guarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for Guarded {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&*self.0)
    }
}

impl Classify for Guarded {
    fn kind(&self) -> ErrorKind {
        self.0.kind()
    }
}

impl From<CircuitOpen> for Guarded {
    fn from(open: CircuitOpen) -> Self {
        Guarded(Box::new(open))
    }
}

impl From<llm_resilience::Elapsed> for Guarded {
    fn from(e: llm_resilience::Elapsed) -> Self {
        Guarded(e.into())
    }
}

impl From<StreamError> for Guarded {
    fn from(e: StreamError) -> Self {
        Guarded(Box::new(e))
    }
}

impl From<Error> for Guarded {
    fn from(e: Error) -> Self {
        Guarded(e)
    }
}

/// Opens a stream of `api` under `breaker`, `budget` and `limiter`.
async fn guarded<'p>(
    policy: &'p Policy,
    breaker: &'p CircuitBreaker,
    budget: &'p RetryBudget,
    limiter: &'p AdaptiveLimiter,
    options: StreamOptions,
    provider: &FlakyProvider,
    api: Api,
) -> Result<RetriedStream<'p, Guarded>, Guarded> {
    let client = client();
    let url = api.url(provider);
    let hooks = policy.breaker(breaker).budget(budget).limiter(limiter);
    let open = hooks.stream(options, api.format(), move |_: &Received| {
        let (client, url) = (client.clone(), url.clone());
        async move { Ok::<_, Guarded>(send(client, url, api.body(PROMPT), None).await?) }
    });
    tokio::time::timeout(PATIENCE, open).await.unwrap()
}

#[tokio::test]
async fn interruptions_after_content_are_reported_to_the_breaker() {
    for api in APIS {
        let breaker = CircuitBreaker::new().consecutive_failures(2);
        let budget = RetryBudget::new();
        let limiter = AdaptiveLimiter::new();
        let provider = provider_of(stream_fault(StreamFault::Drop { after: 3 }));
        for _ in 0..2 {
            let stream = guarded(
                &POLICY, &breaker, &budget, &limiter, OPTIONS, &provider, api,
            );
            let read = read_all(stream.await.unwrap()).await;
            assert_eq!(read.stream_error().delivered(), 3);
        }
        // Each stream's first event was a success; each interruption a
        // failure: two in a row open the breaker.
        assert!(matches!(breaker.state(), BreakerState::Open { .. }));
        let refused = guarded(
            &POLICY, &breaker, &budget, &limiter, OPTIONS, &provider, api,
        )
        .await
        .unwrap_err();
        assert!(
            refused.0.downcast_ref::<CircuitOpen>().is_some(),
            "{refused}"
        );
        assert_eq!(provider.requests().len(), 2, "refused without sending");
    }
}

#[tokio::test]
async fn dropping_the_consumer_mid_stream_leaves_the_guards_consistent() {
    for api in APIS {
        let breaker = CircuitBreaker::new().consecutive_failures(3);
        let budget = RetryBudget::new();
        let limiter = AdaptiveLimiter::new();
        let before = budget.available();
        // Mid-stream, after two tokens.
        let slow = provider_of(stream_fault(StreamFault::SlowTokens(
            Duration::from_millis(20),
        )));
        for _ in 0..5 {
            let mut stream = guarded(&POLICY, &breaker, &budget, &limiter, OPTIONS, &slow, api)
                .await
                .unwrap();
            let _first = stream.next().await.unwrap().unwrap();
            let _second = stream.next().await.unwrap().unwrap();
            drop(stream);
        }
        // While a restart is waiting for its first event.
        let options = OPTIONS.on_interrupt(OnInterrupt::Restart);
        let stalls = provider(Scenario::FailFirst {
            failures: 1,
            fault: stream_fault(StreamFault::Drop { after: 3 }),
        });
        let mut stream = guarded(&POLICY, &breaker, &budget, &limiter, options, &stalls, api)
            .await
            .unwrap();
        for _ in 0..3 {
            stream.next().await.unwrap().unwrap();
        }
        drop(stream);
        // While the first attempt waits for its first event.
        let stall = provider_of(stream_fault(StreamFault::Stall {
            after: 0,
            stall: Duration::from_secs(3),
        }));
        let waiting = guarded(&POLICY, &breaker, &budget, &limiter, OPTIONS, &stall, api);
        assert!(tokio::time::timeout(Duration::from_millis(50), waiting)
            .await
            .is_err());

        assert_eq!(breaker.state(), BreakerState::Closed);
        assert!(budget.available() >= before, "no retry was spent");
        assert_eq!(limiter.rate(), None, "the limiter never slowed down");
        // The guards still let calls through, and those complete.
        let healthy = provider(Scenario::Healthy);
        for _ in 0..3 {
            let stream = guarded(&POLICY, &breaker, &budget, &limiter, OPTIONS, &healthy, api);
            let read = read_all(stream.await.unwrap()).await;
            assert_complete(&read, "after drops");
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
    }
}

/// How each streamed call of the chaos run ended.
#[derive(Debug, Default)]
struct Tally {
    complete: u64,
    /// Ended cleanly, but without the whole answer: must stay 0.
    silently_truncated: u64,
    gave_up_before_content: u64,
    interrupted: BTreeMap<String, u64>,
    unclassified: u64,
}

#[tokio::test(flavor = "current_thread")]
async fn chaos_run_of_500_streamed_calls_has_no_silent_truncation() {
    let _sleeps = llm_resilience::testing::skip_sleeps();
    let providers: Vec<FlakyProvider> = vec![
        provider(Scenario::Chaos {
            seed: 7,
            fault_rate: 0.3,
        }),
        provider(Scenario::Healthy),
        provider(Scenario::FailFirst {
            failures: 1,
            fault: stream_fault(StreamFault::Stall {
                after: 0,
                stall: Duration::from_secs(3),
            }),
        }),
        provider(Scenario::FailFirst {
            failures: 1,
            fault: stream_fault(StreamFault::Drop { after: 0 }),
        }),
    ]
    .into_iter()
    .chain(
        interruptions()
            .into_iter()
            .map(|(_, fault, _)| provider(Scenario::FailFirst { failures: 1, fault })),
    )
    .collect();
    let policy = POLICY.max_attempts(5);
    // Timeouts well above what a loaded machine takes to answer: a retry
    // after an answer that was merely slow bills an error event again.
    let options = StreamOptions::new()
        .first_event_timeout(Duration::from_secs(1))
        .idle_timeout(Duration::from_secs(1));
    let calls = (0..520usize).map(|i| {
        let provider = &providers[i % providers.len()];
        let api = APIS[(i / providers.len()) % 2];
        let policy = &policy;
        async move {
            let read = match open(policy, options, provider, api).await {
                Ok(stream) => read_all(stream).await,
                Err(error) => Read {
                    error: Some(error),
                    ..Read::default()
                },
            };
            read
        }
    });
    let reads: Vec<Read> = futures_util::stream::iter(calls)
        .buffer_unordered(24)
        .collect()
        .await;
    let mut tally = Tally::default();
    for read in &reads {
        assert_eq!(read.after_error, 0);
        match &read.error {
            None if read.text() == PROMPT => tally.complete += 1,
            None => tally.silently_truncated += 1,
            Some(error) => match find_stream_error(&**error) {
                Some(e) if e.delivered() > 0 => {
                    assert_eq!(e.delivered(), read.content.len() as u64);
                    if e.kind() == ErrorKind::Other {
                        tally.unclassified += 1;
                    }
                    *tally
                        .interrupted
                        .entry(e.kind().name().to_owned())
                        .or_default() += 1;
                }
                _ => tally.gave_up_before_content += 1,
            },
        }
    }
    eprintln!("{tally:?}");
    assert_eq!(reads.len(), 520);
    assert_eq!(tally.silently_truncated, 0);
    assert_eq!(tally.unclassified, 0);
    assert!(tally.complete > 200, "{tally:?}");
    assert!(!tally.interrupted.is_empty(), "{tally:?}");
    for p in &providers {
        eprintln!("{:?}: {:?}", p.scenario(), p.stats());
    }
    let billed_twice: u64 = providers.iter().map(|p| p.stats().billed_twice).sum();
    assert_eq!(billed_twice, 0);
}
