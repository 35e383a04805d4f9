//! Sleeping between attempts, on the thread (sync) or tokio's timer (async).

use std::time::Duration;

use crate::engine::state::State;

/// Give the scheduler a turn: pending once, with the task woken at once.
#[cfg(feature = "tokio")]
fn yield_now() -> impl core::future::Future<Output = ()> {
    let mut yielded = false;
    core::future::poll_fn(move |cx| {
        if yielded {
            return core::task::Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        core::task::Poll::Pending
    })
}

impl<'p> State<'p> {
    /// Sleep before the next attempt of a sync call.
    pub(crate) fn sleep_sync(delay: Duration) {
        if !crate::testing::skip(delay) {
            std::thread::sleep(delay);
        }
    }

    /// Sleep before the next attempt of an async call, on tokio's timer.
    ///
    /// Every retry gives the scheduler a turn, whatever the delay: a zero
    /// delay (`wait = none`) yields, so that a loop of instant failures
    /// never starves the tasks that share its thread. With a deadline, a
    /// zero delay waits for the timer's next tick (1 ms) instead, the
    /// resolution at which tokio measures the deadline: the loop then
    /// reaches it in at most one attempt per tick, on a paused test clock
    /// too (which moves on only while every task waits on the timer).
    #[cfg(feature = "tokio")]
    pub(crate) fn sleep_async(
        &self,
        delay: Duration,
    ) -> impl core::future::Future<Output = ()> + Send + 'static {
        let tick = self.frame.deadline.is_some();
        async move {
            if crate::testing::skip(delay) {
                yield_now().await;
            } else if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            } else if tick {
                tokio::time::sleep(Duration::from_millis(1)).await;
            } else {
                yield_now().await;
            }
        }
    }
}
