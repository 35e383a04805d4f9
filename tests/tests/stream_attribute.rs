//! `#[retry(stream = ...)]`: an async fn whose body opens a streamed chat
//! call, retried until its first content event by the same driver as
//! `Policy::stream`. In memory where the provider does not matter, over real
//! HTTP against the flaky provider where it does.
#![deny(warnings, clippy::all, unused_qualifications)]

#[path = "common/provider.rs"]
mod common;

use std::error::Error as StdError;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::{keys, provider, reqwest_client as client};
use examples::flaky::{Fault, Scenario, StreamFault};
use futures_util::stream::{self, BoxStream};
use futures_util::{Stream, StreamExt};
use llm_resilience::http::check;
use llm_resilience::stream::{Anthropic, OpenAi, RetriedStream, StreamError, StreamItem};
use llm_resilience::{attempt, retry, BreakerState, CircuitBreaker, Classify, ErrorKind};
use serde_json::{json, Value};

type Error = Box<dyn StdError + Send + Sync>;

/// The provider echoes the prompt, one word per content event.
const PROMPT: &str = "one two three four five six";

/// How long anything that is not meant to stall may take.
const PATIENCE: Duration = Duration::from_secs(20);

const BODY: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n\
                    data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"}}]}\n\n\
                    data: [DONE]\n\n";

/// The body of the `n`th attempt (from 1): the first ends before any
/// content, the second sends an error event first, the third is whole.
fn body_of(n: u32) -> &'static str {
    match n {
        1 => "",
        2 => "data: {\"error\":{\"message\":\"busy\",\"type\":\"server_error\"}}\n\n",
        _ => BODY,
    }
}

#[retry(max_attempts = 3, wait = none, stream = OpenAi)]
async fn in_memory(attempts: &AtomicU32) -> Result<RetriedStream<'_, Error>, Error> {
    let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
    Ok(stream::iter([Ok::<_, Error>(body_of(n))]))
}

/// Everything a stream yielded: its text, its restarts, its error.
#[derive(Debug, Default)]
struct Read {
    text: String,
    restarts: usize,
    error: Option<Error>,
    items_after_error: usize,
}

async fn read_all<S, E>(stream: S) -> Read
where
    S: Stream<Item = Result<StreamItem, E>>,
    E: Into<Error>,
{
    let mut stream = std::pin::pin!(stream);
    let mut read = Read::default();
    loop {
        let next = tokio::time::timeout(PATIENCE, stream.next())
            .await
            .expect("the stream ends in time");
        match next {
            Some(Ok(StreamItem::Content(text))) => read.text.push_str(&text),
            Some(Ok(StreamItem::Restarted)) => {
                read.restarts += 1;
                read.text.clear();
            }
            Some(Ok(_)) => {}
            Some(Err(error)) => {
                if read.error.is_some() {
                    read.items_after_error += 1;
                }
                read.error = Some(error.into());
            }
            None => return read,
        }
    }
}

fn stream_error(error: &Error) -> &StreamError {
    error
        .downcast_ref::<StreamError>()
        .expect("the error is a StreamError")
}

#[tokio::test]
async fn failures_before_the_first_event_are_retried_in_memory() {
    let attempts = AtomicU32::new(0);
    let stream = in_memory(&attempts).await.unwrap();
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    let read = read_all(stream).await;
    assert_eq!(read.text, "Hi there");
    assert!(read.error.is_none());
}

#[retry(max_attempts = 2, wait = none, stream = OpenAi)]
async fn gives_up(attempts: &AtomicU32) -> Result<RetriedStream<'_, Error>, Error> {
    let n = attempts.fetch_add(1, Ordering::SeqCst) + 1;
    Ok(stream::iter([Ok::<_, Error>(body_of(n))]))
}

#[tokio::test]
async fn max_attempts_bounds_the_wait_for_the_first_event() {
    let attempts = AtomicU32::new(0);
    let error = gives_up(&attempts).await.expect_err("the call gives up");
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    // The last attempt's error: the error event, classified.
    let error = stream_error(&error);
    assert!(error.is_before_content());
    assert_eq!(error.kind(), ErrorKind::Server);
}

