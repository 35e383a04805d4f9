//! Duration-valued headers (`retry-after`, `retry-after-ms`, the reset
//! headers): read in their own unit first, exactly; a well-formed number too
//! large for a `Duration` is the longest wait, which makes the call give up
//! under any `retry_after_cap`; garbage is no wait given. And waits are shown
//! to people rounded.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::cmp::Ordering;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};
use llm_resilience::http::{requests_remaining, retry_after, HttpError};
use llm_resilience::testing::skip_sleeps;
use llm_resilience::{retry, Classify, ErrorKind, Jitter, Policy};
use proptest::prelude::*;

const DAY: Duration = Duration::from_secs(86_400);

/// Above every cap `#[retry(retry_after_cap = ...)]` accepts.
const ABOVE_ANY_MACRO_CAP: Duration = Duration::from_secs(u64::MAX);

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

/// The wait a 429 with this one header asks for; zero when it asks none.
fn wait_429(name: &'static str, value: &str) -> Duration {
    retry_after(StatusCode::TOO_MANY_REQUESTS, &headers(&[(name, value)])).unwrap_or_default()
}

/// The order of two decimal digit strings as numbers.
fn cmp_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// `whole.fraction` times 1000, as a decimal string.
fn times_1000(whole: &str, fraction: &str) -> String {
    let padded = format!("{fraction:0<3}");
    let (shifted, rest) = padded.split_at(3);
    if rest.is_empty() {
        format!("{whole}{shifted}")
    } else {
        format!("{whole}{shifted}.{rest}")
    }
}

/// The families of duration headers, each with how a number `n` is written
/// in it.
const FAMILIES: &[(&str, &str)] = &[
    ("retry-after", ""),
    ("retry-after-ms", ""),
    ("x-ratelimit-reset-requests", "h"),
    ("x-ratelimit-reset-requests", "m"),
    ("x-ratelimit-reset-requests", "s"),
    ("x-ratelimit-reset-tokens", "ms"),
    ("x-ratelimit-reset-tokens", "us"),
    ("x-ratelimit-reset-tokens", "ns"),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn a_larger_number_never_reads_as_a_shorter_wait(
        family in 0..FAMILIES.len(),
        a in "[0-9]{1,45}",
        b in "[0-9]{1,45}",
    ) {
        let (name, unit) = FAMILIES[family];
        let (wa, wb) = (wait_429(name, &format!("{a}{unit}")), wait_429(name, &format!("{b}{unit}")));
        match cmp_digits(&a, &b) {
            Ordering::Less => prop_assert!(wa <= wb, "{a}{unit} -> {wa:?}, {b}{unit} -> {wb:?}"),
            Ordering::Equal => prop_assert_eq!(wa, wb),
            Ordering::Greater => prop_assert!(wa >= wb, "{a}{unit} -> {wa:?}, {b}{unit} -> {wb:?}"),
        }
        // Only zero asks for no wait.
        prop_assert_eq!(wa.is_zero(), a.trim_start_matches('0').is_empty());
    }

    #[test]
    fn a_number_too_large_for_a_duration_is_the_longest_wait(
        family in 0..FAMILIES.len(),
        digits in "[1-9][0-9]{30,80}",
    ) {
        let (name, unit) = FAMILIES[family];
        let wait = wait_429(name, &format!("{digits}{unit}"));
        prop_assert_eq!(wait, Duration::MAX);
        prop_assert!(wait > ABOVE_ANY_MACRO_CAP);
    }

    #[test]
    fn milliseconds_and_seconds_agree(whole in "[0-9]{1,30}", fraction in "[0-9]{0,12}") {
        let secs = if fraction.is_empty() { whole.clone() } else { format!("{whole}.{fraction}") };
        let ms = times_1000(&whole, &fraction);
        prop_assert_eq!(
            wait_429("retry-after-ms", &ms),
            wait_429("retry-after", &secs),
            "retry-after-ms: {} vs retry-after: {}", ms, secs
        );
    }

    #[test]
    fn go_units_agree(n in 0u64..5_000_000_000) {
        let reset = |text: String| wait_429("x-ratelimit-reset-requests", &text);
        let hours = reset(format!("{n}h"));
        prop_assert_eq!(hours, Duration::from_secs(n * 3600));
        prop_assert_eq!(reset(format!("{}m", n * 60)), hours);
        prop_assert_eq!(reset(format!("{}s", n * 3600)), hours);
        prop_assert_eq!(reset(format!("{}ms", u128::from(n) * 3_600_000)), hours);
        prop_assert_eq!(reset(format!("{}m{}s", n * 60, 0)), hours);
    }

    #[test]
    fn any_number_like_text_reads_without_panicking(text in "[0-9.eE+-]{0,40}[a-zµ]{0,3}") {
        for (name, _) in FAMILIES {
            let wait = wait_429(name, &text);
            let _ = HttpError::from_response(
                StatusCode::TOO_MANY_REQUESTS,
                &headers(&[(name, &text)]),
                b"",
            )
            .to_string();
            if text.starts_with('-') || text.starts_with('+') {
                prop_assert_eq!(wait, Duration::ZERO, "{}: {}", name, text);
            }
        }
        let remaining = headers(&[
            ("x-ratelimit-remaining-requests", "1"),
            ("x-ratelimit-reset-requests", &text),
        ]);
        let _ = requests_remaining(&remaining);
    }

    #[test]
    fn reset_times_further_off_are_longer_waits(a in 2030u32..=9999, b in 2030u32..=9999) {
        let at = |year: u32| {
            requests_remaining(&headers(&[
                ("anthropic-ratelimit-requests-remaining", "0"),
                ("anthropic-ratelimit-requests-reset", &format!("{year}-01-01T00:00:00Z")),
            ]))
            .unwrap()
            .1
        };
        let (wa, wb) = (at(a), at(b));
        match a.cmp(&b) {
            Ordering::Less => prop_assert!(wa < wb),
            Ordering::Equal => prop_assert!(wa.abs_diff(wb) < Duration::from_secs(60)),
            Ordering::Greater => prop_assert!(wa > wb),
        }
    }
}

