//! Whether a shared guard reaches Redis: said once per change, in tracing
//! and metrics, and readable by its owner.

use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::Arc;

/// The link of one shared guard, as its task sees it and its handle reads
/// it.
#[derive(Debug)]
pub(super) struct Link {
    /// `"breaker"`, `"budget"` or `"limiter"`: what the logs and metrics
    /// say.
    #[cfg_attr(not(any(feature = "tracing", feature = "metrics")), allow(dead_code))]
    pub(super) guard: &'static str,
    pub(super) name: Arc<str>,
    connected: AtomicBool,
    /// Whether it ran on local state since it last reached Redis (or
    /// never reached it): a fall back is said once.
    fallen_back: AtomicBool,
    /// Times it fell back to local state.
    fallbacks: AtomicU64,
    /// Times it resynchronised after a fall back.
    resyncs: AtomicU64,
}

impl Link {
    pub(super) fn new(guard: &'static str, name: Arc<str>) -> Self {
        Link {
            guard,
            name,
            connected: AtomicBool::new(false),
            fallen_back: AtomicBool::new(false),
            fallbacks: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
        }
    }

    pub(super) fn is_connected(&self) -> bool {
        self.connected.load(Acquire)
    }

    pub(super) fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Relaxed)
    }

    pub(super) fn resyncs(&self) -> u64 {
        self.resyncs.load(Relaxed)
    }

    /// Redis could not be reached, or an operation failed or timed out:
    /// the guard runs on local state. Said once until it is back; the
    /// guard reads as disconnected once it has been said.
    pub(super) fn down(&self, why: &dyn std::fmt::Display) {
        if !self.fallen_back.swap(true, Relaxed) {
            self.say_down(why);
        }
        self.connected.store(false, Release);
    }

    /// The fleet was closed ([`Fleet::close`](super::Fleet::close)): the
    /// guard runs on local state from now on. Not a fallback: said at
    /// `INFO`, and not counted.
    pub(super) fn closed(&self) {
        self.connected.store(false, Release);
        #[cfg(feature = "tracing")]
        tracing::info!(
            target: "llm_resilience",
            guard = self.guard,
            name = &*self.name,
            "left the fleet: the shared {} runs on local state from now on",
            self.guard
        );
        #[cfg(feature = "metrics")]
        metrics::gauge!("retry_shared_connected", "guard" => self.guard, "name" => self.name.to_string())
            .set(0.0);
    }

    fn say_down(&self, why: &dyn std::fmt::Display) {
        self.fallbacks.fetch_add(1, Relaxed);
        #[cfg(feature = "tracing")]
        tracing::warn!(
            target: "llm_resilience",
            guard = self.guard,
            name = &*self.name,
            error = %why,
            "Redis unreachable: the shared {} runs on local state until it is back",
            self.guard
        );
        #[cfg(not(feature = "tracing"))]
        let _ = why;
        #[cfg(feature = "metrics")]
        {
            let (guard, name) = (self.guard, self.name.to_string());
            metrics::counter!("retry_shared_fallbacks_total", "guard" => guard, "name" => name.clone())
                .increment(1);
            metrics::gauge!("retry_shared_connected", "guard" => guard, "name" => name).set(0.0);
        }
    }

    /// Redis answered, and the guard resynchronised with the fleet; it
    /// reads as connected once that has been said.
    pub(super) fn up(&self) {
        let was_down = self.fallen_back.swap(false, Relaxed);
        if was_down {
            self.resyncs.fetch_add(1, Relaxed);
            #[cfg(feature = "tracing")]
            tracing::info!(
                target: "llm_resilience",
                guard = self.guard,
                name = &*self.name,
                "Redis reachable again: the shared {} resynchronised with the fleet",
                self.guard
            );
        }
        #[cfg(feature = "metrics")]
        {
            let (guard, name) = (self.guard, self.name.to_string());
            metrics::gauge!("retry_shared_connected", "guard" => guard, "name" => name).set(1.0);
        }
        self.connected.store(true, Release);
    }
}
