//! The bodies and headers the provider answers with, in real providers' shapes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::format::{go_duration, http_date_ceil, later, rfc3339};
use super::limits::{Announce, Refusal};
use super::scenario::{Fault, QuotaStyle, RetryAfter};

/// Which API a request called, by its path: the shape of its answer, and
/// of its stream when it asked for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `POST /v1/chat/completions`: OpenAI's chat completions.
    ChatCompletions,
    /// `POST /v1/messages`: Anthropic's messages.
    Messages,
}

/// A response as stored for idempotent replay: status, extra headers, body.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

/// What a stored response carries.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// An error body, sent as it is whatever the API.
    Json(Bytes),
    /// A processed answer, rendered in the shape of the API that asks for
    /// it (a replay included), as a whole or as a stream.
    Answer(Answer),
}

/// The work of a processed request: its text, and what its rendering needs.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// The request's number: the answer's id is `chatcmpl-flaky{number}` or
    /// `msg_flaky{number}`.
    pub number: u64,
    pub model: String,
    /// The last user message, echoed.
    pub text: String,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Seconds since the Unix epoch.
    pub created: u64,
}

impl Answer {
    /// The whole answer, as `api` answers a request without `"stream": true`.
    pub fn json(&self, api: Api) -> Value {
        match api {
            Api::ChatCompletions => json!({
                "id": format!("chatcmpl-flaky{}", self.number),
                "object": "chat.completion",
                "created": self.created,
                "model": self.model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": self.text, "refusal": null},
                    "logprobs": null,
                    "finish_reason": "stop",
                }],
                "usage": {
                    "prompt_tokens": self.prompt_tokens,
                    "completion_tokens": self.completion_tokens,
                    "total_tokens": self.prompt_tokens + self.completion_tokens,
                },
            }),
            Api::Messages => json!({
                "id": format!("msg_flaky{}", self.number),
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": [{"type": "text", "text": self.text}],
                "stop_reason": "end_turn",
                "stop_sequence": null,
                "usage": {
                    "input_tokens": self.prompt_tokens,
                    "output_tokens": self.completion_tokens,
                },
            }),
        }
    }
}

impl Stored {
    fn json(status: u16, body: Value) -> Stored {
        Stored {
            status,
            headers: Vec::new(),
            body: Body::Json(Bytes::from(body.to_string())),
        }
    }

    fn header(mut self, name: &'static str, value: impl Into<String>) -> Stored {
        self.headers.push((name, value.into()));
        self
    }

    /// The HTTP response to a request of `api`, with `x-request-id` set to
    /// this request's id and, for a replay, `idempotent-replayed: true`.
    pub fn to_response(&self, api: Api, request_id: &str, replayed: bool) -> Response<Full<Bytes>> {
        let body = match &self.body {
            Body::Json(bytes) => bytes.clone(),
            Body::Answer(answer) => Bytes::from(answer.json(api).to_string()),
        };
        let mut resp = Response::new(Full::new(body));
        self.head(&mut resp, "application/json", request_id, replayed);
        resp
    }

    /// Sets `resp`'s status and headers: this response's, the content
    /// type, `x-request-id` and, for a replay, `idempotent-replayed: true`.
    pub fn head<B>(
        &self,
        resp: &mut Response<B>,
        content_type: &'static str,
        request_id: &str,
        replayed: bool,
    ) {
        *resp.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = resp.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        for (name, value) in &self.headers {
            if let Ok(value) = HeaderValue::from_str(value) {
                headers.append(HeaderName::from_static(name), value);
            }
        }
        if let Ok(value) = HeaderValue::from_str(request_id) {
            headers.insert(HeaderName::from_static("x-request-id"), value);
        }
        if replayed {
            headers.insert(
                HeaderName::from_static("idempotent-replayed"),
                HeaderValue::from_static("true"),
            );
        }
    }
}

/// An OpenAI-shaped error: `{"error": {"message", "type", "code"}}`.
pub(crate) fn openai_error(status: u16, message: &str, kind: &str, code: Option<&str>) -> Stored {
    Stored::json(
        status,
        json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    )
}

/// An Anthropic-shaped error: `{"type": "error", "error": {"type", "message"}}`.
pub(crate) fn anthropic_error(status: u16, kind: &str, message: &str) -> Stored {
    Stored::json(
        status,
        json!({"type": "error", "error": {"type": kind, "message": message}}),
    )
}

