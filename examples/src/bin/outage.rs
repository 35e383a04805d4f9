//! What retries do to a provider during an outage, and what a retry budget
//! and a circuit breaker save.
//!
//! ```sh
//! cargo run --release -p examples --bin outage
//! cargo run --release -p examples --bin outage -- --callers 500 --outage 20 --timeline
//! ```
//!
//! A provider answers `503` to everything for `--outage` seconds, then
//! recovers. Throughout, `--callers` callers each start a call about once
//! per `--interval` (open loop: a caller does not wait for its previous call
//! to finish, as a server calling the provider for its own users does not).
//! Every call goes through `#[retry(max_attempts = 5, wait =
//! exponential(200ms, 5s))]` (full jitter), with, depending on the row:
//!
//! 1. nothing else;
//! 2. `budget = ...`: `RetryBudget::new().ratio(0.1).min_retries_per_second(0)`
//!    over the default 10 s window: exactly 10% of the calls. The library's
//!    default floor of 10 retries a second (for callers too quiet to earn
//!    retries) would add 10 / 200 = 0.05 retries per call at the example's
//!    200 calls a second, half the budget itself; `--budget-floor N` sets
//!    it (each retry a second adds 0.005 here);
//! 3. `breaker = ...`: `CircuitBreaker::new().window(5s).break_for(1s)`
//!    (opens at 50% failures once 20 calls are in the window, the defaults;
//!    a 5 s window instead of 30 s so that it opens within seconds of an
//!    outage after a healthy spell; a 1 s break so that recovery shows);
//! 4. both.
//!
//! Each row gets a fresh budget and breaker, and the same traffic (the
//! callers' schedule comes from `--seed`). For each, it prints:
//!
//! - **amplification**: attempts that reached the provider per logical
//!   call, counting the attempts that arrived while it was down and the
//!   calls started while it was down (*outage*), and over the whole run
//!   (*overall*). The target for the budget rows is at most 1.1;
//! - **after recovery**: the time from the provider's recovery to the first
//!   call that succeeded, and to the start of the first 1-second window
//!   (sliding by 10 ms from the recovery) in which at least 95% of the calls
//!   that ended, succeeded.
//!
//! Below the table it prints what the budget should allow: over any
//! stretch as long as its window `W`, at most 10% of the calls made in that
//! stretch. An outage of `T <= W` seconds after `B` healthy ones may also
//! spend the share of the healthy calls still in the window when it ends:
//! up to `1 + 0.1 * (T + min(B, W - T)) / T` attempts per call, 1.1 with
//! the defaults (10 s down, a 10 s window). A longer outage stays within
//! `1 + 0.1 * W * ceil(T / W) / T`, which tends to 1.1.
//!
//! The provider is simulated in process (a struct that counts attempts and
//! answers after `--latency-ms`), so nothing but the retry policy and its
//! guards shapes the load. The four rows run at the same time on one
//! thread, on the real clock (tokio's paused clock needs its `test-util`
//! feature, which this package does not enable): about `--before +
//! --outage + --after` seconds, 20 s by default. The numbers vary a little
//! from run to run with the timers. `tests/tests/outage.rs` runs the same
//! simulation (`examples::outage`) on tokio's paused clock, in no time.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use examples::outage::{
    run, Config, Report, Setup, RECOVERY_SHARE, RECOVERY_STEP, RECOVERY_WINDOW,
};

/// The amplification the budget rows must not exceed.
const TARGET: f64 = 1.1;

