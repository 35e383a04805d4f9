use retry_core::retry;

#[retry(max_attempts)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
