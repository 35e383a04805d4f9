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
use syn::ext::IdentExt;
use syn::{Expr, ExprPath, Ident, ItemFn, Lit, LitStr, Path};

use crate::defaults::{self, Jitter, Kind, Retried};
use crate::duration::Dur;
use crate::parse::{RawArg, RawArgs, RawInterrupt, RawKinds, RawNumber, RawValue, RawWait};
use crate::suggest::{list, suggest};

mod signature;

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
    signature::check_against(func, &given, &mut errors);
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

#[cfg(test)]
mod tests;