fn twice(fault: StreamFault) -> Scenario {
    Scenario::FailFirst {
        failures: 2,
        fault: Fault::Stream(fault),
    }
}

fn openai_body(prompt: &str) -> Value {
    json!({
        "model": "test-model",
        "stream": true,
        "messages": [{"role": "user", "content": prompt}],
    })
}

/// Borrowed arguments, an `impl Stream` success type.
#[retry(
    max_attempts = 4,
    wait = fixed(1ms),
    stream = OpenAi,
    first_event_timeout = 300ms,
    idle_timeout = 300ms
)]
async fn chat<'a>(
    client: &'a reqwest::Client,
    url: &'a str,
    prompt: &'a str,
) -> Result<impl Stream<Item = Result<StreamItem, Error>> + Send + 'a, Error> {
    let response = client
        .post(url)
        .header("idempotency-key", attempt().idempotency_key().to_string())
        .json(&openai_body(prompt))
        .send()
        .await?;
    Ok(check(response).await?.bytes_stream())
}

#[tokio::test]
async fn every_fault_before_the_first_event_is_retried_over_http() {
    let faults = [
        StreamFault::ErrorEvent {
            after: 0,
            status: 529,
        },
        StreamFault::Stall {
            after: 0,
            stall: Duration::from_secs(3),
        },
        StreamFault::EndEarly { after: 0 },
        StreamFault::Drop { after: 0 },
    ];
    for fault in faults {
        let provider = provider(twice(fault));
        let (client, url) = (client(), provider.chat_completions_url());
        let stream = tokio::time::timeout(PATIENCE, chat(&client, &url, PROMPT))
            .await
            .expect("in time")
            .unwrap_or_else(|e| panic!("{fault:?}: {e}"));
        let read = read_all(stream).await;
        assert_eq!(read.text.trim(), PROMPT, "{fault:?}");
        assert!(read.error.is_none(), "{fault:?}: {:?}", read.error);
        let keys = keys(&provider);
        assert!(keys.len() >= 2, "{fault:?}: retried");
        assert!(keys.iter().all(|k| *k == keys[0]), "one key per call");
        if !matches!(fault, StreamFault::ErrorEvent { .. }) {
            // An error event says the work failed, and the provider bills
            // its retry again; anything else is replayed or never done.
            assert_eq!(provider.stats().billed_twice, 0, "{fault:?}");
        }
    }
}

#[tokio::test]
async fn an_interruption_after_content_is_a_classified_last_item() {
    let provider = provider(Scenario::Always(Fault::Stream(StreamFault::ErrorEvent {
        after: 2,
        status: 529,
    })));
    let (client, url) = (client(), provider.chat_completions_url());
    let stream = chat(&client, &url, PROMPT).await.unwrap();
    let read = read_all(stream).await;
    assert_eq!(read.text, "one two ");
    let error = read.error.as_ref().expect("never a clean end");
    assert_eq!(stream_error(error).kind(), ErrorKind::Overloaded);
    assert_eq!(stream_error(error).delivered(), 2);
    assert_eq!(read.items_after_error, 0);
    assert_eq!(provider.requests().len(), 1, "not retried by default");
}

/// Owned arguments, a boxed success type, restarts.
#[retry(max_attempts = 3, wait = fixed(1ms), stream = Anthropic, idle_timeout = 300ms, on_interrupt = restart)]
async fn chat_restarting(
    client: reqwest::Client,
    url: String,
) -> Result<BoxStream<'static, Result<StreamItem, Error>>, Error> {
    let mut body = openai_body(PROMPT);
    body["max_tokens"] = json!(256);
    let response = client
        .post(url)
        .header("idempotency-key", attempt().idempotency_key().to_string())
        .json(&body)
        .send()
        .await?;
    Ok(check(response).await?.bytes_stream())
}

