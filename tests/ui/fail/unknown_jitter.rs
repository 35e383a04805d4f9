use retry_core::retry;

#[retry(jitter = random)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
