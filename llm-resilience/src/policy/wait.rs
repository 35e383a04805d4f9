use std::time::Duration;

/// How long to wait before each retry, before jitter.
///
/// The delay before retry `n` (the wait after attempt `n` failed) is:
///
/// | strategy | delay before retry `n` |
/// |---|---|
/// | [`Wait::none()`] | zero |
/// | [`Wait::fixed(d)`](Wait::fixed) | `d` |
/// | [`Wait::exponential(base, cap)`](Wait::exponential) | `min(cap, base * 2^(n-1))` |
/// | [`Wait::exponential_with_factor(base, cap, f)`](Wait::exponential_with_factor) | `min(cap, base * f^(n-1))` |
///
/// Arithmetic saturates at `cap`: no attempt number overflows.
///
/// ```
/// use std::time::Duration;
/// use llm_resilience::Wait;
///
/// let wait = Wait::exponential(Duration::from_secs(1), Duration::from_secs(60));
/// assert_eq!(wait.delay(1), Duration::from_secs(1));
/// assert_eq!(wait.delay(4), Duration::from_secs(8));
/// assert_eq!(wait.delay(10), Duration::from_secs(60));
/// assert_eq!(wait.delay(u32::MAX), Duration::from_secs(60));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Wait {
    repr: Repr,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Repr {
    None,
    Fixed(Duration),
    Exponential {
        base: Duration,
        cap: Duration,
        factor: f64,
    },
}

impl Wait {
    /// Retry at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::Wait;
    ///
    /// let wait = Wait::none();
    /// assert_eq!(wait.delay(1), Duration::ZERO);
    /// assert_eq!(wait.delay(100), Duration::ZERO);
    /// ```
    pub const fn none() -> Self {
        Wait { repr: Repr::None }
    }

    /// Wait `delay` before every retry.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::Wait;
    ///
    /// let wait = Wait::fixed(Duration::from_millis(500));
    /// assert_eq!(wait.delay(1), Duration::from_millis(500));
    /// assert_eq!(wait.delay(10), Duration::from_millis(500));
    /// ```
    pub const fn fixed(delay: Duration) -> Self {
        Wait {
            repr: Repr::Fixed(delay),
        }
    }

    /// Double the delay after each failure, starting at `base`, never above
    /// `cap`. The default policy uses `exponential(1s, 60s)`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::Wait;
    ///
    /// let ms = Duration::from_millis;
    /// let wait = Wait::exponential(ms(250), ms(2000));
    /// let delays: Vec<Duration> = (1..=5).map(|retry| wait.delay(retry)).collect();
    /// assert_eq!(delays, [ms(250), ms(500), ms(1000), ms(2000), ms(2000)]);
    /// ```
    pub const fn exponential(base: Duration, cap: Duration) -> Self {
        Self::exponential_with_factor(base, cap, 2.0)
    }

    /// Multiply the delay by `factor` after each failure, starting at `base`,
    /// never above `cap`. A `factor` below 1 (or NaN) is taken as 1; see
    /// [`Policy::validate`](crate::Policy::validate) to reject it instead.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::{Policy, PolicyError, Wait};
    ///
    /// let ms = Duration::from_millis;
    /// let wait = Wait::exponential_with_factor(ms(100), ms(1000), 1.5);
    /// assert_eq!([wait.delay(1), wait.delay(2), wait.delay(3)], [ms(100), ms(150), ms(225)]);
    ///
    /// let shrinking = Wait::exponential_with_factor(ms(100), ms(1000), 0.5);
    /// assert_eq!(shrinking.delay(3), ms(100)); // taken as 1
    /// let error = Policy::new().wait(shrinking).validate().unwrap_err();
    /// assert_eq!(error, PolicyError::FactorBelowOne(0.5));
    /// ```
    pub const fn exponential_with_factor(base: Duration, cap: Duration, factor: f64) -> Self {
        Wait {
            repr: Repr::Exponential { base, cap, factor },
        }
    }

