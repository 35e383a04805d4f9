//! Behaviour of `#[retry]` on sync functions: attempt counts, exact delays,
//! jitter bounds, Retry-After, kinds that are never retried, per-kind caps,
//! deadlines on the virtual clock of `skip_sleeps`, `on_retry`, `clone(...)`,
//! `&mut self` and `attempt()`.
//!
//! Nothing here sleeps for real: every test that retries after a delay runs
//! under `llm_resilience::testing::skip_sleeps()`, which records the delays
//! instead of sleeping and moves the clock deadlines are measured on.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::time::Duration;

use llm_resilience::testing::skip_sleeps;
use llm_resilience::{
    attempt, retry, Classify, DelaySource, ErrorKind, IdempotencyKey, RetryEvent,
};

const fn s(n: u64) -> Duration {
    Duration::from_secs(n)
}

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------
// A scripted operation.

/// What one attempt does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Ok,
    Fail(ErrorKind),
    /// Fail, with the server asking to come back after the duration.
    After(ErrorKind, Duration),
}

/// The error of attempt `attempt`, so that a test can tell which attempt's
/// error came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ApiError {
    kind: ErrorKind,
    attempt: u32,
    retry_after: Option<Duration>,
}

impl Classify for ApiError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

fn err(kind: ErrorKind, attempt: u32) -> ApiError {
    ApiError {
        kind,
        attempt,
        retry_after: None,
    }
}

/// Plays `plan` one step per attempt (the last step repeats), counts calls,
/// and checks at every call that `attempt().number()` is the call's number.
struct Script {
    plan: Vec<Step>,
    calls: Cell<u32>,
}

impl Script {
    fn new(plan: impl Into<Vec<Step>>) -> Self {
        let plan = plan.into();
        assert!(!plan.is_empty());
        Script {
            plan,
            calls: Cell::new(0),
        }
    }

    fn always(kind: ErrorKind) -> Self {
        Script::new([Step::Fail(kind)])
    }

    /// `k - 1` failures of `kind`, then success.
    fn succeed_on(k: u32, kind: ErrorKind) -> Self {
        let mut plan = vec![Step::Fail(kind); k as usize - 1];
        plan.push(Step::Ok);
        Script::new(plan)
    }

    fn next(&self) -> Result<u32, ApiError> {
        let n = self.calls.get() + 1;
        self.calls.set(n);
        assert_eq!(attempt().number(), n, "attempt().number() in call {n}");
        let step = self.plan[(n as usize - 1).min(self.plan.len() - 1)];
        match step {
            Step::Ok => Ok(n),
            Step::Fail(kind) => Err(err(kind, n)),
            Step::After(kind, after) => Err(ApiError {
                kind,
                attempt: n,
                retry_after: Some(after),
            }),
        }
    }

    fn calls(&self) -> u32 {
        self.calls.get()
    }
}

/// What `on_retry` saw: attempt, kind, delay, source, and the attempt that
/// the error itself came from.
type Seen = (u32, ErrorKind, Duration, DelaySource, u32);

fn record(log: &RefCell<Vec<Seen>>, ev: &RetryEvent<'_, ApiError>) {
    log.borrow_mut().push((
        ev.attempt(),
        ev.kind(),
        ev.delay(),
        ev.source(),
        ev.error().attempt,
    ));
}

// ---------------------------------------------------------------------------
// 1. Attempt counts.

#[retry(max_attempts = 4, wait = none)]
fn four_no_wait(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[test]
fn success_on_attempt_k_calls_exactly_k_times() {
    for k in 1..=4 {
        let sleeps = skip_sleeps();
        let script = Script::succeed_on(k, ErrorKind::Server);
        assert_eq!(four_no_wait(&script), Ok(k));
        assert_eq!(script.calls(), k);
        // `wait = none` still goes through the sleep path, with zero.
        assert_eq!(sleeps.delays(), vec![Duration::ZERO; k as usize - 1]);
    }
}

/// An alias whose parameters are not `Result`'s, in `Result`'s order.
type Flipped<E, T> = Result<T, E>;

#[retry(max_attempts = 4, wait = none)]
fn four_flipped(script: &Script) -> Flipped<ApiError, u32> {
    script.next()
}

/// An alias of another name than `Result` whose error is not its second
/// parameter: the error type is read through the alias, not guessed from
/// its parameters.
type WithMeta<T, M> = Result<(T, M), ApiError>;

#[retry(max_attempts = 4, wait = none)]
fn four_with_meta(script: &Script) -> WithMeta<u32, &'static str> {
    script.next().map(|n| (n, "meta"))
}

#[test]
fn aliases_with_other_parameters_name_their_error_through_the_alias() {
    let _sleeps = skip_sleeps();
    let script = Script::succeed_on(3, ErrorKind::Server);
    assert_eq!(four_flipped(&script), Ok(3));
    let script = Script::succeed_on(2, ErrorKind::Server);
    assert_eq!(four_with_meta(&script), Ok((2, "meta")));
    let script = Script::always(ErrorKind::Server);
    assert_eq!(four_with_meta(&script).unwrap_err().attempt, 4);
}

