use retry_core::retry;

#[retry(when = 5)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
