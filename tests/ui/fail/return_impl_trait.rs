use llm_resilience::retry;

#[retry]
fn call() -> impl std::fmt::Debug {
    Ok::<u32, std::io::Error>(1)
}

fn main() {}
