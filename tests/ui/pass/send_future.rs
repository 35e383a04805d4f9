// The future of a retried `async fn` is `Send` when its body's is, so it can
// be spawned on a multi-threaded runtime.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use llm_resilience::{retry, Classify, Elapsed, ErrorKind};

fn is_send<T: Send>(_: &T) {}

#[derive(Debug)]
enum ApiError {
    Busy,
    CutOff,
}

impl Classify for ApiError {
    fn kind(&self) -> ErrorKind {
        match self {
            ApiError::Busy => ErrorKind::Overloaded,
            ApiError::CutOff => ErrorKind::Timeout,
        }
    }
}

impl From<Elapsed> for ApiError {
    fn from(_: Elapsed) -> Self {
        ApiError::CutOff
    }
}

struct Client {
    calls: AtomicU32,
}

impl Client {
    #[retry(wait = fixed(1ms), clone(prompt))]
    async fn chat(&self, prompt: String) -> Result<String, ApiError> {
        tokio::task::yield_now().await;
        if self.calls.fetch_add(1, Ordering::SeqCst) < 1 {
            return Err(ApiError::Busy);
        }
        Ok(prompt)
    }

    #[retry(wait = fixed(1ms), deadline = 10s, attempt_timeout = 5s)]
    async fn timed(self: Arc<Self>) -> Result<u32, ApiError> {
        tokio::task::yield_now().await;
        Ok(self.calls.load(Ordering::SeqCst))
    }
}

#[retry(wait = fixed(1ms))]
async fn free(text: &str) -> Result<usize, io::Error> {
    tokio::task::yield_now().await;
    Ok(text.len())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = Arc::new(Client {
            calls: AtomicU32::new(0),
        });

        let text = String::from("abc");
        let fut = free(&text);
        is_send(&fut);
        assert_eq!(fut.await.unwrap(), 3);

        let spawned = {
            let client = Arc::clone(&client);
            tokio::spawn(async move { client.chat("hi".to_owned()).await })
        };
        assert_eq!(spawned.await.unwrap().unwrap(), "hi");

        let fut = Arc::clone(&client).timed();
        is_send(&fut);
        assert_eq!(tokio::spawn(fut).await.unwrap().unwrap(), 2);
    });
}
