use retry_core::retry;

#[retry(deadline = 5h)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
