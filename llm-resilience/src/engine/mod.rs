//! The engine: the state of one retried call, the attempt it runs, the
//! decision after a failure, and the calls of [`Policy`](crate::Policy).

mod admission;
pub(crate) mod attempt;
pub(crate) mod call;
mod deadline;
mod decision;
pub(crate) mod driver;
pub(crate) mod elapsed;
pub(crate) mod event;
pub(crate) mod first;
mod sleep;
pub(crate) mod state;
