use llm_resilience::retry;

#[retry]
fn call() {}

fn main() {}
