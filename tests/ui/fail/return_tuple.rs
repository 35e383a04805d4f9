use llm_resilience::retry;

#[retry]
fn call() -> (u32, std::io::Error) {
    (1, std::io::ErrorKind::Other.into())
}

fn main() {}
