//! Benchmark of the adaptive client-side rate limiter: a fleet of chat calls
//! against the flaky provider's token bucket, with and without an
//! [`AdaptiveLimiter`].
//!
//! ```sh
//! cargo run --release -p examples --bin rate_limit
//! cargo run --release -p examples --bin rate_limit -- --runs 3
//! cargo run --release -p examples --bin rate_limit -- --rate 50 --burst 10 --initial-rate 75
//! ```
//!
//! The provider admits `--rate` requests per second from a bucket of
//! `--burst` (full at start), and refuses the rest with `429` and
//! `Retry-After: 1` (whole seconds until its next token, at least 1). Each of
//! `--requests` logical calls, `--concurrency` at a time, is a `#[retry]`
//! function (Retry-After honoured with the engine's spread); with
//! `limiter = ...`, every attempt (first attempts and retries alike) first
//! waits for the slot the limiter gives it, and reports its outcome after.
//!
//! The rows: no limiter; `AdaptiveLimiter::new()`, unlimited until the first
//! `429`; and `AdaptiveLimiter::new().initial_rate(x)` for each
//! `--initial-rate` (by default the provider's rate and 1.5 times it: the
//! documented limit, and a guess 50 % too high). A fresh provider and limiter
//! for every run.
//!
//! The ideal schedule sends the burst at once and then one request per
//! token: `(requests − burst) / rate` seconds, every attempt a success. The
//! target: at most 1.10 attempts per success, and at most 1.15 × the ideal
//! time. The unlimited start cannot meet it: its first `concurrency` calls
//! leave together before anything is known, and all but `burst` of them are
//! refused. This is a benchmark, not a test: timings depend on the machine.
//! The exit status is a failure when a row with an initial rate misses the
//! target.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use examples::flaky::{FlakyProvider, Scenario};
use retry_core::http::{check, HttpError, RequestBuilderExt};
use retry_core::{retry, AdaptiveLimiter};
use serde_json::json;
use tokio::sync::Semaphore;

const HELP: &str = "\
rate_limit: chat calls against a token-bucket provider, with and without AdaptiveLimiter

USAGE:
    cargo run --release -p examples --bin rate_limit -- [OPTIONS]

OPTIONS:
    --requests N         logical chat calls [default: 500]
    --concurrency C      calls in flight at once [default: 100]
    --rate R             requests per second the provider admits [default: 100]
    --burst B            the provider's bucket size, full at start [default: 20]
    --initial-rate X     also run the limiter paced from the start at X per second;
                         repeat for several rows [default: R and 1.5 x R]
    --runs K             repeat every row K times [default: 1]
    --no-baseline        skip the row without a limiter
    -h, --help           print this help
";

/// At most this many attempts per success.
const TARGET_ATTEMPTS: f64 = 1.10;
/// At most this multiple of the ideal time.
const TARGET_TIME: f64 = 1.15;

struct Options {
    requests: usize,
    concurrency: usize,
    rate: f64,
    burst: u32,
    initial_rates: Vec<f64>,
    runs: usize,
    baseline: bool,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        requests: 500,
        concurrency: 100,
        rate: 100.0,
        burst: 20,
        initial_rates: Vec::new(),
        runs: 1,
        baseline: true,
    };
    let mut initial_rates_given = false;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            "--no-baseline" => {
                options.baseline = false;
                continue;
            }
            _ => {}
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
        let rate = |v: &str| -> Result<f64, String> {
            match v.parse::<f64>() {
                Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
                _ => Err(format!("{flag} takes a number above 0, not {v:?}")),
            }
        };
        match flag.as_str() {
            "--requests" => options.requests = count(&value)?,
            "--concurrency" => options.concurrency = count(&value)?,
            "--rate" => options.rate = rate(&value)?,
            "--burst" => {
                options.burst = u32::try_from(count(&value)?)
                    .map_err(|_| format!("--burst {value} is too large"))?
            }
            "--initial-rate" => {
                initial_rates_given = true;
                options.initial_rates.push(rate(&value)?);
            }
            "--runs" => options.runs = count(&value)?,
            other => return Err(format!("unknown option {other}; see --help")),
        }
    }
    if !initial_rates_given {
        options.initial_rates = vec![options.rate, 1.5 * options.rate];
    }
    Ok(options)
}

