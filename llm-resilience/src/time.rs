use std::time::Instant;

/// Where a call reads the time: the system clock for sync calls, tokio's
/// clock (which a paused test runtime controls) for async ones. Both move on
/// by the sleeps skipped under [`testing`](crate::testing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Clock {
    Std,
    #[cfg(feature = "tokio")]
    Tokio,
}

impl Clock {
    pub(crate) fn now(self) -> Instant {
        let now = match self {
            Clock::Std => Instant::now(),
            #[cfg(feature = "tokio")]
            Clock::Tokio => tokio::time::Instant::now().into_std(),
        };
        crate::testing::skipped_time(now)
    }
}

/// The time for state shared between calls (breakers, budgets, limiters):
/// tokio's clock when the `tokio` feature is on (so a paused test runtime
/// controls it; outside a runtime it is the system clock), moved on by the
/// sleeps skipped under [`testing`](crate::testing).
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) fn shared_now() -> Instant {
    #[cfg(feature = "tokio")]
    let now = tokio::time::Instant::now().into_std();
    #[cfg(not(feature = "tokio"))]
    let now = Instant::now();
    crate::testing::skipped_time(now)
}
