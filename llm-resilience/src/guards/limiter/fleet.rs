//! What a limiter shared by a fleet of processes (`shared::SharedLimiter`)
//! reads from it and tells it, from its background exchange only: never on
//! a call's path.
//!
//! Rates here are this process's: its share of the fleet's. The exchange
//! turns them into the fleet's rate (times the live processes) to publish,
//! and back.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::schedule::interval;
use super::{AdaptiveLimiter, UNLIMITED};
use crate::time::since_epoch_ns;

/// What a limiter learnt from a refusal, for the rest of the fleet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Learned {
    /// The rate it paces at now (this process's), or `None` if it does not.
    pub(crate) rate: Option<f64>,
    /// Whether that rate grows fast (a guess) or holds and then probes (a
    /// cut or a measurement).
    pub(crate) fast: bool,
    /// How long its last pause (a `Retry-After` the whole fleet waits for)
    /// still holds every slot back, or zero.
    pub(crate) pause: Duration,
}

impl AdaptiveLimiter {
    /// The refusals reported so far: one atomic load, for the exchange to
    /// notice a new one.
    pub(crate) fn refusals(&self) -> u64 {
        self.refusals.load(Relaxed)
    }

    /// What the limiter knows now: its rate, how it grows, and a pause.
    pub(crate) fn learned(&self) -> Learned {
        let now = since_epoch_ns();
        let control = self.lock();
        let bits = self.rate.load(Relaxed);
        let rate = (bits != UNLIMITED).then(|| self.clamp(f64::from_bits(bits)));
        let ahead = control.paused_until.saturating_sub(now);
        let pause = Duration::from_nanos(u64::try_from(ahead).unwrap_or(0));
        Learned {
            rate,
            fast: control.fast,
            pause,
        }
    }

    /// Take on what another process's limiter learnt from a refusal: pace
    /// at `learned.rate` (already this process's share), growing as it
    /// does, with no burst credit (the provider's bucket was empty then),
    /// and no slot before its pause is over.
    pub(crate) fn adopt(&self, learned: Learned) {
        let now = since_epoch_ns();
        let successes = self.successes.load(Relaxed);
        let mut control = self.lock();
        let control = &mut *control;
        if let Some(rate) = learned.rate {
            self.set_rate(control, rate, now, successes, learned.fast);
        }
        self.drain(control, now);
        if !learned.pause.is_zero() {
            self.pause(control, now, learned.pause);
        }
    }

    /// The share of the provider's limit this process may use: `1 / live
    /// processes`. A change rescales the rate it paces at, an announced
    /// limit, and, before it has learnt anything, its initial window, so
    /// that a fleet of `n` starts no faster than one process does.
    pub(crate) fn set_share(&self, share: f64) {
        if !(share > 0.0 && share <= 1.0) {
            return;
        }
        let now = since_epoch_ns();
        let mut control = self.lock();
        let control = &mut *control;
        let scale = share / control.share;
        if scale == 1.0 {
            return;
        }
        control.share = share;
        let bits = self.rate.load(Relaxed);
        if bits != UNLIMITED {
            let rate = self.clamp(f64::from_bits(bits) * scale).min(self.ceiling());
            self.rate.store(rate.to_bits(), Relaxed);
            control
                .schedule
                .respace(now, interval(rate), self.credit());
        }
        let window = self.window.load(Relaxed);
        if window != 0 {
            let scaled = (f64::from(window) * scale).round() as u32;
            self.window.store(scaled.max(2), Relaxed);
        }
    }
}
