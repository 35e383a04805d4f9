//! Runnable examples live under `src/bin/`; this library holds what they
//! share, such as the [`flaky`] provider they call.

#![deny(missing_docs)]

pub mod chat;
pub mod flaky;
pub mod outage;
pub mod redis_server;
