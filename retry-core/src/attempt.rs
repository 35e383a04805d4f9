use std::cell::Cell;
use std::time::{Duration, Instant};

use crate::clock::Clock;

thread_local! {
    static CURRENT: Cell<Option<Attempt>> = const { Cell::new(None) };
}

/// The attempt the calling code is running in.
///
/// Inside a function under `#[retry]` (or an operation run by
/// [`Policy::call`](crate::Policy::call)), this says which attempt this is
/// and how much time is left before the deadline. Outside of one, it
/// describes a lone first attempt with no deadline.
///
/// ```
/// use retry_core::{attempt, retry};
///
/// #[retry(max_attempts = 3, wait = none)]
/// fn flaky() -> Result<u32, std::io::Error> {
///     let n = attempt().number();
///     if n < 3 {
///         return Err(std::io::ErrorKind::ConnectionReset.into());
///     }
///     Ok(n)
/// }
///
/// assert_eq!(flaky().unwrap(), 3);
/// assert_eq!(attempt().number(), 1);
/// ```
pub fn attempt() -> Attempt {
    CURRENT.with(Cell::get).unwrap_or(Attempt {
        number: 1,
        deadline: None,
        clock: Clock::Std,
    })
}

/// One attempt of a retried call, as seen from inside it. See [`attempt()`].
#[derive(Clone, Copy, Debug)]
pub struct Attempt {
    number: u32,
    deadline: Option<Instant>,
    clock: Clock,
}

impl Attempt {
    pub(crate) const fn new(number: u32, deadline: Option<Instant>, clock: Clock) -> Self {
        Attempt {
            number,
            deadline,
            clock,
        }
    }

    /// Which attempt this is, from 1.
    pub const fn number(&self) -> u32 {
        self.number
    }

    /// Whether this is the first attempt of the call.
    pub const fn is_first(&self) -> bool {
        self.number == 1
    }

    /// How long until the call's deadline, or `None` when the call has no
    /// deadline. Zero once it has passed.
    pub fn remaining(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(self.clock.now()))
    }

    /// Run `f` with this attempt as the current one on this thread.
    #[inline]
    pub(crate) fn enter<R>(self, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Attempt>);
        impl Drop for Restore {
            #[inline]
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.0));
            }
        }
        let _restore = Restore(CURRENT.with(|c| c.replace(Some(self))));
        f()
    }
}

#[cfg(feature = "tokio")]
pin_project_lite::pin_project! {
    /// A future that makes its attempt the current one while it is polled.
    pub(crate) struct InAttempt<F> {
        attempt: Attempt,
        #[pin]
        fut: F,
    }
}

#[cfg(feature = "tokio")]
impl<F> InAttempt<F> {
    #[inline]
    pub(crate) fn new(attempt: Attempt, fut: F) -> Self {
        InAttempt { attempt, fut }
    }
}

#[cfg(feature = "tokio")]
impl<F: core::future::Future> core::future::Future for InAttempt<F> {
    type Output = F::Output;

    #[inline]
    fn poll(
        self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
    ) -> core::task::Poll<F::Output> {
        let this = self.project();
        let fut = this.fut;
        this.attempt.enter(|| fut.poll(cx))
    }
}
