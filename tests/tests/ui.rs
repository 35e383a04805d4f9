//! Compile-time behaviour of `#[retry]`: every supported function shape
//! compiles (and runs), and every mistake is a compile error pointing at the
//! offending token.
//!
//! The cases live in `tests/ui/pass` and `tests/ui/fail`; the paths below are
//! relative to the `tests` package. After a deliberate change to a message,
//! regenerate the expected output with
//! `TRYBUILD=overwrite cargo test -p tests --test ui`, then read the diff.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
