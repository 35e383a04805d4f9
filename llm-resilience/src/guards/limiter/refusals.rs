//! What a `429` tells the limiter: refusals close together form an
//! episode, which measures the rate the provider admits, or, too short to
//! measure, cuts the rate; the first refusal starts pacing at a guess; and
//! the fleet pauses when the rate can go no lower.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::{nanos_to_secs, secs_to_nanos, AdaptiveLimiter, Control, LONG_AGO, UNLIMITED};
use crate::time::{nanos_i64, since_epoch_ns};

/// A guess is started at this fraction of itself.
pub(super) const GUESS_BACKOFF: f64 = 0.7;
/// Each refusal of an episode not yet measured cuts the rate by this factor...
const STEP_BACKOFF: f64 = 0.95;
/// ... down to this fraction of the rate the episode began at.
const DEEPEST_BACKOFF: f64 = 0.5;
/// Once the rate has been measured, a new episode's first refusal cuts it to
/// this fraction (and to at most the headroom times the measurement).
const SOFT_BACKOFF: f64 = 0.9;
/// An episode is measured once it lasts this long (seconds) and
/// `MIN_COUNT / rate`, ...
const MIN_SPAN: f64 = 0.2;
const MIN_COUNT: f64 = 10.0;
/// ... and holds this many refusals after its first: two refusals alone
/// do not show that the provider stayed exhausted between them (the
/// callers may have sent less than it admits, and what it admitted says
/// so, not what its limit is).
const MIN_REFUSED: u32 = 3;
/// Refusals further apart than this (seconds) and `GAP_COUNT / rate` start a
/// new episode.
const GAP: f64 = 0.5;
const GAP_COUNT: f64 = 20.0;
/// The first guess counts the successes so far as if they took at most this
/// long (seconds), and at least `MIN_GUESS_COUNT` of them.
const GUESS_SPAN: f64 = 0.1;
const MIN_GUESS_COUNT: f64 = 5.0;
/// The most refusals kept for a fleet's exchange between two of its looks.
const FLEET_LOG_MAX: usize = 1024;
/// The longest the whole fleet is held back by one hint.
const MAX_PAUSE: Duration = Duration::from_secs(60);

/// A run of refusals close together, throughout which the provider's
/// bucket was empty.
#[derive(Debug, Clone, Copy)]
pub(super) struct Episode {
    /// When its first refusal was reported.
    first: i64,
    /// When its measurement began: at its first refusal, or (in a fleet)
    /// its last one within the others' lag of it.
    began: i64,
    /// The successes reported by then.
    successes: u64,
    /// The refusals reported since then.
    refused: u32,
    /// The rate paced at when it began, before its first cut.
    rate: f64,
    /// Whether it began while the limiter did not pace: its refusals are of
    /// requests sent before the guess, and say nothing about it.
    unpaced: bool,
}

impl AdaptiveLimiter {
    /// Report that an attempt was refused with `429` (an error of kind
    /// [`RateLimit`](crate::ErrorKind::RateLimit)), with the `Retry-After` it
    /// carried, if any. Starts pacing if the limiter was unlimited, and
    /// measures or cuts the rate as the [type's documentation](AdaptiveLimiter#how-it-works)
    /// describes.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// let limiter = AdaptiveLimiter::new();
    /// for _ in 0..20 {
    ///     limiter.on_success();
    /// }
    /// limiter.on_rate_limited(Some(Duration::from_secs(1)));
    /// assert!(limiter.rate().is_some());
    /// ```
    pub fn on_rate_limited(&self, retry_after: Option<Duration>) {
        self.refusal(retry_after, true, true);
    }

    /// [`on_rate_limited`](Self::on_rate_limited) for the retry engine, which
    /// knows whether the refused attempt waited for a slot: one sent while
    /// the limiter did not pace yet (the herd that went before anything was
    /// known) says nothing about the rate it paces at now, so it does not
    /// cut it.
    pub(crate) fn rate_limited(&self, retry_after: Option<Duration>, paced: bool) {
        self.refusal(retry_after, paced, true);
    }

    /// A refusal: reported `here`, or by another process of a fleet that
    /// shares the limiter. One of an attempt that did not wait for a slot
    /// (not `paced`) only drains the burst credit once the limiter paces.
    pub(super) fn refusal(&self, retry_after: Option<Duration>, paced: bool, here: bool) {
        let now = since_epoch_ns();
        let successes = self.successes.load(Relaxed);
        let mut control = self.lock();
        if paced || self.rate.load(Relaxed) == UNLIMITED {
            self.refused(&mut control, now, successes, retry_after);
        } else {
            // Not evidence about the pace, but it may bring news late.
            Self::within_lag(&mut control, now, successes);
        }
        if here {
            if let Some(log) = &mut control.fleet_log {
                if log.refusals.len() < FLEET_LOG_MAX {
                    log.refusals.push((retry_after, paced));
                }
                self.refusals.fetch_add(1, Relaxed);
                (log.wake)();
            }
        }
        // Whatever happened to the rate, the provider's bucket is empty now:
        // no burst of slots right after a refusal.
        self.drain(&mut control, now);
    }

