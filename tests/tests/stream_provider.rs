//! Streamed chat calls over real HTTP against the flaky provider, read with
//! reqwest's `bytes_stream()` and decoded by `llm_resilience::stream`: every
//! stream fault in both formats (OpenAI's chat completions on
//! `/v1/chat/completions`, Anthropic's messages on `/v1/messages`), the
//! HTTP faults before a stream, and what the provider bills per
//! idempotency key.
#![deny(warnings, clippy::all, unused_qualifications)]

#[path = "common/provider.rs"]
mod common;

use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{provider, reqwest_client as client};
use examples::flaky::{answer_tokens, Fault, FlakyProvider, Scenario, StreamFault};
use futures_util::{Stream, StreamExt};
use llm_resilience::http::{check, HttpError};
use llm_resilience::stream::{
    decode, Anthropic, EventFormat, Frame, Frames, OpenAi, StreamError, StreamFailure,
};
use llm_resilience::{Classify, ErrorKind};
use serde_json::{json, Value};

/// The prompt every test sends: the provider echoes it in six content
/// events.
const PROMPT: &str = "one two three four five six";

/// How long a test waits for a whole stream that is not meant to stall.
const PATIENCE: Duration = Duration::from_secs(10);

/// The short wait that a stalled stream must outlast.
const SHORT: Duration = Duration::from_millis(300);

/// Which of the provider's APIs a request calls, and so which format its
/// stream is in.
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

    fn format(self) -> Box<dyn EventFormat + Send + Sync> {
        match self {
            Api::OpenAi => Box::new(OpenAi),
            Api::Anthropic => Box::new(Anthropic),
        }
    }

    fn body(self, stream: bool) -> Value {
        let mut body = json!({
            "model": "test-model",
            "stream": stream,
            "messages": [{"role": "user", "content": PROMPT}],
        });
        if self == Api::Anthropic {
            body["max_tokens"] = json!(256);
        }
        body
    }
}

type Bodies = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;
type Reader = Frames<Bodies, Box<dyn EventFormat + Send + Sync>>;

fn stream_fault(fault: StreamFault) -> Scenario {
    Scenario::Always(Fault::Stream(fault))
}

/// Sends one chat request to `api`, streamed or not, with `key` as its
/// `Idempotency-Key`.
async fn send(
    client: &reqwest::Client,
    provider: &FlakyProvider,
    api: Api,
    stream: bool,
    key: Option<&str>,
) -> reqwest::Result<reqwest::Response> {
    let mut request = client.post(api.url(provider)).json(&api.body(stream));
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    tokio::time::timeout(PATIENCE, request.send())
        .await
        .expect("the response's head comes in time")
}

/// Opens a stream: a `200` with `text/event-stream`, its frames to read.
async fn open(
    client: &reqwest::Client,
    provider: &FlakyProvider,
    api: Api,
    key: Option<&str>,
) -> (reqwest::Response, Reader) {
    let resp = send(client, provider, api, true, key).await.unwrap();
    assert_eq!(resp.status(), 200, "{api:?}");
    assert_eq!(
        header(&resp, "content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    let head = clone_head(&resp);
    let bytes: Bodies = Box::pin(resp.bytes_stream());
    (head, decode(bytes, api.format()))
}

/// A body-less copy of a response's status and headers, to look at after
/// its body is taken.
fn clone_head(resp: &reqwest::Response) -> reqwest::Response {
    let mut head = http::Response::new("");
    *head.status_mut() = resp.status();
    *head.headers_mut() = resp.headers().clone();
    reqwest::Response::from(head)
}

fn header<'a>(resp: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    resp.headers().get(name).map(|v| v.to_str().unwrap())
}

/// What a stream came to.
#[derive(Debug)]
struct Read {
    content: Vec<String>,
    /// Pings, metadata and other frames without text.
    others: usize,
    /// Whether the terminal marker came.
    done: bool,
    error: Option<StreamError>,
}

impl Read {
    fn text(&self) -> String {
        self.content.concat()
    }
}

/// Reads `frames` to their end (within [`PATIENCE`]).
async fn read_all(frames: &mut Reader) -> Read {
    let mut read = Read {
        content: Vec::new(),
        others: 0,
        done: false,
        error: None,
    };
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = tokio::time::timeout(left, frames.next())
            .await
            .expect("the stream ends in time");
        match next {
            Some(Ok(Frame::Content(text))) => read.content.push(text),
            Some(Ok(Frame::Done)) => read.done = true,
            Some(Ok(_)) => read.others += 1,
            Some(Err(error)) => {
                assert_eq!(error.delivered(), read.content.len() as u64);
                assert!(read.error.is_none(), "one error at most");
                read.error = Some(error);
            }
            None => break,
        }
    }
    assert!(frames.is_finished());
    assert_eq!(frames.is_done(), read.done);
    assert_eq!(frames.delivered(), read.content.len() as u64);
    read
}

