//! The adapter from a stream of byte chunks to classified frames.

use std::error::Error;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use eventsource_stream::{Event, EventStream, EventStreamError};
use futures_core::Stream;
use pin_project_lite::pin_project;

use super::{EventFormat, Frame, Malformed, ProviderError, SseEvent, StreamError, StreamFailure};

/// The frames of the SSE body `bytes` in `format`: the same as
/// [`Frames::new`].
///
/// `bytes` is any stream of byte chunks, such as reqwest's
/// `Response::bytes_stream()` (reqwest's `stream` feature) or a hyper body's
/// data frames; chunks may split events, lines and characters anywhere.
///
/// ```
/// use futures_util::{stream, TryStreamExt};
/// use llm_resilience::stream::{decode, Anthropic, Frame};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let body = "event: content_block_delta\n\
///             data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n\
///             event: message_stop\n\
///             data: {\"type\":\"message_stop\"}\n\n";
/// let chunks = stream::iter([Ok::<_, std::io::Error>(body)]);
/// let frames: Vec<Frame> = decode(chunks, Anthropic).try_collect().await.unwrap();
/// assert_eq!(frames, [Frame::Content("Hi".into()), Frame::Done]);
/// # }
/// ```
pub fn decode<S, F>(bytes: S, format: F) -> Frames<S, F> {
    Frames::new(bytes, format)
}

pin_project! {
    /// A stream of the [`Frame`]s of an SSE body, made by [`decode`] or
    /// [`Frames::new`].
    ///
    /// It yields, in order:
    ///
    /// - `Ok(frame)` for each event: [`Frame::Content`], [`Frame::Other`],
    ///   and at last [`Frame::Done`], after which it ends (whatever follows
    ///   in the body is not read);
    /// - or, instead of `Done`, one `Err(StreamError)`, after which it ends:
    ///   [`StreamFailure::ErrorEvent`] for an event the format reads as
    ///   [`Frame::Error`] (which is never yielded as `Ok`),
    ///   [`StreamFailure::Transport`] when `bytes` yields an error,
    ///   [`StreamFailure::Malformed`] for bytes that are not UTF-8 or an
    ///   event the format cannot read, and [`StreamFailure::Incomplete`] when
    ///   the body ends before the format's terminal marker (a partial event
    ///   at the very end is dropped, as the SSE standard says).
    ///
    /// A body that ends without a single event and is not server-sent
    /// events at all (a server that ignored `"stream": true` and sent its
    /// JSON answer, a JSON error body, a proxy's HTML page) is not an
    /// incomplete stream: a JSON error body is read as the error event it
    /// stands for ([`StreamFailure::ErrorEvent`], classified by
    /// [`ProviderError::from_data`]), anything else is
    /// [`StreamFailure::Malformed`], quoting how the body starts. Its first
    /// 4 KiB are kept for that, until the first event.
    ///
    /// Each error carries the number of [`Frame::Content`]s yielded before
    /// it, which [`Frames::delivered`] also tells at any time.
    ///
    /// It does not time anything: wrap each `next()` in a timeout to catch a
    /// stalled stream, and report
    /// [`StreamError::first_event_timeout`] or [`StreamError::idle_timeout`]
    /// with [`Frames::delivered`].
    pub struct Frames<S, F> {
        #[pin]
        events: EventStream<Head<S>>,
        format: F,
        delivered: u64,
        state: State,
        // How the body starts, until its first event.
        head: Arc<Kept>,
    }
}

/// How much of a body is kept until its first event.
const KEPT: usize = 4096;

/// The start of a body, kept until its first event, to tell a body that is
/// not server-sent events from one cut short.
#[derive(Debug, Default)]
struct Kept {
    /// Whether bytes are still kept: until the first event, or [`KEPT`].
    keeping: AtomicBool,
    bytes: Mutex<Vec<u8>>,
}

pin_project! {
    /// The body's chunks, passed on as they are, the first [`KEPT`] bytes
    /// copied into a [`Kept`] until the first event.
    struct Head<S> {
        #[pin]
        inner: S,
        kept: Arc<Kept>,
    }
}

impl<S, B, E> Stream for Head<S>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
{
    type Item = Result<B, E>;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        let item = ready!(this.inner.poll_next(cx));
        if let Some(Ok(chunk)) = &item {
            if this.kept.keeping.load(Relaxed) {
                this.kept.keep(chunk.as_ref());
            }
        }
        Poll::Ready(item)
    }
}

impl Kept {
    #[cold]
    fn keep(&self, chunk: &[u8]) {
        let Ok(mut bytes) = self.bytes.lock() else {
            return;
        };
        let room = KEPT.saturating_sub(bytes.len());
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() >= KEPT {
            self.keeping.store(false, Relaxed);
        }
    }

