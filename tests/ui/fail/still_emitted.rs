// A mistake in the arguments is the only error: the function is still
// emitted as written, so its callers add no "cannot find function" noise.
use llm_resilience::retry;

#[retry(max_attempts = 0)]
fn call(prompt: &str) -> Result<String, std::io::Error> {
    Ok(prompt.to_owned())
}

fn main() {
    let reply: String = call("hi").unwrap();
    drop(reply);
}
