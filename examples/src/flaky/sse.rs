//! Streamed answers: the server-sent events of OpenAI's chat completions and
//! Anthropic's messages, and the [`StreamFault`]s that break them.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::channel::Channel;
use hyper::header::{HeaderValue, CACHE_CONTROL};
use hyper::Response;
use serde_json::{json, Value};

use super::responses::{anthropic_status_error, openai_status_error, Answer, Api, Stored};
use super::scenario::StreamFault;

/// The error of a body, as hyper takes it.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How many events wait between the task that writes a stream and hyper.
const BUFFER: usize = 4;

/// How long a cut waits for hyper to write out the events sent before it.
const CUT_GRACE: Duration = Duration::from_millis(50);

/// How the provider splits an answer into content events: after each
/// whitespace character, so `"hello there  you"` is `"hello "`, `"there "`,
/// `" "`, `"you"`. The pieces put together are the text again; an empty text
/// has none.
///
/// ```
/// use examples::flaky::answer_tokens;
///
/// assert_eq!(answer_tokens("hello there"), ["hello ", "there"]);
/// assert!(answer_tokens("").is_empty());
/// ```
pub fn answer_tokens(text: &str) -> Vec<&str> {
    text.split_inclusive(char::is_whitespace).collect()
}

/// One thing the task writing a stream does.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    /// Send this event.
    Send(Bytes),
    /// Send nothing for this long.
    Sleep(Duration),
    /// Cut the connection: the chunked body is never finished.
    Cut,
}

/// A streamed answer's events, in three parts.
struct Events {
    /// Before the first content event.
    preamble: Vec<Bytes>,
    /// One per token.
    content: Vec<Bytes>,
    /// After the last content event, the terminal marker last.
    ending: Vec<Bytes>,
}