#[test]
fn gives_up_after_max_attempts_with_the_last_error_unchanged() {
    let _sleeps = skip_sleeps();
    let script = Script::new([
        Step::Fail(ErrorKind::Server),
        Step::Fail(ErrorKind::Overloaded),
        Step::Fail(ErrorKind::Timeout),
        Step::Fail(ErrorKind::Network),
        Step::Ok,
    ]);
    assert_eq!(four_no_wait(&script), Err(err(ErrorKind::Network, 4)));
    assert_eq!(script.calls(), 4);
}

#[retry]
fn all_defaults(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[test]
fn defaults_are_three_attempts_and_full_jitter_on_exponential_1_60() {
    let sleeps = skip_sleeps();
    let mut firsts = HashSet::new();
    for _ in 0..200 {
        sleeps.clear();
        let script = Script::always(ErrorKind::RateLimit);
        assert_eq!(all_defaults(&script), Err(err(ErrorKind::RateLimit, 3)));
        assert_eq!(script.calls(), 3);
        let delays = sleeps.delays();
        assert_eq!(delays.len(), 2);
        assert!(delays[0] <= s(1), "{delays:?}");
        assert!(delays[1] <= s(2), "{delays:?}");
        firsts.insert(delays[0]);
    }
    assert!(firsts.len() > 150, "full jitter draws should vary");
}

#[test]
fn default_on_retries_each_transient_kind_and_not_other() {
    let _sleeps = skip_sleeps();
    for kind in [
        ErrorKind::RateLimit,
        ErrorKind::Overloaded,
        ErrorKind::Server,
        ErrorKind::Timeout,
        ErrorKind::Network,
    ] {
        let script = Script::always(kind);
        assert_eq!(all_defaults(&script), Err(err(kind, 3)), "{kind}");
        assert_eq!(script.calls(), 3, "{kind}");
    }
    let script = Script::always(ErrorKind::Other);
    assert_eq!(all_defaults(&script), Err(err(ErrorKind::Other, 1)));
    assert_eq!(script.calls(), 1);
}

// ---------------------------------------------------------------------------
// 2. Exact delays without jitter.

#[retry(max_attempts = 9, wait = exponential(1, 60), jitter = none)]
fn exp_1_60(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[test]
fn exponential_delays_double_then_stop_at_the_cap() {
    let sleeps = skip_sleeps();
    let script = Script::always(ErrorKind::Server);
    assert_eq!(exp_1_60(&script), Err(err(ErrorKind::Server, 9)));
    assert_eq!(script.calls(), 9);
    assert_eq!(sleeps.delays(), [1, 2, 4, 8, 16, 32, 60, 60].map(s));
    assert_eq!(sleeps.total(), s(183));
}

#[retry(max_attempts = 9, wait = exponential(1, 10, 1.5), jitter = none)]
fn exp_fractional(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[test]
fn exponential_with_a_fractional_factor() {
    let sleeps = skip_sleeps();
    let script = Script::always(ErrorKind::Server);
    assert!(exp_fractional(&script).is_err());
    assert_eq!(script.calls(), 9);
    assert_eq!(
        sleeps.delays(),
        [
            ms(1000),
            ms(1500),
            ms(2250),
            ms(3375),
            Duration::from_micros(5_062_500),
            Duration::from_micros(7_593_750),
            s(10),
            s(10),
        ]
    );
}

#[retry(max_attempts = 6, wait = exponential(250ms, 4s, 3), jitter = none)]
fn exp_ms_factor_3(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[test]
fn exponential_in_milliseconds_with_a_whole_factor() {
    let sleeps = skip_sleeps();
    let script = Script::always(ErrorKind::Timeout);
    assert!(exp_ms_factor_3(&script).is_err());
    assert_eq!(sleeps.delays(), [ms(250), ms(750), ms(2250), s(4), s(4)]);
}

#[retry(max_attempts = 4, wait = fixed(250ms))]
fn fixed_250ms(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[retry(max_attempts = 3, wait = fixed(1.5), jitter = none)]
fn fixed_bare_decimal(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[retry(max_attempts = 2, wait = fixed(2s), jitter = none)]
fn fixed_2s(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[retry(max_attempts = 2, wait = fixed(1m), jitter = none)]
fn fixed_1m(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[test]
fn fixed_delays_in_every_duration_unit() {
    let sleeps = skip_sleeps();
    // Full jitter (the default) on a fixed wait: uniform in [0, 250ms].
    assert!(fixed_250ms(&Script::always(ErrorKind::Server)).is_err());
    let delays = sleeps.delays();
    assert_eq!(delays.len(), 3);
    assert!(delays.iter().all(|d| *d <= ms(250)), "{delays:?}");

    sleeps.clear();
    assert!(fixed_bare_decimal(&Script::always(ErrorKind::Server)).is_err());
    assert_eq!(sleeps.delays(), [ms(1500), ms(1500)]);

    sleeps.clear();
    assert!(fixed_2s(&Script::always(ErrorKind::Server)).is_err());
    assert_eq!(sleeps.delays(), [s(2)]);

    sleeps.clear();
    assert!(fixed_1m(&Script::always(ErrorKind::Server)).is_err());
    assert_eq!(sleeps.delays(), [s(60)]);
}

// ---------------------------------------------------------------------------
// 3. Jitter bounds over many draws.

/// The un-jittered delays of `exponential(1, 60)` before retries 1..=10.
const EXP_1_60: [u64; 10] = [1, 2, 4, 8, 16, 32, 60, 60, 60, 60];

#[retry(max_attempts = 11, wait = exponential(1, 60), jitter = full)]
fn full_jitter(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[retry(max_attempts = 11, wait = exponential(1, 60), jitter = equal)]
fn equal_jitter(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[retry(max_attempts = 11, wait = exponential(1, 60), jitter = decorrelated)]
fn decorrelated_jitter(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

/// Runs `f` `calls` times on an always-failing script and returns the
/// delays of each call (10 per call).
fn draws(calls: usize, f: fn(&Script) -> Result<u32, ApiError>) -> Vec<Vec<Duration>> {
    let sleeps = skip_sleeps();
    (0..calls)
        .map(|_| {
            sleeps.clear();
            let script = Script::always(ErrorKind::Overloaded);
            assert_eq!(f(&script), Err(err(ErrorKind::Overloaded, 11)));
            let delays = sleeps.delays();
            assert_eq!(delays.len(), 10);
            delays
        })
        .collect()
}

fn assert_varied(all: &[Duration]) {
    let distinct: HashSet<_> = all.iter().collect();
    assert!(
        distinct.len() * 10 > all.len() * 9,
        "only {} distinct delays among {}",
        distinct.len(),
        all.len()
    );
}

#[test]
fn full_jitter_stays_within_zero_and_d() {
    let calls = draws(150, full_jitter);
    let mut ratio_sum = 0.0;
    let mut all = Vec::new();
    for delays in &calls {
        for (d, cap) in delays.iter().zip(EXP_1_60.map(s)) {
            assert!(*d <= cap, "{d:?} above {cap:?}");
            ratio_sum += d.as_secs_f64() / cap.as_secs_f64();
            all.push(*d);
        }
    }
    assert_eq!(all.len(), 1500);
    assert_varied(&all);
    // Uniform in [0, d]: the mean of delay/d is 1/2 (its standard error
    // here is under 0.01).
    let mean = ratio_sum / all.len() as f64;
    assert!((0.4..0.6).contains(&mean), "mean delay/d = {mean}");
}

#[test]
fn equal_jitter_stays_within_half_d_and_d() {
    let calls = draws(150, equal_jitter);
    let mut ratio_sum = 0.0;
    let mut all = Vec::new();
    for delays in &calls {
        for (d, cap) in delays.iter().zip(EXP_1_60.map(s)) {
            assert!(
                *d >= cap / 2 && *d <= cap,
                "{d:?} outside [{cap:?}/2, {cap:?}]"
            );
            ratio_sum += d.as_secs_f64() / cap.as_secs_f64();
            all.push(*d);
        }
    }
    assert_eq!(all.len(), 1500);
    assert_varied(&all);
    let mean = ratio_sum / all.len() as f64;
    assert!((0.7..0.8).contains(&mean), "mean delay/d = {mean}");
}

#[test]
fn decorrelated_jitter_stays_within_base_and_three_times_the_previous() {
    let calls = draws(150, decorrelated_jitter);
    let mut all = Vec::new();
    for delays in &calls {
        // `previous` starts at BASE for every call.
        let mut previous = s(1);
        for d in delays {
            let hi = (previous * 3).min(s(60));
            assert!(*d >= s(1) && *d <= hi, "{d:?} outside [1s, {hi:?}]");
            previous = *d;
            all.push(*d);
        }
        assert!(
            delays[0] <= s(3),
            "first draw {:?} above 3 * BASE",
            delays[0]
        );
    }
    assert_eq!(all.len(), 1500);
    // Draws past the cap land on it; every other draw is fresh.
    let below_cap: Vec<Duration> = all.iter().copied().filter(|d| *d < s(60)).collect();
    assert!(
        below_cap.len() > 750,
        "{} draws below the cap",
        below_cap.len()
    );
    assert_varied(&below_cap);
    // It does grow: some draw goes well past the first one's range.
    assert!(all.iter().any(|d| *d > s(10)), "decorrelated never grew");
}

#[test]
fn on_retry_reports_the_delay_actually_slept_under_jitter() {
    let sleeps = skip_sleeps();
    let log = RefCell::new(Vec::new());
    let script = Script::always(ErrorKind::Server);
    assert!(jittered_and_logged(&script, &log).is_err());
    let slept = sleeps.delays();
    let told: Vec<Duration> = log.borrow().iter().map(|seen| seen.2).collect();
    assert_eq!(slept.len(), 5);
    assert_eq!(told, slept);
}

#[retry(
    max_attempts = 6,
    wait = exponential(1, 60),
    jitter = equal,
    on_retry = |ev| record(log, ev)
)]
fn jittered_and_logged(script: &Script, log: &RefCell<Vec<Seen>>) -> Result<u32, ApiError> {
    script.next()
}

// ---------------------------------------------------------------------------
// 4. Retry-After.

#[retry(max_attempts = 2, on_retry = |ev| record(log, ev))]
fn honours_retry_after(script: &Script, log: &RefCell<Vec<Seen>>) -> Result<u32, ApiError> {
    script.next()
}

#[test]
fn retry_after_is_never_undercut_and_its_spread_is_bounded() {
    let sleeps = skip_sleeps();
    for asked in [ms(200), s(2), s(5), s(30), s(60)] {
        let spread = (asked / 10).min(s(1));
        let mut seen = HashSet::new();
        for _ in 0..300 {
            sleeps.clear();
            let log = RefCell::new(Vec::new());
            let script = Script::new([Step::After(ErrorKind::RateLimit, asked), Step::Ok]);
            assert_eq!(honours_retry_after(&script, &log), Ok(2));
            let delays = sleeps.delays();
            assert_eq!(delays.len(), 1);
            let d = delays[0];
            assert!(
                d >= asked && d <= asked + spread,
                "asked {asked:?}, slept {d:?}"
            );
            assert_eq!(
                *log.borrow(),
                [(1, ErrorKind::RateLimit, d, DelaySource::RetryAfter, 1)]
            );
            seen.insert(d);
        }
        assert!(seen.len() > 250, "spread on {asked:?} does not vary");
    }
}

#[retry(max_attempts = 4, wait = exponential(1, 60), jitter = none, retry_after_cap = 5s)]
fn retry_after_exact(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[test]
fn retry_after_with_jitter_none_is_exact() {
    let sleeps = skip_sleeps();
    let script = Script::new([
        Step::After(ErrorKind::RateLimit, ms(1300)),
        Step::After(ErrorKind::Overloaded, s(5)),
        Step::Ok,
    ]);
    assert_eq!(retry_after_exact(&script), Ok(3));
    // 5s is the cap itself: still honoured.
    assert_eq!(sleeps.delays(), [ms(1300), s(5)]);
}

#[test]
fn zero_retry_after_falls_back_to_backoff() {
    let sleeps = skip_sleeps();
    let script = Script::new([
        Step::After(ErrorKind::RateLimit, Duration::ZERO),
        Step::After(ErrorKind::RateLimit, Duration::ZERO),
        Step::Ok,
    ]);
    assert_eq!(retry_after_exact(&script), Ok(3));
    assert_eq!(sleeps.delays(), [s(1), s(2)]);
}

#[test]
fn retry_after_above_the_cap_gives_up_at_once() {
    let sleeps = skip_sleeps();
    let script = Script::new([Step::After(ErrorKind::RateLimit, ms(5001)), Step::Ok]);
    assert_eq!(
        retry_after_exact(&script),
        Err(ApiError {
            kind: ErrorKind::RateLimit,
            attempt: 1,
            retry_after: Some(ms(5001)),
        })
    );
    assert_eq!(script.calls(), 1);
    assert!(sleeps.delays().is_empty());

    // The same after a retry: the error of attempt 2 comes back.
    let script = Script::new([
        Step::Fail(ErrorKind::Server),
        Step::After(ErrorKind::Overloaded, s(6)),
        Step::Ok,
    ]);
    let e = retry_after_exact(&script).unwrap_err();
    assert_eq!(
        (e.kind, e.attempt, e.retry_after),
        (ErrorKind::Overloaded, 2, Some(s(6)))
    );
    assert_eq!(sleeps.delays(), [s(1)]);
}

#[test]
fn retry_after_cap_defaults_to_60s() {
    let sleeps = skip_sleeps();
    let log = RefCell::new(Vec::new());
    let script = Script::new([Step::After(ErrorKind::RateLimit, s(61)), Step::Ok]);
    let e = honours_retry_after(&script, &log).unwrap_err();
    assert_eq!((e.attempt, e.retry_after), (1, Some(s(61))));
    assert_eq!(script.calls(), 1);
    assert!(sleeps.delays().is_empty());
    assert!(log.borrow().is_empty(), "on_retry called on give-up");

    let script = Script::new([Step::After(ErrorKind::RateLimit, s(60)), Step::Ok]);
    assert_eq!(honours_retry_after(&script, &log), Ok(2));
    assert_eq!(sleeps.delays().len(), 1);
    assert!(sleeps.delays()[0] >= s(60) && sleeps.delays()[0] <= s(61));
}

#[retry(max_attempts = 2, jitter = none, retry_after_cap = 2m)]
fn cap_in_minutes(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[test]
fn retry_after_cap_in_minutes() {
    let sleeps = skip_sleeps();
    let script = Script::new([Step::After(ErrorKind::RateLimit, s(90)), Step::Ok]);
    assert_eq!(cap_in_minutes(&script), Ok(2));
    assert_eq!(sleeps.delays(), [s(90)]);
    let script = Script::new([Step::After(ErrorKind::RateLimit, s(121)), Step::Ok]);
    assert!(cap_in_minutes(&script).is_err());
    assert_eq!(script.calls(), 1);
    assert_eq!(sleeps.delays(), [s(90)]);
}

// ---------------------------------------------------------------------------
// 5. Kinds that are not retried, and `when`.

#[retry(
    max_attempts = 5,
    wait = none,
    on = [RateLimit, Overloaded, Server, Timeout, Network, Other],
    when = |_: &ApiError| true,
    on_retry = |ev| record(log, ev)
)]
fn retries_everything(script: &Script, log: &RefCell<Vec<Seen>>) -> Result<u32, ApiError> {
    script.next()
}

#[test]
fn client_auth_and_quota_are_called_exactly_once() {
    let sleeps = skip_sleeps();
    for kind in [ErrorKind::Client, ErrorKind::Auth, ErrorKind::Quota] {
        let log = RefCell::new(Vec::new());
        let script = Script::new([Step::After(kind, s(1)), Step::Ok]);
        let e = retries_everything(&script, &log).unwrap_err();
        assert_eq!((e.kind, e.attempt), (kind, 1));
        assert_eq!(script.calls(), 1, "{kind}");
        assert!(log.borrow().is_empty());
        // After a retried failure too.
        let script = Script::new([Step::Fail(ErrorKind::Server), Step::Fail(kind), Step::Ok]);
        assert_eq!(retries_everything(&script, &log), Err(err(kind, 2)));
        assert_eq!(script.calls(), 2, "{kind}");
    }
    assert_eq!(sleeps.delays().len(), 3);
}

#[retry(max_attempts = 3, wait = none, on = [Other])]
fn retries_other(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[retry(max_attempts = 3, wait = none, on = [RateLimit])]
fn retries_rate_limit_only(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[test]
fn other_is_retried_only_when_named_in_on() {
    let _sleeps = skip_sleeps();
    let log = RefCell::new(Vec::new());
    let script = Script::always(ErrorKind::Other);
    assert_eq!(
        retries_everything(&script, &log),
        Err(err(ErrorKind::Other, 5))
    );
    let script = Script::succeed_on(3, ErrorKind::Other);
    assert_eq!(retries_other(&script), Ok(3));
    // Not named: once (default `on`, or a list without it).
    let script = Script::always(ErrorKind::Other);
    assert_eq!(four_no_wait(&script), Err(err(ErrorKind::Other, 1)));
    let script = Script::always(ErrorKind::Other);
    assert_eq!(
        retries_rate_limit_only(&script),
        Err(err(ErrorKind::Other, 1))
    );
}

#[test]
fn a_kind_missing_from_an_explicit_on_is_not_retried() {
    let _sleeps = skip_sleeps();
    for kind in [ErrorKind::Server, ErrorKind::Timeout, ErrorKind::Overloaded] {
        let script = Script::always(kind);
        assert_eq!(retries_rate_limit_only(&script), Err(err(kind, 1)));
        // `Server` is not retried by `on = [Other]` either.
        let script = Script::always(kind);
        assert_eq!(retries_other(&script), Err(err(kind, 1)));
    }
    let script = Script::succeed_on(3, ErrorKind::RateLimit);
    assert_eq!(retries_rate_limit_only(&script), Ok(3));
}

#[retry(max_attempts = 5, wait = none, when = |e: &ApiError| e.kind != ErrorKind::Timeout)]
fn not_on_timeouts(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[retry(max_attempts = 5, wait = none, when = |e: &ApiError| e.attempt < 2)]
fn only_first_failure(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[retry(max_attempts = 5, wait = none, when = |_: &ApiError| allow.get(), on_retry = |ev| record(log, ev))]
fn gated(script: &Script, allow: &Cell<bool>, log: &RefCell<Vec<Seen>>) -> Result<u32, ApiError> {
    script.next()
}

#[test]
fn when_false_stops_retrying() {
    let _sleeps = skip_sleeps();
    let script = Script::always(ErrorKind::Timeout);
    assert_eq!(not_on_timeouts(&script), Err(err(ErrorKind::Timeout, 1)));
    let script = Script::new([
        Step::Fail(ErrorKind::Server),
        Step::Fail(ErrorKind::Server),
        Step::Fail(ErrorKind::Timeout),
        Step::Ok,
    ]);
    assert_eq!(not_on_timeouts(&script), Err(err(ErrorKind::Timeout, 3)));

    let script = Script::always(ErrorKind::Server);
    assert_eq!(only_first_failure(&script), Err(err(ErrorKind::Server, 2)));

    let log = RefCell::new(Vec::new());
    let script = Script::always(ErrorKind::Server);
    assert_eq!(
        gated(&script, &Cell::new(false), &log),
        Err(err(ErrorKind::Server, 1))
    );
    assert!(
        log.borrow().is_empty(),
        "on_retry called when `when` said no"
    );
    let script = Script::succeed_on(4, ErrorKind::Server);
    assert_eq!(gated(&script, &Cell::new(true), &log), Ok(4));
    assert_eq!(log.borrow().len(), 3);
}

// ---------------------------------------------------------------------------
// 6. Per-kind caps.

#[retry(max_attempts = 5, wait = none, on = [Timeout(max_attempts = 2), Server])]
fn timeout_capped(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[retry(
    max_attempts = 8,
    wait = none,
    on = [Timeout(max_attempts = 2), Server(max_attempts = 3), Network]
)]
fn two_caps(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[test]
fn per_kind_cap_gives_up_after_two_timeouts() {
    let _sleeps = skip_sleeps();
    let script = Script::always(ErrorKind::Timeout);
    assert_eq!(timeout_capped(&script), Err(err(ErrorKind::Timeout, 2)));
    assert_eq!(script.calls(), 2);
    // Other kinds still get the full max_attempts.
    let script = Script::always(ErrorKind::Server);
    assert_eq!(timeout_capped(&script), Err(err(ErrorKind::Server, 5)));
}

#[test]
fn per_kind_caps_count_each_kind_separately() {
    use ErrorKind::{Network as N, Server as S, Timeout as T};
    let _sleeps = skip_sleeps();
    let plan = |kinds: &[ErrorKind]| {
        let mut p: Vec<Step> = kinds.iter().map(|k| Step::Fail(*k)).collect();
        p.push(Step::Ok);
        Script::new(p)
    };

    // One timeout among servers: within its cap, succeeds.
    let script = plan(&[T, S, S, S]);
    assert_eq!(timeout_capped(&script), Ok(5));
    // The second timeout, not adjacent to the first, ends it.
    let script = plan(&[T, S, S, T]);
    assert_eq!(timeout_capped(&script), Err(err(T, 4)));
    // Servers in between do not count towards the timeout cap, and the
    // timeout does not count towards max_attempts twice.
    let script = plan(&[S, T, S, S, S]);
    assert_eq!(timeout_capped(&script), Err(err(S, 5)));

    // Two capped kinds and an uncapped one.
    let script = plan(&[S, T, S, N, N, S]);
    assert_eq!(two_caps(&script), Err(err(S, 6)));
    let script = plan(&[S, T, N, N, N, S, T]);
    assert_eq!(two_caps(&script), Err(err(T, 7)));
    let script = plan(&[S, T, N, N, N, S, N]);
    assert_eq!(two_caps(&script), Ok(8));
}

// ---------------------------------------------------------------------------
// 7. Deadline, on the virtual clock of `skip_sleeps`.

#[retry(max_attempts = 10, wait = exponential(1, 60), jitter = none, deadline = 10s)]
fn deadline_10s(script: &Script, remaining: &RefCell<Vec<Duration>>) -> Result<u32, ApiError> {
    remaining
        .borrow_mut()
        .push(attempt().remaining().expect("a deadline"));
    script.next()
}

#[test]
fn sync_deadline_stops_before_a_sleep_that_would_end_past_it() {
    let sleeps = skip_sleeps();
    let remaining = RefCell::new(Vec::new());
    let script = Script::always(ErrorKind::Server);
    // Sleeps of 1, 2 and 4 s fit in 10 s; the next (8 s, to 15 s) does not.
    assert_eq!(
        deadline_10s(&script, &remaining),
        Err(err(ErrorKind::Server, 4))
    );
    assert_eq!(script.calls(), 4);
    assert_eq!(sleeps.delays(), [1, 2, 4].map(s));
    assert!(sleeps.total() <= s(10));
    // attempt().remaining() follows the virtual clock: ~10, 9, 7, 3 s (less
    // the real time the test takes).
    let remaining = remaining.into_inner();
    let expected = [10, 9, 7, 3].map(s);
    assert_eq!(remaining.len(), 4);
    for (got, want) in remaining.iter().zip(expected) {
        assert!(
            *got <= want && want - *got < ms(500),
            "remaining {got:?}, expected about {want:?}"
        );
    }
    // Outside the call there is no deadline.
    assert_eq!(attempt().remaining(), None);
}

#[test]
fn sync_deadline_succeeds_when_it_fits() {
    let sleeps = skip_sleeps();
    let remaining = RefCell::new(Vec::new());
    let script = Script::succeed_on(4, ErrorKind::Server);
    assert_eq!(deadline_10s(&script, &remaining), Ok(4));
    assert_eq!(sleeps.delays(), [1, 2, 4].map(s));
}

#[retry(max_attempts = 5, wait = none, deadline = 3s)]
fn deadline_3s(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[test]
fn sync_deadline_refuses_a_retry_after_past_it() {
    let sleeps = skip_sleeps();
    let script = Script::new([Step::After(ErrorKind::RateLimit, s(5)), Step::Ok]);
    let e = deadline_3s(&script).unwrap_err();
    assert_eq!((e.attempt, e.retry_after), (1, Some(s(5))));
    assert_eq!(script.calls(), 1);
    assert!(sleeps.delays().is_empty());
    // A shorter one fits.
    let script = Script::new([Step::After(ErrorKind::RateLimit, s(1)), Step::Ok]);
    assert_eq!(deadline_3s(&script), Ok(2));
}

// ---------------------------------------------------------------------------
// 9. on_retry.

#[retry(max_attempts = 5, wait = exponential(1, 60), jitter = none, on_retry = |ev| record(log, ev))]
fn logged(script: &Script, log: &RefCell<Vec<Seen>>) -> Result<u32, ApiError> {
    script.next()
}

#[test]
fn on_retry_sees_each_failure_in_order() {
    let sleeps = skip_sleeps();
    let log = RefCell::new(Vec::new());
    let script = Script::new([
        Step::Fail(ErrorKind::Server),
        Step::After(ErrorKind::RateLimit, s(3)),
        Step::Fail(ErrorKind::Timeout),
        Step::Ok,
    ]);
    assert_eq!(logged(&script, &log), Ok(4));
    assert_eq!(
        *log.borrow(),
        [
            (1, ErrorKind::Server, s(1), DelaySource::Backoff, 1),
            (2, ErrorKind::RateLimit, s(3), DelaySource::RetryAfter, 2),
            // Backoff follows the attempt number, Retry-After or not.
            (3, ErrorKind::Timeout, s(4), DelaySource::Backoff, 3),
        ]
    );
    assert_eq!(sleeps.delays(), [1, 3, 4].map(s));
}

#[test]
fn on_retry_is_not_called_on_first_success_or_on_give_up() {
    let _sleeps = skip_sleeps();
    let log = RefCell::new(Vec::new());
    assert_eq!(logged(&Script::new([Step::Ok]), &log), Ok(1));
    assert!(log.borrow().is_empty());

    let script = Script::always(ErrorKind::Server);
    assert_eq!(logged(&script, &log), Err(err(ErrorKind::Server, 5)));
    // Called before the 4 sleeps, not after the 5th (last) failure.
    let attempts: Vec<u32> = log.borrow().iter().map(|seen| seen.0).collect();
    assert_eq!(attempts, [1, 2, 3, 4]);

    log.borrow_mut().clear();
    let script = Script::always(ErrorKind::Auth);
    assert!(logged(&script, &log).is_err());
    assert!(log.borrow().is_empty());
}

fn count_event(event: &RetryEvent<'_, ApiError>) {
    EVENTS.with(|e| e.set(e.get() + u64::from(event.attempt())));
}

thread_local! {
    static EVENTS: Cell<u64> = const { Cell::new(0) };
}

#[retry(max_attempts = 4, wait = none, on_retry = count_event)]
fn logged_by_path(script: &Script) -> Result<u32, ApiError> {
    script.next()
}

#[test]
fn on_retry_as_a_path_to_a_function() {
    let _sleeps = skip_sleeps();
    EVENTS.with(|e| e.set(0));
    assert_eq!(
        logged_by_path(&Script::succeed_on(4, ErrorKind::Network)),
        Ok(4)
    );
    assert_eq!(EVENTS.with(Cell::get), 1 + 2 + 3);
}

// ---------------------------------------------------------------------------
// 10. clone(...).

#[retry(max_attempts = 4, wait = none, clone(items, label))]
fn consumes(mut items: Vec<u32>, label: String, calls: &Cell<u32>) -> Result<String, ApiError> {
    let n = calls.get() + 1;
    calls.set(n);
    // Each attempt gets the caller's values, untouched by earlier attempts.
    assert_eq!(items, [1, 2, 3], "attempt {n}");
    assert_eq!(label, "x", "attempt {n}");
    items.push(n);
    let label = label + &n.to_string();
    let out = format!("{label}:{items:?}");
    drop(items);
    if n < 3 {
        return Err(err(ErrorKind::Server, n));
    }
    Ok(out)
}

#[test]
fn clone_gives_each_attempt_a_fresh_copy() {
    let _sleeps = skip_sleeps();
    let calls = Cell::new(0);
    assert_eq!(
        consumes(vec![1, 2, 3], "x".to_owned(), &calls).as_deref(),
        Ok("x3:[1, 2, 3, 3]")
    );
    assert_eq!(calls.get(), 3);
}

// ---------------------------------------------------------------------------
// 11. `&mut self`.

struct Client {
    calls: u32,
    seen: Vec<u32>,
}

impl Client {
    #[retry(max_attempts = 5, wait = none)]
    fn complete(&mut self, until: u32) -> Result<u32, ApiError> {
        self.calls += 1;
        self.seen.push(attempt().number());
        if self.calls < until {
            return Err(err(ErrorKind::Overloaded, self.calls));
        }
        Ok(self.calls)
    }
}

#[test]
fn mut_self_state_is_kept_across_attempts() {
    let _sleeps = skip_sleeps();
    let mut client = Client {
        calls: 0,
        seen: Vec::new(),
    };
    assert_eq!(client.complete(3), Ok(3));
    assert_eq!(client.calls, 3);
    assert_eq!(client.seen, [1, 2, 3]);
    // A second call continues from the state the first left.
    assert_eq!(client.complete(5), Ok(5));
    assert_eq!(client.seen, [1, 2, 3, 1, 2]);
    assert_eq!(client.complete(100), Err(err(ErrorKind::Overloaded, 10)));
    assert_eq!(client.calls, 10);
}

// ---------------------------------------------------------------------------
// 12. attempt().

#[retry(max_attempts = 3, wait = none)]
fn inner(seen: &RefCell<Vec<(&'static str, u32)>>, calls: &Cell<u32>) -> Result<(), ApiError> {
    calls.set(calls.get() + 1);
    seen.borrow_mut().push(("inner", attempt().number()));
    if calls.get() < 3 {
        return Err(err(ErrorKind::Server, calls.get()));
    }
    Ok(())
}

#[retry(max_attempts = 3, wait = none)]
fn outer(seen: &RefCell<Vec<(&'static str, u32)>>, calls: &Cell<u32>) -> Result<(), ApiError> {
    let n = attempt().number();
    seen.borrow_mut().push(("outer", n));
    if n == 2 {
        inner(seen, &Cell::new(0))?;
        // Back in the outer call, its own attempt again.
        seen.borrow_mut().push(("outer", attempt().number()));
        return Ok(());
    }
    calls.set(calls.get() + 1);
    Err(err(ErrorKind::Server, n))
}

#[test]
fn attempt_number_counts_from_one_and_nests() {
    let _sleeps = skip_sleeps();
    assert_eq!(attempt().number(), 1);
    assert!(attempt().is_first());
    assert_eq!(attempt().remaining(), None);
    let seen = RefCell::new(Vec::new());
    assert_eq!(outer(&seen, &Cell::new(0)), Ok(()));
    assert_eq!(
        *seen.borrow(),
        [
            ("outer", 1),
            ("outer", 2),
            ("inner", 1),
            ("inner", 2),
            ("inner", 3),
            ("outer", 2),
        ]
    );
    // Restored outside.
    assert_eq!(attempt().number(), 1);
}

#[retry(max_attempts = 3, wait = none)]
fn panics_on_second(calls: &Cell<u32>) -> Result<(), ApiError> {
    calls.set(calls.get() + 1);
    if calls.get() == 2 {
        panic!("attempt {} panics", attempt().number());
    }
    Err(err(ErrorKind::Server, calls.get()))
}

#[test]
fn attempt_is_restored_when_an_attempt_panics() {
    let _sleeps = skip_sleeps();
    let calls = Cell::new(0);
    let caught =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| panics_on_second(&calls)));
    let payload = caught.unwrap_err();
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("attempt 2 panics")
    );
    assert_eq!(calls.get(), 2);
    assert_eq!(attempt().number(), 1);
}

#[retry(max_attempts = 3, wait = none)]
fn keyed(keys: &RefCell<Vec<IdempotencyKey>>) -> Result<(), ApiError> {
    keys.borrow_mut().push(attempt().idempotency_key());
    let n = attempt().number();
    if n < 3 {
        return Err(err(ErrorKind::Server, n));
    }
    Ok(())
}

#[test]
fn idempotency_key_is_the_same_across_attempts_and_new_per_call() {
    let _sleeps = skip_sleeps();
    let first = RefCell::new(Vec::new());
    keyed(&first).unwrap();
    let second = RefCell::new(Vec::new());
    keyed(&second).unwrap();
    let (first, second) = (first.into_inner(), second.into_inner());
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|k| *k == first[0]));
    assert!(second.iter().all(|k| *k == second[0]));
    assert_ne!(first[0], second[0]);
}
