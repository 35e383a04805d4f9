//! Step 2: what the arguments mean, checked against each other and against
//! the function they are on.
//!
//! Turns the [`RawArgs`] of [`crate::parse`] into a [`Config`]: every value
//! checked, every kind resolved, and every argument not written filled in
//! with its default from [`crate::defaults`]. Every mistake is collected,
//! those of the syntax included, in the order of the arguments and then of
//! the checks against the function, so that one compile reports them all.

use core::time::Duration;

use proc_macro2::Span;
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Expr, ExprPath, FnArg, Ident, ItemFn, Lit, LitStr, Pat, Path, ReturnType, Type};

use crate::defaults::{self, Jitter, Kind, Retried};
use crate::duration::Dur;
use crate::parse::{RawArg, RawArgs, RawInterrupt, RawKinds, RawNumber, RawValue, RawWait};
use crate::suggest::{list, suggest};

/// The policy and everything else `#[retry]` needs to write the function:
/// fully resolved, with no default left to fill in.
pub(crate) struct Config {
    /// The path to `llm-resilience`.
    pub(crate) krate: Path,
    pub(crate) max_attempts: Setting<u32>,
    pub(crate) wait: Setting<Wait>,
    pub(crate) jitter: Setting<Jitter>,
    /// The kinds retried, each with its own cap if it has one.
    pub(crate) on: Setting<Vec<OnKind>>,
    pub(crate) retry_after_cap: Setting<Duration>,
    /// No deadline when `None`.
    pub(crate) deadline: Option<Limit>,
    /// No attempt timeout when `None`.
    pub(crate) attempt_timeout: Option<Limit>,
    /// The kinds of final error that go on to the fallback.
    pub(crate) fallback_on: Setting<Vec<Ident>>,
    /// The filter on retries; every retryable error is retried when `None`.
    pub(crate) when: Option<Expr>,
    /// The hook called before each sleep; nothing is called when `None`.
    pub(crate) on_retry: Option<Expr>,
    /// The arguments cloned afresh for each attempt, each once.
    pub(crate) clone: Vec<Ident>,
    /// The name of the call's span and metrics.
    pub(crate) name: LitStr,
    /// The function to call when this one gives up, if any.
    pub(crate) fallback: Option<ExprPath>,
    pub(crate) breaker: Option<Guard>,
    pub(crate) budget: Option<Guard>,
    pub(crate) limiter: Limiter,
    /// The tokens an attempt costs, if the call is paced on tokens.
    pub(crate) cost: Option<Expr>,
    /// How the call streams, if it does.
    pub(crate) stream: Option<Streamed>,
}

/// `stream = FORMAT` and the settings that go with it, each `None` when
/// left to `StreamOptions::new()`.
pub(crate) struct Streamed {
    /// The event format.
    pub(crate) format: Expr,
    /// Where `stream` was written.
    pub(crate) key: Span,
    pub(crate) first_event_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) stream_deadline: Option<Duration>,
    pub(crate) on_interrupt: Option<Interrupt>,
}

/// `on_interrupt = ...`.
pub(crate) enum Interrupt {
    Fail,
    Restart,
    /// `resume(name)`: the body sees what was received as `name`.
    Resume(Ident),
}

/// A policy setting and whether the attribute wrote it. Settings left to
/// their default hold the value `Policy::new()` gives them, and are not
/// written into the generated policy.
pub(crate) struct Setting<T> {
    pub(crate) value: T,
    pub(crate) written: bool,
}

impl<T> Setting<T> {
    fn resolve(given: Option<T>, default: impl FnOnce() -> T) -> Self {
        match given {
            Some(value) => Setting {
                value,
                written: true,
            },
            None => Setting {
                value: default(),
                written: false,
            },
        }
    }

    /// The value, if the attribute wrote it.
    pub(crate) fn written(&self) -> Option<&T> {
        self.written.then_some(&self.value)
    }
}

