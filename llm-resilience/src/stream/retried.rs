//! Streamed calls retried until their first content event (features
//! `stream` and `tokio`): [`Hooks::stream`] and [`Policy::stream`].
//!
//! An attempt is the request and the wait for the first content event
//! (text, or output that is not text: [`Frame::Output`]). An answer that
//! ends with its terminal marker before any is complete and empty, not a
//! failure. It
//! runs as one attempt of the engine's driver, so everything before the
//! first content event is classified and retried under the call's policy
//! (backoff, `Retry-After`, deadline, breaker, budget, limiter, idempotency
//! key). After it, the [`RetriedStream`] hands out the events and turns any
//! interruption into an error item, reported to the breaker and the limiter
//! as a failure of its kind; by [`OnInterrupt`], the call then ends,
//! restarts or resumes, through the same driver.

use std::error::Error;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use tokio::time::Instant;

use super::watch::{later, Expired, Watch};
use super::{EventFormat, Frame, Frames, StreamError, StreamFailure};
use crate::engine::call::Hooks;
use crate::engine::driver::Call;
use crate::engine::state::Start;
use crate::guards::Refuse;
use crate::hooks::{NoHook, RetryAll};
use crate::observe::trace;
use crate::{metrics, Classify, Elapsed, Policy, RetryEvent};

/// A boxed error, as transports report them.
type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// The decoded frames of one attempt's body.
type BoxFrames<'a> = Pin<Box<dyn Stream<Item = Result<Frame, StreamError>> + Send + 'a>>;

/// What a stream does when it is interrupted after its first content event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnInterrupt {
    /// The interruption is the stream's last item (the default): the
    /// consumer already holds part of the answer, and decides.
    #[default]
    Fail,
    /// The call starts over with the same request and idempotency key; the
    /// consumer receives [`StreamItem::Restarted`] before the new stream's
    /// events, and should discard what it showed.
    Restart,
    /// The call goes on with a continuation request: `open` is called with
    /// the text received so far ([`Received::text`]), and the new stream's
    /// events follow the old ones without a signal.
    Resume,
}

/// How a retried stream is timed and what it does when interrupted. Every
/// builder is a `const fn`.
///
/// | builder | default |
/// |---|---|
/// | [`first_event_timeout`](Self::first_event_timeout) | 60 s |
/// | [`idle_timeout`](Self::idle_timeout) | 30 s |
/// | [`stream_deadline`](Self::stream_deadline) | none |
/// | [`on_interrupt`](Self::on_interrupt) | [`OnInterrupt::Fail`] |
///
/// ```
/// use std::time::Duration;
/// use llm_resilience::stream::{OnInterrupt, StreamOptions};
///
/// const CHAT: StreamOptions = StreamOptions::new()
///     .first_event_timeout(Duration::from_secs(10))
///     .idle_timeout(Duration::from_secs(20))
///     .stream_deadline(Duration::from_secs(120))
///     .on_interrupt(OnInterrupt::Restart);
/// assert_eq!(CHAT.interrupt(), OnInterrupt::Restart);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamOptions {
    first_event: Duration,
    idle: Duration,
    deadline: Option<Duration>,
    on_interrupt: OnInterrupt,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions::new()
    }
}

impl StreamOptions {
    /// The defaults: see the table above.
    pub const fn new() -> Self {
        StreamOptions {
            first_event: Duration::from_secs(60),
            idle: Duration::from_secs(30),
            deadline: None,
            on_interrupt: OnInterrupt::Fail,
        }
    }

    /// How long an attempt may take from its start (the request sent) to
    /// its first content event: the time to first token. An attempt past it
    /// fails with [`StreamFailure::FirstEventTimeout`] and is retried as a
    /// [`Timeout`](crate::ErrorKind::Timeout).
    pub const fn first_event_timeout(mut self, limit: Duration) -> Self {
        self.first_event = limit;
        self
    }

    /// How long the stream may go without an event once content has come
    /// ([`StreamFailure::IdleTimeout`]). The timeout comes between `limit`
    /// and `limit × 1.125` after the last event: the timer is checked every
    /// `limit / 8` rather than moved for each event, which would cost more
    /// than the rest of the event's handling. A consumer that stops asking
    /// for items does not make the stream time out.
    pub const fn idle_timeout(mut self, limit: Duration) -> Self {
        self.idle = limit;
        self
    }

