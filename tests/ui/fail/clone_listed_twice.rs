use retry_core::retry;

#[retry(clone(a, a))]
fn call(a: String) -> Result<(), std::io::Error> {
    drop(a);
    Ok(())
}

fn main() {}
