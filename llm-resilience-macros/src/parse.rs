//! Step 1: the syntax of `#[retry(...)]`.
//!
//! Reads the arguments as written, with their spans, and checks only their
//! shape: the argument names, `=`, brackets and parentheses, literals and
//! expressions. What the values mean (a count of zero, an unknown kind, a
//! base above its cap, an argument given twice) is for [`crate::validate`].
//!
//! A mistake in one argument is recorded in its place and the parser goes on
//! to the next, so that one compile reports every mistake.

use proc_macro2::{TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{bracketed, parenthesized, Expr, ExprPath, Ident, Lit, LitStr, Path, Token};

use crate::duration::{self, Dur};

/// The arguments, in the order written.
pub(crate) struct RawArgs {
    pub(crate) items: Vec<Parsed<RawArg>>,
}

/// A piece of syntax, or why it could not be read.
pub(crate) type Parsed<T> = Result<T, syn::Error>;

/// One argument: `key = value`, or `clone(...)`.
pub(crate) struct RawArg {
    pub(crate) key: Ident,
    pub(crate) value: RawValue,
}

pub(crate) enum RawValue {
    MaxAttempts(RawNumber),
    Wait(RawWait),
    Jitter(Ident),
    On(RawKinds),
    When(Expr),
    RetryAfterCap(Dur),
    Deadline(Dur),
    AttemptTimeout(Dur),
    OnRetry(Expr),
    Clone(Vec<Ident>),
    Crate(Path),
    Name(LitStr),
    Fallback(ExprPath),
    FallbackOn(Vec<Ident>),
    Breaker(Expr),
    Budget(Expr),
    Limiter(Expr),
    Cost(Expr),
    Stream(Expr),
    FirstEventTimeout(Dur),
    IdleTimeout(Dur),
    StreamDeadline(Dur),
    OnInterrupt(RawInterrupt),
}

/// `on_interrupt = fail`, `restart` or `resume(name)`, as written.
pub(crate) struct RawInterrupt {
    pub(crate) ident: Ident,
    /// The name bound to what was received, in `resume(name)`.
    pub(crate) binding: Option<Ident>,
}

/// A number as written: a literal, or a minus sign (whatever follows it).
pub(crate) enum RawNumber {
    Negative(Token![-]),
    Lit(Lit),
}

pub(crate) enum RawWait {
    None,
    Fixed(Dur),
    Exponential {
        base: Dur,
        cap: Dur,
        factor: Option<RawNumber>,
    },
}

/// The list of `on = [...]`: each kind read on its own, then the mistake
/// that ended the list early, if one did.
pub(crate) struct RawKinds {
    pub(crate) kinds: Vec<Parsed<RawKind>>,
    pub(crate) broken: Option<syn::Error>,
}

/// `Kind` or `Kind(max_attempts = N)` in `on = [...]`.
pub(crate) struct RawKind {
    pub(crate) ident: Ident,
    pub(crate) cap: Option<RawNumber>,
}

/// Every argument name, in the order messages list them.
pub(crate) const ARGUMENTS: &[&str] = &[
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
    "stream",
    "first_event_timeout",
    "idle_timeout",
    "stream_deadline",
    "on_interrupt",
];

/// Read the arguments of `#[retry(...)]`. Never fails: every mistake is an
/// item of the result.
pub(crate) fn parse(args: TokenStream) -> RawArgs {
    let parser = |input: ParseStream<'_>| -> syn::Result<RawArgs> {
        let mut items = Vec::new();
        while !input.is_empty() {
            let item = parse_arg(input);
            if item.is_err() {
                // Skip to the next argument.
                while !input.is_empty() && !input.peek(Token![,]) {
                    input.parse::<TokenTree>()?;
                }
            }
            items.push(item);
            if input.is_empty() {
                break;
            }
            if input.parse::<Token![,]>().is_err() {
                items.push(Err(
                    input.error("expected `,` between the arguments of #[retry]")
                ));
            }
        }
        Ok(RawArgs { items })
    };
    parser.parse2(args).unwrap_or_else(|e| RawArgs {
        items: vec![Err(e)],
    })
}

fn parse_arg(input: ParseStream<'_>) -> syn::Result<RawArg> {
    let key = Ident::parse_any(input)?;
    let name = key.to_string();
    match name.as_str() {
        "clone" => {
            let content;
            parenthesized!(content in input);
            let idents = inside(content, |c| c.parse_terminated(Ident::parse_any, Token![,]))?;
            let value = RawValue::Clone(idents.into_iter().collect());
            return Ok(RawArg { key, value });
        }
        _ if !ARGUMENTS.contains(&name.as_str()) => {
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "unknown argument `{name}`{}; the arguments are {}",
                    crate::suggest::suggest(&name, ARGUMENTS),
                    crate::suggest::list(ARGUMENTS)
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
    let value = match name.as_str() {
        "max_attempts" => RawValue::MaxAttempts(parse_number(input)?),
        "wait" => RawValue::Wait(parse_wait(input)?),
        "jitter" => RawValue::Jitter(Ident::parse_any(input)?),
        "on" => RawValue::On(parse_kinds(input)?),
        "when" => RawValue::When(input.parse()?),
        "on_retry" => RawValue::OnRetry(input.parse()?),
        "breaker" => RawValue::Breaker(input.parse()?),
        "budget" => RawValue::Budget(input.parse()?),
        "limiter" => RawValue::Limiter(input.parse()?),
        "cost" => RawValue::Cost(input.parse()?),
        "stream" => RawValue::Stream(input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected the event format of the stream, such as `stream = OpenAi` or `stream = Anthropic` (from `llm_resilience::stream`)",
            )
        })?),
        "first_event_timeout" => {
            RawValue::FirstEventTimeout(duration::parse(input, "first_event_timeout")?)
        }
        "idle_timeout" => RawValue::IdleTimeout(duration::parse(input, "idle_timeout")?),
        "stream_deadline" => RawValue::StreamDeadline(duration::parse(input, "stream_deadline")?),
        "on_interrupt" => RawValue::OnInterrupt(parse_interrupt(input)?),
        "retry_after_cap" => RawValue::RetryAfterCap(duration::parse(input, "retry_after_cap")?),
        "deadline" => RawValue::Deadline(duration::parse(input, "deadline")?),
        "attempt_timeout" => {
            RawValue::AttemptTimeout(duration::parse(input, "attempt_timeout")?)
        }
        "fallback" => RawValue::Fallback(input.parse().map_err(|e| {
            syn::Error::new(
                e.span(),
                "expected the path of the function to call when this one gives up, such as `fallback = chat_claude` or `fallback = Self::chat_claude`",
            )
        })?),
        "fallback_on" => RawValue::FallbackOn(parse_fallback_kinds(input)?),
        "name" => RawValue::Name(input.parse()?),
        "crate" => {
            let lit: LitStr = input.parse()?;
            RawValue::Crate(lit.parse::<Path>().map_err(|_| {
                syn::Error::new(
                    lit.span(),
                    "expected the path to llm-resilience, such as `crate = \"::llm_resilience\"`",
                )
            })?)
        }
        _ => unreachable!("every argument name is matched above"),
    };
    Ok(RawArg { key, value })
}

