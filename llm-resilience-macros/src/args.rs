//! Parsing the arguments of `#[retry(...)]`. Every mistake is collected, so
//! that one compile reports them all.

use proc_macro2::{Span, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::{bracketed, parenthesized, Expr, Ident, Lit, LitStr, Path, Token};

use crate::duration::{self, Dur};

/// The parsed arguments. Each field remembers where it was set.
#[derive(Default)]
pub(crate) struct Args {
    pub(crate) max_attempts: Option<(u32, Span)>,
    pub(crate) wait: Option<WaitArg>,
    pub(crate) jitter: Option<(Jitter, Span)>,
    pub(crate) on: Option<Vec<KindArg>>,
    pub(crate) when: Option<Expr>,
    pub(crate) retry_after_cap: Option<Dur>,
    pub(crate) deadline: Option<(Dur, Span)>,
    pub(crate) attempt_timeout: Option<(Dur, Span)>,
    pub(crate) on_retry: Option<Expr>,
    pub(crate) clone: Option<Vec<Ident>>,
    pub(crate) krate: Option<Path>,
    pub(crate) name: Option<LitStr>,
    pub(crate) fallback: Option<syn::ExprPath>,
    pub(crate) fallback_on: Option<Vec<Ident>>,
    pub(crate) breaker: Option<(Expr, Span)>,
    pub(crate) budget: Option<(Expr, Span)>,
    pub(crate) limiter: Option<(Expr, Span)>,
    pub(crate) cost: Option<(Expr, Span)>,
    /// Every mistake found, in order.
    pub(crate) errors: Vec<syn::Error>,
}

pub(crate) enum WaitArg {
    None,
    Fixed(Dur),
    Exponential {
        base: Dur,
        cap: Dur,
        factor: Option<(f64, Span)>,
    },
}

#[derive(Clone, Copy)]
pub(crate) enum Jitter {
    Full,
    Equal,
    Decorrelated,
    None,
}

pub(crate) struct KindArg {
    pub(crate) ident: Ident,
    pub(crate) cap: Option<(u32, Span)>,
}

const ARGUMENTS: &[&str] = &[
    "max_attempts",
    "wait",
    "jitter",
    "on",
    "when",
    "retry_after_cap",
    "deadline",
    "attempt_timeout",
    "on_retry",
    "clone",
    "crate",
    "name",
    "fallback",
    "fallback_on",
    "breaker",
    "budget",
    "limiter",
    "cost",
];

pub(crate) const RETRYABLE_KINDS: &[&str] = &[
    "RateLimit",
    "Overloaded",
    "Server",
    "Timeout",
    "Network",
    "Other",
];

const ALL_KINDS: &[&str] = &[
    "RateLimit",
    "Overloaded",
    "Server",
    "Timeout",
    "Network",
    "Client",
    "Auth",
    "Quota",
    "Other",
];

const NEVER_RETRIED: &[(&str, &str)] = &[
    (
        "Client",
        "a request the provider rejects as wrong fails the same way every time",
    ),
    (
        "Auth",
        "missing or rejected credentials do not fix themselves between attempts",
    ),
    (
        "Quota",
        "an account out of credit or over its spend limit does not recover by waiting",
    ),
];

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut args = Args::default();
        while !input.is_empty() {
            if let Err(e) = args.parse_one(input) {
                args.errors.push(e);
                // Skip to the next argument.
                while !input.is_empty() && !input.peek(Token![,]) {
                    input.parse::<TokenTree>()?;
                }
            }
            if input.is_empty() {
                break;
            }
            if input.parse::<Token![,]>().is_err() {
                args.errors
                    .push(input.error("expected `,` between the arguments of #[retry]"));
            }
        }
        Ok(args)
    }
}

/// Store `value` in `slot` unless the argument was already given.
fn set_once<T>(slot: &mut Option<T>, value: T, key: &Ident) -> syn::Result<()> {
    if slot.is_some() {
        return Err(syn::Error::new(
            key.span(),
            format!("`{key}` is given more than once; keep one"),
        ));
    }
    *slot = Some(value);
    Ok(())
}

