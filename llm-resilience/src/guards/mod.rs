//! The shared state a retried call may run under: a circuit breaker, a retry
//! budget and an adaptive rate limiter, given to `#[retry]` as `breaker =`,
//! `budget =` and `limiter =`, or to a [`Policy`](crate::Policy) through
//! [`Hooks`](crate::hooks::Hooks).

pub(crate) mod breaker;
pub(crate) mod budget;
pub(crate) mod limiter;
#[cfg(feature = "redis")]
pub mod shared;
pub(crate) mod window;

use std::rc::Rc;
use std::sync::{Arc, LazyLock};

use crate::{AdaptiveLimiter, CircuitBreaker, CircuitOpen, RetryBudget};

/// The guards of one call; all `None` unless asked for.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Guards<'g> {
    pub(crate) breaker: Option<&'g CircuitBreaker>,
    pub(crate) budget: Option<&'g RetryBudget>,
    pub(crate) limiter: Option<&'g AdaptiveLimiter>,
    /// Tokens an attempt costs, for the limiter's token pacing; 0: unstated.
    pub(crate) cost: u64,
}

impl Guards<'_> {
    pub(crate) const NONE: Self = Guards {
        breaker: None,
        budget: None,
        limiter: None,
        cost: 0,
    };
}

/// What `breaker = EXPR` accepts: a [`CircuitBreaker`], or a reference,
/// `Box`, `Rc` or `Arc` of one.
///
/// ```
/// use std::sync::Arc;
/// use llm_resilience::{BreakerState, CircuitBreaker};
/// use llm_resilience::hooks::AsBreaker;
///
/// // A health check that takes whatever `breaker =` would.
/// fn healthy(breaker: impl AsBreaker) -> bool {
///     breaker.as_breaker().state() == BreakerState::Closed
/// }
///
/// static BREAKER: CircuitBreaker = CircuitBreaker::new();
/// let shared = Arc::new(CircuitBreaker::new());
/// shared.isolate();
/// assert!(healthy(&BREAKER));
/// assert!(!healthy(shared.clone()));
/// ```
#[diagnostic::on_unimplemented(
    message = "`breaker = ...` needs a `llm_resilience::CircuitBreaker`, not `{Self}`",
    label = "not a circuit breaker",
    note = "name a `static BREAKER: CircuitBreaker = CircuitBreaker::new();`, or an expression giving a `CircuitBreaker`, a reference to one, or an `Arc` of one"
)]
pub trait AsBreaker {
    /// The breaker.
    fn as_breaker(&self) -> &CircuitBreaker;
}

/// What `budget = EXPR` accepts: a [`RetryBudget`], or a reference, `Box`,
/// `Rc` or `Arc` of one (such as [`KeyedBudgets::key`](crate::KeyedBudgets::key)
/// returns).
///
/// ```
/// use llm_resilience::{KeyedBudgets, RetryBudget};
/// use llm_resilience::hooks::AsBudget;
///
/// // Whatever `budget =` would take: a budget, a reference, a `Box`...
/// fn retries_left(budget: impl AsBudget) -> u64 {
///     budget.as_budget().available()
/// }
///
/// static BUDGETS: KeyedBudgets<16> =
///     KeyedBudgets::new(RetryBudget::new().min_retries_per_second(1));
/// assert_eq!(retries_left(BUDGETS.key("openai")), 10);
/// assert_eq!(retries_left(Box::new(RetryBudget::new())), 100);
/// ```
#[diagnostic::on_unimplemented(
    message = "`budget = ...` needs a `llm_resilience::RetryBudget`, not `{Self}`",
    label = "not a retry budget",
    note = "name a `static BUDGET: RetryBudget = RetryBudget::new();`, or an expression giving a `RetryBudget` or a reference to one, such as `BUDGETS.key(&user_id)`"
)]
pub trait AsBudget {
    /// The budget.
    fn as_budget(&self) -> &RetryBudget;
}

/// What `limiter = EXPR` accepts: an [`AdaptiveLimiter`], or a reference,
/// `Box`, `Rc` or `Arc` of one.
///
/// ```
/// use std::rc::Rc;
/// use llm_resilience::{AdaptiveLimiter};
/// use llm_resilience::hooks::AsLimiter;
///
/// // Whatever `limiter =` would take: a limiter, a reference, an `Rc`...
/// fn pacing(limiter: impl AsLimiter) -> Option<f64> {
///     limiter.as_limiter().rate()
/// }
///
/// let limiter = Rc::new(AdaptiveLimiter::new());
/// assert_eq!(pacing(limiter.clone()), None);
/// limiter.on_rate_limited(None); // a 429
/// assert!(pacing(&*limiter).is_some());
/// ```
#[diagnostic::on_unimplemented(
    message = "`limiter = ...` needs a `llm_resilience::AdaptiveLimiter`, not `{Self}`",
    label = "not an adaptive limiter",
    note = "name a `static LIMITER: AdaptiveLimiter = AdaptiveLimiter::new();`, or an expression giving an `AdaptiveLimiter`, a reference to one, or an `Arc` of one"
)]
pub trait AsLimiter {
    /// The limiter.
    fn as_limiter(&self) -> &AdaptiveLimiter;
}

