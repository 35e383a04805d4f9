use llm_resilience::retry;

#[retry(when = |e: &u32| *e > 0)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
