use llm_resilience::retry;

#[retry(clone(a))]
fn call((a, b): (String, u8)) -> Result<(), std::io::Error> {
    drop((a, b));
    Ok(())
}

fn main() {}
