#![deny(warnings, clippy::all, unused_qualifications)]

mod nested {
    pub mod deeper {
        pub use ::retry_core;
    }
}

mod inner {
    use std::io;

    #[derive(Debug)]
    pub(crate) struct E;
    impl retry_core::Classify for E {
        fn kind(&self) -> retry_core::ErrorKind {
            retry_core::ErrorKind::Other
        }
    }
    impl From<retry_core::Elapsed> for E {
        fn from(_: retry_core::Elapsed) -> Self {
            E
        }
    }

    #[retry_core::retry(wait = none, crate = "crate::nested::deeper::retry_core")]
    pub(crate) fn sync_fn() -> Result<u32, io::Error> {
        Ok(3)
    }

    #[retry_core::retry(wait = none, deadline = 1s, crate = "crate::nested::deeper::retry_core")]
    pub(crate) async fn async_fn() -> Result<u32, E> {
        Ok(3)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(inner::sync_fn().unwrap(), 3);
    assert_eq!(inner::async_fn().await.unwrap(), 3);
}