/// `404` for any other path or method.
pub(crate) fn not_found(method: &str, path: &str) -> Stored {
    openai_error(
        404,
        &format!("Unknown request URL: {method} {path}. Only POST /v1/chat/completions and POST /v1/messages are served."),
        "invalid_request_error",
        Some("unknown_url"),
    )
}

/// `400` for a body that is not a JSON object.
pub(crate) fn bad_request(message: &str) -> Stored {
    openai_error(400, message, "invalid_request_error", None)
}

/// `409` while another request with the same key is being processed.
pub(crate) fn conflict() -> Stored {
    Stored::json(
        409,
        json!({"error": {
            "message": "a request with this Idempotency-Key is in progress",
            "type": "conflict",
            "code": null,
        }}),
    )
}

/// `429` from the token bucket.
pub(crate) fn bucket_refusal(retry_after_secs: u64) -> Stored {
    openai_error(
        429,
        "Rate limit reached for requests. Please try again later.",
        "requests",
        Some("rate_limit_exceeded"),
    )
    .header("retry-after", retry_after_secs.to_string())
    .header("x-ratelimit-remaining-requests", "0")
}

/// `429` from [`Scenario::Limited`](super::Scenario::Limited)'s limits, in
/// the announcing provider's shape, with `retry-after` in whole seconds (at
/// least 1). The announced headers are added by the caller; without them a
/// refusal of requests is [`bucket_refusal`]'s.
pub(crate) fn limits_refusal(refusal: Refusal, announce: Announce) -> Stored {
    let secs = |wait: Duration| wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    let (answer, wait) = match (refusal, announce) {
        (Refusal::Requests { wait }, Announce::None) => {
            return bucket_refusal(secs(wait).max(1))
        }
        (Refusal::Requests { wait }, Announce::OpenAi) => (
            openai_error(
                429,
                "Rate limit reached for requests. Please try again later.",
                "requests",
                Some("rate_limit_exceeded"),
            ),
            wait,
        ),
        (Refusal::Requests { wait }, Announce::Anthropic) => (
            anthropic_error(
                429,
                "rate_limit_error",
                "Number of requests has exceeded your per-minute rate limit. Please try again later.",
            ),
            wait,
        ),
        (Refusal::Tokens { wait, cost, limit }, Announce::None | Announce::OpenAi) => (
            openai_error(
                429,
                &format!(
                    "Rate limit reached for tokens per min (TPM): Limit {limit}, Requested {cost}. \
                     Please try again in {}.",
                    go_duration(wait)
                ),
                "tokens",
                Some("rate_limit_exceeded"),
            ),
            wait,
        ),
        (Refusal::Tokens { wait, .. }, Announce::Anthropic) => (
            anthropic_error(
                429,
                "rate_limit_error",
                "Number of input tokens has exceeded your per-minute rate limit. Please try again later.",
            ),
            wait,
        ),
    };
    answer.header("retry-after", secs(wait).max(1).to_string())
}

/// The answer for an error fault (anything but `Slow`, `DropAfterProcessing`,
/// `SlowProcessing` and `Stream`, which are answered with a success).
pub(crate) fn fault(fault: &Fault, now: SystemTime) -> Stored {
    match *fault {
        Fault::RateLimit(hint) => rate_limit(hint, now),
        Fault::Quota(QuotaStyle::OpenAi) => openai_error(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            Some("insufficient_quota"),
        ),
        Fault::Quota(QuotaStyle::Anthropic) => anthropic_error(
            429,
            "enforced_spend_limit_reached",
            "Your organization has reached its spend limit.",
        ),
        Fault::Status(code) => status(code),
        // Not error faults; answered as a success by the caller.
        Fault::Slow(_)
        | Fault::DropAfterProcessing
        | Fault::SlowProcessing(_)
        | Fault::Stream(_) => status(500),
    }
}

