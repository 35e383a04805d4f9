//! What callers see of a breaker that is not closed: its [`BreakerState`],
//! the refusal [`CircuitOpen`], and [`HumanWait`], how every message of the
//! crate writes a wait.

use core::fmt;
use std::time::Duration;

#[cfg(doc)]
use super::CircuitBreaker;
use crate::{Classify, ErrorKind};

/// The state of a [`CircuitBreaker`], from [`CircuitBreaker::state`].
///
/// ```
/// use llm_resilience::{BreakerState, CircuitBreaker};
///
/// match CircuitBreaker::new().state() {
///     BreakerState::Closed => {}
///     BreakerState::Open { retry_in } => println!("open for {retry_in:?}"),
///     BreakerState::HalfOpen => println!("probing"),
///     BreakerState::Isolated => println!("held open"),
///     _ => {}
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Calls go through and are counted.
    Closed,
    /// Calls are refused.
    Open {
        /// How long until a probe is admitted.
        retry_in: Duration,
    },
    /// Probes are admitted, a few at a time; others are refused.
    HalfOpen,
    /// Held open by [`CircuitBreaker::isolate`] until
    /// [`CircuitBreaker::close`].
    Isolated,
}

/// A call refused by a [`CircuitBreaker`].
///
/// It [classifies](Classify) as [`Overloaded`](ErrorKind::Overloaded), with a
/// [`retry_after`](Classify::retry_after) of the time until the breaker
/// admits a probe (none when isolated).
///
/// ```
/// use llm_resilience::{CircuitBreaker, Classify, ErrorKind};
///
/// let breaker = CircuitBreaker::new().consecutive_failures(1);
/// breaker.try_acquire().unwrap().failure(ErrorKind::Overloaded);
/// let refused = breaker.try_acquire().unwrap_err();
/// assert_eq!(refused.kind(), ErrorKind::Overloaded);
/// assert_eq!(refused.retry_after(), refused.retry_in());
/// assert!(refused.to_string().starts_with("circuit breaker open; a probe is admitted in "));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CircuitOpen {
    retry_in: Option<Duration>,
    why: Why,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Why {
    Open,
    HalfOpen,
    Isolated,
}

impl CircuitOpen {
    pub(super) fn open(why: Why, retry_in: u64) -> Self {
        CircuitOpen {
            retry_in: Some(Duration::from_nanos(retry_in)),
            why,
        }
    }

    pub(super) fn isolated() -> Self {
        CircuitOpen {
            retry_in: None,
            why: Why::Isolated,
        }
    }

    /// How long until the breaker admits a probe: the rest of the break when
    /// open; when half-open with every probe slot taken, the time until the
    /// probes in flight are presumed lost (one may finish sooner).
    /// `None` when [isolated](CircuitBreaker::isolate).
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::{CircuitBreaker, ErrorKind};
    ///
    /// let breaker = CircuitBreaker::new().consecutive_failures(1).break_for(Duration::from_secs(10));
    /// breaker.try_acquire().unwrap().failure(ErrorKind::Timeout);
    /// let wait = breaker.try_acquire().unwrap_err().retry_in().unwrap();
    /// assert!(wait <= Duration::from_secs(10));
    /// ```
    pub fn retry_in(&self) -> Option<Duration> {
        self.retry_in
    }

    /// Whether the breaker was [isolated](CircuitBreaker::isolate): no call
    /// goes through until someone closes it.
    ///
    /// ```
    /// use llm_resilience::CircuitBreaker;
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.isolate();
    /// assert!(breaker.try_acquire().unwrap_err().is_isolated());
    /// ```
    pub fn is_isolated(&self) -> bool {
        self.why == Why::Isolated
    }
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.why, self.retry_in) {
            (Why::Isolated, _) | (_, None) => {
                f.write_str("circuit breaker isolated; no call is admitted until it is closed")
            }
            (Why::Open, Some(d)) => {
                write!(f, "circuit breaker open; a probe is admitted in {}", HumanWait(d))
            }
            (Why::HalfOpen, Some(d)) => write!(
                f,
                "circuit breaker half-open with its probes in flight; a probe is admitted in {} at the latest",
                HumanWait(d)
            ),
        }
    }
}

impl std::error::Error for CircuitOpen {}

impl Classify for CircuitOpen {
    /// [`Overloaded`](ErrorKind::Overloaded): the provider is presumed over
    /// capacity.
    fn kind(&self) -> ErrorKind {
        ErrorKind::Overloaded
    }

    /// [`retry_in`](CircuitOpen::retry_in).
    fn retry_after(&self) -> Option<Duration> {
        self.retry_in
    }
}

/// A wait as people read it, rounded to about two significant figures:
/// `250ms` under a second (rounded up: never `0ms` for a wait), `1.5s` or
/// `30s` under a minute, `2m30s` under an hour, `1h5m` under a day, then
/// `3d4h`. Every message of this crate that shows a wait uses it; use it
/// in yours to match. Any `Duration` formats, `Duration::MAX` included.
///
/// ```
/// use std::time::Duration;
/// use llm_resilience::HumanWait;
///
/// assert_eq!(HumanWait(Duration::from_nanos(29_999_981_533)).to_string(), "30s");
/// assert_eq!(HumanWait(Duration::from_millis(1500)).to_string(), "1.5s");
/// assert_eq!(HumanWait(Duration::from_micros(249_001)).to_string(), "250ms");
/// assert_eq!(HumanWait(Duration::from_secs(150)).to_string(), "2m30s");
/// assert_eq!(HumanWait(Duration::from_secs(3 * 86_400 + 4 * 3_600)).to_string(), "3d4h");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanWait(pub Duration);

impl fmt::Display for HumanWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MS: u128 = 1_000_000;
        const S: u128 = 1_000 * MS;
        let nanos = self.0.as_nanos();
        // Round at the precision of the form first, then pick the form by
        // the rounded value, so that 59.97 s reads `1m`, not `60s`.
        let round = |unit: u128| (nanos + unit / 2) / unit;
        let ms = nanos.div_ceil(MS);
        if ms < 1_000 {
            return write!(f, "{ms}ms");
        }
        let tenths = round(S / 10);
        if tenths < 600 {
            return match tenths % 10 {
                0 => write!(f, "{}s", tenths / 10),
                t => write!(f, "{}.{t}s", tenths / 10),
            };
        }
        let pair = |f: &mut fmt::Formatter<'_>, n: u128, per: u128, big: &str, small: &str| match n
            % per
        {
            0 => write!(f, "{}{big}", n / per),
            rest => write!(f, "{}{big}{rest}{small}", n / per),
        };
        let secs = round(S);
        if secs < 3_600 {
            return pair(f, secs, 60, "m", "s");
        }
        let minutes = round(60 * S);
        if minutes < 24 * 60 {
            return pair(f, minutes, 60, "h", "m");
        }
        pair(f, round(3_600 * S), 24, "d", "h")
    }
}
