//! `Classify` for hyper's error (feature `hyper`).

use std::time::Duration;

use crate::{Classify, ErrorKind};

/// Timeouts are [`Timeout`](ErrorKind::Timeout); a connection closed or
/// cut short (an incomplete message, a request canceled because its
/// connection closed, a body write that failed) is
/// [`Network`](ErrorKind::Network); an error of the socket underneath, by
/// its `io::Error`; a message hyper could not parse or a misuse of its API
/// is [`Other`](ErrorKind::Other). hyper's errors are also found in a chain
/// of causes (a `hyper_util` client's error, a `Box<dyn Error>`).
///
/// ```
/// use llm_resilience::{Classify, ErrorKind};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // A server that hangs up before answering.
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let addr = listener.local_addr().unwrap();
/// tokio::spawn(async move {
///     let (socket, _) = listener.accept().await.unwrap();
///     drop(socket);
/// });
/// let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
/// let io = hyper_util::rt::TokioIo::new(stream);
/// let (mut sender, connection) = hyper::client::conn::http1::handshake(io).await.unwrap();
/// tokio::spawn(connection);
/// let request = http::Request::get("/").body(String::new()).unwrap();
/// let error = sender.send_request(request).await.unwrap_err();
/// assert_eq!(error.kind(), ErrorKind::Network);
/// # }
/// ```
impl Classify for hyper::Error {
    fn kind(&self) -> ErrorKind {
        if self.is_timeout() {
            return ErrorKind::Timeout;
        }
        if let Some(io) = std::error::Error::source(self)
            .and_then(|source| source.downcast_ref::<std::io::Error>())
        {
            let kind = Classify::kind(io);
            if kind != ErrorKind::Other {
                return kind;
            }
        }
        if self.is_incomplete_message()
            || self.is_canceled()
            || self.is_closed()
            || self.is_body_write_aborted()
        {
            ErrorKind::Network
        } else {
            ErrorKind::Other
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        None
    }
}