    /// How long the whole stream may take, from the call's start
    /// ([`StreamFailure::StreamDeadline`]). The policy's deadline covers
    /// the time to the first event only. Checked whenever the stream waits
    /// for the body.
    pub const fn stream_deadline(mut self, limit: Duration) -> Self {
        self.deadline = Some(limit);
        self
    }

    /// What an interruption after content does.
    pub const fn on_interrupt(mut self, then: OnInterrupt) -> Self {
        self.on_interrupt = then;
        self
    }

    /// The time to first token allowed.
    pub const fn first_event(&self) -> Duration {
        self.first_event
    }

    /// The longest silence allowed after content.
    pub const fn idle(&self) -> Duration {
        self.idle
    }

    /// The whole-stream deadline, if any.
    pub const fn deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// What an interruption after content does.
    pub const fn interrupt(&self) -> OnInterrupt {
        self.on_interrupt
    }
}

/// What `open` is given: what the consumer received of the answer before
/// this request. Empty for the call's first request and after a restart;
/// with [`OnInterrupt::Resume`], after an interruption, the text delivered
/// so far, to build a continuation request from (an assistant message
/// holding it, say), with an idempotency key of its own (it is a different
/// request): [`Received::resumes`] tells them apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    text: String,
    events: u64,
    resumes: u32,
}

impl Received {
    /// The text delivered so far (empty unless resuming).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The content events delivered so far (0 unless resuming).
    pub fn events(&self) -> u64 {
        self.events
    }

    /// How many times the stream was resumed: 0 for the call's first
    /// request.
    pub fn resumes(&self) -> u32 {
        self.resumes
    }

    /// Whether this request continues an interrupted answer.
    pub fn is_resume(&self) -> bool {
        self.resumes > 0
    }
}

/// One item of a [`RetriedStream`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamItem {
    /// A piece of the answer's text.
    Content(String),
    /// Output of the model that is not text: a piece of its reasoning, of
    /// a tool call, of a refusal, as the provider sent it
    /// ([`Frame::Output`]).
    Output(String),
    /// An event without text (a ping, metadata): keeps the stream alive.
    Other,
    /// The stream was interrupted and the call restarted
    /// ([`OnInterrupt::Restart`]): discard the content received so far; the
    /// new stream's events follow.
    Restarted,
}

/// A streamed answer whose first content event has come: its events, ending
/// cleanly only after the format's terminal marker. Any interruption (an
/// error event, a dropped connection, no event within the idle timeout or
/// the whole-stream deadline, an end without the terminal marker) is an
/// error item, made `E::from(StreamError)` and saying how many content
/// events came before it; unless it restarts or resumes, it is the last
/// item.
///
/// Made by [`Hooks::stream`] and [`Policy::stream`]. Dropping it closes the
/// body and leaves the breaker, budget and limiter as they are.
pub struct RetriedStream<'a, E> {
    frames: Option<BoxFrames<'a>>,
    driver: Option<Box<dyn Reopen<'a, E> + 'a>>,
    reopening: Option<Pin<Box<dyn Future<Output = Reopened<'a, E>> + Send + 'a>>>,
    /// The first content or output event of a restarted stream, given
    /// after [`StreamItem::Restarted`].
    pending: Option<StreamItem>,
    options: StreamOptions,
    /// The call's metric keys.
    name: &'static crate::metrics::MetricKeys,
    /// Content events delivered of the current answer.
    delivered: u64,
    /// The text delivered, kept when resuming only.
    text: String,
    resumes: u32,
    /// The idle timeout and the whole-stream deadline.
    watch: Watch,
    ended: bool,
}

impl<E> fmt::Debug for RetriedStream<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetriedStream")
            .field("delivered", &self.delivered)
            .field("options", &self.options)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl<E> RetriedStream<'_, E> {
    /// How many content events of the current answer have been delivered
    /// (since the last [`StreamItem::Restarted`]).
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// The options it runs with.
    pub fn options(&self) -> &StreamOptions {
        &self.options
    }
}

/// A call's driver, kept by its stream to report a late failure, or to go
/// on after an interruption.
trait Reopen<'a, E>: Send {
    /// Go on after `error` interrupted the stream: decide as for any
    /// failure, wait, and open until the first content event.
    fn reopen(
        self: Box<Self>,
        error: E,
        received: Received,
    ) -> Pin<Box<dyn Future<Output = Reopened<'a, E>> + Send + 'a>>;

    /// The stream ends with `error`: report it.
    fn fail(&mut self, error: &E, delivered: u64);

    /// The stream ended complete: report it.
    fn completed(&mut self);
}

