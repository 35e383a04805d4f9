use llm_resilience::retry;

#[retry]
const fn call() -> Result<u32, ()> {
    Ok(1)
}

fn main() {}