fn rate_limit(hint: RetryAfter, now: SystemTime) -> Stored {
    let openai = || {
        openai_error(
            429,
            "Rate limit reached for requests. Please try again later.",
            "requests",
            Some("rate_limit_exceeded"),
        )
    };
    match hint {
        RetryAfter::None => openai(),
        RetryAfter::Millis(ms) => openai().header("retry-after-ms", ms.to_string()),
        RetryAfter::Seconds(s) => openai().header("retry-after", s.to_string()),
        RetryAfter::HttpDate(d) => openai().header("retry-after", http_date_ceil(later(now, d))),
        RetryAfter::OpenAiReset(d) => openai()
            .header("x-ratelimit-limit-requests", per_minute(d))
            .header("x-ratelimit-remaining-requests", "0")
            .header("x-ratelimit-reset-requests", go_duration(d)),
        RetryAfter::AnthropicReset(d) => anthropic_error(
            429,
            "rate_limit_error",
            "Number of requests has exceeded your rate limit. Please try again later.",
        )
        .header("anthropic-ratelimit-requests-limit", per_minute(d))
        .header("anthropic-ratelimit-requests-remaining", "0")
        .header("anthropic-ratelimit-requests-reset", rfc3339(later(now, d))),
    }
}

/// The per-minute limit of a window that admits one request every `d`, as
/// the limit header of a refusal that resets after `d` announces it.
fn per_minute(d: Duration) -> String {
    let nanos = d.as_nanos().max(1);
    (60_000_000_000u128.div_ceil(nanos)).to_string()
}

fn status(code: u16) -> Stored {
    if code == 529 {
        return anthropic_error(529, "overloaded_error", "Overloaded");
    }
    let (message, kind, error_code) = openai_status_error(code);
    openai_error(code, message, kind, error_code)
}

/// The message, type and code of the OpenAI-shaped error for `code` (529,
/// which OpenAI does not send, is Anthropic's `overloaded_error`).
pub(crate) fn openai_status_error(code: u16) -> (&'static str, &'static str, Option<&'static str>) {
    match code {
        400 => (
            "Invalid request: 'messages' must contain at least one message.",
            "invalid_request_error",
            None,
        ),
        401 => (
            "Incorrect API key provided. You can find your API key in your account settings.",
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
        403 => (
            "You are not allowed to use this model.",
            "permission_error",
            Some("permission_denied"),
        ),
        408 => ("Request timed out.", "timeout_error", None),
        409 => (
            "The request conflicts with another request.",
            "conflict",
            None,
        ),
        500 => (
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        ),
        502 => ("Bad gateway.", "server_error", None),
        503 => (
            "The engine is currently overloaded, please try again later.",
            "server_error",
            Some("service_unavailable"),
        ),
        504 => ("Gateway timeout.", "server_error", None),
        529 => ("Overloaded", "overloaded_error", None),
        _ => ("The server answered with an error.", "api_error", None),
    }
}

/// The type and message of Anthropic's error for `code`, as in its
/// [errors](https://docs.anthropic.com/en/api/errors) documentation.
pub(crate) fn anthropic_status_error(code: u16) -> (&'static str, &'static str) {
    match code {
        400 => (
            "invalid_request_error",
            "messages: at least one message is required",
        ),
        401 => ("authentication_error", "invalid x-api-key"),
        402 => ("billing_error", "Your credit balance is too low."),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        404 => (
            "not_found_error",
            "The requested resource could not be found.",
        ),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
        ),
        429 => (
            "rate_limit_error",
            "Number of requests has exceeded your rate limit. Please try again later.",
        ),
        503 | 529 => ("overloaded_error", "Overloaded"),
        _ => ("api_error", "Internal server error"),
    }
}

/// The answer to a chat request: the last user message, echoed. The
/// request's `messages` are read the same way from OpenAI's chat completions
/// and Anthropic's messages.
pub(crate) fn completion(number: u64, request: &Value, now: SystemTime) -> Stored {
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("flaky-1");
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let prompt = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| text_of(m.get("content")))
        .unwrap_or_default();
    let prompt_tokens: usize = messages
        .iter()
        .map(|m| words(&text_of(m.get("content"))) + 4)
        .sum();
    let completion_tokens = words(&prompt).max(1);
    let created = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    Stored {
        status: 200,
        headers: Vec::new(),
        body: Body::Answer(Answer {
            number,
            model: model.to_owned(),
            text: prompt,
            prompt_tokens,
            completion_tokens,
            created,
        }),
    }
    .header("openai-processing-ms", "1")
}

/// The text of a message's `content`: a string, or the `text` of its parts.
pub(crate) fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}
