use retry_core::retry;

#[retry(deadline = 0ms)]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
