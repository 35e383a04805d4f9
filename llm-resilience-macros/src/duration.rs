//! Duration literals: `1`, `0.5`, `500ms`, `1.5s`, `2m`.

use core::time::Duration;

use proc_macro2::Span;
use quote::ToTokens;
use syn::parse::ParseStream;
use syn::{Lit, Token};

/// A duration written in the attribute, with where it was written.
#[derive(Clone, Copy)]
pub(crate) struct Dur {
    pub(crate) nanos: u128,
    pub(crate) span: Span,
}

impl Dur {
    /// The duration. [`parse`] keeps it within what a `Duration` holds.
    pub(crate) fn duration(self) -> Duration {
        Duration::new(
            (self.nanos / 1_000_000_000) as u64,
            (self.nanos % 1_000_000_000) as u32,
        )
    }

    pub(crate) fn is_zero(self) -> bool {
        self.nanos == 0
    }
}

impl std::fmt::Display for Dur {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.nanos;
        if n % 60_000_000_000 == 0 && n != 0 {
            write!(f, "{}m", n / 60_000_000_000)
        } else if n % 1_000_000_000 == 0 {
            write!(f, "{}s", n / 1_000_000_000)
        } else if n % 1_000_000 == 0 {
            write!(f, "{}ms", n / 1_000_000)
        } else {
            write!(f, "{}ns", n)
        }
    }
}

const MAX_NANOS: u128 = u64::MAX as u128 * 1_000_000_000;

const EXPECTED: &str =
    "expected a duration: a number of seconds (`1`, `0.5`) or a number with `ms`, `s` or `m` (`500ms`, `1.5s`, `2m`)";

/// Parse a duration literal. `what` names the argument in messages.
pub(crate) fn parse(input: ParseStream<'_>, what: &str) -> syn::Result<Dur> {
    if input.peek(Token![-]) {
        let minus: Token![-] = input.parse()?;
        let tail: proc_macro2::TokenTree = input.parse()?;
        let mut tokens = minus.to_token_stream();
        tail.to_tokens(&mut tokens);
        return Err(syn::Error::new_spanned(
            tokens,
            format!("{what} cannot be negative"),
        ));
    }
    let lit: Lit = match input.parse() {
        Ok(lit) => lit,
        Err(e) => return Err(syn::Error::new(e.span(), EXPECTED)),
    };
    let (digits, suffix, span) = match &lit {
        Lit::Int(i) => (
            i.base10_digits().to_owned(),
            i.suffix().to_owned(),
            i.span(),
        ),
        Lit::Float(f) => (
            f.base10_digits().to_owned(),
            f.suffix().to_owned(),
            f.span(),
        ),
        other => return Err(syn::Error::new(other.span(), EXPECTED)),
    };
    let unit: u128 = match suffix.as_str() {
        "" | "s" => 1_000_000_000,
        "ms" => 1_000_000,
        "m" => 60_000_000_000,
        other => {
            return Err(syn::Error::new(
                span,
                format!(
                    "unknown duration unit `{other}` in {what}: use `ms`, `s` or `m` (as in `500ms`, `1.5s`, `2m`), or no unit for seconds"
                ),
            ))
        }
    };
    let nanos = decimal_times(&digits, unit).ok_or_else(|| {
        syn::Error::new(
            span,
            format!("{what} is too large: at most about 584 years"),
        )
    })?;
    if nanos > MAX_NANOS {
        return Err(syn::Error::new(
            span,
            format!("{what} is too large: at most about 584 years"),
        ));
    }
    Ok(Dur { nanos, span })
}

/// `digits * unit`, exactly, for a decimal such as `1.25` or `3e2`. Sub-
/// nanosecond remainders are dropped.
fn decimal_times(digits: &str, unit: u128) -> Option<u128> {
    let (mantissa, exp) = match digits.find(['e', 'E']) {
        Some(i) => (&digits[..i], digits[i + 1..].parse::<i32>().ok()?),
        None => (digits, 0),
    };
    let (whole, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut value: u128 = 0;
    for c in whole.chars().chain(frac.chars()) {
        let d = c.to_digit(10)?;
        value = value.checked_mul(10)?.checked_add(u128::from(d))?;
    }
    let scale = exp - i32::try_from(frac.len()).ok()?;
    let mut nanos = value.checked_mul(unit)?;
    if scale >= 0 {
        nanos = nanos.checked_mul(10u128.checked_pow(scale as u32)?)?;
    } else {
        let div = 10u128.checked_pow(scale.unsigned_abs());
        nanos = match div {
            Some(div) => nanos / div,
            None => 0,
        };
    }
    Some(nanos)
}

#[cfg(test)]
mod tests {
    use super::decimal_times;

    #[test]
    fn decimals_are_exact() {
        const S: u128 = 1_000_000_000;
        assert_eq!(decimal_times("1", S), Some(S));
        assert_eq!(decimal_times("0.5", S), Some(S / 2));
        assert_eq!(decimal_times("1.5", 1_000_000), Some(1_500_000));
        assert_eq!(decimal_times("0.1", S), Some(100_000_000));
        assert_eq!(decimal_times("2e3", 1_000_000), Some(2_000_000_000));
        assert_eq!(decimal_times("1e-12", S), Some(0));
        assert_eq!(decimal_times("1e99", S), None);
    }
}
