use retry_core::retry;

#[retry(name = "")]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
