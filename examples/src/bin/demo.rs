//! The demo: hundreds of chat completions through `#[retry]` against a
//! provider that fails in every way an LLM API does, then a summary.
//!
//! ```sh
//! cargo run --release -p examples --bin demo
//! cargo run --release -p examples --bin demo -- --scenario rate-limit --requests 500
//! OPENAI_API_KEY=sk-... cargo run --release -p examples --bin demo -- --base-url https://api.openai.com/v1 --requests 5
//! ```

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use examples::flaky::{FlakyProvider, Scenario};
use indicatif::{ProgressBar, ProgressStyle};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use retry_core::http::{check, HttpError, RequestBuilderExt};
use retry_core::{retry, CircuitBreaker, Classify, DelaySource, RetryEvent};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

const HELP: &str = "\
demo: chat completions through #[retry] against a flaky provider

USAGE:
    cargo run --release -p examples --bin demo -- [OPTIONS]

OPTIONS:
    --requests N       logical chat requests to send [default: 200]
    --concurrency C    requests in flight at once [default: 32]
    --scenario NAME    the local provider's faults [default: chaos]
    --base-url URL     call this OpenAI-compatible endpoint instead (needs OPENAI_API_KEY)
    --model NAME       model to ask for [default: gpt-4o-mini]
    -h, --help         print this help
";

struct Options {
    requests: usize,
    concurrency: usize,
    scenario: String,
    base_url: Option<String>,
    model: String,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        requests: 200,
        concurrency: 32,
        scenario: "chaos".to_owned(),
        base_url: None,
        model: "gpt-4o-mini".to_owned(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            print!("{HELP}");
            std::process::exit(0);
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value; see --help"))?;
        let count = |v: &str| -> Result<usize, String> {
            match v.parse() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{flag} takes a whole number above 0, not {v:?}")),
            }
        };
        match flag.as_str() {
            "--requests" => options.requests = count(&value)?,
            "--concurrency" => options.concurrency = count(&value)?,
            "--scenario" => options.scenario = value,
            "--base-url" => options.base_url = Some(value.trim_end_matches('/').to_owned()),
            "--model" => options.model = value,
            other => return Err(format!("unknown option {other}; see --help")),
        }
    }
    Ok(options)
}

/// Counters that the retry hook and the calls share.
static ATTEMPTS: AtomicU64 = AtomicU64::new(0);
static RETRY_AFTER_WAITS: AtomicU64 = AtomicU64::new(0);

fn on_retry(event: &RetryEvent<'_, HttpError>) {
    if event.source() == DelaySource::RetryAfter {
        RETRY_AFTER_WAITS.fetch_add(1, Ordering::Relaxed);
    }
}

/// One breaker for the provider, shared by every call: it fails calls fast
/// if the provider goes down (its defaults: 50% of at least 20 calls over
/// 30 s fail; try `--scenario 503`).
static BREAKER: CircuitBreaker = CircuitBreaker::new();

struct Endpoint {
    client: reqwest::Client,
    base_url: String,
    api_key: Option<String>,
    model: String,
}

#[retry(
    max_attempts = 8,
    wait = exponential(100ms, 2s),
    attempt_timeout = 1s,
    deadline = 30s,
    on_retry = on_retry,
    breaker = BREAKER
)]
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