/// Reads `n` content frames, failing on anything that ends the stream.
async fn read_content(frames: &mut Reader, n: usize) -> Vec<String> {
    let mut content = Vec::new();
    while content.len() < n {
        match tokio::time::timeout(PATIENCE, frames.next()).await.unwrap() {
            Some(Ok(Frame::Content(text))) => content.push(text),
            Some(Ok(Frame::Other)) => {}
            other => panic!("expected content, got {other:?}"),
        }
    }
    content
}

fn tokens(n: usize) -> Vec<String> {
    answer_tokens(PROMPT)[..n]
        .iter()
        .map(|t| (*t).to_owned())
        .collect()
}

fn assert_complete(read: &Read, api: Api) {
    assert!(read.error.is_none(), "{api:?}: {:?}", read.error);
    assert!(read.done, "{api:?}: no terminal marker");
    assert_eq!(read.text(), PROMPT, "{api:?}");
    assert_eq!(read.content, tokens(6), "{api:?}");
}

#[tokio::test]
async fn a_healthy_stream_is_complete_in_both_formats() {
    assert_eq!(answer_tokens(PROMPT).len(), 6);
    for api in APIS {
        let provider = provider(Scenario::Healthy);
        let client = client();
        let (head, mut frames) = open(&client, &provider, api, Some("k1")).await;
        assert_eq!(header(&head, "x-request-id"), Some("req_1"));
        assert_eq!(header(&head, "cache-control"), Some("no-cache"));
        let read = read_all(&mut frames).await;
        assert_complete(&read, api);
        // OpenAI: the role chunk and the finish_reason chunk. Anthropic:
        // message_start, content_block_start, ping, content_block_stop and
        // message_delta.
        let others = match api {
            Api::OpenAi => 2,
            Api::Anthropic => 5,
        };
        assert_eq!(read.others, others, "{api:?}");
        assert_eq!(provider.billed("k1"), 1);
        let stats = provider.stats();
        assert_eq!((stats.processed, stats.billed_twice), (1, 0));
        assert!(stats.faults.is_empty());
        assert_eq!(provider.requests()[0].outcome, "200");
    }
}

#[tokio::test]
async fn an_error_event_first_is_classified_before_any_content() {
    for api in APIS {
        let provider = provider(Scenario::from_name("stream-error-first").unwrap());
        let client = client();
        let (_, mut frames) = open(&client, &provider, api, Some("k")).await;
        let read = read_all(&mut frames).await;
        assert!(read.content.is_empty() && !read.done, "{api:?}: {read:?}");
        assert_eq!(read.others, 0, "{api:?}: the error is the first event");
        let error = read.error.unwrap();
        assert!(error.is_before_content());
        assert_eq!(error.kind(), ErrorKind::Overloaded, "{api:?}: {error}");
        let provider_error = error.provider_error().unwrap();
        assert_eq!(provider_error.error_type(), Some("overloaded_error"));
        assert_eq!(provider_error.message(), "Overloaded");
        assert_eq!(provider.stats().faults.get("stream_error"), Some(&1));
        assert_eq!(provider.requests()[0].outcome, "stream_error");
    }
}