impl Args {
    fn parse_one(&mut self, input: ParseStream<'_>) -> syn::Result<()> {
        let key = Ident::parse_any(input)?;
        let name = key.to_string();
        match name.as_str() {
            "clone" => {
                let content;
                parenthesized!(content in input);
                let idents = inside(content, |c| c.parse_terminated(Ident::parse_any, Token![,]))?;
                let mut unique: Vec<Ident> = Vec::new();
                for ident in idents {
                    if ident == "self" {
                        return Err(syn::Error::new(
                            ident.span(),
                            "`self` cannot be cloned per attempt; name owned arguments only",
                        ));
                    }
                    if unique.contains(&ident) {
                        return Err(syn::Error::new(
                            ident.span(),
                            format!("`{ident}` is listed more than once in `clone(...)`"),
                        ));
                    }
                    unique.push(ident);
                }
                return set_once(&mut self.clone, unique, &key);
            }
            _ if !ARGUMENTS.contains(&name.as_str()) => {
                return Err(syn::Error::new(
                    key.span(),
                    format!(
                        "unknown argument `{name}`{}; the arguments are {}",
                        suggest(&name, ARGUMENTS),
                        list(ARGUMENTS)
                    ),
                ));
            }
            _ => {}
        }
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!("expected `{name} = ...`"),
            ));
        }
        input.parse::<Token![=]>()?;
        match name.as_str() {
            "max_attempts" => {
                let (n, span) = parse_count(input, "max_attempts")?;
                set_once(&mut self.max_attempts, (n, span), &key)
            }
            "wait" => {
                let wait = parse_wait(input)?;
                set_once(&mut self.wait, wait, &key)
            }
            "jitter" => {
                let ident = Ident::parse_any(input)?;
                let jitter = match ident.to_string().as_str() {
                    "full" => Jitter::Full,
                    "equal" => Jitter::Equal,
                    "decorrelated" => Jitter::Decorrelated,
                    "none" => Jitter::None,
                    other => {
                        return Err(syn::Error::new(
                            ident.span(),
                            format!(
                                "unknown jitter `{other}`; expected `full`, `equal`, `decorrelated` or `none`"
                            ),
                        ))
                    }
                };
                set_once(&mut self.jitter, (jitter, ident.span()), &key)
            }
            "on" => {
                let kinds = self.parse_kinds(input)?;
                set_once(&mut self.on, kinds, &key)
            }
            "when" => {
                let expr: Expr = input.parse()?;
                set_once(&mut self.when, expr, &key)
            }
            "on_retry" => {
                let expr: Expr = input.parse()?;
                set_once(&mut self.on_retry, expr, &key)
            }
            "breaker" => {
                let expr: Expr = input.parse()?;
                set_once(&mut self.breaker, (expr, key.span()), &key)
            }
            "budget" => {
                let expr: Expr = input.parse()?;
                set_once(&mut self.budget, (expr, key.span()), &key)
            }
            "limiter" => {
                let expr: Expr = input.parse()?;
                set_once(&mut self.limiter, (expr, key.span()), &key)
            }
            "cost" => {
                let expr: Expr = input.parse()?;
                set_once(&mut self.cost, (expr, key.span()), &key)
            }
            "retry_after_cap" => {
                let d = duration::parse(input, "retry_after_cap")?;
                set_once(&mut self.retry_after_cap, d, &key)
            }
            "deadline" => {
                let d = positive(duration::parse(input, "deadline")?, "deadline")?;
                set_once(&mut self.deadline, (d, key.span()), &key)
            }
            "attempt_timeout" => {
                let d = positive(
                    duration::parse(input, "attempt_timeout")?,
                    "attempt_timeout",
                )?;
                set_once(&mut self.attempt_timeout, (d, key.span()), &key)
            }
            "fallback" => {
                let path: syn::ExprPath = input.parse().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "expected the path of the function to call when this one gives up, such as `fallback = chat_claude` or `fallback = Self::chat_claude`",
                    )
                })?;
                set_once(&mut self.fallback, path, &key)
            }
            "fallback_on" => {
                let kinds = parse_fallback_kinds(input)?;
                set_once(&mut self.fallback_on, kinds, &key)
            }
            "name" => {
                let lit: LitStr = input.parse()?;
                if lit.value().is_empty() {
                    return Err(syn::Error::new(lit.span(), "`name` cannot be empty"));
                }
                set_once(&mut self.name, lit, &key)
            }
            "crate" => {
                let lit: LitStr = input.parse()?;
                let path = lit.parse::<Path>().map_err(|_| {
                    syn::Error::new(
                        lit.span(),
                        "expected the path to llm-resilience, such as `crate = \"::llm_resilience\"`",
                    )
                })?;
                set_once(&mut self.krate, path, &key)
            }
            _ => unreachable!("every argument name is matched above"),
        }
    }

    /// `[Kind, Kind(max_attempts = N), ...]`. Mistakes in single kinds are
    /// recorded and the rest of the list is still read.
    fn parse_kinds(&mut self, input: ParseStream<'_>) -> syn::Result<Vec<KindArg>> {
        if !input.peek(syn::token::Bracket) {
            return Err(
                input.error("expected a list of error kinds, such as `on = [RateLimit, Timeout]`")
            );
        }
        let content;
        bracketed!(content in input);
        inside(content, |content| self.parse_kind_list(content))
    }

    fn parse_kind_list(&mut self, content: ParseStream<'_>) -> syn::Result<Vec<KindArg>> {
        let mut kinds: Vec<KindArg> = Vec::new();
        while !content.is_empty() {
            match parse_kind(content) {
                Ok(kind) => {
                    if let Some(err) = check_kind(&kind.ident) {
                        self.errors.push(err);
                    } else if kinds.iter().any(|k| k.ident == kind.ident) {
                        self.errors.push(syn::Error::new(
                            kind.ident.span(),
                            format!("`{}` is listed more than once", kind.ident),
                        ));
                    } else {
                        kinds.push(kind);
                    }
                }
                Err(e) => {
                    self.errors.push(e);
                    while !content.is_empty() && !content.peek(Token![,]) {
                        content.parse::<TokenTree>()?;
                    }
                }
            }
            if content.is_empty() {
                break;
            }
            content.parse::<Token![,]>()?;
        }
        Ok(kinds)
    }
}