/// The counters and gauges retry-core reported, one line each, and the
/// mean call time.
fn print_metrics(snapshotter: &Snapshotter) {
    let mut lines = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let (_, key) = key.into_parts();
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
    println!("\nmetrics (function=chat):");
    for line in lines {
        println!("  {line}");
    }
    println!();
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("demo: {message}");
            return ExitCode::from(2);
        }
    };
    let (provider, base_url, api_key) = match &options.base_url {
        Some(url) => match std::env::var("OPENAI_API_KEY") {
            Ok(key) => (None, url.clone(), Some(key)),
            Err(_) => {
                eprintln!("demo: --base-url needs OPENAI_API_KEY set to the endpoint's API key");
                return ExitCode::from(2);
            }
        },
        None => {
            let Some(scenario) = Scenario::from_name(&options.scenario) else {
                eprintln!(
                    "demo: unknown scenario {:?}; the scenarios are {}",
                    options.scenario,
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
    // Collect what retry-core reports through the `metrics` facade, to
    // print it at the end.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    if metrics::set_global_recorder(recorder).is_err() {
        eprintln!("demo: a metrics recorder is already installed; the summary leaves metrics out");
    }

    let client = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
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

    println!(
        "Sending {} chat requests, {} at a time, to {} ({}).",
        options.requests,
        options.concurrency,
        endpoint.base_url,
        if provider.is_some() {
            format!("local flaky provider, scenario {}", options.scenario)
        } else {
            "remote endpoint".to_owned()
        }
    );
    let bar = ProgressBar::new(options.requests as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} calls  {elapsed_precise}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );

    let started = Instant::now();
    let limit = Arc::new(Semaphore::new(options.concurrency));
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..options.requests {
        let endpoint = Arc::clone(&endpoint);
        let limit = Arc::clone(&limit);
        let bar = bar.clone();
        calls.spawn(async move {
            let _slot = limit.acquire_owned().await;
            let begun = Instant::now();
            let user = format!("demo-{i}");
            let outcome = chat(&endpoint, &user, &format!("Say hello to caller {i}")).await;
            bar.inc(1);
            (
                begun.elapsed(),
                outcome.map_err(|e| (e.kind(), e.to_string())),
            )
        });
    }

    let mut latencies = Vec::with_capacity(options.requests);
    let mut failed: BTreeMap<String, (u64, String)> = BTreeMap::new();
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok((latency, Ok(_))) => latencies.push(latency),
            Ok((_, Err((kind, message)))) => {
                let entry = failed.entry(kind.to_string()).or_insert((0, message));
                entry.0 += 1;
            }
            Err(e) => {
                let entry = failed
                    .entry("panicked".to_owned())
                    .or_insert((0, e.to_string()));
                entry.0 += 1;
            }
        }
    }
    bar.finish_with_message("done");
    let wall = started.elapsed();

    latencies.sort();
    let percentile = |p: f64| -> String {
        if latencies.is_empty() {
            return "-".to_owned();
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        format!("{:.1} ms", latencies[i].as_secs_f64() * 1000.0)
    };
    let succeeded = latencies.len();
    let attempts = ATTEMPTS.load(Ordering::Relaxed);

    println!();
    println!("{:<38}{}", "logical requests", options.requests);
    println!("{:<38}{}", "succeeded", succeeded);
    if failed.is_empty() {
        println!("{:<38}0", "failed");
    }
    for (kind, (count, example)) in &failed {
        let example: String = if example.chars().count() > 90 {
            example.chars().take(89).chain(['…']).collect()
        } else {
            example.clone()
        };
        println!("{:<38}{count}   e.g. {example}", format!("failed: {kind}"));
    }
    println!("{:<38}{attempts}", "attempts sent");
    if succeeded > 0 {
        println!(
            "{:<38}{:.2}",
            "attempts per success",
            attempts as f64 / succeeded as f64
        );
    }
    println!(
        "{:<38}{}",
        "Retry-After waits honoured",
        RETRY_AFTER_WAITS.load(Ordering::Relaxed)
    );
    println!("{:<38}{}", "latency p50", percentile(0.50));
    println!("{:<38}{}", "latency p95", percentile(0.95));
    println!("{:<38}{}", "latency p99", percentile(0.99));
    println!("{:<38}{:.2} s", "wall time", wall.as_secs_f64());
    print_metrics(&snapshotter);
    match &provider {
        Some(provider) => {
            let stats = provider.stats();
            println!("{:<38}{}", "requests the provider saw", stats.requests);
            println!(
                "{:<38}{}",
                "answers replayed by idempotency key", stats.replayed
            );
            println!("{:<38}{}", "requests billed twice", stats.billed_twice);
            if stats.billed_twice > 0 {
                return ExitCode::FAILURE;
            }
        }
        None => println!("{:<38}n/a (remote endpoint)", "requests billed twice"),
    }
    ExitCode::SUCCESS
}
