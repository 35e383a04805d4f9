use llm_resilience::retry;

#[retry(clone(promt))]
fn call(prompt: String) -> Result<String, std::io::Error> {
    Ok(prompt)
}

fn main() {}
