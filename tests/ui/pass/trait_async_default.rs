// `#[retry]` on trait methods with a body: an `async fn` default method, a
// sync default method, and the methods of an impl.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

use llm_resilience::retry;

trait Provider {
    fn calls(&self) -> &AtomicU32;

    #[retry(wait = none)]
    async fn complete(&self, prompt: &str) -> Result<String, io::Error> {
        tokio::task::yield_now().await;
        if self.calls().fetch_add(1, Ordering::SeqCst) < 1 {
            return Err(io::ErrorKind::TimedOut.into());
        }
        Ok(format!("echo: {prompt}"))
    }

    #[retry(wait = none)]
    fn ping(&self) -> Result<u32, io::Error> {
        Ok(self.calls().load(Ordering::SeqCst))
    }

    fn name(&self) -> Result<&'static str, io::Error>;
}

#[derive(Default)]
struct Fake {
    calls: AtomicU32,
}

impl Provider for Fake {
    fn calls(&self) -> &AtomicU32 {
        &self.calls
    }

    #[retry(wait = none, max_attempts = 2)]
    fn name(&self) -> Result<&'static str, io::Error> {
        Ok("fake")
    }
}

struct Loud(AtomicU32);

impl Provider for Loud {
    fn calls(&self) -> &AtomicU32 {
        &self.0
    }

    #[retry(wait = none)]
    async fn complete(&self, prompt: &str) -> Result<String, io::Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(prompt.to_uppercase())
    }

    fn name(&self) -> Result<&'static str, io::Error> {
        Ok("loud")
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let fake = Fake::default();
    assert_eq!(fake.complete("hi").await.unwrap(), "echo: hi");
    assert_eq!(fake.ping().unwrap(), 2);
    assert_eq!(fake.name().unwrap(), "fake");

    let loud = Loud(AtomicU32::new(0));
    assert_eq!(loud.complete("hi").await.unwrap(), "HI");
    assert_eq!(loud.name().unwrap(), "loud");
}