/// A reopened stream, or why not, and the driver back.
struct Reopened<'a, E> {
    driver: Box<dyn Reopen<'a, E> + 'a>,
    outcome: Result<Opened<'a>, E>,
}

/// An attempt that got its first content event, or the whole answer
/// (complete and empty).
struct Opened<'a> {
    frames: BoxFrames<'a>,
    /// The first content or output event; `None` for an answer that ended,
    /// with its terminal marker, before any.
    first: Option<StreamItem>,
}

impl<'a> Opened<'a> {
    /// The frames still to read and the first item: none of either for an
    /// answer that was complete and empty, whose stream ends at once,
    /// cleanly.
    fn split(self) -> (Option<BoxFrames<'a>>, Option<StreamItem>) {
        match self.first {
            Some(first) => (Some(self.frames), Some(first)),
            None => (None, None),
        }
    }
}

/// The driver of a streamed call, with what opens its attempts.
struct Driver<'p, E, W, H, O, F> {
    call: Call<'p, E, W, H>,
    open: O,
    format: F,
    options: StreamOptions,
    received: Received,
    started: Instant,
    /// Whether the call's first content event was reported (time to first
    /// event, once per call: a restart's or a resume's first event is not
    /// the call's).
    first_reported: bool,
}

impl<'p, E, W, H, O, F, Fut, S, B, SE> Driver<'p, E, W, H, O, F>
where
    E: Classify + From<StreamError> + Send + 'p,
    W: Fn(&E) -> bool + Send + Sync + 'p,
    H: Fn(&RetryEvent<'_, E>) + Send + Sync + 'p,
    O: FnMut(&Received) -> Fut + Send + 'p,
    Fut: Future<Output = Result<S, E>> + Send + 'p,
    S: Stream<Item = Result<B, SE>> + Send + 'p,
    B: AsRef<[u8]> + 'p,
    SE: Into<BoxError> + 'p,
    F: EventFormat + Clone + Send + Sync + 'p,
{
    /// Run the call until an attempt gets its first content event, or the
    /// call gives up.
    async fn open_until_first(&mut self) -> Result<Opened<'p>, E> {
        let limit = self.options.first_event;
        loop {
            let body =
                core::pin::pin!(attempt(&mut self.open, &self.format, &self.received, limit));
            if let Some(ending) = self.call.attempt_async_holding(body).await {
                let opened = ending.into_result()?;
                if !self.first_reported {
                    self.first_reported = true;
                    let (span, name, attempt) = self.call.observed();
                    let ttfe = self.started.elapsed();
                    trace::first_event(span, ttfe, attempt);
                    metrics::stream_first_event(name, ttfe);
                }
                return Ok(opened);
            }
        }
    }
}

/// One attempt: open the body, read it to its first content event, within
/// `limit`.
async fn attempt<'a, E, O, Fut, S, B, SE, F>(
    open: &mut O,
    format: &F,
    received: &Received,
    limit: Duration,
) -> Result<Opened<'a>, E>
where
    E: From<StreamError>,
    O: FnMut(&Received) -> Fut,
    Fut: Future<Output = Result<S, E>>,
    S: Stream<Item = Result<B, SE>> + Send + 'a,
    B: AsRef<[u8]> + 'a,
    SE: Into<BoxError> + 'a,
    F: EventFormat + Clone + Send + 'a,
{
    let read = async {
        let bytes = open(received).await?;
        let mut frames: BoxFrames<'a> = Box::pin(Frames::new(bytes, format.clone()));
        loop {
            let first = match poll_fn(|cx| frames.as_mut().poll_next(cx)).await {
                Some(Ok(Frame::Content(text))) => Some(StreamItem::Content(text)),
                Some(Ok(Frame::Output(data))) => Some(StreamItem::Output(data)),
                // A complete answer with nothing in it (a content filter's,
                // say): not a failure, and not worth paying for again.
                Some(Ok(Frame::Done)) => None,
                Some(Ok(_)) => continue,
                Some(Err(error)) => return Err(E::from(error)),
                None => return Err(E::from(StreamError::new(StreamFailure::Incomplete, 0))),
            };
            return Ok(Opened { frames, first });
        }
    };
    match tokio::time::timeout(limit, read).await {
        Ok(outcome) => outcome,
        Err(_) => Err(E::from(StreamError::first_event_timeout(limit))),
    }
}