/// outage: retries against a provider that is down, with and without a
/// retry budget and a circuit breaker.
#[derive(Parser, Debug)]
#[command(name = "outage")]
struct Options {
    /// Callers calling the provider.
    #[arg(long, value_name = "N", default_value_t = 200, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    callers: usize,
    /// Mean time between two calls of one caller, in seconds (at least 1 ms).
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = seconds)]
    interval: Duration,
    /// Mean time the provider takes to answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value = "50", value_parser = milliseconds)]
    latency_ms: Duration,
    /// Healthy time before the outage, in seconds.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = seconds)]
    before: Duration,
    /// How long the provider answers 503 to everything, in seconds.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = seconds)]
    outage: Duration,
    /// Healthy time after the outage, in seconds (at least the recovery window).
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = seconds)]
    after: Duration,
    /// The budget's retries per call.
    #[arg(long, value_name = "R", default_value_t = 0.1, value_parser = ratio)]
    budget_ratio: f64,
    /// The budget's min_retries_per_second.
    #[arg(long, value_name = "N", default_value_t = 0)]
    budget_floor: u32,
    /// The budget's window, in seconds.
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = seconds)]
    budget_window: Duration,
    /// The breaker's window, in seconds.
    #[arg(long, value_name = "SECS", default_value = "5", value_parser = seconds)]
    breaker_window: Duration,
    /// How long the breaker stays open, in seconds.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = seconds)]
    break_for: Duration,
    /// Seed of the callers' schedule and of every random draw.
    #[arg(long, value_name = "S", default_value_t = 42)]
    seed: u64,
    /// Also print the attempts reaching the provider in each second.
    #[arg(long)]
    timeline: bool,
}

impl Options {
    fn config(&self) -> Config {
        Config {
            callers: self.callers,
            interval: self.interval.max(Duration::from_millis(1)),
            latency: self.latency_ms,
            before: self.before,
            outage: self.outage,
            after: self.after.max(RECOVERY_WINDOW),
            budget_ratio: self.budget_ratio,
            budget_floor: self.budget_floor,
            budget_window: self.budget_window,
            breaker_window: self.breaker_window,
            break_for: self.break_for,
            seed: self.seed,
        }
    }
}

fn seconds(value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("expected a number of seconds, got {value:?}"))
}

fn milliseconds(value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok())
        .ok_or_else(|| format!("expected a number of milliseconds, got {value:?}"))
}

