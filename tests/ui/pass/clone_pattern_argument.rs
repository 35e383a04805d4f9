use retry_core::retry;

#[retry(clone(a))]
fn call((a, b): (String, u8)) -> Result<(), std::io::Error> {
    drop((a, b));
    Ok(())
}

fn main() {}
