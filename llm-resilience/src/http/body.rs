//! [`check_response`]: `check` for any `http::Response<B>` whose body is an
//! `http_body::Body`, so that hyper, axum and tower clients get the same
//! classification as reqwest's.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Buf;
use http::{HeaderMap, Response, StatusCode};
use http_body::Body;

use super::HttpError;

/// The most of an error body [`check_response`] reads.
const BODY_READ: usize = 64 * 1024;

/// `Ok(response)` for a 2xx response; otherwise reads (the start of) its
/// body and returns it as a classified [`HttpError`]: the status, refined by
/// a quota code in the body and by `x-should-retry`, the wait the provider
/// asked for, its request id and the start of the body, as the
/// [module docs](super) say. It works on any `http::Response<B>` whose body
/// is an [`http_body::Body`]: hyper's `Incoming`, axum's `Body`,
/// `http_body_util::Full`, the response of any tower service.
///
/// Like [`check`](super::check) (reqwest's), it hands the rate limits every
/// answer announces, successes included, to the limiter of the call it runs
/// in ([`observe`](super::observe)).
///
/// ```
/// use std::time::Duration;
/// use http::Response;
/// use llm_resilience::http::{check_response, HttpError};
/// use llm_resilience::{Classify, ErrorKind};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let busy = Response::builder()
///     .status(529)
///     .header("retry-after-ms", "250")
///     .header("request-id", "req_011")
///     .body(String::from(r#"{"type": "error", "error": {"type": "overloaded_error"}}"#))
///     .unwrap();
/// let error: HttpError = check_response(busy).await.unwrap_err();
/// assert_eq!(error.kind(), ErrorKind::Overloaded);
/// assert_eq!(error.retry_after(), Some(Duration::from_millis(250)));
/// assert_eq!(error.request_id(), Some("req_011"));
///
/// let broke = Response::builder()
///     .status(429)
///     .body(String::from(r#"{"error": {"code": "insufficient_quota"}}"#))
///     .unwrap();
/// assert_eq!(check_response(broke).await.unwrap_err().kind(), ErrorKind::Quota);
///
/// let fine = Response::new(String::from("{}"));
/// assert_eq!(check_response(fine).await.unwrap().into_body(), "{}");
/// # }
/// ```
pub fn check_response<B: Body>(response: Response<B>) -> CheckResponseFuture<B> {
    CheckResponseFuture {
        state: State::Start(Some(response)),
    }
}

/// The future of [`check_response`]. A 2xx response is ready at its first
/// poll, without allocating; a failed one reads up to 64 KiB of its body.
#[must_use = "futures do nothing unless polled"]
pub struct CheckResponseFuture<B> {
    state: State<B>,
}

enum State<B> {
    Start(Option<Response<B>>),
    Reading {
        status: StatusCode,
        headers: HeaderMap,
        body: Pin<Box<B>>,
        read: Vec<u8>,
    },
    Done,
}

// The body is only ever polled behind its own `Pin<Box<B>>`; nothing in the
// future is pinned in place.
impl<B> Unpin for CheckResponseFuture<B> {}

impl<B> std::fmt::Debug for CheckResponseFuture<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Start(_) => "start",
            State::Reading { .. } => "reading the error body",
            State::Done => "done",
        };
        f.debug_struct("CheckResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<B: Body> Future for CheckResponseFuture<B> {
    type Output = Result<Response<B>, HttpError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                State::Start(response) => {
                    let Some(response) = response.take() else {
                        this.state = State::Done;
                        continue;
                    };
                    // Every answer announces what is left of the rate limit:
                    // the call's limiter paces by it, successes included.
                    super::observe(response.headers());
                    if response.status().is_success() {
                        this.state = State::Done;
                        return Poll::Ready(Ok(response));
                    }
                    let (parts, body) = response.into_parts();
                    this.state = State::Reading {
                        status: parts.status,
                        headers: parts.headers,
                        body: Box::pin(body),
                        read: Vec::new(),
                    };
                }
                State::Reading {
                    status,
                    headers,
                    body,
                    read,
                } => {
                    while read.len() < BODY_READ && !body.is_end_stream() {
                        match ready!(body.as_mut().poll_frame(cx)) {
                            Some(Ok(frame)) => {
                                if let Ok(mut data) = frame.into_data() {
                                    while data.has_remaining() && read.len() < BODY_READ {
                                        let chunk = data.chunk();
                                        let n = chunk.len().min(BODY_READ - read.len());
                                        read.extend_from_slice(&chunk[..n]);
                                        let len = chunk.len();
                                        data.advance(len);
                                    }
                                }
                            }
                            // A body cut short still says what it said so far.
                            Some(Err(_)) | None => break,
                        }
                    }
                    let error = HttpError::from_response(*status, headers, read);
                    this.state = State::Done;
                    return Poll::Ready(Err(error));
                }
                State::Done => panic!("CheckResponseFuture polled after completion"),
            }
        }
    }
}
