use llm_resilience::retry;

#[retry(clone(file))]
fn call(file: std::fs::File) -> Result<(), std::io::Error> {
    drop(file);
    Ok(())
}

fn main() {}
