//! The flaky provider: a real OpenAI-compatible HTTP server on 127.0.0.1 that
//! injects faults from a [`Scenario`].
//!
//! It serves `POST /v1/chat/completions` (an OpenAI-shaped completion echoing
//! the last user message) and `POST /v1/messages` (the same answer in
//! Anthropic's shape), and answers every other path or method with `404`.
//!
//! A request with `"stream": true` gets its answer as server-sent events,
//! in the format of the path it called: `/v1/chat/completions` streams
//! OpenAI's `chat.completion.chunk`s ending with `data: [DONE]`,
//! `/v1/messages` streams Anthropic's `message_start` ...
//! `content_block_delta` ... `message_stop` events. The answer is split into
//! content events by [`answer_tokens`], so a client can tell a complete
//! answer from a truncated one. [`StreamFault`]s ([`Fault::Stream`]) break
//! such streams after their `200`: an error event (first, or after some
//! content), a stall, an end without the terminal marker, a cut connection,
//! slow tokens. Every other fault hits a streamed request as it hits any
//! other, before its stream starts.
//! Depending on the scenario, an attempt instead gets a `429` with any of the
//! wait hints providers send ([`RetryAfter`]), a quota `429`, a `5xx`/`529`,
//! a `400`/`401`, an answer that comes too late, or a connection closed after
//! the work was done.
//!
//! Under [`Scenario::Limited`] it enforces rate limits the way providers do
//! ([`Limits`]): a requests bucket whose rate may follow a schedule, an
//! optional tokens-per-minute bucket that each request draws its
//! [`request_tokens`] from, and, with [`Announce`], OpenAI's or Anthropic's
//! rate-limit headers on every answer. [`FlakyProvider::admitted_per_second`]
//! is the admitted rate over time; [`FlakyProvider::spawn_with_manual_clock`]
//! runs it on a clock that only moves when told to.
//!
//! Like a provider that supports idempotency keys, it keeps the response of
//! every *processed* (billed) request under its `Idempotency-Key` and replays
//! it to a later request with the same key, whatever the scenario says (as a
//! clean stream when the later request asks for one). A stream is processed
//! once its `200` is sent, whatever happens to it next; one that ended with an
//! error event is billed but not stored, so a retry with its key is
//! processed, and billed, again. It
//! records every request ([`FlakyProvider::requests`]) and counts, in
//! [`Stats::billed_twice`], the logical requests that were processed more
//! than once: what a client that retries a dropped connection without a key
//! costs its owner.
//!
//! ```no_run
//! use examples::flaky::{FlakyProvider, Scenario};
//!
//! let provider = FlakyProvider::spawn(Scenario::from_name("drop").unwrap())?;
//! println!("point your client at {}", provider.base_url());
//! // ... make calls ...
//! println!("billed twice: {}", provider.stats().billed_twice);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::collections::BTreeMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::oneshot;

mod format;
mod limits;
mod responses;
mod scenario;
mod server;
mod sse;
mod state;

pub use limits::{request_tokens, Announce, Limits, TokenLimit};
pub use scenario::{Fault, QuotaStyle, RetryAfter, Scenario, StreamFault, UnknownScenario};
pub use sse::answer_tokens;

use state::Shared;

/// A running flaky provider. Dropping it stops the server.
///
/// The server runs on its own thread with its own tokio runtime, so it works
/// the same from synchronous code and from inside any other runtime.
pub struct FlakyProvider {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Counters of what the provider has seen so far (a snapshot).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// HTTP requests received, of any kind (including `404`s and bad bodies).
    pub requests: u64,
    /// Requests that were processed: the billable work was done (successes,
    /// including slow ones and ones whose connection was then dropped, and
    /// every stream whose `200` was sent, whatever happened to it next).
    pub processed: u64,
    /// Requests answered from the idempotency store instead.
    pub replayed: u64,
    /// Logical requests processed more than once.
    pub billed_twice: u64,
    /// Injected faults by [`Fault::name`] (and `"token_bucket"` for refusals
    /// by [`Scenario::TokenBucket`] or for want of requests by
    /// [`Scenario::Limited`], `"tokens_per_minute"` for want of tokens).
    pub faults: BTreeMap<String, u64>,
    /// Requests refused with `409` because another request with the same
    /// `Idempotency-Key` was still being processed.
    pub in_progress_conflicts: u64,
}

