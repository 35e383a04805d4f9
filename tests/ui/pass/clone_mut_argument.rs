#![deny(warnings, clippy::all, unused_qualifications)]

use std::io;

use llm_resilience::retry;

#[retry(wait = none, clone(text))]
fn shout(mut text: String) -> Result<String, io::Error> {
    text.push('!');
    Ok(text)
}

fn main() {
    assert_eq!(shout("hi".to_owned()).unwrap(), "hi!");
}
