//! Overhead benchmarks of llm-resilience against peer crates: see
//! `benches/overhead.rs`, run with `cargo bench -p benches`.
