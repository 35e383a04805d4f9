//! The deadline rule: every wait of a call (a backoff, a `Retry-After`, the
//! limiter's pacing, a fallback) ends before its deadline, its own or the one
//! it inherits from the call it runs in.

use std::time::Duration;

use crate::engine::state::{Refusals, State};
use crate::Elapsed;

/// The deadline error of a call, and how it becomes the call's error type.
pub(crate) type DeadlineReport<E> = (Elapsed, fn(Elapsed) -> E);

impl<'p> State<'p> {
    /// How long the call may still wait: the time left before its deadline
    /// (its own, or the one it inherited from the call it runs in), `None`
    /// when it has none. Reads the clock only when there is a deadline.
    ///
    /// This is the one rule every wait of a call goes through: a backoff, a
    /// `Retry-After`, the limiter's pacing, a fallback. Nothing a call does
    /// waits past its deadline.
    #[inline]
    pub(super) fn time_left(&self) -> Option<Duration> {
        self.frame
            .deadline
            .map(|at| at.saturating_duration_since(self.frame.clock.now()))
    }

    /// Whether a wait of `delay` from now ends before the deadline.
    pub(super) fn wait_fits(&self, delay: Duration) -> bool {
        self.time_left().is_none_or(|left| delay < left)
    }

    /// The error a call reports when its deadline comes, its own or the one
    /// it inherited: `None` when it has none, or cannot report one (its
    /// error type has no `From<Elapsed>` that the call could name).
    pub(super) fn deadline_error<E>(&self, refusals: &Refusals<E>) -> Option<DeadlineReport<E>> {
        let into = refusals.deadline?;
        let elapsed = match self.policy.deadline {
            Some(limit) => Elapsed::deadline(limit),
            None => Elapsed::inherited(self.time_left()?),
        };
        Some((elapsed, into))
    }

    /// How long the attempt about to start may run, and the error that
    /// reports running out: the earlier of the attempt timeout and the time
    /// left before the deadline. `None` when neither is set.
    #[cfg(feature = "tokio")]
    #[inline]
    pub(crate) fn attempt_limit(&self) -> Option<(Duration, Elapsed)> {
        if self.policy.attempt_timeout.is_none() && self.policy.deadline.is_none() {
            return None;
        }
        self.attempt_limit_set()
    }

    /// [`attempt_limit`](Self::attempt_limit) of a policy that sets one.
    #[cfg(feature = "tokio")]
    #[inline(never)]
    fn attempt_limit_set(&self) -> Option<(Duration, Elapsed)> {
        let per_attempt = self
            .policy
            .attempt_timeout
            .map(|t| (t, Elapsed::attempt_timeout(t)));
        let to_deadline = match (self.frame.deadline, self.policy.deadline) {
            (Some(at), Some(limit)) => Some((
                at.saturating_duration_since(self.frame.clock.now()),
                Elapsed::deadline(limit),
            )),
            _ => None,
        };
        match (per_attempt, to_deadline) {
            (Some(a), Some(d)) => Some(if d.0 <= a.0 { d } else { a }),
            (a, d) => a.or(d),
        }
    }

    /// Whether the deadline, if any, is still ahead: nothing new (a
    /// fallback, the next item of a chain) starts once it has passed.
    pub(crate) fn before_deadline(&self) -> bool {
        self.time_left() != Some(Duration::ZERO)
    }
}
