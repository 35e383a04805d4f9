//! Guards shared by every process of a fleet through Redis (feature
//! `redis`): a [`SharedBreaker`], a [`SharedBudget`] and a
//! [`SharedLimiter`], each keyed by a name (a provider, an API key, a model
//! family).
//!
//! Many replicas behind a load balancer on one API key each learn the
//! provider's limit, its outages and their retry budget alone: `n` replicas
//! send `n` times the refused requests, keep calling a provider one of them
//! already knows is down, and spend `n` budgets. A shared guard is a local
//! guard ([`CircuitBreaker`], [`RetryBudget`], [`AdaptiveLimiter`]) that
//! every call uses exactly as before, plus a background exchange with Redis
//! that keeps the local guards of the fleet in step:
//!
//! | guard | what is shared | how fast |
//! |---|---|---|
//! | [`SharedBreaker`] | its opening (and how long for), and its closing by a probe that succeeded | pub/sub: within `watch_every` + a round trip (about 25 ms) |
//! | [`SharedBudget`] | the calls and retries in every process's window: each process may retry its share of what the fleet's window allows | every `sync_every` (100 ms) |
//! | [`SharedLimiter`] | every process's successes and `429`s, so that each local limiter learns the provider's rate (and its `Retry-After` pauses) from the fleet's evidence; and the live processes that call, each pacing at its share of that rate | pub/sub: a `429` at once, successes every `watch_every`, plus a round trip; membership every `sync_every` |
//!
//! # No round trip on a call's path
//!
//! Calls touch only the local guard: the same atomics, with no lock, clock
//! reading or allocation more than a local guard costs. One background task
//! per shared guard, on a thread of the [`Fleet`]'s own (with a small tokio
//! runtime, so shared guards work from `static`s, synchronous code and any
//! runtime), watches the local guard every `watch_every`, publishes what
//! changed (Lua scripts: one atomic round trip each), applies what other
//! processes publish, and syncs counts and membership every `sync_every`.
//!
//! # When Redis is unreachable, slow or restarted
//!
//! Every Redis operation has a timeout ([`FleetOptions::timeout`], 50 ms).
//! When one fails, the guard runs on its local state (the breaker as it is;
//! the budget on its own formula; the limiter at the share it last knew),
//! logs it once (a WARN event with target `llm_resilience`, feature
//! `tracing`) and counts it once (`retry_shared_fallbacks_total{guard,
//! name}`, gauge `retry_shared_connected{guard, name}` at 0, feature
//! `metrics`), then reconnects with a backoff (100 ms doubling to 2 s).
//! Once back, it resynchronises: it reads what the fleet knows (a breaker
//! open elsewhere, a rate learnt) and publishes what it learnt meanwhile,
//! and says so at INFO. Nothing waits on Redis but the background task, and
//! nothing panics because of it.
//!
//! # Keys
//!
//! All keys start with [`FleetOptions::prefix`] (`llm-resilience`) and
//! the guard's kind and name; each has a TTL ([`FleetOptions::key_ttl`],
//! 60 s, renewed on every write), and a name has a fixed number of them:
//!
//! | guard | keys | channel |
//! |---|---|---|
//! | breaker | `{prefix}:breaker:{name}`: a hash, `open_until` (Redis time, ms) | `{prefix}:breaker:{name}:events` |
//! | budget | `{prefix}:budget:{name}`: a hash, one field per live process (its calls, retries and last sync), stale fields removed at every sync | none |
//! | limiter | `{prefix}:limiter:{name}`: a hash, the fleet's rate paced at last and how it grows; `{prefix}:limiter:{name}:members`: a sorted set of the processes that call, by heartbeat, trimmed past [`FleetOptions::member_ttl`] | `{prefix}:limiter:{name}:events` |
//!
//! Times that cross processes are Redis's own (`TIME`) or durations, never
//! one process's clock.
//!
//! # Wiring
//!
//! A shared guard derefs to its local guard and implements
//! [`AsBreaker`](crate::hooks::AsBreaker), [`AsBudget`](crate::hooks::AsBudget)
//! or [`AsLimiter`](crate::hooks::AsLimiter), so it goes wherever a local one
//! does: `#[retry(breaker = ..., budget = ..., limiter = ...)]` (as a
//! `static LazyLock`, or a value in scope), [`Policy`](crate::Policy)'s
//! hooks, the tower layer and the reqwest middleware.
//!
//! ```no_run
//! use std::sync::LazyLock;
//! use llm_resilience::shared::{Fleet, SharedBreaker, SharedBudget, SharedLimiter};
//! use llm_resilience::{retry, AdaptiveLimiter, CircuitBreaker, RetryBudget};
//!
//! static FLEET: LazyLock<Fleet> =
//!     LazyLock::new(|| Fleet::new("redis://127.0.0.1:6379/").expect("a Redis URL"));
//! static BREAKER: LazyLock<SharedBreaker> =
//!     LazyLock::new(|| FLEET.breaker("openai", CircuitBreaker::new()));
//! static BUDGET: LazyLock<SharedBudget> =
//!     LazyLock::new(|| FLEET.budget("openai", RetryBudget::new().min_retries_per_second(1)));
//! static LIMITER: LazyLock<SharedLimiter> =
//!     LazyLock::new(|| FLEET.limiter("openai", AdaptiveLimiter::new()));
//!
//! # #[derive(Debug)] struct ApiError;
//! # impl std::fmt::Display for ApiError {
//! #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("api") }
//! # }
//! # impl std::error::Error for ApiError {}
//! # impl llm_resilience::Classify for ApiError {
//! #     fn kind(&self) -> llm_resilience::ErrorKind { llm_resilience::ErrorKind::Server }
//! # }
//! # impl From<llm_resilience::CircuitOpen> for ApiError {
//! #     fn from(_: llm_resilience::CircuitOpen) -> Self { ApiError }
//! # }
//! # impl From<llm_resilience::Elapsed> for ApiError {
//! #     fn from(_: llm_resilience::Elapsed) -> Self { ApiError }
//! # }
//! #[retry(max_attempts = 4, breaker = BREAKER, budget = BUDGET, limiter = LIMITER)]
//! async fn chat(prompt: &str) -> Result<String, ApiError> {
//!     Ok(prompt.to_owned())
//! }
//! ```
//!
//! [`CircuitBreaker`]: crate::CircuitBreaker
//! [`RetryBudget`]: crate::RetryBudget
//! [`AdaptiveLimiter`]: crate::AdaptiveLimiter

