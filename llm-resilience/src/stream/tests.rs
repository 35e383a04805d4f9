//! The formats and the adapter on literal SSE text.

use std::io;

use futures_util::{stream, StreamExt};

use super::*;
use crate::{Classify, ErrorKind};

/// The frames of `chunks` decoded in `format`, and the error that ended them
/// (if any). Checks that the stream is finished after it.
async fn run<F: EventFormat>(
    chunks: Vec<Result<Vec<u8>, io::Error>>,
    format: F,
) -> (Vec<Frame>, Option<StreamError>) {
    let mut frames = decode(stream::iter(chunks), format);
    let mut out = Vec::new();
    let mut error = None;
    while let Some(item) = frames.next().await {
        match item {
            Ok(frame) => out.push(frame),
            Err(e) => {
                assert_eq!(e.delivered(), frames.delivered());
                error = Some(e);
            }
        }
    }
    assert!(frames.is_finished());
    assert!(frames.next().await.is_none(), "fused after the end");
    (out, error)
}

/// `text` as one chunk.
fn whole(text: &str) -> Vec<Result<Vec<u8>, io::Error>> {
    vec![Ok(text.as_bytes().to_vec())]
}

/// `bytes` cut at `at`.
fn split(bytes: &[u8], at: usize) -> Vec<Result<Vec<u8>, io::Error>> {
    vec![Ok(bytes[..at].to_vec()), Ok(bytes[at..].to_vec())]
}

/// `bytes` a byte at a time.
fn bytewise(bytes: &[u8]) -> Vec<Result<Vec<u8>, io::Error>> {
    bytes.iter().map(|b| Ok(vec![*b])).collect()
}

fn content(frames: &[Frame]) -> String {
    frames
        .iter()
        .filter_map(|f| match f {
            Frame::Content(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

fn openai_chunk(text: &str) -> String {
    let chunk = serde_json::json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-test",
        "choices": [{"index": 0, "delta": {"content": text}, "logprobs": null, "finish_reason": null}],
    });
    format!("data: {chunk}\n\n")
}

/// An OpenAI stream of `tokens`, as OpenAI sends it: a role chunk, the
/// content chunks, a `finish_reason` chunk and `[DONE]`.
fn openai_stream(tokens: &[&str]) -> String {
    let mut body = String::from(
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n",
    );
    for token in tokens {
        body.push_str(&openai_chunk(token));
    }
    body.push_str("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n");
    body.push_str("data: [DONE]\n\n");
    body
}

fn anthropic_delta(text: &str) -> String {
    let data = serde_json::json!({
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": text},
    });
    format!("event: content_block_delta\ndata: {data}\n\n")
}

/// An Anthropic stream of `tokens`, with every event type it sends.
fn anthropic_stream(tokens: &[&str]) -> String {
    let mut body = String::from(concat!(
        "event: message_start\n",
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-test\",\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\n",
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: ping\n",
        "data: {\"type\": \"ping\"}\n\n",
    ));
    for token in tokens {
        body.push_str(&anthropic_delta(token));
    }
    body.push_str(concat!(
        "event: content_block_stop\n",
        "data: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_delta\n",
        "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":15}}\n\n",
        "event: message_stop\n",
        "data: {\"type\":\"message_stop\"}\n\n",
    ));
    body
}

const TOKENS: &[&str] = &["Héllo", ", wörld", " 👋", "!"];

#[tokio::test]
async fn an_openai_stream_is_its_content_then_done() {
    let (frames, error) = run(whole(&openai_stream(TOKENS)), OpenAi).await;
    assert!(error.is_none(), "{error:?}");
    let mut want = vec![Frame::Other];
    want.extend(TOKENS.iter().map(|t| Frame::Content((*t).into())));
    want.extend([Frame::Other, Frame::Done]);
    assert_eq!(frames, want);
}

#[tokio::test]
async fn an_anthropic_stream_is_its_content_then_done() {
    let (frames, error) = run(whole(&anthropic_stream(TOKENS)), Anthropic).await;
    assert!(error.is_none(), "{error:?}");
    let mut want = vec![Frame::Other; 3]; // message_start, content_block_start, ping
    want.extend(TOKENS.iter().map(|t| Frame::Content((*t).into())));
    want.extend([Frame::Other, Frame::Other, Frame::Done]);
    assert_eq!(frames, want);
}

