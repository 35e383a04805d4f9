//! Anthropic messages streams.

use serde_json::Value;

use super::{EventFormat, Frame, Malformed, ProviderError, SseEvent};

/// The streaming format of Anthropic's messages API (`POST /v1/messages`
/// with `"stream": true`), as described in Anthropic's
/// [streaming messages](https://docs.anthropic.com/en/api/messages-streaming)
/// documentation.
///
/// Every event is named, and its data is a JSON object whose `type` repeats
/// the name:
///
/// ```text
/// event: message_start
/// data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],...}}
///
/// event: content_block_start
/// data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}
///
/// event: ping
/// data: {"type": "ping"}
///
/// event: content_block_delta
/// data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}
///
/// event: content_block_stop
/// data: {"type":"content_block_stop","index":0}
///
/// event: message_delta
/// data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}
///
/// event: message_stop
/// data: {"type":"message_stop"}
/// ```
///
/// and errors come as `event: error` with
/// `data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`.
///
/// | event | frame |
/// |---|---|
/// | `message_stop` | [`Frame::Done`] |
/// | `content_block_delta` with a `text_delta` | [`Frame::Content`] (when the text is not empty) |
/// | `error` | [`Frame::Error`], classified by [`ProviderError::from_data`] |
/// | `content_block_delta` with another delta (`thinking_delta`, `input_json_delta` of a tool call, `signature_delta`, `citations_delta`, ...) | [`Frame::Output`], with the event's data |
/// | `message_start`, `content_block_start`, `content_block_stop`, `message_delta`, `ping`, and event types Anthropic may add | [`Frame::Other`] |
/// | a `content_block_delta` whose data is not JSON, or a `text_delta` without text | [`Malformed`] |
///
/// An event without a name (type `message`, as a proxy may leave it) is
/// taken by the `type` in its data.
///
/// ```
/// use llm_resilience::stream::{Anthropic, EventFormat, Frame, SseEvent};
/// use llm_resilience::{Classify, ErrorKind};
///
/// let delta = r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#;
/// let event = SseEvent::named("content_block_delta", delta);
/// assert_eq!(Anthropic.frame(&event), Ok(Frame::Content("Hi".into())));
///
/// let stop = SseEvent::named("message_stop", r#"{"type":"message_stop"}"#);
/// assert_eq!(Anthropic.frame(&stop), Ok(Frame::Done));
///
/// let error = r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
/// let Ok(Frame::Error(e)) = Anthropic.frame(&SseEvent::named("error", error)) else { panic!() };
/// assert_eq!(e.kind(), ErrorKind::Overloaded);
///
/// assert_eq!(Anthropic.frame(&SseEvent::named("ping", r#"{"type": "ping"}"#)), Ok(Frame::Other));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Anthropic;

impl EventFormat for Anthropic {
    fn frame(&self, event: &SseEvent<'_>) -> Result<Frame, Malformed> {
        let parsed = || serde_json::from_str::<Value>(event.data);
        let unnamed_type;
        let name = if event.event == "message" {
            unnamed_type = parsed()
                .ok()
                .and_then(|data| data.get("type").and_then(Value::as_str).map(str::to_owned));
            unnamed_type.as_deref().unwrap_or("message")
        } else {
            event.event
        };
        match name {
            "message_stop" => Ok(Frame::Done),
            "error" => Ok(Frame::Error(ProviderError::from_data(event.data))),
            "content_block_delta" => {
                let data = parsed().map_err(|e| {
                    Malformed::new(format!("content_block_delta data is not JSON: {e}"))
                })?;
                let delta = data.get("delta");
                if delta.and_then(|d| d.get("type")).and_then(Value::as_str) != Some("text_delta") {
                    // Thinking, a tool call's input, a signature, citations.
                    return Ok(Frame::Output(event.data.to_owned()));
                }
                match delta.and_then(|d| d.get("text")).and_then(Value::as_str) {
                    Some("") => Ok(Frame::Other),
                    Some(text) => Ok(Frame::Content(text.to_owned())),
                    None => Err(Malformed::new("text_delta without a text")),
                }
            }
            _ => Ok(Frame::Other),
        }
    }
}
