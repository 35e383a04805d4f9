//! The settings of a [`Fleet`](super::Fleet): key prefix, timeouts and
//! intervals.

use std::time::Duration;

/// How a [`Fleet`](super::Fleet) talks to Redis. Every builder is a `const
/// fn`.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | [`prefix`](Self::prefix) | `"llm-resilience"` | first part of every key and channel |
/// | [`timeout`](Self::timeout) | 50 ms | the longest any Redis operation (connecting included) may take; past it, Redis counts as unreachable |
/// | [`watch_every`](Self::watch_every) | 20 ms | how often the local guard is checked for a change to publish (a breaker that opened, a `429` the limiter learnt from) |
/// | [`sync_every`](Self::sync_every) | 100 ms | how often counts (the budget) and membership (the limiter) are synced |
/// | [`member_ttl`](Self::member_ttl) | 2 s | a process not heard from for this long is no longer counted as live |
/// | [`key_ttl`](Self::key_ttl) | 60 s | the TTL of every key, renewed on every write |
/// | [`reconnect`](Self::reconnect) | 100 ms to 2 s | the backoff between attempts to reach Redis again, doubling |
///
/// ```
/// use std::time::Duration;
/// use llm_resilience::shared::FleetOptions;
///
/// const OPTIONS: FleetOptions = FleetOptions::new()
///     .prefix("billing-api")
///     .timeout(Duration::from_millis(100));
/// assert_eq!(OPTIONS.get_prefix(), "billing-api");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FleetOptions {
    pub(super) prefix: &'static str,
    pub(super) timeout: Duration,
    pub(super) watch_every: Duration,
    pub(super) sync_every: Duration,
    pub(super) member_ttl: Duration,
    pub(super) key_ttl: Duration,
    pub(super) reconnect_min: Duration,
    pub(super) reconnect_max: Duration,
}

impl FleetOptions {
    /// The defaults (see the table in the [type docs](Self)). Every
    /// duration given to a builder counts as at least 1 ms and at most a
    /// year.
    pub const fn new() -> Self {
        FleetOptions {
            prefix: "llm-resilience",
            timeout: Duration::from_millis(50),
            watch_every: Duration::from_millis(20),
            sync_every: Duration::from_millis(100),
            member_ttl: Duration::from_secs(2),
            key_ttl: Duration::from_secs(60),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(2),
        }
    }

    /// The first part of every key and channel, so that several
    /// applications (or tests) can share one Redis. Default
    /// `"llm-resilience"`.
    pub const fn prefix(mut self, prefix: &'static str) -> Self {
        self.prefix = prefix;
        self
    }

    /// The prefix set by [`prefix`](Self::prefix).
    pub const fn get_prefix(&self) -> &'static str {
        self.prefix
    }

    /// The longest any Redis operation may take, connecting included;
    /// past it, Redis counts as unreachable and the guard runs on local
    /// state. Only the background exchange waits for it. Default 50 ms;
    /// zero counts as 1 ms.
    pub const fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = at_least_a_millisecond(timeout);
        self
    }

    /// How often the local guard is checked for a change the fleet should
    /// know at once (one atomic load each time). Default 20 ms; zero counts
    /// as 1 ms.
    pub const fn watch_every(mut self, every: Duration) -> Self {
        self.watch_every = at_least_a_millisecond(every);
        self
    }

    /// How often a budget's counts and a limiter's membership are synced
    /// (one round trip each). Default 100 ms; zero counts as 1 ms.
    pub const fn sync_every(mut self, every: Duration) -> Self {
        self.sync_every = at_least_a_millisecond(every);
        self
    }

    /// How long a process not heard from still counts as live (its share of
    /// the limit and its budget counts stay reserved). Default 2 s; keep it
    /// well above [`sync_every`](Self::sync_every).
    pub const fn member_ttl(mut self, ttl: Duration) -> Self {
        self.member_ttl = at_least_a_millisecond(ttl);
        self
    }

    /// The TTL of every key, renewed on every write: the longest a name's
    /// keys stay in Redis once no process uses it, and how long a learnt
    /// rate or an opening outlives the last process that knew it. Default
    /// 60 s.
    pub const fn key_ttl(mut self, ttl: Duration) -> Self {
        self.key_ttl = at_least_a_millisecond(ttl);
        self
    }

    /// The backoff between attempts to reach Redis again: from `min`,
    /// doubling up to `max`, with jitter. Default 100 ms to 2 s.
    pub const fn reconnect(mut self, min: Duration, max: Duration) -> Self {
        self.reconnect_min = at_least_a_millisecond(min);
        let max = at_least_a_millisecond(max);
        self.reconnect_max = if max.as_nanos() < self.reconnect_min.as_nanos() {
            self.reconnect_min
        } else {
            max
        };
        self
    }
}

impl Default for FleetOptions {
    /// [`FleetOptions::new`].
    fn default() -> Self {
        Self::new()
    }
}

/// The longest any duration of the options may be: a year. Longer ones
/// (up to `Duration::MAX`) count as a year, which is what they mean in
/// practice, and keeps every deadline and every Redis expiry representable.
const LONGEST: Duration = Duration::from_secs(365 * 24 * 60 * 60);

/// `d`, at least 1 ms and at most [`LONGEST`].
const fn at_least_a_millisecond(d: Duration) -> Duration {
    if d.as_nanos() < 1_000_000 {
        Duration::from_millis(1)
    } else if d.as_nanos() > LONGEST.as_nanos() {
        LONGEST
    } else {
        d
    }
}

/// Milliseconds, for Redis (at least 1).
pub(super) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_clamped_to_what_works() {
        let huge = FleetOptions::new()
            .timeout(Duration::MAX)
            .watch_every(Duration::MAX)
            .sync_every(Duration::MAX)
            .member_ttl(Duration::MAX)
            .key_ttl(Duration::MAX)
            .reconnect(Duration::MAX, Duration::MAX);
        for d in [
            huge.timeout,
            huge.watch_every,
            huge.sync_every,
            huge.member_ttl,
            huge.key_ttl,
            huge.reconnect_min,
            huge.reconnect_max,
        ] {
            assert_eq!(d, LONGEST);
        }
        // A year in milliseconds is well inside what Redis takes.
        assert!(millis(huge.key_ttl) < (i64::MAX as u64) / 1_000);
        let zero = FleetOptions::new().reconnect(Duration::ZERO, Duration::ZERO);
        assert_eq!(zero.reconnect_min, Duration::from_millis(1));
        assert_eq!(zero.reconnect_max, Duration::from_millis(1));
        let upside_down =
            FleetOptions::new().reconnect(Duration::from_secs(5), Duration::from_secs(1));
        assert_eq!(upside_down.reconnect_max, Duration::from_secs(5));
    }
}