    /// An event came: nothing more is kept.
    #[inline]
    fn stop(&self) {
        if self.keeping.load(Relaxed) {
            self.keeping.store(false, Relaxed);
            if let Ok(mut bytes) = self.bytes.lock() {
                *bytes = Vec::new();
            }
        }
    }

    /// Why a body that ended without any event ended so: it was cut short
    /// ([`StreamFailure::Incomplete`]), or it was never server-sent events.
    #[cold]
    fn ended_without_events(&self) -> StreamFailure {
        let bytes = self.bytes.lock().map(|b| b.clone()).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        let body = text.trim_start();
        // An SSE body starts with a field (`data:`, `event:`, `id:`,
        // `retry:`) or a comment (`:`); one cut short before its first
        // whole event is incomplete.
        let sse = body.is_empty()
            || body.starts_with(':')
            || ["data", "event", "id", "retry"].iter().any(|field| {
                body.strip_prefix(field)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '\n', '\r']))
            });
        if sse {
            return StreamFailure::Incomplete;
        }
        if let Ok(serde_json::Value::Object(json)) = serde_json::from_str(body) {
            if json.get("error").is_some_and(|e| !e.is_null()) {
                return StreamFailure::ErrorEvent(ProviderError::from_data(body));
            }
        }
        let start: String = body.chars().take(120).collect();
        StreamFailure::Malformed(Malformed::new(format!(
            "the body is not server-sent events (did the server ignore `\"stream\": true`?); it starts: {start:?}"
        )))
    }
}

/// Where a [`Frames`] stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    /// The terminal marker came.
    Done,
    /// An error was yielded.
    Failed,
}

impl<S, F> Frames<S, F> {
    /// The frames of the SSE body `bytes` in `format`.
    pub fn new(bytes: S, format: F) -> Self {
        let head = Arc::new(Kept {
            keeping: AtomicBool::new(true),
            bytes: Mutex::new(Vec::new()),
        });
        Frames {
            events: EventStream::new(Head {
                inner: bytes,
                kept: Arc::clone(&head),
            }),
            format,
            delivered: 0,
            state: State::Reading,
            head,
        }
    }

    /// How many [`Frame::Content`]s have been yielded so far.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Whether the format's terminal marker ([`Frame::Done`]) has been
    /// yielded: the answer is complete.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Whether the stream has ended, with [`Frame::Done`] or an error.
    pub fn is_finished(&self) -> bool {
        self.state != State::Reading
    }

    /// The format.
    pub fn format(&self) -> &F {
        &self.format
    }
}

impl<S, F> fmt::Debug for Frames<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frames")
            .field("delivered", &self.delivered)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<S, B, E, F> Stream for Frames<S, F>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: Into<Box<dyn Error + Send + Sync + 'static>>,
    F: EventFormat,
{
    type Item = Result<Frame, StreamError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        if *this.state != State::Reading {
            return Poll::Ready(None);
        }
        let next = ready!(this.events.as_mut().poll_next(cx));
        if let Some(Ok(_)) = &next {
            this.head.stop();
        }
        let failure = match next {
            Some(Ok(event)) => match this.format.frame(&view(&event)) {
                Ok(Frame::Error(error)) => StreamFailure::ErrorEvent(error),
                Ok(frame) => {
                    match frame {
                        Frame::Content(_) | Frame::Output(_) => *this.delivered += 1,
                        Frame::Done => *this.state = State::Done,
                        _ => {}
                    }
                    return Poll::Ready(Some(Ok(frame)));
                }
                Err(malformed) => StreamFailure::Malformed(malformed),
            },
            Some(Err(EventStreamError::Transport(error))) => {
                *this.state = State::Failed;
                let error = StreamError::transport(error, *this.delivered);
                return Poll::Ready(Some(Err(error)));
            }
            Some(Err(EventStreamError::Utf8(error))) => {
                StreamFailure::Malformed(Malformed::new(format!("body is not UTF-8: {error}")))
            }
            Some(Err(EventStreamError::Parser(error))) => StreamFailure::Malformed(Malformed::new(
                format!("body is not server-sent events: {error}"),
            )),
            None if *this.delivered == 0 => this.head.ended_without_events(),
            None => StreamFailure::Incomplete,
        };
        *this.state = State::Failed;
        Poll::Ready(Some(Err(StreamError::new(failure, *this.delivered))))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.state {
            State::Reading => (0, None),
            State::Done | State::Failed => (0, Some(0)),
        }
    }
}

/// The borrowed view of a decoded event that formats read.
fn view(event: &Event) -> SseEvent<'_> {
    SseEvent::named(&event.event, &event.data).with_id(&event.id)
}
