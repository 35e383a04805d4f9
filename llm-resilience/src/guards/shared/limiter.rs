//! [`SharedLimiter`]: an adaptive limiter that paces each process at its
//! share of the fleet's rate.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::exchange::{member_id, Exchange, Step};
use super::health::Link;
use super::options::millis;
use super::{scripts, Fleet};
use crate::hooks::AsLimiter;
use crate::AdaptiveLimiter;

/// An [`AdaptiveLimiter`] shared by every process that makes one with the
/// same name: the fleet learns one rate for the provider, as one limiter in
/// one process would, and each of its `n` live processes paces at `1 / n`
/// of it.
///
/// - **One algorithm, the fleet's evidence.** Every `watch_every` (20 ms)
///   each process publishes the successes and the `429`s its calls met
///   since it last did (one `PUBLISH`, only when there are any; at once
///   after a `429`, its own or one another process published), and feeds
///   the ones the other processes publish to its local limiter as they
///   arrive: so every local limiter guesses, measures, cuts, grows and
///   pauses for a `Retry-After` on what the whole fleet saw, within about
///   `watch_every` plus a round trip, and arrives at the same rate: the
///   provider's.
/// - **Membership.** Every `sync_every` (100 ms) each process marks itself
///   live in a sorted set and reads how many are; it paces at `1 / n` of
///   the fleet's rate, and, before anything is known, keeps `1 / n` of the
///   initial window (so that `n` processes starting together send no
///   larger a herd than one). A token limit announced is shared the same
///   way. A process counts from its start, and then while it has calls:
///   one waiting for its turn, or a slot taken, a success or a `429`
///   within the last `member_ttl / 4` (500 ms; a process that calls less
///   often than that is in and out of the count, and its calls, few, go
///   at its share on top of the others'). One whose calls stopped leaves
///   the set and says so, as does one that [closes](Fleet::close) its
///   fleet, and the others count again at once: its share goes to the
///   processes still calling within about a round trip. One that comes
///   back says so too. A smaller count that comes without
///   such news (a process gone silent) is taken after three syncs (after a
///   resynchronisation, after `member_ttl`, so that a restarted, empty
///   Redis does not make the first process back pace for the whole
///   fleet). A process that starts later takes the rate the fleet paces
///   at (kept for `key_ttl`).
///
/// Rates are the fleet's: [`initial_rate`](AdaptiveLimiter::initial_rate),
/// [`min_rate`](AdaptiveLimiter::min_rate),
/// [`max_rate`](AdaptiveLimiter::max_rate) and an announced limit are the
/// provider's, for the whole fleet; [`rate`](AdaptiveLimiter::rate) is this
/// process's share.
///
/// Calls use the local limiter alone, at the cost they have with an
/// [`AdaptiveLimiter`]. While Redis is unreachable each process goes on
/// pacing at the share it last knew, learning from its own calls alone:
/// it counts each of its successes as `n` (its own and, unseen, the `n −
/// 1` others'), so that its estimate stays the fleet's rate; it
/// resynchronises when Redis is back.
///
/// Made by [`Fleet::limiter`]. It derefs to the local [`AdaptiveLimiter`],
/// and goes wherever one does (`limiter = ...`,
/// [`Policy`](crate::Policy)'s hooks, the integrations).
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
        let wake = Arc::new(Notify::new());
        let waker = Arc::clone(&wake);
        let options = fleet.options();
        // The others' news comes at their next look, and a round trip later.
        limiter.share_with_fleet(
            Arc::new(move || waker.notify_one()),
            options.watch_every.saturating_mul(2),
        );
        let successes = limiter.successes();
        let shared = Arc::new(Shared {
            limiter,
            members: AtomicUsize::new(0),
        });
        let link = Arc::new(Link::new("limiter", name.into()));
        fleet.spawn(LimiterExchange {
            shared: Arc::downgrade(&shared),
            link: Arc::clone(&link),
            members_key: fleet.key("limiter", name, ":members"),
            hash: fleet.key("limiter", name, ""),
            channel: fleet.channel("limiter", name),
            me: member_id(),
            stale_ms: millis(options.member_ttl),
            ttl_ms: millis(options.key_ttl),
            refusals: 0,
            published: successes,
            added: 0,
            members: 1,
            member_ttl: options.member_ttl,
            sync_every: options.sync_every,
            born: Instant::now(),
            last_active: Instant::now(),
            issued: 0,
            recount: false,
            left: 0,
            fewer_since: None,
            resynced_at: Instant::now(),
            wake,
            sync: scripts::limiter_sync(),
            leave: scripts::leave(),
        });
        SharedLimiter {
            shared,
            link,
            _fleet: fleet.keep(),
        }
    }
}

