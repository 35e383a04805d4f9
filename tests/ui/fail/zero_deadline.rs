use llm_resilience::retry;

#[retry(deadline = 0ms)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
