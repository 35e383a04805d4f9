//! The atomics of [`CircuitBreaker`](crate::CircuitBreaker),
//! [`RetryBudget`](crate::RetryBudget) and their window: std's, or loom's
//! when the crate is built with `RUSTFLAGS="--cfg retry_loom"` for the model
//! checks in `tests/loom.rs`.
//!
//! Under `retry_loom` the clock of the window is the one those tests set
//! ([`clock`]), and the constructors that build atomics are not `const`:
//! loom's atomics have no `const fn new`. Normal builds are unchanged.

#[cfg(retry_loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};
#[cfg(not(retry_loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// A constructor that builds atomics: `const fn` in normal builds, a plain
/// `fn` under `retry_loom`. Wrap the whole item, docs included:
///
/// ```ignore
/// crate::sync::const_fn! {
///     /// Docs.
///     pub const fn new() -> Self { ... }
/// }
/// ```
macro_rules! const_fn {
    ($(#[$attr:meta])* $vis:vis const fn $($item:tt)*) => {
        #[cfg(not(retry_loom))]
        $(#[$attr])*
        $vis const fn $($item)*

        #[cfg(retry_loom)]
        $(#[$attr])*
        $vis fn $($item)*
    };
}
pub(crate) use const_fn;

/// The clock of the loom model checks, exposed as
/// `llm_resilience::__private::loom`: `now_ns()` reads it instead of the system
/// or tokio clock, so that every execution of a model sees the same times.
///
/// It is a std atomic, outside the model: loom does not interleave its
/// accesses, and a model that sets it from several threads sees each change
/// at the point of the schedule where it is made. It is global, so tests
/// that set it must not run at the same time.
#[cfg(retry_loom)]
pub mod clock {
    use std::sync::atomic::{AtomicU64, Ordering};

    /// The time before any `set_now`: the epoch's timestamp (see
    /// `time.rs`).
    const START: u64 = 1 << 60;

    static NOW: AtomicU64 = AtomicU64::new(START);

    /// Set the time `now_ns()` returns, as a timestamp in nanoseconds
    /// (saturated at 2^62 - 1).
    pub fn set_now(ns: u64) {
        NOW.store(ns, Ordering::SeqCst);
    }

    /// The time `now_ns()` returns.
    pub fn now() -> u64 {
        NOW.load(Ordering::SeqCst)
    }
}
