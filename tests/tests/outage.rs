//! The outage simulation of `examples::outage` (the `outage` example) on
//! tokio's paused clock: plain retries multiply the load on a provider that
//! is down by the number of attempts, a 10% retry budget holds it to about
//! 1.1 attempts per call, and an open circuit breaker fails calls fast
//! without reaching the provider, then lets them through once it recovers.
//! Times are virtual: every test runs in well under a second.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::sync::Arc;
use std::time::Duration;

use examples::outage::{call, run, CallError, Config, Guards, Provider, Report, Setup};
use llm_resilience::BreakerState;
use tokio::task::JoinSet;

/// Attempts per call that a budget of exactly 10% may exceed 1.1 by: the
/// rounding of its window to buckets.
const TOLERANCE: f64 = 0.01;

/// A provider that is down for the whole run, so that no healthy calls made
/// before the outage lend the budget their share: 50 calls a second for a
/// minute, a budget of exactly 10% (no floor).
fn total_outage() -> Config {
    Config {
        callers: 50,
        before: Duration::ZERO,
        outage: Duration::from_secs(60),
        after: Duration::ZERO,
        budget_ratio: 0.1,
        budget_floor: 0,
        ..Config::default()
    }
}

/// The example's own scenario (healthy 5 s, down 10 s, healthy 5 s), with
/// fewer callers.
fn outage_and_recovery() -> Config {
    Config {
        callers: 50,
        ..Config::default()
    }
}

fn describe(report: &Report) -> String {
    format!(
        "{}: {} attempts while down for {} calls ({:.3}), {} failed ({} fast)",
        report.setup.name(),
        report.attempts_during_outage,
        report.calls_during_outage,
        report.amplification_during_outage(),
        report.failed,
        report.failed_fast,
    )
}

#[tokio::test(start_paused = true)]
async fn plain_retries_multiply_the_load_by_the_attempts() {
    let report = run(Setup::Plain, &total_outage()).await;
    let amplification = report.amplification_during_outage();
    // Every call makes 5 attempts; those started in the last second or two
    // make some of theirs after the run's minute.
    assert!(
        (4.8..=5.0).contains(&amplification),
        "{}",
        describe(&report)
    );
    // Nothing succeeds but the retries of calls started in the last seconds,
    // which land after the outage.
    assert!(
        report.failed as f64 >= 0.95 * report.calls as f64,
        "{}",
        describe(&report)
    );
    assert_eq!(report.failed_fast, 0);
}

#[tokio::test(start_paused = true)]
async fn a_ten_percent_budget_holds_the_load_to_one_point_one_attempts_per_call() {
    let report = run(Setup::Budget, &total_outage()).await;
    let amplification = report.amplification_during_outage();
    assert!(amplification <= 1.1 + TOLERANCE, "{}", describe(&report));
    // It does let retries through: 10% of the calls, not none.
    assert!(amplification >= 1.08, "{}", describe(&report));
}

#[tokio::test(start_paused = true)]
async fn a_budget_and_a_breaker_together_stay_within_the_budget() {
    let report = run(Setup::BudgetAndBreaker, &total_outage()).await;
    assert!(
        report.amplification_during_outage() <= 1.1 + TOLERANCE,
        "{}",
        describe(&report)
    );
}

#[tokio::test(start_paused = true)]
async fn an_open_breaker_fails_calls_fast_without_reaching_the_provider() {
    let config = total_outage();
    let provider = Arc::new(Provider::new(
        Duration::ZERO,
        Duration::from_secs(3600),
        config.latency,
    ));
    let guards = Arc::new(Guards::new(&config));
    // 25 calls at once: their first attempts fail together, and the 20th
    // failure (20 calls min, 50%) opens the breaker. (One call at a time
    // would not do: with its backoff, one caller's attempts may never fill
    // the 5 s window with 20.)
    let mut calls = JoinSet::new();
    for _ in 0..25 {
        let (provider, guards) = (Arc::clone(&provider), Arc::clone(&guards));
        calls.spawn(async move { call(Setup::Breaker, &provider, &guards).await });
    }
    // Each ends with its 503, or, if the breaker opened while its retry
    // slept, with the refusal of that retry.
    while let Some(result) = calls.join_next().await {
        let result = result.expect("no panic");
        assert!(
            matches!(result, Err(CallError::Unavailable | CallError::Open(_))),
            "{result:?}"
        );
    }
    assert!(
        matches!(guards.breaker.state(), BreakerState::Open { .. }),
        "{:?}",
        guards.breaker
    );
    let before = provider.attempts();
    for _ in 0..100 {
        match call(Setup::Breaker, &provider, &guards).await {
            Err(CallError::Open(open)) => assert!(open.retry_in().is_some()),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(provider.attempts(), before, "refused calls reach no one");
}

#[tokio::test(start_paused = true)]
async fn over_a_long_outage_the_breaker_lets_through_little_but_probes() {
    let config = total_outage();
    let report = run(Setup::Breaker, &config).await;
    // It opens within the first second or so; after that, the provider sees
    // one probe per break (1 s) and the retries of the few calls admitted
    // just before it opened.
    assert!(
        report.amplification_during_outage() < 0.1,
        "{}",
        describe(&report)
    );
    assert!(
        report.failed_fast as f64 >= 0.9 * report.calls as f64,
        "{}",
        describe(&report)
    );
}

#[tokio::test(start_paused = true)]
async fn calls_succeed_again_soon_after_the_provider_recovers() {
    let config = outage_and_recovery();
    for setup in Setup::ALL {
        let report = run(setup, &config).await;
        let first = report
            .first_success
            .expect("a call succeeds after recovery");
        let recovered = report.recovered.expect("95% of calls succeed again");
        // Without a breaker, the retries and new calls in flight at the
        // recovery succeed at once; with one, calls fail fast until its break
        // ends and a probe succeeds.
        let bound = if setup.has_breaker() {
            config.break_for + config.latency * 4
        } else {
            config.latency * 4
        };
        assert!(
            first <= bound && recovered <= bound,
            "{}: first success after {first:?}, 95% after {recovered:?}",
            setup.name()
        );
        assert!(report.calls > 0 && report.failed < report.calls);
    }
}

#[tokio::test(start_paused = true)]
async fn plain_retries_against_a_healthy_provider_cost_one_attempt_per_call() {
    let config = Config {
        callers: 20,
        outage: Duration::ZERO,
        ..Config::default()
    };
    for setup in Setup::ALL {
        let report = run(setup, &config).await;
        assert_eq!(report.attempts, report.calls, "{}", setup.name());
        assert_eq!(report.failed, 0, "{}", setup.name());
    }
}