pub(crate) enum Wait {
    None,
    Fixed(Duration),
    Exponential {
        base: Duration,
        cap: Duration,
        factor: f64,
    },
}

/// A kind in `on`, as written, with its cap and where the cap was written.
pub(crate) struct OnKind {
    pub(crate) ident: Ident,
    pub(crate) cap: Option<(u32, Span)>,
}

/// `breaker`, `budget` or `limiter`: the expression, and where its argument
/// was written.
#[derive(Clone)]
pub(crate) struct Guard {
    pub(crate) expr: Expr,
    pub(crate) key: Span,
}

/// `deadline` or `attempt_timeout`: the duration, and where its argument was
/// written.
#[derive(Clone, Copy)]
pub(crate) struct Limit {
    pub(crate) duration: Duration,
    pub(crate) key: Span,
}

pub(crate) enum Limiter {
    /// No `limiter`: the function's own, off until its first `429`.
    Implicit,
    /// `limiter = none`.
    Off,
    Named(Guard),
}

/// The arguments as written and understood, before the defaults.
#[derive(Default)]
struct Given {
    max_attempts: Option<(u32, Span)>,
    wait: Option<Wait>,
    jitter: Option<Jitter>,
    on: Option<Vec<OnKind>>,
    when: Option<Expr>,
    retry_after_cap: Option<Duration>,
    deadline: Option<Limit>,
    attempt_timeout: Option<Limit>,
    on_retry: Option<Expr>,
    clone: Option<Vec<Ident>>,
    krate: Option<Path>,
    name: Option<LitStr>,
    fallback: Option<ExprPath>,
    fallback_on: Option<Vec<Ident>>,
    breaker: Option<Guard>,
    budget: Option<Guard>,
    limiter: Option<Guard>,
    cost: Option<Guard>,
    stream: Option<Guard>,
    first_event_timeout: Option<Limit>,
    idle_timeout: Option<Limit>,
    stream_deadline: Option<Limit>,
    on_interrupt: Option<(Interrupt, Span)>,
}

/// Every mistake found, in order.
#[derive(Default)]
struct Errors(Vec<syn::Error>);

impl Errors {
    fn push(&mut self, span: Span, message: impl std::fmt::Display) {
        self.0.push(syn::Error::new(span, message));
    }

    /// The value of `result`, or `None` with its error recorded.
    fn take<T>(&mut self, result: syn::Result<T>) -> Option<T> {
        result.map_err(|e| self.0.push(e)).ok()
    }
}

/// The configuration of `#[retry(...)]` on `func`, or every mistake in it.
pub(crate) fn validate(raw: RawArgs, func: &ItemFn) -> Result<Config, Vec<syn::Error>> {
    let mut errors = Errors::default();
    let mut given = Given::default();
    for item in raw.items {
        if let Some(arg) = errors.take(item) {
            given.add(arg, &mut errors);
        }
    }
    check_against(func, &given, &mut errors);
    if !errors.0.is_empty() {
        return Err(errors.0);
    }
    Ok(given.resolve(func))
}

/// Store `value` in `slot` unless the argument was already given.
fn set_once<T>(slot: &mut Option<T>, value: T, key: &Ident, errors: &mut Errors) {
    if slot.is_some() {
        errors.push(
            key.span(),
            format!("`{key}` is given more than once; keep one"),
        );
    } else {
        *slot = Some(value);
    }
}