#[tokio::test]
async fn an_error_event_mid_stream_comes_after_the_content_sent() {
    for api in APIS {
        let provider = provider(Scenario::from_name("stream-error-mid").unwrap());
        let client = client();
        let (_, mut frames) = open(&client, &provider, api, None).await;
        let read = read_all(&mut frames).await;
        assert_eq!(read.content, tokens(3), "{api:?}");
        assert!(!read.done);
        let error = read.error.unwrap();
        assert_eq!(error.delivered(), 3);
        assert_eq!(error.kind(), ErrorKind::Server, "{api:?}: {error}");
        let expected_type = match api {
            Api::OpenAi => "server_error",
            Api::Anthropic => "api_error",
        };
        assert_eq!(
            error.provider_error().unwrap().error_type(),
            Some(expected_type)
        );
        assert!(error
            .to_string()
            .starts_with("error event after 3 content events: Server"));
    }
}

#[tokio::test]
async fn error_events_carry_the_kind_of_their_status_in_both_formats() {
    let cases = [
        (529, ErrorKind::Overloaded),
        (503, ErrorKind::Overloaded),
        (500, ErrorKind::Server),
        (429, ErrorKind::RateLimit),
        (400, ErrorKind::Client),
        (401, ErrorKind::Auth),
        (403, ErrorKind::Auth),
    ];
    for (status, kind) in cases {
        let provider = provider(stream_fault(StreamFault::ErrorEvent { after: 1, status }));
        let client = client();
        for api in APIS {
            let (_, mut frames) = open(&client, &provider, api, None).await;
            let read = read_all(&mut frames).await;
            assert_eq!(read.content, tokens(1));
            let error = read.error.unwrap();
            assert_eq!(error.kind(), kind, "{api:?} {status}: {error}");
            assert!(!error.provider_error().unwrap().message().is_empty());
        }
    }
}

#[tokio::test]
async fn a_stall_before_the_first_event_outlasts_a_short_timeout() {
    for api in APIS {
        let provider = provider(Scenario::from_name("stream-stall-first").unwrap());
        let client = client();
        let started = Instant::now();
        // The head comes at once; the body says nothing.
        let (_, mut frames) = open(&client, &provider, api, None).await;
        assert!(started.elapsed() < Duration::from_secs(2));
        let waited = tokio::time::timeout(SHORT, frames.next()).await;
        assert!(
            waited.is_err(),
            "{api:?}: no event may come during the stall"
        );
        assert_eq!(frames.delivered(), 0);
        let error = StreamError::first_event_timeout(SHORT);
        assert_eq!((error.kind(), error.delivered()), (ErrorKind::Timeout, 0));
        assert_eq!(provider.requests()[0].outcome, "stream_stall");
    }
}

#[tokio::test]
async fn a_stall_mid_stream_outlasts_a_short_timeout_after_the_content_sent() {
    for api in APIS {
        let provider = provider(Scenario::from_name("stream-stall-mid").unwrap());
        let client = client();
        let (_, mut frames) = open(&client, &provider, api, None).await;
        assert_eq!(read_content(&mut frames, 3).await, tokens(3));
        let waited = tokio::time::timeout(SHORT, frames.next()).await;
        assert!(
            waited.is_err(),
            "{api:?}: no event may come during the stall"
        );
        let error = StreamError::idle_timeout(SHORT, frames.delivered());
        assert_eq!((error.kind(), error.delivered()), (ErrorKind::Timeout, 3));
    }
}

#[tokio::test]
async fn a_stream_goes_on_to_its_end_after_a_stall() {
    let stall = Duration::from_millis(400);
    let provider = provider(stream_fault(StreamFault::Stall { after: 2, stall }));
    let client = client();
    for api in APIS {
        let (_, mut frames) = open(&client, &provider, api, None).await;
        let started = Instant::now();
        let read = read_all(&mut frames).await;
        assert_complete(&read, api);
        assert!(started.elapsed() >= stall - Duration::from_millis(50));
    }
}

#[tokio::test]
async fn an_end_without_the_terminal_marker_is_incomplete() {
    for api in APIS {
        let provider = provider(Scenario::from_name("stream-truncated").unwrap());
        let client = client();
        let (_, mut frames) = open(&client, &provider, api, None).await;
        let read = read_all(&mut frames).await;
        assert_eq!(read.content, tokens(3), "{api:?}");
        assert!(!read.done);
        let error = read.error.unwrap();
        assert!(
            matches!(error.failure(), StreamFailure::Incomplete),
            "{error}"
        );
        assert_eq!((error.kind(), error.delivered()), (ErrorKind::Network, 3));
        assert_eq!(provider.requests()[0].outcome, "stream_truncated");
    }
}

