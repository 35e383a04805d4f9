use llm_resilience::retry;

#[retry(wait = none)]
fn call(prompt: String) -> Result<usize, std::io::Error> {
    let owned: String = prompt;
    Ok(owned.len())
}

fn main() {}