impl Given {
    /// Take in one argument. An argument whose value is wrong is reported
    /// and left out.
    fn add(&mut self, arg: RawArg, errors: &mut Errors) {
        let RawArg { key, value } = arg;
        let guard = |expr: Expr| Guard {
            expr,
            key: key.span(),
        };
        match value {
            RawValue::MaxAttempts(n) => {
                if let Some(n) = errors.take(count(&n, "max_attempts")) {
                    set_once(&mut self.max_attempts, n, &key, errors);
                }
            }
            RawValue::Wait(wait) => {
                if let Some(wait) = resolve_wait(wait, errors) {
                    set_once(&mut self.wait, wait, &key, errors);
                }
            }
            RawValue::Jitter(ident) => {
                let name = ident.to_string();
                match Jitter::NAMED.iter().find(|(n, _)| *n == name) {
                    Some((_, jitter)) => set_once(&mut self.jitter, *jitter, &key, errors),
                    None => {
                        let names: Vec<&str> = Jitter::NAMED.iter().map(|(n, _)| *n).collect();
                        errors.push(
                            ident.span(),
                            format!("unknown jitter `{name}`; expected {}", either(&names)),
                        );
                    }
                }
            }
            RawValue::On(kinds) => {
                if let Some(kinds) = resolve_on(kinds, errors) {
                    set_once(&mut self.on, kinds, &key, errors);
                }
            }
            RawValue::When(expr) => set_once(&mut self.when, expr, &key, errors),
            RawValue::OnRetry(expr) => set_once(&mut self.on_retry, expr, &key, errors),
            RawValue::Breaker(expr) => set_once(&mut self.breaker, guard(expr), &key, errors),
            RawValue::Budget(expr) => set_once(&mut self.budget, guard(expr), &key, errors),
            RawValue::Limiter(expr) => set_once(&mut self.limiter, guard(expr), &key, errors),
            RawValue::Cost(expr) => set_once(&mut self.cost, guard(expr), &key, errors),
            RawValue::Stream(expr) => set_once(&mut self.stream, guard(expr), &key, errors),
            RawValue::FirstEventTimeout(d) => {
                if let Some(limit) = errors.take(positive(d, &key, "first_event_timeout")) {
                    set_once(&mut self.first_event_timeout, limit, &key, errors);
                }
            }
            RawValue::IdleTimeout(d) => {
                if let Some(limit) = errors.take(positive(d, &key, "idle_timeout")) {
                    set_once(&mut self.idle_timeout, limit, &key, errors);
                }
            }
            RawValue::StreamDeadline(d) => {
                if let Some(limit) = errors.take(positive(d, &key, "stream_deadline")) {
                    set_once(&mut self.stream_deadline, limit, &key, errors);
                }
            }
            RawValue::OnInterrupt(raw) => {
                if let Some(interrupt) = errors.take(interrupt(raw)) {
                    set_once(
                        &mut self.on_interrupt,
                        (interrupt, key.span()),
                        &key,
                        errors,
                    );
                }
            }
            RawValue::RetryAfterCap(d) => {
                set_once(&mut self.retry_after_cap, d.duration(), &key, errors);
            }
            RawValue::Deadline(d) => {
                if let Some(limit) = errors.take(positive(d, &key, "deadline")) {
                    set_once(&mut self.deadline, limit, &key, errors);
                }
            }
            RawValue::AttemptTimeout(d) => {
                if let Some(limit) = errors.take(positive(d, &key, "attempt_timeout")) {
                    set_once(&mut self.attempt_timeout, limit, &key, errors);
                }
            }
            RawValue::Clone(idents) => {
                let mut unique: Vec<Ident> = Vec::new();
                for ident in idents {
                    if ident == "self" {
                        errors.push(
                            ident.span(),
                            "`self` cannot be cloned per attempt; name owned arguments only",
                        );
                    } else if unique.contains(&ident) {
                        errors.push(
                            ident.span(),
                            format!("`{ident}` is listed more than once in `clone(...)`"),
                        );
                    } else {
                        unique.push(ident);
                    }
                }
                set_once(&mut self.clone, unique, &key, errors);
            }
            RawValue::Fallback(path) => set_once(&mut self.fallback, path, &key, errors),
            RawValue::FallbackOn(idents) => {
                let names: Vec<&str> = defaults::KINDS.iter().map(|k| k.name).collect();
                let mut kinds: Vec<Ident> = Vec::new();
                for ident in idents {
                    let name = ident.to_string();
                    if !names.contains(&name.as_str()) {
                        errors.push(
                            ident.span(),
                            format!(
                                "unknown error kind `{name}`{}; the kinds are {}",
                                suggest(&name, &names),
                                list(&names)
                            ),
                        );
                    } else if kinds.contains(&ident) {
                        errors.push(ident.span(), format!("`{ident}` is listed more than once"));
                    } else {
                        kinds.push(ident);
                    }
                }
                set_once(&mut self.fallback_on, kinds, &key, errors);
            }
            RawValue::Name(lit) => {
                if lit.value().is_empty() {
                    errors.push(lit.span(), "`name` cannot be empty");
                } else {
                    set_once(&mut self.name, lit, &key, errors);
                }
            }
            RawValue::Crate(path) => set_once(&mut self.krate, path, &key, errors),
        }
    }