    /// The delay before retry `retry` (1-based: the wait after the first
    /// failed attempt is `delay(1)`), without jitter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::Wait;
    ///
    /// // The longest a call with 5 attempts can sleep, before jitter.
    /// let wait = Wait::exponential(Duration::from_secs(1), Duration::from_secs(60));
    /// let worst: Duration = (1..5).map(|retry| wait.delay(retry)).sum();
    /// assert_eq!(worst, Duration::from_secs(1 + 2 + 4 + 8));
    /// ```
    pub fn delay(&self, retry: u32) -> Duration {
        match self.repr {
            Repr::None => Duration::ZERO,
            Repr::Fixed(d) => d,
            Repr::Exponential { base, cap, factor } => {
                exponential(base, cap, factor, retry.saturating_sub(1))
            }
        }
    }

    /// The smallest and largest delay this strategy produces, before jitter.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::Wait;
    ///
    /// let secs = Duration::from_secs;
    /// assert_eq!(Wait::exponential(secs(1), secs(60)).bounds(), (secs(1), secs(60)));
    /// assert_eq!(Wait::fixed(secs(3)).bounds(), (secs(3), secs(3)));
    /// // A base above the cap: every delay is the cap.
    /// assert_eq!(Wait::exponential(secs(90), secs(60)).bounds(), (secs(60), secs(60)));
    /// ```
    pub const fn bounds(&self) -> (Duration, Duration) {
        match self.repr {
            Repr::None => (Duration::ZERO, Duration::ZERO),
            Repr::Fixed(d) => (d, d),
            Repr::Exponential { base, cap, .. } => {
                if base.as_nanos() > cap.as_nanos() {
                    (cap, cap)
                } else {
                    (base, cap)
                }
            }
        }
    }

    /// `(base, cap, factor)` of an exponential wait, as given.
    pub(crate) const fn exponential_parts(&self) -> Option<(Duration, Duration, f64)> {
        match self.repr {
            Repr::Exponential { base, cap, factor } => Some((base, cap, factor)),
            _ => None,
        }
    }
}

impl Default for Wait {
    /// `exponential(1s, 60s)`.
    fn default() -> Self {
        Wait::exponential(Duration::from_secs(1), Duration::from_secs(60))
    }
}

/// `min(cap, base * factor^exp)`, exact for whole factors, saturating at `cap`.
fn exponential(base: Duration, cap: Duration, factor: f64, exp: u32) -> Duration {
    // A factor below 1, NaN or infinite must never shrink the delay below
    // `base` or produce garbage: treat the first two as 1.
    let factor = if factor >= 1.0 { factor } else { 1.0 };
    let raw = if factor.fract() == 0.0 && factor <= f64::from(u32::MAX) {
        // Whole factor: exact integer arithmetic.
        (factor as u32)
            .checked_pow(exp)
            .and_then(|m| base.checked_mul(m))
    } else {
        let secs = base.as_secs_f64() * factor.powf(f64::from(exp));
        Duration::try_from_secs_f64(secs).ok()
    };
    match raw {
        Some(d) if d < cap => d,
        _ => cap,
    }
}

/// How randomness spreads the delays of callers that failed together, so
/// they do not all come back at the same moment.
///
/// With `d` the delay from [`Wait`] and `base`/`cap` its bounds:
///
/// | jitter | delay actually slept |
/// |---|---|
/// | [`Full`](Jitter::Full) (default) | uniform in `[0, d]` |
/// | [`Equal`](Jitter::Equal) | `d/2` + uniform in `[0, d/2]` |
/// | [`Decorrelated`](Jitter::Decorrelated) | `min(cap, uniform in [base, 3 * previous])`, previous starting at `base` |
/// | [`None`](Jitter::None) | `d` exactly |
///
/// Jitter always stays inside the cap. Every delay draws afresh.
/// `Jitter::None` also turns off the spread added to a server's
/// `Retry-After`.
///
/// ```
/// use std::time::Duration;
/// use llm_resilience::{Backoff, Jitter, Wait};
///
/// assert_eq!(Jitter::default(), Jitter::Full);
/// let wait = Wait::fixed(Duration::from_secs(4));
/// for delay in Backoff::new(wait, Jitter::Full).take(20) {
///     assert!(delay <= Duration::from_secs(4));
/// }
/// let exact: Vec<Duration> = Backoff::new(wait, Jitter::None).take(3).collect();
/// assert_eq!(exact, [Duration::from_secs(4); 3]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Jitter {
    /// No randomness: sleep exactly the computed delay.
    None,
    /// Uniform between zero and the delay. Spreads load best; the default.
    #[default]
    Full,
    /// Half the delay plus a uniform share of the other half.
    Equal,
    /// Each delay drawn between `base` and three times the previous one,
    /// capped; does not follow the attempt number.
    Decorrelated,
}

