//! A provider outage, simulated in process: many callers keep calling a
//! provider that answers `503` to everything for a while, through
//! `#[retry]` with and without a [`RetryBudget`] and a [`CircuitBreaker`],
//! and the [`Report`] says how much load the retries put on the provider
//! while it was down and how soon calls succeeded again once it was back.
//!
//! Nothing here goes over the network: the [`Provider`] is a struct that
//! counts the attempts reaching it and answers after a short latency. Every
//! wait (the provider's latency, the callers' schedule, the retries' backoff,
//! the budget's and the breaker's windows) is on tokio's clock, so the same
//! [`run`] takes real time in `cargo run -p examples --bin outage` and no
//! time at all on a paused clock (`#[tokio::test(start_paused = true)]`).
//!
//! ```no_run
//! use examples::outage::{run, Config, Setup};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let report = run(Setup::Budget, &Config::default()).await;
//! println!("{:.2} attempts per call while down", report.amplification_during_outage());
//! # }
//! ```

use core::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use llm_resilience::{retry, CircuitBreaker, CircuitOpen, Classify, ErrorKind, RetryBudget};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The share of calls that must succeed for the provider to count as
/// recovered, over [`RECOVERY_WINDOW`]: see [`Report::recovered`].
pub const RECOVERY_SHARE: f64 = 0.95;

/// The length of the sliding window of [`Report::recovered`].
pub const RECOVERY_WINDOW: Duration = Duration::from_secs(1);

/// How far the window of [`Report::recovered`] slides at each step.
pub const RECOVERY_STEP: Duration = Duration::from_millis(10);

/// The protection the calls run under: one row of the example's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Setup {
    /// `#[retry(max_attempts = 5, wait = exponential(200ms, 5s))]` and
    /// nothing else.
    Plain,
    /// The same, with `budget = ...`: a [`RetryBudget`].
    Budget,
    /// The same, with `breaker = ...`: a [`CircuitBreaker`].
    Breaker,
    /// The same, with both.
    BudgetAndBreaker,
}

impl Setup {
    /// Every setup, in the order of the table.
    pub const ALL: [Setup; 4] = [
        Setup::Plain,
        Setup::Budget,
        Setup::Breaker,
        Setup::BudgetAndBreaker,
    ];

    /// A short description, for the table.
    pub const fn name(self) -> &'static str {
        match self {
            Setup::Plain => "plain retries (5 attempts)",
            Setup::Budget => "+ retry budget",
            Setup::Breaker => "+ circuit breaker",
            Setup::BudgetAndBreaker => "+ budget + breaker",
        }
    }

    /// Whether the calls draw their retries from a [`RetryBudget`].
    pub const fn has_budget(self) -> bool {
        matches!(self, Setup::Budget | Setup::BudgetAndBreaker)
    }

    /// Whether the calls run under a [`CircuitBreaker`].
    pub const fn has_breaker(self) -> bool {
        matches!(self, Setup::Breaker | Setup::BudgetAndBreaker)
    }
}

/// The traffic, the outage, and the settings of the budget and the breaker.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Independent callers. Each starts a call every [`interval`](Self::interval)
    /// on average, whether or not its previous call has finished (as a
    /// server handling its own users' requests does).
    pub callers: usize,
    /// The mean time between two calls of one caller; each gap is drawn
    /// uniformly from half to one and a half times it.
    pub interval: Duration,
    /// How long the provider takes to answer an attempt; each answer takes
    /// uniformly from half to one and a half times it.
    pub latency: Duration,
    /// How long the provider is healthy before the outage.
    pub before: Duration,
    /// How long the provider answers `503` to every attempt that reaches it.
    pub outage: Duration,
    /// How long the callers keep calling after the provider recovers.
    pub after: Duration,
    /// The budget's [`ratio`](RetryBudget::ratio): retries per call.
    pub budget_ratio: f64,
    /// The budget's [`min_retries_per_second`](RetryBudget::min_retries_per_second).
    pub budget_floor: u32,
    /// The budget's [`window`](RetryBudget::window).
    pub budget_window: Duration,
    /// The breaker's [`window`](CircuitBreaker::window).
    pub breaker_window: Duration,
    /// The breaker's [`break_for`](CircuitBreaker::break_for).
    pub break_for: Duration,
    /// The seed of the callers' schedule (the same for every setup, so that
    /// they all see the same traffic).
    pub seed: u64,
}