/// What every shared guard has besides its exchange: its local guard
/// (`local`, `Deref` and the `As*` trait, so that it goes wherever the local
/// one goes), its name, how its link to Redis stands, and `Debug`; with
/// `members`, the count of processes it is shared with.
macro_rules! shared_guard {
    ($shared:ident, $local:ty, $field:ident, $as:ident, $as_fn:ident $(, $members:ident)?) => {
        impl $shared {
            /// The local guard, which calls use.
            pub fn local(&self) -> &$local {
                &self.shared.$field
            }

            /// The name it is shared under.
            pub fn name(&self) -> &str {
                &self.link.name
            }

            /// Whether its exchange reaches Redis now; `false` before it
            /// first does, and while it runs on local state.
            pub fn is_connected(&self) -> bool {
                self.link.is_connected()
            }

            /// How many times it fell back to local state (Redis
            /// unreachable, slow, or restarted), and how many times it
            /// resynchronised after.
            pub fn fallbacks(&self) -> (u64, u64) {
                (self.link.fallbacks(), self.link.resyncs())
            }

            $(
                /// The live processes sharing it at the last sync, this one
                /// included (for a limiter, those that are calling); 0 before
                /// the first.
                pub fn $members(&self) -> usize {
                    self.shared.members.load(std::sync::atomic::Ordering::Relaxed)
                }
            )?
        }

        impl std::ops::Deref for $shared {
            type Target = $local;

            fn deref(&self) -> &$local {
                &self.shared.$field
            }
        }

        impl $as for $shared {
            #[inline]
            fn $as_fn(&self) -> &$local {
                &self.shared.$field
            }
        }

        impl std::fmt::Debug for $shared {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut out = f.debug_struct(stringify!($shared));
                out.field("name", &self.name())
                    .field("connected", &self.is_connected());
                $(out.field(stringify!($members), &self.$members());)?
                out.field(stringify!($field), &self.shared.$field).finish()
            }
        }
    };
}

mod breaker;
mod budget;
mod exchange;
mod fleet;
mod health;
mod limiter;
mod options;
mod scripts;

pub use breaker::SharedBreaker;
pub use budget::SharedBudget;
pub use fleet::Fleet;
pub use limiter::SharedLimiter;
pub use options::FleetOptions;
