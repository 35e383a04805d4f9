//! [`BreakerPermit`]: leave to make one call through a breaker, on which the
//! call's outcome is reported.

use core::fmt;

use super::state::NOT_PROBE;
use super::CircuitBreaker;
use crate::ErrorKind;

/// Leave to make one call through a [`CircuitBreaker`], from
/// [`try_acquire`](CircuitBreaker::try_acquire). Report the call's outcome
/// with [`success`](Self::success) or [`failure`](Self::failure).
///
/// A permit dropped without either (the call's future was cancelled, say)
/// records nothing; if it was a half-open probe, its slot is given back so
/// that another call can probe.
///
/// ```
/// use llm_resilience::{CircuitBreaker, ErrorKind};
///
/// let breaker = CircuitBreaker::new();
/// let permit = breaker.try_acquire().unwrap();
/// assert!(!permit.is_probe());
/// permit.success();
/// ```
#[must_use = "report the call's outcome with `success()` or `failure(kind)`"]
pub struct BreakerPermit<'a> {
    pub(super) breaker: &'a CircuitBreaker,
    /// The half-open generation the probe belongs to, or `NOT_PROBE`.
    pub(super) probe: u64,
}

impl BreakerPermit<'_> {
    /// The call succeeded. Closes the breaker if this was a half-open probe.
    /// Otherwise one atomic add on the calling thread's counter: no clock
    /// reading, no lock.
    ///
    /// ```
    /// use llm_resilience::{BreakerState, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::new();
    /// breaker.try_acquire().unwrap().success();
    /// assert_eq!(breaker.state(), BreakerState::Closed);
    /// ```
    #[inline]
    pub fn success(mut self) {
        let probe = core::mem::replace(&mut self.probe, NOT_PROBE);
        if probe == NOT_PROBE {
            self.breaker.succeeded();
        } else {
            self.breaker.probe_succeeded(probe);
        }
    }

    /// The call failed with an error of this kind. Only
    /// [`Overloaded`](ErrorKind::Overloaded), [`Server`](ErrorKind::Server),
    /// [`Timeout`](ErrorKind::Timeout), [`Network`](ErrorKind::Network), and
    /// [`RateLimit`](ErrorKind::RateLimit) when the breaker
    /// [counts rate limits](CircuitBreaker::count_rate_limits), are failures;
    /// any other kind means the provider answered, and is reported as a
    /// [`success`](Self::success).
    ///
    /// A failure may open the breaker; a failed probe opens it again.
    ///
    /// ```
    /// use llm_resilience::{BreakerState, CircuitBreaker, ErrorKind};
    ///
    /// let breaker = CircuitBreaker::new().consecutive_failures(2);
    /// breaker.try_acquire().unwrap().failure(ErrorKind::Auth); // not a failure
    /// breaker.try_acquire().unwrap().failure(ErrorKind::Server);
    /// assert_eq!(breaker.state(), BreakerState::Closed);
    /// breaker.try_acquire().unwrap().failure(ErrorKind::Network);
    /// assert!(matches!(breaker.state(), BreakerState::Open { .. }));
    /// ```
    #[inline]
    pub fn failure(mut self, kind: ErrorKind) {
        if !self.breaker.counts(kind) {
            return self.success();
        }
        let probe = core::mem::replace(&mut self.probe, NOT_PROBE);
        self.breaker.failed(probe);
    }

    /// Whether the call is a half-open probe, whose outcome closes or opens
    /// the breaker.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::{CircuitBreaker, ErrorKind};
    ///
    /// let breaker = CircuitBreaker::new().consecutive_failures(1).break_for(Duration::ZERO);
    /// breaker.try_acquire().unwrap().failure(ErrorKind::Server);
    /// let probe = breaker.try_acquire().unwrap(); // the break is over at once
    /// assert!(probe.is_probe());
    /// probe.success();
    /// ```
    pub fn is_probe(&self) -> bool {
        self.probe != NOT_PROBE
    }
}

impl Drop for BreakerPermit<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.probe != NOT_PROBE {
            self.breaker.probe_dropped(self.probe);
        }
    }
}

impl fmt::Debug for BreakerPermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerPermit")
            .field("probe", &self.is_probe())
            .finish_non_exhaustive()
    }
}
