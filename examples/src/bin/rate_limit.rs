//! Benchmark of client-side rate limiting against the flaky provider's rate
//! limits: one table, a row per way of calling and per kind of limit.
//!
//! ```sh
//! cargo run --release -p examples --bin rate_limit
//! cargo run --release -p examples --bin rate_limit -- --rows new,initial,openai
//! cargo run --release -p examples --bin rate_limit -- --rows drop-200 --drop-after 61
//! ```
//!
//! The rows (`--rows` takes their keys, comma separated):
//!
//! | key | row | target |
//! | --- | --- | --- |
//! | `none` | `#[retry(max_attempts = 8, limiter = none)]` | ≤ 1.5 attempts per success |
//! | `default` | `#[retry(max_attempts = 8)]` as written by default: the function's own limiter | ≤ 1.5 attempts per success |
//! | `new` | `AdaptiveLimiter::new()` | ≤ 1.10 attempts per success, ≤ 1.15 × ideal time |
//! | `initial` | `AdaptiveLimiter::new().initial_rate(rate)` | the same |
//! | `initial-high` | `initial_rate(1.5 × rate)` | the same |
//! | `openai` | `AdaptiveLimiter::new()`, OpenAI's headers on every answer | ≤ 1.02 attempts per success |
//! | `anthropic` | the same with Anthropic's headers | ≤ 1.02 attempts per success |
//! | `tokens` | small and large prompts against a tokens-per-minute limit, `cost = request_tokens(body)` | ≤ 1.10 attempts per success |
//! | `drop-20`, `drop-200` | a limit that drops and returns, 20 or 200 callers | back above 80 % within 10 s |
//!
//! Every row's target also asks that no call is lost (ends in an error).
//!
//! The first seven send `--requests` chat calls, `--concurrency` at a time,
//! to a bucket of `--rate` requests per second holding `--burst` (full at
//! start); a refusal is a `429` with `retry-after: 1`. Their ideal time sends
//! the burst at once and then one request per token:
//! `(requests − burst) / rate`.
//!
//! `tokens` sends `--token-requests` calls, a `--large-share` of them of
//! `--large-tokens` tokens and the rest of `--small-tokens` (as the provider
//! counts them, [`request_tokens`]), to the same requests bucket plus a
//! bucket of `--tokens-per-minute` holding `--token-burst`, which binds; the
//! provider announces both in OpenAI's headers. Its ideal time is the longer
//! of the two buckets' ideal times.
//!
//! `drop-*`: callers in a loop, each with
//! `AdaptiveLimiter::new().initial_rate(high)`, for `--drop-before` s at
//! `--drop-high` requests per second, `--drop-for` s at `--drop-low`, and
//! `--drop-after` s at `--drop-high` again. The table gives the seconds from
//! the return until a whole second admits more than 80 % of the restored
//! limit, and the admitted rate 10 s and 60 s after the return (`-` when the
//! run is shorter). When both are asked for, the two run at the same time,
//! each with its own provider and limiter. Calls still in flight at the end are abandoned, and
//! are not counted as lost.
//!
//! This is a benchmark, not a test: timings depend on the machine, and a
//! missed target is printed as `FAIL` without failing the exit status.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use examples::chat::{paced, send};
use examples::flaky::{request_tokens, Announce, FlakyProvider, Limits, Scenario};
use llm_resilience::http::HttpError;
use llm_resilience::{retry, AdaptiveLimiter};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

