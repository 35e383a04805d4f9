// Methods with every receiver, sync and async.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use llm_resilience::retry;

fn reset() -> io::Error {
    io::ErrorKind::ConnectionReset.into()
}

#[derive(Default)]
struct Client {
    calls: u32,
    shared: AtomicU32,
    atomic: AtomicU32,
}

impl Client {
    #[retry(wait = none)]
    fn by_ref(&self) -> Result<u32, io::Error> {
        let n = self.shared.fetch_add(1, Ordering::SeqCst) + 1;
        if n < 2 {
            return Err(reset());
        }
        Ok(n)
    }

    #[retry(wait = none)]
    fn by_mut(&mut self, step: u32) -> Result<u32, io::Error> {
        self.calls += step;
        if self.calls < 3 {
            return Err(reset());
        }
        Ok(self.calls)
    }

    #[retry(wait = none)]
    fn by_value(self) -> Result<u32, io::Error> {
        if self.calls == 0 {
            return Err(reset());
        }
        Ok(self.calls)
    }

    #[retry(wait = none)]
    fn by_arc(self: Arc<Self>) -> Result<u32, io::Error> {
        Ok(self.atomic.fetch_add(1, Ordering::SeqCst) + 1)
    }

    #[retry(wait = none)]
    async fn async_by_ref(&self) -> Result<u32, io::Error> {
        tokio::task::yield_now().await;
        if self.atomic.fetch_add(1, Ordering::SeqCst) < 1 {
            return Err(reset());
        }
        Ok(self.atomic.load(Ordering::SeqCst))
    }

    #[retry(wait = none)]
    async fn async_by_mut(&mut self) -> Result<u32, io::Error> {
        tokio::task::yield_now().await;
        self.calls += 1;
        if self.calls < 3 {
            return Err(reset());
        }
        Ok(self.calls)
    }

    #[retry(wait = none)]
    async fn async_by_arc(self: Arc<Self>) -> Result<u32, io::Error> {
        tokio::task::yield_now().await;
        Ok(self.atomic.load(Ordering::SeqCst))
    }

    #[retry(wait = none)]
    async fn async_by_value(self) -> Result<u32, io::Error> {
        tokio::task::yield_now().await;
        Ok(self.calls)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let client = Client::default();
    assert_eq!(client.by_ref().unwrap(), 2);

    let mut client = Client::default();
    assert_eq!(client.by_mut(1).unwrap(), 3);
    assert_eq!(client.async_by_mut().await.unwrap(), 4);
    assert_eq!(client.by_value().unwrap(), 4);
    assert!(Client::default().by_value().is_err());

    let client = Arc::new(Client::default());
    assert_eq!(Arc::clone(&client).by_arc().unwrap(), 1);
    assert_eq!(client.async_by_ref().await.unwrap(), 2);
    assert_eq!(Arc::clone(&client).async_by_arc().await.unwrap(), 2);

    let client = Client {
        calls: 7,
        ..Client::default()
    };
    assert_eq!(client.async_by_value().await.unwrap(), 7);
}
