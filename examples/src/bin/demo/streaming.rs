//! `demo --stream`: the same calls, streamed, through [`Hooks::stream`] and
//! the demo's breaker, and what the summary adds for them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use futures_util::StreamExt;
use llm_resilience::http::{check, HttpError, RequestBuilderExt};
use llm_resilience::stream::{
    Anthropic, EventFormat, OnInterrupt, OpenAi, Received, StreamError, StreamItem, StreamOptions,
};
use llm_resilience::{
    CircuitBreaker, CircuitOpen, Classify, DelaySource, Elapsed, ErrorKind, Policy, RetryEvent,
};
use serde_json::json;

use super::{describe, one_line, Endpoint, Outcome, ATTEMPTS, RETRY_AFTER_WAITS};

/// The wire format of the streamed calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// OpenAI's chat completions: `POST {base}/chat/completions`, chunks
    /// ending with `data: [DONE]`.
    Openai,
    /// Anthropic's messages: `POST {base}/messages`, events ending with
    /// `event: message_stop`.
    Anthropic,
}

impl Format {
    /// The path of the endpoint, after the base URL.
    fn path(self) -> &'static str {
        match self {
            Format::Openai => "chat/completions",
            Format::Anthropic => "messages",
        }
    }

    /// The decoder of its events.
    fn events(self) -> Arc<dyn EventFormat + Send + Sync> {
        match self {
            Format::Openai => Arc::new(OpenAi),
            Format::Anthropic => Arc::new(Anthropic),
        }
    }

    /// The terminal marker, as it appears in the body.
    pub fn marker(self) -> &'static str {
        match self {
            Format::Openai => "data: [DONE]",
            Format::Anthropic => "event: message_stop",
        }
    }
}

/// What an interrupted stream does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Interrupt {
    /// Start the call over (same request, same idempotency key).
    Restart,
    /// End the stream with the interruption (the library's default).
    Fail,
}

/// The error of a streamed call: the request's (an error status, the
/// network, the breaker's refusal, an attempt cut off) or the stream's.
#[derive(Debug)]
pub enum StreamCallError {
    /// Before any stream: what `check` and reqwest report.
    Http(HttpError),
    /// The stream's: an error event, a cut, a stall, a missing marker.
    Stream(StreamError),
}

impl fmt::Display for StreamCallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamCallError::Http(e) => e.fmt(f),
            StreamCallError::Stream(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for StreamCallError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StreamCallError::Http(e) => Some(e),
            StreamCallError::Stream(e) => Some(e),
        }
    }
}

impl Classify for StreamCallError {
    fn kind(&self) -> ErrorKind {
        match self {
            StreamCallError::Http(e) => e.kind(),
            StreamCallError::Stream(e) => e.kind(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            StreamCallError::Http(e) => e.retry_after(),
            StreamCallError::Stream(e) => e.retry_after(),
        }
    }

    fn request_id(&self) -> Option<&str> {
        match self {
            StreamCallError::Http(e) => e.request_id(),
            StreamCallError::Stream(e) => e.request_id(),
        }
    }
}

impl From<HttpError> for StreamCallError {
    fn from(e: HttpError) -> Self {
        StreamCallError::Http(e)
    }
}

impl From<reqwest::Error> for StreamCallError {
    fn from(e: reqwest::Error) -> Self {
        StreamCallError::Http(e.into())
    }
}

impl From<StreamError> for StreamCallError {
    fn from(e: StreamError) -> Self {
        StreamCallError::Stream(e)
    }
}

impl From<Elapsed> for StreamCallError {
    fn from(e: Elapsed) -> Self {
        StreamCallError::Http(e.into())
    }
}

impl From<CircuitOpen> for StreamCallError {
    fn from(e: CircuitOpen) -> Self {
        StreamCallError::Http(e.into())
    }
}

impl StreamCallError {
    /// The stream error of an interruption after content, if it is one.
    fn after_content(&self) -> Option<&StreamError> {
        match self {
            StreamCallError::Stream(e) if e.delivered() > 0 => Some(e),
            _ => None,
        }
    }

