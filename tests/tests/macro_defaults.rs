//! The macro's view of the runtime against the runtime itself.
//!
//! `#[retry]` cannot depend on `llm-resilience` (the dependency goes the other
//! way), so `llm-resilience-macros/src/defaults.rs` holds what the macro
//! needs to know of `Policy::new()` and `ErrorKind`: the defaults of its
//! arguments and which kinds are retried. That file is compiled here as it
//! is, and each entry is compared with the runtime, so that a default or a
//! kind changed on one side only fails this test.

#[allow(dead_code)]
#[path = "../../llm-resilience-macros/src/defaults.rs"]
mod macro_view;

use std::io;

use llm_resilience::{retry, ErrorKind, Jitter, KindSet, Policy, PolicyError, Wait};
use macro_view::Retried;

fn runtime_jitter(jitter: macro_view::Jitter) -> Jitter {
    match jitter {
        macro_view::Jitter::Full => Jitter::Full,
        macro_view::Jitter::Equal => Jitter::Equal,
        macro_view::Jitter::Decorrelated => Jitter::Decorrelated,
        macro_view::Jitter::None => Jitter::None,
    }
}

fn kinds(keep: impl Fn(&macro_view::Kind) -> bool) -> KindSet {
    macro_view::KINDS
        .iter()
        .filter(|k| keep(k))
        .map(|k| kind_named(k.name))
        .collect()
}

fn kind_named(name: &str) -> ErrorKind {
    ErrorKind::ALL
        .into_iter()
        .find(|k| k.name() == name)
        .unwrap_or_else(|| panic!("the macro knows a kind `{name}` that ErrorKind has not"))
}

/// `Policy::new()` is the policy the macro's defaults describe.
#[test]
fn macro_defaults_match_policy_new() {
    let described = Policy::new()
        .max_attempts(macro_view::MAX_ATTEMPTS)
        .wait(Wait::exponential_with_factor(
            macro_view::WAIT_BASE,
            macro_view::WAIT_CAP,
            macro_view::EXPONENTIAL_FACTOR,
        ))
        .jitter(runtime_jitter(macro_view::JITTER))
        .retry_on(kinds(|k| k.retried == Retried::ByDefault))
        .retry_after_cap(macro_view::RETRY_AFTER_CAP)
        .fallback_on(kinds(|k| k.falls_back));
    assert_eq!(described, Policy::new());
    assert_eq!(runtime_jitter(macro_view::JITTER), Jitter::default());

    // `exponential(BASE, CAP)` without a factor is `Wait::exponential`.
    let (base, cap) = (macro_view::WAIT_BASE, macro_view::WAIT_CAP);
    assert_eq!(
        Wait::exponential_with_factor(base, cap, macro_view::EXPONENTIAL_FACTOR),
        Wait::exponential(base, cap)
    );

    // Every jitter the macro accepts is a distinct runtime jitter.
    let names: Vec<&str> = macro_view::Jitter::NAMED.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["full", "equal", "decorrelated", "none"]);
    for (name, jitter) in macro_view::Jitter::NAMED {
        let runtime = format!("{:?}", runtime_jitter(jitter));
        assert_eq!(runtime.to_lowercase(), name, "`jitter = {name}`");
    }
}

/// The macro's kinds are `ErrorKind`'s, in its order, and it retries, refuses
/// and falls back on the same ones.
#[test]
fn macro_kinds_match_error_kind() {
    let macro_names: Vec<&str> = macro_view::KINDS.iter().map(|k| k.name).collect();
    let runtime_names: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(macro_names, runtime_names);

    for kind in &macro_view::KINDS {
        let runtime = kind_named(kind.name);
        assert_eq!(
            runtime.is_transient(),
            kind.retried == Retried::ByDefault,
            "{runtime}: retried by default"
        );
        assert_eq!(
            runtime.is_never_retried(),
            matches!(kind.retried, Retried::Never(_)),
            "{runtime}: never retried"
        );
        // `on = [Kind]` compiles exactly when the runtime accepts the policy.
        let named = Policy::new().retry_on(KindSet::empty().with(runtime));
        let accepted = !matches!(kind.retried, Retried::Never(_));
        assert_eq!(
            named.validate().is_ok(),
            accepted,
            "{runtime} in `on`: {:?}",
            named.validate()
        );
        if !accepted {
            assert_eq!(named.validate(), Err(PolicyError::NeverRetried(runtime)));
        }
    }
    assert_eq!(
        kinds(|k| k.retried == Retried::ByDefault),
        KindSet::transient()
    );
    assert_eq!(kinds(|_| true), KindSet::all());
}

// Functions whose policy is all defaults but the wait, expanded by the macro.
// Each fails with the kind it is given and counts its attempts.

#[retry(wait = none)]
fn fails_with(kind: io::ErrorKind, attempts: &mut u32) -> Result<(), io::Error> {
    *attempts += 1;
    Err(kind.into())
}

#[retry(wait = none, on = [Other])]
fn fails_with_other_named(attempts: &mut u32) -> Result<(), io::Error> {
    *attempts += 1;
    Err(io::Error::other("no kind"))
}

/// A function expanded with no `max_attempts` and no `on` makes the macro's
/// default number of attempts for its default kinds, and one for the rest.
#[test]
fn expanded_defaults_behave_as_the_macro_says() {
    for (error, kind) in [
        (io::ErrorKind::TimedOut, ErrorKind::Timeout),
        (io::ErrorKind::ConnectionReset, ErrorKind::Network),
        (io::ErrorKind::InvalidData, ErrorKind::Other),
    ] {
        let mut attempts = 0;
        let _ = fails_with(error, &mut attempts);
        let retried = macro_view::KINDS
            .iter()
            .find(|k| k.name == kind.name())
            .is_some_and(|k| k.retried == Retried::ByDefault);
        let expected = if retried { macro_view::MAX_ATTEMPTS } else { 1 };
        assert_eq!(attempts, expected, "{kind}");
    }

    let mut attempts = 0;
    let _ = fails_with_other_named(&mut attempts);
    assert_eq!(attempts, macro_view::MAX_ATTEMPTS, "Other, named in `on`");
}
