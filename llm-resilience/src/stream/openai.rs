//! OpenAI-compatible chat completions streams.

use serde_json::Value;

use super::{EventFormat, Frame, Malformed, ProviderError, SseEvent};

/// The streaming format of OpenAI's chat completions API (`POST
/// /v1/chat/completions` with `"stream": true`), which most
/// OpenAI-compatible servers (vLLM, llama.cpp, Ollama, OpenRouter, Azure
/// OpenAI, ...) speak too.
///
/// Every event is an unnamed `data:` line holding a
/// [`chat.completion.chunk`](https://platform.openai.com/docs/api-reference/chat-streaming)
/// object, and the stream ends with the line `data: [DONE]`
/// (see OpenAI's [streaming guide](https://platform.openai.com/docs/guides/streaming-responses)):
///
/// ```text
/// data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}
///
/// data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}
///
/// data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}
///
/// data: [DONE]
/// ```
///
/// | event | frame |
/// |---|---|
/// | `data: [DONE]` | [`Frame::Done`] |
/// | a chunk whose choice `0` has a non-empty `delta.content` | [`Frame::Content`] |
/// | a chunk with an `error` member, `{"error": {"message", "type", "code"}}`, as OpenAI-compatible servers report errors mid-stream; or an event named `error` | [`Frame::Error`], classified by [`ProviderError::from_data`] |
/// | a chunk whose choice `0` has a non-empty `delta.tool_calls`, `function_call`, `refusal`, `reasoning_content` or `reasoning` | [`Frame::Output`], with the chunk |
/// | any other chunk: the role, `finish_reason`, usage, other choices | [`Frame::Other`] |
/// | data that is not a JSON object | [`Malformed`] |
///
/// Only the text of choice `0` is content: a request with `n` above 1 gets
/// the first choice only.
///
/// ```
/// use llm_resilience::stream::{EventFormat, Frame, OpenAi, SseEvent};
/// use llm_resilience::{Classify, ErrorKind};
///
/// let chunk = r#"{"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#;
/// assert_eq!(OpenAi.frame(&SseEvent::message(chunk)), Ok(Frame::Content("Hi".into())));
/// assert_eq!(OpenAi.frame(&SseEvent::message("[DONE]")), Ok(Frame::Done));
///
/// let error = r#"{"error":{"message":"The server had an error","type":"server_error","code":null}}"#;
/// let Ok(Frame::Error(e)) = OpenAi.frame(&SseEvent::message(error)) else { panic!() };
/// assert_eq!(e.kind(), ErrorKind::Server);
///
/// assert!(OpenAi.frame(&SseEvent::message("{not json")).is_err());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct OpenAi;

/// The members of a chunk's `delta` that carry output other than text:
/// tool calls (and the older function call), a refusal, and the reasoning
/// that reasoning models stream before their answer (`reasoning_content`
/// from DeepSeek, vLLM and others, `reasoning` from OpenRouter and Ollama).
const OUTPUT: [&str; 5] = [
    "tool_calls",
    "function_call",
    "refusal",
    "reasoning_content",
    "reasoning",
];

impl EventFormat for OpenAi {
    fn frame(&self, event: &SseEvent<'_>) -> Result<Frame, Malformed> {
        if event.data.trim() == "[DONE]" {
            return Ok(Frame::Done);
        }
        if event.event == "error" {
            return Ok(Frame::Error(ProviderError::from_data(event.data)));
        }
        let chunk: Value = serde_json::from_str(event.data)
            .map_err(|e| Malformed::new(format!("chat completion chunk is not JSON: {e}")))?;
        if !chunk.is_object() {
            return Err(Malformed::new("chat completion chunk is not a JSON object"));
        }
        if chunk.get("error").is_some_and(|e| !e.is_null()) {
            return Ok(Frame::Error(ProviderError::from_data(event.data)));
        }
        let Some(delta) = chunk
            .get("choices")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|choice| choice.get("index").is_none_or(|i| i.as_u64() == Some(0)))
            .and_then(|choice| choice.get("delta"))
        else {
            return Ok(Frame::Other);
        };
        if let Some(text) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|text| !text.is_empty())
        {
            return Ok(Frame::Content(text.to_owned()));
        }
        let output = OUTPUT.iter().any(|field| match delta.get(*field) {
            None | Some(Value::Null) => false,
            Some(Value::String(text)) => !text.is_empty(),
            Some(Value::Array(items)) => !items.is_empty(),
            Some(_) => true,
        });
        Ok(if output {
            Frame::Output(event.data.to_owned())
        } else {
            Frame::Other
        })
    }
}
