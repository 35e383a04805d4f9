//! The `#[retry]` attribute. Depend on `llm-resilience`, which re-exports it and
//! documents every argument; this crate holds only the macro.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod args;
mod duration;
mod expand;

use proc_macro::TokenStream;

/// Retry a sync or async function under a policy checked at compile time.
///
/// The arguments are documented on `llm_resilience::retry`, which re-exports this
/// macro.
#[proc_macro_attribute]
pub fn retry(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::retry(args.into(), item.into()).into()
}
