//! The demo: hundreds of chat completions through a retry [`Policy`] and a
//! shared [`CircuitBreaker`], against a local provider that fails in every
//! way an LLM API does (or a real OpenAI-compatible endpoint), then a
//! summary.
//!
//! ```sh
//! cargo run --release -p examples --bin demo
//! cargo run --release -p examples --bin demo -- --scenario 503 --requests 50
//! cargo run --release -p examples --bin demo -- --scenario outage
//! OPENAI_API_KEY=sk-... cargo run --release -p examples --bin demo -- --base-url https://api.openai.com/v1 --requests 5
//! cargo run --release -p examples --bin demo -- --stream
//! cargo run --release -p examples --bin demo -- --stream --format anthropic --on-interrupt fail
//! ```
//!
//! # Streams
//!
//! With `--stream` every call asks for `"stream": true` and goes through
//! [`Hooks::stream`](llm_resilience::hooks::Hooks::stream) with the same policy and
//! breaker: each attempt is the request and the wait for its first content
//! event, retried as any failed attempt is; after it the stream is read to
//! its end. The local provider then plays `stream-chaos` by default: 40 % of
//! attempts meet one fault drawn from every way a stream breaks (an error
//! event first, or after a few tokens; a 3 s stall before the first event or
//! mid-stream; an end without the terminal marker; a connection cut before
//! or after content) or from the HTTP faults before a stream (429 with
//! `retry-after-ms`, 503, 529, a dropped connection). Locally a stream must
//! get its first event within 1 s and then an event at least every 1 s;
//! against `--base-url`, the library's defaults (60 s and 30 s).
//! `--on-interrupt restart` (the default here) starts an interrupted call
//! over with the same idempotency key; `fail` ends it with the error, as the
//! library does by default. `--format anthropic` calls `{base}/messages`
//! and reads Anthropic's events.
//!
//! The summary adds the time to first event (p50, p95), the streams
//! recovered before their first event (an attempt failed, a later one got
//! content), the interruptions after content by kind, and the streams
//! **silently truncated**: ended without an error although the answer was
//! not whole. Against the local provider, which streams the prompt back
//! word by word, that is a clean end with any other text, or without the
//! terminal marker (`data: [DONE]`, `event: message_stop`) in the body;
//! against `--base-url`, whose whole answer is unknown, a clean end without
//! the marker in the body. The library never ends a stream cleanly without
//! the marker, so the row reads 0, and the demo fails if it does not.
//! To try `--base-url` without a real endpoint, serve the flaky provider on
//! a port of its own: `cargo run --release -p examples --bin provider --
//! --port 8080`, then `OPENAI_API_KEY=none ... demo -- --stream --base-url
//! http://127.0.0.1:8080/v1`.
//!
//! # Settings
//!
//! The policy is built at run time from the flags. Against the local
//! provider, whose answers are instant, an attempt may take 2 s (its `slow`
//! fault answers after 3 s, so a slow attempt is cut off and retried), a call
//! 30 s, with up to 6 attempts. Against `--base-url`, sized for real chat
//! completions: 120 s per attempt, 300 s per call, up to 4 attempts.
//! `--attempt-timeout`, `--deadline` and `--max-attempts` change them.
//!
//! # The breaker
//!
//! All calls share one breaker. It should open when the provider is down,
//! not when a burst of calls each fail a couple of times before they
//! succeed. In the `500`, `503`, `529`, `slow` and `drop` scenarios every
//! request fails its first attempts (two at most), so with C calls in
//! flight the first 2 × C attempts all fail, and later about two attempts in
//! three fail. The breaker therefore opens only when **90 %** of the attempts
//! in the last 30 s failed, counted once there are at least
//! **max(100, 4 × concurrency)** of them: every call of those scenarios
//! succeeds, while in `outage` (every attempt gets a 503) it opens after
//! that many failures and refuses every later call for 30 s without sending
//! it. Rate limits do not count as failures.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::builder::PossibleValuesParser;
use clap::Parser;
use examples::flaky::{FlakyProvider, Scenario};
use indicatif::{ProgressBar, ProgressStyle};
use llm_resilience::http::{check, HttpError, RequestBuilderExt};
use llm_resilience::{
    CircuitBreaker, CircuitOpen, Classify, DelaySource, Policy, RetryEvent, Wait,
};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use serde_json::{json, Value};
use streaming::{Format, Interrupt, StreamSetup};
use tokio::sync::Semaphore;