#[tokio::test]
async fn a_connection_cut_mid_stream_is_a_transport_error_after_the_content_sent() {
    for api in APIS {
        let provider = provider(Scenario::from_name("stream-drop").unwrap());
        let client = client();
        let (_, mut frames) = open(&client, &provider, api, None).await;
        let read = read_all(&mut frames).await;
        assert_eq!(read.content, tokens(3), "{api:?}");
        assert!(!read.done);
        let error = read.error.unwrap();
        assert!(
            matches!(error.failure(), StreamFailure::Transport { .. }),
            "{api:?}: {error}"
        );
        assert_eq!((error.kind(), error.delivered()), (ErrorKind::Network, 3));
        // reqwest's error is the source, and says the body broke off.
        let source = std::error::Error::source(&error).unwrap();
        assert!(
            source.downcast_ref::<reqwest::Error>().is_some(),
            "{source:?}"
        );
        assert_eq!(provider.requests()[0].outcome, "stream_drop");
    }
}

#[tokio::test]
async fn slow_tokens_come_paced_and_complete() {
    let provider = provider(Scenario::from_name("stream-slow").unwrap());
    let client = client();
    for api in APIS {
        let (_, mut frames) = open(&client, &provider, api, None).await;
        let started = Instant::now();
        let read = read_all(&mut frames).await;
        assert_complete(&read, api);
        // 50 ms before each of the six content events.
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "{api:?}: {:?}",
            started.elapsed()
        );
    }
    assert_eq!(provider.stats().faults.get("stream_slow"), Some(&2));
}

#[tokio::test]
async fn http_faults_hit_a_streamed_request_before_its_stream_starts() {
    let cases = [
        ("retry-after-ms", 429, ErrorKind::RateLimit),
        ("quota", 429, ErrorKind::Quota),
        ("529", 529, ErrorKind::Overloaded),
        ("503", 503, ErrorKind::Overloaded),
        ("500", 500, ErrorKind::Server),
        ("400", 400, ErrorKind::Client),
        ("401", 401, ErrorKind::Auth),
    ];
    for (name, status, kind) in cases {
        for api in APIS {
            let provider = provider(Scenario::from_name(name).unwrap());
            let resp = send(&client(), &provider, api, true, None).await.unwrap();
            assert_eq!(resp.status(), status, "{name} {api:?}");
            assert_eq!(header(&resp, "content-type"), Some("application/json"));
            let error: HttpError = check(resp).await.unwrap_err();
            assert_eq!(error.kind(), kind, "{name} {api:?}: {error}");
            if name == "retry-after-ms" {
                assert_eq!(error.retry_after(), Some(Duration::from_millis(50)));
            }
            // Not processed, so not billed.
            assert_eq!(provider.stats().processed, 0);
        }
    }
}

#[tokio::test]
async fn a_slow_answer_streams_late_and_a_dropped_one_never_starts() {
    let slow = Duration::from_millis(400);
    for api in APIS {
        let late = provider(Scenario::FailFirst {
            failures: 1,
            fault: Fault::Slow(slow),
        });
        let started = Instant::now();
        let (_, mut frames) = open(&client(), &late, api, None).await;
        assert!(started.elapsed() >= slow - Duration::from_millis(50));
        assert_complete(&read_all(&mut frames).await, api);

        let dropping = provider(Scenario::from_name("drop").unwrap());
        let error = send(&client(), &dropping, api, true, None)
            .await
            .expect_err("the connection is dropped before the head");
        assert_eq!(error.kind(), ErrorKind::Network, "{error}");
        assert_eq!(dropping.stats().processed, 1);
    }
}