impl Default for Config {
    /// 200 callers calling once a second each (200 calls a second), 50 ms
    /// answers; healthy for 5 s, down for 10 s, healthy for 5 s more. A
    /// budget of exactly 10% (no floor of retries per second) over the
    /// default 10 s window; a breaker with the default ratio (50%) and
    /// minimum (20 calls) over a 5 s window, open for 1 s at a time.
    fn default() -> Self {
        Config {
            callers: 200,
            interval: Duration::from_secs(1),
            latency: Duration::from_millis(50),
            before: Duration::from_secs(5),
            outage: Duration::from_secs(10),
            after: Duration::from_secs(5),
            budget_ratio: 0.1,
            budget_floor: 0,
            budget_window: Duration::from_secs(10),
            breaker_window: Duration::from_secs(5),
            break_for: Duration::from_secs(1),
            seed: 42,
        }
    }
}

impl Config {
    /// How long the callers keep calling: before, during and after the
    /// outage.
    pub fn duration(&self) -> Duration {
        self.before + self.outage + self.after
    }

    /// The calls started per second, on average.
    pub fn calls_per_second(&self) -> f64 {
        self.callers as f64 / self.interval.as_secs_f64()
    }

    /// A fresh budget with these settings.
    pub fn budget(&self) -> RetryBudget {
        RetryBudget::new()
            .ratio(self.budget_ratio)
            .min_retries_per_second(self.budget_floor)
            .window(self.budget_window)
    }

    /// A fresh breaker with these settings.
    pub fn breaker(&self) -> CircuitBreaker {
        CircuitBreaker::new()
            .window(self.breaker_window)
            .break_for(self.break_for)
    }
}

/// Why a call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// The provider answered `503 Service Unavailable`.
    Unavailable,
    /// The circuit breaker refused the call: it never reached the provider.
    Open(CircuitOpen),
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Unavailable => f.write_str("HTTP 503 Service Unavailable"),
            CallError::Open(open) => open.fmt(f),
        }
    }
}

impl std::error::Error for CallError {}

impl Classify for CallError {
    fn kind(&self) -> ErrorKind {
        match self {
            CallError::Unavailable => ErrorKind::Overloaded,
            CallError::Open(open) => open.kind(),
        }
    }
}

impl From<CircuitOpen> for CallError {
    fn from(open: CircuitOpen) -> Self {
        CallError::Open(open)
    }
}

/// The simulated provider: down (every attempt gets a `503`) from
/// `down_from` until `down_until`, healthy otherwise. It counts the attempts
/// that reach it, in total, while down, and per second since it was made.
#[derive(Debug)]
pub struct Provider {
    born: Instant,
    down_from: Instant,
    down_until: Instant,
    latency: Duration,
    attempts: AtomicU64,
    attempts_while_down: AtomicU64,
    per_second: Mutex<Vec<u64>>,
}

impl Provider {
    /// A provider that goes down `down_from` after now, for `down_for`, and
    /// answers each attempt after about `latency` (uniformly from half to
    /// one and a half times it).
    pub fn new(down_from: Duration, down_for: Duration, latency: Duration) -> Self {
        let born = Instant::now();
        Provider {
            born,
            down_from: born + down_from,
            down_until: born + down_from + down_for,
            latency,
            attempts: AtomicU64::new(0),
            attempts_while_down: AtomicU64::new(0),
            per_second: Mutex::new(Vec::new()),
        }
    }

    /// One attempt: counted when it arrives, answered (`503` if it arrived
    /// while the provider was down) after the latency.
    pub async fn complete(&self) -> Result<(), CallError> {
        let now = Instant::now();
        let down = self.down_from <= now && now < self.down_until;
        self.attempts.fetch_add(1, Ordering::Relaxed);
        if down {
            self.attempts_while_down.fetch_add(1, Ordering::Relaxed);
        }
        {
            let second = (now - self.born).as_secs() as usize;
            let mut per_second = self.per_second.lock().expect("not poisoned");
            if per_second.len() <= second {
                per_second.resize(second + 1, 0);
            }
            per_second[second] += 1;
        }
        tokio::time::sleep(self.latency.mul_f64(0.5 + fastrand::f64())).await;
        if down {
            Err(CallError::Unavailable)
        } else {
            Ok(())
        }
    }

