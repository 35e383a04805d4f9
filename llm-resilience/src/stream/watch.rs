//! The timer of a stream after its first content event: the idle timeout
//! and the whole-stream deadline, on one tokio timer that is touched only
//! when it fires, never for each event.
//!
//! Moving a tokio timer, or even polling one, costs more than the rest of
//! an event's handling, and so does reading the clock. So an event only
//! sets a flag, and the timer fires every `idle / 8`: a check that finds no
//! event since the one before counts as quiet, and the eighth quiet check
//! in a row is the idle timeout. The timeout therefore comes between
//! `idle` and `idle × 1.125` after the last event. The deadline is exact:
//! the timer is never armed past it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Checks per idle timeout.
const TICKS: u32 = 8;

/// Where an instant too far away to be represented is put: never, in
/// practice.
const FAR: Duration = Duration::from_secs(60 * 60 * 24 * 365 * 30);

/// `at + after`, or thirty years from `at` if that overflows.
pub(super) fn later(at: Instant, after: Duration) -> Instant {
    at.checked_add(after).unwrap_or_else(|| at + FAR)
}

/// Whether `waker` wakes what `current` wakes: [`Waker::will_wake`], or the
/// same task's data behind another copy of its vtable (the standard
/// library's own caveat: the same waker may carry its vtable from another
/// codegen unit, and `will_wake` then says no, as tokio's do).
#[inline]
fn same_task(waker: &Waker, current: &Waker) -> bool {
    waker.will_wake(current) || (!current.data().is_null() && waker.data() == current.data())
}

/// What ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expired {
    /// No event within the idle timeout.
    Idle,
    /// The whole-stream deadline.
    Deadline,
}

/// The idle timeout and the deadline of one stream.
pub(super) struct Watch {
    /// The time between checks.
    tick: Duration,
    deadline: Option<Instant>,
    /// Armed at the next check, or at the deadline if that comes first.
    sleep: Pin<Box<Sleep>>,
    /// The waker the timer was last polled with: while it is the task's,
    /// the timer need not be polled again until it fires.
    waker: Option<Waker>,
    /// Whether an event came since the last check.
    active: bool,
    /// Checks in a row that found no event.
    quiet: u32,
}

impl Watch {
    /// Start watching now (the first content event has just come), with no
    /// more than `idle` between events and, if set, a `deadline`.
    pub(super) fn new(idle: Duration, deadline: Option<Instant>) -> Self {
        let tick = idle / TICKS;
        let next = later(Instant::now(), tick);
        let next = deadline.map_or(next, |d| d.min(next));
        Watch {
            tick,
            deadline,
            sleep: Box::pin(tokio::time::sleep_until(next)),
            waker: None,
            active: true,
            quiet: 0,
        }
    }

    /// An event came.
    #[inline]
    pub(super) fn event(&mut self) {
        self.active = true;
    }

    /// The stream waits for its body: has the idle timeout or the deadline
    /// run out? `None` leaves the task woken when the next check is due.
    pub(super) fn check(&mut self, cx: &mut Context<'_>) -> Option<Expired> {
        loop {
            if !self.sleep.is_elapsed() {
                if self
                    .waker
                    .as_ref()
                    .is_some_and(|w| same_task(w, cx.waker()))
                {
                    return None;
                }
                if self.sleep.as_mut().poll(cx).is_pending() {
                    self.waker = Some(cx.waker().clone());
                    return None;
                }
            }
            let now = Instant::now();
            if self.deadline.is_some_and(|d| now >= d) {
                return Some(Expired::Deadline);
            }
            if std::mem::take(&mut self.active) {
                self.quiet = 0;
            } else {
                self.quiet += 1;
                if self.quiet >= TICKS {
                    return Some(Expired::Idle);
                }
            }
            let next = later(now, self.tick);
            let next = self.deadline.map_or(next, |d| d.min(next));
            self.sleep.as_mut().reset(next);
            self.waker = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::task::Poll;

    /// Waits until the watch expires, the body sending an event at each of
    /// `events` (from the start).
    async fn expiry(
        idle: Duration,
        deadline: Option<Duration>,
        events: &[Duration],
    ) -> (Expired, Duration) {
        let start = Instant::now();
        let mut watch = Watch::new(idle, deadline.map(|d| start + d));
        let mut events = events.iter().map(|d| start + *d).peekable();
        loop {
            let next_event = events.peek().copied();
            let expired = poll_fn(|cx| {
                if let Some(at) = next_event {
                    if Instant::now() >= at {
                        return Poll::Ready(None);
                    }
                }
                match watch.check(cx) {
                    Some(expired) => Poll::Ready(Some(expired)),
                    None => Poll::Pending,
                }
            });
            let outcome = match next_event {
                Some(at) => tokio::select! {
                    biased;
                    e = expired => e,
                    () = tokio::time::sleep_until(at) => None,
                },
                None => expired.await,
            };
            match outcome {
                Some(expired) => return (expired, start.elapsed()),
                None => {
                    events.next();
                    watch.event();
                }
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn idle_runs_out_between_idle_and_an_eighth_more_after_the_last_event() {
        let idle = Duration::from_secs(8);
        for last in [0, 1, 3, 5, 7, 9, 13, 20] {
            let last = Duration::from_millis(last * 700);
            let events: Vec<Duration> = (0..=last.as_millis() as u64 / 700)
                .map(|i| Duration::from_millis(i * 700))
                .collect();
            let (expired, at) = expiry(idle, None, &events).await;
            assert_eq!(expired, Expired::Idle);
            let after = at - *events.last().unwrap();
            assert!(after >= idle, "{after:?} after the last event at {last:?}");
            assert!(
                after <= idle + idle / 8,
                "{after:?} after the last event at {last:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_is_exact_however_busy_the_stream() {
        let events: Vec<Duration> = (0..100).map(|i| Duration::from_millis(i * 90)).collect();
        let (expired, at) = expiry(
            Duration::from_secs(1),
            Some(Duration::from_millis(4321)),
            &events,
        )
        .await;
        assert_eq!(expired, Expired::Deadline);
        assert_eq!(at, Duration::from_millis(4321));
    }

    #[tokio::test(start_paused = true)]
    async fn huge_timeouts_do_not_overflow() {
        let mut watch = Watch::new(Duration::MAX, Some(later(Instant::now(), Duration::MAX)));
        let pending = poll_fn(|cx| Poll::Ready(watch.check(cx))).await;
        assert_eq!(pending, None);
    }
}
