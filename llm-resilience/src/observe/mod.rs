//! Observation: a span per retried call and an event per failed attempt
//! (`tracing`), and counters and histograms (`metrics`).

pub mod metrics;
pub(crate) mod trace;