#[tokio::test]
async fn chunks_split_anywhere_decode_the_same() {
    for (body, format) in [
        (openai_stream(TOKENS), &OpenAi as &dyn EventFormat),
        (anthropic_stream(TOKENS), &Anthropic),
    ] {
        let bytes = body.as_bytes();
        let (want, error) = run(whole(&body), format).await;
        assert!(error.is_none());
        // Every cut, inside lines, field names, JSON and UTF-8 characters.
        for at in 0..=bytes.len() {
            let (frames, error) = run(split(bytes, at), format).await;
            assert!(error.is_none(), "cut at {at}: {error:?}");
            assert_eq!(frames, want, "cut at {at}");
        }
        let (frames, error) = run(bytewise(bytes), format).await;
        assert!(error.is_none());
        assert_eq!(frames, want);
        assert_eq!(content(&frames), TOKENS.concat());
    }
}

#[tokio::test]
async fn crlf_line_endings_and_comments_are_sse_too() {
    let body = openai_stream(&["a", "b"]).replace('\n', "\r\n");
    let body = format!(": keep-alive comment\r\n\r\n{body}");
    let (frames, error) = run(whole(&body), OpenAi).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(content(&frames), "ab");
    assert_eq!(frames.last(), Some(&Frame::Done));
}

#[tokio::test]
async fn multi_line_data_is_joined_with_line_feeds() {
    // A chunk's JSON over three `data:` lines: joined by "\n", still JSON.
    let body = concat!(
        "data: {\"choices\": [\n",
        "data: {\"index\": 0, \"delta\": {\"content\": \"x\"}}\n",
        "data: ]}\n\n",
        "data: [DONE]\n\n",
    );
    let (frames, error) = run(whole(body), OpenAi).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(frames, [Frame::Content("x".into()), Frame::Done]);

    let body = concat!(
        "event: error\n",
        "data: {\"type\": \"error\",\n",
        "data:  \"error\": {\"type\": \"api_error\", \"message\": \"Internal server error\"}}\n\n",
    );
    let (frames, error) = run(whole(body), Anthropic).await;
    assert!(frames.is_empty());
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::Server);
    assert_eq!(
        error.provider_error().unwrap().message(),
        "Internal server error"
    );
}

#[tokio::test]
async fn unknown_events_are_other_and_do_not_end_the_stream() {
    let mut body = anthropic_stream(&["a"]);
    body.insert_str(
        0,
        "event: some_future_event\ndata: {\"type\": \"some_future_event\", \"x\": 1}\n\n\
         event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\"}}\n\n\
         event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"hmm\"}}\n\n\
         event: weird\ndata: not json at all\n\n",
    );
    let (frames, error) = run(whole(&body), Anthropic).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(content(&frames), "a");
    assert_eq!(frames.last(), Some(&Frame::Done));

    // OpenAI: a usage-only chunk, another choice, a tool call (output, not
    // text), a named event.
    let body = concat!(
        "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"second choice\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\"}}]}}]}\n\n",
        "event: ping\ndata: {}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"first\"}}]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}\n\n",
        "data: [DONE]\n\n",
    );
    let (frames, error) = run(whole(body), OpenAi).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        frames,
        [
            Frame::Other,
            Frame::Output(
                "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\"}}]}}]}"
                    .into()
            ),
            Frame::Other,
            Frame::Content("first".into()),
            Frame::Other,
            Frame::Done
        ]
    );
}