macro_rules! holders {
    ($trait:ident, $method:ident, $ty:ty) => {
        impl $trait for $ty {
            #[inline]
            fn $method(&self) -> &$ty {
                self
            }
        }
        impl<T: $trait + ?Sized> $trait for &T {
            #[inline]
            fn $method(&self) -> &$ty {
                (**self).$method()
            }
        }
        impl<T: $trait + ?Sized> $trait for Box<T> {
            #[inline]
            fn $method(&self) -> &$ty {
                (**self).$method()
            }
        }
        impl<T: $trait + ?Sized> $trait for Rc<T> {
            #[inline]
            fn $method(&self) -> &$ty {
                (**self).$method()
            }
        }
        impl<T: $trait + ?Sized> $trait for Arc<T> {
            #[inline]
            fn $method(&self) -> &$ty {
                (**self).$method()
            }
        }
        /// A `static` built on first use: a guard that needs a value known
        /// only at run time, such as a shared guard's connection.
        impl<T: $trait, F: FnOnce() -> T> $trait for LazyLock<T, F> {
            #[inline]
            fn $method(&self) -> &$ty {
                (**self).$method()
            }
        }
    };
}

holders!(AsBreaker, as_breaker, CircuitBreaker);
holders!(AsBudget, as_budget, RetryBudget);
holders!(AsLimiter, as_limiter, AdaptiveLimiter);

/// How a [`Hooks`](crate::hooks::Hooks) turns a refusal of its circuit breaker into
/// the call's error: [`NoBreaker`] until
/// [`Hooks::breaker`](crate::hooks::Hooks::breaker) sets one, then
/// `fn(CircuitOpen) -> E`, that is `E::from`.
///
/// ```
/// use llm_resilience::{CircuitBreaker, CircuitOpen};
/// use llm_resilience::hooks::{FailFast, NoBreaker, Refuse};
///
/// let breaker = CircuitBreaker::new();
/// breaker.isolate();
/// let open = breaker.try_acquire().unwrap_err();
///
/// let fail_fast: FailFast<String> = |open: CircuitOpen| format!("not sent: {open}");
/// assert!(fail_fast.refuse(open).unwrap().starts_with("not sent: circuit breaker isolated"));
/// assert_eq!(Refuse::<String>::refuse(&NoBreaker, open), None);
/// ```
pub trait Refuse<E> {
    /// The error for a call the breaker refused; `None` when there is no
    /// breaker to refuse it.
    fn refuse(&self, open: CircuitOpen) -> Option<E>;

    /// The conversion [`refuse`](Refuse::refuse) applies, if any.
    fn conversion(&self) -> Option<fn(CircuitOpen) -> E>;
}

/// The [`Refuse`] of a [`Hooks`](crate::hooks::Hooks) without a circuit breaker.
///
/// ```
/// use std::io;
/// use llm_resilience::{CircuitBreaker};
/// use llm_resilience::hooks::{NoBreaker, Refuse};
///
/// let breaker = CircuitBreaker::new();
/// breaker.isolate();
/// let open = breaker.try_acquire().unwrap_err();
/// // Hooks without a breaker never turn a refusal into an error.
/// let refused: Option<io::Error> = NoBreaker.refuse(open);
/// assert!(refused.is_none());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct NoBreaker;

impl<E> Refuse<E> for NoBreaker {
    #[inline]
    fn refuse(&self, _: CircuitOpen) -> Option<E> {
        None
    }

    #[inline]
    fn conversion(&self) -> Option<fn(CircuitOpen) -> E> {
        None
    }
}

/// The [`Refuse`] of a [`Hooks`](crate::hooks::Hooks) with a circuit breaker:
/// `E::from`.
///
/// ```
/// use llm_resilience::{CircuitBreaker, CircuitOpen};
/// use llm_resilience::hooks::{FailFast, Refuse};
///
/// # #[derive(Debug, PartialEq)]
/// enum ChatError {
///     Unavailable(CircuitOpen),
/// }
/// # impl From<CircuitOpen> for ChatError {
/// #     fn from(open: CircuitOpen) -> Self {
/// #         ChatError::Unavailable(open)
/// #     }
/// # }
///
/// let breaker = CircuitBreaker::new();
/// breaker.isolate();
/// let open = breaker.try_acquire().unwrap_err();
/// let fail_fast: FailFast<ChatError> = ChatError::from;
/// assert_eq!(fail_fast.refuse(open), Some(ChatError::Unavailable(open)));
/// ```
pub type FailFast<E> = fn(CircuitOpen) -> E;

impl<E> Refuse<E> for FailFast<E> {
    #[inline]
    fn refuse(&self, open: CircuitOpen) -> Option<E> {
        Some(self(open))
    }

    #[inline]
    fn conversion(&self) -> Option<fn(CircuitOpen) -> E> {
        Some(*self)
    }
}
