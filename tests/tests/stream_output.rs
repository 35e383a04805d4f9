//! What counts as the answer of a streamed call besides its text: reasoning
//! ("thinking") and tool calls end the wait for the first event and reach
//! the consumer as `StreamItem::Output`; an answer that ends, with its
//! terminal marker, before any content or output is complete (and empty),
//! not a failure to retry. In memory, on tokio's paused clock.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures_util::{stream, StreamExt};
use llm_resilience::stream::{
    Anthropic, EventFormat, OnInterrupt, OpenAi, Received, StreamItem, StreamOptions,
};
use llm_resilience::{BreakerState, CircuitBreaker, Policy, Wait};

type Error = Box<dyn std::error::Error + Send + Sync>;

const POLICY: Policy = Policy::new().max_attempts(3).wait(Wait::none());

/// The first event must come within this; each body below waits less
/// between events, but longer than this in all before its first text.
const OPTIONS: StreamOptions = StreamOptions::new()
    .first_event_timeout(Duration::from_millis(500))
    .idle_timeout(Duration::from_millis(500));

fn openai(delta: &str) -> String {
    format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{delta}}}]}}\n\n")
}

const DONE: &str = "data: [DONE]\n\n";

/// What a call read: its items (text joined), how many attempts it made,
/// and how it ended.
#[derive(Debug, Default)]
struct Read {
    text: String,
    outputs: Vec<String>,
    attempts: u32,
    error: Option<Error>,
}

/// Each attempt gets the next body; each event comes `gap` after the one
/// before (the first `gap` after the request).
async fn run<F>(format: F, options: StreamOptions, bodies: Vec<Vec<String>>, gap: Duration) -> Read
where
    F: EventFormat + Clone + Send + Sync + 'static,
{
    let bodies = Mutex::new(VecDeque::from(bodies));
    let attempts = AtomicU32::new(0);
    let open = |_: &Received| {
        attempts.fetch_add(1, Ordering::SeqCst);
        let events = bodies
            .lock()
            .unwrap()
            .pop_front()
            .expect("a body per attempt");
        async move {
            let body = stream::iter(events).then(move |event| async move {
                tokio::time::sleep(gap).await;
                Ok::<_, Error>(event)
            });
            Ok::<_, Error>(Box::pin(body))
        }
    };
    let mut read = Read::default();
    match POLICY.stream(options, format, open).await {
        Ok(mut answer) => {
            while let Some(item) = answer.next().await {
                match item {
                    Ok(StreamItem::Content(text)) => read.text.push_str(&text),
                    Ok(StreamItem::Output(data)) => read.outputs.push(data),
                    Ok(_) => {}
                    Err(error) => read.error = Some(error),
                }
            }
        }
        Err(error) => read.error = Some(error),
    }
    read.attempts = attempts.load(Ordering::SeqCst);
    read
}

#[tokio::test(start_paused = true)]
async fn reasoning_ends_the_wait_for_the_first_event() {
    // Eight reasoning deltas 100 ms apart: 800 ms before the first text,
    // against a first-event timeout of 500 ms.
    let mut body: Vec<String> = (0..8)
        .map(|i| openai(&format!("{{\"reasoning_content\":\"step {i} \"}}")))
        .collect();
    body.extend([openai("{\"content\":\"42\"}"), DONE.to_owned()]);
    let read = run(OpenAi, OPTIONS, vec![body], Duration::from_millis(100)).await;
    assert!(read.error.is_none(), "{:?}", read.error);
    assert_eq!(read.attempts, 1, "not cut off and sent again");
    assert_eq!(read.text, "42");
    assert_eq!(read.outputs.len(), 8);
    assert!(read.outputs[0].contains("step 0"));
}

#[tokio::test(start_paused = true)]
async fn anthropic_thinking_ends_the_wait_for_the_first_event() {
    let event = |name: &str, data: &str| format!("event: {name}\ndata: {data}\n\n");
    let mut body: Vec<String> = (0..8)
        .map(|i| {
            event(
                "content_block_delta",
                &format!("{{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"thinking_delta\",\"thinking\":\"step {i}\"}}}}"),
            )
        })
        .collect();
    body.push(event(
        "content_block_delta",
        "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"42\"}}",
    ));
    body.push(event("message_stop", "{\"type\":\"message_stop\"}"));
    let read = run(Anthropic, OPTIONS, vec![body], Duration::from_millis(100)).await;
    assert!(read.error.is_none(), "{:?}", read.error);
    assert_eq!((read.attempts, read.text.as_str()), (1, "42"));
    assert_eq!(read.outputs.len(), 8);
}

