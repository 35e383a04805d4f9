//! What the tower layer and the reqwest middleware share: a policy and the
//! guards it runs under, held so that every clone of a service and every
//! call can reach them.

use std::fmt;
use std::sync::Arc;

use crate::hooks::{AsBreaker, AsBudget, AsLimiter};
use crate::http::HttpError;
use crate::Policy;

/// A policy with its shared guards.
#[derive(Clone)]
pub(crate) struct Guarded {
    pub(crate) policy: Policy,
    pub(crate) breaker: Option<Arc<dyn AsBreaker + Send + Sync>>,
    pub(crate) budget: Option<Arc<dyn AsBudget + Send + Sync>>,
    pub(crate) limiter: Option<Arc<dyn AsLimiter + Send + Sync>>,
}

impl Guarded {
    pub(crate) fn new(policy: Policy) -> Self {
        Guarded {
            policy,
            breaker: None,
            budget: None,
            limiter: None,
        }
    }

    /// The error a call ends with: marked as sent once when its request
    /// could not be replayed and was sent.
    pub(crate) fn finish(&self, error: HttpError, replayable: bool, sent: bool) -> HttpError {
        if replayable || !sent {
            error
        } else {
            error.sent_once(&self.policy)
        }
    }
}

impl fmt::Debug for Guarded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guarded")
            .field("policy", &self.policy)
            .field("breaker", &self.breaker.is_some())
            .field("budget", &self.budget.is_some())
            .field("limiter", &self.limiter.is_some())
            .finish()
    }
}

/// Run `op` under the policy of a [`Guarded`] and its guards, inline in the
/// calling future (a future of its own would be one more large copy per
/// call). A call whose request cannot be replayed gets one attempt: no
/// failure is retried, and the budget is not drawn on.
macro_rules! call_guarded {
    ($guarded:expr, $replayable:expr, $op:expr) => {{
        let guarded: &$crate::integrations::Guarded = $guarded;
        let replayable: bool = $replayable;
        let hooks = guarded
            .policy
            .when(move |_: &$crate::http::HttpError| replayable);
        let hooks = match &guarded.budget {
            Some(budget) => hooks.budget(budget.as_budget()),
            None => hooks,
        };
        let hooks = match &guarded.limiter {
            Some(limiter) => hooks.limiter(limiter.as_limiter()),
            None => hooks,
        };
        match &guarded.breaker {
            Some(breaker) => hooks.breaker(breaker.as_breaker()).call_async($op).await,
            None => hooks.call_async($op).await,
        }
    }};
}

pub(crate) use call_guarded;

/// The builder methods of a type holding a [`Guarded`] as `self.guarded`.
macro_rules! guard_builders {
    ($ty:ident) => {
        impl $ty {
            /// Run calls under a circuit breaker, as
            /// [`Policy::breaker`](crate::Policy::breaker) does: a refused
            /// call fails at once, unsent, with an
            /// [`HttpError`](crate::http::HttpError) whose
            /// [`circuit_open`](crate::http::HttpError::circuit_open) says
            /// so. A `&'static` breaker, an `Arc` of one, or one of its own.
            pub fn breaker(
                mut self,
                breaker: impl crate::hooks::AsBreaker + Send + Sync + 'static,
            ) -> Self {
                self.guarded.breaker = Some(std::sync::Arc::new(breaker));
                self
            }

            /// Draw retries from a budget, as
            /// [`Policy::budget`](crate::Policy::budget) does.
            pub fn budget(
                mut self,
                budget: impl crate::hooks::AsBudget + Send + Sync + 'static,
            ) -> Self {
                self.guarded.budget = Some(std::sync::Arc::new(budget));
                self
            }

            /// Pace attempts with a limiter, as
            /// [`Policy::limiter`](crate::Policy::limiter) does; every
            /// answer feeds it the limits it announces.
            pub fn limiter(
                mut self,
                limiter: impl crate::hooks::AsLimiter + Send + Sync + 'static,
            ) -> Self {
                self.guarded.limiter = Some(std::sync::Arc::new(limiter));
                self
            }

            /// The policy calls run under.
            pub fn policy(&self) -> &crate::Policy {
                &self.guarded.policy
            }
        }
    };
}

pub(crate) use guard_builders;
