use retry_core::retry;

#[retry(crate = retry_core)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
