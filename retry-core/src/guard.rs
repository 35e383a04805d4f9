//! The shared state a retried call may run under: a circuit breaker, a retry
//! budget and an adaptive rate limiter, given to `#[retry]` as `breaker =`,
//! `budget =` and `limiter =`, or to a [`Policy`](crate::Policy) through
//! [`Hooks`](crate::Hooks).

use std::rc::Rc;
use std::sync::Arc;

use crate::{AdaptiveLimiter, CircuitBreaker, CircuitOpen, RetryBudget};

/// The guards of one call; all `None` unless asked for.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Guards<'g> {
    pub(crate) breaker: Option<&'g CircuitBreaker>,
    pub(crate) budget: Option<&'g RetryBudget>,
    pub(crate) limiter: Option<&'g AdaptiveLimiter>,
}

impl Guards<'_> {
    pub(crate) const NONE: Self = Guards {
        breaker: None,
        budget: None,
        limiter: None,
    };
}

/// What `breaker = EXPR` accepts: a [`CircuitBreaker`], or a reference,
/// `Box`, `Rc` or `Arc` of one.
#[diagnostic::on_unimplemented(
    message = "`breaker = ...` needs a `retry_core::CircuitBreaker`, not `{Self}`",
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
#[diagnostic::on_unimplemented(
    message = "`budget = ...` needs a `retry_core::RetryBudget`, not `{Self}`",
    label = "not a retry budget",
    note = "name a `static BUDGET: RetryBudget = RetryBudget::new();`, or an expression giving a `RetryBudget` or a reference to one, such as `BUDGETS.key(&user_id)`"
)]
pub trait AsBudget {
    /// The budget.
    fn as_budget(&self) -> &RetryBudget;
}

/// What `limiter = EXPR` accepts: an [`AdaptiveLimiter`], or a reference,
/// `Box`, `Rc` or `Arc` of one.
#[diagnostic::on_unimplemented(
    message = "`limiter = ...` needs a `retry_core::AdaptiveLimiter`, not `{Self}`",
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
    };
}

holders!(AsBreaker, as_breaker, CircuitBreaker);
holders!(AsBudget, as_budget, RetryBudget);
holders!(AsLimiter, as_limiter, AdaptiveLimiter);

/// How a [`Hooks`](crate::Hooks) turns a refusal of its circuit breaker into
/// the call's error: [`NoBreaker`] until
/// [`Hooks::breaker`](crate::Hooks::breaker) sets one, then
/// `fn(CircuitOpen) -> E`, that is `E::from`.
pub trait Refuse<E> {
    /// The error for a call the breaker refused; `None` when there is no
    /// breaker to refuse it.
    fn refuse(&self, open: CircuitOpen) -> Option<E>;
}

/// The [`Refuse`] of a [`Hooks`](crate::Hooks) without a circuit breaker.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoBreaker;

impl<E> Refuse<E> for NoBreaker {
    #[inline]
    fn refuse(&self, _: CircuitOpen) -> Option<E> {
        None
    }
}

/// The [`Refuse`] of a [`Hooks`](crate::Hooks) with a circuit breaker:
/// `E::from`.
pub type FailFast<E> = fn(CircuitOpen) -> E;

impl<E> Refuse<E> for FailFast<E> {
    #[inline]
    fn refuse(&self, open: CircuitOpen) -> Option<E> {
        Some(self(open))
    }
}
