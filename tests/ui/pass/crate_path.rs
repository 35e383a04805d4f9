// `crate = "..."`: reaching llm-resilience through a re-export, as a library that
// wraps it would.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::io;

mod wrapper {
    // A library that re-exports llm-resilience for its users.
    pub use llm_resilience as retries;
}

use llm_resilience as rc;

#[rc::retry(wait = none, crate = "rc")]
fn renamed_at_use() -> Result<u32, io::Error> {
    Ok(1)
}

#[wrapper::retries::retry(wait = none, crate = "wrapper::retries")]
fn through_a_module() -> Result<u32, io::Error> {
    Ok(2)
}

mod inner {
    use std::io;

    #[crate::wrapper::retries::retry(wait = none, crate = "crate::wrapper::retries")]
    pub(crate) fn crate_relative() -> Result<u32, io::Error> {
        Ok(3)
    }
}

#[llm_resilience::retry(wait = none, crate = "::llm_resilience")]
async fn leading_colons() -> Result<u32, io::Error> {
    Ok(4)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(renamed_at_use().unwrap(), 1);
    assert_eq!(through_a_module().unwrap(), 2);
    assert_eq!(inner::crate_relative().unwrap(), 3);
    assert_eq!(leading_colons().await.unwrap(), 4);
}