#[test]
fn a_day_in_milliseconds_is_a_day() {
    assert_eq!(wait_429("retry-after-ms", "86400000"), DAY);
    assert_eq!(wait_429("retry-after", "86400"), DAY);
    assert_eq!(wait_429("x-ratelimit-reset-requests", "24h"), DAY);
    assert_eq!(wait_429("x-ratelimit-reset-requests", "1439m60s"), DAY);
    assert_eq!(
        wait_429("retry-after-ms", "100000000000"),
        Duration::from_secs(100_000_000)
    );
    assert_eq!(
        wait_429("x-ratelimit-reset-tokens", "1h2m3.5s"),
        Duration::from_millis(3_723_500)
    );
}

#[test]
fn dates_far_off_are_long_waits_not_none() {
    let http_date = wait_429("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT");
    assert!(
        http_date > Duration::from_secs(200 * 365 * 86_400),
        "{http_date:?}"
    );
    let rfc3339 = requests_remaining(&headers(&[
        ("anthropic-ratelimit-requests-remaining", "0"),
        ("anthropic-ratelimit-requests-reset", "9999-12-31T23:59:59Z"),
    ]))
    .unwrap()
    .1;
    assert!(rfc3339.abs_diff(http_date) < Duration::from_secs(60));
}

#[test]
fn garbage_is_no_wait_given() {
    for bad in [
        "-1", "+5", "NaN", "inf", "soon", "0x10", "1s", "1e-3", "1.2.3", "", ".",
    ] {
        assert_eq!(wait_429("retry-after", bad), Duration::ZERO, "{bad:?}");
        assert_eq!(wait_429("retry-after-ms", bad), Duration::ZERO, "{bad:?}");
    }
    for bad in ["-1s", "5", "1x", "h", "1e3s"] {
        assert_eq!(
            wait_429("x-ratelimit-reset-requests", bad),
            Duration::ZERO,
            "{bad:?}"
        );
    }
    // An unreadable `retry-after-ms` leaves `retry-after` to say it.
    let h = headers(&[("retry-after-ms", "-5"), ("retry-after", "2")]);
    assert_eq!(
        retry_after(StatusCode::TOO_MANY_REQUESTS, &h),
        Some(Duration::from_secs(2))
    );
}