/// `data: {json}` and a blank line.
fn data(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

/// `event: {name}`, `data: {json}` and a blank line.
fn event(name: &str, value: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {value}\n\n"))
}

fn events(answer: &Answer, api: Api) -> Events {
    let tokens = answer_tokens(&answer.text);
    match api {
        Api::ChatCompletions => {
            let chunk = |delta: Value, finish: Value| {
                data(&json!({
                    "id": format!("chatcmpl-flaky{}", answer.number),
                    "object": "chat.completion.chunk",
                    "created": answer.created,
                    "model": answer.model,
                    "system_fingerprint": null,
                    "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
                }))
            };
            Events {
                preamble: vec![chunk(
                    json!({"role": "assistant", "content": "", "refusal": null}),
                    Value::Null,
                )],
                content: tokens
                    .iter()
                    .map(|token| chunk(json!({"content": token}), Value::Null))
                    .collect(),
                ending: vec![
                    chunk(json!({}), json!("stop")),
                    Bytes::from_static(b"data: [DONE]\n\n"),
                ],
            }
        }
        Api::Messages => Events {
            preamble: vec![
                event(
                    "message_start",
                    &json!({"type": "message_start", "message": {
                        "id": format!("msg_flaky{}", answer.number),
                        "type": "message",
                        "role": "assistant",
                        "model": answer.model,
                        "content": [],
                        "stop_reason": null,
                        "stop_sequence": null,
                        "usage": {"input_tokens": answer.prompt_tokens, "output_tokens": 1},
                    }}),
                ),
                event(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": 0,
                            "content_block": {"type": "text", "text": ""}}),
                ),
                event("ping", &json!({"type": "ping"})),
            ],
            content: tokens
                .iter()
                .map(|token| {
                    event(
                        "content_block_delta",
                        &json!({"type": "content_block_delta", "index": 0,
                                "delta": {"type": "text_delta", "text": token}}),
                    )
                })
                .collect(),
            ending: vec![
                event(
                    "content_block_stop",
                    &json!({"type": "content_block_stop", "index": 0}),
                ),
                event(
                    "message_delta",
                    &json!({"type": "message_delta",
                            "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                            "usage": {"output_tokens": answer.completion_tokens}}),
                ),
                event("message_stop", &json!({"type": "message_stop"})),
            ],
        },
    }
}

/// The error event a provider of `api` sends for `status`: OpenAI-compatible
/// servers a `data:` line holding `{"error": {...}}`, Anthropic an
/// `event: error`.
fn error_event(api: Api, status: u16) -> Bytes {
    match api {
        Api::ChatCompletions => {
            let (message, kind, code) = match status {
                429 => (
                    "Rate limit reached for requests. Please try again later.",
                    "requests",
                    Some("rate_limit_exceeded"),
                ),
                _ => openai_status_error(status),
            };
            data(&json!({"error": {"message": message, "type": kind, "param": null, "code": code}}))
        }
        Api::Messages => {
            let (kind, message) = anthropic_status_error(status);
            event(
                "error",
                &json!({"type": "error", "error": {"type": kind, "message": message}}),
            )
        }
    }
}

/// What the task writing `answer`'s stream for `api` does, `fault` included.
pub(crate) fn script(answer: &Answer, api: Api, fault: Option<StreamFault>) -> Vec<Step> {
    let Events {
        preamble,
        content,
        ending,
    } = events(answer, api);
    let send = |events: &[Bytes]| events.iter().cloned().map(Step::Send).collect::<Vec<_>>();
    let upto = |after: u32| usize::try_from(after).map_or(content.len(), |n| n.min(content.len()));
    let mut steps = Vec::new();
    match fault {
        None => {
            steps.extend(send(&preamble));
            steps.extend(send(&content));
            steps.extend(send(&ending));
        }
        Some(StreamFault::ErrorEvent { after: 0, status }) => {
            steps.push(Step::Send(error_event(api, status)));
        }
        Some(StreamFault::ErrorEvent { after, status }) => {
            steps.extend(send(&preamble));
            steps.extend(send(&content[..upto(after)]));
            steps.push(Step::Send(error_event(api, status)));
        }
        Some(StreamFault::Stall { after: 0, stall }) => {
            steps.push(Step::Sleep(stall));
            steps.extend(send(&preamble));
            steps.extend(send(&content));
            steps.extend(send(&ending));
        }
        Some(StreamFault::Stall { after, stall }) => {
            let n = upto(after);
            steps.extend(send(&preamble));
            steps.extend(send(&content[..n]));
            steps.push(Step::Sleep(stall));
            steps.extend(send(&content[n..]));
            steps.extend(send(&ending));
        }
        Some(StreamFault::EndEarly { after }) => {
            steps.extend(send(&preamble));
            steps.extend(send(&content[..upto(after)]));
        }
        Some(StreamFault::Drop { after }) => {
            steps.extend(send(&preamble));
            steps.extend(send(&content[..upto(after)]));
            steps.push(Step::Cut);
        }
        Some(StreamFault::SlowTokens(delay)) => {
            steps.extend(send(&preamble));
            for event in content {
                steps.push(Step::Sleep(delay));
                steps.push(Step::Send(event));
            }
            steps.extend(send(&ending));
        }
    }
    steps
}

/// The error that cuts a stream's connection.
#[derive(Debug)]
struct StreamCut;

impl fmt::Display for StreamCut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection cut mid-stream on purpose")
    }
}

impl std::error::Error for StreamCut {}

