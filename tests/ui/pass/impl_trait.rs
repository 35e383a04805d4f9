// `impl Trait` in argument position, and inside the `Ok` type.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::fmt::Display;
use std::io;

use llm_resilience::retry;

#[retry(wait = none)]
fn join(parts: impl IntoIterator<Item = impl AsRef<str>> + Clone) -> Result<String, io::Error> {
    Ok(parts
        .clone()
        .into_iter()
        .map(|p| p.as_ref().to_owned())
        .collect::<Vec<_>>()
        .join(" "))
}

#[retry(wait = none)]
fn shown(n: u32) -> Result<impl Display, io::Error> {
    Ok(n * 2)
}

#[retry(wait = none)]
fn words(text: &str) -> Result<impl Iterator<Item = &str> + '_, io::Error> {
    Ok(text.split(' '))
}

#[retry(wait = none)]
fn boxed(n: u8) -> Result<Vec<impl Display>, io::Error> {
    Ok(vec![n, n + 1])
}

#[retry(wait = none)]
async fn shown_async(label: &impl Display) -> Result<impl Display, io::Error> {
    tokio::task::yield_now().await;
    Ok(format!("<{label}>"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(join(["a", "b"]).unwrap(), "a b");
    assert_eq!(shown(21).unwrap().to_string(), "42");
    assert_eq!(words("x y").unwrap().count(), 2);
    assert_eq!(boxed(1).unwrap().len(), 2);
    assert_eq!(shown_async(&7).await.unwrap().to_string(), "<7>");
}