/// One row of the table.
#[derive(Clone, Copy)]
enum Mode {
    /// The retry engine alone.
    NoLimiter,
    /// `AdaptiveLimiter::new()`: unlimited until the first 429.
    Adaptive,
    /// `AdaptiveLimiter::new().initial_rate(x)`.
    AdaptivePaced(f64),
}

impl Mode {
    fn label(self) -> String {
        match self {
            Mode::NoLimiter => "no limiter".to_owned(),
            Mode::Adaptive => "adaptive, unlimited start".to_owned(),
            Mode::AdaptivePaced(x) => format!("adaptive, initial_rate {x}"),
        }
    }

    fn limiter(self) -> Option<AdaptiveLimiter> {
        match self {
            Mode::NoLimiter => None,
            Mode::Adaptive => Some(AdaptiveLimiter::new()),
            Mode::AdaptivePaced(x) => Some(AdaptiveLimiter::new().initial_rate(x)),
        }
    }
}

/// What one run measured.
struct Outcome {
    succeeded: u64,
    failed: u64,
    attempts: u64,
    refused_by_provider: u64,
    time: Duration,
    final_rate: Option<f64>,
}

/// One logical chat call, paced by `limiter`: every attempt (first attempts
/// and retries alike) waits for the slot the limiter gives it, and reports
/// its outcome to it. Retry-After is honoured (with the engine's spread),
/// exponential backoff otherwise, with enough attempts that no call gives up
/// in the scenarios measured here.
#[retry(
    max_attempts = 20,
    wait = exponential(100ms, 2s),
    retry_after_cap = 60s,
    deadline = 300s,
    limiter = limiter
)]
async fn chat_paced(
    client: &reqwest::Client,
    url: &str,
    limiter: &AdaptiveLimiter,
    attempts: &AtomicU64,
    i: usize,
) -> Result<(), HttpError> {
    attempts.fetch_add(1, Ordering::Relaxed);
    send(client, url, i).await
}

/// The same call under the same policy, without a limiter.
#[retry(
    max_attempts = 20,
    wait = exponential(100ms, 2s),
    retry_after_cap = 60s,
    deadline = 300s
)]
async fn chat_unpaced(
    client: &reqwest::Client,
    url: &str,
    attempts: &AtomicU64,
    i: usize,
) -> Result<(), HttpError> {
    attempts.fetch_add(1, Ordering::Relaxed);
    send(client, url, i).await
}

async fn chat(
    client: &reqwest::Client,
    url: &str,
    limiter: Option<&AdaptiveLimiter>,
    attempts: &AtomicU64,
    i: usize,
) -> Result<(), HttpError> {
    match limiter {
        Some(limiter) => chat_paced(client, url, limiter, attempts, i).await,
        None => chat_unpaced(client, url, attempts, i).await,
    }
}

async fn send(client: &reqwest::Client, url: &str, i: usize) -> Result<(), HttpError> {
    let response = client
        .post(url)
        .json(&json!({
            "model": "gpt-4o-mini",
            "messages": [{"role": "user", "content": format!("Say hello to caller {i}")}],
        }))
        .retry_headers()
        .send()
        .await?;
    check(response).await?.bytes().await?;
    Ok(())
}