    /// The configuration, with every default filled in.
    fn resolve(self, func: &ItemFn) -> Config {
        let limiter = match self.limiter {
            None => Limiter::Implicit,
            Some(guard) if is_none(&guard.expr) => Limiter::Off,
            Some(guard) => Limiter::Named(guard),
        };
        let kinds = |keep: fn(&Kind) -> bool| {
            defaults::KINDS
                .iter()
                .filter(|k| keep(k))
                .map(|k| Ident::new(k.name, Span::call_site()))
                .collect::<Vec<_>>()
        };
        let ident = &func.sig.ident;
        Config {
            krate: self
                .krate
                .unwrap_or_else(|| syn::parse_quote!(::llm_resilience)),
            max_attempts: Setting::resolve(self.max_attempts.map(|(n, _)| n), || {
                defaults::MAX_ATTEMPTS
            }),
            wait: Setting::resolve(self.wait, || Wait::Exponential {
                base: defaults::WAIT_BASE,
                cap: defaults::WAIT_CAP,
                factor: defaults::EXPONENTIAL_FACTOR,
            }),
            jitter: Setting::resolve(self.jitter, || defaults::JITTER),
            on: Setting::resolve(self.on, || {
                kinds(|k| k.retried == Retried::ByDefault)
                    .into_iter()
                    .map(|ident| OnKind { ident, cap: None })
                    .collect()
            }),
            retry_after_cap: Setting::resolve(self.retry_after_cap, || defaults::RETRY_AFTER_CAP),
            deadline: self.deadline,
            attempt_timeout: self.attempt_timeout,
            fallback_on: Setting::resolve(self.fallback_on, || kinds(|k| k.falls_back)),
            when: self.when,
            on_retry: self.on_retry,
            clone: self.clone.unwrap_or_default(),
            name: self
                .name
                .unwrap_or_else(|| LitStr::new(&ident.unraw().to_string(), ident.span())),
            fallback: self.fallback,
            breaker: self.breaker,
            budget: self.budget,
            limiter,
            cost: self.cost.map(|guard| guard.expr),
            stream: self.stream.map(|guard| Streamed {
                format: guard.expr,
                key: guard.key,
                first_event_timeout: self.first_event_timeout.map(|l| l.duration),
                idle_timeout: self.idle_timeout.map(|l| l.duration),
                stream_deadline: self.stream_deadline.map(|l| l.duration),
                on_interrupt: self.on_interrupt.map(|(i, _)| i),
            }),
        }
    }
}

/// What `on_interrupt = ...` asks for.
fn interrupt(raw: RawInterrupt) -> syn::Result<Interrupt> {
    let RawInterrupt { ident, binding } = raw;
    let name = ident.to_string();
    const NAMES: &[&str] = &["fail", "restart", "resume"];
    match (name.as_str(), binding) {
        ("fail", None) => Ok(Interrupt::Fail),
        ("restart", None) => Ok(Interrupt::Restart),
        ("resume", Some(binding)) => Ok(Interrupt::Resume(binding)),
        ("resume", None) => Err(syn::Error::new(
            ident.span(),
            "`resume` needs the name the body sees what was received by: write `on_interrupt = resume(received)` and build the continuation request from `received.text()`",
        )),
        ("fail" | "restart", Some(binding)) => Err(syn::Error::new(
            binding.span(),
            format!("`{name}` takes no name; only `resume(name)` does"),
        )),
        _ => Err(syn::Error::new(
            ident.span(),
            format!(
                "unknown `on_interrupt` value `{name}`{}; expected `fail` (the default: the interruption is the stream's last item), `restart` or `resume(name)`",
                suggest(&name, NAMES)
            ),
        )),
    }
}

