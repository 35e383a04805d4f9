// Other shapes: attributes and doc comments kept, visibility, `unsafe fn`,
// const generics, raw identifiers, `mut` arguments, `#[retry()]`.
#![deny(warnings, clippy::all, unused_qualifications)]

use std::io;

use llm_resilience::retry;

mod api {
    use std::io;

    use llm_resilience::retry;

    /// Documented, and visible outside its module.
    #[retry(wait = none)]
    #[must_use = "the reply is the point"]
    #[inline]
    pub fn visible(x: u8) -> Result<u8, io::Error> {
        Ok(x)
    }

    #[retry(wait = none)]
    pub(crate) async fn crate_visible() -> Result<u8, io::Error> {
        Ok(2)
    }
}

#[retry()]
fn empty_parens() -> Result<(), io::Error> {
    Ok(())
}

/// # Safety
///
/// None needed; `unsafe` is only part of the signature.
#[retry(wait = none)]
unsafe fn unsafe_fn(x: u8) -> Result<u8, io::Error> {
    Ok(x)
}

#[retry(wait = none)]
fn const_generic<const N: usize>() -> Result<[u8; N], io::Error> {
    Ok([0; N])
}

#[retry(wait = none)]
fn r#type(r#in: u8) -> Result<u8, io::Error> {
    Ok(r#in)
}

#[retry(max_attempts = 3, wait = none)]
fn mut_binding(mut tries: u32) -> Result<u32, io::Error> {
    tries += 1;
    if tries < 3 {
        return Err(io::ErrorKind::ConnectionReset.into());
    }
    Ok(tries)
}

#[retry(max_attempts = 3, wait = none)]
async fn mut_binding_async(mut text: String) -> Result<String, io::Error> {
    text.push('!');
    if text.len() < 4 {
        return Err(io::ErrorKind::ConnectionReset.into());
    }
    Ok(text.clone())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(api::visible(1).unwrap(), 1);
    assert_eq!(api::crate_visible().await.unwrap(), 2);
    empty_parens().unwrap();
    // SAFETY: `unsafe_fn` has no preconditions.
    assert_eq!(unsafe { unsafe_fn(3) }.unwrap(), 3);
    assert_eq!(const_generic::<5>().unwrap().len(), 5);
    assert_eq!(r#type(6).unwrap(), 6);
    // The argument is the same variable in every attempt.
    assert_eq!(mut_binding(0).unwrap(), 3);
    assert_eq!(mut_binding_async("hi".to_owned()).await.unwrap(), "hi!!");
}