#[tokio::test]
async fn malformed_json_is_a_classified_error_not_a_panic() {
    let mut body = openai_chunk("ok");
    body.push_str("data: {\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"cut\n\n");
    body.push_str(&openai_chunk("never read"));
    let (frames, error) = run(whole(&body), OpenAi).await;
    assert_eq!(frames, [Frame::Content("ok".into())]);
    let error = error.unwrap();
    assert!(
        matches!(error.failure(), StreamFailure::Malformed(_)),
        "{error}"
    );
    assert_eq!(error.kind(), ErrorKind::Other);
    assert_eq!(error.delivered(), 1);
    assert!(
        error.to_string().starts_with(
            "undecodable event after 1 content event: chat completion chunk is not JSON"
        ),
        "{error}"
    );

    for data in ["42", "\"text\"", "[1, 2]", "null"] {
        let (_, error) = run(whole(&format!("data: {data}\n\n")), OpenAi).await;
        let error = error.unwrap();
        assert!(
            matches!(error.failure(), StreamFailure::Malformed(_)),
            "{data}: {error}"
        );
    }

    let bad = [
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\"}}\n\n",
    ];
    for body in bad {
        let (frames, error) = run(whole(body), Anthropic).await;
        assert!(frames.is_empty());
        let error = error.unwrap();
        assert!(
            matches!(error.failure(), StreamFailure::Malformed(_)),
            "{body}: {error}"
        );
        assert_eq!(error.kind(), ErrorKind::Other);
    }
}

#[tokio::test]
async fn bytes_that_are_not_utf8_are_malformed() {
    let mut body = openai_chunk("ok").into_bytes();
    body.extend_from_slice(b"data: \xff\xfe\n\n");
    let (frames, error) = run(vec![Ok(body)], OpenAi).await;
    assert_eq!(frames, [Frame::Content("ok".into())]);
    let error = error.unwrap();
    assert!(
        matches!(error.failure(), StreamFailure::Malformed(_)),
        "{error}"
    );
    assert!(error.to_string().contains("not UTF-8"), "{error}");
}

#[tokio::test]
async fn error_events_end_the_stream_with_the_count_delivered() {
    // First, on a 200.
    let overloaded = "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let (frames, error) = run(whole(overloaded), Anthropic).await;
    assert!(frames.is_empty());
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::Overloaded);
    assert!(error.is_before_content());
    assert_eq!(error.provider_error().unwrap().message(), "Overloaded");

    // After two tokens; nothing after the error is read.
    let mut body = anthropic_stream(&["a", "b"]);
    let at = body.find("event: content_block_stop").unwrap();
    body.insert_str(at, overloaded);
    let (frames, error) = run(whole(&body), Anthropic).await;
    assert_eq!(content(&frames), "ab");
    assert!(!frames.contains(&Frame::Done));
    let error = error.unwrap();
    assert_eq!(
        (error.kind(), error.delivered()),
        (ErrorKind::Overloaded, 2)
    );
    assert_eq!(
        error.to_string(),
        "error event after 2 content events: Overloaded (overloaded_error): Overloaded"
    );

    // OpenAI-compatible: a data line holding {"error": ...}.
    let mut body = openai_chunk("a");
    body.push_str("data: {\"error\": {\"message\": \"Rate limit reached\", \"type\": \"requests\", \"param\": null, \"code\": \"rate_limit_exceeded\"}}\n\n");
    body.push_str("data: [DONE]\n\n");
    let (frames, error) = run(whole(&body), OpenAi).await;
    assert_eq!(frames, [Frame::Content("a".into())]);
    let error = error.unwrap();
    assert_eq!((error.kind(), error.delivered()), (ErrorKind::RateLimit, 1));
    let provider = error.provider_error().unwrap();
    assert_eq!(provider.error_type(), Some("requests"));
    assert_eq!(provider.code(), Some("rate_limit_exceeded"));
    assert_eq!(provider.message(), "Rate limit reached");

    // A named `error` event in an OpenAI-compatible stream.
    let (_, error) = run(whole("event: error\ndata: upstream died\n\n"), OpenAi).await;
    let error = error.unwrap();
    assert_eq!(error.kind(), ErrorKind::Server);
    assert_eq!(error.provider_error().unwrap().message(), "upstream died");
}

#[tokio::test]
async fn a_body_without_its_terminal_marker_is_incomplete() {
    for (body, format) in [
        (openai_stream(&["a", "b", "c"]), &OpenAi as &dyn EventFormat),
        (anthropic_stream(&["a", "b", "c"]), &Anthropic),
    ] {
        // Cut before the marker, and in the middle of the marker's event.
        let marker = body
            .rfind("data: [DONE]")
            .or_else(|| body.rfind("event: message_stop"));
        let marker = marker.unwrap();
        for end in [marker, marker + 8, body.len() - 1] {
            let (frames, error) = run(whole(&body[..end]), format).await;
            assert_eq!(content(&frames), "abc");
            let error = error.unwrap();
            assert!(
                matches!(error.failure(), StreamFailure::Incomplete),
                "{error}"
            );
            assert_eq!((error.kind(), error.delivered()), (ErrorKind::Network, 3));
        }
    }
    let (frames, error) = run(Vec::new(), OpenAi).await;
    assert!(frames.is_empty());
    let error = error.unwrap();
    assert!(error.is_before_content());
    assert_eq!(
        error.to_string(),
        "stream ended without its terminal marker before any content"
    );
}

