// Generic functions: bounds, where clauses, explicit and elided lifetimes,
// and a generic error type.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::fmt::Debug;
use std::io;

use llm_resilience::{retry, Classify};

#[retry(wait = none)]
fn parse<T: std::str::FromStr + Debug>(text: &str) -> Result<T, io::Error> {
    text.parse()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not a number"))
}

#[retry(wait = none)]
fn first<T, E>(items: &[T], error: impl Fn() -> E) -> Result<T, E>
where
    T: Clone,
    E: Classify,
{
    items.first().cloned().ok_or_else(&error)
}

#[retry(wait = none)]
fn explicit<'a>(x: &'a str) -> Result<&'a str, io::Error> {
    Ok(x.trim())
}

#[retry(wait = none)]
fn two_lifetimes<'a, 'b: 'a>(x: &'a str, y: &'b str) -> Result<&'a str, io::Error> {
    Ok(if x.len() >= y.len() { x } else { y })
}

#[retry(wait = none)]
fn elided(x: &str) -> Result<&str, io::Error> {
    x.split_whitespace()
        .next()
        .ok_or_else(|| io::ErrorKind::UnexpectedEof.into())
}

struct Cache<T> {
    items: Vec<T>,
}

impl<T: Clone + Debug> Cache<T> {
    #[retry(wait = none)]
    fn get(&self, i: usize) -> Result<&T, io::Error> {
        self.items
            .get(i)
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }

    #[retry(wait = none)]
    async fn get_async<'s>(&'s self, i: usize) -> Result<&'s T, io::Error>
    where
        T: Sync,
    {
        tokio::task::yield_now().await;
        self.items
            .get(i)
            .ok_or_else(|| io::ErrorKind::NotFound.into())
    }
}

#[retry(wait = none)]
async fn generic_async<T>(value: &T) -> Result<String, io::Error>
where
    T: Debug + ?Sized + Sync,
{
    tokio::task::yield_now().await;
    Ok(format!("{value:?}"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(parse::<u32>("42").unwrap(), 42);
    assert!(parse::<u32>("x").is_err());
    assert_eq!(first(&[1, 2], || io::Error::other("empty")).unwrap(), 1);
    assert!(first::<u8, io::Error>(&[], || io::Error::other("empty")).is_err());
    assert_eq!(explicit(" a ").unwrap(), "a");
    assert_eq!(two_lifetimes("ab", "c").unwrap(), "ab");
    assert_eq!(elided("hello world").unwrap(), "hello");
    let cache = Cache { items: vec!['x'] };
    assert_eq!(cache.get(0).unwrap(), &'x');
    assert_eq!(cache.get_async(0).await.unwrap(), &'x');
    assert_eq!(generic_async("s").await.unwrap(), "\"s\"");
}