/// One request, as the provider saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The `x-request-id` the provider answered with (`req_1`, `req_2`, ...).
    pub request_id: String,
    /// The `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// The `x-retry-count` header.
    pub retry_count: Option<String>,
    /// The logical request it belongs to: the idempotency key, else the
    /// body's `user`; `None` when it has neither (it is then alone).
    pub logical_id: Option<String>,
    /// What happened: the status sent (`"200"`, `"429"`, `"503"`, `"404"`,
    /// `"400"`, `"409"`, ...), or `"replayed"` (stored response sent again),
    /// `"slow"` (processed, answered late), `"dropped"` (processed,
    /// connection closed unanswered), `"slow_processing"` (see
    /// [`Fault::SlowProcessing`]), or for a stream broken by a
    /// [`StreamFault`] (processed) its [`Fault::name`]: `"stream_error"`,
    /// `"stream_stall"`, `"stream_truncated"`, `"stream_drop"` or
    /// `"stream_slow"`. A clean stream is `"200"`.
    pub outcome: String,
    /// When it arrived, since the server started.
    pub at: Duration,
}

impl FlakyProvider {
    /// Starts a provider playing `scenario` on 127.0.0.1 at a free port, on
    /// its own thread and tokio runtime; returns once it is listening.
    ///
    /// Safe to call from inside an async runtime: it never blocks on one.
    pub fn spawn(scenario: Scenario) -> io::Result<FlakyProvider> {
        FlakyProvider::start(Shared::new(scenario, false), 0)
    }

    /// Like [`spawn`](FlakyProvider::spawn), on 127.0.0.1 at `port` (`0`:
    /// a free one), for a provider that other programs call: `cargo run -p
    /// examples --bin provider` serves one until stopped.
    pub fn spawn_on_port(scenario: Scenario, port: u16) -> io::Result<FlakyProvider> {
        FlakyProvider::start(Shared::new(scenario, false), port)
    }

    /// Like [`spawn`](FlakyProvider::spawn), but the provider's clock stands
    /// still until [`advance_clock`](FlakyProvider::advance_clock) moves it:
    /// its buckets refill, its rate schedule moves on and its
    /// [`admitted_per_second`](FlakyProvider::admitted_per_second) and
    /// [`RecordedRequest::at`] count only the time so given. For tests that
    /// check rate limits by arithmetic rather than by timing. (Slow answers
    /// still wait in real time.)
    pub fn spawn_with_manual_clock(scenario: Scenario) -> io::Result<FlakyProvider> {
        FlakyProvider::start(Shared::new(scenario, true), 0)
    }

    fn start(shared: Shared, port: u16) -> io::Result<FlakyProvider> {
        let shared = Arc::new(shared);
        let (ready_tx, ready_rx) = mpsc::channel::<io::Result<SocketAddr>>();
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("flaky-provider".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("flaky-provider-worker")
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener =
                        match tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
                            Ok(listener) => listener,
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                                return;
                            }
                        };
                    let addr = listener.local_addr();
                    let ok = addr.is_ok();
                    let _ = ready_tx.send(addr);
                    if ok {
                        server::serve(listener, thread_shared, shutdown_rx).await;
                    }
                });
                // Drops every connection task, in flight or not.
                runtime.shutdown_timeout(Duration::from_millis(500));
            })?;
        match ready_rx.recv() {
            Ok(Ok(addr)) => Ok(FlakyProvider {
                addr,
                shared,
                shutdown: Some(shutdown_tx),
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(io::Error::other(
                    "flaky provider thread died while starting",
                ))
            }
        }
    }

    /// The base URL to give an OpenAI client: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The full URL of the chat completions endpoint.
    pub fn chat_completions_url(&self) -> String {
        format!("{}/chat/completions", self.base_url())
    }

    /// The full URL of the Anthropic-shaped messages endpoint.
    pub fn messages_url(&self) -> String {
        format!("{}/messages", self.base_url())
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The scenario it plays.
    pub fn scenario(&self) -> &Scenario {
        &self.shared.scenario
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// How many times the logical request `id` was processed (billed): `id`
    /// is an `Idempotency-Key`, else the `user` of requests without one.
    /// Replays are not counted; `0` for an id never seen.
    pub fn billed(&self, id: &str) -> u32 {
        self.shared.billed(id)
    }

    /// Every request so far, in the order they were decided.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// The processed requests by the second they arrived in since the
    /// server started: element `i` counts those that arrived in
    /// `[i s, i + 1 s)`, up to the last second with one (a week at most).
    /// Under rate limits these are the admitted requests, so the list is the
    /// admitted rate over time; it sums to [`Stats::processed`].
    pub fn admitted_per_second(&self) -> Vec<u64> {
        self.shared.admitted_per_second()
    }

    /// Moves the clock of a provider started with
    /// [`spawn_with_manual_clock`](FlakyProvider::spawn_with_manual_clock)
    /// forward by `by` and returns true; on the real clock does nothing and
    /// returns false.
    pub fn advance_clock(&self, by: Duration) -> bool {
        self.shared.advance(by)
    }
}

impl std::fmt::Debug for FlakyProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlakyProvider")
            .field("addr", &self.addr)
            .field("scenario", &self.shared.scenario)
            .finish_non_exhaustive()
    }
}

impl Drop for FlakyProvider {
    /// Stops accepting, drops every open connection (slow answers included)
    /// and joins the server thread; takes well under a second.
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
