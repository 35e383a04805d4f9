use retry_core::retry;

#[retry]
fn call() -> (u32, std::io::Error) {
    (1, std::io::ErrorKind::Other.into())
}

fn main() {}
