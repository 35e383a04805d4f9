//! Tests live under `tests/`. The README's Rust examples are this crate's
//! doctests: those that compile on their own run here, with every feature
//! of `llm-resilience` and the clients the integrations work with (its
//! illustrative fragments are marked `ignore`).
#![doc = include_str!("../../README.md")]
