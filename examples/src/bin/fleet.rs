//! A fleet of worker processes on one provider, with guards shared through
//! Redis (`llm_resilience::shared`) and without: three tables.
//!
//! ```sh
//! cargo run --release -p examples --bin fleet
//! cargo run --release -p examples --bin fleet -- --rows limit --workers 8
//! ```
//!
//! It starts a `redis-server` of its own (the Debian package
//! `redis-server`) on a free port of 127.0.0.1, the flaky provider, and
//! then runs itself again as `--workers` worker processes (`--worker`,
//! with their job as JSON), which start together, make their calls and
//! print what happened to each as JSON; the parent reads the provider's
//! log and prints:
//!
//! 1. **Shared limit** (`limit`): each worker sends `--calls` chat calls,
//!    `--concurrency` at a time, to a token bucket of `--rate` requests per
//!    second holding `--burst`, whose refusals say `Retry-After: 1`, through
//!    `#[retry(max_attempts = 8, limiter = ...)]` with an
//!    `AdaptiveLimiter::new()`: shared by the fleet, then one per process.
//!    Target for the shared row: at most 1.10 attempts per success, and at
//!    most 1.15 × the ideal time (the burst at once, then one call per
//!    token: `(workers × calls − burst) / rate`).
//! 2. **Outage** (`outage`): each worker starts `--outage-rate` calls a
//!    second (open loop) for `--before` + `--outage` + `--after` seconds;
//!    the provider answers `503` to everything for `--outage` seconds. The
//!    calls go through `#[retry(max_attempts = 5, wait = exponential(200ms,
//!    5s))]` with a `CircuitBreaker` (window 5 s, break 1 s) and a 10 %
//!    `RetryBudget` (floor 1 retry a second, window 10 s): shared, then one
//!    per process. It prints the amplification during the outage (attempts
//!    that reached the provider while it was down per call started while it
//!    was down; target for the shared row: at most 1.1), how long after the
//!    first process's breaker opened the last one's did (target: 100 ms),
//!    and the time from the recovery to the first success.
//! 3. **Redis killed** (`redis-kill`): the shared limit run, longer
//!    (`--kill-calls` each), with the breaker, the budget and the limiter
//!    all shared; Redis is killed `--kill-at` seconds in and restarted
//!    `--down-for` seconds later. Every call must end (a success or a
//!    classified error); it prints each worker's window without sharing (from
//!    its fall back to its resync) and the pacing inside and outside it.
//!
//! With `FLEET_DEBUG=1` it also prints the provider's timelines (admitted
//! per second, refusals per 250 ms and per second).
//!
//! This is a benchmark, not a test: timings depend on the machine, and a
//! missed target is printed as `FAIL` without failing the exit status.

use std::collections::BTreeMap;
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use examples::chat::{paced, send};
use examples::flaky::{Fault, FlakyProvider, Limits, Scenario};
use examples::redis_server::RedisServer;
use llm_resilience::http::HttpError;
use llm_resilience::shared::{Fleet, FleetOptions};
use llm_resilience::{retry, AdaptiveLimiter, BreakerState, CircuitBreaker, RetryBudget};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

