//! Streamed chat calls (feature `stream`): server-sent events decoded into
//! classified frames.
//!
//! A streamed chat call answers `200 OK` with a body of
//! [server-sent events] (SSE) and sends the answer a few characters at a
//! time. Things can still go wrong after the `200`: the provider sends an
//! error *event*, the connection drops, the stream stalls, or it just ends
//! before the answer is complete. This module turns the bytes of such a body
//! into [`Frame`]s and every way it can fail into a [`StreamError`] that
//! implements [`Classify`](crate::Classify) and says how many content events
//! were delivered before the failure, so that a caller can tell a complete
//! answer from a truncated one, and a failure before the first token (safe to
//! retry) from one after it.
//!
//! The layers:
//!
//! - SSE itself is decoded by the [`eventsource-stream`] crate: lines,
//!   `event:`/`data:`/`id:` fields, multi-line data, comments and events split
//!   across chunks of bytes anywhere, even inside a UTF-8 character.
//! - An [`EventFormat`] says what one decoded [`SseEvent`] means: a piece of
//!   the answer ([`Frame::Content`]), an error ([`Frame::Error`], a
//!   classified [`ProviderError`]), the end ([`Frame::Done`]), or nothing the
//!   caller needs ([`Frame::Other`]: pings, metadata). [`OpenAi`] and
//!   [`Anthropic`] are the two formats LLM APIs use; implement the trait for
//!   another.
//! - [`decode`] (or [`Frames::new`]) puts both over any stream of byte chunks,
//!   such as reqwest's `Response::bytes_stream()`, and yields
//!   `Result<Frame, StreamError>`: the frames in order, ending after
//!   [`Frame::Done`], or with an error: an error event, a transport failure,
//!   an undecodable event, or a body that ended without the format's terminal
//!   marker.
//!
//! Timing (how long to wait for the first event, or between two events) is
//! the caller's: [`StreamError::first_event_timeout`] and
//! [`StreamError::idle_timeout`] are the errors to report when a wait runs
//! out.
//!
//! ```
//! use futures_util::{stream, StreamExt};
//! use llm_resilience::stream::{decode, Frame, OpenAi, StreamFailure};
//! use llm_resilience::{Classify, ErrorKind};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // A body cut after two tokens, in two chunks split mid-line.
//! let body = [
//!     "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\nda",
//!     "ta: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\n\n",
//! ];
//! let chunks = stream::iter(body.map(Ok::<_, std::io::Error>));
//! let mut frames = decode(chunks, OpenAi);
//!
//! let mut answer = String::new();
//! let error = loop {
//!     match frames.next().await {
//!         Some(Ok(Frame::Content(text))) => answer.push_str(&text),
//!         Some(Ok(_)) => {}
//!         Some(Err(error)) => break error,
//!         None => unreachable!("a stream without [DONE] ends with an error"),
//!     }
//! };
//! assert_eq!(answer, "Hello");
//! assert!(matches!(error.failure(), StreamFailure::Incomplete));
//! assert_eq!(error.delivered(), 2);
//! assert_eq!(error.kind(), ErrorKind::Network); // cut off: worth another attempt
//! # }
//! ```
//!
//! [server-sent events]: https://html.spec.whatwg.org/multipage/server-sent-events.html
//! [`eventsource-stream`]: https://docs.rs/eventsource-stream

mod anthropic;
mod error;
mod frames;
mod openai;
#[cfg(feature = "tokio")]
mod retried;
#[cfg(feature = "tokio")]
mod watch;

pub use anthropic::Anthropic;
pub use error::{Malformed, ProviderError, StreamError, StreamFailure};
pub use frames::{decode, Frames};
pub use openai::OpenAi;
#[cfg(feature = "tokio")]
pub use retried::{OnInterrupt, Received, RetriedStream, StreamItem, StreamOptions};

/// One server-sent event, as decoded from the body: its type, data and id.
///
/// `event` is the `event:` field, or `"message"` when the event has none
/// (the SSE default; OpenAI's chat completions name none). `data` is the
/// `data:` fields joined by `\n`, without the last line feed; an event whose
/// data is empty is never dispatched, as the SSE standard says. `id` is the
/// last `id:` field seen so far, or empty.
///
/// Build one with [`SseEvent::message`] or [`SseEvent::named`] to test an
/// [`EventFormat`].
///
/// ```
/// use llm_resilience::stream::SseEvent;
///
/// let ping = SseEvent::named("ping", r#"{"type": "ping"}"#);
/// assert_eq!(ping.event, "ping");
/// assert_eq!(SseEvent::message("[DONE]").event, "message");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SseEvent<'a> {
    /// The event type: the `event:` field, `"message"` by default.
    pub event: &'a str,
    /// The data: the `data:` lines joined by `\n`.
    pub data: &'a str,
    /// The last event id, or empty.
    pub id: &'a str,
}

