use retry_core::retry;

#[retry(max_attempts = 2)]
struct Client;

fn main() {}