/// Chat calls against the flaky provider's rate limits, with and without
/// AdaptiveLimiter, in one table.
#[derive(Parser, Debug)]
#[command(name = "rate_limit")]
struct Options {
    /// Run only these rows (comma separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    rows: Vec<Row>,
    /// Logical chat calls per row (all but `tokens` and `drop-*`).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..))]
    requests: u64,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    concurrency: u64,
    /// Requests per second the provider admits.
    #[arg(long, default_value_t = 100.0, value_parser = positive)]
    rate: f64,
    /// The provider's requests bucket, full at start.
    #[arg(long, default_value_t = 20)]
    burst: u32,
    /// Logical chat calls of the `tokens` row.
    #[arg(long, default_value_t = 150, value_parser = clap::value_parser!(u64).range(1..))]
    token_requests: u64,
    /// The provider's tokens per minute in the `tokens` row.
    #[arg(long, default_value_t = 3_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    tokens_per_minute: u64,
    /// The provider's tokens bucket, full at start.
    #[arg(long, default_value_t = 50_000)]
    token_burst: u64,
    /// Tokens of a small prompt.
    #[arg(long, default_value_t = 200)]
    small_tokens: u64,
    /// Tokens of a large prompt.
    #[arg(long, default_value_t = 8000)]
    large_tokens: u64,
    /// The share of large prompts, 0 to 1.
    #[arg(long, default_value_t = 0.2, value_parser = share)]
    large_share: f64,
    /// Seconds at the high limit before it drops.
    #[arg(long, default_value_t = 1)]
    drop_before: u64,
    /// Seconds at the low limit.
    #[arg(long, default_value_t = 10)]
    drop_for: u64,
    /// Seconds at the high limit after it returns.
    #[arg(long, default_value_t = 11)]
    drop_after: u64,
    /// The high limit, requests per second (also the callers' initial rate).
    #[arg(long, default_value_t = 100.0, value_parser = positive)]
    drop_high: f64,
    /// The low limit, requests per second.
    #[arg(long, default_value_t = 10.0, value_parser = positive)]
    drop_low: f64,
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x.is_finite() => Ok(x),
        _ => Err(format!("expected a number above 0, not {s:?}")),
    }
}

fn share(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(format!("expected a number from 0 to 1, not {s:?}")),
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Row {
    /// No limiter.
    #[value(name = "none")]
    NoLimiter,
    /// The attribute as written by default.
    #[value(name = "default")]
    DefaultAttribute,
    /// `AdaptiveLimiter::new()`.
    #[value(name = "new")]
    New,
    /// `initial_rate(rate)`.
    #[value(name = "initial")]
    Initial,
    /// `initial_rate(1.5 × rate)`.
    #[value(name = "initial-high")]
    InitialHigh,
    /// OpenAI's headers announced.
    #[value(name = "openai")]
    OpenAi,
    /// Anthropic's headers announced.
    #[value(name = "anthropic")]
    Anthropic,
    /// Small and large prompts against a tokens-per-minute limit.
    #[value(name = "tokens")]
    Tokens,
    /// Drop and return, 20 callers.
    #[value(name = "drop-20")]
    Drop20,
    /// Drop and return, 200 callers.
    #[value(name = "drop-200")]
    Drop200,
}

impl Row {
    const ALL: [Row; 10] = [
        Row::NoLimiter,
        Row::DefaultAttribute,
        Row::New,
        Row::Initial,
        Row::InitialHigh,
        Row::OpenAi,
        Row::Anthropic,
        Row::Tokens,
        Row::Drop20,
        Row::Drop200,
    ];

    fn label(self, options: &Options) -> String {
        match self {
            Row::NoLimiter => "no limiter".into(),
            Row::DefaultAttribute => "default attribute".into(),
            Row::New => "AdaptiveLimiter::new()".into(),
            Row::Initial => format!("initial_rate({})", options.rate),
            Row::InitialHigh => format!("initial_rate({})", 1.5 * options.rate),
            Row::OpenAi => "announced headers (OpenAI)".into(),
            Row::Anthropic => "announced headers (Anthropic)".into(),
            Row::Tokens => "tokens: mixed prompts".into(),
            Row::Drop20 => "drop and return, 20 callers".into(),
            Row::Drop200 => "drop and return, 200 callers".into(),
        }
    }
}

/// Which function makes the calls.
#[derive(Clone, Copy)]
enum Caller {
    NoLimiter,
    DefaultAttribute,
    Limited,
    Tokens,
}

/// What one row measured.
#[derive(Default)]
struct Measured {
    attempts: u64,
    succeeded: u64,
    lost: u64,
    time: Duration,
    /// The ideal time, for the rows that have one.
    ideal: Option<f64>,
    /// Drop and return: seconds from the return to the first second above
    /// 80 %, and the admitted rate 10 s and 60 s after the return.
    recovery: Option<Recovery>,
}

struct Recovery {
    seconds: Option<u64>,
    at_10: Option<u64>,
    at_60: Option<u64>,
}

/// The retry engine alone, without the limiter the attribute gives a
/// function by default.
#[retry(max_attempts = 8, limiter = none)]
async fn chat_no_limiter(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
) -> Result<(), HttpError> {
    send(client, url, body).await
}

/// The attribute as an application writes it: with a limiter of its own,
/// off until its first `429` (a `static`, so with `--runs` above 1 the later
/// runs start from what the first learnt).
#[retry(max_attempts = 8)]
async fn chat_default(client: &reqwest::Client, url: &str, body: &Value) -> Result<(), HttpError> {
    send(client, url, body).await
}

/// Paced by `limiter` on requests and, stating what the call costs
/// ([`request_tokens`] of `body`), on tokens.
#[retry(max_attempts = 8, limiter = limiter, cost = request_tokens(body))]
async fn chat_tokens(
    client: &reqwest::Client,
    url: &str,
    limiter: &AdaptiveLimiter,
    body: &Value,
) -> Result<(), HttpError> {
    send(client, url, body).await
}

async fn call(
    caller: Caller,
    client: &reqwest::Client,
    url: &str,
    limiter: Option<&AdaptiveLimiter>,
    body: &Value,
) -> Result<(), HttpError> {
    match (caller, limiter) {
        (Caller::NoLimiter, _) | (Caller::Limited | Caller::Tokens, None) => {
            chat_no_limiter(client, url, body).await
        }
        (Caller::DefaultAttribute, _) => chat_default(client, url, body).await,
        (Caller::Limited, Some(limiter)) => paced(client, url, limiter, body).await,
        (Caller::Tokens, Some(limiter)) => chat_tokens(client, url, limiter, body).await,
    }
}

/// A chat request whose prompt costs `tokens` as the provider counts them.
fn chat_body(i: u64, tokens: u64) -> Value {
    let text = format!("Caller {i} says: ");
    let mut content: String = text
        .chars()
        .chain("lorem ipsum dolor sit amet ".chars().cycle())
        .take(usize::try_from(tokens.saturating_mul(4)).unwrap_or(usize::MAX))
        .collect();
    if content.is_empty() {
        content.push('.');
    }
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]})
}

