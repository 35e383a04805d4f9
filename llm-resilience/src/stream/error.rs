//! What goes wrong in a stream: the provider's error events, and the
//! stream's own failures.

use std::error::Error;
use std::fmt;
use std::time::Duration;

use serde_json::Value;

use crate::{Classify, ErrorKind};

/// How much of an undecodable error event a [`ProviderError`] keeps as its
/// message.
const DATA_KEPT: usize = 1024;

/// A boxed error, as transports report them.
type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// An error the provider reported inside a stream (an error *event*, after
/// the `200 OK`), classified for retrying.
///
/// Its kind comes from the error's `code`, else its `type`, by the same
/// table the `http` module (feature `http`) uses for error bodies:
///
/// | `code` or `type` | kind |
/// |---|---|
/// | `overloaded_error`, `service_unavailable` | [`Overloaded`](ErrorKind::Overloaded) |
/// | `rate_limit_error`, `rate_limit_exceeded` | [`RateLimit`](ErrorKind::RateLimit) |
/// | `api_error`, `server_error`, `internal_error` | [`Server`](ErrorKind::Server) |
/// | `timeout_error` | [`Timeout`](ErrorKind::Timeout) |
/// | `insufficient_quota`, `billing_hard_limit_reached`, `billing_not_active`, `enforced_spend_limit_reached`, `billing_error` | [`Quota`](ErrorKind::Quota) |
/// | `authentication_error`, `permission_error`, `invalid_api_key`, `permission_denied` | [`Auth`](ErrorKind::Auth) |
/// | `invalid_request_error`, `not_found_error`, `request_too_large`, `context_length_exceeded`, `model_not_found` | [`Client`](ErrorKind::Client) |
/// | an HTTP error status (`502`, as some OpenAI-compatible servers send) | as that status, by the table of `http::classify_status` (feature `http`) |
/// | anything else, or no JSON at all | [`Server`](ErrorKind::Server): the provider failed while answering |
///
/// ```
/// use llm_resilience::stream::ProviderError;
/// use llm_resilience::{Classify, ErrorKind};
///
/// // Anthropic's error event.
/// let e = ProviderError::from_data(r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#);
/// assert_eq!(e.kind(), ErrorKind::Overloaded);
/// assert_eq!(e.error_type(), Some("overloaded_error"));
/// assert_eq!(e.message(), "Overloaded");
///
/// // OpenAI's: the code says more than the type.
/// let e = ProviderError::from_data(r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#);
/// assert_eq!(e.kind(), ErrorKind::RateLimit);
/// assert_eq!(e.code(), Some("rate_limit_exceeded"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    kind: ErrorKind,
    error_type: Option<String>,
    code: Option<String>,
    message: String,
}

