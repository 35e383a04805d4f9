use retry_core::retry;

#[retry]
const fn call() -> Result<u32, ()> {
    Ok(1)
}

fn main() {}