impl<'p, E, W, H, O, F, Fut, S, B, SE> Reopen<'p, E> for Driver<'p, E, W, H, O, F>
where
    E: Classify + From<StreamError> + Send + 'p,
    W: Fn(&E) -> bool + Send + Sync + 'p,
    H: Fn(&RetryEvent<'_, E>) + Send + Sync + 'p,
    O: FnMut(&Received) -> Fut + Send + 'p,
    Fut: Future<Output = Result<S, E>> + Send + 'p,
    S: Stream<Item = Result<B, SE>> + Send + 'p,
    B: AsRef<[u8]> + 'p,
    SE: Into<BoxError> + 'p,
    F: EventFormat + Clone + Send + Sync + 'p,
{
    fn reopen(
        mut self: Box<Self>,
        error: E,
        received: Received,
    ) -> Pin<Box<dyn Future<Output = Reopened<'p, E>> + Send + 'p>> {
        Box::pin(async move {
            let resuming = self.options.on_interrupt == OnInterrupt::Resume;
            let (span, _, _) = self.call.observed();
            let then = if resuming { "resuming" } else { "restarting" };
            trace::interrupted(span, error.kind(), received.events, then);
            if let Err(error) = self.call.interrupted_async(error).await {
                return Reopened {
                    driver: self,
                    outcome: Err(error),
                };
            }
            metrics::stream_restarted(self.call.observed().1);
            self.received = if resuming {
                received
            } else {
                Received::default()
            };
            let outcome = self.open_until_first().await;
            Reopened {
                driver: self,
                outcome,
            }
        })
    }

    fn fail(&mut self, error: &E, delivered: u64) {
        let (span, _, _) = self.call.observed();
        trace::interrupted(span, error.kind(), delivered, "failed");
        self.call.interrupted_final(error);
    }

    fn completed(&mut self) {
        self.call.stream_completed();
    }
}

impl<'p, W, H, R> Hooks<'p, W, H, R> {
    /// Open a streamed call under these hooks: `open` sends the request and
    /// returns its body as a stream of byte chunks (reqwest's
    /// `bytes_stream()`, say), decoded in `format`. Each attempt is the
    /// request and the wait for its first content event (within
    /// [`StreamOptions::first_event_timeout`]); everything that fails before
    /// it (a connection error, a non-2xx status turned into `E` by `open`,
    /// an error event first, a body that ends without its terminal marker
    /// before content, no first event in time) is retried under the policy,
    /// as [`call_async`](Self::call_async) retries. Returns the stream once
    /// its first content event came (text, or [`StreamItem::Output`]), or
    /// the answer ended complete and empty: see [`RetriedStream`]. The
    /// policy's deadline and attempt timeout cover the wait for the first
    /// event only.
    ///
    /// `open` is given what was [`Received`] before this request (nothing,
    /// unless resuming); [`attempt()`](crate::attempt()) inside it gives the
    /// call's idempotency key, the same for every attempt and restart.
    ///
    /// The hooks are cloned into the stream, which lives as long as the
    /// policy and guards they borrow. Everything must be `Send`.
    #[allow(clippy::type_complexity)]
    pub async fn stream<E, O, Fut, S, B, SE, F>(
        &self,
        options: StreamOptions,
        format: F,
        open: O,
    ) -> Result<RetriedStream<'p, E>, E>
    where
        E: Classify + From<Elapsed> + From<StreamError> + Send + 'p,
        W: Fn(&E) -> bool + Clone + Send + Sync + 'p,
        H: Fn(&RetryEvent<'_, E>) + Clone + Send + Sync + 'p,
        R: Refuse<E>,
        O: FnMut(&Received) -> Fut + Send + 'p,
        Fut: Future<Output = Result<S, E>> + Send + 'p,
        S: Stream<Item = Result<B, SE>> + Send + 'p,
        B: AsRef<[u8]> + 'p,
        SE: Into<BoxError> + 'p,
        F: EventFormat + Clone + Send + Sync + 'p,
    {
        let (policy, guards, when, on_retry) = self.parts();
        Call::new(
            Start::tokio(policy, &crate::metrics::POLICY_KEYS).guarded(guards),
            self.refusals(),
            when.clone(),
            on_retry.clone(),
            trace::stream_span,
            false,
        )
        .open_stream(options, format, open)
        .await
    }
}

impl<'p, E, W, H> Call<'p, E, W, H>
where
    E: Classify + From<StreamError> + Send + 'p,
    W: Fn(&E) -> bool + Send + Sync + 'p,
    H: Fn(&RetryEvent<'_, E>) + Send + Sync + 'p,
{
    /// Run this call as a streamed one, until its first content event: the
    /// one way both [`Hooks::stream`] and `#[retry(stream = ...)]` open a
    /// stream.
    pub(crate) async fn open_stream<O, Fut, S, B, SE, F>(
        self,
        options: StreamOptions,
        format: F,
        open: O,
    ) -> Result<RetriedStream<'p, E>, E>
    where
        O: FnMut(&Received) -> Fut + Send + 'p,
        Fut: Future<Output = Result<S, E>> + Send + 'p,
        S: Stream<Item = Result<B, SE>> + Send + 'p,
        B: AsRef<[u8]> + 'p,
        SE: Into<BoxError> + 'p,
        F: EventFormat + Clone + Send + Sync + 'p,
    {
        let started = Instant::now();
        let mut driver = Box::new(Driver {
            call: self,
            open,
            format,
            options,
            received: Received::default(),
            started,
            first_reported: false,
        });
        let opened = driver.open_until_first().await?;
        let name = driver.call.observed().1;
        let deadline = options.deadline.map(|limit| later(started, limit));
        let (frames, pending) = opened.split();
        Ok(RetriedStream {
            frames,
            driver: Some(driver),
            reopening: None,
            pending,
            options,
            name,
            delivered: 0,
            text: String::new(),
            resumes: 0,
            watch: Watch::new(options.idle, deadline),
            ended: false,
        })
    }
}

impl Policy {
    /// Open a streamed call under this policy, as [`Hooks::stream`] does.
    ///
    /// ```
    /// use futures_util::{stream, StreamExt};
    /// use llm_resilience::stream::{OpenAi, StreamError, StreamItem, StreamOptions};
    /// use llm_resilience::{Policy, Wait};
    ///
    /// type Error = Box<dyn std::error::Error + Send + Sync>;
    /// const BODY: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n\
    ///                     data: [DONE]\n\n";
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let policy = Policy::new().wait(Wait::none());
    /// let mut attempts = 0;
    /// let mut answer = policy
    ///     .stream(StreamOptions::new(), OpenAi, |_| {
    ///         attempts += 1;
    ///         // The first attempt's stream ends before any content: retried.
    ///         let body = if attempts == 1 { "" } else { BODY };
    ///         async move { Ok::<_, Error>(stream::iter([Ok::<_, Error>(body)])) }
    ///     })
    ///     .await
    ///     .unwrap();
    /// let mut text = String::new();
    /// while let Some(item) = answer.next().await {
    ///     if let StreamItem::Content(piece) = item.unwrap() {
    ///         text.push_str(&piece);
    ///     }
    /// }
    /// assert_eq!(text, "Hi");
    /// # drop(answer);
    /// assert_eq!(attempts, 2);
    /// # }
    /// ```
    pub async fn stream<'p, E, O, Fut, S, B, SE, F>(
        &'p self,
        options: StreamOptions,
        format: F,
        open: O,
    ) -> Result<RetriedStream<'p, E>, E>
    where
        E: Classify + From<Elapsed> + From<StreamError> + Send + 'p,
        O: FnMut(&Received) -> Fut + Send + 'p,
        Fut: Future<Output = Result<S, E>> + Send + 'p,
        S: Stream<Item = Result<B, SE>> + Send + 'p,
        B: AsRef<[u8]> + 'p,
        SE: Into<BoxError> + 'p,
        F: EventFormat + Clone + Send + Sync + 'p,
    {
        let when: RetryAll<E> = |_| true;
        let on_retry: NoHook<E> = |_| {};
        self.when(when)
            .on_retry(on_retry)
            .stream(options, format, open)
            .await
    }
}

impl<E> RetriedStream<'_, E>
where
    E: Classify + From<StreamError>,
{
    /// The stream was interrupted by `error`: end with it, or go on.
    #[cold]
    fn interrupt(&mut self, error: StreamError) -> Option<E> {
        metrics::stream_interrupted(self.name, error.kind());
        self.frames = None;
        self.watch.event();
        let delivered = self.delivered;
        let error = E::from(StreamError::new(error.into_failure(), delivered));
        match (self.options.on_interrupt, self.driver.take()) {
            (OnInterrupt::Restart | OnInterrupt::Resume, Some(driver)) => {
                let received = if self.options.on_interrupt == OnInterrupt::Resume {
                    self.resumes += 1;
                    Received {
                        text: self.text.clone(),
                        events: delivered,
                        resumes: self.resumes,
                    }
                } else {
                    Received {
                        text: String::new(),
                        events: delivered,
                        resumes: 0,
                    }
                };
                self.reopening = Some(driver.reopen(error, received));
                None
            }
            (_, driver) => {
                if let Some(mut driver) = driver {
                    driver.fail(&error, delivered);
                }
                self.ended = true;
                Some(error)
            }
        }
    }

    /// A content or output event goes to the consumer.
    #[inline]
    fn deliver(&mut self, item: StreamItem) -> Poll<Option<Result<StreamItem, E>>> {
        self.delivered += 1;
        self.watch.event();
        if let StreamItem::Content(text) = &item {
            if self.options.on_interrupt == OnInterrupt::Resume {
                self.text.push_str(text);
            }
        }
        Poll::Ready(Some(Ok(item)))
    }

    /// The stream waits for its body: has a timer run out?
    #[inline]
    fn timed_out(&mut self, cx: &mut Context<'_>) -> Option<StreamError> {
        let expired = self.watch.check(cx)?;
        Some(match expired {
            Expired::Idle => StreamError::idle_timeout(self.options.idle, self.delivered),
            Expired::Deadline => StreamError::new(
                StreamFailure::StreamDeadline(self.options.deadline.unwrap_or_default()),
                self.delivered,
            ),
        })
    }
}

impl<E> Stream for RetriedStream<'_, E>
where
    E: Classify + From<StreamError>,
{
    type Item = Result<StreamItem, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.ended {
                return Poll::Ready(None);
            }
            if let Some(reopening) = this.reopening.as_mut() {
                let Reopened { driver, outcome } = ready!(reopening.as_mut().poll(cx));
                this.reopening = None;
                this.driver = Some(driver);
                match outcome {
                    Ok(opened) => {
                        let (frames, first) = opened.split();
                        this.frames = frames;
                        if this.options.on_interrupt == OnInterrupt::Resume {
                            match first {
                                Some(first) => return this.deliver(first),
                                // The continuation had nothing to add.
                                None => continue,
                            }
                        }
                        this.delivered = 0;
                        this.pending = first;
                        return Poll::Ready(Some(Ok(StreamItem::Restarted)));
                    }
                    Err(error) => {
                        this.ended = true;
                        this.driver = None;
                        return Poll::Ready(Some(Err(error)));
                    }
                }
            }
            if let Some(first) = this.pending.take() {
                return this.deliver(first);
            }
            let Some(frames) = this.frames.as_mut() else {
                // An answer that was complete and empty.
                this.ended = true;
                if let Some(mut driver) = this.driver.take() {
                    driver.completed();
                }
                return Poll::Ready(None);
            };
            let failure = match frames.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(Frame::Content(text)))) => {
                    return this.deliver(StreamItem::Content(text))
                }
                Poll::Ready(Some(Ok(Frame::Output(data)))) => {
                    return this.deliver(StreamItem::Output(data))
                }
                Poll::Ready(Some(Ok(Frame::Done))) => {
                    this.ended = true;
                    this.frames = None;
                    if let Some(mut driver) = this.driver.take() {
                        driver.completed();
                    }
                    return Poll::Ready(None);
                }
                Poll::Ready(Some(Ok(Frame::Error(error)))) => {
                    StreamError::new(StreamFailure::ErrorEvent(error), 0)
                }
                Poll::Ready(Some(Ok(_))) => {
                    this.watch.event();
                    return Poll::Ready(Some(Ok(StreamItem::Other)));
                }
                Poll::Ready(Some(Err(error))) => error,
                Poll::Ready(None) => StreamError::new(StreamFailure::Incomplete, 0),
                Poll::Pending => match this.timed_out(cx) {
                    Some(error) => error,
                    None => return Poll::Pending,
                },
            };
            if let Some(error) = this.interrupt(failure) {
                return Poll::Ready(Some(Err(error)));
            }
        }
    }
}
