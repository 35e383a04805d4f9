#![deny(warnings, clippy::all, unused_qualifications)]

mod nested {
    pub mod deeper {
        pub use ::llm_resilience;
    }
}

mod inner {
    use std::io;

    #[derive(Debug)]
    pub(crate) struct E;
    impl llm_resilience::Classify for E {
        fn kind(&self) -> llm_resilience::ErrorKind {
            llm_resilience::ErrorKind::Other
        }
    }
    impl From<llm_resilience::Elapsed> for E {
        fn from(_: llm_resilience::Elapsed) -> Self {
            E
        }
    }

    #[llm_resilience::retry(wait = none, crate = "crate::nested::deeper::llm_resilience")]
    pub(crate) fn sync_fn() -> Result<u32, io::Error> {
        Ok(3)
    }

    #[llm_resilience::retry(wait = none, deadline = 1s, crate = "crate::nested::deeper::llm_resilience")]
    pub(crate) async fn async_fn() -> Result<u32, E> {
        Ok(3)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(inner::sync_fn().unwrap(), 3);
    assert_eq!(inner::async_fn().await.unwrap(), 3);
}
