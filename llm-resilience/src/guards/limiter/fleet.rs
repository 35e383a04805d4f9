//! What a limiter shared by a fleet of processes (`shared::SharedLimiter`)
//! reads from it and tells it, from its background exchange only: never on
//! a call's path.
//!
//! Every process's limiter runs the one algorithm on the fleet's evidence:
//! its own successes and refusals, and those of the other processes, which
//! the exchange feeds it as they arrive. So every rate it learns is the
//! provider's, for the whole fleet, as one limiter in one process would
//! learn it; each process paces at its share of that rate (`share`).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use super::{AdaptiveLimiter, UNLIMITED};
use crate::time::since_epoch_ns;

/// A refusal reported here, for the rest of the fleet: the `Retry-After`
/// it carried, and whether its attempt waited for a slot.
pub(crate) type Refusal = (Option<Duration>, bool);

impl AdaptiveLimiter {
    /// Keep the refusals reported here for [`take_refusals`](Self::take_refusals),
    /// and call `wake` after each (under the limiter's lock: it must be
    /// quick, and not call back into the limiter). The other processes'
    /// news arrives up to `lag` late.
    pub(crate) fn share_with_fleet(&self, wake: Arc<dyn Fn() + Send + Sync>, lag: Duration) {
        self.lock().fleet_log = Some(super::FleetLog {
            refusals: Vec::new(),
            wake,
            lag: crate::time::nanos_i64(lag),
        });
    }

    /// The refusals reported here so far: one atomic load, for the exchange
    /// to notice new ones without the lock.
    pub(crate) fn refusals(&self) -> u64 {
        self.refusals.load(Relaxed)
    }

    /// The refusals reported here since the last call.
    pub(crate) fn take_refusals(&self) -> Vec<Refusal> {
        let mut control = self.lock();
        control
            .fleet_log
            .as_mut()
            .map(|log| std::mem::take(&mut log.refusals))
            .unwrap_or_default()
    }

    /// The slots handed out so far, and whether a caller holds one not due
    /// yet (it waits for its turn): for the exchange to tell a process
    /// whose calls go on from one whose calls stopped.
    pub(crate) fn demand(&self) -> (u64, bool) {
        let now = since_epoch_ns();
        let control = self.lock();
        let schedule = &control.schedule;
        let waiting = self.rate.load(Relaxed) != UNLIMITED
            && schedule.issued > 0
            && schedule.due(schedule.issued - 1) > now;
        (schedule.issued, waiting)
    }

    /// The successes counted so far, here and elsewhere.
    pub(crate) fn successes(&self) -> u64 {
        self.successes.load(Relaxed)
    }

    /// Successes reported by other processes: they count towards the
    /// admitted rate, growth and guesses, as this process's own do (but do
    /// not grow its initial window, which holds its own attempts).
    pub(crate) fn add_successes(&self, n: u64) {
        self.successes.fetch_add(n, Relaxed);
    }

    /// A refusal reported by another process.
    pub(crate) fn refused_elsewhere(&self, retry_after: Option<Duration>, paced: bool) {
        self.refusal(retry_after, paced, false);
    }

    /// The rate learnt (the fleet's), and whether it grows fast; `None`
    /// while it does not pace.
    pub(crate) fn learned(&self) -> Option<(f64, bool)> {
        let control = self.lock();
        let bits = self.rate.load(Relaxed);
        (bits != UNLIMITED).then(|| (self.clamp(f64::from_bits(bits)), control.fast))
    }

    /// Take on the fleet's rate, learnt before this process listened: pace
    /// at `rate` (the fleet's) if it does not pace yet, growing `fast` or
    /// not.
    pub(crate) fn adopt(&self, rate: f64, fast: bool) {
        let now = since_epoch_ns();
        let successes = self.successes.load(Relaxed);
        let mut control = self.lock();
        if self.rate.load(Relaxed) == UNLIMITED {
            self.set_rate(&mut control, rate, now, successes, fast);
            self.drain(&mut control, now);
        }
    }

    /// The share of the rate this process paces at: `1 / live processes`.
    /// A change re-spaces the slots not yet due, rescales the token limit
    /// announced, if any, and, before the limiter has learnt anything,
    /// scales its initial window, so that `n` processes starting together
    /// send no larger a herd than one.
    pub(crate) fn set_share(&self, share: f64) {
        if !(share > 0.0 && share <= 1.0) {
            return;
        }
        let now = since_epoch_ns();
        let mut control = self.lock();
        let scale = share / self.share();
        if scale == 1.0 {
            return;
        }
        self.share.store(share.to_bits(), Relaxed);
        let bits = self.rate.load(Relaxed);
        if bits != UNLIMITED {
            let interval = self.pacing_interval(self.clamp(f64::from_bits(bits)));
            control.schedule.respace(now, interval, self.credit());
        }
        // A token limit announced is the fleet's too.
        control.tokens.rescale(now, scale);
        let window = self.window.load(Relaxed);
        if window != 0 {
            let scaled = (f64::from(window) * scale).round() as u32;
            self.window.store(scaled.max(2), Relaxed);
        }
    }
}

#[cfg(all(test, feature = "tokio"))]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::time::advance;

    use crate::AdaptiveLimiter;

    const MS: Duration = Duration::from_millis(1);

    /// The provider's burst, admitted before the first refusal but reported
    /// by the other processes with their refusals, a publication later, is
    /// not counted as admitted during the episode.
    #[tokio::test(start_paused = true)]
    async fn the_others_burst_reported_late_does_not_inflate_the_measurement() {
        let limiter = AdaptiveLimiter::new();
        limiter.share_with_fleet(Arc::new(|| {}), 40 * MS);
        // This process's part of the burst, then its first refusal.
        for _ in 0..5 {
            limiter.on_success();
        }
        limiter.on_rate_limited(Some(Duration::from_secs(1)));
        // 20 ms later the others' part of the burst arrives, with their
        // refusals.
        advance(20 * MS).await;
        limiter.add_successes(15);
        for _ in 0..3 {
            limiter.refused_elsewhere(Some(Duration::from_secs(1)), false);
        }
        // Then the provider admits 100 a second, refusing all along.
        for _ in 0..8 {
            advance(50 * MS).await;
            limiter.add_successes(5);
            limiter.refused_elsewhere(Some(Duration::from_secs(1)), true);
        }
        let rate = limiter.rate().unwrap();
        assert!((rate - 95.0).abs() < 1e-6, "{rate}");
    }

    /// A token limit announced is split with the fleet's share, and split
    /// again when the share changes: a call's tokens wait twice as long
    /// once twice as many processes share the limit, and half as long once
    /// half as many do.
    #[tokio::test(start_paused = true)]
    async fn a_token_limit_follows_the_share() {
        let limiter = AdaptiveLimiter::new().headroom(1.0);
        limiter.share_with_fleet(Arc::new(|| {}), 40 * MS);
        // 600 000 a minute is 10 000 a second; none left now.
        limiter.observe_token_limit(600_000, Some(0));
        let wait = |cost| limiter.admit_within(Duration::MAX, cost).unwrap().0;
        let whole = wait(10_000);
        assert_eq!(whole, Duration::from_secs(1));
        limiter.set_share(0.5);
        // The next 10 000 tokens now take two seconds to refill.
        let halved = wait(10_000);
        assert_eq!(halved, Duration::from_secs(3));
        limiter.set_share(1.0);
        let back = wait(10_000);
        assert_eq!(back, Duration::from_secs(4));
    }
}
