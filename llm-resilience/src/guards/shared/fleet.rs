//! [`Fleet`]: a Redis server and the thread that runs the shared guards'
//! exchanges with it.

use std::fmt;
use std::sync::Arc;

use tokio::sync::{oneshot, watch};

use super::exchange::{drive, Exchange};
use super::options::FleetOptions;
use super::{SharedBreaker, SharedBudget, SharedLimiter};
use crate::{AdaptiveLimiter, CircuitBreaker, RetryBudget};

/// A Redis server shared by a fleet of processes, and the background
/// thread that runs the exchanges of this process's shared guards with it
/// (one tokio task per guard, on a current-thread runtime of the thread's
/// own). Cheap to clone; the thread stops once the `Fleet` and every guard
/// made from it are dropped.
///
/// Nothing connects to Redis before a guard is made, and nothing waits for
/// it: a guard made while Redis is down runs on local state until it is up.
/// Each guard holds its own connections: one for commands (multiplexed),
/// and, for a breaker and a limiter, one subscribed to its channel.
///
/// ```no_run
/// use llm_resilience::shared::{Fleet, FleetOptions};
/// use llm_resilience::CircuitBreaker;
///
/// let fleet = Fleet::with_options("redis://10.0.0.5:6379/", FleetOptions::new().prefix("chat"))?;
/// let breaker = fleet.breaker("openai", CircuitBreaker::new());
/// assert!(breaker.try_acquire().is_ok());
/// # Ok::<(), redis::RedisError>(())
/// ```
#[derive(Clone)]
pub struct Fleet {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    options: FleetOptions,
    runtime: tokio::runtime::Handle,
    /// Set by [`Fleet::close`]; every exchange holds a receiver, so that
    /// `closed()` on it resolves once they have all ended.
    closing: Arc<watch::Sender<bool>>,
    /// Dropped with the last `Fleet` or guard: the thread's runtime stops.
    _stop: oneshot::Sender<()>,
}

impl Fleet {
    /// A fleet on the Redis server at `url` (`redis://host:port/db`, or
    /// `redis+unix:///path`), with the default [`FleetOptions`].
    ///
    /// # Errors
    ///
    /// When `url` is not a Redis URL, or the background thread cannot be
    /// started. Redis itself being down is not an error.
    pub fn new(url: &str) -> redis::RedisResult<Fleet> {
        Self::with_options(url, FleetOptions::new())
    }

    /// [`Fleet::new`], with `options`.
    ///
    /// # Errors
    ///
    /// As [`Fleet::new`].
    pub fn with_options(url: &str, options: FleetOptions) -> redis::RedisResult<Fleet> {
        let client = redis::Client::open(url)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("llm-resilience-fleet".into())
            .spawn(move || {
                // Runs the exchanges until the last handle is dropped.
                let _ = runtime.block_on(stopped);
            })?;
        Ok(Fleet {
            inner: Arc::new(Inner {
                client,
                options,
                runtime: handle,
                closing: Arc::new(watch::Sender::new(false)),
                _stop: stop,
            }),
        })
    }