#[path = "demo/streaming.rs"]
mod streaming;

/// Chat completions through a retry policy and a circuit breaker, against a
/// local provider that fails on purpose or a real OpenAI-compatible endpoint.
#[derive(Parser, Debug)]
#[command(name = "demo")]
struct Options {
    /// Logical chat requests to send.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    requests: u32,

    /// Requests in flight at once.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    concurrency: u32,

    /// The local provider's faults. `500`, `503`, `529`, `slow` and `drop` fail
    /// each request twice, then answer; `outage` answers 503 to everything
    /// [default: chaos; stream-chaos with --stream].
    #[arg(
        long,
        value_parser = PossibleValuesParser::new(Scenario::names()),
        conflicts_with = "base_url"
    )]
    scenario: Option<String>,

    /// Stream the chat completions (`"stream": true`), retried until their
    /// first content event, and report time to first event, recoveries,
    /// interruptions and truncations.
    #[arg(long)]
    stream: bool,

    /// The streams' wire format: OpenAI's chat completions or Anthropic's
    /// messages (`{base-url}/messages`).
    #[arg(long, value_enum, default_value_t = Format::Openai, requires = "stream")]
    format: Format,

    /// What a stream interrupted after content does: start over with the
    /// same idempotency key, or end with the error.
    #[arg(long, value_enum, default_value_t = Interrupt::Restart, requires = "stream")]
    on_interrupt: Interrupt,

    /// Call this OpenAI-compatible endpoint (e.g. https://api.openai.com/v1)
    /// instead of the local provider; the key is read from OPENAI_API_KEY.
    #[arg(long, value_name = "URL")]
    base_url: Option<String>,

    /// The model to ask for.
    #[arg(long, default_value = "gpt-4o-mini")]
    model: String,

    /// How long one attempt may take before it is cut off and retried, e.g.
    /// `90s`, `2m`, `500ms` [default: 2s locally, 120s with --base-url].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    attempt_timeout: Option<Duration>,

    /// How long a call may take, all its attempts and waits included
    /// [default: 30s locally, 300s with --base-url].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    deadline: Option<Duration>,

    /// Attempts per call, the first one included [default: 6 locally, 4 with
    /// --base-url].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100))]
    max_attempts: Option<u32>,
}

/// `120s`, `1.5s`, `250ms`, `2m`, `1h`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "ms" => 0.001,
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "unknown unit {other:?}; write a duration like 120s, 2m or 500ms"
            ))
        }
    };
    match number.parse::<f64>() {
        Ok(n) if (0.001..=86_400.0).contains(&(n * scale)) => {
            Ok(Duration::from_secs_f64(n * scale))
        }
        _ => Err(format!(
            "{text:?} is not a duration between 1ms and 24h; write one like 120s, 2m or 500ms"
        )),
    }
}

/// A duration as a person would say it: `30s`, `1.5s`, `250ms`, `2m30s`.
fn human(d: Duration) -> String {
    llm_resilience::HumanWait(d).to_string()
}

/// The breaker's refusal inside `error`, when the call was refused instead
/// of answered.
fn refusal(error: &HttpError) -> Option<&CircuitOpen> {
    error.circuit_open()
}

