//! A policy's backoff delays, drawn by hand.

use std::iter::FusedIterator;
use std::time::Duration;

use crate::{Jitter, Policy, Wait};

/// The delays before retry 1, 2, 3, ... of one call, drawn from a [`Wait`]
/// and a [`Jitter`] exactly as the retry engine draws them when the error
/// gives no `Retry-After`.
///
/// Use it to drive your own retry loop, to simulate a policy, or to look at
/// the delays a policy produces. It is also an infinite [`Iterator`] of
/// delays. It never allocates, and never panics: past retry `u32::MAX` it
/// keeps drawing the delay of retry `u32::MAX`.
///
/// ```
/// use std::time::Duration;
/// use llm_resilience::{Backoff, Jitter, Wait};
///
/// let ms = Duration::from_millis;
/// let wait = Wait::exponential(ms(100), ms(1000));
///
/// let plain: Vec<_> = Backoff::new(wait, Jitter::None).take(6).collect();
/// assert_eq!(plain, [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]);
///
/// for (retry, delay) in (1..).zip(Backoff::new(wait, Jitter::Full).take(6)) {
///     assert!(delay <= wait.delay(retry));
/// }
/// ```
#[derive(Clone, Debug)]
pub struct Backoff {
    wait: Wait,
    jitter: Jitter,
    /// The retry whose delay is drawn next, from 1.
    retry: u32,
    /// Decorrelated jitter's previous delay; `None` until the first draw.
    previous: Option<Duration>,
}

impl Backoff {
    /// The delays of `wait` spread by `jitter`, starting at retry 1.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::{Backoff, Jitter, Wait};
    ///
    /// let mut backoff = Backoff::new(Wait::fixed(Duration::from_secs(2)), Jitter::None);
    /// assert_eq!(backoff.next_delay(), Duration::from_secs(2));
    /// ```
    pub const fn new(wait: Wait, jitter: Jitter) -> Self {
        Backoff {
            wait,
            jitter,
            retry: 1,
            previous: None,
        }
    }

    /// The delay before the next retry: retry 1 on the first call, then 2,
    /// 3, ... Each call draws afresh, as the engine does after each failed
    /// attempt.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::{Backoff, Jitter, Wait};
    ///
    /// let ms = Duration::from_millis;
    /// let mut backoff = Backoff::new(Wait::exponential(ms(10), ms(2000)), Jitter::Decorrelated);
    /// for _ in 0..100 {
    ///     let delay = backoff.next_delay();
    ///     assert!(delay >= ms(10) && delay <= ms(2000));
    /// }
    /// ```
    pub fn next_delay(&mut self) -> Duration {
        let delay = Self::delay_after(&self.wait, self.jitter, self.retry, &mut self.previous);
        self.retry = self.retry.saturating_add(1);
        delay
    }

    /// Start again at retry 1, as a new call would, forgetting decorrelated
    /// jitter's previous delay.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::{Backoff, Jitter, Wait};
    ///
    /// let ms = Duration::from_millis;
    /// let mut backoff = Backoff::new(Wait::exponential(ms(50), ms(800)), Jitter::None);
    /// backoff.next_delay();
    /// backoff.next_delay();
    /// backoff.reset();
    /// assert_eq!(backoff.next_delay(), ms(50));
    /// ```
    pub fn reset(&mut self) {
        self.retry = 1;
        self.previous = None;
    }

    /// The delay after failed attempt `retry` (from 1) of `wait` with
    /// `jitter`; `previous` carries decorrelated jitter's last delay between
    /// calls (`None` before the first). The one draw both a [`Backoff`] and
    /// the engine's retries make.
    pub(crate) fn delay_after(
        wait: &Wait,
        jitter: Jitter,
        retry: u32,
        previous: &mut Option<Duration>,
    ) -> Duration {
        let d = wait.delay(retry);
        let previous = previous.get_or_insert(wait.bounds().0);
        jitter.apply(wait, d, previous)
    }
}

impl Iterator for Backoff {
    type Item = Duration;

