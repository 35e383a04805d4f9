use retry_core::retry;

type Reply = Option<String>;

#[retry]
fn call() -> Reply {
    None
}

fn main() {}