    /// The attempts that have reached the provider.
    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }

    /// The attempts that reached the provider while it was down.
    pub fn attempts_while_down(&self) -> u64 {
        self.attempts_while_down.load(Ordering::Relaxed)
    }

    /// The attempts that reached the provider in each second since it was
    /// made.
    pub fn per_second(&self) -> Vec<u64> {
        self.per_second.lock().expect("not poisoned").clone()
    }
}

/// The shared state the calls of one run are guarded by: made afresh for
/// every run, so that no run inherits another's counts. Each setup uses what
/// it needs of it.
#[derive(Debug)]
pub struct Guards {
    /// The retry budget of [`Setup::Budget`] and [`Setup::BudgetAndBreaker`].
    pub budget: RetryBudget,
    /// The circuit breaker of [`Setup::Breaker`] and [`Setup::BudgetAndBreaker`].
    pub breaker: CircuitBreaker,
}

impl Guards {
    /// A fresh budget and breaker with the settings of `config`.
    pub fn new(config: &Config) -> Self {
        Guards {
            budget: config.budget(),
            breaker: config.breaker(),
        }
    }
}

// One function per setup: the same policy, with a different set of guards.
// The guards are arguments rather than statics so that every run (and every
// test) starts from fresh ones.

#[retry(max_attempts = 5, wait = exponential(200ms, 5s))]
async fn plain(provider: &Provider) -> Result<(), CallError> {
    provider.complete().await
}

#[retry(max_attempts = 5, wait = exponential(200ms, 5s), budget = guards.budget)]
async fn budgeted(provider: &Provider, guards: &Guards) -> Result<(), CallError> {
    provider.complete().await
}

#[retry(max_attempts = 5, wait = exponential(200ms, 5s), breaker = guards.breaker)]
async fn broken(provider: &Provider, guards: &Guards) -> Result<(), CallError> {
    provider.complete().await
}

#[retry(
    max_attempts = 5,
    wait = exponential(200ms, 5s),
    budget = guards.budget,
    breaker = guards.breaker
)]
async fn guarded(provider: &Provider, guards: &Guards) -> Result<(), CallError> {
    provider.complete().await
}

/// One logical call to `provider`, retried as `setup` says.
pub async fn call(setup: Setup, provider: &Provider, guards: &Guards) -> Result<(), CallError> {
    match setup {
        Setup::Plain => plain(provider).await,
        Setup::Budget => budgeted(provider, guards).await,
        Setup::Breaker => broken(provider, guards).await,
        Setup::BudgetAndBreaker => guarded(provider, guards).await,
    }
}

/// When every call of a run starts, from the start of the run: each caller
/// starts at a random point of its first interval, then waits half to one
/// and a half intervals between calls. Sorted; the same for a given config.
pub fn schedule(config: &Config) -> Vec<Duration> {
    let mut rng = fastrand::Rng::with_seed(config.seed);
    let end = config.duration();
    let mut starts = Vec::new();
    for _ in 0..config.callers {
        let mut at = config.interval.mul_f64(rng.f64());
        while at < end {
            starts.push(at);
            at += config.interval.mul_f64(0.5 + rng.f64());
        }
    }
    starts.sort_unstable();
    starts
}

/// What one run saw. Times are from the start of the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The setup that ran.
    pub setup: Setup,
    /// Logical calls made.
    pub calls: u64,
    /// Logical calls started while the provider was down.
    pub calls_during_outage: u64,
    /// Attempts that reached the provider.
    pub attempts: u64,
    /// Attempts that reached the provider while it was down.
    pub attempts_during_outage: u64,
    /// Calls that failed, in the end.
    pub failed: u64,
    /// Of those, calls the breaker refused outright: they never reached the
    /// provider.
    pub failed_fast: u64,
    /// From the provider's recovery to the first call that succeeded
    /// (ended with an answer) after it. `None` if none did.
    pub first_success: Option<Duration>,
    /// From the provider's recovery to the start of the first window of
    /// [`RECOVERY_WINDOW`] (sliding by [`RECOVERY_STEP`] from the recovery)
    /// in which at least [`RECOVERY_SHARE`] of the calls that ended, ended
    /// in success. `None` if no such window fits in the run.
    pub recovered: Option<Duration>,
    /// The attempts that reached the provider in each second of the run.
    pub per_second: Vec<u64>,
}