/// `none`, as in `limiter = none`.
fn is_none(expr: &Expr) -> bool {
    matches!(expr, Expr::Path(path) if path.qself.is_none() && path.path.is_ident("none"))
}

/// `` `a`, `b` or `c` ``.
fn either(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or `{last}`", list(rest)),
        _ => list(names),
    }
}

/// A whole number of at least 1 that fits in a `u32`, and where it is.
fn count(raw: &RawNumber, what: &str) -> syn::Result<(u32, Span)> {
    let lit = match raw {
        RawNumber::Negative(minus) => {
            return Err(syn::Error::new(
                minus.span,
                format!("{what} counts attempts, so it must be at least 1"),
            ))
        }
        RawNumber::Lit(lit) => lit,
    };
    let Lit::Int(int) = lit else {
        return Err(syn::Error::new(
            lit.span(),
            format!("{what} must be a whole number of attempts, such as `3`"),
        ));
    };
    if !int.suffix().is_empty() {
        return Err(syn::Error::new(
            int.span(),
            format!("{what} is a number of attempts and takes no unit"),
        ));
    }
    let n: u32 = int
        .base10_parse()
        .map_err(|_| syn::Error::new(int.span(), format!("{what} is too large for a `u32`")))?;
    if n == 0 {
        return Err(syn::Error::new(
            int.span(),
            format!(
                "{what} must be at least 1: it counts the first attempt too (1 means no retry)"
            ),
        ));
    }
    Ok((n, int.span()))
}

/// The factor of an exponential wait: a plain number of at least 1.
fn factor(raw: &RawNumber) -> syn::Result<f64> {
    const TOO_SMALL: &str = "the factor must be at least 1, or delays would shrink";
    let lit = match raw {
        RawNumber::Negative(minus) => return Err(syn::Error::new(minus.span, TOO_SMALL)),
        RawNumber::Lit(lit) => lit,
    };
    let (value, span) = match lit {
        Lit::Int(i) if i.suffix().is_empty() => (i.base10_parse::<f64>()?, i.span()),
        Lit::Float(f) if f.suffix().is_empty() => (f.base10_parse::<f64>()?, f.span()),
        _ => {
            return Err(syn::Error::new(
                lit.span(),
                "the factor is a plain number such as `2` or `1.5`",
            ))
        }
    };
    if !(1.0..f64::INFINITY).contains(&value) {
        return Err(syn::Error::new(span, TOO_SMALL));
    }
    Ok(value)
}

fn positive(d: Dur, key: &Ident, what: &str) -> syn::Result<Limit> {
    if d.is_zero() {
        return Err(syn::Error::new(
            d.span,
            format!("{what} must be longer than zero"),
        ));
    }
    Ok(Limit {
        duration: d.duration(),
        key: key.span(),
    })
}

