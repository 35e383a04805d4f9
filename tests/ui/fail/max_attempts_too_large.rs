use retry_core::retry;

#[retry(max_attempts = 99999999999)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