/// `text` on one line, its runs of whitespace collapsed to one space.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A provider error as one line: status, request id, wait asked for, and the
/// provider's message whole (the `error.message` of an OpenAI- or
/// Anthropic-shaped body, else the body), or the transport error's chain.
fn describe(error: &HttpError) -> String {
    let mut line = match error.status() {
        Some(status) => format!("HTTP {}", status.as_u16()),
        None => format!("{} error", error.kind()),
    };
    let mut notes = Vec::new();
    if let Some(id) = error.request_id() {
        notes.push(format!("request {id}"));
    }
    if let Some(wait) = error.retry_after() {
        notes.push(format!("retry after {}", human(wait)));
    }
    if !notes.is_empty() {
        line.push_str(&format!(" ({})", notes.join(", ")));
    }
    let message = serde_json::from_str::<Value>(error.body())
        .ok()
        .and_then(|body| body["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| error.body().to_owned());
    if !message.is_empty() {
        line.push_str(": ");
        line.push_str(&message);
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        line.push_str(": ");
        line.push_str(&cause.to_string());
        source = cause.source();
    }
    one_line(&line)
}

/// Counters that the retry hook and the calls share.
static ATTEMPTS: AtomicU64 = AtomicU64::new(0);
static RETRY_AFTER_WAITS: AtomicU64 = AtomicU64::new(0);

fn on_retry(event: &RetryEvent<'_, HttpError>) {
    if event.source() == DelaySource::RetryAfter {
        RETRY_AFTER_WAITS.fetch_add(1, Ordering::Relaxed);
    }
}

struct Endpoint {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    model: String,
}

/// One attempt: a chat completion request, with the retry headers.
async fn chat(endpoint: &Endpoint, user: &str, prompt: &str) -> Result<String, HttpError> {
    ATTEMPTS.fetch_add(1, Ordering::Relaxed);
    let mut request = endpoint
        .client
        .post(format!("{}/chat/completions", endpoint.base_url))
        .json(&json!({
            "model": endpoint.model,
            "messages": [{"role": "user", "content": prompt}],
            "user": user,
        }))
        .retry_headers();
    if let Some(key) = &endpoint.api_key {
        request = request.bearer_auth(key);
    }
    let reply: Value = check(request.send().await?).await?.json().await?;
    Ok(reply["choices"][0]["message"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// How one logical request ended.
enum Outcome {
    Answered(Duration),
    /// The provider's (or the network's) error: kind and a one-line example.
    Failed(String, String),
    /// A stream interrupted after content, ended with its error (counted by
    /// kind in [`streaming::interruptions`]).
    Interrupted,
    /// Refused by the breaker after `sent` attempts had been sent.
    Refused {
        sent: u32,
        open: CircuitOpen,
    },
}

/// The counters and gauges llm-resilience reported, one line each, and the
/// mean call time.
fn print_metrics(snapshotter: &Snapshotter) {
    let mut lines = Vec::new();
    let mut function = None;
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let (_, key) = key.into_parts();
        if let Some(f) = key.labels().find(|l| l.key() == "function") {
            function = Some(f.value().to_owned());
        }
        let labels: Vec<String> = key
            .labels()
            .filter(|l| l.key() != "function")
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        match value {
            DebugValue::Counter(n) => lines.push(format!("{name:<60}{n}")),
            DebugValue::Gauge(g) => lines.push(format!("{name:<60}{}", g.into_inner())),
            DebugValue::Histogram(samples) if !samples.is_empty() => {
                let mean =
                    samples.iter().map(|s| s.into_inner()).sum::<f64>() / samples.len() as f64;
                lines.push(format!(
                    "{name:<60}mean {:.1} ms over {}",
                    mean * 1000.0,
                    samples.len()
                ));
            }
            _ => {}
        }
    }
    lines.sort();
    match function {
        Some(function) => println!("\nmetrics (function={function}):"),
        None => println!("\nmetrics:"),
    }
    for line in lines {
        println!("  {line}");
    }
    println!();
}

/// Prints one row of the summary table.
fn row(label: &str, value: impl std::fmt::Display) {
    println!("{label:<44}{value}");
}

/// The `p` quantile of `sorted` in milliseconds, or `-` when empty.
fn percentile(sorted: &[Duration], p: f64) -> String {
    if sorted.is_empty() {
        return "-".to_owned();
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    format!("{:.1} ms", sorted[i].as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
    let remote = options.base_url.is_some();
    // Sized for real chat completions against an endpoint; for instant
    // answers (and a 3 s `slow` fault) locally.
    let (max_attempts, attempt_timeout, deadline, wait) = if remote {
        (
            options.max_attempts.unwrap_or(4),
            options.attempt_timeout.unwrap_or(Duration::from_secs(120)),
            options.deadline.unwrap_or(Duration::from_secs(300)),
            Wait::exponential(Duration::from_millis(500), Duration::from_secs(20)),
        )
    } else {
        (
            options.max_attempts.unwrap_or(6),
            options.attempt_timeout.unwrap_or(Duration::from_secs(2)),
            options.deadline.unwrap_or(Duration::from_secs(30)),
            Wait::exponential(Duration::from_millis(100), Duration::from_secs(2)),
        )
    };
    let policy = Policy::new()
        .max_attempts(max_attempts)
        .wait(wait)
        .attempt_timeout(attempt_timeout)
        .deadline(deadline);
    if let Err(e) = policy.validate() {
        eprintln!("demo: the retry settings do not work together: {e}");
        return ExitCode::from(2);
    }
    // Opens on an outage, not on a burst of recoverable failures: see the
    // module documentation.
    let min_calls = options.concurrency.saturating_mul(4).max(100);
    let breaker = Arc::new(
        CircuitBreaker::new()
            .failure_ratio(0.9)
            .min_calls(min_calls)
            .window(Duration::from_secs(30))
            .break_for(Duration::from_secs(30)),
    );

    let scenario_name = options.scenario.clone().unwrap_or_else(|| {
        if options.stream {
            "stream-chaos"
        } else {
            "chaos"
        }
        .to_owned()
    });
    let (provider, base_url, api_key) = match &options.base_url {
        Some(url) => match std::env::var("OPENAI_API_KEY") {
            Ok(key) => (None, url.trim_end_matches('/').to_owned(), Some(key)),
            Err(_) => {
                eprintln!("demo: --base-url needs OPENAI_API_KEY set to the endpoint's API key");
                return ExitCode::from(2);
            }
        },
        None => {
            let Some(scenario) = Scenario::from_name(&scenario_name) else {
                eprintln!(
                    "demo: unknown scenario {scenario_name:?}; the scenarios are {}",
                    Scenario::names().join(", ")
                );
                return ExitCode::from(2);
            };
            match FlakyProvider::spawn(scenario) {
                Ok(provider) => {
                    let url = provider.base_url();
                    (Some(provider), url, None)
                }
                Err(e) => {
                    eprintln!("demo: could not start the local provider: {e}");
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    // Collect what llm-resilience reports through the `metrics` facade, to
    // print it at the end.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    if metrics::set_global_recorder(recorder).is_err() {
        eprintln!("demo: a metrics recorder is already installed; the summary leaves metrics out");
    }

    let client = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            eprintln!("demo: could not build the HTTP client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let endpoint = Arc::new(Endpoint {
        client,
        base_url,
        api_key,
        model: options.model.clone(),
    });

    let setup = Arc::new(StreamSetup {
        format: options.format,
        options: streaming::options(remote, options.on_interrupt),
        expected: provider.is_some(),
    });
    println!(
        "Sending {} {}chat requests, {} at a time, to {} ({}).",
        options.requests,
        match (options.stream, options.format) {
            (false, _) => "",
            (true, Format::Openai) => "streamed ",
            (true, Format::Anthropic) => "streamed Anthropic-format ",
        },
        options.concurrency,
        endpoint.base_url,
        if provider.is_some() {
            format!("local flaky provider, scenario {scenario_name}")
        } else {
            "remote endpoint".to_owned()
        }
    );
    println!(
        "Up to {max_attempts} attempts of at most {} each, {} per call; the breaker opens \
         when 90% of at least {min_calls} attempts in 30s fail, and then refuses calls for 30s.",
        human(attempt_timeout),
        human(deadline),
    );
    if options.stream {
        println!(
            "Each attempt must get its first content event within {}; then at most {} \
             between events; an interruption after content {}.",
            human(setup.options.first_event()),
            human(setup.options.idle()),
            match options.on_interrupt {
                Interrupt::Restart => "restarts the call",
                Interrupt::Fail => "ends the call with its error",
            }
        );
    }
    let bar = ProgressBar::new(u64::from(options.requests));
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} calls  {elapsed_precise}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let started = Instant::now();
    let limit = Arc::new(Semaphore::new(options.concurrency as usize));
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..options.requests {
        let endpoint = Arc::clone(&endpoint);
        let breaker = Arc::clone(&breaker);
        let limit = Arc::clone(&limit);
        let bar = bar.clone();
        let setup = options.stream.then(|| Arc::clone(&setup));
        calls.spawn(async move {
            let _slot = limit.acquire_owned().await;
            if let Some(setup) = setup {
                let done = streaming::stream_call(&endpoint, &setup, policy, &breaker, i).await;
                bar.inc(1);
                return done;
            }
            let begun = Instant::now();
            let user = format!("demo-{i}");
            let prompt = format!("Say hello to caller {i}");
            let mut sent = 0;
            let outcome = policy
                .on_retry(on_retry)
                .breaker(&breaker)
                .call_async(|| {
                    sent += 1;
                    chat(&endpoint, &user, &prompt)
                })
                .await;
            bar.inc(1);
            let outcome = match outcome {
                Ok(_) => Outcome::Answered(begun.elapsed()),
                Err(e) => match refusal(&e) {
                    Some(open) => Outcome::Refused { sent, open: *open },
                    None => Outcome::Failed(e.kind().to_string(), describe(&e)),
                },
            };
            (outcome, None)
        });
    }

    let mut latencies = Vec::with_capacity(options.requests as usize);
    let mut failed: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut refused: BTreeMap<&str, (u64, CircuitOpen)> = BTreeMap::new();
    let mut first_events = Vec::new();
    let (mut recovered, mut truncated) = (0u64, 0u64);
    while let Some(joined) = calls.join_next().await {
        if let Ok((_, Some(streamed))) = &joined {
            first_events.push(streamed.ttfe);
            recovered += u64::from(streamed.recovered);
            truncated += u64::from(streamed.truncated);
        }
        match joined.map(|(outcome, _)| outcome) {
            Ok(Outcome::Answered(latency)) => latencies.push(latency),
            Ok(Outcome::Interrupted) => {}
            Ok(Outcome::Failed(kind, example)) => {
                failed.entry(kind).or_insert((0, example)).0 += 1;
            }
            Ok(Outcome::Refused { sent, open }) => {
                let label = if sent == 0 {
                    "refused by circuit breaker (not sent)"
                } else {
                    "refused by circuit breaker (retry not sent)"
                };
                refused.entry(label).or_insert((0, open)).0 += 1;
            }
            Err(e) => {
                let entry = failed
                    .entry("panicked".to_owned())
                    .or_insert((0, one_line(&e.to_string())));
                entry.0 += 1;
            }
        }
    }
    bar.finish_with_message("done");
    let wall = started.elapsed();

    latencies.sort();
    first_events.sort();
    let succeeded = latencies.len();
    let attempts = ATTEMPTS.load(Ordering::Relaxed);

    println!();
    row("logical requests", options.requests);
    row("succeeded", succeeded);
    // A stream interrupted after content has rows of its own.
    let failed_label = if options.stream {
        "failed before content"
    } else {
        "failed"
    };
    if failed.is_empty() {
        row(failed_label, 0);
    }
    for (kind, (count, example)) in &failed {
        row(
            &format!("{failed_label}: {kind}"),
            format!("{count:<5}e.g. {example}"),
        );
    }
    for (label, (count, open)) in &refused {
        let example = match open.retry_in() {
            Some(wait) if !open.is_isolated() => {
                format!("breaker open; next probe in {}", human(wait))
            }
            _ => "breaker isolated".to_owned(),
        };
        row(label, format!("{count:<5}e.g. {example}"));
    }
    row("attempts sent", attempts);
    if succeeded > 0 {
        row(
            "attempts per success",
            format!("{:.2}", attempts as f64 / succeeded as f64),
        );
    }
    row(
        "Retry-After waits honoured",
        RETRY_AFTER_WAITS.load(Ordering::Relaxed),
    );
    if options.stream {
        row("time to first event p50", percentile(&first_events, 0.50));
        row("time to first event p95", percentile(&first_events, 0.95));
        row("recovered before their first event", recovered);
        let interruptions = streaming::interruptions();
        if interruptions.is_empty() {
            row("interrupted after content", 0);
        }
        for ((then, kind), (count, example)) in &interruptions {
            row(
                &format!("interrupted after content: {kind}"),
                format!("{count:<5}{then}; e.g. {example}"),
            );
        }
        let check = if provider.is_some() {
            format!(
                "checked: the whole answer came, and `{}` in the body",
                options.format.marker()
            )
        } else {
            format!(
                "checked: `{}` in the body (the whole answer is unknown)",
                options.format.marker()
            )
        };
        row("silently truncated", format!("{truncated:<5}{check}"));
    }
    let whole = if options.stream {
        " (to the stream's end)"
    } else {
        ""
    };
    row(&format!("latency p50{whole}"), percentile(&latencies, 0.50));
    row(&format!("latency p95{whole}"), percentile(&latencies, 0.95));
    row(&format!("latency p99{whole}"), percentile(&latencies, 0.99));
    row("wall time", format!("{:.2} s", wall.as_secs_f64()));
    print_metrics(&snapshotter);
    match &provider {
        Some(provider) => {
            let stats = provider.stats();
            row("requests the provider saw", stats.requests);
            row("answers replayed by idempotency key", stats.replayed);
            if options.stream {
                let faults: Vec<String> = stats
                    .faults
                    .iter()
                    .map(|(name, n)| format!("{name} {n}"))
                    .collect();
                row("faults injected", faults.join(", "));
                // The provider bills a stream that ends in an error event,
                // and stores nothing to replay: its retry is billed again.
                row(
                    "requests billed twice",
                    format!(
                        "{:<5}(each after an error event, which is billed and not replayed)",
                        stats.billed_twice
                    ),
                );
            } else {
                row("requests billed twice", stats.billed_twice);
                if stats.billed_twice > 0 {
                    return ExitCode::FAILURE;
                }
            }
        }
        None => row("requests billed twice", "n/a (remote endpoint)"),
    }
    if truncated > 0 {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};
    use reqwest::StatusCode;

    #[test]
    fn waits_are_rounded_for_people() {
        let cases = [
            (Duration::from_nanos(29_999_981_533), "30s"),
            (Duration::from_secs(120), "2m"),
            (Duration::MAX, "213503982334601d7h"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(2000), "2s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_micros(249_001), "250ms"),
            (Duration::from_nanos(1), "1ms"),
        ];
        for (wait, want) in cases {
            assert_eq!(human(wait), want, "{wait:?}");
        }
    }

    #[test]
    fn durations_parse_with_their_units() {
        assert_eq!(parse_duration("120s"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("300"), Ok(Duration::from_secs(300)));
        for bad in ["", "0s", "5x", "-1s", "s", "2 days", "0.1ms", "25h"] {
            let error = parse_duration(bad).unwrap_err();
            assert!(error.contains("120s, 2m or 500ms"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn a_refusal_is_told_apart_from_a_provider_error() {
        let breaker = CircuitBreaker::new().consecutive_failures(1);
        breaker
            .try_acquire()
            .unwrap()
            .failure(llm_resilience::ErrorKind::Overloaded);
        let refused = HttpError::from(breaker.try_acquire().unwrap_err());
        assert!(refusal(&refused).is_some());
        let overloaded =
            HttpError::from_response(StatusCode::SERVICE_UNAVAILABLE, &HeaderMap::new(), b"busy");
        assert!(refusal(&overloaded).is_none());
    }

    #[test]
    fn the_providers_message_is_shown_whole_on_one_line() {
        let message = "The engine is currently overloaded,\nplease try again later. ".repeat(5);
        let body = json!({"error": {"message": message, "type": "server_error"}}).to_string();
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", HeaderValue::from_static("req_7"));
        headers.insert("retry-after", HeaderValue::from_static("1.5"));
        let error =
            HttpError::from_response(StatusCode::SERVICE_UNAVAILABLE, &headers, body.as_bytes());
        let line = describe(&error);
        assert!(
            line.starts_with("HTTP 503 (request req_7, retry after 1.5s): The engine"),
            "{line}"
        );
        assert!(!line.contains('\n'), "{line}");
        assert_eq!(line.matches("please try again later.").count(), 5, "{line}");
        // Not JSON: the body itself.
        let error = HttpError::from_response(StatusCode::BAD_GATEWAY, &HeaderMap::new(), b"no\n");
        assert_eq!(describe(&error), "HTTP 502: no");
    }
}
