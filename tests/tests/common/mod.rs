//! A token bucket whose rate follows a schedule, on tokio's clock, shared
//! by the limiter's tests.

use std::time::Duration;

use tokio::time::Instant;

/// A token bucket whose rate changes over time: `(from, per second)`, full
/// (`burst` tokens) at its start, counting what it admits each second.
pub struct Scheduled {
    schedule: Vec<(Duration, f64)>,
    burst: f64,
    tokens: f64,
    start: Instant,
    last: Instant,
    /// Requests admitted in each second since the start.
    pub admitted: Vec<u32>,
}

impl Scheduled {
    /// A bucket of `burst` that starts now.
    pub fn new(schedule: Vec<(Duration, f64)>, burst: f64) -> Self {
        let start = Instant::now();
        Scheduled {
            schedule,
            burst,
            tokens: burst,
            start,
            last: start,
            admitted: Vec::new(),
        }
    }

    /// Take a token for a request: `false` when it is refused.
    pub fn take(&mut self) -> bool {
        let now = Instant::now();
        let at = self.last - self.start;
        let rate = self
            .schedule
            .iter()
            .rev()
            .find(|(from, _)| *from <= at)
            .map_or(0.0, |(_, rate)| *rate);
        self.tokens = (self.tokens + (now - self.last).as_secs_f64() * rate).min(self.burst);
        self.last = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        let second = (now - self.start).as_secs() as usize;
        if self.admitted.len() <= second {
            self.admitted.resize(second + 1, 0);
        }
        self.admitted[second] += 1;
        true
    }
}