#[tokio::test]
async fn a_request_that_streams_nothing_meets_a_stream_fault_as_a_success() {
    let provider = provider(Scenario::from_name("stream-drop").unwrap());
    let client = client();
    let resp = send(&client, &provider, Api::OpenAi, false, None)
        .await
        .unwrap();
    let json: Value = check(resp).await.unwrap().json().await.unwrap();
    assert_eq!(json["object"], "chat.completion");
    assert_eq!(json["choices"][0]["message"]["content"], PROMPT);

    let resp = send(&client, &provider, Api::Anthropic, false, None)
        .await
        .unwrap();
    assert_eq!(header(&resp, "content-type"), Some("application/json"));
    let json: Value = check(resp).await.unwrap().json().await.unwrap();
    assert_eq!(json["type"], "message");
    assert!(json["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(json["content"][0]["type"], "text");
    assert_eq!(json["content"][0]["text"], PROMPT);
    assert_eq!(json["stop_reason"], "end_turn");

    let stats = provider.stats();
    assert!(stats.faults.is_empty(), "{stats:?}");
    assert_eq!(stats.processed, 2);
}

/// How each named stream fault bills three attempts with one idempotency
/// key: a broken delivery is replayed whole from the stored answer, an error
/// event is processed (and billed) again.
#[tokio::test]
async fn billing_per_idempotency_key() {
    struct Case {
        name: &'static str,
        /// Attempts made before a complete answer.
        attempts: usize,
        /// Times the key was billed.
        billed: u32,
        /// Answers replayed from the store.
        replayed: u64,
    }
    let cases = [
        Case {
            name: "stream-error-first",
            attempts: 3,
            billed: 3,
            replayed: 0,
        },
        Case {
            name: "stream-error-mid",
            attempts: 3,
            billed: 3,
            replayed: 0,
        },
        Case {
            name: "stream-stall-first",
            attempts: 2,
            billed: 1,
            replayed: 1,
        },
        Case {
            name: "stream-stall-mid",
            attempts: 2,
            billed: 1,
            replayed: 1,
        },
        Case {
            name: "stream-truncated",
            attempts: 2,
            billed: 1,
            replayed: 1,
        },
        Case {
            name: "stream-drop",
            attempts: 2,
            billed: 1,
            replayed: 1,
        },
    ];
    for case in cases {
        for api in APIS {
            let provider = provider(Scenario::from_name(case.name).unwrap());
            let client = client();
            let what = format!("{} {api:?}", case.name);
            let mut attempts = 0;
            let replayed = loop {
                attempts += 1;
                assert!(attempts <= 3, "{what}: no complete answer in 3 attempts");
                let (head, mut frames) = open(&client, &provider, api, Some("key-1")).await;
                // A stalled stream (3 s) is given up on after a second.
                let give_up = Duration::from_secs(1);
                let read = match tokio::time::timeout(give_up, read_all(&mut frames)).await {
                    Ok(read) => read,
                    Err(_) => continue,
                };
                if read.error.is_none() {
                    assert_complete(&read, api);
                    break header(&head, "idempotent-replayed") == Some("true");
                }
            };
            assert_eq!(attempts, case.attempts, "{what}");
            assert_eq!(replayed, case.replayed > 0, "{what}");
            assert_eq!(provider.billed("key-1"), case.billed, "{what}");
            let stats = provider.stats();
            assert_eq!(stats.replayed, case.replayed, "{what}");
            assert_eq!(stats.processed, u64::from(case.billed), "{what}");
            assert_eq!(stats.billed_twice, u64::from(case.billed > 1), "{what}");
        }
    }

    // Without a key there is nothing to replay: a broken delivery is
    // processed again, as its `user` tells.
    let provider = provider(Scenario::from_name("stream-drop").unwrap());
    let client = client();
    for attempt in 1..=3 {
        let mut body = Api::OpenAi.body(true);
        body["user"] = json!("alice");
        let resp = client
            .post(provider.chat_completions_url())
            .json(&body)
            .send()
            .await
            .unwrap();
        let bytes: Bodies = Box::pin(resp.bytes_stream());
        let read = read_all(&mut decode(bytes, Api::OpenAi.format())).await;
        assert_eq!(read.error.is_none(), attempt == 3, "attempt {attempt}");
    }
    assert_eq!(provider.billed("alice"), 3);
    assert_eq!(provider.stats().billed_twice, 1);
    assert_eq!(provider.billed("nobody"), 0);
}