fn ratio(value: &str) -> Result<f64, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|r| *r >= 0.0)
        .ok_or_else(|| format!("expected a ratio of 0 or more, got {value:?}"))
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn short(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s == s.trunc() {
        format!("{s}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn print_setting(config: &Config) {
    let down_from = config.before.as_secs_f64();
    let down_until = (config.before + config.outage).as_secs_f64();
    println!(
        "traffic   {} callers, {:.0} calls/s in all, answers in about {} ms",
        config.callers,
        config.calls_per_second(),
        config.latency.as_millis(),
    );
    println!(
        "provider  healthy until {down_from} s, 503 to everything until {down_until} s, healthy until {} s",
        config.duration().as_secs_f64(),
    );
    println!("retries   #[retry(max_attempts = 5, wait = exponential(200ms, 5s))], full jitter");
    println!(
        "budget    RetryBudget::new().ratio({}).min_retries_per_second({}).window({})",
        config.budget_ratio,
        config.budget_floor,
        short(config.budget_window),
    );
    println!(
        "breaker   CircuitBreaker::new().window({}).break_for({}) (opens at 50% failures, 20 calls min)",
        short(config.breaker_window),
        short(config.break_for),
    );
    println!();
}

fn print_table(config: &Config, reports: &[Report]) {
    println!(
        "{:<27}  {:>17}  {:>16}  {:>12}  {:>18}  {:>7}",
        "", "during the outage", "amplification", "failed calls", "after recovery", "target"
    );
    println!(
        "{:<27}  {:>7} {:>9}  {:>7} {:>8}  {:>6} {:>5}  {:>8} {:>9}  {:>7}",
        "configuration",
        "calls",
        "attempts",
        "outage",
        "overall",
        "all",
        "fast",
        "first ok",
        "95% ok",
        format!("<= {TARGET}"),
    );
    for r in reports {
        let target = if r.setup.has_budget() {
            let pass = r.amplification_during_outage() <= TARGET;
            if pass {
                "PASS"
            } else {
                "FAIL"
            }
        } else {
            "-"
        };
        let when = |d: Option<Duration>| d.map_or_else(|| "never".to_owned(), secs);
        println!(
            "{:<27}  {:>7} {:>9}  {:>7.3} {:>8.3}  {:>6} {:>5}  {:>8} {:>9}  {:>7}",
            r.setup.name(),
            r.calls_during_outage,
            r.attempts_during_outage,
            r.amplification_during_outage(),
            r.amplification_overall(),
            r.failed,
            r.failed_fast,
            when(r.first_success),
            when(r.recovered),
            target,
        );
    }
    println!();
    println!("outage amplification: attempts that reached the provider while it was down / calls started while it was down");
    println!("overall amplification: attempts / calls, over the whole run");
    println!("failed calls: calls that failed in the end (all of the run); fast: those the breaker refused without calling");
    println!("first ok: from the provider's recovery to the first call that ended in success");
    println!(
        "95% ok: from the recovery to the start of the first {} s window (sliding by {} ms from the recovery) in which",
        RECOVERY_WINDOW.as_secs_f64(),
        RECOVERY_STEP.as_millis(),
    );
    println!(
        "        >= {:.0}% of the calls that ended, succeeded (a few failures at its start still pass, so it can precede first ok)",
        RECOVERY_SHARE * 100.0,
    );
    if let Some(plain) = reports.iter().find(|r| r.setup == Setup::Plain) {
        println!();
        for r in reports.iter().filter(|r| r.setup != Setup::Plain) {
            let saved = plain
                .attempts_during_outage
                .saturating_sub(r.attempts_during_outage);
            println!(
                "{}: {saved} fewer attempts on the provider while it was down than plain retries ({:.0}%)",
                r.setup.name(),
                100.0 * saved as f64 / plain.attempts_during_outage.max(1) as f64,
            );
        }
    }
    // What a budget of `ratio` x the calls in its window allows: over any
    // stretch of the window's length, `ratio` x the calls made in it. An
    // outage no longer than the window may also spend the share of the
    // healthy calls still in the window at its end.
    let outage = config.outage.as_secs_f64();
    let window = config.budget_window.as_secs_f64();
    let before = config.before.as_secs_f64();
    let credit = if outage <= window {
        (window - outage).min(before)
    } else {
        window * (outage / window).ceil() - outage
    };
    if outage > 0.0 {
        let expected = 1.0
            + config.budget_ratio * (outage + credit) / outage
            + f64::from(config.budget_floor) / config.calls_per_second();
        println!();
        println!(
            "The budget lets through at most {} x the calls made over any {window} s{}; an outage may",
            config.budget_ratio,
            if config.budget_floor > 0 {
                format!(", plus {} retries a second", config.budget_floor)
            } else {
                String::new()
            },
        );
        println!(
            "also spend the share of {credit:.1} s of calls made before it: expect up to about"
        );
        println!(
            "1 + {} x ({outage} + {credit}) / {outage}{} = {expected:.3} attempts per call while it is down.",
            config.budget_ratio,
            if config.budget_floor > 0 {
                format!(" + {} / {:.0}", config.budget_floor, config.calls_per_second())
            } else {
                String::new()
            },
        );
    }
}

fn print_timeline(config: &Config, reports: &[Report]) {
    println!();
    println!("attempts reaching the provider in each second (provider down in seconds marked *):");
    let seconds = reports
        .iter()
        .map(|r| r.per_second.len())
        .max()
        .unwrap_or(0);
    let down = |s: usize| {
        let t = Duration::from_secs(s as u64);
        t + Duration::from_secs(1) > config.before && t < config.before + config.outage
    };
    print!("{:<27} ", "second");
    for s in 0..seconds {
        print!("{:>5}", format!("{}{s}", if down(s) { "*" } else { "" }));
    }
    println!();
    for r in reports {
        print!("{:<27} ", r.setup.name());
        for s in 0..seconds {
            print!("{:>5}", r.per_second.get(s).copied().unwrap_or(0));
        }
        println!();
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let options = Options::parse();
    let config = options.config();
    // Every random draw (the callers' schedule, the provider's latency and
    // the retries' jitter) is made on this thread.
    fastrand::seed(config.seed);
    print_setting(&config);
    let started = Instant::now();
    let (plain, budget, breaker, both) = tokio::join!(
        run(Setup::Plain, &config),
        run(Setup::Budget, &config),
        run(Setup::Breaker, &config),
        run(Setup::BudgetAndBreaker, &config),
    );
    let reports = [plain, budget, breaker, both];
    print_table(&config, &reports);
    if options.timeline {
        print_timeline(&config, &reports);
    }
    println!();
    println!("wall time {:.1} s", started.elapsed().as_secs_f64());
    // PASS or FAIL is the finding, not an error of the run.
    ExitCode::SUCCESS
}