impl Report {
    /// Attempts that reached the provider while it was down, per logical
    /// call started in that time: the load the callers put on it, relative
    /// to one attempt per call. Plain retries with 5 attempts make it nearly
    /// 5; a breaker that refuses calls makes it less than 1.
    pub fn amplification_during_outage(&self) -> f64 {
        ratio(self.attempts_during_outage, self.calls_during_outage)
    }

    /// Attempts per logical call over the whole run.
    pub fn amplification_overall(&self) -> f64 {
        ratio(self.attempts, self.calls)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// How one call went, from the start of the run.
#[derive(Clone, Copy, Debug)]
struct Outcome {
    started: Duration,
    ended: Duration,
    result: Result<(), CallError>,
}

/// Run the traffic of `config` against a provider that goes down, under the
/// protection of `setup`, with a fresh budget and breaker, and report. Takes
/// `config.duration()` on tokio's clock, plus the time the last calls take
/// to finish. Needs a tokio runtime with the timer enabled.
pub async fn run(setup: Setup, config: &Config) -> Report {
    let starts = schedule(config);
    let begin = Instant::now();
    let provider = Arc::new(Provider::new(config.before, config.outage, config.latency));
    let guards = Arc::new(Guards::new(config));
    let mut calls = JoinSet::new();
    for at in starts {
        tokio::time::sleep_until(begin + at).await;
        let provider = Arc::clone(&provider);
        let guards = Arc::clone(&guards);
        calls.spawn(async move {
            let started = Instant::now();
            let result = call(setup, &provider, &guards).await;
            Outcome {
                started: started - begin,
                ended: Instant::now() - begin,
                result,
            }
        });
    }
    let mut outcomes = Vec::with_capacity(calls.len());
    while let Some(outcome) = calls.join_next().await {
        outcomes.push(outcome.expect("a call panicked"));
    }
    report(setup, config, &provider, outcomes)
}

fn report(
    setup: Setup,
    config: &Config,
    provider: &Provider,
    mut outcomes: Vec<Outcome>,
) -> Report {
    let down_from = config.before;
    let down_until = config.before + config.outage;
    let calls_during_outage = outcomes
        .iter()
        .filter(|o| down_from <= o.started && o.started < down_until)
        .count() as u64;
    let failed = outcomes.iter().filter(|o| o.result.is_err()).count() as u64;
    let failed_fast = outcomes
        .iter()
        .filter(|o| matches!(o.result, Err(CallError::Open(_))))
        .count() as u64;
    outcomes.sort_by_key(|o| o.ended);
    let first_success = outcomes
        .iter()
        .find(|o| o.ended >= down_until && o.result.is_ok())
        .map(|o| o.ended - down_until);
    Report {
        setup,
        calls: outcomes.len() as u64,
        calls_during_outage,
        attempts: provider.attempts(),
        attempts_during_outage: provider.attempts_while_down(),
        failed,
        failed_fast,
        first_success,
        recovered: recovered(&outcomes, down_until, config.duration()),
        per_second: provider.per_second(),
    }
}

/// The first window start `t >= recovery` (in steps of [`RECOVERY_STEP`],
/// with the whole window before `end`) such that at least [`RECOVERY_SHARE`]
/// of the calls ending in `[t, t + RECOVERY_WINDOW)` succeeded, as a time
/// since `recovery`. `outcomes` are sorted by end.
fn recovered(outcomes: &[Outcome], recovery: Duration, end: Duration) -> Option<Duration> {
    let mut t = recovery;
    // The calls ending in [t, t + window) are outcomes[lo..hi].
    let (mut lo, mut hi) = (0, 0);
    let mut ok = 0usize;
    while t + RECOVERY_WINDOW <= end {
        while hi < outcomes.len() && outcomes[hi].ended < t + RECOVERY_WINDOW {
            ok += usize::from(outcomes[hi].result.is_ok());
            hi += 1;
        }
        while lo < hi && outcomes[lo].ended < t {
            ok -= usize::from(outcomes[lo].result.is_ok());
            lo += 1;
        }
        let ended = hi - lo;
        if ended > 0 && ok as f64 >= RECOVERY_SHARE * ended as f64 {
            return Some(t - recovery);
        }
        t += RECOVERY_STEP;
    }
    None
}
