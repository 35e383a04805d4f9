use retry_core::retry;

#[retry(on = [Timeout(max_attempts = 4)])]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