    /// The bookkeeping of [`on_rate_limited`](Self::on_rate_limited).
    fn refused(
        &self,
        control: &mut Control,
        now: i64,
        successes: u64,
        retry_after: Option<Duration>,
    ) {
        let previous = control.last_refusal.replace(now);
        // What the provider says by refusing outweighs an earlier hint.
        control.hint = None;
        let bits = self.rate.load(Relaxed);
        if bits == UNLIMITED {
            let guess = self.guess(control, now, successes) * GUESS_BACKOFF;
            control.episode = Some(Episode {
                first: now,
                began: now,
                successes,
                refused: 0,
                rate: guess,
                unpaced: true,
            });
            self.set_rate(control, guess, now, successes, true);
            return;
        }
        let rate = self.clamp(f64::from_bits(bits));
        let gap = secs_to_nanos(GAP.max(GAP_COUNT / rate));
        let episode = match (control.episode, previous) {
            (Some(episode), Some(previous)) if now.saturating_sub(previous) <= gap => episode,
            _ => {
                // A new episode: cut now, measure if it goes on.
                control.episode = Some(Episode {
                    first: now,
                    began: now,
                    successes,
                    refused: 0,
                    rate,
                    unpaced: false,
                });
                // A measurement the rate has since grown past without a
                // refusal is stale: the provider admitted more than it said.
                let cut = if control.measured > 0.0 && control.measured >= rate {
                    (rate * SOFT_BACKOFF).min(control.measured * self.margin())
                } else if control.measured > 0.0 {
                    rate * SOFT_BACKOFF
                } else {
                    rate * STEP_BACKOFF
                };
                self.set_rate(control, cut, now, successes, false);
                self.pause_at_floor(control, cut, now, retry_after);
                return;
            }
        };
        let episode = match Self::within_lag(control, now, successes) {
            Some(moved) => moved,
            None => {
                let counted = Episode {
                    refused: episode.refused.saturating_add(1),
                    ..episode
                };
                control.episode = Some(counted);
                counted
            }
        };
        let span = nanos_to_secs(now.saturating_sub(episode.began));
        if span >= MIN_SPAN.max(MIN_COUNT / rate) && episode.refused >= MIN_REFUSED {
            let admitted = successes.saturating_sub(episode.successes) as f64 / span;
            if admitted > 0.0 {
                control.measured = admitted;
                let paced = admitted * self.margin();
                self.set_rate(control, paced, now, successes, false);
                self.pause_at_floor(control, paced, now, retry_after);
            } else if let Some(wait) = retry_after {
                // Nothing admitted for the whole episode: a closed window.
                // The fleet waits for it to open, at the rate it had.
                self.pause(control, now, wait);
            }
        } else if episode.unpaced {
            // Refusals of the unpaced burst that made the guess are still
            // coming in, and so are its successes: the guess can only rise.
            let guess = self.guess(control, now, successes) * GUESS_BACKOFF;
            if guess > rate {
                self.set_rate(control, guess, now, successes, true);
            }
        } else {
            // Too early to measure: every refusal is more evidence that the
            // rate is too high.
            let cut = (rate * STEP_BACKOFF).max(episode.rate * DEEPEST_BACKOFF);
            let fast = control.fast;
            self.set_rate(control, cut, now, successes, fast);
            self.pause_at_floor(control, cut, now, retry_after);
        }
    }

    /// In a fleet, the other processes' successes from before an episode
    /// (the provider's burst, at the start) arrive up to `lag` after it
    /// began, with their refusals: counted from the episode's first
    /// refusal, they would make the admitted rate look higher than it is.
    /// So an episode is measured from its last refusal within `lag` of its
    /// first: the episode as moved, if this is one.
    fn within_lag(control: &mut Control, now: i64, successes: u64) -> Option<Episode> {
        let lag = control.fleet_log.as_ref().map_or(0, |log| log.lag);
        let episode = control.episode.as_mut()?;
        if now.saturating_sub(episode.first) >= lag {
            return None;
        }
        episode.began = now;
        episode.successes = successes;
        episode.refused = 0;
        Some(*episode)
    }

    /// The rate to start pacing at when a limiter that did not pace learns
    /// it should: the last measurement, else the successes since it became
    /// unlimited as if they took at most [`GUESS_SPAN`]. Biased high: a rate
    /// too high is soon measured, one too low only slowly outgrown.
    pub(super) fn guess(&self, control: &Control, now: i64, successes: u64) -> f64 {
        if control.measured > 0.0 {
            return control.measured;
        }
        let since = self.unlimited_at.load(Relaxed);
        let counted = successes.saturating_sub(self.unlimited_successes.load(Relaxed)) as f64;
        let span = if since == LONG_AGO {
            GUESS_SPAN
        } else {
            nanos_to_secs(now.saturating_sub(since)).max(GUESS_SPAN)
        };
        counted.max(MIN_GUESS_COUNT) / span
    }

    /// Take away the burst credit of an idle spell: no slot still to hand
    /// out is due before `now`.
    pub(super) fn drain(&self, control: &mut Control, now: i64) {
        if self.rate.load(Relaxed) != UNLIMITED {
            control.schedule.not_before(now);
        }
    }

    /// Hold the fleet back for `retry_after` if the rate cannot go lower.
    pub(super) fn pause_at_floor(
        &self,
        control: &mut Control,
        rate: f64,
        now: i64,
        retry_after: Option<Duration>,
    ) {
        if let Some(wait) = retry_after {
            if rate <= self.floor() {
                self.pause(control, now, wait);
            }
        }
    }

    /// No slot before `now + wait` (at most [`MAX_PAUSE`]).
    pub(super) fn pause(&self, control: &mut Control, now: i64, wait: Duration) {
        let until = now.saturating_add(nanos_i64(wait.min(MAX_PAUSE)));
        control.schedule.not_before(until);
    }
}