#[tokio::test(start_paused = true)]
async fn an_answer_that_is_only_a_tool_call_is_complete() {
    let body = vec![
        openai("{\"role\":\"assistant\"}"),
        openai("{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"weather\",\"arguments\":\"\"}}]}"),
        openai("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]}"),
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n".to_owned(),
        DONE.to_owned(),
    ];
    let read = run(OpenAi, OPTIONS, vec![body], Duration::from_millis(10)).await;
    assert!(read.error.is_none(), "{:?}", read.error);
    assert_eq!(read.attempts, 1, "a tool call is an answer, not a failure");
    assert_eq!(read.text, "");
    assert_eq!(read.outputs.len(), 2);
    assert!(read.outputs[1].contains("Oslo"));
}

#[tokio::test(start_paused = true)]
async fn an_empty_complete_answer_is_not_retried() {
    // A content filter's answer: a role, a finish reason, the marker.
    let body = vec![
        openai("{\"role\":\"assistant\"}"),
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"content_filter\"}]}\n\n"
            .to_owned(),
        DONE.to_owned(),
    ];
    let read = run(OpenAi, OPTIONS, vec![body], Duration::from_millis(10)).await;
    assert!(read.error.is_none(), "{:?}", read.error);
    assert_eq!(read.attempts, 1);
    assert_eq!((read.text.as_str(), read.outputs.len()), ("", 0));
}

#[tokio::test(start_paused = true)]
async fn an_empty_body_without_its_marker_is_still_retried() {
    let read = run(
        OpenAi,
        OPTIONS,
        vec![
            vec![openai("{\"role\":\"assistant\"}")],
            vec![openai("{\"content\":\"hi\"}"), DONE.to_owned()],
        ],
        Duration::from_millis(10),
    )
    .await;
    assert!(read.error.is_none(), "{:?}", read.error);
    assert_eq!((read.attempts, read.text.as_str()), (2, "hi"));
}

#[tokio::test(start_paused = true)]
async fn a_continuation_with_nothing_to_add_ends_the_resumed_answer() {
    let read = run(
        OpenAi,
        OPTIONS.on_interrupt(OnInterrupt::Resume),
        vec![
            // Two words, then the connection ends without the marker.
            vec![
                openai("{\"content\":\"one \"}"),
                openai("{\"content\":\"two\"}"),
            ],
            // The continuation: the answer was already whole.
            vec![DONE.to_owned()],
        ],
        Duration::from_millis(10),
    )
    .await;
    assert!(read.error.is_none(), "{:?}", read.error);
    assert_eq!((read.attempts, read.text.as_str()), (2, "one two"));
}

#[tokio::test(start_paused = true)]
async fn an_empty_complete_answer_is_a_success_for_the_breaker() {
    static BREAKER: CircuitBreaker = CircuitBreaker::new().consecutive_failures(1);
    let open =
        |_: &Received| async { Ok::<_, Error>(stream::iter([Ok::<_, Error>(DONE.to_owned())])) };
    let policy = Policy::new().max_attempts(1);
    let mut answer = policy
        .breaker(&BREAKER)
        .stream(OPTIONS, OpenAi, open)
        .await
        .expect("an empty answer opens");
    assert!(answer.next().await.is_none());
    drop(answer);
    assert_eq!(BREAKER.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_json_error_body_sent_with_a_200_is_classified_not_retried_as_cut_short() {
    let error_body = r#"{"error":{"message":"Invalid API key","type":"invalid_request_error","code":"invalid_api_key"}}"#;
    let read = run(
        OpenAi,
        OPTIONS,
        vec![vec![error_body.to_owned()]],
        Duration::from_millis(10),
    )
    .await;
    let error = read.error.expect("the call fails");
    assert_eq!(read.attempts, 1, "an auth error is not sent again: {error}");
    assert_eq!(
        llm_resilience::Classify::kind(&error),
        llm_resilience::ErrorKind::Auth
    );
}
