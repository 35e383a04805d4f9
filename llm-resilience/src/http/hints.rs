//! Reading how long a provider asked the caller to wait, from response
//! headers. Every parser here rejects what it does not understand; none
//! panics.
//!
//! Every duration-valued header goes through [`parse_decimal`], in its own
//! unit: the number is read exactly (no floating point) and converted to a
//! [`Duration`] in that unit first; a number too large for a `Duration`
//! saturates at [`LONGEST`]. Nothing else clamps, so a larger number never
//! reads as a shorter wait, and `retry-after-ms: 5000` is exactly
//! `retry-after: 5`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::HeaderMap;

/// What a well-formed wait too large for a [`Duration`] reads as:
/// `Duration::MAX`. It is above every `retry_after_cap` the `#[retry]`
/// attribute accepts (at most `u64::MAX` seconds) and every cap given to
/// `Policy::retry_after_cap` short of `Duration::MAX` itself, so the call
/// gives up at once instead of sleeping.
pub(crate) const LONGEST: Duration = Duration::MAX;

/// Nanoseconds in one of each unit the headers use.
const NS: u128 = 1;
const US: u128 = 1_000;
const MS: u128 = 1_000_000;
const S: u128 = 1_000_000_000;
const MIN: u128 = 60 * S;
const H: u128 = 3600 * S;

/// How many fractional digits count; later ones are dropped (rounding the
/// wait down by less than a nanosecond's worth of any unit used here).
const FRACTION_DIGITS: usize = 20;

/// How long the response asks the caller to wait before trying again, if it
/// says so in a form this crate understands:
///
/// 1. `retry-after-ms`: milliseconds, possibly fractional;
/// 2. `retry-after`: seconds (integer or fractional) or an HTTP-date;
/// 3. when `rate_limited` and neither is present, the providers' reset hints
///    for the limits that are exhausted (remaining `0`) or of unknown state:
///    `x-ratelimit-reset-requests` / `-tokens` (durations such as `20ms`,
///    `1s`, `6m0s`) and `anthropic-ratelimit-*-reset` (RFC 3339 times). The
///    longest one wins.
///
/// Unparseable, negative or NaN values are ignored (the next form is tried);
/// a well-formed number too large for a `Duration` is [`LONGEST`], so that
/// the policy's `retry_after_cap` gives up rather than the caller coming
/// back too soon. Zero, or a time in the past, means no wait.
pub(crate) fn retry_after(
    headers: &HeaderMap,
    rate_limited: bool,
    now: SystemTime,
) -> Option<Duration> {
    if let Some(wait) = header_str(headers, "retry-after-ms").and_then(|v| parse_decimal(v, MS)) {
        return positive(wait);
    }
    if let Some(value) = header_str(headers, "retry-after") {
        if let Some(wait) = parse_decimal(value, S) {
            return positive(wait);
        }
        if let Ok(at) = httpdate::parse_http_date(value) {
            return positive(until(at, now));
        }
    }
    if !rate_limited {
        return None;
    }
    let mut longest: Option<Duration> = None;
    let mut consider = |d: Option<Duration>| {
        if let Some(d) = d {
            longest = Some(longest.map_or(d, |l| l.max(d)));
        }
    };
    for resource in ["requests", "tokens"] {
        if exhausted(headers, &format!("x-ratelimit-remaining-{resource}")) {
            consider(
                header_str(headers, &format!("x-ratelimit-reset-{resource}"))
                    .and_then(parse_go_duration),
            );
        }
    }
    for resource in ["requests", "tokens", "input-tokens", "output-tokens"] {
        if exhausted(
            headers,
            &format!("anthropic-ratelimit-{resource}-remaining"),
        ) {
            consider(
                header_str(headers, &format!("anthropic-ratelimit-{resource}-reset"))
                    .and_then(parse_rfc3339)
                    .map(|at| until(at, now)),
            );
        }
    }
    longest.and_then(positive)
}

/// Whether a `remaining` header says the limit is used up (`0`), or says
/// nothing readable (absent, or not a count).
fn exhausted(headers: &HeaderMap, name: &str) -> bool {
    header_str(headers, name)
        .and_then(parse_count)
        .is_none_or(|n| n == 0)
}

fn positive(d: Duration) -> Option<Duration> {
    (!d.is_zero()).then_some(d)
}

/// How long from `now` until `at`; zero when `at` has passed.
pub(crate) fn until(at: SystemTime, now: SystemTime) -> Duration {
    at.duration_since(now).unwrap_or(Duration::ZERO)
}