    /// Leave the fleet now, once this process's calls are done or before it
    /// exits: every guard made from this `Fleet` takes its entry out of
    /// Redis and tells the others, so that a shared limiter's share goes to
    /// the processes still calling within a round trip, rather than after
    /// [`member_ttl`](FleetOptions::member_ttl) (2 s) without news of this
    /// one. Waits for that at most twice [`timeout`](FleetOptions::timeout)
    /// (100 ms by default); Redis being down is not an error.
    ///
    /// The guards go on working afterwards, on their local state alone, as
    /// when Redis is down, and never reconnect; guards made after it do not
    /// connect at all. A limiter goes on pacing at the share it had: a
    /// process that keeps calling after `close` (draining its work) sends
    /// that share on top of what the others now take, so close once the
    /// calls are done.
    ///
    /// It needs no runtime of the caller's: the wait runs on the fleet's
    /// own thread, so any executor can await it.
    ///
    /// ```no_run
    /// use llm_resilience::shared::Fleet;
    /// use llm_resilience::AdaptiveLimiter;
    ///
    /// # async fn run() -> Result<(), redis::RedisError> {
    /// let fleet = Fleet::new("redis://127.0.0.1:6379/")?;
    /// let limiter = fleet.limiter("openai", AdaptiveLimiter::new());
    /// // ... the process's calls ...
    /// fleet.close().await;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn close(&self) {
        self.inner.closing.send_replace(true);
        // Waited for on the fleet's own runtime, whose timer is always on:
        // the caller's executor needs none (any executor, or a plain
        // `block_on`, will do).
        let closing = Arc::clone(&self.inner.closing);
        let bound = self.inner.options.timeout.saturating_mul(2);
        let (done, finished) = oneshot::channel::<()>();
        self.inner.runtime.spawn(async move {
            let _ = tokio::time::timeout(bound, closing.closed()).await;
            let _ = done.send(());
        });
        let _ = finished.await;
    }

    /// The options it was made with.
    pub fn options(&self) -> &FleetOptions {
        &self.inner.options
    }

    /// A circuit breaker shared by every process that makes one with this
    /// `name` on this Redis (and prefix): `breaker`'s settings and local
    /// state, plus the fleet's openings. See [`SharedBreaker`].
    pub fn breaker(&self, name: &str, breaker: CircuitBreaker) -> SharedBreaker {
        SharedBreaker::start(self, name, breaker)
    }

    /// A retry budget shared by every process that makes one with this
    /// `name`: `budget`'s ratio, floor and window, over the fleet's calls.
    /// See [`SharedBudget`].
    pub fn budget(&self, name: &str, budget: RetryBudget) -> SharedBudget {
        SharedBudget::start(self, name, budget)
    }

    /// An adaptive limiter shared by every process that makes one with
    /// this `name`: `limiter`'s settings, each process pacing at its share
    /// of the fleet's rate. See [`SharedLimiter`].
    pub fn limiter(&self, name: &str, limiter: AdaptiveLimiter) -> SharedLimiter {
        SharedLimiter::start(self, name, limiter)
    }

    /// A key of this fleet: `{prefix}:{kind}:{name}{suffix}`.
    pub(super) fn key(&self, kind: &str, name: &str, suffix: &str) -> String {
        key_of(self.inner.options.prefix, kind, name, suffix)
    }

    /// A pub/sub channel of this fleet: `{prefix}:{kind}:{name}:events`,
    /// and `@{db}` for a database other than 0. Keys are per database, but
    /// channels are the server's: without the database in its name, fleets
    /// on two databases of one server would hear each other.
    pub(super) fn channel(&self, kind: &str, name: &str) -> String {
        let db = self.inner.client.get_connection_info().redis.db;
        let suffix = if db == 0 {
            ":events".to_owned()
        } else {
            format!(":events@{db}")
        };
        key_of(self.inner.options.prefix, kind, name, &suffix)
    }

    /// Starts the exchange of a guard.
    pub(super) fn spawn(&self, exchange: impl Exchange) {
        let client = self.inner.client.clone();
        let options = self.inner.options;
        let closing = self.inner.closing.subscribe();
        self.inner
            .runtime
            .spawn(drive(client, options, exchange, closing));
    }

    /// Keeps the thread running while a guard lives.
    pub(super) fn keep(&self) -> Fleet {
        self.clone()
    }
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field("redis", self.inner.client.get_connection_info())
            .field("options", &self.inner.options)
            .finish()
    }
}

/// `{prefix}:{kind}:{name}{suffix}`, with every `\\` and `:` in `name`
/// escaped by a `\\`: a name holds no bare `:`, so no name's key is
/// another's with a suffix (the limiter `x`'s members are
/// `...:limiter:x:members`, the limiter `x:members`'s hash
/// `...:limiter:x\\:members`).
pub(super) fn key_of(prefix: &str, kind: &str, name: &str, suffix: &str) -> String {
    let mut key = String::with_capacity(prefix.len() + kind.len() + name.len() + suffix.len() + 2);
    key.push_str(prefix);
    key.push(':');
    key.push_str(kind);
    key.push(':');
    for c in name.chars() {
        if matches!(c, ':' | '\\') {
            key.push('\\');
        }
        key.push(c);
    }
    key.push_str(suffix);
    key
}

#[cfg(test)]
mod tests {
    use super::key_of;

    #[test]
    fn no_name_makes_another_names_key() {
        assert_eq!(key_of("p", "limiter", "openai", ""), "p:limiter:openai");
        let members = key_of("p", "limiter", "x", ":members");
        let named = key_of("p", "limiter", "x:members", "");
        assert_eq!(members, "p:limiter:x:members");
        assert_eq!(named, "p:limiter:x\\:members");
        assert_ne!(key_of("p", "b", "a\\", ":c"), key_of("p", "b", "a\\:c", ""));
    }
}