/// A uniform draw in `[lo, hi]`, at nanosecond resolution.
pub(crate) fn uniform(lo: Duration, hi: Duration) -> Duration {
    if hi <= lo {
        return lo;
    }
    let lo_ns = nanos(lo);
    let hi_ns = nanos(hi);
    Duration::from_nanos(fastrand::u64(lo_ns..=hi_ns))
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Jitter {
    /// The wait for a server's `Retry-After` of `asked`: the value itself,
    /// plus a spread drawn uniformly from zero to a tenth of it (at most one
    /// second), so that callers told the same value do not all come back in
    /// the same instant. `Jitter::None` adds none.
    pub(crate) fn after_retry_after(self, asked: Duration) -> Duration {
        if self == Jitter::None {
            return asked;
        }
        let spread = uniform(Duration::ZERO, (asked / 10).min(Duration::from_secs(1)));
        asked.saturating_add(spread)
    }

    /// Apply this jitter to the un-jittered delay `d` of `wait`. `previous`
    /// carries the state of decorrelated jitter between retries of one call
    /// (start it at `wait.bounds().0`).
    pub(crate) fn apply(self, wait: &Wait, d: Duration, previous: &mut Duration) -> Duration {
        match self {
            Jitter::None => d,
            Jitter::Full => uniform(Duration::ZERO, d),
            Jitter::Equal => {
                let half = d / 2;
                half + uniform(Duration::ZERO, d - half)
            }
            Jitter::Decorrelated => {
                let (base, cap) = wait.bounds();
                let hi = previous.saturating_mul(3).max(base);
                let next = uniform(base, hi).min(cap);
                *previous = next;
                next
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn exponential_doubles_then_caps() {
        let w = Wait::exponential(S(1), S(60));
        let got: Vec<_> = (1..=8).map(|n| w.delay(n)).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 60, 60].map(S));
    }

    #[test]
    fn fractional_factor_and_saturation() {
        let w = Wait::exponential_with_factor(Duration::from_millis(100), S(10), 1.5);
        assert_eq!(w.delay(1), Duration::from_millis(100));
        assert_eq!(w.delay(3), Duration::from_millis(225));
        assert_eq!(w.delay(u32::MAX), S(10));
        let huge = Wait::exponential(Duration::MAX, Duration::MAX);
        assert_eq!(huge.delay(u32::MAX), Duration::MAX);
    }

    #[test]
    fn bad_factors_never_shrink_or_panic() {
        for f in [0.0, 0.5, -3.0, f64::NAN, f64::INFINITY] {
            let w = Wait::exponential_with_factor(S(1), S(30), f);
            for n in [1, 2, 50, u32::MAX] {
                let d = w.delay(n);
                assert!(d >= S(1) && d <= S(30), "factor {f}, retry {n}: {d:?}");
            }
        }
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let w = Wait::exponential(Duration::from_millis(10), Duration::from_millis(500));
        let mut prev = Duration::from_millis(10);
        for n in 1..2000u32 {
            let d = w.delay(n % 12 + 1);
            let full = Jitter::Full.apply(&w, d, &mut prev);
            assert!(full <= d);
            let equal = Jitter::Equal.apply(&w, d, &mut prev);
            assert!(equal >= d / 2 && equal <= d);
            let before = prev;
            let dec = Jitter::Decorrelated.apply(&w, d, &mut prev);
            assert!(dec >= Duration::from_millis(10) && dec <= Duration::from_millis(500));
            assert!(dec <= before * 3);
        }
    }
}