#[tokio::test]
async fn restart_sends_the_same_request_again_after_the_function_returned() {
    for fault in [
        StreamFault::EndEarly { after: 2 },
        StreamFault::Drop { after: 3 },
        StreamFault::Stall {
            after: 1,
            stall: Duration::from_secs(3),
        },
    ] {
        let provider = provider(Scenario::FailFirst {
            failures: 1,
            fault: Fault::Stream(fault),
        });
        let stream = chat_restarting(client(), provider.messages_url())
            .await
            .unwrap();
        let read = read_all(stream).await;
        assert_eq!(read.restarts, 1, "{fault:?}");
        assert_eq!(read.text.trim(), PROMPT, "{fault:?}");
        assert!(read.error.is_none(), "{fault:?}");
        let keys = keys(&provider);
        assert_eq!(keys.len(), 2, "{fault:?}");
        assert_eq!(keys[0], keys[1], "a restart keeps the call's key");
    }
}

/// Resumes: the body sees what was received.
#[retry(max_attempts = 3, wait = none, stream = OpenAi, idle_timeout = 300ms, on_interrupt = resume(received))]
async fn chat_resuming(
    client: reqwest::Client,
    broken: String,
    healthy: String,
) -> Result<Pin<Box<dyn Stream<Item = Result<StreamItem, Error>> + Send>>, Error> {
    let (url, prompt) = if received.is_resume() {
        (healthy, PROMPT[received.text().len()..].to_owned())
    } else {
        (broken, PROMPT.to_owned())
    };
    let response = client.post(url).json(&openai_body(&prompt)).send().await?;
    Ok(check(response).await?.bytes_stream())
}

#[tokio::test]
async fn resume_builds_the_continuation_from_what_was_received() {
    let broken = provider(Scenario::Always(Fault::Stream(StreamFault::Drop {
        after: 2,
    })));
    let healthy = provider(Scenario::Healthy);
    let stream = chat_resuming(
        client(),
        broken.chat_completions_url(),
        healthy.chat_completions_url(),
    )
    .await
    .unwrap();
    let read = read_all(stream).await;
    assert_eq!(read.restarts, 0);
    assert!(read.error.is_none(), "{:?}", read.error);
    assert_eq!(read.text.trim(), PROMPT);
    assert_eq!(broken.requests().len(), 1);
    assert_eq!(healthy.requests().len(), 1);
}

/// The error of a call under a breaker: `Box<dyn Error>` has no
/// `From<CircuitOpen>`.
#[derive(Debug)]
struct ChatError(Error);

impl std::fmt::Display for ChatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for ChatError {}

impl Classify for ChatError {
    fn kind(&self) -> ErrorKind {
        self.0.kind()
    }

    fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after()
    }
}

macro_rules! into_chat_error {
    ($($from:ty),*) => {$(
        impl From<$from> for ChatError {
            fn from(error: $from) -> Self {
                ChatError(error.into())
            }
        }
    )*};
}

into_chat_error!(
    reqwest::Error,
    llm_resilience::http::HttpError,
    StreamError,
    llm_resilience::CircuitOpen
);

static BREAKER: CircuitBreaker = CircuitBreaker::new()
    .consecutive_failures(2)
    .break_for(Duration::from_secs(60));

struct Chat {
    client: reqwest::Client,
    url: String,
}

impl Chat {
    #[retry(max_attempts = 1, stream = OpenAi, breaker = BREAKER)]
    async fn stream(&self) -> Result<RetriedStream<'_, ChatError>, ChatError> {
        let response = self
            .client
            .post(&self.url)
            .json(&openai_body(PROMPT))
            .send()
            .await?;
        Ok(check(response).await?.bytes_stream())
    }
}

#[tokio::test]
async fn interruptions_after_content_reach_the_breaker() {
    let provider = provider(Scenario::Always(Fault::Stream(StreamFault::ErrorEvent {
        after: 1,
        status: 500,
    })));
    let chat = Chat {
        client: client(),
        url: provider.chat_completions_url(),
    };
    for _ in 0..2 {
        let read = read_all(chat.stream().await.unwrap()).await;
        assert_eq!(read.text, "one ");
        assert!(read.error.is_some());
    }
    assert!(matches!(BREAKER.state(), BreakerState::Open { .. }));
    let refused = chat.stream().await.expect_err("refused");
    assert_eq!(refused.kind(), ErrorKind::Overloaded);
    assert_eq!(
        provider.requests().len(),
        2,
        "the open breaker sent nothing"
    );
}
