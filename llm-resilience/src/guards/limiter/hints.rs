//! What providers announce in their headers: the budget left until a reset,
//! and the request and token limits, which set the pace at once.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::refusals::GUESS_BACKOFF;
use super::{AdaptiveLimiter, UNLIMITED};
use crate::time::{nanos_i64, since_epoch_ns};

impl AdaptiveLimiter {
    /// Report a provider's remaining budget, read from the headers of any
    /// response (a success included): `remaining` requests until the window
    /// resets in `reset` (OpenAI's `x-ratelimit-remaining-requests` and
    /// `x-ratelimit-reset-requests`, Anthropic's
    /// `anthropic-ratelimit-requests-remaining` and `-reset`).
    ///
    /// When the budget would run out before the reset at the current pace,
    /// the limiter paces at `remaining / reset` (and grows from there as
    /// successes come in); with nothing remaining, every caller waits for the
    /// reset (at most 60 s). A budget that lasts leaves the limiter as it is.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// let limiter = AdaptiveLimiter::new();
    /// limiter.observe_remaining(4_999, Duration::from_millis(12));
    /// assert_eq!(limiter.rate(), None);
    /// limiter.observe_remaining(30, Duration::from_secs(3));
    /// assert_eq!(limiter.rate(), Some(10.0));
    /// ```
    pub fn observe_remaining(&self, remaining: u64, reset: Duration) {
        if reset.is_zero() {
            // The window resets now: nothing to hold back for.
            return;
        }
        let now = since_epoch_ns();
        let successes = self.successes.load(Relaxed);
        let mut control = self.lock();
        let control = &mut *control;
        let bits = self.rate.load(Relaxed);
        let until = now.saturating_add(nanos_i64(reset));
        // The hint holds until its reset; then the rate from before it comes
        // back (see `grow`).
        let before = control.hint.map_or(bits, |(_, before)| before);
        if remaining == 0 {
            if bits == UNLIMITED {
                let guess = self.guess(control, now, successes) * GUESS_BACKOFF;
                self.set_rate(control, guess, now, successes, true);
                control.hint = Some((until, before));
            }
            // With a limit announced, the next request is admitted one
            // interval after the bucket ran dry, whatever the full reset.
            let wait = if control.announced > 0.0 {
                reset.min(Duration::from_secs_f64(1.0 / control.announced))
            } else {
                reset
            };
            self.pause(control, now, wait);
            return;
        }
        if control.announced > 0.0 {
            // With a limit announced, the provider's bucket refills at that
            // rate until its reset: what remains is the burst on top of it,
            // not the whole budget.
            return;
        }
        let budget = remaining as f64 / reset.as_secs_f64();
        let current = if bits == UNLIMITED {
            self.ceiling()
        } else {
            f64::from_bits(bits)
        };
        if budget < current {
            self.set_rate(control, budget, now, successes, true);
            control.hint = Some((until, before));
        }
    }

    /// Tell the limiter the limit the provider announces, in requests per
    /// minute: OpenAI's `x-ratelimit-limit-requests`, Anthropic's
    /// `anthropic-ratelimit-requests-limit`. The limiter then paces at that
    /// rate less its [`headroom`](Self::headroom) at most, from now on
    /// (also when it did not pace yet), and never grows past it; a new limit
    /// sets the pace anew, up or down. A limit of 0 is ignored.
    ///
    /// `http::check` and
    /// `http::observe` call it for you, with
    /// [`observe_remaining`](Self::observe_remaining), from every response
    /// of a call that names this limiter.
    ///
    /// ```
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// let limiter = AdaptiveLimiter::new();
    /// limiter.observe_limit(6_000); // 100 a second
    /// assert_eq!(limiter.rate(), Some(95.0)); // less the default 5 % headroom
    /// ```
    pub fn observe_limit(&self, per_minute: u64) {
        if per_minute == 0 {
            return;
        }
        let announced = per_minute as f64 / 60.0;
        let now = since_epoch_ns();
        let successes = self.successes.load(Relaxed);
        let mut control = self.lock();
        let control = &mut *control;
        let changed = control.announced != announced;
        control.announced = announced;
        let target = announced * self.margin();
        let bits = self.rate.load(Relaxed);
        if bits == UNLIMITED || f64::from_bits(bits) > target || changed {
            // Pace at the announced rate; growth after a cut stops there.
            self.set_rate(control, target, now, successes, true);
        }
    }

    /// Tell the limiter the token limit the provider announces, in tokens
    /// per minute (OpenAI's `x-ratelimit-limit-tokens`, Anthropic's
    /// `anthropic-ratelimit-input-tokens-limit`), and what is left of it
    /// now, if known. From then on, a call that states what it costs
    /// (`#[retry(cost = ...)]`, [`Hooks::cost`](crate::hooks::Hooks::cost)) waits
    /// until the provider's token bucket, refilling at that limit less the
    /// [`headroom`](Self::headroom), holds its tokens: a large prompt waits
    /// its turn instead of being refused while requests remain. Calls that
    /// state no cost are paced on requests alone. A limit of 0 is ignored.
    ///
    /// `http::check` calls it for you from every
    /// answer of a call that runs under this limiter.
    ///
    /// ```
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// let limiter = AdaptiveLimiter::new();
    /// limiter.observe_token_limit(600_000, Some(0)); // 10 000 a second, none left
    /// ```
    pub fn observe_token_limit(&self, per_minute: u64, remaining: Option<u64>) {
        if per_minute == 0 {
            return;
        }
        let now = since_epoch_ns();
        let mut control = self.lock();
        let tokens = &mut control.tokens;
        // A fleet's processes share the provider's token bucket.
        let per_second = per_minute as f64 / 60.0 * self.margin() * self.share();
        if tokens.per_second == 0.0 {
            // The attempts let out before the limit was known are on their
            // way, and their tokens with them.
            tokens.issued = tokens
                .issued
                .saturating_add(self.window_tokens.load(Relaxed));
        }
        tokens.per_second = per_second;
        // The bucket holds a minute's worth, as providers' per-minute limits
        // do; until told what is left, it is full. (A `remaining` above the
        // limit is not believed.)
        let remaining = remaining.map(|left| left.min(per_minute));
        tokens.burst = per_minute as f64 * self.share();
        tokens.idle_credit(now);
        if let Some(remaining) = remaining {
            tokens.observe_remaining(now, remaining);
        }
        self.token_pacing.store(true, Relaxed);
    }
}
