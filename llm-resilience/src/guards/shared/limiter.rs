//! [`SharedLimiter`]: an adaptive limiter that paces each process at its
//! share of the fleet's rate.

use std::fmt;
use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;

use super::exchange::{member_id, Exchange, Step};
use super::health::Link;
use super::options::millis;
use super::{scripts, Fleet};
use crate::guards::limiter::fleet::Learned;
use crate::hooks::AsLimiter;
use crate::AdaptiveLimiter;

/// An [`AdaptiveLimiter`] shared by every process that makes one with the
/// same name: the fleet learns one rate for the provider, and each of its
/// `n` live processes paces at `1 / n` of it.
///
/// - **Membership.** Every `sync_every` (100 ms) each process marks itself
///   live in a sorted set and reads how many are; its local limiter's
///   share is `1 / n`: the rate it paces at, a limit the provider announces
///   (`observe_limit`, which every process sees whole), and the initial
///   window before anything is known (so that `n` processes starting
///   together send no larger a herd than one) are all scaled to it.
/// - **What a `429` teaches.** When the local limiter is refused (a guess,
///   a cut, a measurement, a `Retry-After` pause), the process publishes
///   the fleet's rate (its own times `n`), how it grows and the pause,
///   within `watch_every` (20 ms) plus a round trip; every other process
///   takes its share of that rate at once, with no burst credit (the
///   provider's bucket is empty) and the same pause. A process that starts
///   later reads the rate learnt last (kept for `key_ttl`).
///
/// Calls use the local limiter alone, at the cost they have with an
/// [`AdaptiveLimiter`]. While Redis is unreachable each process goes on
/// pacing at the share it last knew, learning from its own `429`s, and
/// resynchronises when Redis is back.
///
/// Made by [`Fleet::limiter`]. It derefs to the local [`AdaptiveLimiter`],
/// and goes wherever one does (`limiter = ...`,
/// [`Policy`](crate::Policy)'s hooks, the integrations). Give the local
/// limiter the settings of one process; an
/// [`initial_rate`](AdaptiveLimiter::initial_rate) is taken as the fleet's
/// and divided once the members are known.
///
/// ```no_run
/// use llm_resilience::shared::Fleet;
/// use llm_resilience::AdaptiveLimiter;
///
/// let fleet = Fleet::new("redis://127.0.0.1:6379/")?;
/// let limiter = fleet.limiter("openai-gpt-4o", AdaptiveLimiter::new());
/// std::thread::sleep(limiter.acquire_delay());
/// # Ok::<(), redis::RedisError>(())
/// ```
pub struct SharedLimiter {
    shared: Arc<Shared>,
    link: Arc<Link>,
    _fleet: Fleet,
}

struct Shared {
    limiter: AdaptiveLimiter,
    /// The live processes at the last sync.
    members: AtomicUsize,
}

impl SharedLimiter {
    pub(super) fn start(fleet: &Fleet, name: &str, limiter: AdaptiveLimiter) -> Self {
        let refusals = limiter.refusals();
        let shared = Arc::new(Shared {
            limiter,
            members: AtomicUsize::new(0),
        });
        let link = Arc::new(Link::new("limiter", name.into()));
        let options = fleet.options();
        fleet.spawn(LimiterExchange {
            shared: Arc::downgrade(&shared),
            link: Arc::clone(&link),
            members_key: fleet.key("limiter", name, ":members"),
            hash: fleet.key("limiter", name, ""),
            channel: fleet.key("limiter", name, ":events"),
            me: member_id(),
            stale_ms: millis(options.member_ttl),
            ttl_ms: millis(options.key_ttl),
            refusals,
            members: 1,
            sync: scripts::limiter_sync(),
            learn: scripts::limiter_learn(),
            leave: scripts::leave(),
        });
        SharedLimiter {
            shared,
            link,
            _fleet: fleet.keep(),
        }
    }

    /// The local limiter.
    pub fn local(&self) -> &AdaptiveLimiter {
        &self.shared.limiter
    }

    /// The name it is shared under.
    pub fn name(&self) -> &str {
        &self.link.name
    }

    /// Whether its exchange reaches Redis now; `false` before it first
    /// does, and while it runs on local state.
    pub fn is_connected(&self) -> bool {
        self.link.is_connected()
    }

    /// The live processes sharing it at the last sync (this one included);
    /// 0 before the first.
    pub fn members(&self) -> usize {
        self.shared.members.load(Relaxed)
    }

    /// How many times it fell back to local state, and how many times it
    /// resynchronised after.
    pub fn fallbacks(&self) -> (u64, u64) {
        (self.link.fallbacks(), self.link.resyncs())
    }
}

impl Deref for SharedLimiter {
    type Target = AdaptiveLimiter;

    fn deref(&self) -> &AdaptiveLimiter {
        &self.shared.limiter
    }
}

impl AsLimiter for SharedLimiter {
    #[inline]
    fn as_limiter(&self) -> &AdaptiveLimiter {
        &self.shared.limiter
    }
}