impl<'a> SseEvent<'a> {
    /// An event without an `event:` field (so of type `"message"`) carrying
    /// `data`.
    pub fn message(data: &'a str) -> Self {
        SseEvent::named("message", data)
    }

    /// An event of type `event` carrying `data`.
    pub fn named(event: &'a str, data: &'a str) -> Self {
        SseEvent {
            event,
            data,
            id: "",
        }
    }

    /// This event with the id `id`.
    ///
    /// ```
    /// use llm_resilience::stream::SseEvent;
    ///
    /// assert_eq!(SseEvent::message("x").with_id("7").id, "7");
    /// ```
    pub fn with_id(mut self, id: &'a str) -> Self {
        self.id = id;
        self
    }
}

/// What one event of a stream means to the caller.
///
/// An [`EventFormat`] makes one from each [`SseEvent`]. [`Frames`] yields
/// them in order, except [`Frame::Error`], which it turns into a
/// [`StreamError`] ending the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Frame {
    /// A piece of the answer's text (never empty).
    Content(String),
    /// Output of the model that is not the answer's text: a piece of its
    /// reasoning ("thinking"), of a tool call's arguments, of a refusal. It
    /// holds the event's data as the provider sent it (JSON, for
    /// [`OpenAi`] and [`Anthropic`]). Like [`Frame::Content`], it ends the
    /// wait for the first event: a reasoning model or a call that answers
    /// with a tool call is producing its answer.
    Output(String),
    /// The provider reported an error in the stream.
    Error(ProviderError),
    /// The format's terminal marker: the answer is complete.
    Done,
    /// Anything else: pings, metadata, the start and end of blocks, usage,
    /// events of types the format does not know. Keeps the stream alive but
    /// carries no text.
    Other,
}

/// A provider's streaming format: what each server-sent event means.
///
/// [`OpenAi`] and [`Anthropic`] implement it. For another provider, map its
/// events to [`Frame`]s, and return [`Malformed`] for an event that the
/// format says carries something but cannot be read:
///
/// ```
/// use llm_resilience::stream::{EventFormat, Frame, Malformed, ProviderError, SseEvent};
/// use llm_resilience::{Classify, ErrorKind};
///
/// /// A made-up format: `event: token` carries text, `event: fail` an error,
/// /// `event: end` ends the stream.
/// struct Plain;
///
/// impl EventFormat for Plain {
///     fn frame(&self, event: &SseEvent<'_>) -> Result<Frame, Malformed> {
///         Ok(match event.event {
///             "token" => Frame::Content(event.data.to_owned()),
///             "fail" => Frame::Error(ProviderError::from_data(event.data)),
///             "end" => Frame::Done,
///             _ => Frame::Other,
///         })
///     }
/// }
///
/// let fail = SseEvent::named("fail", r#"{"error": {"type": "overloaded_error", "message": "Overloaded"}}"#);
/// let Ok(Frame::Error(error)) = Plain.frame(&fail) else { panic!() };
/// assert_eq!(error.kind(), ErrorKind::Overloaded);
/// ```
pub trait EventFormat {
    /// What `event` means. An `Err` ends the stream with a
    /// [`StreamFailure::Malformed`] error.
    fn frame(&self, event: &SseEvent<'_>) -> Result<Frame, Malformed>;
}

impl<F: EventFormat + ?Sized> EventFormat for &F {
    fn frame(&self, event: &SseEvent<'_>) -> Result<Frame, Malformed> {
        (**self).frame(event)
    }
}

impl<F: EventFormat + ?Sized> EventFormat for Box<F> {
    fn frame(&self, event: &SseEvent<'_>) -> Result<Frame, Malformed> {
        (**self).frame(event)
    }
}

impl<F: EventFormat + ?Sized> EventFormat for std::sync::Arc<F> {
    fn frame(&self, event: &SseEvent<'_>) -> Result<Frame, Malformed> {
        (**self).frame(event)
    }
}

#[cfg(test)]
mod tests;