/// A header's value as text, trimmed; `None` when absent or not UTF-8.
pub(crate) fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let value = headers.get(name)?;
    std::str::from_utf8(value.as_bytes()).ok().map(str::trim)
}

/// A count such as a `remaining` header: ASCII digits only; one too large
/// for a `u64` is `u64::MAX`.
pub(crate) fn parse_count(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

/// A non-negative decimal number of units of `unit` nanoseconds each
/// (`1`, `0.25`, `.5`, `1e3`), read exactly and converted to a [`Duration`]
/// before anything else: one too large saturates at [`LONGEST`]. Rejects
/// signs, NaN, infinity, hex and words.
pub(crate) fn parse_decimal(text: &str, unit: u128) -> Option<Duration> {
    let text = text.trim();
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return None;
    }
    // The decimal point moves right by the exponent.
    let shift = match exponent {
        None => 0,
        Some(e) if !e.is_empty() && digits(e) => e.parse::<usize>().unwrap_or(usize::MAX),
        Some(_) => return None,
    };
    let all = whole
        .bytes()
        .chain(fraction.bytes())
        .map(|b| u128::from(b - b'0'));
    let point = whole.len().saturating_add(shift);
    let (mut units, mut saturated) = (0u128, false);
    let (mut frac, mut scale) = (0u128, 1u128);
    for (i, d) in all.enumerate() {
        if i < point {
            match units.checked_mul(10).and_then(|u| u.checked_add(d)) {
                Some(u) => units = u,
                None => saturated = true,
            }
        } else if i - point < FRACTION_DIGITS {
            frac = frac * 10 + d;
            scale *= 10;
        }
    }
    // Zeros the exponent appends past the last digit.
    let mut pad = point.saturating_sub(whole.len() + fraction.len());
    while pad > 0 && units != 0 && !saturated {
        match units.checked_mul(10) {
            Some(u) => units = u,
            None => saturated = true,
        }
        pad -= 1;
    }
    if saturated {
        return Some(LONGEST);
    }
    // frac < 10^20 and unit <= 3.6e12: the product fits a u128.
    let nanos = units
        .checked_mul(unit)
        .and_then(|n| n.checked_add(frac * unit / scale));
    Some(nanos.map_or(LONGEST, from_nanos))
}

/// A `Duration` of `nanos` nanoseconds, [`LONGEST`] when that is too many.
fn from_nanos(nanos: u128) -> Duration {
    match u64::try_from(nanos / S) {
        Ok(secs) => Duration::new(secs, (nanos % S) as u32),
        Err(_) => LONGEST,
    }
}

/// A Go-style duration as OpenAI sends it: `20ms`, `1s`, `6m0s`, `1h2m3.5s`.
/// Each part is read by [`parse_decimal`] in its unit; the sum saturates at
/// [`LONGEST`].
pub(crate) fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let amount = &rest[..digits];
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "h" => H,
            "m" => MIN,
            "s" => S,
            "ms" => MS,
            "us" | "µs" | "μs" => US,
            "ns" => NS,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.saturating_add(parse_decimal(amount, unit)?);
    }
    Some(total)
}

