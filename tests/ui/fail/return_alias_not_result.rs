use llm_resilience::retry;

type Reply = Option<String>;

#[retry]
fn call() -> Reply {
    None
}

fn main() {}