shared_guard!(
    SharedLimiter,
    AdaptiveLimiter,
    limiter,
    AsLimiter,
    as_limiter,
    members
);

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
    /// The local refusals counter when last looked at.
    refusals: u64,
    /// The successes of this process published so far (and those it had
    /// before it was shared).
    published: u64,
    /// The successes of other processes added to the local limiter.
    added: u64,
    /// The processes this one shares the rate with: the live ones that
    /// call, and itself.
    members: u64,
    member_ttl: Duration,
    sync_every: Duration,
    /// When the guard was made: a process counts as calling for its first
    /// `member_ttl`, before its first call.
    born: Instant,
    /// When a call here last took a slot, succeeded or was refused.
    last_active: Instant,
    /// The limiter's slots handed out when last looked at.
    issued: u64,
    /// Another process joined or left: count again at the next tick, and
    /// take a smaller count at once.
    recount: bool,
    /// How many other processes said they left since the last count.
    left: u64,
    /// Since when Redis has counted fewer processes than `members`.
    fewer_since: Option<Instant>,
    /// When it last resynchronised.
    resynced_at: Instant,
    /// Notified by a refusal here.
    wake: Arc<Notify>,
    sync: redis::Script,
    leave: redis::Script,
}

impl LimiterExchange {
    /// Heartbeat and membership; on `resync`, also the fleet's rate, for a
    /// limiter that has not learnt one.
    async fn heartbeat(
        &mut self,
        con: &mut MultiplexedConnection,
        resync: bool,
    ) -> redis::RedisResult<()> {
        let Some(shared) = self.shared.upgrade() else {
            return Ok(());
        };
        let learned = shared.limiter.learned();
        let (rate, fast) = learned.map_or((String::new(), "0"), |(rate, fast)| {
            (format!("{rate}"), if fast { "1" } else { "0" })
        });
        // A process whose calls stopped leaves its share to the others.
        let now = Instant::now();
        let (issued, waiting) = shared.limiter.demand();
        if issued != self.issued || waiting {
            self.issued = issued;
            self.last_active = now;
        }
        let active = now.duration_since(self.born) < self.member_ttl
            || now.duration_since(self.last_active) < self.member_ttl / 4;
        let (calling, stored, stored_fast): (u64, String, String) = self
            .sync
            .key(&self.members_key)
            .key(&self.hash)
            .arg(&*self.me)
            .arg(self.stale_ms)
            .arg(self.ttl_ms)
            .arg(rate)
            .arg(fast)
            .arg(if active { "1" } else { "0" })
            .arg(&self.channel)
            .invoke_async(con)
            .await?;
        // Counted as calling itself, for the share it would take.
        let counted = if active { calling } else { calling + 1 }.max(1);
        if resync {
            self.resynced_at = now;
        }
        // More processes count at once; fewer only once they have been
        // fewer for a while: three syncs, or after a resynchronisation
        // (a restarted Redis that the others have not reached again yet)
        // a whole `member_ttl`.
        let resyncing = now.duration_since(self.resynced_at) < self.member_ttl;
        let hold = if resyncing {
            self.member_ttl
        } else {
            self.sync_every * 3
        };
        // A process that said it left is gone for sure: the smaller count
        // is taken at once; while resynchronising, only the processes that
        // said so are taken off (the others may not be back yet).
        self.recount = false;
        let left = std::mem::take(&mut self.left);
        let take = counted >= self.members
            || (left > 0 && !resyncing)
            || now.duration_since(*self.fewer_since.get_or_insert(now)) >= hold;
        let members = if take {
            self.fewer_since = None;
            counted
        } else if left > 0 {
            self.members.saturating_sub(left).max(counted)
        } else {
            self.members
        };
        if members != self.members || resync {
            self.members = members;
            shared.limiter.set_share(1.0 / members as f64);
        }
        shared
            .members
            .store(usize::try_from(members).unwrap_or(usize::MAX), Relaxed);
        if resync && learned.is_none() {
            if let Ok(rate) = stored.parse::<f64>() {
                shared.limiter.adopt(rate, stored_fast == "1");
            }
        }
        Ok(())
    }