fn resolve_wait(wait: RawWait, errors: &mut Errors) -> Option<Wait> {
    match wait {
        RawWait::None => Some(Wait::None),
        RawWait::Fixed(d) => Some(Wait::Fixed(d.duration())),
        RawWait::Exponential { base, cap, factor } => {
            let before = errors.0.len();
            if base.is_zero() {
                errors.push(
                    base.span,
                    "the base of an exponential wait must be longer than zero; use `wait = none` to retry at once",
                );
            }
            if cap.is_zero() {
                errors.push(
                    cap.span,
                    "the cap of an exponential wait must be longer than zero; use `wait = none` to retry at once",
                );
            }
            if !base.is_zero() && !cap.is_zero() && base.nanos > cap.nanos {
                errors.push(
                    base.span,
                    format!("the base ({base}) is larger than the cap ({cap}); every delay would be the cap"),
                );
            }
            let factor = match factor {
                Some(raw) => errors.take(self::factor(&raw))?,
                None => defaults::EXPONENTIAL_FACTOR,
            };
            (errors.0.len() == before).then(|| Wait::Exponential {
                base: base.duration(),
                cap: cap.duration(),
                factor,
            })
        }
    }
}

/// The kinds of `on`, each checked: it exists, it can be retried, it is
/// listed once, its cap is a count. `None` if the list itself is broken.
fn resolve_on(raw: RawKinds, errors: &mut Errors) -> Option<Vec<OnKind>> {
    let retryable: Vec<&str> = defaults::KINDS
        .iter()
        .filter(|k| !matches!(k.retried, Retried::Never(_)))
        .map(|k| k.name)
        .collect();
    let mut kinds: Vec<OnKind> = Vec::new();
    for kind in raw.kinds {
        let Some(kind) = errors.take(kind) else {
            continue;
        };
        let cap = match &kind.cap {
            Some(raw) => match errors.take(count(raw, "a per-kind max_attempts")) {
                Some(cap) => Some(cap),
                None => continue,
            },
            None => None,
        };
        let ident = kind.ident;
        let name = ident.to_string();
        match defaults::KINDS.iter().find(|k| k.name == name) {
            Some(Kind {
                retried: Retried::Never(why),
                ..
            }) => errors.push(
                ident.span(),
                format!("`{name}` errors are never retried: {why}; remove it from `on`"),
            ),
            None => errors.push(
                ident.span(),
                format!(
                    "unknown error kind `{name}`{}; the kinds that can be retried are {}",
                    suggest(&name, &retryable),
                    list(&retryable)
                ),
            ),
            Some(_) if kinds.iter().any(|k| k.ident == ident) => {
                errors.push(ident.span(), format!("`{ident}` is listed more than once"));
            }
            Some(_) => kinds.push(OnKind { ident, cap }),
        }
    }
    match raw.broken {
        Some(e) => {
            errors.0.push(e);
            None
        }
        None => Some(kinds),
    }
}

