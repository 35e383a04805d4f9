use llm_resilience::retry;

#[retry(clone(a, a))]
fn call(a: String) -> Result<(), std::io::Error> {
    drop(a);
    Ok(())
}

fn main() {}