    /// Publish the successes and refusals met here since the last time.
    async fn publish(&mut self, con: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        let Some(shared) = self.shared.upgrade() else {
            return Ok(());
        };
        let limiter = &shared.limiter;
        let mine = limiter.successes().saturating_sub(self.added);
        let successes = mine.saturating_sub(self.published);
        let refusals = limiter.refusals();
        let refused = if refusals == self.refusals {
            Vec::new()
        } else {
            limiter.take_refusals()
        };
        if successes == 0 && refused.is_empty() {
            return Ok(());
        }
        self.last_active = Instant::now();
        let mut payload = format!("ev {} {successes}", self.me);
        for (retry_after, paced) in &refused {
            match retry_after {
                Some(wait) => payload.push_str(&format!(" {}", wait.as_millis())),
                None => payload.push_str(" -"),
            }
            payload.push_str(if *paced { ":1" } else { ":0" });
        }
        redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(payload)
            .query_async::<i64>(con)
            .await?;
        self.published = mine;
        self.refusals = refusals;
        Ok(())
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

    fn wake(&self) -> Option<Arc<Notify>> {
        Some(Arc::clone(&self.wake))
    }

    fn resync<'a>(&'a mut self, con: &'a mut MultiplexedConnection) -> Step<'a> {
        Box::pin(async move {
            // What happened while it ran alone is not the fleet's news.
            if let Some(shared) = self.shared.upgrade() {
                self.published = shared.limiter.successes().saturating_sub(self.added);
                self.refusals = shared.limiter.refusals();
                drop(shared.limiter.take_refusals());
            }
            self.heartbeat(con, true).await
        })
    }

    fn tick<'a>(&'a mut self, con: &'a mut MultiplexedConnection, sync: bool) -> Step<'a> {
        Box::pin(async move {
            self.publish(con).await?;
            if sync || self.recount {
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
        let kind = parts.next();
        if parts.next() == Some(&*self.me) {
            return;
        }
        match kind {
            Some("ev") => {}
            Some(change @ ("joined" | "left")) => {
                if change == "left" {
                    self.left = self.left.saturating_add(1);
                }
                self.recount = true;
                self.wake.notify_one();
                return;
            }
            _ => return,
        }
        let successes = parts
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        if successes > 0 {
            shared.limiter.add_successes(successes);
            self.added = self.added.saturating_add(successes);
        }
        let mut refused = false;
        for refusal in parts {
            let (wait, paced) = refusal.split_once(':').unwrap_or((refusal, "1"));
            let wait = wait.parse::<u64>().ok().map(Duration::from_millis);
            shared.limiter.refused_elsewhere(wait, paced == "1");
            refused = true;
        }
        // A refusal elsewhere: this process's successes since its last
        // publication go out now rather than at the next `watch_every`, so
        // that every limiter judges the refusal on the whole fleet's count.
        if refused {
            self.wake.notify_one();
        }
    }

    fn fall_back(&mut self) {
        // The local limiter goes on at the share it last knew.
        if let Some(shared) = self.shared.upgrade() {
            drop(shared.limiter.take_refusals());
        }
    }

    fn offline(&mut self) {
        // Without news from the others, each process takes its successes
        // as its share of the fleet's: the others', unseen, are counted
        // as its own times the others, so that its rate estimates stay
        // the fleet's rather than drifting down to its share.
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let mine = shared.limiter.successes().saturating_sub(self.added);
        let fresh = mine.saturating_sub(self.published);
        self.published = mine;
        if fresh > 0 {
            self.last_active = Instant::now();
        }
        let others = fresh.saturating_mul(self.members.saturating_sub(1));
        if others > 0 {
            shared.limiter.add_successes(others);
            self.added = self.added.saturating_add(others);
        }
    }

    fn leave<'a>(&'a mut self, con: &'a mut MultiplexedConnection) -> Step<'a> {
        Box::pin(async move {
            self.leave
                .key(&self.members_key)
                .arg(&*self.me)
                .arg(&self.channel)
                .invoke_async::<i64>(con)
                .await?;
            Ok(())
        })
    }
}