fn parse_kind(input: ParseStream<'_>) -> syn::Result<KindArg> {
    let ident = Ident::parse_any(input)?;
    let mut cap = None;
    if input.peek(syn::token::Paren) {
        let content;
        parenthesized!(content in input);
        cap = Some(inside(content, |content| {
            let key = Ident::parse_any(content)?;
            if key != "max_attempts" {
                return Err(syn::Error::new(
                    key.span(),
                    format!("a kind takes one setting, `max_attempts`: write `{ident}(max_attempts = 2)`"),
                ));
            }
            content.parse::<Token![=]>()?;
            let cap = parse_count(content, "a per-kind max_attempts")?;
            if !content.is_empty() {
                return Err(content.error("a kind takes one setting, `max_attempts`; expected `)`"));
            }
            Ok(cap)
        })?);
    }
    Ok(KindArg { ident, cap })
}

/// An error for a kind that cannot be in `on`, if it cannot.
fn check_kind(ident: &Ident) -> Option<syn::Error> {
    let name = ident.to_string();
    if RETRYABLE_KINDS.contains(&name.as_str()) {
        return None;
    }
    if let Some((_, why)) = NEVER_RETRIED.iter().find(|(k, _)| *k == name) {
        return Some(syn::Error::new(
            ident.span(),
            format!("`{name}` errors are never retried: {why}; remove it from `on`"),
        ));
    }
    Some(syn::Error::new(
        ident.span(),
        format!(
            "unknown error kind `{name}`{}; the kinds that can be retried are {}",
            suggest(&name, RETRYABLE_KINDS),
            list(RETRYABLE_KINDS)
        ),
    ))
}

/// `[Kind, ...]` for `fallback_on`: any kind, each once.
fn parse_fallback_kinds(input: ParseStream<'_>) -> syn::Result<Vec<Ident>> {
    if !input.peek(syn::token::Bracket) {
        return Err(input.error(
            "expected a list of error kinds, such as `fallback_on = [Overloaded, Server, Quota]`",
        ));
    }
    let content;
    bracketed!(content in input);
    inside(content, |content| {
        let idents = content.parse_terminated(Ident::parse_any, Token![,])?;
        let mut kinds: Vec<Ident> = Vec::new();
        for ident in idents {
            let name = ident.to_string();
            if !ALL_KINDS.contains(&name.as_str()) {
                return Err(syn::Error::new(
                    ident.span(),
                    format!(
                        "unknown error kind `{name}`{}; the kinds are {}",
                        suggest(&name, ALL_KINDS),
                        list(ALL_KINDS)
                    ),
                ));
            }
            if kinds.contains(&ident) {
                return Err(syn::Error::new(
                    ident.span(),
                    format!("`{ident}` is listed more than once"),
                ));
            }
            kinds.push(ident);
        }
        Ok(kinds)
    })
}

