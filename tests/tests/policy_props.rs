//! Property tests of the retry engine over random policies and random fault
//! sequences: no delay exceeds its cap, no retry comes sooner than the
//! server's Retry-After, the deadline holds, attempt counts stay within
//! `max_attempts` and the per-kind caps, and nothing overflows or panics for
//! attempt numbers up to `u32::MAX` or durations up to `Duration::MAX`.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::cell::RefCell;
use std::time::Duration;

use llm_resilience::{testing, Classify, Elapsed, ErrorKind, Jitter, KindSet, Policy, Wait};
use proptest::prelude::*;

/// One scripted failure: its kind and the Retry-After it carries.
#[derive(Clone, Debug)]
struct Fault {
    kind: ErrorKind,
    retry_after: Option<Duration>,
}

impl Classify for Fault {
    fn kind(&self) -> ErrorKind {
        self.kind
    }

    fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl From<Elapsed> for Fault {
    fn from(_: Elapsed) -> Self {
        Fault {
            kind: ErrorKind::Timeout,
            retry_after: None,
        }
    }
}

fn kind() -> impl Strategy<Value = ErrorKind> {
    proptest::sample::select(ErrorKind::ALL.to_vec())
}

fn duration_ms(max: u64) -> impl Strategy<Value = Duration> {
    (0..=max).prop_map(Duration::from_millis)
}

fn fault() -> impl Strategy<Value = Fault> {
    (
        kind(),
        prop_oneof![
            3 => Just(None),
            2 => duration_ms(5_000).prop_map(Some),
            1 => Just(Some(Duration::MAX)),
        ],
    )
        .prop_map(|(kind, retry_after)| Fault { kind, retry_after })
}

fn wait() -> impl Strategy<Value = Wait> {
    prop_oneof![
        Just(Wait::none()),
        duration_ms(10_000).prop_map(Wait::fixed),
        (duration_ms(2_000), duration_ms(120_000), 1.0f64..5.0)
            .prop_map(|(base, cap, f)| { Wait::exponential_with_factor(base.min(cap), cap, f) }),
    ]
}

fn jitter() -> impl Strategy<Value = Jitter> {
    proptest::sample::select(vec![
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
    ])
}

/// What a random policy was built from.
#[derive(Clone, Debug)]
struct Spec {
    max_attempts: u32,
    wait: Wait,
    caps: Vec<(ErrorKind, u32)>,
    deadline: Option<Duration>,
}

/// A policy valid by construction, and what it was built from.
fn policy() -> impl Strategy<Value = (Policy, Spec)> {
    (
        1u32..12,
        wait(),
        jitter(),
        proptest::collection::vec(kind(), 0..6),
        proptest::collection::vec((kind(), 1u32..6), 0..3),
        duration_ms(10_000),
        proptest::option::of(duration_ms(120_000)),
    )
        .prop_map(|(max, wait, jitter, on, caps, ra_cap, deadline)| {
            let mut kinds = KindSet::empty();
            for k in on {
                if !k.is_never_retried() {
                    kinds = kinds.with(k);
                }
            }
            let mut policy = Policy::new()
                .max_attempts(max)
                .wait(wait)
                .jitter(jitter)
                .retry_on(kinds)
                .retry_after_cap(ra_cap);
            for &(k, cap) in &caps {
                policy = policy.kind_max_attempts(k, cap);
            }
            if let Some(d) = deadline {
                policy = policy.deadline(d);
            }
            let spec = Spec {
                max_attempts: max,
                wait,
                caps,
                deadline,
            };
            (policy, spec)
        })
}

/// Run `policy` over `script` (the faults of successive attempts; past its
/// end, attempts succeed) with sleeps skipped. Returns the faults of the
/// attempts made, the delays slept, and whether the call succeeded.
fn run(policy: &Policy, script: &[Fault]) -> (Vec<Fault>, Vec<Duration>, bool) {
    let made = RefCell::new(Vec::new());
    let sleeps = testing::skip_sleeps();
    let result = policy.call(|| {
        let n = made.borrow().len();
        match script.get(n) {
            Some(fault) => {
                made.borrow_mut().push(fault.clone());
                Err(fault.clone())
            }
            None => {
                made.borrow_mut().push(Fault {
                    kind: ErrorKind::Other,
                    retry_after: None,
                });
                Ok(())
            }
        }
    });
    (made.into_inner(), sleeps.delays(), result.is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn attempts_delays_and_deadline_stay_within_the_policy(
        (policy, spec) in policy(),
        script in proptest::collection::vec(fault(), 0..16),
    ) {
        let (made, delays, _) = run(&policy, &script);
        // One sleep between each pair of attempts.
        prop_assert_eq!(delays.len() + 1, made.len(), "{:?}", spec);
        // Attempt counts never exceed max_attempts or a per-kind cap (the
        // last cap given for a kind is the one in force).
        prop_assert!(made.len() <= spec.max_attempts as usize, "{} attempts: {:?}", made.len(), spec);
        for k in ErrorKind::ALL {
            if let Some(&(_, cap)) = spec.caps.iter().rev().find(|(k2, _)| *k2 == k) {
                let failed_with = made.iter().filter(|f| f.kind == k).count();
                prop_assert!(failed_with <= cap as usize, "{} {:?} failures: {:?}", failed_with, k, spec);
            }
        }
        // Every delay: at least the Retry-After asked (never undercut), at
        // most that plus its spread; otherwise within the wait's cap.
        let cap = spec.wait.bounds().1;
        for (i, delay) in delays.iter().enumerate() {
            match made[i].retry_after {
                Some(asked) if !asked.is_zero() => {
                    prop_assert!(*delay >= asked, "retry {} after {:?}, asked {:?}", i + 1, delay, asked);
                    let spread = (asked / 10).min(Duration::from_secs(1));
                    prop_assert!(*delay <= asked + spread, "{:?} > {:?} + {:?}", delay, asked, spread);
                }
                _ => prop_assert!(*delay <= cap, "{:?} above the cap {:?}: {:?}", delay, cap, spec),
            }
        }
        // The deadline: no sleep ends past it (attempts here take no time,
        // so the slept total is the call's time).
        if let Some(deadline) = spec.deadline {
            let total: Duration = delays.iter().sum();
            prop_assert!(total < deadline || delays.is_empty(), "slept {:?} under a deadline of {:?}", total, deadline);
        }
    }

    #[test]
    fn never_retried_kinds_make_one_attempt(
        (policy, _) in policy(),
        k in proptest::sample::select(vec![ErrorKind::Client, ErrorKind::Auth, ErrorKind::Quota]),
    ) {
        let (made, delays, ok) = run(&policy, &[Fault { kind: k, retry_after: None }]);
        prop_assert_eq!(made.len(), 1);
        prop_assert!(delays.is_empty());
        prop_assert!(!ok);
    }

    #[test]
    fn waits_never_overflow(
        base in any::<u64>(), base_nanos in 0u32..1_000_000_000,
        cap in any::<u64>(), cap_nanos in 0u32..1_000_000_000,
        factor in prop_oneof![Just(f64::NAN), Just(f64::INFINITY), Just(-1.0), 0.0f64..1e6],
        retry in prop_oneof![Just(u32::MAX), Just(u32::MAX - 1), Just(0u32), any::<u32>()],
    ) {
        let base = Duration::new(base, base_nanos);
        let cap = Duration::new(cap, cap_nanos);
        for wait in [
            Wait::exponential(base, cap),
            Wait::exponential_with_factor(base, cap, factor),
            Wait::fixed(base),
        ] {
            let d = wait.delay(retry);
            let (lo, hi) = wait.bounds();
            prop_assert!(d <= hi.max(lo));
            let _ = Policy::new().wait(wait).validate();
        }
    }
}

// ---------------------------------------------------------------------------
// Async, on tokio's paused clock: attempts that take time, cut off at the
// deadline.

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn async_calls_end_by_their_deadline(
        deadline_ms in 1u64..60_000,
        attempt_timeout_ms in proptest::option::of(1u64..30_000),
        max in 1u32..20,
        wait in wait(),
        jitter in jitter(),
        hangs in proptest::collection::vec(0u64..120_000, 1..20),
        script in proptest::collection::vec(fault(), 0..20),
    ) {
        let deadline = Duration::from_millis(deadline_ms);
        let mut policy = Policy::new()
            .max_attempts(max)
            .wait(wait)
            .jitter(jitter)
            .deadline(deadline);
        if let Some(t) = attempt_timeout_ms {
            policy = policy.attempt_timeout(Duration::from_millis(t));
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let (took, attempts) = rt.block_on(async {
            let start = tokio::time::Instant::now();
            let attempts = std::cell::Cell::new(0usize);
            let _ = policy
                .call_async(|| {
                    let n = attempts.get();
                    attempts.set(n + 1);
                    let hang = Duration::from_millis(hangs[n % hangs.len()]);
                    let outcome = script.get(n).cloned();
                    async move {
                        tokio::time::sleep(hang).await;
                        match outcome {
                            Some(fault) => Err(fault),
                            None => Ok(()),
                        }
                    }
                })
                .await;
            (start.elapsed(), attempts.get())
        });
        // Never past the deadline by more than one timer tick (1 ms).
        prop_assert!(took <= deadline + Duration::from_millis(1), "took {:?}, deadline {:?}", took, deadline);
        prop_assert!(attempts <= max as usize);
    }
}
