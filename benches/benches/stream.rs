//! The cost a retried stream adds per event: the same decoded SSE body (1000
//! OpenAI content events, in memory) read directly through
//! `llm_resilience::stream::decode`, and through `Policy::stream`, which
//! adds the first-event wait, the idle and deadline timers' bookkeeping and
//! the interruption checks. Criterion reports time per event (throughput in
//! elements); the difference is the wrapper's cost.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures_util::{stream, StreamExt};
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

async fn direct(chunks: Vec<String>) -> usize {
    let mut frames = decode(stream::iter(chunks.into_iter().map(Ok::<_, Error>)), OpenAi);
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

async fn retried(chunks: Vec<String>) -> usize {
    let mut chunks = Some(chunks);
    let mut answer = POLICY
        .stream(OPTIONS, OpenAi, move |_| {
            let body = chunks.take().unwrap_or_default();
            async move { Ok::<_, Error>(stream::iter(body.into_iter().map(Ok::<_, Error>))) }
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
    assert_eq!(
        rt.block_on(direct(chunks.clone())),
        rt.block_on(retried(chunks.clone()))
    );
    let mut group = c.benchmark_group("stream_per_event");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("decode_directly", |b| {
        b.iter_batched(
            || chunks.clone(),
            |c| rt.block_on(direct(c)),
            criterion::BatchSize::SmallInput,
        )
    });
    group.bench_function("policy_stream", |b| {
        b.iter_batched(
            || chunks.clone(),
            |c| rt.block_on(retried(c)),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, stream_overhead);
criterion_main!(benches);