async fn run(options: &Options, mode: Mode) -> Result<Outcome, String> {
    let provider = FlakyProvider::spawn(Scenario::TokenBucket {
        rate: options.rate,
        burst: options.burst,
    })
    .map_err(|e| format!("could not start the provider: {e}"))?;
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("could not build the HTTP client: {e}"))?;
    let url: Arc<str> = provider.chat_completions_url().into();
    let limiter: Option<Arc<AdaptiveLimiter>> = mode.limiter().map(Arc::new);
    let attempts = Arc::new(AtomicU64::new(0));
    let slots = Arc::new(Semaphore::new(options.concurrency));

    let started = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..options.requests {
        let (client, url, limiter, attempts, slots) = (
            client.clone(),
            Arc::clone(&url),
            limiter.clone(),
            Arc::clone(&attempts),
            Arc::clone(&slots),
        );
        calls.spawn(async move {
            let _slot = slots.acquire_owned().await;
            chat(&client, &url, limiter.as_deref(), &attempts, i).await
        });
    }
    let (mut succeeded, mut failed) = (0, 0);
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok(Ok(())) => succeeded += 1,
            Ok(Err(_)) | Err(_) => failed += 1,
        }
    }
    let time = started.elapsed();
    let stats = provider.stats();
    Ok(Outcome {
        succeeded,
        failed,
        attempts: attempts.load(Ordering::Relaxed),
        refused_by_provider: stats.faults.get("token_bucket").copied().unwrap_or(0),
        time,
        final_rate: limiter.and_then(|l| l.rate()),
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("rate_limit: {message}");
            return ExitCode::from(2);
        }
    };
    let ideal = (options.requests as f64 - f64::from(options.burst)).max(0.0) / options.rate;
    println!(
        "{} chat calls, {} in flight, against a token bucket of {} requests/s, burst {}.",
        options.requests, options.concurrency, options.rate, options.burst
    );
    println!(
        "Ideal time (requests - burst) / rate = {ideal:.2} s; targets: attempts/success <= {TARGET_ATTEMPTS:.2}, time <= {TARGET_TIME:.2} x ideal = {:.2} s.\n",
        TARGET_TIME * ideal
    );
    let mut modes = Vec::new();
    if options.baseline {
        modes.push(Mode::NoLimiter);
    }
    modes.push(Mode::Adaptive);
    modes.extend(
        options
            .initial_rates
            .iter()
            .map(|&x| Mode::AdaptivePaced(x)),
    );

    println!(
        "{:<32}{:>6}{:>10}{:>11}{:>9}{:>9}{:>8}{:>12}  target",
        "mode", "run", "attempts", "att/succ", "refused", "time s", "x ideal", "final rate",
    );
    let mut all_passed = true;
    for mode in modes {
        for run_number in 1..=options.runs {
            let outcome = match run(&options, mode).await {
                Ok(outcome) => outcome,
                Err(message) => {
                    eprintln!("rate_limit: {message}");
                    return ExitCode::FAILURE;
                }
            };
            let per_success = outcome.attempts as f64 / outcome.succeeded.max(1) as f64;
            let ratio = if ideal > 0.0 {
                outcome.time.as_secs_f64() / ideal
            } else {
                f64::NAN
            };
            let passed =
                outcome.failed == 0 && per_success <= TARGET_ATTEMPTS && ratio <= TARGET_TIME;
            if !matches!(mode, Mode::NoLimiter | Mode::Adaptive) {
                all_passed &= passed;
            }
            let verdict = match (passed, outcome.failed) {
                (true, _) => "PASS".to_owned(),
                (false, 0) => "FAIL".to_owned(),
                (false, n) => format!("FAIL ({n} calls gave up)"),
            };
            println!(
                "{:<32}{:>6}{:>10}{:>11.3}{:>9}{:>9.2}{:>8.2}{:>12}  {}",
                mode.label(),
                run_number,
                outcome.attempts,
                per_success,
                outcome.refused_by_provider,
                outcome.time.as_secs_f64(),
                ratio,
                outcome
                    .final_rate
                    .map_or("-".to_owned(), |r| format!("{r:.1}/s")),
                verdict,
            );
        }
    }
    println!(
        "\nThe unlimited start sends the first {} calls at once, so {} of them are refused before\nanything is learned ({:.2} attempts per success at best); an initial rate avoids that.",
        options.concurrency,
        options
            .concurrency
            .min(options.requests)
            .saturating_sub(options.burst as usize),
        1.0 + options
            .concurrency
            .min(options.requests)
            .saturating_sub(options.burst as usize) as f64
            / options.requests as f64,
    );
    if all_passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
