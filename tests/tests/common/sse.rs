//! Streamed calls over in-memory bodies, for the tests of what they report
//! (metrics, tracing): OpenAI-format events, a scripted body per attempt,
//! each attempt taking [`OPEN`] on tokio's clock to answer.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::{stream, Stream, StreamExt};
use llm_resilience::stream::{OpenAi, Received, StreamItem, StreamOptions};
use llm_resilience::{Jitter, Policy, Wait};

/// A call's error: whatever the stream says.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// How long each attempt takes to open (its request and headers).
pub const OPEN: Duration = Duration::from_millis(100);

/// The wait between attempts: fixed, no jitter.
pub const WAIT: Duration = Duration::from_secs(1);

/// Four attempts, [`WAIT`] apart.
pub const POLICY: Policy = Policy::new()
    .max_attempts(4)
    .wait(Wait::fixed(WAIT))
    .jitter(Jitter::None);

/// The library's defaults: nothing here waits for them.
pub const OPTIONS: StreamOptions = StreamOptions::new();

/// A content event carrying `text`.
pub fn content(text: &str) -> String {
    format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n")
}

/// OpenAI's terminal marker.
pub const DONE: &str = "data: [DONE]\n\n";

/// An `overloaded_error` event.
pub const OVERLOADED: &str =
    "data: {\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";

/// A whole answer: `hello world`, then the marker.
pub fn whole() -> String {
    [content("hello "), content("world"), DONE.to_owned()].concat()
}

/// Runs one streamed call whose attempts get `bodies` in turn (each after
/// [`OPEN`]), under [`POLICY`] and `options`, and reads it to its end: the
/// text received (since the last restart) and the error item, if any.
pub async fn read(options: StreamOptions, bodies: &[String]) -> (String, Option<Error>) {
    let bodies = Mutex::new(bodies.iter().cloned().collect::<VecDeque<_>>());
    let open = |_: &Received| {
        let body = bodies
            .lock()
            .unwrap()
            .pop_front()
            .expect("a body per attempt");
        async move {
            tokio::time::sleep(OPEN).await;
            Ok::<_, Error>(body_of(body))
        }
    };
    let mut answer = match POLICY.stream(options, OpenAi, open).await {
        Ok(answer) => answer,
        Err(error) => return (String::new(), Some(error)),
    };
    let mut text = String::new();
    while let Some(item) = answer.next().await {
        match item {
            Ok(StreamItem::Content(piece)) => text.push_str(&piece),
            Ok(StreamItem::Restarted) => text.clear(),
            Ok(_) => {}
            Err(error) => return (text, Some(error)),
        }
    }
    (text, None)
}

/// `body` as a stream of one chunk per event.
fn body_of(body: String) -> impl Stream<Item = Result<Vec<u8>, Infallible>> + Send {
    let chunks: Vec<Vec<u8>> = body
        .split_inclusive("\n\n")
        .map(|event| event.as_bytes().to_vec())
        .collect();
    stream::iter(chunks).map(Ok)
}

/// A current-thread runtime on tokio's paused clock: sleeps end at once,
/// and time moves by exactly what was slept.
pub fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}
