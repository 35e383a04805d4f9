use llm_resilience::retry;

#[retry(max_attempts = 2)]
struct Client;

fn main() {}
