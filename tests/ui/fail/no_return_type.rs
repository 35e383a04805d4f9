use retry_core::retry;

#[retry]
fn call() {}

fn main() {}
