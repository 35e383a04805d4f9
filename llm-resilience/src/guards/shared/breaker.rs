//! [`SharedBreaker`]: a circuit breaker whose openings reach every process
//! of the fleet.

use std::sync::{Arc, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;

use super::exchange::{member_id, Exchange, Step};
use super::health::Link;
use super::options::millis;
use super::{scripts, Fleet};
use crate::guards::breaker::fleet::Seen;
use crate::hooks::AsBreaker;
use crate::CircuitBreaker;

/// A [`CircuitBreaker`] shared by every process that makes one with the
/// same name: when the breaker of any process opens, the others open too,
/// for the rest of its break, within about `watch_every` plus a round trip
/// (25 ms on a local network), and fail fast from then on; when a probe
/// succeeds anywhere, they all close.
///
/// Each process counts its own calls and failures, with `breaker`'s
/// settings: the fleet shares the decision, not the window. Calls use the
/// local breaker alone (the closed-state check is one atomic load, as for a
/// [`CircuitBreaker`]); a background task watches its state word every
/// `watch_every` and publishes a change. An isolated breaker stays isolated
/// whatever the fleet says, and is not published.
///
/// Made by [`Fleet::breaker`]. It derefs to the local [`CircuitBreaker`],
/// and goes wherever one does (`breaker = ...`, [`Policy`](crate::Policy)'s
/// hooks, the integrations).
///
/// ```no_run
/// use std::time::Duration;
/// use llm_resilience::shared::Fleet;
/// use llm_resilience::{CircuitBreaker, CircuitOpen, Policy};
///
/// # #[derive(Debug)]
/// # struct ChatError;
/// # impl std::fmt::Display for ChatError {
/// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("chat") }
/// # }
/// # impl std::error::Error for ChatError {}
/// # impl llm_resilience::Classify for ChatError {
/// #     fn kind(&self) -> llm_resilience::ErrorKind { llm_resilience::ErrorKind::Server }
/// # }
/// # impl From<CircuitOpen> for ChatError {
/// #     fn from(_: CircuitOpen) -> Self { ChatError }
/// # }
/// # impl From<llm_resilience::Elapsed> for ChatError {
/// #     fn from(_: llm_resilience::Elapsed) -> Self { ChatError }
/// # }
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let fleet = Fleet::new("redis://127.0.0.1:6379/")?;
/// let breaker = fleet.breaker("openai", CircuitBreaker::new().break_for(Duration::from_secs(5)));
/// let policy = Policy::new();
/// let answer = policy
///     .breaker::<ChatError>(&breaker)
///     .call_async(|| async { Ok::<_, ChatError>("answer") })
///     .await?;
/// # let _ = answer;
/// # Ok(())
/// # }
/// ```
pub struct SharedBreaker {
    shared: Arc<Shared>,
    link: Arc<Link>,
    _fleet: Fleet,
}

/// What the handle owns and the exchange only borrows: the task ends once
/// the handle is dropped.
struct Shared {
    breaker: CircuitBreaker,
}

impl SharedBreaker {
    pub(super) fn start(fleet: &Fleet, name: &str, breaker: CircuitBreaker) -> Self {
        let shared = Arc::new(Shared { breaker });
        let link = Arc::new(Link::new("breaker", name.into()));
        let word = shared.breaker.word();
        fleet.spawn(Exchange_ {
            shared: Arc::downgrade(&shared),
            link: Arc::clone(&link),
            hash: fleet.key("breaker", name, ""),
            channel: fleet.channel("breaker", name),
            me: member_id(),
            ttl_ms: millis(fleet.options().key_ttl),
            last: word,
            open: scripts::breaker_open(),
            close: scripts::breaker_close(),
            read: scripts::breaker_read(),
        });
        SharedBreaker {
            shared,
            link,
            _fleet: fleet.keep(),
        }
    }
}

shared_guard!(
    SharedBreaker,
    CircuitBreaker,
    breaker,
    AsBreaker,
    as_breaker
);

/// The breaker's side of the exchange.
struct Exchange_ {
    shared: Weak<Shared>,
    link: Arc<Link>,
    hash: String,
    channel: String,
    me: Arc<str>,
    ttl_ms: u64,
    /// The state word last published or applied.
    last: u64,
    open: redis::Script,
    close: redis::Script,
    read: redis::Script,
}

impl Exchange_ {
    /// Publish the local breaker's state word `word` if the fleet should
    /// know it: an opening (for what is left of it), or a closing after
    /// one.
    async fn publish(
        &mut self,
        con: &mut MultiplexedConnection,
        word: u64,
    ) -> redis::RedisResult<()> {
        let before = CircuitBreaker::seen(self.last);
        match CircuitBreaker::seen(word) {
            Seen::Open(left) if !left.is_zero() => {
                let ms = millis(left);
                let payload = format!("open {} {ms}", self.me);
                self.open
                    .key(&self.hash)
                    .arg(ms)
                    .arg(self.ttl_ms)
                    .arg(&self.channel)
                    .arg(payload)
                    .invoke_async::<i64>(con)
                    .await?;
            }
            Seen::Closed if matches!(before, Seen::Open(_) | Seen::HalfOpen) => {
                let payload = format!("close {}", self.me);
                self.close
                    .key(&self.hash)
                    .arg(0)
                    .arg(self.ttl_ms)
                    .arg(&self.channel)
                    .arg(payload)
                    .invoke_async::<i64>(con)
                    .await?;
            }
            _ => {}
        }
        self.last = word;
        Ok(())
    }
}

impl Exchange for Exchange_ {
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
            let Some(shared) = self.shared.upgrade() else {
                return Ok(());
            };
            let left: u64 = self.read.key(&self.hash).invoke_async(con).await?;
            if left > 0 {
                if let Some(word) = shared.breaker.open_remotely(Duration::from_millis(left)) {
                    log_remote("opened", &self.link.name);
                    self.last = word;
                }
            }
            // What this process learnt while it ran alone.
            let word = shared.breaker.word();
            if let Seen::Open(mine) = CircuitBreaker::seen(word) {
                if mine.as_millis() > u128::from(left) {
                    self.last = 0;
                    self.publish(con, word).await?;
                }
            }
            self.last = shared.breaker.word();
            Ok(())
        })
    }

    fn tick<'a>(&'a mut self, con: &'a mut MultiplexedConnection, _sync: bool) -> Step<'a> {
        Box::pin(async move {
            let Some(shared) = self.shared.upgrade() else {
                return Ok(());
            };
            let word = shared.breaker.word();
            if word != self.last {
                self.publish(con, word).await?;
            }
            Ok(())
        })
    }

    fn message(&mut self, payload: &str) {
        let Some(shared) = self.shared.upgrade() else {
            return;
        };
        let mut parts = payload.split(' ');
        let (what, from) = (parts.next(), parts.next());
        if from == Some(&*self.me) {
            return;
        }
        match (what, parts.next().and_then(|ms| ms.parse::<u64>().ok())) {
            (Some("open"), Some(ms)) => {
                if let Some(word) = shared.breaker.open_remotely(Duration::from_millis(ms)) {
                    log_remote("opened", &self.link.name);
                    self.last = word;
                }
            }
            (Some("close"), _) => {
                if let Some(word) = shared.breaker.close_remotely() {
                    log_remote("closed", &self.link.name);
                    self.last = word;
                }
            }
            _ => {}
        }
    }

    fn fall_back(&mut self) {
        // The local breaker is the fallback: it goes on as it is.
    }

    fn leave<'a>(&'a mut self, _con: &'a mut MultiplexedConnection) -> Step<'a> {
        // An opening outlives the process that saw it; nothing to remove.
        Box::pin(async { Ok(()) })
    }
}

fn log_remote(what: &str, name: &str) {
    #[cfg(feature = "tracing")]
    tracing::warn!(
        target: "llm_resilience",
        name,
        "circuit breaker {what} by another process of the fleet"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = (what, name);
}