#[test]
fn counts_too_large_for_u64_saturate() {
    let h = headers(&[
        (
            "x-ratelimit-remaining-requests",
            "123456789012345678901234567890",
        ),
        ("x-ratelimit-reset-requests", "99999999999999999999999999h"),
    ]);
    assert_eq!(requests_remaining(&h), Some((u64::MAX, Duration::MAX)));
    let h = headers(&[
        ("x-ratelimit-remaining-requests", "-1"),
        ("x-ratelimit-reset-requests", "1s"),
    ]);
    assert_eq!(requests_remaining(&h), None);
}

/// A 429 whose `retry-after-ms` asks for about three years.
fn three_years_away() -> HttpError {
    let h = headers(&[("retry-after-ms", "100000000000")]);
    HttpError::from_response(StatusCode::TOO_MANY_REQUESTS, &h, b"slow down")
}

#[test]
fn a_wait_above_the_cap_gives_up_at_once() {
    let sleeps = skip_sleeps();
    let mut attempts = 0;
    let result: Result<(), HttpError> =
        Policy::new().max_attempts(5).retry_after_cap(DAY).call(|| {
            attempts += 1;
            Err(three_years_away())
        });
    let error = result.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimit);
    assert_eq!(attempts, 1);
    assert!(sleeps.delays().is_empty(), "{:?}", sleeps.delays());
}

#[test]
fn a_saturated_wait_gives_up_under_the_largest_macro_cap() {
    #[retry(max_attempts = 3, retry_after_cap = 18446744073709551615s)]
    fn call(attempts: &mut u32) -> Result<(), HttpError> {
        *attempts += 1;
        let h = headers(&[("retry-after", &"9".repeat(40))]);
        Err(HttpError::from_response(
            StatusCode::TOO_MANY_REQUESTS,
            &h,
            b"",
        ))
    }
    let sleeps = skip_sleeps();
    let mut attempts = 0;
    assert!(call(&mut attempts).is_err());
    assert_eq!(attempts, 1);
    assert!(sleeps.delays().is_empty());
}

#[test]
fn a_wait_of_exactly_the_cap_is_slept_as_asked() {
    let sleeps = skip_sleeps();
    let mut attempts = 0;
    let result: Result<(), HttpError> = Policy::new()
        .max_attempts(2)
        .jitter(Jitter::None)
        .retry_after_cap(DAY)
        .call(|| {
            attempts += 1;
            let h = headers(&[("retry-after-ms", "86400000")]);
            Err(HttpError::from_response(
                StatusCode::TOO_MANY_REQUESTS,
                &h,
                b"",
            ))
        });
    assert!(result.is_err());
    assert_eq!(attempts, 2);
    assert_eq!(sleeps.delays(), [DAY]);
}

#[tokio::test(start_paused = true)]
async fn an_async_call_gives_up_at_once_too() {
    #[retry(max_attempts = 5, retry_after_cap = 1440m)]
    async fn call(attempts: &std::cell::Cell<u32>) -> Result<(), HttpError> {
        attempts.set(attempts.get() + 1);
        Err(three_years_away())
    }
    let sleeps = skip_sleeps();
    let attempts = std::cell::Cell::new(0);
    let started = tokio::time::Instant::now();
    assert!(call(&attempts).await.is_err());
    assert_eq!(attempts.get(), 1);
    assert!(sleeps.delays().is_empty());
    assert_eq!(started.elapsed(), Duration::ZERO);
}

#[test]
fn waits_are_shown_rounded_for_people() {
    let shown = |ms: &str| {
        let h = headers(&[("retry-after-ms", ms)]);
        HttpError::from_response(StatusCode::TOO_MANY_REQUESTS, &h, b"").to_string()
    };
    let cases = [
        ("0.2", "1ms"),
        ("250", "250ms"),
        ("999.9", "1s"),
        ("1500", "1.5s"),
        ("2000", "2s"),
        ("29999.981533", "30s"),
        ("59970", "1m"),
        ("150000", "2m30s"),
        ("3600000", "1h"),
        ("3723500", "1h2m"),
        ("86400000", "1d"),
        ("100000000000", "1157d10h"),
    ];
    for (ms, wait) in cases {
        let expected = format!("HTTP 429 Too Many Requests (RateLimit, retry after {wait})");
        assert_eq!(shown(ms), expected, "retry-after-ms: {ms}");
    }
    assert!(
        shown(&"9".repeat(40)).ends_with("213503982334601d7h)"),
        "{}",
        shown(&"9".repeat(40))
    );
}