/// fleet: several worker processes on one provider, guards shared through
/// Redis or not.
#[derive(Parser, Debug)]
#[command(name = "fleet")]
struct Options {
    /// Run only these tables (comma separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    rows: Vec<Table>,
    /// Worker processes.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=64))]
    workers: u64,
    /// Chat calls per worker in the shared-limit table.
    #[arg(long, default_value_t = 125)]
    calls: u64,
    /// Calls in flight at once per worker.
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..))]
    concurrency: u64,
    /// Requests per second the provider admits.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// The provider's bucket, full at start.
    #[arg(long, default_value_t = 20)]
    burst: u32,
    /// Calls a second each worker starts in the outage table.
    #[arg(long, default_value_t = 50.0)]
    outage_rate: f64,
    /// Healthy seconds before the outage.
    #[arg(long, default_value_t = 3)]
    before: u64,
    /// Seconds the provider answers 503 to everything.
    #[arg(long, default_value_t = 10)]
    outage: u64,
    /// Healthy seconds after the outage.
    #[arg(long, default_value_t = 5)]
    after: u64,
    /// Chat calls per worker in the Redis-killed table.
    #[arg(long, default_value_t = 300)]
    kill_calls: u64,
    /// Seconds into the Redis-killed run when Redis is killed.
    #[arg(long, default_value_t = 3.0)]
    kill_at: f64,
    /// Seconds Redis stays down.
    #[arg(long, default_value_t = 5.0)]
    down_for: f64,
    /// How often each shared guard looks for news to publish, in ms
    /// (`FleetOptions::watch_every`).
    #[arg(long, default_value_t = 20)]
    watch_ms: u64,
    /// Run one worker's job (given as JSON); used by the fleet itself.
    #[arg(long, hide = true)]
    worker: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Table {
    /// Shared limit.
    Limit,
    /// Outage.
    Outage,
    /// Redis killed mid-run.
    RedisKill,
}

/// Milliseconds since the Unix epoch: the fleet's common clock.
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

// ---------------------------------------------------------------- workers

/// Paced by `limiter`, under a breaker and a budget.
#[retry(max_attempts = 8, limiter = limiter, breaker = breaker, budget = budget)]
async fn chat_limited(
    client: &reqwest::Client,
    url: &str,
    limiter: &AdaptiveLimiter,
    breaker: &CircuitBreaker,
    budget: &RetryBudget,
    body: &Value,
) -> Result<(), HttpError> {
    send(client, url, body).await
}

/// Against an outage: backoff, a breaker and a budget.
#[retry(max_attempts = 5, wait = exponential(200ms, 5s), breaker = breaker, budget = budget, limiter = none)]
async fn chat_guarded(
    client: &reqwest::Client,
    url: &str,
    breaker: &CircuitBreaker,
    budget: &RetryBudget,
    body: &Value,
) -> Result<(), HttpError> {
    send(client, url, body).await
}

fn body(i: u64) -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("call {i}")}]})
}

/// What a call ended with: `ok`, `fast` (refused by the breaker, never
/// sent), or the kind of its last error.
fn outcome(result: &Result<(), HttpError>) -> String {
    match result {
        Ok(()) => "ok".into(),
        Err(e) if e.circuit_open().is_some() => "fast".into(),
        Err(e) => format!("{:?}", llm_resilience::Classify::kind(e)),
    }
}

/// A worker's guards: shared through Redis, or its own.
struct Guards {
    limiter: Option<llm_resilience::shared::SharedLimiter>,
    breaker: Option<llm_resilience::shared::SharedBreaker>,
    budget: Option<llm_resilience::shared::SharedBudget>,
    local_limiter: AdaptiveLimiter,
    local_breaker: CircuitBreaker,
    local_budget: RetryBudget,
}

impl Guards {
    fn limiter(&self) -> &AdaptiveLimiter {
        self.limiter.as_deref().unwrap_or(&self.local_limiter)
    }
    fn breaker(&self) -> &CircuitBreaker {
        self.breaker.as_deref().unwrap_or(&self.local_breaker)
    }
    fn budget(&self) -> &RetryBudget {
        self.budget.as_deref().unwrap_or(&self.local_budget)
    }
    fn connected(&self) -> bool {
        self.limiter.as_ref().is_none_or(|g| g.is_connected())
            && self.breaker.as_ref().is_none_or(|g| g.is_connected())
            && self.budget.as_ref().is_none_or(|g| g.is_connected())
    }
}