    /// Always `Some(self.next_delay())`: the delays never run out, so bound
    /// the iteration yourself, with `take` for instance.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::{Backoff, Jitter, Wait};
    ///
    /// let delays = Backoff::new(Wait::none(), Jitter::Full).take(3);
    /// assert_eq!(delays.sum::<Duration>(), Duration::ZERO);
    /// ```
    fn next(&mut self) -> Option<Duration> {
        Some(self.next_delay())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

impl FusedIterator for Backoff {}

impl Policy {
    /// The backoff delays of this policy's [`wait`](Policy::wait) and
    /// [`jitter`](Policy::jitter), from retry 1. The policy's other limits
    /// (attempts, deadline, `Retry-After`) are not applied.
    ///
    /// ```
    /// use std::time::Duration;
    /// use llm_resilience::{Jitter, Policy, Wait};
    ///
    /// let ms = Duration::from_millis;
    /// let policy = Policy::new()
    ///     .wait(Wait::exponential(ms(100), ms(400)))
    ///     .jitter(Jitter::None);
    /// let delays: Vec<_> = policy.backoff().take(4).collect();
    /// assert_eq!(delays, [ms(100), ms(200), ms(400), ms(400)]);
    /// ```
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.wait, self.jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn waits() -> [Wait; 5] {
        [
            Wait::none(),
            Wait::fixed(MS(70)),
            Wait::exponential(MS(5), MS(2000)),
            Wait::exponential_with_factor(MS(10), MS(3000), 1.5),
            Wait::exponential(MS(500), MS(100)),
        ]
    }

    #[test]
    fn no_jitter_is_the_wait_sequence() {
        for wait in waits() {
            let got: Vec<_> = Backoff::new(wait, Jitter::None).take(40).collect();
            let want: Vec<_> = (1..=40).map(|n| wait.delay(n)).collect();
            assert_eq!(got, want, "{wait:?}");
        }
    }

    #[test]
    fn full_and_equal_stay_under_the_wait_delay() {
        for wait in waits() {
            let (_, cap) = wait.bounds();
            let full = Backoff::new(wait, Jitter::Full).take(200);
            let equal = Backoff::new(wait, Jitter::Equal).take(200);
            for ((n, f), e) in (1..).zip(full).zip(equal) {
                let d = wait.delay(n);
                assert!(f <= d && f <= cap, "{wait:?} retry {n}: {f:?}");
                assert!(
                    e >= d / 2 && e <= d && e <= cap,
                    "{wait:?} retry {n}: {e:?}"
                );
            }
        }
    }

    #[test]
    fn decorrelated_stays_within_base_and_cap() {
        for wait in waits() {
            let (base, cap) = wait.bounds();
            let mut previous = base;
            for d in Backoff::new(wait, Jitter::Decorrelated).take(500) {
                assert!(d >= base && d <= cap, "{wait:?}: {d:?}");
                assert!(d <= previous.saturating_mul(3).max(base), "{wait:?}: {d:?}");
                previous = d;
            }
        }
    }

    #[test]
    fn matches_the_engine_draw_for_draw() {
        // Run a call that always fails through the engine, recording the
        // delays it would sleep, and draw the same retries from the same
        // random stream by hand.
        for jitter in [
            Jitter::None,
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
        ] {
            for wait in waits() {
                let policy = Policy::new().max_attempts(31).wait(wait).jitter(jitter);
                let sleeps = crate::testing::skip_sleeps();
                fastrand::seed(7);
                let result: Result<(), std::io::Error> =
                    policy.call(|| Err(std::io::ErrorKind::TimedOut.into()));
                assert!(result.is_err());
                let engine = sleeps.delays();
                drop(sleeps);

                fastrand::seed(7);
                let by_hand: Vec<_> = policy.backoff().take(30).collect();
                assert_eq!(engine.len(), 30);
                assert_eq!(by_hand, engine, "{wait:?} {jitter:?}");
            }
        }
    }

    #[test]
    fn reset_starts_over() {
        let wait = Wait::exponential(MS(5), MS(2000));
        let mut backoff = Backoff::new(wait, Jitter::None);
        let first: Vec<_> = backoff.by_ref().take(10).collect();
        backoff.reset();
        let again: Vec<_> = backoff.by_ref().take(10).collect();
        assert_eq!(first, again);

        let mut dec = Backoff::new(wait, Jitter::Decorrelated);
        dec.by_ref().take(50).for_each(drop);
        dec.reset();
        // The first decorrelated draw after a reset is in [base, 3 * base].
        let d = dec.next_delay();
        assert!(d >= MS(5) && d <= MS(15), "{d:?}");
    }

    #[test]
    fn saturates_past_u32_max() {
        for jitter in [
            Jitter::None,
            Jitter::Full,
            Jitter::Equal,
            Jitter::Decorrelated,
        ] {
            let wait = Wait::exponential(MS(5), MS(2000));
            let mut backoff = Backoff::new(wait, jitter);
            backoff.retry = u32::MAX - 1;
            for _ in 0..5 {
                assert!(backoff.next_delay() <= MS(2000));
            }
            assert_eq!(backoff.retry, u32::MAX);
        }
        let mut plain = Backoff::new(
            Wait::exponential(Duration::MAX, Duration::MAX),
            Jitter::None,
        );
        plain.retry = u32::MAX;
        assert_eq!(plain.next_delay(), Duration::MAX);
        assert_eq!(plain.next_delay(), Duration::MAX);
    }

    #[test]
    fn policy_backoff_uses_its_wait_and_jitter() {
        let wait = Wait::exponential_with_factor(MS(10), MS(1000), 3.0);
        let policy = Policy::new().wait(wait).jitter(Jitter::None);
        let got: Vec<_> = policy.backoff().take(6).collect();
        assert_eq!(got, [10, 30, 90, 270, 810, 1000].map(MS));
    }
}