fn http_client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("could not build the HTTP client: {e}"))
}

/// Sends every body, `concurrency` at a time, with a fresh provider.
async fn batch(
    scenario: Scenario,
    caller: Caller,
    limiter: Option<AdaptiveLimiter>,
    bodies: Vec<Value>,
    concurrency: u64,
) -> Result<Measured, String> {
    let provider =
        FlakyProvider::spawn(scenario).map_err(|e| format!("could not start the provider: {e}"))?;
    let client = http_client()?;
    let url: Arc<str> = provider.chat_completions_url().into();
    let limiter = limiter.map(Arc::new);
    let slots = Arc::new(Semaphore::new(
        usize::try_from(concurrency).unwrap_or(usize::MAX >> 4),
    ));
    let started = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for body in bodies {
        let (client, url, limiter, slots) = (
            client.clone(),
            Arc::clone(&url),
            limiter.clone(),
            Arc::clone(&slots),
        );
        calls.spawn(async move {
            let _slot = slots.acquire_owned().await;
            call(caller, &client, &url, limiter.as_deref(), &body).await
        });
    }
    let mut measured = Measured::default();
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok(Ok(())) => measured.succeeded += 1,
            Ok(Err(_)) | Err(_) => measured.lost += 1,
        }
    }
    measured.time = started.elapsed();
    measured.attempts = provider.stats().requests;
    Ok(measured)
}

