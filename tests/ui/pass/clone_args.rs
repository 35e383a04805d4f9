// `clone(...)`: owned arguments that the body moves are cloned afresh for
// each attempt, sync and async.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::cell::Cell;
use std::io;

use llm_resilience::retry;

fn consume(prompt: String, tags: Vec<String>) -> String {
    format!("{prompt} {}", tags.join(","))
}

#[retry(wait = none, clone(prompt, tags))]
fn send(calls: &Cell<u32>, prompt: String, tags: Vec<String>) -> Result<String, io::Error> {
    calls.set(calls.get() + 1);
    let out = consume(prompt, tags);
    if calls.get() < 2 {
        return Err(io::ErrorKind::ConnectionReset.into());
    }
    Ok(out)
}

#[retry(wait = none, clone(body))]
async fn send_async(calls: &Cell<u32>, body: String) -> Result<usize, io::Error> {
    tokio::task::yield_now().await;
    calls.set(calls.get() + 1);
    let owned: String = body;
    if calls.get() < 3 {
        return Err(io::ErrorKind::TimedOut.into());
    }
    Ok(owned.len())
}

struct Client {
    calls: u32,
}

impl Client {
    #[retry(wait = none, clone(message))]
    fn post(&mut self, message: String) -> Result<String, io::Error> {
        self.calls += 1;
        let message = message + "!";
        if self.calls < 2 {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        Ok(message)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let calls = Cell::new(0);
    let tags = vec!["a".to_owned(), "b".to_owned()];
    assert_eq!(send(&calls, "hi".to_owned(), tags).unwrap(), "hi a,b");
    assert_eq!(calls.get(), 2);

    let calls = Cell::new(0);
    assert_eq!(send_async(&calls, "four".to_owned()).await.unwrap(), 4);
    assert_eq!(calls.get(), 3);

    let mut client = Client { calls: 0 };
    assert_eq!(client.post("yes".to_owned()).unwrap(), "yes!");
}