#[tokio::test]
async fn a_body_that_is_not_sse_is_not_an_incomplete_stream() {
    // A server that ignored `"stream": true`: its whole JSON answer.
    let completion = r#"{"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"}}]}"#;
    // A JSON error body sent with a 200, and a proxy's page.
    let error_body =
        r#"{"error":{"message":"bad model","type":"invalid_request_error","code":null}}"#;
    let html = "<html><body>502 Bad Gateway</body></html>";
    for (body, kind) in [
        (completion, ErrorKind::Other),
        (error_body, ErrorKind::Client),
        (html, ErrorKind::Other),
    ] {
        // Whole, and split in two anywhere.
        for chunks in [whole(body), split(body.as_bytes(), body.len() / 2)] {
            let (frames, error) = run(chunks, OpenAi).await;
            assert!(frames.is_empty());
            let error = error.expect("an error, not a clean end");
            assert_eq!(error.kind(), kind, "{body}: {error}");
            assert!(
                !matches!(error.failure(), StreamFailure::Incomplete),
                "{error}"
            );
        }
    }
    let (_, error) = run(whole(completion), OpenAi).await;
    assert!(error
        .unwrap()
        .to_string()
        .contains("not server-sent events"));
    // Server-sent events cut before their first whole event are still cut
    // short, whatever field they start with.
    for cut in [
        "data: {\"choi",
        "event: content_block_delta\nda",
        ": ping",
        "\n\nid: 1",
    ] {
        let (_, error) = run(whole(cut), OpenAi).await;
        let error = error.unwrap();
        assert!(
            matches!(error.failure(), StreamFailure::Incomplete),
            "{cut:?}: {error}"
        );
    }
}

#[tokio::test]
async fn nothing_after_the_terminal_marker_is_read() {
    let mut chunks = whole(&openai_stream(&["a"]));
    chunks.push(Ok(b"data: {not json}\n\n".to_vec()));
    chunks.push(Err(io::ErrorKind::ConnectionReset.into()));
    let (frames, error) = run(chunks, OpenAi).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(frames.last(), Some(&Frame::Done));
}

#[tokio::test]
async fn transport_errors_are_classified_by_their_chain() {
    let body = openai_stream(&["a", "b", "c"]);
    let cut = body.find("data: [DONE]").unwrap() - 20;
    let cases = [
        (
            io::Error::from(io::ErrorKind::ConnectionReset),
            ErrorKind::Network,
        ),
        (io::Error::from(io::ErrorKind::TimedOut), ErrorKind::Timeout),
        (io::Error::other("mystery"), ErrorKind::Network),
    ];
    for (transport, kind) in cases {
        let message = transport.to_string();
        let chunks = vec![Ok(body.as_bytes()[..cut].to_vec()), Err(transport)];
        let (frames, error) = run(chunks, OpenAi).await;
        assert_eq!(content(&frames), "abc");
        let error = error.unwrap();
        assert!(matches!(error.failure(), StreamFailure::Transport { .. }));
        assert_eq!((error.kind(), error.delivered()), (kind, 3));
        assert_eq!(
            std::error::Error::source(&error).unwrap().to_string(),
            message
        );
    }
}