/// The limit drops and returns while `callers` call in a loop.
async fn drop_and_return(options: &Options, callers: u64) -> Result<Measured, String> {
    let secs = Duration::from_secs;
    let back = options.drop_before.saturating_add(options.drop_for);
    let total = back.saturating_add(options.drop_after);
    let limits = Limits::requests(options.drop_high, options.burst)
        .then(secs(options.drop_before), options.drop_low)
        .then(secs(back), options.drop_high);
    let provider = FlakyProvider::spawn(Scenario::Limited(limits))
        .map_err(|e| format!("could not start the provider: {e}"))?;
    let client = http_client()?;
    let url: Arc<str> = provider.chat_completions_url().into();
    let limiter = Arc::new(AdaptiveLimiter::new().initial_rate(options.drop_high));
    let succeeded = Arc::new(AtomicU64::new(0));
    let lost = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let until = started + secs(total);
    let mut tasks = tokio::task::JoinSet::new();
    for caller in 0..callers {
        let (client, url, limiter) = (client.clone(), Arc::clone(&url), Arc::clone(&limiter));
        let (succeeded, lost) = (Arc::clone(&succeeded), Arc::clone(&lost));
        tasks.spawn(async move {
            let mut i = 0;
            while Instant::now() < until {
                let body = chat_body(caller * 1_000_000 + i, 20);
                match call(Caller::Limited, &client, &url, Some(&limiter), &body).await {
                    Ok(()) => succeeded.fetch_add(1, Ordering::Relaxed),
                    Err(_) => lost.fetch_add(1, Ordering::Relaxed),
                };
                i += 1;
            }
        });
    }
    // The calls still in flight at the end are abandoned, not lost.
    tokio::time::sleep_until(until.into()).await;
    tasks.abort_all();
    while tasks.join_next().await.is_some() {}
    let mut measured = Measured {
        succeeded: succeeded.load(Ordering::Relaxed),
        lost: lost.load(Ordering::Relaxed),
        time: started.elapsed(),
        attempts: provider.stats().requests,
        ..Measured::default()
    };
    let timeline = provider.admitted_per_second();
    // Only whole seconds within the run count.
    let second = |s: u64| {
        (s < total)
            .then(|| {
                usize::try_from(s)
                    .ok()
                    .and_then(|s| timeline.get(s).copied())
            })
            .flatten()
    };
    let threshold = 0.8 * options.drop_high;
    measured.recovery = Some(Recovery {
        seconds: (back..total)
            .find(|&s| second(s).is_some_and(|n| n as f64 > threshold))
            .map(|s| s + 1 - back),
        at_10: second(back + 10),
        at_60: second(back + 60),
    });
    Ok(measured)
}

async fn run(row: Row, options: &Options) -> Result<Measured, String> {
    let bucket = |announce| {
        Scenario::Limited(Limits::requests(options.rate, options.burst).announce(announce))
    };
    let plain = || (0..options.requests).map(|i| chat_body(i, 10)).collect();
    let ideal = (options.requests as f64 - f64::from(options.burst)).max(0.0) / options.rate;
    let limited = |limiter| (Caller::Limited, Some(limiter));
    let (scenario, (caller, limiter), bodies, ideal) = match row {
        Row::Drop20 => return drop_and_return(options, 20).await,
        Row::Drop200 => return drop_and_return(options, 200).await,
        Row::NoLimiter => (
            bucket(Announce::None),
            (Caller::NoLimiter, None),
            plain(),
            ideal,
        ),
        Row::DefaultAttribute => (
            bucket(Announce::None),
            (Caller::DefaultAttribute, None),
            plain(),
            ideal,
        ),
        Row::New => (
            bucket(Announce::None),
            limited(AdaptiveLimiter::new()),
            plain(),
            ideal,
        ),
        Row::Initial => (
            bucket(Announce::None),
            limited(AdaptiveLimiter::new().initial_rate(options.rate)),
            plain(),
            ideal,
        ),
        Row::InitialHigh => (
            bucket(Announce::None),
            limited(AdaptiveLimiter::new().initial_rate(1.5 * options.rate)),
            plain(),
            ideal,
        ),
        Row::OpenAi => (
            bucket(Announce::OpenAi),
            limited(AdaptiveLimiter::new()),
            plain(),
            ideal,
        ),
        Row::Anthropic => (
            bucket(Announce::Anthropic),
            limited(AdaptiveLimiter::new()),
            plain(),
            ideal,
        ),
        Row::Tokens => {
            let n = options.token_requests;
            // Large prompts spread evenly through the load.
            let large = |i: u64| {
                (i as f64 * options.large_share).floor()
                    != ((i + 1) as f64 * options.large_share).floor()
            };
            let bodies: Vec<Value> = (0..n)
                .map(|i| {
                    let tokens = if large(i) {
                        options.large_tokens
                    } else {
                        options.small_tokens
                    };
                    chat_body(i, tokens)
                })
                .collect();
            let tokens: u64 = bodies.iter().map(request_tokens).sum();
            let by_requests = (n as f64 - f64::from(options.burst)).max(0.0) / options.rate;
            let by_tokens = (tokens as f64 - options.token_burst as f64).max(0.0)
                / (options.tokens_per_minute as f64 / 60.0);
            let scenario = Scenario::Limited(
                Limits::requests(options.rate, options.burst)
                    .tokens_per_minute(options.tokens_per_minute, options.token_burst)
                    .announce(Announce::OpenAi),
            );
            (
                scenario,
                (Caller::Tokens, Some(AdaptiveLimiter::new())),
                bodies,
                by_requests.max(by_tokens),
            )
        }
    };
    let mut measured = batch(scenario, caller, limiter, bodies, options.concurrency).await?;
    measured.ideal = Some(ideal);
    Ok(measured)
}