/// A body that a task of its own writes by `steps`. The task stops when the
/// client goes away (or the server shuts down).
fn body(steps: Vec<Step>) -> Channel<Bytes, BoxError> {
    let (mut tx, body) = Channel::new(BUFFER);
    tokio::spawn(async move {
        for step in steps {
            match step {
                Step::Send(event) => {
                    if tx.send_data(event).await.is_err() {
                        return; // The client hung up.
                    }
                }
                Step::Sleep(wait) => tokio::time::sleep(wait).await,
                Step::Cut => {
                    // hyper drops what it has not written when the body
                    // fails: let it take and write out what was sent.
                    for _ in 0..200 {
                        if tx.capacity() == tx.max_capacity() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    tokio::time::sleep(CUT_GRACE).await;
                    tx.abort(Box::new(StreamCut) as BoxError);
                    return;
                }
            }
        }
    });
    body
}

/// The streamed response to a request of `api` whose answer is `answer`
/// (stored as `stored`), with `fault`: `text/event-stream`, the stored
/// headers, `x-request-id` and, for a replay, `idempotent-replayed: true`.
pub(crate) fn response(
    stored: &Stored,
    answer: &Answer,
    api: Api,
    request_id: &str,
    replayed: bool,
    fault: Option<StreamFault>,
) -> Response<Channel<Bytes, BoxError>> {
    let mut resp = Response::new(body(script(answer, api, fault)));
    stored.head(
        &mut resp,
        "text/event-stream; charset=utf-8",
        request_id,
        replayed,
    );
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(text: &str) -> Answer {
        Answer {
            number: 7,
            model: "m".into(),
            text: text.into(),
            prompt_tokens: 3,
            completion_tokens: 2,
            created: 0,
        }
    }

    fn sent(steps: &[Step]) -> String {
        steps
            .iter()
            .filter_map(|s| match s {
                Step::Send(b) => Some(String::from_utf8(b.to_vec()).unwrap()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn tokens_put_together_are_the_text() {
        for text in ["", "one", "one two", "  lead and  double ", "é ü 👋"] {
            assert_eq!(answer_tokens(text).concat(), text);
            assert!(answer_tokens(text).iter().all(|t| !t.is_empty()));
        }
    }

    #[test]
    fn a_clean_stream_ends_with_its_marker() {
        let openai = sent(&script(&answer("a b"), Api::ChatCompletions, None));
        assert!(openai.ends_with("data: [DONE]\n\n"), "{openai}");
        assert_eq!(openai.matches("\"content\":\"a \"").count(), 1);
        let anthropic = sent(&script(&answer("a b"), Api::Messages, None));
        assert!(anthropic.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
        assert_eq!(anthropic.matches("event: content_block_delta").count(), 2);
    }

    #[test]
    fn faults_come_where_they_say() {
        let a = answer("one two three four");
        let steps = script(
            &a,
            Api::Messages,
            Some(StreamFault::ErrorEvent {
                after: 0,
                status: 529,
            }),
        );
        let body = sent(&steps);
        let data = body.strip_prefix("event: error\ndata: ").unwrap();
        let data: Value = serde_json::from_str(data.strip_suffix("\n\n").unwrap()).unwrap();
        assert_eq!(
            data,
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
        );
        let steps = script(
            &a,
            Api::ChatCompletions,
            Some(StreamFault::ErrorEvent {
                after: 2,
                status: 500,
            }),
        );
        let body = sent(&steps);
        assert_eq!(body.matches("\"content\":\"").count(), 3); // the role chunk and two tokens
        let last = body.rsplit("data: ").next().unwrap();
        let last: Value = serde_json::from_str(last.strip_suffix("\n\n").unwrap()).unwrap();
        assert_eq!(last["error"]["type"], "server_error", "{body}");
        assert_eq!(last["error"]["code"], Value::Null);
        assert!(last["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("The server had an error"));

        let steps = script(
            &a,
            Api::ChatCompletions,
            Some(StreamFault::Drop { after: 9 }),
        );
        assert_eq!(steps.last(), Some(&Step::Cut));
        assert!(!sent(&steps).contains("[DONE]"));
        assert_eq!(sent(&steps).matches("\"content\":\"").count(), 5); // all of it

        let stall = Duration::from_secs(1);
        let steps = script(
            &a,
            Api::Messages,
            Some(StreamFault::Stall { after: 0, stall }),
        );
        assert_eq!(steps[0], Step::Sleep(stall));
        let steps = script(
            &a,
            Api::Messages,
            Some(StreamFault::Stall { after: 1, stall }),
        );
        assert_eq!(steps[4], Step::Sleep(stall)); // 3 preamble events, 1 token
        assert!(
            sent(&steps).ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
        );

        let steps = script(&a, Api::Messages, Some(StreamFault::EndEarly { after: 3 }));
        assert_eq!(steps.len(), 3 + 3);
        let steps = script(&a, Api::Messages, Some(StreamFault::SlowTokens(stall)));
        assert_eq!(
            steps.iter().filter(|s| **s == Step::Sleep(stall)).count(),
            4
        );
    }
}