#[test]
fn provider_errors_are_classified_like_http_error_bodies() {
    let anthropic =
        |t: &str| format!(r#"{{"type":"error","error":{{"type":"{t}","message":"m"}}}}"#);
    let cases = [
        ("overloaded_error", ErrorKind::Overloaded),
        ("rate_limit_error", ErrorKind::RateLimit),
        ("api_error", ErrorKind::Server),
        ("timeout_error", ErrorKind::Timeout),
        ("invalid_request_error", ErrorKind::Client),
        ("not_found_error", ErrorKind::Client),
        ("request_too_large", ErrorKind::Client),
        ("authentication_error", ErrorKind::Auth),
        ("permission_error", ErrorKind::Auth),
        ("billing_error", ErrorKind::Quota),
        ("enforced_spend_limit_reached", ErrorKind::Quota),
        ("some_new_error", ErrorKind::Server),
    ];
    for (error_type, kind) in cases {
        let e = ProviderError::from_data(&anthropic(error_type));
        assert_eq!(e.kind(), kind, "{error_type}");
        assert_eq!(e.error_type(), Some(error_type));
        assert_eq!(e.message(), "m");
    }

    let openai = |t: &str, code: &str| {
        format!(r#"{{"error":{{"message":"m","type":"{t}","param":null,"code":{code}}}}}"#)
    };
    let cases = [
        (
            ("requests", r#""rate_limit_exceeded""#),
            ErrorKind::RateLimit,
        ),
        (
            ("insufficient_quota", r#""insufficient_quota""#),
            ErrorKind::Quota,
        ),
        (
            ("invalid_request_error", r#""invalid_api_key""#),
            ErrorKind::Auth,
        ),
        (
            ("invalid_request_error", r#""context_length_exceeded""#),
            ErrorKind::Client,
        ),
        (("invalid_request_error", "null"), ErrorKind::Client),
        (
            ("server_error", r#""service_unavailable""#),
            ErrorKind::Overloaded,
        ),
        (("server_error", "null"), ErrorKind::Server),
        (("BadRequestError", "400"), ErrorKind::Client),
        (("anything", "429"), ErrorKind::RateLimit),
        (("anything", "503"), ErrorKind::Overloaded),
        (("anything", "200"), ErrorKind::Server),
    ];
    for ((error_type, code), kind) in cases {
        let e = ProviderError::from_data(&openai(error_type, code));
        assert_eq!(e.kind(), kind, "{error_type} {code}");
    }

    // Forms that are not quite either.
    let e = ProviderError::from_data(r#"{"error": "model overloaded"}"#);
    assert_eq!(
        (e.kind(), e.message()),
        (ErrorKind::Server, "model overloaded")
    );
    let e = ProviderError::from_data(r#"{"type": "overloaded_error", "message": "busy"}"#);
    assert_eq!((e.kind(), e.message()), (ErrorKind::Overloaded, "busy"));
    let e = ProviderError::from_data(r#"{"error": {"code": 502}}"#);
    assert_eq!(e.kind(), ErrorKind::Server);
    assert_eq!(e.message(), r#"{"error": {"code": 502}}"#);
    let long = "x".repeat(5000) + "é";
    assert_eq!(ProviderError::from_data(&long).message().len(), 1024);
    let e = ProviderError::from_data("");
    assert_eq!((e.kind(), e.message()), (ErrorKind::Server, ""));
}

#[test]
fn boxed_stream_errors_keep_their_kind() {
    let error = StreamError::new(
        StreamFailure::ErrorEvent(ProviderError::new(ErrorKind::RateLimit, "slow down")),
        4,
    );
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(error);
    assert_eq!(boxed.kind(), ErrorKind::RateLimit);
    let wrapped: Box<dyn std::error::Error + Send + Sync> = io::Error::other(boxed).into();
    assert_eq!(wrapped.kind(), ErrorKind::RateLimit);
    let provider: Box<dyn std::error::Error + Send + Sync> =
        Box::new(ProviderError::new(ErrorKind::Quota, "out of credit"));
    assert_eq!(provider.kind(), ErrorKind::Quota);
}

#[test]
fn unnamed_anthropic_events_are_read_by_their_type() {
    let data =
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}"#;
    assert_eq!(
        Anthropic.frame(&SseEvent::message(data)),
        Ok(Frame::Content("x".into()))
    );
    let stop = SseEvent::message(r#"{"type":"message_stop"}"#);
    assert_eq!(Anthropic.frame(&stop), Ok(Frame::Done));
    assert_eq!(
        Anthropic.frame(&SseEvent::message("not json")),
        Ok(Frame::Other)
    );
    let empty =
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":""}}"#;
    assert_eq!(
        Anthropic.frame(&SseEvent::named("content_block_delta", empty)),
        Ok(Frame::Other)
    );
}

#[test]
fn formats_work_behind_references_and_boxes() {
    fn done<F: EventFormat>(format: F) -> bool {
        format.frame(&SseEvent::message("[DONE]")) == Ok(Frame::Done)
    }
    assert!(done(OpenAi));
    assert!(done::<&OpenAi>(&OpenAi));
    assert!(done(Box::new(OpenAi) as Box<dyn EventFormat>));
    assert!(done(std::sync::Arc::new(OpenAi)));
}

#[test]
fn timeouts_are_timeouts() {
    use std::time::Duration;
    let idle = StreamError::idle_timeout(Duration::from_secs(2), 5);
    assert_eq!((idle.kind(), idle.delivered()), (ErrorKind::Timeout, 5));
    assert!(!idle.is_before_content());
    assert!(
        matches!(idle.failure(), StreamFailure::IdleTimeout(d) if *d == Duration::from_secs(2))
    );
    let first = StreamError::first_event_timeout(Duration::from_secs(10));
    assert_eq!((first.kind(), first.delivered()), (ErrorKind::Timeout, 0));
    assert!(matches!(
        first.into_failure(),
        StreamFailure::FirstEventTimeout(_)
    ));
}