/// The checks that need the function as well as the arguments, or several
/// arguments at once.
fn check_against(func: &ItemFn, given: &Given, errors: &mut Errors) {
    let sig = &func.sig;
    let is_async = sig.asyncness.is_some();
    if let Some(constness) = &sig.constness {
        errors.push(
            constness.span(),
            "#[retry] cannot go on a `const fn`: retrying sleeps",
        );
    }
    if !is_async {
        if let Some(limit) = &given.attempt_timeout {
            errors.push(
                limit.key,
                "`attempt_timeout` needs an `async fn`: a sync attempt cannot be cut off; use `deadline` to stop retrying, or make the function async",
            );
        }
    }
    match &sig.output {
        ReturnType::Default => errors.push(
            sig.ident.span(),
            format!(
                "#[retry] needs a function that returns a `Result`, to tell success from failure; `{}` returns `()`",
                sig.ident
            ),
        ),
        ReturnType::Type(_, ty) => {
            if let Some(msg) = return_type_problem(ty, is_async) {
                errors.0.push(syn::Error::new_spanned(ty, msg));
            }
        }
    }
    if let Some(clones) = &given.clone {
        let names = argument_names(func);
        for ident in clones {
            if !names.iter().any(|n| n == ident) {
                errors.push(
                    ident.span(),
                    format!(
                        "`clone({ident})` names no argument of `{}`; its arguments are {}",
                        sig.ident,
                        if names.is_empty() {
                            "none".to_owned()
                        } else {
                            names
                                .iter()
                                .map(|n| format!("`{n}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        }
                    ),
                );
            }
        }
    }
    if let (Some(cost), Some(limiter)) = (&given.cost, &given.limiter) {
        if is_none(&limiter.expr) {
            errors.push(
                cost.key,
                "`cost` paces the call on tokens through its limiter, and `limiter = none` gives it none: drop one of them",
            );
        }
    }
    if given.fallback.is_some() {
        for arg in &sig.inputs {
            if let FnArg::Typed(typed) = arg {
                if !matches!(&*typed.pat, Pat::Ident(p) if p.subpat.is_none()) {
                    errors.0.push(syn::Error::new_spanned(
                        &typed.pat,
                        "`fallback` passes the arguments on by name: give this argument a plain name and destructure it in the body",
                    ));
                }
            }
        }
    } else if let Some(first) = given.fallback_on.iter().flatten().next() {
        errors.push(
            first.span(),
            "`fallback_on` has no effect without `fallback = path::to::function`",
        );
    }
    check_stream(func, given, errors);
    let max = given
        .max_attempts
        .map_or(defaults::MAX_ATTEMPTS, |(n, _)| n);
    for kind in given.on.iter().flatten() {
        if let Some((cap, span)) = kind.cap {
            if cap > max {
                errors.push(
                    span,
                    format!(
                        "`{}(max_attempts = {cap})` can never apply: the call makes at most {max} attempts{}",
                        kind.ident,
                        if given.max_attempts.is_some() { "" } else { " (the default max_attempts)" }
                    ),
                );
            }
        }
    }
}

/// `stream = ...` and the arguments that go with it.
fn check_stream(func: &ItemFn, given: &Given, errors: &mut Errors) {
    let sig = &func.sig;
    let Some(stream) = &given.stream else {
        let only = [
            (
                "first_event_timeout",
                given.first_event_timeout.map(|l| l.key),
            ),
            ("idle_timeout", given.idle_timeout.map(|l| l.key)),
            ("stream_deadline", given.stream_deadline.map(|l| l.key)),
            (
                "on_interrupt",
                given.on_interrupt.as_ref().map(|(_, key)| *key),
            ),
        ];
        for (name, key) in only {
            if let Some(key) = key {
                errors.push(
                    key,
                    format!("`{name}` applies to streamed calls only: add `stream = OpenAi` (or the event format of the provider) to retry the stream until its first content event"),
                );
            }
        }
        return;
    };
    if sig.asyncness.is_none() {
        errors.push(
            stream.key,
            "`stream` needs an `async fn` whose body opens the stream: `async fn chat(...) -> Result<RetriedStream<'_, E>, E>`",
        );
    }
    if let Some(fallback) = &given.fallback {
        errors.0.push(syn::Error::new_spanned(
            fallback,
            "`fallback` does not apply to streamed calls: the answer may already be half shown when the call fails; call the other provider's streamed function when this one returns an error",
        ));
    }
    if let Some(first) = given.clone.iter().flatten().next() {
        errors.push(
            first.span(),
            "with `stream`, every argument is cloned for each attempt already (the stream may reopen after the function returned): drop `clone(...)`",
        );
    }
    for arg in &sig.inputs {
        match arg {
            FnArg::Receiver(r) if r.reference.is_none() || r.mutability.is_some() => {
                errors.0.push(syn::Error::new_spanned(
                    r,
                    "with `stream`, a method takes `&self`: the stream may reopen after the function returned, so the receiver is shared, not moved or borrowed mutably",
                ));
            }
            FnArg::Typed(typed) => {
                if !matches!(&*typed.pat, Pat::Ident(p) if p.subpat.is_none() && p.by_ref.is_none())
                {
                    errors.0.push(syn::Error::new_spanned(
                        &typed.pat,
                        "with `stream`, each argument is cloned by name for each attempt: give this argument a plain name and destructure it in the body",
                    ));
                } else if matches!(&*typed.ty, Type::Reference(r) if r.mutability.is_some()) {
                    errors.0.push(syn::Error::new_spanned(
                        &typed.ty,
                        "with `stream`, arguments are cloned for each attempt, and a `&mut` cannot be: pass a shared reference or an owned value that is `Clone`",
                    ));
                }
            }
            FnArg::Receiver(_) => {}
        }
    }
}

/// Why `ty` cannot be the return type of a retried function, if it cannot.
fn return_type_problem(ty: &Type, is_async: bool) -> Option<String> {
    match ty {
        Type::Path(path) => {
            let last = path.path.segments.last()?;
            let name = last.ident.to_string();
            if !is_async && matches!(name.as_str(), "Pin" | "BoxFuture" | "LocalBoxFuture") {
                return Some(FUTURE_MESSAGE.to_owned());
            }
            if path.qself.is_none() && name == "Option" {
                return Some(format!(
                    "#[retry] needs a function that returns a `Result`, to tell success from failure, not `{}`: return `Result<T, E>` with an error type that implements `llm_resilience::Classify`",
                    pretty(ty)
                ));
            }
            None
        }
        Type::Paren(inner) => return_type_problem(&inner.elem, is_async),
        Type::Group(inner) => return_type_problem(&inner.elem, is_async),
        Type::ImplTrait(bounds) => {
            let is_future = bounds.bounds.iter().any(|b| match b {
                syn::TypeParamBound::Trait(t) => t
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "Future"),
                _ => false,
            });
            Some(if is_future && !is_async {
                FUTURE_MESSAGE.to_owned()
            } else {
                "#[retry] needs a function that returns a `Result`, to tell success from failure; an `impl Trait` return type hides it".to_owned()
            })
        }
        _ => Some(format!(
            "#[retry] needs a function that returns a `Result`, to tell success from failure, not `{}`",
            pretty(ty)
        )),
    }
}

const FUTURE_MESSAGE: &str = "#[retry] cannot retry a future built by hand (such as `#[async_trait]` output): write the function as an `async fn` (async fn in traits is stable since Rust 1.75), or put #[retry] on an async fn that this one calls";

/// A type as a person would write it: `&Result<u32, io::Error>`, not
/// `& Result < u32 , io :: Error >`.
fn pretty(ty: &Type) -> String {
    let text = ty.to_token_stream().to_string();
    let mut out = String::with_capacity(text.len());
    for (i, part) in text.split(' ').enumerate() {
        let prev = out.chars().last();
        let glue = i == 0
            || matches!(part, "<" | ">" | "::" | "," | ")" | "]")
            || matches!(prev, Some('<' | '&' | ':' | '(' | '['))
            || part.starts_with("::");
        if !glue {
            out.push(' ');
        }
        out.push_str(part);
    }
    out
}

fn argument_names(func: &ItemFn) -> Vec<Ident> {
    let mut names = Vec::new();
    for arg in &func.sig.inputs {
        if let FnArg::Typed(typed) = arg {
            bindings(&typed.pat, &mut names);
        }
    }
    names
}

/// Every name a pattern binds.
fn bindings(pat: &Pat, out: &mut Vec<Ident>) {
    match pat {
        Pat::Ident(p) => {
            out.push(p.ident.clone());
            if let Some((_, sub)) = &p.subpat {
                bindings(sub, out);
            }
        }
        Pat::Tuple(t) => t.elems.iter().for_each(|p| bindings(p, out)),
        Pat::TupleStruct(t) => t.elems.iter().for_each(|p| bindings(p, out)),
        Pat::Struct(s) => s.fields.iter().for_each(|f| bindings(&f.pat, out)),
        Pat::Slice(s) => s.elems.iter().for_each(|p| bindings(p, out)),
        Pat::Reference(r) => bindings(&r.pat, out),
        Pat::Paren(p) => bindings(&p.pat, out),
        Pat::Type(t) => bindings(&t.pat, out),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
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
}