/// `[Kind, Kind(max_attempts = N), ...]`. A mistake in one kind is recorded
/// in its place and the rest of the list is still read.
fn parse_kinds(input: ParseStream<'_>) -> syn::Result<RawKinds> {
    if !input.peek(syn::token::Bracket) {
        return Err(
            input.error("expected a list of error kinds, such as `on = [RateLimit, Timeout]`")
        );
    }
    let content;
    bracketed!(content in input);
    inside(content, |content| {
        let mut kinds = Vec::new();
        while !content.is_empty() {
            let kind = parse_kind(content);
            if kind.is_err() {
                while !content.is_empty() && !content.peek(Token![,]) {
                    content.parse::<TokenTree>()?;
                }
            }
            kinds.push(kind);
            if content.is_empty() {
                break;
            }
            if let Err(e) = content.parse::<Token![,]>() {
                return Ok(RawKinds {
                    kinds,
                    broken: Some(e),
                });
            }
        }
        Ok(RawKinds {
            kinds,
            broken: None,
        })
    })
}

fn parse_kind(input: ParseStream<'_>) -> syn::Result<RawKind> {
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
            let cap = parse_number(content)?;
            if !content.is_empty() && !matches!(cap, RawNumber::Negative(_)) {
                return Err(content.error("a kind takes one setting, `max_attempts`; expected `)`"));
            }
            Ok(cap)
        })?);
    }
    Ok(RawKind { ident, cap })
}

/// `fail`, `restart` or `resume(name)` for `on_interrupt`. Which names are
/// known is for [`crate::validate`].
fn parse_interrupt(input: ParseStream<'_>) -> syn::Result<RawInterrupt> {
    let ident = Ident::parse_any(input)?;
    let mut binding = None;
    if input.peek(syn::token::Paren) {
        let content;
        parenthesized!(content in input);
        binding = Some(inside(content, |content| {
            let name = Ident::parse_any(content)?;
            end(
                content,
                "`resume(name)` takes one name, bound in the body to what was received",
            )?;
            Ok(name)
        })?);
    }
    Ok(RawInterrupt { ident, binding })
}

/// `[Kind, ...]` for `fallback_on`.
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
        Ok(idents.into_iter().collect())
    })
}

/// A number literal, or a minus sign: a negative number is a mistake of
/// meaning, reported at the sign, and whatever follows the sign is skipped.
fn parse_number(input: ParseStream<'_>) -> syn::Result<RawNumber> {
    if input.peek(Token![-]) {
        let minus: Token![-] = input.parse()?;
        while !input.is_empty() && !input.peek(Token![,]) {
            input.parse::<TokenTree>()?;
        }
        return Ok(RawNumber::Negative(minus));
    }
    Ok(RawNumber::Lit(input.parse()?))
}

fn parse_wait(input: ParseStream<'_>) -> syn::Result<RawWait> {
    let ident = Ident::parse_any(input)?;
    match ident.to_string().as_str() {
        "none" => Ok(RawWait::None),
        "fixed" => inside(parens(input, &ident, "fixed(200ms)")?, |content| {
            let d = duration::parse(content, "the fixed wait")?;
            end(content, "fixed(D) takes one duration")?;
            Ok(RawWait::Fixed(d))
        }),
        "exponential" => inside(parens(input, &ident, "exponential(1, 60)")?, |content| {
            let base = duration::parse(content, "the base")?;
            content.parse::<Token![,]>()?;
            let cap = duration::parse(content, "the cap")?;
            let mut factor = None;
            if content.peek(Token![,]) {
                content.parse::<Token![,]>()?;
                if !content.is_empty() {
                    factor = Some(parse_number(content)?);
                }
            }
            if !matches!(factor, Some(RawNumber::Negative(_))) {
                end(content, "exponential takes BASE, CAP and an optional FACTOR")?;
            }
            Ok(RawWait::Exponential { base, cap, factor })
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
    let _ = content.parse::<TokenStream>();
    result
}

fn end(content: ParseStream<'_>, msg: &str) -> syn::Result<()> {
    if content.is_empty() {
        Ok(())
    } else {
        Err(content.error(msg))
    }
}
