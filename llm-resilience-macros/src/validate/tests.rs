//! The validation of the attribute's arguments, on parsed input.

use quote::ToTokens;

use super::*;

fn config(args: proc_macro2::TokenStream, func: ItemFn) -> Config {
    match validate(crate::parse::parse(args), &func) {
        Ok(config) => config,
        Err(errors) => panic!(
            "{:?}",
            errors.iter().map(ToString::to_string).collect::<Vec<_>>()
        ),
    }
}

fn errors(args: proc_macro2::TokenStream, func: ItemFn) -> Vec<String> {
    match validate(crate::parse::parse(args), &func) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn defaults_are_filled_in_and_marked_unwritten() {
    let func: ItemFn = syn::parse_quote!(
        fn r#chat() -> Result<(), E> {
            Ok(())
        }
    );
    let config = config(quote::quote!(), func);
    assert_eq!(config.max_attempts.value, defaults::MAX_ATTEMPTS);
    assert!(config.max_attempts.written().is_none());
    assert!(matches!(
        config.wait.value,
        Wait::Exponential { base, cap, factor }
            if base == defaults::WAIT_BASE && cap == defaults::WAIT_CAP && factor == defaults::EXPONENTIAL_FACTOR
    ));
    assert_eq!(config.jitter.value, defaults::JITTER);
    let on: Vec<String> = config
        .on
        .value
        .iter()
        .map(|k| k.ident.to_string())
        .collect();
    assert_eq!(
        on,
        ["RateLimit", "Overloaded", "Server", "Timeout", "Network"]
    );
    assert_eq!(config.retry_after_cap.value, defaults::RETRY_AFTER_CAP);
    let fallback_on: Vec<String> = config
        .fallback_on
        .value
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        fallback_on,
        [
            "RateLimit",
            "Overloaded",
            "Server",
            "Timeout",
            "Network",
            "Quota",
            "Other"
        ]
    );
    assert_eq!(config.name.value(), "chat");
    assert_eq!(
        config.krate.to_token_stream().to_string(),
        ":: llm_resilience"
    );
    assert!(matches!(config.limiter, Limiter::Implicit));
}

#[test]
fn written_values_are_resolved() {
    let func: ItemFn = syn::parse_quote!(
        async fn chat() -> Result<(), E> {
            Ok(())
        }
    );
    let config = config(
        quote::quote!(
            max_attempts = 5,
            wait = exponential(500ms, 8s),
            jitter = none,
            limiter = none,
            on = [Timeout(max_attempts = 2), Other]
        ),
        func,
    );
    assert_eq!(config.max_attempts.written(), Some(&5));
    assert!(matches!(
        config.wait.written(),
        Some(Wait::Exponential { base, cap, factor })
            if *base == Duration::from_millis(500) && *cap == Duration::from_secs(8) && *factor == defaults::EXPONENTIAL_FACTOR
    ));
    assert_eq!(config.jitter.written(), Some(&Jitter::None));
    let on: Vec<(String, Option<u32>)> = config
        .on
        .value
        .iter()
        .map(|k| (k.ident.to_string(), k.cap.map(|(n, _)| n)))
        .collect();
    assert_eq!(
        on,
        [("Timeout".to_owned(), Some(2)), ("Other".to_owned(), None)]
    );
    assert!(matches!(config.limiter, Limiter::Off));
}

#[test]
fn every_mistake_is_reported() {
    let func: ItemFn = syn::parse_quote!(
        fn chat(a: String) -> Result<(), E> {
            Ok(())
        }
    );
    let errors = errors(
        quote::quote!(
            wait = exponential(0, 0, 0.5),
            clone(self, b, a, a),
            fallback_on = [Nope, Auth, Auth]
        ),
        func,
    );
    assert_eq!(
        errors,
        [
            "the base of an exponential wait must be longer than zero; use `wait = none` to retry at once",
            "the cap of an exponential wait must be longer than zero; use `wait = none` to retry at once",
            "the factor must be at least 1, or delays would shrink",
            "`self` cannot be cloned per attempt; name owned arguments only",
            "`a` is listed more than once in `clone(...)`",
            "unknown error kind `Nope`; the kinds are `RateLimit`, `Overloaded`, `Server`, `Timeout`, `Network`, `Client`, `Auth`, `Quota`, `Other`",
            "`Auth` is listed more than once",
            "`clone(b)` names no argument of `chat`; its arguments are `a`",
            "`fallback_on` has no effect without `fallback = path::to::function`",
        ]
    );
}
