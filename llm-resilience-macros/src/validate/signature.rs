//! The checks that need the function as well as the arguments: what the
//! attribute can go on (sync or async, its receiver, its arguments, its
//! return type), and the settings that only make sense on some functions
//! (a streamed call's, an attempt timeout's).

use quote::ToTokens;
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, Pat, ReturnType, Type};

use super::{is_none, Errors, Given};
use crate::defaults;

/// The checks that need the function as well as the arguments, or several
/// arguments at once.
pub(super) fn check_against(func: &ItemFn, given: &Given, errors: &mut Errors) {
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
