use retry_core::retry;

#[retry(on = [Flaky])]
fn call() -> Result<(), std::io::Error> {
    Ok(())
}

fn main() {}
