//! [`SharedBudget`]: a retry budget over the calls of the whole fleet.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Weak};

use redis::aio::MultiplexedConnection;

use super::exchange::{member_id, Exchange, Step};
use super::health::Link;
use super::options::millis;
use super::{scripts, Fleet};
use crate::hooks::AsBudget;
use crate::RetryBudget;

/// A [`RetryBudget`] shared by every process that makes one with the same
/// name: the fleet's retries over its window stay within the budget's
/// formula applied once to the fleet's calls,
///
/// > `ratio` × the fleet's calls in the window + `min_retries_per_second` × `window`
///
/// so that `n` processes neither spend `n` floors nor let one process's
/// retries go unseen by the others.
///
/// Every `sync_every` (100 ms), each process stores the calls and retries
/// in its own window in Redis and reads the fleet's totals (one Lua
/// script); what the fleet may still retry is split evenly among the live
/// processes (the remainder one retry each to the first), and each may
/// retry its part until the next sync. A process can thus never spend more
/// than its part, whatever the others do; a part left unspent returns to
/// the fleet at the next sync. The fleet's totals are up to `sync_every`
/// old, so a budget's limit may be passed by about one part per process in
/// that time.
///
/// Calls use the local budget alone: [`record_call`](RetryBudget::record_call)
/// is one atomic add as before, [`try_retry`](RetryBudget::try_retry) one
/// atomic load more. While Redis is unreachable, the local budget runs on
/// its own formula over its own calls (its floor then counts in each
/// process), until the next sync.
///
/// Made by [`Fleet::budget`]. It derefs to the local [`RetryBudget`], and
/// goes wherever one does (`budget = ...`, [`Policy`](crate::Policy)'s
/// hooks, the integrations).
///
/// ```no_run
/// use llm_resilience::shared::Fleet;
/// use llm_resilience::RetryBudget;
///
/// let fleet = Fleet::new("redis://127.0.0.1:6379/")?;
/// // 10% of the fleet's calls, plus 2 retries a second for the whole fleet.
/// let budget = fleet.budget("openai", RetryBudget::new().min_retries_per_second(2));
/// budget.record_call();
/// # Ok::<(), redis::RedisError>(())
/// ```
pub struct SharedBudget {
    shared: Arc<Shared>,
    link: Arc<Link>,
    _fleet: Fleet,
}

struct Shared {
    budget: RetryBudget,
    /// The live processes at the last sync.
    members: AtomicUsize,
}

impl SharedBudget {
    pub(super) fn start(fleet: &Fleet, name: &str, budget: RetryBudget) -> Self {
        let shared = Arc::new(Shared {
            budget,
            members: AtomicUsize::new(0),
        });
        let link = Arc::new(Link::new("budget", name.into()));
        fleet.spawn(BudgetExchange {
            shared: Arc::downgrade(&shared),
            link: Arc::clone(&link),
            hash: fleet.key("budget", name, ""),
            me: member_id(),
            stale_ms: millis(fleet.options().member_ttl),
            ttl_ms: millis(fleet.options().key_ttl),
            sync: scripts::budget_sync(),
            leave: scripts::leave(),
        });
        SharedBudget {
            shared,
            link,
            _fleet: fleet.keep(),
        }
    }
}

shared_guard!(
    SharedBudget,
    RetryBudget,
    budget,
    AsBudget,
    as_budget,
    members
);

/// The budget's side of the exchange.
struct BudgetExchange {
    shared: Weak<Shared>,
    link: Arc<Link>,
    hash: String,
    me: Arc<str>,
    stale_ms: u64,
    ttl_ms: u64,
    sync: redis::Script,
    leave: redis::Script,
}

impl BudgetExchange {
    async fn sync(&mut self, con: &mut MultiplexedConnection) -> redis::RedisResult<()> {
        let Some(shared) = self.shared.upgrade() else {
            return Ok(());
        };
        let (calls, retries) = shared.budget.counts();
        let (fleet_calls, fleet_retries, members, rank): (u64, u64, u64, u64) = self
            .sync
            .key(&self.hash)
            .arg(&*self.me)
            .arg(calls)
            .arg(retries)
            .arg(self.stale_ms)
            .arg(self.ttl_ms)
            .invoke_async(con)
            .await?;
        let members = members.max(1);
        let spare = shared
            .budget
            .fleet_formula(fleet_calls)
            .saturating_sub(fleet_retries);
        let part = spare / members + u64::from(rank < spare % members);
        shared
            .budget
            .set_fleet_cap(Some(retries.saturating_add(part)));
        shared
            .members
            .store(usize::try_from(members).unwrap_or(usize::MAX), Relaxed);
        Ok(())
    }
}

impl Exchange for BudgetExchange {
    fn channel(&self) -> Option<&str> {
        None
    }

    fn link(&self) -> &Link {
        &self.link
    }

    fn gone(&self) -> bool {
        self.shared.strong_count() == 0
    }

    fn resync<'a>(&'a mut self, con: &'a mut MultiplexedConnection) -> Step<'a> {
        Box::pin(self.sync(con))
    }

    fn tick<'a>(&'a mut self, con: &'a mut MultiplexedConnection, sync: bool) -> Step<'a> {
        Box::pin(async move {
            if sync {
                self.sync(con).await?;
            }
            Ok(())
        })
    }

    fn message(&mut self, _payload: &str) {}

    fn fall_back(&mut self) {
        if let Some(shared) = self.shared.upgrade() {
            shared.budget.set_fleet_cap(None);
        }
    }

    fn leave<'a>(&'a mut self, con: &'a mut MultiplexedConnection) -> Step<'a> {
        Box::pin(async move {
            self.leave
                .key(&self.hash)
                .arg(&*self.me)
                .arg("")
                .invoke_async::<i64>(con)
                .await?;
            Ok(())
        })
    }
}