async fn worker(job: Value) -> Value {
    let get = |k: &str| job.get(k).cloned().unwrap_or(Value::Null);
    let kind = get("job").as_str().unwrap_or_default().to_owned();
    let shared = get("shared").as_bool().unwrap_or(false);
    let url = get("provider").as_str().unwrap_or_default().to_owned();
    let workers = get("workers").as_u64().unwrap_or(1) as usize;
    let start_at = get("start_at").as_u64().unwrap_or(0);
    let index = get("index").as_u64().unwrap_or(0);
    let outage = kind == "outage";
    // The Redis-killed run shares all three guards; the others only the
    // ones they measure.
    let all = kind == "kill";
    let breaker = || {
        if outage {
            CircuitBreaker::new()
                .window(Duration::from_secs(5))
                .break_for(Duration::from_secs(1))
        } else {
            CircuitBreaker::new()
        }
    };
    let budget = || {
        if outage {
            RetryBudget::new().ratio(0.1).min_retries_per_second(1)
        } else {
            RetryBudget::new()
        }
    };
    let fleet = shared.then(|| {
        let options = FleetOptions::new()
            .prefix(Box::leak(
                get("prefix")
                    .as_str()
                    .unwrap_or("fleet")
                    .to_owned()
                    .into_boxed_str(),
            ))
            .watch_every(Duration::from_millis(
                get("watch_ms").as_u64().unwrap_or(20),
            ));
        Fleet::with_options(get("redis").as_str().unwrap_or_default(), options)
            .expect("a Redis URL")
    });
    let guards = Arc::new(Guards {
        limiter: fleet
            .as_ref()
            .filter(|_| !outage)
            .map(|f| f.limiter("provider", AdaptiveLimiter::new())),
        breaker: fleet
            .as_ref()
            .filter(|_| outage || all)
            .map(|f| f.breaker("provider", breaker())),
        budget: fleet
            .as_ref()
            .filter(|_| outage || all)
            .map(|f| f.budget("provider", budget())),
        local_limiter: AdaptiveLimiter::new(),
        local_breaker: breaker(),
        local_budget: budget(),
    });
    // Shared: wait (until the start) for the whole fleet to be seen.
    while unix_ms() < start_at {
        let seen = guards
            .budget
            .as_ref()
            .is_none_or(|b| b.members() >= workers)
            && guards
                .limiter
                .as_ref()
                .is_none_or(|l| l.members() >= workers);
        if seen && guards.connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let ready = match (&guards.budget, &guards.limiter) {
        (Some(b), _) => b.members(),
        (None, Some(l)) => l.members(),
        (None, None) => workers,
    };
    tokio::time::sleep(Duration::from_millis(start_at.saturating_sub(unix_ms()))).await;
    let start = Instant::now();
    let ms = move || start.elapsed().as_secs_f64() * 1000.0;

    // Watchers: when the breaker first opened, and the windows without
    // Redis.
    let opened = Arc::new(Mutex::new(None::<f64>));
    let windows = Arc::new(Mutex::new(Vec::<(f64, Option<f64>)>::new()));
    // With FLEET_DEBUG: the fleet's rate as this process's limiter sees it,
    // every 250 ms.
    let rates = Arc::new(Mutex::new(Vec::<u32>::new()));
    let watching = {
        let (guards, opened, windows, rates) = (
            guards.clone(),
            opened.clone(),
            windows.clone(),
            rates.clone(),
        );
        let debug = std::env::var_os("FLEET_DEBUG").is_some();
        tokio::spawn(async move {
            let mut connected = true;
            loop {
                if debug {
                    if let Some(limiter) = &guards.limiter {
                        let mut rates = rates.lock().unwrap();
                        if ms() >= rates.len() as f64 * 250.0 {
                            let fleet = limiter.rate().unwrap_or(0.0) * limiter.members() as f64;
                            rates.push(fleet.round() as u32);
                        }
                    }
                }
                if opened.lock().unwrap().is_none()
                    && matches!(guards.breaker().state(), BreakerState::Open { .. })
                {
                    *opened.lock().unwrap() = Some(ms());
                }
                if shared {
                    let now = guards.connected();
                    if now != connected {
                        let mut w = windows.lock().unwrap();
                        if now {
                            if let Some(last) = w.last_mut() {
                                last.1 = Some(ms());
                            }
                        } else {
                            w.push((ms(), None));
                        }
                        connected = now;
                    }
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
    };

    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
        .expect("an HTTP client");
    let url: Arc<str> = url.into();
    let mut calls = tokio::task::JoinSet::new();
    if outage {
        let rate = get("outage_rate").as_f64().unwrap_or(50.0);
        let duration = get("duration_ms").as_f64().unwrap_or(0.0);
        let mut rng = fastrand::Rng::with_seed(index);
        let mut at = rng.f64() * 1000.0 / rate;
        let mut i = 0;
        while at < duration {
            let (client, url, guards) = (client.clone(), url.clone(), guards.clone());
            let due = start + Duration::from_secs_f64(at / 1000.0);
            calls.spawn(async move {
                tokio::time::sleep_until(due.into()).await;
                let began = ms();
                let result =
                    chat_guarded(&client, &url, guards.breaker(), guards.budget(), &body(i)).await;
                (began, ms(), outcome(&result))
            });
            // Poisson arrivals.
            at += -(1.0 - rng.f64()).ln() * 1000.0 / rate;
            i += 1;
        }
    } else {
        let n = get("calls").as_u64().unwrap_or(0);
        let slots = Arc::new(Semaphore::new(
            get("concurrency").as_u64().unwrap_or(1) as usize
        ));
        for i in 0..n {
            let (client, url, guards, slots) =
                (client.clone(), url.clone(), guards.clone(), slots.clone());
            calls.spawn(async move {
                let _slot = slots.acquire_owned().await;
                let began = ms();
                let result = if all {
                    chat_limited(
                        &client,
                        &url,
                        guards.limiter(),
                        guards.breaker(),
                        guards.budget(),
                        &body(i),
                    )
                    .await
                } else {
                    paced(&client, &url, guards.limiter(), &body(i)).await
                };
                (began, ms(), outcome(&result))
            });
        }
    }
    let mut records = Vec::new();
    while let Some(joined) = calls.join_next().await {
        match joined {
            Ok((began, ended, outcome)) => records.push(json!([began, ended, outcome])),
            Err(_) => records.push(json!([0.0, ms(), "panicked"])),
        }
    }
    // Give a window still open the chance to close.
    if shared && !guards.connected() {
        let until = Instant::now() + Duration::from_secs(3);
        while !guards.connected() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    watching.abort();
    // Done: the others take this process's share at once.
    if let Some(fleet) = &fleet {
        fleet.close().await;
    }
    let opened = *opened.lock().unwrap();
    let windows: Vec<Value> = windows
        .lock()
        .unwrap()
        .iter()
        .map(|(down, up)| json!([down, up]))
        .collect();
    let fallbacks = guards.limiter.as_ref().map_or((0, 0), |l| l.fallbacks());
    json!({
        "records": records,
        "opened_ms": opened,
        "windows": windows,
        "fallbacks": [fallbacks.0, fallbacks.1],
        "members_at_start": ready,
        "rates": *rates.lock().unwrap(),
    })
}

// ----------------------------------------------------------------- parent

/// One call, as a worker reports it: when it began and ended (ms since the
/// common start) and how.
struct Record {
    began: f64,
    ended: f64,
    outcome: String,
}

struct Report {
    records: Vec<Record>,
    opened_ms: Vec<Option<f64>>,
    windows: Vec<Vec<(f64, Option<f64>)>>,
    members_at_start: Vec<u64>,
    /// When each worker's last call ended (ms since the common start).
    finished: Vec<f64>,
    /// The common start, in the provider's time (since it started).
    offset: Duration,
    provider: FlakyProvider,
}

/// Runs `workers` copies of `job` against `provider`, started together.
fn run_fleet(
    options: &Options,
    provider: FlakyProvider,
    provider_started: Instant,
    job: Value,
    during: impl FnOnce(Instant) + Send + 'static,
) -> Result<Report, String> {
    let lead = Duration::from_millis(1500);
    let start = Instant::now() + lead;
    let start_at = unix_ms() + u64::try_from(lead.as_millis()).unwrap_or(0);
    let exe = std::env::current_exe().map_err(|e| format!("no path to this program: {e}"))?;
    let mut children = Vec::new();
    for index in 0..options.workers {
        let mut job = job.clone();
        job["index"] = json!(index);
        job["start_at"] = json!(start_at);
        job["workers"] = json!(options.workers);
        job["provider"] = json!(provider.chat_completions_url());
        job["watch_ms"] = json!(options.watch_ms);
        let child = Command::new(&exe)
            .arg("--worker")
            .arg(job.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not start a worker: {e}"))?;
        children.push(child);
    }
    let side = std::thread::spawn(move || during(start));
    let mut report = Report {
        records: Vec::new(),
        opened_ms: Vec::new(),
        windows: Vec::new(),
        members_at_start: Vec::new(),
        finished: Vec::new(),
        offset: start.saturating_duration_since(provider_started),
        provider,
    };
    for child in children {
        let output = child
            .wait_with_output()
            .map_err(|e| format!("a worker failed: {e}"))?;
        let text = String::from_utf8_lossy(&output.stdout);
        let value: Value = text
            .lines()
            .last()
            .and_then(|line| serde_json::from_str(line).ok())
            .ok_or_else(|| format!("a worker said nothing readable ({})", output.status))?;
        let mut finished = 0.0f64;
        for r in value["records"].as_array().into_iter().flatten() {
            finished = finished.max(r[1].as_f64().unwrap_or(0.0));
            report.records.push(Record {
                began: r[0].as_f64().unwrap_or(0.0),
                ended: r[1].as_f64().unwrap_or(0.0),
                outcome: r[2].as_str().unwrap_or("?").to_owned(),
            });
        }
        report.finished.push(finished);
        if std::env::var_os("FLEET_DEBUG").is_some() {
            eprintln!("a worker's fleet rate per 250 ms: {}", value["rates"]);
        }
        report.opened_ms.push(value["opened_ms"].as_f64());
        report.windows.push(
            value["windows"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|w| (w[0].as_f64().unwrap_or(0.0), w[1].as_f64()))
                .collect(),
        );
        report
            .members_at_start
            .push(value["members_at_start"].as_u64().unwrap_or(0));
    }
    let _ = side.join();
    Ok(report)
}

fn pass(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

fn limit_table(options: &Options, redis: &str) -> Result<(), String> {
    let total = options.workers * options.calls;
    let ideal = (total as f64 - f64::from(options.burst)).max(0.0) / options.rate;
    println!(
        "Shared limit: {} processes x {} calls, {} in flight each, against {}/s, burst {}, Retry-After: 1; ideal {:.2} s",
        options.workers, options.calls, options.concurrency, options.rate, options.burst, ideal
    );
    println!(
        "{:<28}{:>10}{:>8}{:>8}{:>9}{:>6}  target",
        "limiter", "att/succ", "429s", "time s", "x ideal", "lost"
    );
    for (label, shared) in [("shared (Redis)", true), ("one per process", false)] {
        let started = Instant::now();
        let provider = FlakyProvider::spawn(Scenario::Limited(Limits::requests(
            options.rate,
            options.burst,
        )))
        .map_err(|e| format!("could not start the provider: {e}"))?;
        let job = json!({
            "job": "limit", "shared": shared, "redis": redis,
            "prefix": format!("fleet-limit-{}", unix_ms()),
            "calls": options.calls, "concurrency": options.concurrency,
        });
        let report = run_fleet(options, provider, started, job, |_| {})?;
        let stats = report.provider.stats();
        if std::env::var_os("FLEET_DEBUG").is_some() {
            eprintln!(
                "admitted per second: {:?}",
                report.provider.admitted_per_second()
            );
            let log = report.provider.requests();
            let mut refused = vec![0u32; 20];
            let mut early = vec![(0u32, 0u32); 40];
            for r in log.iter() {
                let t = r.at.saturating_sub(report.offset).as_secs_f64();
                let s = (t * 4.0) as usize;
                if s < 20 && r.outcome == "429" {
                    refused[s] += 1;
                }
                let e = (t * 20.0) as usize;
                if e < 40 {
                    if r.outcome == "429" {
                        early[e].1 += 1
                    } else {
                        early[e].0 += 1
                    }
                }
            }
            eprintln!("refused per 250 ms: {refused:?}");
            let mut admitted = vec![0u32; 40];
            for r in log.iter().filter(|r| r.outcome != "429") {
                let t = r.at.saturating_sub(report.offset).as_secs_f64();
                if let Some(slot) = admitted.get_mut((t * 4.0) as usize) {
                    *slot += 1;
                }
            }
            eprintln!("admitted per 250 ms: {admitted:?}");
            eprintln!("workers finished (ms): {:?}", report.finished);
            eprintln!("first 2 s per 50 ms (ok, 429): {early:?}");
        }
        let ok = report.records.iter().filter(|r| r.outcome == "ok").count() as u64;
        let lost = report.records.len() as u64 - ok;
        let time = report.records.iter().map(|r| r.ended).fold(0.0, f64::max) / 1000.0;
        let per_success = stats.requests as f64 / ok.max(1) as f64;
        let refused = stats.faults.get("token_bucket").copied().unwrap_or(0);
        let target = if shared {
            format!(
                "{} (<=1.10 a/s, <=1.15x, 0 lost)",
                pass(per_success <= 1.10 && time / ideal <= 1.15 && lost == 0)
            )
        } else {
            "-".to_owned()
        };
        println!(
            "{label:<28}{per_success:>10.3}{refused:>8}{time:>8.2}{:>9.2}{lost:>6}  {target}",
            time / ideal
        );
    }
    println!();
    Ok(())
}

fn outage_table(options: &Options, redis: &str) -> Result<(), String> {
    let (before, down, after) = (options.before, options.outage, options.after);
    println!(
        "Outage: {} processes, each starting {} calls/s for {} s; 503 to everything from {} s to {} s",
        options.workers,
        options.outage_rate,
        before + down + after,
        before,
        before + down
    );
    println!("retry(max_attempts = 5, wait = exponential(200ms, 5s)), breaker: window 5 s, break 1 s; budget: 10% + 1/s over 10 s");
    println!(
        "{:<28}{:>8}{:>10}{:>8}{:>12}{:>14}{:>10}  target",
        "breaker and budget", "calls", "attempts", "ampl.", "failed fast", "all open in", "1st ok"
    );
    for (label, shared) in [("shared (Redis)", true), ("one per process", false)] {
        let started = Instant::now();
        // The outage is placed once the common start is known: the
        // provider's clock starts now, the fleet's about 1.5 s later.
        let provider = FlakyProvider::spawn(Scenario::Outage {
            from: Duration::from_millis(1500) + Duration::from_secs(before),
            down_for: Duration::from_secs(down),
            fault: Fault::Status(503),
        })
        .map_err(|e| format!("could not start the provider: {e}"))?;
        let job = json!({
            "job": "outage", "shared": shared, "redis": redis,
            "prefix": format!("fleet-outage-{}", unix_ms()),
            "outage_rate": options.outage_rate,
            "duration_ms": ((before + down + after) * 1000) as f64,
        });
        let report = run_fleet(options, provider, started, job, |_| {})?;
        // The outage in the fleet's time.
        let down_from = (Duration::from_millis(1500) + Duration::from_secs(before))
            .saturating_sub(report.offset)
            .as_secs_f64()
            * 1000.0;
        let down_until = down_from + down as f64 * 1000.0;
        let calls_down = report
            .records
            .iter()
            .filter(|r| r.began >= down_from && r.began < down_until)
            .count();
        let attempts_down = report
            .provider
            .stats()
            .faults
            .get("503")
            .copied()
            .unwrap_or(0);
        let amplification = attempts_down as f64 / calls_down.max(1) as f64;
        let fast = report
            .records
            .iter()
            .filter(|r| r.outcome == "fast")
            .count();
        let opened: Vec<f64> = report.opened_ms.iter().flatten().copied().collect();
        let spread = (opened.len() == report.opened_ms.len() && !opened.is_empty()).then(|| {
            opened.iter().copied().fold(f64::MIN, f64::max)
                - opened.iter().copied().fold(f64::MAX, f64::min)
        });
        let first_ok = report
            .records
            .iter()
            .filter(|r| r.outcome == "ok" && r.ended >= down_until)
            .map(|r| r.ended - down_until)
            .fold(f64::MAX, f64::min);
        let target = if shared {
            format!(
                "{} (<=1.1, all open within 100 ms)",
                pass(amplification <= 1.1 && spread.is_some_and(|s| s <= 100.0))
            )
        } else {
            "-".to_owned()
        };
        println!(
            "{label:<28}{:>8}{:>10}{amplification:>8.3}{fast:>12}{:>14}{:>10}  {target}",
            calls_down,
            attempts_down,
            spread.map_or("never".to_owned(), |s| format!("{s:.0} ms")),
            if first_ok == f64::MAX {
                "never".to_owned()
            } else {
                format!("{:.0} ms", first_ok)
            },
        );
    }
    println!("calls and attempts: those started / arriving while the provider was down; all open in: from the first process's breaker opening to the last one's; 1st ok: from the recovery to the first success.\n");
    Ok(())
}

fn kill_table(options: &Options, redis: &Arc<Mutex<RedisServer>>) -> Result<(), String> {
    let total = options.workers * options.kill_calls;
    println!(
        "Redis killed at {} s and restarted {} s later: {} processes x {} calls, {} in flight each, against {}/s, burst {}; breaker, budget and limiter shared",
        options.kill_at, options.down_for, options.workers, options.kill_calls, options.concurrency, options.rate, options.burst
    );
    let started = Instant::now();
    let provider = FlakyProvider::spawn(Scenario::Limited(Limits::requests(
        options.rate,
        options.burst,
    )))
    .map_err(|e| format!("could not start the provider: {e}"))?;
    let url = redis.lock().unwrap().url();
    let job = json!({
        "job": "kill", "shared": true, "redis": url,
        "prefix": format!("fleet-kill-{}", unix_ms()),
        "calls": options.kill_calls, "concurrency": options.concurrency,
    });
    // Redis is killed and restarted on a thread of its own.
    let (kill_at, down_for) = (options.kill_at, options.down_for);
    let side = redis.clone();
    let report = run_fleet(options, provider, started, job, move |start| {
        std::thread::sleep(
            (start + Duration::from_secs_f64(kill_at)).saturating_duration_since(Instant::now()),
        );
        side.lock().unwrap().kill();
        std::thread::sleep(Duration::from_secs_f64(down_for));
        side.lock().unwrap().restart();
    })?;
    let stats = report.provider.stats();
    if std::env::var_os("FLEET_DEBUG").is_some() {
        eprintln!(
            "admitted per second: {:?}",
            report.provider.admitted_per_second()
        );
        let mut refused = vec![0u32; 30];
        for r in report
            .provider
            .requests()
            .iter()
            .filter(|r| r.outcome == "429")
        {
            let s = r.at.saturating_sub(report.offset).as_secs() as usize;
            if s < 30 {
                refused[s] += 1;
            }
        }
        eprintln!("refused per second: {refused:?}");
    }
    let mut outcomes: BTreeMap<&str, u64> = BTreeMap::new();
    for r in &report.records {
        *outcomes.entry(r.outcome.as_str()).or_default() += 1;
    }
    let ok = outcomes.get("ok").copied().unwrap_or(0);
    let ended = report.records.len() as u64;
    let time = report.records.iter().map(|r| r.ended).fold(0.0, f64::max) / 1000.0;
    println!(
        "calls {total}, ended {ended} ({}), attempts/success {:.3}, 429s {}, time {:.2} s  {} (every call ends)",
        outcomes
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        stats.requests as f64 / ok.max(1) as f64,
        stats.faults.get("token_bucket").copied().unwrap_or(0),
        time,
        pass(ended == total && !outcomes.contains_key("panicked")),
    );
    // Pacing inside and outside the window, from the provider's log.
    let offset = report.offset.as_secs_f64() * 1000.0;
    let windows: Vec<(f64, f64)> = report
        .windows
        .iter()
        .flat_map(|w| w.iter().map(|(d, u)| (*d, u.unwrap_or(f64::NAN))))
        .collect();
    let down = windows.iter().map(|w| w.0).fold(f64::MAX, f64::min);
    let up = windows.iter().map(|w| w.1).fold(f64::MIN, f64::max);
    for (i, w) in report.windows.iter().enumerate() {
        let shown: Vec<String> = w
            .iter()
            .map(|(d, u)| match u {
                Some(u) => format!(
                    "{:.2} s to {:.2} s ({:.2} s)",
                    d / 1000.0,
                    u / 1000.0,
                    (u - d) / 1000.0
                ),
                None => format!("{:.2} s, never back", d / 1000.0),
            })
            .collect();
        println!(
            "  worker {i}: without sharing {}",
            if shown.is_empty() {
                "never".to_owned()
            } else {
                shown.join(", ")
            }
        );
    }
    if down < up {
        let log = report.provider.requests();
        let count = |from: f64, to: f64, outcome: &str| {
            log.iter()
                .filter(|r| {
                    let at = r.at.as_secs_f64() * 1000.0 - offset;
                    at >= from && at < to && r.outcome == outcome
                })
                .count()
        };
        let span = |from: f64, to: f64| (to - from).max(1.0) / 1000.0;
        let end = time * 1000.0;
        for (label, from, to) in [
            ("before the kill", 0.0, down),
            ("without sharing", down, up),
            ("after the resync", up, end),
        ] {
            let (admitted, refused) = (count(from, to, "200"), count(from, to, "429"));
            println!(
                "  {label:<18} {:>6.2} s: {admitted:>5} admitted ({:>6.1}/s), {refused:>4} refused (429)",
                span(from, to),
                admitted as f64 / span(from, to),
            );
        }
    }
    println!();
    Ok(())
}

fn main() -> ExitCode {
    let options = Options::parse();
    if let Some(job) = &options.worker {
        let job: Value = match serde_json::from_str(job) {
            Ok(job) => job,
            Err(e) => {
                eprintln!("fleet: a worker's job is not JSON: {e}");
                return ExitCode::FAILURE;
            }
        };
        let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
        let report = runtime.block_on(worker(job));
        println!("{report}");
        return ExitCode::SUCCESS;
    }
    let tables: Vec<Table> = if options.rows.is_empty() {
        vec![Table::Limit, Table::Outage, Table::RedisKill]
    } else {
        options.rows.clone()
    };
    let redis = Arc::new(Mutex::new(RedisServer::start()));
    let url = redis.lock().unwrap().url();
    println!("redis-server on {url}\n");
    for table in tables {
        let result = match table {
            Table::Limit => limit_table(&options, &url),
            Table::Outage => outage_table(&options, &url),
            Table::RedisKill => kill_table(&options, &redis),
        };
        if let Err(message) = result {
            eprintln!("fleet: {message}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
