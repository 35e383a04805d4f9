use llm_resilience::retry;

#[retry(attempt_timeout = 1s, clone(body), on = [Timeout(max_attempts = 9)])]
const fn call() -> (u32, u32) {
    (1, 2)
}

fn main() {}