/// The row's target, and whether it was met.
fn verdict(row: Row, m: &Measured) -> (bool, &'static str) {
    let per_success = m.attempts as f64 / m.succeeded.max(1) as f64;
    let times_ideal = m
        .ideal
        .filter(|ideal| *ideal > 0.0)
        .map(|ideal| m.time.as_secs_f64() / ideal);
    let (met, target) = match row {
        Row::NoLimiter | Row::DefaultAttribute => (per_success <= 1.5, "<=1.5 a/s, 0 lost"),
        Row::New | Row::Initial | Row::InitialHigh => (
            per_success <= 1.10 && times_ideal.is_none_or(|x| x <= 1.15),
            "<=1.10 a/s, <=1.15x, 0 lost",
        ),
        Row::OpenAi | Row::Anthropic => (per_success <= 1.02, "<=1.02 a/s, 0 lost"),
        Row::Tokens => (per_success <= 1.10, "<=1.10 a/s, 0 lost"),
        Row::Drop20 | Row::Drop200 => (
            m.recovery
                .as_ref()
                .and_then(|r| r.seconds)
                .is_some_and(|s| s <= 10),
            "recovered <=10 s, 0 lost",
        ),
    };
    // No row meets its target by losing calls.
    (met && m.lost == 0, target)
}

fn dash<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = Options::parse();
    let rows: Vec<Row> = if options.rows.is_empty() {
        Row::ALL.to_vec()
    } else {
        Row::ALL
            .into_iter()
            .filter(|r| options.rows.contains(r))
            .collect()
    };
    println!(
        "{} calls ({} in flight) against {} requests/s, burst {}; tokens: {} calls, {} tokens/min, burst {};",
        options.requests,
        options.concurrency,
        options.rate,
        options.burst,
        options.token_requests,
        options.tokens_per_minute,
        options.token_burst,
    );
    println!(
        "drop and return: {} s at {}/s, {} s at {}/s, {} s at {}/s; rates are admitted requests per second.\n",
        options.drop_before,
        options.drop_high,
        options.drop_for,
        options.drop_low,
        options.drop_after,
        options.drop_high,
    );
    println!(
        "{:<31}{:>9}{:>6}{:>8}{:>8}{:>10}{:>7}{:>7}  target",
        "row", "att/succ", "lost", "time s", "x ideal", "recovery", "+10s", "+60s",
    );
    // The two drop-and-return rows run side by side (separate providers and
    // limiters), to keep the whole run short.
    let both_drops = rows.contains(&Row::Drop20) && rows.contains(&Row::Drop200);
    let mut dropped: Option<Result<Measured, String>> = None;
    for row in rows {
        let result = match (row, both_drops) {
            (Row::Drop20, true) => {
                let (twenty, two_hundred) = tokio::join!(
                    drop_and_return(&options, 20),
                    drop_and_return(&options, 200)
                );
                dropped = Some(two_hundred);
                twenty
            }
            (Row::Drop200, true) => dropped
                .take()
                .unwrap_or_else(|| Err("the 200-caller row did not run".into())),
            _ => run(row, &options).await,
        };
        let measured = match result {
            Ok(measured) => measured,
            Err(message) => {
                eprintln!("rate_limit: {message}");
                return ExitCode::FAILURE;
            }
        };
        let per_success = measured.attempts as f64 / measured.succeeded.max(1) as f64;
        let times_ideal = measured
            .ideal
            .filter(|ideal| *ideal > 0.0)
            .map(|ideal| format!("{:.2}", measured.time.as_secs_f64() / ideal));
        let recovery = measured.recovery.as_ref();
        let (passed, target) = verdict(row, &measured);
        println!(
            "{:<31}{:>9.3}{:>6}{:>8.2}{:>8}{:>10}{:>7}{:>7}  {} ({target})",
            row.label(&options),
            per_success,
            measured.lost,
            measured.time.as_secs_f64(),
            dash(times_ideal),
            recovery.map_or("-".to_owned(), |r| match r.seconds {
                Some(s) => format!("{s} s"),
                None => "never".to_owned(),
            }),
            dash(recovery.and_then(|r| r.at_10)),
            dash(recovery.and_then(|r| r.at_60)),
            if passed { "PASS" } else { "FAIL" },
        );
    }
    ExitCode::SUCCESS
}
