use retry_core::retry;

#[retry(wait = none)]
fn call(prompt: String) -> Result<usize, std::io::Error> {
    let owned: String = prompt;
    Ok(owned.len())
}

fn main() {}
