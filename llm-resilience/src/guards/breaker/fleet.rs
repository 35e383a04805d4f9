//! What a breaker shared by a fleet of processes (`shared::SharedBreaker`)
//! reads from it and tells it, from its background exchange only: never on
//! a call's path.

use std::time::Duration;

use super::state::{State, CLOSED, ISOLATED};
use super::CircuitBreaker;
use crate::sync::Ordering;
use crate::time::{nanos, now_ns, TIME_MAX};

/// The breaker's state as the fleet sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    Closed,
    /// Open for this much longer (zero once its break is over).
    Open(Duration),
    HalfOpen,
    Isolated,
}

impl CircuitBreaker {
    /// The state word: one atomic load, for the exchange to notice a change
    /// by comparing it with its last reading.
    pub(crate) fn word(&self) -> u64 {
        self.state.load(Ordering::Acquire)
    }

    /// What the state word `word` says, now.
    pub(crate) fn seen(word: u64) -> Seen {
        match State::decode(word) {
            State::Closed => Seen::Closed,
            State::HalfOpen { .. } => Seen::HalfOpen,
            State::Isolated => Seen::Isolated,
            State::Open { until } => {
                Seen::Open(Duration::from_nanos(until.saturating_sub(now_ns())))
            }
        }
    }

    /// Open for `d` from now, as another process's breaker did: from closed,
    /// from half-open (the probes in flight then change nothing), or from
    /// open until sooner. An isolated breaker stays isolated. The new state
    /// word if it changed.
    pub(crate) fn open_remotely(&self, d: Duration) -> Option<u64> {
        let until = now_ns().saturating_add(nanos(d)).min(TIME_MAX);
        let next = State::open(until);
        let mut word = self.state.load(Ordering::Acquire);
        loop {
            match State::decode(word) {
                State::Isolated => return None,
                State::Open { until: current } if current >= until => return None,
                _ => {}
            }
            match self
                .state
                .compare_exchange(word, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    self.window.aux().store(0, Ordering::Relaxed);
                    return Some(next);
                }
                Err(actual) => word = actual,
            }
        }
    }

    /// Close, as another process's probe that succeeded did: from open or
    /// half-open only, with an empty window. The new state word if it
    /// changed.
    pub(crate) fn close_remotely(&self) -> Option<u64> {
        let mut word = self.state.load(Ordering::Acquire);
        while word != CLOSED && word != ISOLATED {
            // Forget before closing: calls admitted once closed all count.
            self.forget_successes();
            self.window.reset();
            self.window.aux().store(0, Ordering::Relaxed);
            match self
                .state
                .compare_exchange(word, CLOSED, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(CLOSED),
                Err(actual) => word = actual,
            }
        }
        None
    }
}