    /// One line for the summary.
    fn describe(&self) -> String {
        match self {
            StreamCallError::Http(e) => describe(e),
            StreamCallError::Stream(e) => one_line(&e.to_string()),
        }
    }
}

/// Interruptions after content by what followed (`"restarted"`,
/// `"failed"`) and kind: how many, and an example.
pub type Interruptions = BTreeMap<(&'static str, String), (u64, String)>;

static INTERRUPTIONS: Mutex<Interruptions> = Mutex::new(BTreeMap::new());

fn interrupted(then: &'static str, error: &StreamCallError) {
    let mut map = INTERRUPTIONS.lock().unwrap_or_else(|e| e.into_inner());
    map.entry((then, error.kind().to_string()))
        .or_insert((0, error.describe()))
        .0 += 1;
}

/// Every interruption after content so far: `(then, kind)` → count and an
/// example, `then` being `"restarted"` or `"failed"`.
pub fn interruptions() -> Interruptions {
    INTERRUPTIONS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
}

/// Watches a body's bytes for the format's terminal marker, across chunk
/// boundaries.
struct MarkerWatch {
    marker: &'static [u8],
    tail: Vec<u8>,
}

impl MarkerWatch {
    fn new(marker: &'static str) -> Self {
        MarkerWatch {
            marker: marker.as_bytes(),
            tail: Vec::new(),
        }
    }

    /// Whether the marker has now been seen, `chunk` included.
    fn feed(&mut self, chunk: &[u8]) -> bool {
        self.tail.extend_from_slice(chunk);
        let found = self
            .tail
            .windows(self.marker.len())
            .any(|w| w == self.marker);
        let keep = self.marker.len().saturating_sub(1).min(self.tail.len());
        self.tail.drain(..self.tail.len() - keep);
        found
    }
}

/// What a streamed call adds to its [`Outcome`].
pub struct Streamed {
    /// From the call's start to its first content event.
    pub ttfe: Duration,
    /// Attempts failed before the first content event, then one got it.
    pub recovered: bool,
    /// The stream ended cleanly but the answer was not whole: see
    /// [`StreamSetup::expected`].
    pub truncated: bool,
}

/// How the streamed calls are made.
pub struct StreamSetup {
    /// The wire format.
    pub format: Format,
    /// Timing of each stream.
    pub options: StreamOptions,
    /// Whether the whole answer is known: the local provider streams the
    /// prompt back, so a clean end with another text is a truncation.
    /// Either way, a clean end without the terminal marker in the body is.
    pub expected: bool,
}

/// The stream options: short against the local provider (its stalls last
/// 3 s), the library's defaults against a real endpoint.
pub fn options(remote: bool, interrupt: Interrupt) -> StreamOptions {
    let options = if remote {
        StreamOptions::new()
    } else {
        StreamOptions::new()
            .first_event_timeout(Duration::from_secs(1))
            .idle_timeout(Duration::from_secs(1))
    };
    options.on_interrupt(match interrupt {
        Interrupt::Restart => OnInterrupt::Restart,
        Interrupt::Fail => OnInterrupt::Fail,
    })
}

/// The prompt of request `i`: the local provider streams it back word by
/// word, so it is also the whole answer.
pub fn prompt(i: u32) -> String {
    format!("Hello caller {i}, this answer comes to you one word at a time, checked at the end.")
}

/// One streamed logical request, from its first attempt to the end of its
/// stream: how it ended, and, once it got content, what it adds.
pub async fn stream_call(
    endpoint: &Endpoint,
    setup: &StreamSetup,
    policy: Policy,
    breaker: &CircuitBreaker,
    i: u32,
) -> (Outcome, Option<Streamed>) {
    let begun = Instant::now();
    let user = format!("demo-{i}");
    let prompt = prompt(i);
    let sent = AtomicU32::new(0);
    let saw_marker = AtomicBool::new(false);
    let format = setup.format;
    let mut body = json!({
        "model": endpoint.model,
        "stream": true,
        "messages": [{"role": "user", "content": prompt}],
        "user": user,
    });
    if format == Format::Anthropic {
        body["max_tokens"] = json!(1024);
    }
    let url = format!("{}/{}", endpoint.base_url, format.path());
    let on_retry = |event: &RetryEvent<'_, StreamCallError>| {
        if event.source() == DelaySource::RetryAfter {
            RETRY_AFTER_WAITS.fetch_add(1, Ordering::Relaxed);
        }
        if event.error().after_content().is_some() {
            interrupted("restarted", event.error());
        }
    };
    let open = |_: &Received| {
        sent.fetch_add(1, Ordering::Relaxed);
        ATTEMPTS.fetch_add(1, Ordering::Relaxed);
        saw_marker.store(false, Ordering::Relaxed);
        let mut request = endpoint.client.post(&url).json(&body).retry_headers();
        if let Some(key) = &endpoint.api_key {
            request = match format {
                Format::Openai => request.bearer_auth(key),
                Format::Anthropic => request
                    .header("x-api-key", key)
                    .header("anthropic-version", "2023-06-01"),
            };
        }
        let saw_marker = &saw_marker;
        async move {
            let response = check(request.send().await?).await?;
            let mut watch = MarkerWatch::new(format.marker());
            Ok::<_, StreamCallError>(response.bytes_stream().map(move |chunk| {
                if let Ok(bytes) = &chunk {
                    if watch.feed(bytes) {
                        saw_marker.store(true, Ordering::Relaxed);
                    }
                }
                chunk
            }))
        }
    };
    let opened = policy
        .on_retry(on_retry)
        .breaker(breaker)
        .stream(setup.options, format.events(), open)
        .await;
    let ttfe = begun.elapsed();
    let given_up = |e: StreamCallError| {
        let open = match &e {
            StreamCallError::Http(http) => http.circuit_open().copied(),
            StreamCallError::Stream(_) => None,
        };
        match open {
            Some(open) => Outcome::Refused {
                sent: sent.load(Ordering::Relaxed),
                open,
            },
            None => Outcome::Failed(e.kind().to_string(), e.describe()),
        }
    };
    let mut stream = match opened {
        Ok(stream) => stream,
        Err(e) => return (given_up(e), None),
    };
    let mut streamed = Streamed {
        ttfe,
        recovered: sent.load(Ordering::Relaxed) > 1,
        truncated: false,
    };
    let mut text = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(StreamItem::Content(piece)) => text.push_str(&piece),
            // What was shown is discarded: the answer comes again whole.
            Ok(StreamItem::Restarted) => text.clear(),
            Ok(_) => {}
            Err(e) if e.after_content().is_some() => {
                interrupted("failed", &e);
                return (Outcome::Interrupted, Some(streamed));
            }
            // A restart that got no content: the call gave up.
            Err(e) => return (given_up(e), Some(streamed)),
        }
    }
    // The stream ended cleanly: was the answer whole?
    let marker_missing = !saw_marker.load(Ordering::Relaxed);
    streamed.truncated = marker_missing || (setup.expected && text != prompt);
    (Outcome::Answered(begun.elapsed()), Some(streamed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_marker_is_found_across_chunks_and_only_whole() {
        for split in 0..=12 {
            let body = b"data: {}\n\ndata: [DONE]\n\n";
            let (a, b) = body.split_at(split + 8);
            let mut watch = MarkerWatch::new(Format::Openai.marker());
            let seen = watch.feed(a) | watch.feed(b);
            assert!(seen, "split at {split}");
        }
        let mut watch = MarkerWatch::new(Format::Anthropic.marker());
        assert!(!watch.feed(b"event: message_st"));
        assert!(!watch.feed(b"art\n"));
        assert!(watch.feed(b"event: message_stop\n"));
    }

    #[test]
    fn an_interruption_is_told_from_a_failure_before_content() {
        let before = StreamCallError::from(StreamError::new(
            llm_resilience::stream::StreamFailure::Incomplete,
            0,
        ));
        assert!(before.after_content().is_none());
        let after = StreamCallError::from(StreamError::new(
            llm_resilience::stream::StreamFailure::Incomplete,
            3,
        ));
        assert_eq!(after.after_content().map(StreamError::delivered), Some(3));
        assert_eq!(after.kind(), ErrorKind::Network);
        assert!(
            after.describe().contains("terminal marker"),
            "{}",
            after.describe()
        );
    }
}