/// An RFC 3339 time: `2026-11-29T05:30:00Z`, `2026-11-29T05:30:00.25+01:00`.
pub(crate) fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.trim().as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = std::str::from_utf8(b.get(range)?).ok()?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start).min(9)..9 {
            nanos *= 10;
        }
    }
    let offset_secs: i64 = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let h = num(i + 1..i + 3)?;
            let m = num(i + 4..i + 6)?;
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'+' {
                off
            } else {
                -off
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_764_393_000)
    }

    #[test]
    fn retry_after_forms_in_order() {
        let h = headers(&[("retry-after-ms", "50.5"), ("retry-after", "9")]);
        assert_eq!(
            retry_after(&h, true, now()),
            Some(Duration::from_micros(50_500))
        );
        let h = headers(&[("retry-after", "2")]);
        assert_eq!(retry_after(&h, true, now()), Some(Duration::from_secs(2)));
        let h = headers(&[("retry-after", "0.25")]);
        assert_eq!(
            retry_after(&h, true, now()),
            Some(Duration::from_millis(250))
        );
        let date = httpdate::fmt_http_date(now() + Duration::from_secs(30));
        let h = headers(&[("retry-after", &date)]);
        assert_eq!(retry_after(&h, true, now()), Some(Duration::from_secs(30)));
    }

    #[test]
    fn garbage_is_ignored_and_never_shortens() {
        for bad in ["-1", "NaN", "inf", "soon", "", "1s", "0x10", "+5"] {
            let h = headers(&[("retry-after", bad)]);
            assert_eq!(retry_after(&h, false, now()), None, "{bad:?}");
        }
        let h = headers(&[("retry-after", "1e300")]);
        assert_eq!(retry_after(&h, false, now()), Some(LONGEST));
        let past = httpdate::fmt_http_date(now() - Duration::from_secs(30));
        let h = headers(&[("retry-after", &past)]);
        assert_eq!(retry_after(&h, false, now()), None);
    }

    #[test]
    fn reset_hints_when_rate_limited() {
        let h = headers(&[
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", "6m0s"),
            ("x-ratelimit-remaining-tokens", "1200"),
            ("x-ratelimit-reset-tokens", "1h"),
        ]);
        assert_eq!(retry_after(&h, true, now()), Some(Duration::from_secs(360)));
        assert_eq!(retry_after(&h, false, now()), None);
        let at = "2025-11-29T05:10:20Z";
        let h = headers(&[("anthropic-ratelimit-requests-reset", at)]);
        let expected = parse_rfc3339(at).unwrap().duration_since(now()).unwrap();
        assert_eq!(retry_after(&h, true, now()), Some(expected));
    }

    #[test]
    fn decimals_convert_units_first_and_saturate() {
        let secs = |t| parse_decimal(t, S);
        assert_eq!(secs("2"), Some(Duration::from_secs(2)));
        assert_eq!(secs("0.25"), Some(Duration::from_millis(250)));
        assert_eq!(secs(".5"), Some(Duration::from_millis(500)));
        assert_eq!(secs("1e3"), Some(Duration::from_secs(1000)));
        assert_eq!(secs("1.5E2"), Some(Duration::from_secs(150)));
        assert_eq!(secs("0e999999999999999999999"), Some(Duration::ZERO));
        assert_eq!(
            secs("000000000000000000000000000000000000000001"),
            Some(Duration::from_secs(1))
        );
        assert_eq!(secs("1e300"), Some(LONGEST));
        assert_eq!(
            secs("18446744073709551615"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(secs("18446744073709551616"), Some(LONGEST));
        assert_eq!(
            secs("99999999999999999999999999999999999999999999"),
            Some(LONGEST)
        );
        // A day in milliseconds is a day, not a year's clamp divided by 1000.
        assert_eq!(
            parse_decimal("86400000", MS),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(
            parse_decimal("100000000000", MS),
            Some(Duration::from_secs(100_000_000))
        );
        assert_eq!(
            parse_decimal("0.0000001", MS),
            Some(Duration::from_nanos(0))
        );
        assert_eq!(parse_decimal("0.000001", MS), Some(Duration::from_nanos(1)));
        for bad in [
            "", ".", "-1", "+1", "1e", "e3", "1e-3", "1.2.3", "NaN", "inf", "0x10", "1 2",
        ] {
            assert_eq!(secs(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn counts_saturate() {
        assert_eq!(parse_count("30"), Some(30));
        assert_eq!(parse_count("99999999999999999999999"), Some(u64::MAX));
        for bad in ["", "-1", "1.5", "many"] {
            assert_eq!(parse_count(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("20ms"), Some(Duration::from_millis(20)));
        assert_eq!(parse_go_duration("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_go_duration("6m0s"), Some(Duration::from_secs(360)));
        assert_eq!(
            parse_go_duration("1h2m3.5s"),
            Some(Duration::from_millis(3_723_500))
        );
        assert_eq!(
            parse_go_duration("1.5h30m"),
            Some(Duration::from_secs(7200))
        );
        assert_eq!(parse_go_duration("99999999999999999999h"), Some(LONGEST));
        assert_eq!(parse_go_duration("5124095576030431h1h"), Some(LONGEST));
        for bad in ["", "5", "s", "-1s", "1x", "1.2.3s", "1e3s"] {
            assert_eq!(parse_go_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rfc3339_times() {
        let t = parse_rfc3339("1970-01-02T00:00:01Z").unwrap();
        assert_eq!(t, UNIX_EPOCH + Duration::from_secs(86_401));
        let t = parse_rfc3339("2000-03-01T01:00:00.5+01:00").unwrap();
        assert_eq!(t, UNIX_EPOCH + Duration::new(951_868_800, 500_000_000));
        for bad in [
            "2000-13-01T00:00:00Z",
            "2000-01-01 00:00:00",
            "yesterday",
            "2000-01-01T00:00:00+0100",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }
}