impl fmt::Debug for SharedLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedLimiter")
            .field("name", &self.name())
            .field("connected", &self.is_connected())
            .field("members", &self.members())
            .field("limiter", &self.shared.limiter)
            .finish()
    }
}

/// The limiter's side of the exchange.
struct LimiterExchange {
    shared: Weak<Shared>,
    link: Arc<Link>,
    members_key: String,
    hash: String,
    channel: String,
    me: Arc<str>,
    stale_ms: u64,
    ttl_ms: u64,
    /// The local refusals last published.
    refusals: u64,
    /// The live processes at the last sync.
    members: u64,
    sync: redis::Script,
    learn: redis::Script,
    leave: redis::Script,
}

impl LimiterExchange {
    /// Heartbeat and membership; on `resync`, also what the fleet learnt
    /// while this process did not listen.
    async fn heartbeat(
        &mut self,
        con: &mut MultiplexedConnection,
        resync: bool,
    ) -> redis::RedisResult<()> {
        let Some(shared) = self.shared.upgrade() else {
            return Ok(());
        };
        let (members, rate, fast, pause): (u64, String, String, u64) = self
            .sync
            .key(&self.members_key)
            .key(&self.hash)
            .arg(&*self.me)
            .arg(self.stale_ms)
            .arg(self.ttl_ms)
            .invoke_async(con)
            .await?;
        let members = members.max(1);
        if members != self.members || resync {
            self.members = members;
            shared.limiter.set_share(1.0 / members as f64);
        }
        shared
            .members
            .store(usize::try_from(members).unwrap_or(usize::MAX), Relaxed);
        if resync {
            if let Ok(fleet_rate) = rate.parse::<f64>() {
                if shared.limiter.refusals() == self.refusals {
                    // Nothing learnt here meanwhile: take the fleet's.
                    shared.limiter.adopt(Learned {
                        rate: Some(fleet_rate / members as f64),
                        fast: fast == "1",
                        pause: Duration::from_millis(pause),
                    });
                }
            }
        }
        Ok(())
    }

    /// Publish what the local limiter learnt from its refusals since the
    /// last time.
    async fn publish(&mut self, con: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        let Some(shared) = self.shared.upgrade() else {
            return Ok(());
        };
        let refusals = shared.limiter.refusals();
        if refusals == self.refusals {
            return Ok(());
        }
        let learned = shared.limiter.learned();
        let rate = learned
            .rate
            .map_or_else(String::new, |rate| format!("{}", rate * self.members as f64));
        let fast = if learned.fast { "1" } else { "0" };
        let pause = if learned.pause.is_zero() {
            0
        } else {
            millis(learned.pause)
        };
        let payload = format!("learn {} {} {fast} {pause}", self.me, or_dash(&rate));
        self.learn
            .key(&self.hash)
            .arg(&rate)
            .arg(fast)
            .arg(pause)
            .arg(self.ttl_ms)
            .arg(&self.channel)
            .arg(payload)
            .invoke_async::<i64>(con)
            .await?;
        self.refusals = refusals;
        Ok(())
    }
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

impl Exchange for LimiterExchange {
    fn channel(&self) -> Option<&str> {
        Some(&self.channel)
    }

    fn link(&self) -> &Link {
        &self.link
    }

    fn gone(&self) -> bool {
        self.shared.strong_count() == 0
    }

    fn resync<'a>(&'a mut self, con: &'a mut MultiplexedConnection) -> Step<'a> {
        Box::pin(async move {
            self.heartbeat(con, true).await?;
            // What it learnt while it ran alone.
            self.publish(con).await
        })
    }

    fn tick<'a>(&'a mut self, con: &'a mut MultiplexedConnection, sync: bool) -> Step<'a> {
        Box::pin(async move {
            self.publish(con).await?;
            if sync {
                self.heartbeat(con, false).await?;
            }
            Ok(())
        })
    }

    fn message(&mut self, payload: &str) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let mut parts = payload.split(' ');
        if parts.next() != Some("learn") || parts.next() == Some(&*self.me) {
            return;
        }
        let rate = parts.next().and_then(|rate| rate.parse::<f64>().ok());
        let fast = parts.next() == Some("1");
        let pause = parts.next().and_then(|ms| ms.parse::<u64>().ok()).unwrap_or(0);
        let members = self.members.max(1) as f64;
        shared.limiter.adopt(Learned {
            rate: rate.map(|rate| rate / members),
            fast,
            pause: Duration::from_millis(pause),
        });
    }

    fn fall_back(&mut self) {
        // The local limiter goes on at the share it last knew.
    }

    fn leave<'a>(&'a mut self, con: &'a mut MultiplexedConnection) -> Step<'a> {
        Box::pin(async move {
            self.leave
                .key(&self.members_key)
                .arg(&*self.me)
                .invoke_async::<i64>(con)
                .await?;
            Ok(())
        })
    }
}