/// A whole number of at least 1 that fits in a `u32`.
fn parse_count(input: ParseStream<'_>, what: &str) -> syn::Result<(u32, Span)> {
    if input.peek(Token![-]) {
        let minus: Token![-] = input.parse()?;
        return Err(syn::Error::new(
            minus.span,
            format!("{what} counts attempts, so it must be at least 1"),
        ));
    }
    let lit: Lit = input.parse()?;
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

fn positive(d: Dur, what: &str) -> syn::Result<Dur> {
    if d.is_zero() {
        return Err(syn::Error::new(
            d.span,
            format!("{what} must be longer than zero"),
        ));
    }
    Ok(d)
}

fn parse_wait(input: ParseStream<'_>) -> syn::Result<WaitArg> {
    let ident = Ident::parse_any(input)?;
    match ident.to_string().as_str() {
        "none" => Ok(WaitArg::None),
        "fixed" => inside(parens(input, &ident, "fixed(200ms)")?, |content| {
            let d = duration::parse(content, "the fixed wait")?;
            end(content, "fixed(D) takes one duration")?;
            Ok(WaitArg::Fixed(d))
        }),
        "exponential" => inside(parens(input, &ident, "exponential(1, 60)")?, |content| {
            let base = duration::parse(content, "the base")?;
            content.parse::<Token![,]>()?;
            let cap = duration::parse(content, "the cap")?;
            let mut factor = None;
            if content.peek(Token![,]) {
                content.parse::<Token![,]>()?;
                if !content.is_empty() {
                    factor = Some(parse_factor(content)?);
                }
            }
            end(content, "exponential takes BASE, CAP and an optional FACTOR")?;
            if base.is_zero() {
                return Err(syn::Error::new(
                    base.span,
                    "the base of an exponential wait must be longer than zero; use `wait = none` to retry at once",
                ));
            }
            if cap.is_zero() {
                return Err(syn::Error::new(
                    cap.span,
                    "the cap of an exponential wait must be longer than zero; use `wait = none` to retry at once",
                ));
            }
            if base.nanos > cap.nanos {
                return Err(syn::Error::new(
                    base.span,
                    format!("the base ({base}) is larger than the cap ({cap}); every delay would be the cap"),
                ));
            }
            Ok(WaitArg::Exponential { base, cap, factor })
        }),
        other => Err(syn::Error::new(
            ident.span(),
            format!("unknown wait `{other}`; expected `exponential(BASE, CAP)`, `exponential(BASE, CAP, FACTOR)`, `fixed(D)` or `none`"),
        )),
    }
}

fn parens<'a>(
    input: ParseStream<'a>,
    ident: &Ident,
    example: &str,
) -> syn::Result<syn::parse::ParseBuffer<'a>> {
    if !input.peek(syn::token::Paren) {
        return Err(syn::Error::new(
            ident.span(),
            format!("`{ident}` needs its arguments, as in `{example}`"),
        ));
    }
    let content;
    parenthesized!(content in input);
    Ok(content)
}

/// Parse the inside of a group with `f`, then consume whatever is left of
/// it, so that a mistake inside is reported as itself and not as syn's
/// "unexpected token".
fn inside<T>(
    content: syn::parse::ParseBuffer<'_>,
    f: impl FnOnce(ParseStream<'_>) -> syn::Result<T>,
) -> syn::Result<T> {
    let result = f(&content);
    let _ = content.parse::<proc_macro2::TokenStream>();
    result
}

fn end(content: ParseStream<'_>, msg: &str) -> syn::Result<()> {
    if content.is_empty() {
        Ok(())
    } else {
        Err(content.error(msg))
    }
}

fn parse_factor(input: ParseStream<'_>) -> syn::Result<(f64, Span)> {
    if input.peek(Token![-]) {
        let minus: Token![-] = input.parse()?;
        return Err(syn::Error::new(
            minus.span,
            "the factor must be at least 1, or delays would shrink",
        ));
    }
    let lit: Lit = input.parse()?;
    let (value, span) = match &lit {
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
        return Err(syn::Error::new(
            span,
            "the factor must be at least 1, or delays would shrink",
        ));
    }
    Ok((value, span))
}

fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// ` (did you mean `x`?)` for the closest name, when one is close enough.
fn suggest(name: &str, names: &[&str]) -> String {
    let lower = name.to_lowercase();
    names
        .iter()
        .map(|n| (edit_distance(&lower, &n.to_lowercase()), n))
        .filter(|(d, n)| *d <= (n.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| format!(" (did you mean `{n}`?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = if ca == *cb {
                diag
            } else {
                1 + diag.min(above).min(row[j])
            };
            diag = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("Timout", RETRYABLE_KINDS),
            " (did you mean `Timeout`?)"
        );
        assert_eq!(
            suggest("ratelimit", RETRYABLE_KINDS),
            " (did you mean `RateLimit`?)"
        );
        assert_eq!(
            suggest("max_attempt", ARGUMENTS),
            " (did you mean `max_attempts`?)"
        );
        assert_eq!(suggest("xyz", RETRYABLE_KINDS), "");
    }
}
