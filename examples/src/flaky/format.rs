//! Header value formats: Go durations, RFC 3339 and HTTP dates.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A duration the way Go's `time.Duration.String()` writes it, as OpenAI's
/// `x-ratelimit-reset-*` headers do: `"20ms"`, `"1s"`, `"1.5s"`, `"6m0s"`,
/// `"1h0m0s"`. Below one second it is always milliseconds (`"0.5ms"` rather
/// than Go's `"500µs"`, to keep the header ASCII; Go parses both).
pub(crate) fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", decimal(nanos, 1_000_000, 6));
    }
    let secs = nanos / 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    let sub = nanos % 1_000_000_000;
    out.push_str(&decimal(s * 1_000_000_000 + sub, 1_000_000_000, 9));
    out.push('s');
    out
}

/// `value / unit` as a decimal with up to `digits` fraction digits, trailing
/// zeros trimmed.
fn decimal(value: u128, unit: u128, digits: usize) -> String {
    let (int, frac) = (value / unit, value % unit);
    if frac == 0 {
        return int.to_string();
    }
    let frac = format!("{frac:0digits$}");
    format!("{int}.{}", frac.trim_end_matches('0'))
}

/// `now + d`, saturating at a far but valid time instead of overflowing.
pub(crate) fn later(now: SystemTime, d: Duration) -> SystemTime {
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 86_400))
}

/// An RFC 3339 UTC timestamp, `2025-01-01T12:00:00Z`, with milliseconds
/// (`...:00.250Z`) when the instant is not a whole second; the instant is
/// rounded up to the millisecond.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut secs = since.as_secs();
    let mut millis = since.subsec_nanos().div_ceil(1_000_000);
    if millis == 1000 {
        secs += 1;
        millis = 0;
    }
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let (h, mi, s) = (rem / 3600, rem / 60 % 60, rem % 60);
    if millis == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{millis:03}Z")
    }
}

/// An HTTP date (IMF-fixdate) for `t` rounded up to the whole second, so a
/// client that waits until then waits at least until `t`.
pub(crate) fn http_date_ceil(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut secs = since.as_secs();
    if since.subsec_nanos() > 0 {
        secs += 1;
    }
    // httpdate only formats years up to 9999.
    let secs = secs.min(253_402_300_799);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        let ms = Duration::from_millis;
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(ms(20)), "20ms");
        assert_eq!(go_duration(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(go_duration(Duration::from_micros(500)), "0.5ms");
        assert_eq!(go_duration(ms(1000)), "1s");
        assert_eq!(go_duration(ms(1500)), "1.5s");
        assert_eq!(go_duration(ms(59_999)), "59.999s");
        assert_eq!(go_duration(Duration::from_secs(360)), "6m0s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_secs(3725)), "1h2m5s");
        assert!(go_duration(Duration::MAX).ends_with('s'));
    }

    #[test]
    fn rfc3339_times() {
        let at = |s, ms| UNIX_EPOCH + Duration::from_secs(s) + Duration::from_millis(ms);
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(at(951_782_400, 0)), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(at(1_735_732_800, 250)), "2025-01-01T12:00:00.250Z");
        // Rounded up to the millisecond, carrying into the second.
        let t = at(1_735_732_799, 999) + Duration::from_micros(1);
        assert_eq!(rfc3339(t), "2025-01-01T12:00:00Z");
    }

    #[test]
    fn http_dates_round_up() {
        let t = UNIX_EPOCH + Duration::from_secs(1_735_732_800);
        assert_eq!(http_date_ceil(t), "Wed, 01 Jan 2025 12:00:00 GMT");
        assert_eq!(
            http_date_ceil(t + Duration::from_millis(1)),
            "Wed, 01 Jan 2025 12:00:01 GMT"
        );
        // Never panics, however far.
        let _ = http_date_ceil(later(SystemTime::now(), Duration::MAX));
    }
}
