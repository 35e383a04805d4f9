//! Overhead benchmarks of retry-core against peer crates: see
//! `benches/overhead.rs`, run with `cargo bench -p benches`.