impl ProviderError {
    /// An error of `kind` with this message, and no type or code.
    ///
    /// ```
    /// use llm_resilience::stream::ProviderError;
    /// use llm_resilience::{Classify, ErrorKind};
    ///
    /// let e = ProviderError::new(ErrorKind::Server, "the model crashed");
    /// assert_eq!(e.kind(), ErrorKind::Server);
    /// assert_eq!(e.to_string(), "Server: the model crashed");
    /// ```
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ProviderError {
            kind,
            error_type: None,
            code: None,
            message: message.into(),
        }
    }

    /// The error in an error event's data, classified by the table above.
    ///
    /// Reads the object under `error` (OpenAI's `{"error": {...}}` and
    /// Anthropic's `{"type": "error", "error": {...}}`), or the top level when
    /// there is none, for its `type`, `code` (a string or a number) and
    /// `message`. Data that is not JSON, or has no message, keeps (up to
    /// 1 KiB of) the data itself as the message. Never fails: an error event
    /// stays an error, however it is written.
    ///
    /// ```
    /// use llm_resilience::stream::ProviderError;
    /// use llm_resilience::{Classify, ErrorKind};
    ///
    /// // vLLM and OpenRouter put the HTTP status in `code`.
    /// let e = ProviderError::from_data(r#"{"error":{"message":"Upstream error","code":502}}"#);
    /// assert_eq!((e.kind(), e.code()), (ErrorKind::Server, Some("502")));
    ///
    /// let e = ProviderError::from_data("upstream connect error");
    /// assert_eq!(e.kind(), ErrorKind::Server);
    /// assert_eq!(e.message(), "upstream connect error");
    /// ```
    pub fn from_data(data: &str) -> Self {
        let raw = || keep(data.trim());
        let Ok(json) = serde_json::from_str::<Value>(data) else {
            return ProviderError::new(ErrorKind::Server, raw());
        };
        let error = match json.get("error") {
            Some(error @ Value::Object(_)) => error,
            Some(Value::String(message)) => {
                return ProviderError::new(ErrorKind::Server, keep(message));
            }
            _ => &json,
        };
        let text = |name: &str| match error.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let error_type = text("type");
        let code = text("code");
        let kind = [&code, &error_type]
            .into_iter()
            .flatten()
            .find_map(|c| crate::policy::codes::error_code_kind(c))
            .unwrap_or(ErrorKind::Server);
        ProviderError {
            kind,
            error_type,
            code,
            message: text("message").map_or_else(raw, |m| keep(&m)),
        }
    }

    /// This error with the provider's error type (`overloaded_error`,
    /// `server_error`, ...). The kind stays as it is.
    pub fn with_type(mut self, error_type: impl Into<String>) -> Self {
        self.error_type = Some(error_type.into());
        self
    }

    /// This error with the provider's error code (`rate_limit_exceeded`,
    /// `invalid_api_key`, ...). The kind stays as it is.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// The provider's error type, when it gave one.
    pub fn error_type(&self) -> Option<&str> {
        self.error_type.as_deref()
    }

    /// The provider's error code, when it gave one (a number is written out).
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The provider's message (up to 1 KiB of the raw data when it gave
    /// none).
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// At most [`DATA_KEPT`] bytes of `s`, cut at a character boundary.
fn keep(s: &str) -> String {
    let mut end = s.len().min(DATA_KEPT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

impl Classify for ProviderError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl fmt::Display for ProviderError {
    /// `Overloaded (overloaded_error): Overloaded`: the kind, the type and
    /// code when given, and the message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind)?;
        match (&self.error_type, &self.code) {
            (Some(t), Some(c)) => write!(f, " ({t}, code {c})")?,
            (Some(t), None) => write!(f, " ({t})")?,
            (None, Some(c)) => write!(f, " (code {c})")?,
            (None, None) => {}
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl Error for ProviderError {}

/// An event that its format says carries something, but that cannot be read:
/// data that is not the JSON it should be, for instance.
///
/// ```
/// use llm_resilience::stream::Malformed;
///
/// let m = Malformed::new("chunk data is not JSON");
/// assert_eq!(m.to_string(), "chunk data is not JSON");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    reason: String,
}

impl Malformed {
    /// Says why the event cannot be read.
    pub fn new(reason: impl Into<String>) -> Self {
        Malformed {
            reason: reason.into(),
        }
    }

    /// Why the event cannot be read.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl Error for Malformed {}

/// What went wrong in a stream: the part of a [`StreamError`] that is not
/// the count of content events delivered.
///
/// | failure | kind |
/// |---|---|
/// | [`ErrorEvent`](Self::ErrorEvent) | the provider error's: see [`ProviderError`] |
/// | [`Transport`](Self::Transport) | the one given; [`StreamError::transport`] classifies the error by its chain, and takes a chain it does not know as [`Network`](ErrorKind::Network) |
/// | [`Malformed`](Self::Malformed) | [`Other`](ErrorKind::Other): the same request most likely gets the same answer, so it is retried only when `Other` is named in `on` |
/// | [`Incomplete`](Self::Incomplete) | [`Network`](ErrorKind::Network): the body was cut short |
/// | [`IdleTimeout`](Self::IdleTimeout), [`FirstEventTimeout`](Self::FirstEventTimeout), [`StreamDeadline`](Self::StreamDeadline) | [`Timeout`](ErrorKind::Timeout) |
#[derive(Debug)]
#[non_exhaustive]
pub enum StreamFailure {
    /// The provider sent an error event.
    ErrorEvent(ProviderError),
    /// Reading the body failed: the connection was reset, dropped mid-body,
    /// or the transport timed out.
    Transport {
        /// How the failure is classified.
        kind: ErrorKind,
        /// The transport's error.
        source: BoxError,
    },
    /// An event could not be decoded: bytes that are not UTF-8, or an event
    /// whose data is not what its format says (see [`Malformed`]).
    Malformed(Malformed),
    /// The body ended cleanly but without the format's terminal marker
    /// (`data: [DONE]`, `event: message_stop`): the answer may be truncated.
    Incomplete,
    /// No event arrived for this long, in the middle of the stream.
    IdleTimeout(Duration),
    /// The first event the caller waited for did not arrive within this long
    /// of the response's start.
    FirstEventTimeout(Duration),
    /// The stream did not end within this long of the call's start (the
    /// whole-stream deadline of a retried stream).
    StreamDeadline(Duration),
}

impl StreamFailure {
    /// The kind of failure, by the table above.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::stream::StreamFailure;
    /// use llm_resilience::ErrorKind;
    ///
    /// assert_eq!(StreamFailure::Incomplete.kind(), ErrorKind::Network);
    /// assert_eq!(StreamFailure::IdleTimeout(Duration::from_secs(30)).kind(), ErrorKind::Timeout);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        match self {
            StreamFailure::ErrorEvent(error) => error.kind(),
            StreamFailure::Transport { kind, .. } => *kind,
            StreamFailure::Malformed(_) => ErrorKind::Other,
            StreamFailure::Incomplete => ErrorKind::Network,
            StreamFailure::IdleTimeout(_)
            | StreamFailure::FirstEventTimeout(_)
            | StreamFailure::StreamDeadline(_) => ErrorKind::Timeout,
        }
    }
}

/// A streamed answer that failed, classified for retrying, with the number
/// of content events delivered before the failure.
///
/// [`delivered`](Self::delivered) is what tells a failure that is safe to
/// retry (`0`: the caller has seen no part of the answer) from one that
/// interrupted an answer the caller already has a part of.
///
/// ```
/// use std::time::Duration;
/// use llm_resilience::stream::{ProviderError, StreamError, StreamFailure};
/// use llm_resilience::{Classify, ErrorKind};
///
/// let overloaded = ProviderError::new(ErrorKind::Overloaded, "Overloaded").with_type("overloaded_error");
/// let e = StreamError::new(StreamFailure::ErrorEvent(overloaded), 0);
/// assert_eq!(e.kind(), ErrorKind::Overloaded);
/// assert!(e.is_before_content());
/// assert_eq!(
///     e.to_string(),
///     "error event before any content: Overloaded (overloaded_error): Overloaded"
/// );
///
/// let e = StreamError::idle_timeout(Duration::from_secs(30), 12);
/// assert_eq!(e.kind(), ErrorKind::Timeout);
/// assert_eq!(e.to_string(), "no event for 30s after 12 content events");
/// ```
#[derive(Debug)]
pub struct StreamError {
    failure: StreamFailure,
    delivered: u64,
}

impl StreamError {
    /// `failure`, after `delivered` content events.
    pub fn new(failure: StreamFailure, delivered: u64) -> Self {
        StreamError { failure, delivered }
    }

    /// A failure to read the body, after `delivered` content events,
    /// classified by the error's chain as for
    /// [`Box<dyn Error + Send + Sync>`](crate::Classify#impl-Classify-for-dyn+Error+%2B+Send+%2B+Sync)
    /// (so `io::Error`s and, with the `reqwest` feature, `reqwest::Error`s are
    /// known); a chain of no known kind is [`Network`](ErrorKind::Network),
    /// since the body broke off.
    ///
    /// ```
    /// use std::io;
    /// use llm_resilience::stream::StreamError;
    /// use llm_resilience::{Classify, ErrorKind};
    ///
    /// let e = StreamError::transport(io::Error::from(io::ErrorKind::TimedOut), 3);
    /// assert_eq!(e.kind(), ErrorKind::Timeout);
    /// let e = StreamError::transport("connection closed before message completed", 3);
    /// assert_eq!(e.kind(), ErrorKind::Network);
    /// ```
    pub fn transport(source: impl Into<BoxError>, delivered: u64) -> Self {
        let source = source.into();
        let kind = match Classify::kind(&*source) {
            ErrorKind::Other => ErrorKind::Network,
            kind => kind,
        };
        StreamError::new(StreamFailure::Transport { kind, source }, delivered)
    }

    /// No event for `after` in the middle of the stream, after `delivered`
    /// content events: a [`Timeout`](ErrorKind::Timeout).
    pub fn idle_timeout(after: Duration, delivered: u64) -> Self {
        StreamError::new(StreamFailure::IdleTimeout(after), delivered)
    }

    /// The first event did not come within `after`: a
    /// [`Timeout`](ErrorKind::Timeout) before any content.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::stream::StreamError;
    ///
    /// let e = StreamError::first_event_timeout(Duration::from_millis(1500));
    /// assert!(e.is_before_content());
    /// assert_eq!(e.to_string(), "no first event within 1.5s");
    /// ```
    pub fn first_event_timeout(after: Duration) -> Self {
        StreamError::new(StreamFailure::FirstEventTimeout(after), 0)
    }

    /// What went wrong.
    pub fn failure(&self) -> &StreamFailure {
        &self.failure
    }

    /// What went wrong, by value.
    pub fn into_failure(self) -> StreamFailure {
        self.failure
    }

    /// How many content events ([`Frame::Content`](super::Frame::Content))
    /// were delivered before the failure.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Whether the failure came before any content was delivered, so that
    /// trying again cannot repeat a part of the answer the caller has seen.
    pub fn is_before_content(&self) -> bool {
        self.delivered == 0
    }

    /// The provider's error, when the failure is an error event.
    pub fn provider_error(&self) -> Option<&ProviderError> {
        match &self.failure {
            StreamFailure::ErrorEvent(error) => Some(error),
            _ => None,
        }
    }
}

impl Classify for StreamError {
    /// The failure's kind: see [`StreamFailure`].
    fn kind(&self) -> ErrorKind {
        self.failure.kind()
    }
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let when = When(self.delivered);
        match &self.failure {
            StreamFailure::ErrorEvent(error) => write!(f, "error event {when}: {error}"),
            StreamFailure::Transport { kind, source } => {
                write!(f, "stream broke off {when} ({kind}): {source}")
            }
            StreamFailure::Malformed(why) => write!(f, "undecodable event {when}: {why}"),
            StreamFailure::Incomplete => {
                write!(f, "stream ended without its terminal marker {when}")
            }
            StreamFailure::IdleTimeout(after) => write!(f, "no event for {after:?} {when}"),
            StreamFailure::StreamDeadline(after) => {
                write!(f, "the stream did not end within {after:?} ({when})")
            }
            StreamFailure::FirstEventTimeout(after) => {
                write!(f, "no first event within {after:?}")?;
                if self.delivered > 0 {
                    write!(f, " ({when})")?;
                }
                Ok(())
            }
        }
    }
}

/// "before any content" or "after N content events".
struct When(u64);

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("before any content"),
            1 => f.write_str("after 1 content event"),
            n => write!(f, "after {n} content events"),
        }
    }
}

impl Error for StreamError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.failure {
            StreamFailure::ErrorEvent(error) => Some(error),
            StreamFailure::Transport { source, .. } => Some(&**source),
            StreamFailure::Malformed(why) => Some(why),
            _ => None,
        }
    }
}
