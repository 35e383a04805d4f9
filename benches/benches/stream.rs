//! The cost a retried stream adds per event: the same decoded SSE body (1000
//! OpenAI content events, in memory) read directly through
//! `llm_resilience::stream::decode`, and through `Policy::stream`, which
//! adds the first-event wait, the idle and deadline timers' bookkeeping and
//! the interruption checks. Criterion reports time per event (throughput in
//! elements); the difference is the wrapper's cost.
//!
//! Two bodies: `ready`, whose chunks are all there at once (the wrapper
//! never waits, so its idle timer is never armed), and `pending`, whose
//! every chunk comes after the body said `Pending` once, as a network body
//! does between events: the wrapper then re-arms its idle timer for each
//! event. Run with `cargo bench -p benches --bench stream`.

use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures_util::{stream, Stream, StreamExt};
use llm_resilience::stream::{decode, Frame, OpenAi, StreamItem, StreamOptions};
use llm_resilience::Policy;

const EVENTS: usize = 1000;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The body, one event per chunk, ending with `[DONE]`.
fn body() -> Vec<String> {
    let mut chunks: Vec<String> = (0..EVENTS)
        .map(|i| {
            format!(
                "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"t{i} \"}}}}]}}\n\n"
            )
        })
        .collect();
    chunks.push("data: [DONE]\n\n".into());
    chunks
}

/// A body that says `Pending` once before each chunk (waking itself at
/// once), as a network body does between events.
struct Pending<S> {
    inner: S,
    yielded: bool,
}

impl<S: Stream + Unpin> Stream for Pending<S> {
    type Item = S::Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        if !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.yielded = false;
        self.inner.poll_next_unpin(cx)
    }
}

/// The body as a stream of chunks, each after a `Pending` if `pending`.
fn chunked(
    chunks: Vec<String>,
    pending: bool,
) -> Pin<Box<dyn Stream<Item = Result<String, Error>> + Send>> {
    let chunks = stream::iter(chunks.into_iter().map(Ok::<_, Error>));
    if pending {
        Box::pin(Pending {
            inner: chunks,
            yielded: false,
        })
    } else {
        Box::pin(chunks)
    }
}

async fn direct(chunks: Vec<String>, pending: bool) -> usize {
    let mut frames = decode(chunked(chunks, pending), OpenAi);
    let mut n = 0;
    while let Some(frame) = frames.next().await {
        if let Frame::Content(text) = frame.unwrap() {
            n += black_box(text).len();
        }
    }
    n
}

static POLICY: Policy = Policy::new();
const OPTIONS: StreamOptions = StreamOptions::new().stream_deadline(Duration::from_secs(60));

async fn retried(chunks: Vec<String>, pending: bool) -> usize {
    let mut chunks = Some(chunks);
    let mut answer = POLICY
        .stream(OPTIONS, OpenAi, move |_| {
            let body = chunks.take().unwrap_or_default();
            async move { Ok::<_, Error>(chunked(body, pending)) }
        })
        .await
        .unwrap();
    let mut n = 0;
    while let Some(item) = answer.next().await {
        if let StreamItem::Content(text) = item.unwrap() {
            n += black_box(text).len();
        }
    }
    n
}

fn stream_overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let chunks = body();
    for (name, pending) in [
        ("stream_per_event", false),
        ("stream_per_event_pending", true),
    ] {
        assert_eq!(
            rt.block_on(direct(chunks.clone(), pending)),
            rt.block_on(retried(chunks.clone(), pending))
        );
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(EVENTS as u64));
        group.bench_function("decode_directly", |b| {
            b.iter_batched(
                || chunks.clone(),
                |c| rt.block_on(direct(c, pending)),
                criterion::BatchSize::SmallInput,
            )
        });
        group.bench_function("policy_stream", |b| {
            b.iter_batched(
                || chunks.clone(),
                |c| rt.block_on(retried(c, pending)),
                criterion::BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

criterion_group!(benches, stream_overhead);
criterion_main!(benches);
